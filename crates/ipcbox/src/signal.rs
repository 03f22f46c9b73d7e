//! Signals: names and numbers, sending, safe handling, timeouts for blocking calls.
//!
//! * A [`Signal`] is a checked signal number with the names `kill -l` prints.
//! * [`send`] and [`send_group`] deliver one to a process or a process group (`kill`).
//! * [`Signals`] collects received signals for a normal thread to handle: no code of the
//!   program runs inside a signal handler. [`flag`] is the smallest form: a boolean set on
//!   arrival. Both are built on `signal-hook`.
//! * [`with_timeout`] bounds any blocking system call (the old `alarm(2)`-around-`open(2)`
//!   trick, done per thread and without races).
//! * [`ChildExits`] wakes a parent when a child exits, so that it reaps without polling.
//!
//! ```
//! use ipcbox::signal::{self, Signal, Signals};
//! use ipcbox::Pid;
//!
//! let mut signals = Signals::new([Signal::USR1])?;
//! signal::send(Pid::this(), Signal::USR1)?;
//! assert_eq!(signals.wait()?, vec![Signal::USR1]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Limitations
//!
//! * [`flag`] and [`Signals`] refuse `KILL` and `STOP` (they cannot be caught) and the fault
//!   signals `ILL`, `FPE`, `SEGV`, `BUS` (the faulting thread cannot go on).
//! * A handler installed by [`flag`] stays for the life of the process. Those of a
//!   [`Signals`] go when it is dropped, and the signal is then ignored rather than given its
//!   default action back (a limit of `signal-hook`).
//! * [`with_timeout`] reserves [`TIMEOUT_SIGNAL`]: a program using it leaves that signal alone.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::SigId;

use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::pid::Pid;
use crate::pipe;
use crate::sys;

pub use crate::signum::Signal;

/// The real-time signal [`with_timeout`] uses to interrupt a blocking call: `SIGRTMAX-2`.
///
/// ipcbox installs a handler that does nothing for it (without `SA_RESTART`) the first time
/// [`with_timeout`] runs; programs using ipcbox timeouts should leave this signal alone.
pub const TIMEOUT_SIGNAL: Signal = Signal::rtmax_minus(2);

/// How often the timeout signal repeats once the deadline has passed, so that a signal landing
/// just before the blocking call starts is followed by another one inside it.
const TIMEOUT_REPEAT: Duration = Duration::from_millis(1);

/// Sends `sig` to the process `pid`.
///
/// Wraps [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html).
///
/// # Errors
///
/// [`io::ErrorKind::NotFound`] (`ESRCH`) when there is no such process,
/// [`io::ErrorKind::PermissionDenied`] (`EPERM`) when the caller may not signal it; the
/// message names the signal and the process.
#[doc(alias = "kill")]
pub fn send(pid: Pid, sig: Signal) -> io::Result<()> {
    kill(pid.as_raw(), sig).context_with(|| format!("send {sig} to process {pid}"))
}

/// Sends `sig` to every process in the process group `pgid`.
///
/// Wraps [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html) with `-pgid`
/// (`killpg(3)`).
///
/// # Errors
///
/// [`io::ErrorKind::NotFound`] when there is no such group, a permission error when the
/// caller may signal none of its members.
#[doc(alias = "killpg")]
pub fn send_group(pgid: Pid, sig: Signal) -> io::Result<()> {
    kill(-pgid.as_raw(), sig).context_with(|| format!("send {sig} to process group {pgid}"))
}

/// `kill(2)`, with `ESRCH` as [`io::ErrorKind::NotFound`] (std leaves it uncategorised).
fn kill(pid: i32, sig: Signal) -> io::Result<()> {
    sys::signal::kill(pid, sig.as_raw()).map_err(|e| {
        if e.raw_os_error() == Some(libc::ESRCH) {
            io::Error::new(io::ErrorKind::NotFound, e)
        } else {
            e
        }
    })
}

/// Refuses the signals a program cannot or must not handle through a flag or an iterator.
fn check_handleable(sig: Signal) -> io::Result<()> {
    let why = match sig {
        Signal::KILL | Signal::STOP => "it cannot be caught",
        s if [libc::SIGILL, libc::SIGFPE, libc::SIGSEGV, libc::SIGBUS].contains(&s.as_raw()) => {
            "it reports a fault in the thread that caused it, which cannot continue"
        }
        TIMEOUT_SIGNAL => "ipcbox reserves it for signal::with_timeout",
        _ => return Ok(()),
    };
    Err(invalid_input(format_args!("cannot handle {sig}: {why}")))
}

/// Sets the returned flag to `true` whenever `sig` arrives; the caller swaps it back.
///
/// Wraps [`signal_hook::flag::register`] (`sigaction(2)` with `SA_RESTART`). The handler stays
/// installed for the life of the process (the signal's default action, such as terminating,
/// no longer happens).
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] for `KILL`, `STOP`, the fault signals (`ILL`, `FPE`, `SEGV`,
/// `BUS`) and [`TIMEOUT_SIGNAL`].
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// use ipcbox::signal::{self, Signal};
///
/// let hup = signal::flag(Signal::HUP)?;
/// signal::send(ipcbox::Pid::this(), Signal::HUP)?;
/// assert!(hup.swap(false, Ordering::SeqCst));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn flag(sig: Signal) -> io::Result<Arc<AtomicBool>> {
    check_handleable(sig)?;
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(sig.as_raw(), Arc::clone(&flag))
        .context_with(|| format!("install a handler for {sig}"))?;
    Ok(flag)
}

/// Signals received by this process, collected for a normal thread to handle.
///
/// The handler (`sigaction(2)` with `SA_RESTART`, through `signal-hook`) only sets a flag and
/// writes a byte to a private pipe. [`pending`](Signals::pending), [`wait`](Signals::wait) and
/// [`wait_timeout`](Signals::wait_timeout) read them back in a normal thread. Several arrivals
/// of one signal before it is collected count once, as the kernel merges them too.
///
/// Dropping a `Signals` removes its handlers; the signal is then ignored rather than given its
/// default action back (a limit of `signal-hook`).
pub struct Signals {
    entries: Vec<Entry>,
    wake: pipe::Reader,
    wake_writer: pipe::Writer,
}

struct Entry {
    sig: Signal,
    arrived: Arc<AtomicBool>,
    ids: [SigId; 2],
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field(
                "signals",
                &self.entries.iter().map(|e| e.sig).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The read end of the handlers' wake-up pipe: readable after a signal arrived, until
/// [`Signals::pending`] (or a wait) collects it. For event loops.
impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
}

impl Signals {
    /// Starts collecting `signals`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a signal that cannot be handled (see [`flag`]), the
    /// OS error when out of file descriptors.
    pub fn new(signals: impl IntoIterator<Item = Signal>) -> io::Result<Signals> {
        let (wake, wake_writer) = pipe::Options::new().nonblocking(true).create()?;
        let mut this = Signals {
            entries: Vec::new(),
            wake,
            wake_writer,
        };
        for sig in signals {
            this.add(sig)?;
        }
        Ok(this)
    }

    /// Also collects `sig` (nothing changes if it is collected already).
    ///
    /// # Errors
    ///
    /// As [`Signals::new`].
    pub fn add(&mut self, sig: Signal) -> io::Result<()> {
        check_handleable(sig)?;
        if self.entries.iter().any(|e| e.sig == sig) {
            return Ok(());
        }
        let what = || format!("install a handler for {sig}");
        let arrived = Arc::new(AtomicBool::new(false));
        // signal-hook runs a signal's actions in the order they were registered: the flag is
        // set before the wake-up byte is written, so a waiter woken by the byte sees the flag.
        let flag_id =
            signal_hook::flag::register(sig.as_raw(), Arc::clone(&arrived)).context_with(what)?;
        let writer = match self.wake_writer.try_clone() {
            Ok(w) => w,
            Err(e) => {
                signal_hook::low_level::unregister(flag_id);
                return Err(context(e, what()));
            }
        };
        let pipe_id = match signal_hook::low_level::pipe::register(sig.as_raw(), writer) {
            Ok(id) => id,
            Err(e) => {
                signal_hook::low_level::unregister(flag_id);
                return Err(context(e, what()));
            }
        };
        self.entries.push(Entry {
            sig,
            arrived,
            ids: [flag_id, pipe_id],
        });
        Ok(())
    }

    /// The signals that arrived since the last call, in number order; empty if none.
    /// Never blocks.
    pub fn pending(&mut self) -> Vec<Signal> {
        self.drain_wake();
        self.collect()
    }

    /// Waits until at least one signal arrives and returns those that did, in number order.
    ///
    /// # Errors
    ///
    /// The OS error from `poll(2)` (other than `EINTR`, which it retries).
    pub fn wait(&mut self) -> io::Result<Vec<Signal>> {
        self.wait_until(Deadline::Forever)
    }

    /// As [`wait`](Signals::wait), but returns an empty list once `timeout` has passed with
    /// no signal.
    ///
    /// # Errors
    ///
    /// The OS error from `poll(2)`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Vec<Signal>> {
        self.wait_until(Deadline::after(timeout))
    }

    /// An endless iterator over arriving signals, blocking between them.
    pub fn forever(&mut self) -> impl Iterator<Item = Signal> + '_ {
        let mut batch = Vec::new().into_iter();
        std::iter::from_fn(move || loop {
            if let Some(sig) = batch.next() {
                return Some(sig);
            }
            // poll only fails on a programming error (EFAULT, EINVAL); end the iteration then.
            batch = self.wait().ok()?.into_iter();
        })
    }

    fn wait_until(&mut self, deadline: Deadline) -> io::Result<Vec<Signal>> {
        loop {
            self.drain_wake();
            let got = self.collect();
            if !got.is_empty() {
                return Ok(got);
            }
            if deadline.has_passed() {
                return Ok(got);
            }
            let ts = deadline.poll_timeout();
            let mut fds = [rustix::event::PollFd::new(
                &self.wake,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(context(e, "wait for signals")),
            }
        }
    }

    fn drain_wake(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = rustix::io::read(self.wake.as_fd(), &mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }

    fn collect(&self) -> Vec<Signal> {
        let mut got: Vec<Signal> = self
            .entries
            .iter()
            .filter(|e| e.arrived.swap(false, Ordering::SeqCst))
            .map(|e| e.sig)
            .collect();
        got.sort();
        got
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for entry in &self.entries {
            for id in entry.ids {
                signal_hook::low_level::unregister(id);
            }
        }
    }
}

/// Wakes the parent when a child process exits (`SIGCHLD`), so that it reaps without polling.
///
/// A notification says "some child changed state", not which one, and several exits may
/// merge into one notification. So the caller:
///
/// * creates the `ChildExits` *before* its first check, so that an exit between the check and
///   the wait is not missed;
/// * after each notification, reaps every child it waits for with a non-blocking wait
///   (`waitpid(pid, WNOHANG)`, `Child::try_wait`).
///
/// ```
/// use ipcbox::signal::ChildExits;
///
/// let mut exits = ChildExits::new()?;
/// let mut child = std::process::Command::new("true").spawn()?;
/// let status = loop {
///     if let Some(status) = child.try_wait()? {
///         break status;
///     }
///     exits.wait()?;
/// };
/// assert!(status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ChildExits(Signals);

impl ChildExits {
    /// Starts listening for `SIGCHLD`.
    ///
    /// # Errors
    ///
    /// The OS error when out of file descriptors.
    pub fn new() -> io::Result<ChildExits> {
        Ok(ChildExits(Signals::new([Signal::CHLD])?))
    }

    /// Whether a child changed state since the last call. Never blocks.
    pub fn try_wait(&mut self) -> bool {
        !self.0.pending().is_empty()
    }

    /// Waits until a child changes state.
    ///
    /// # Errors
    ///
    /// The OS error from `poll(2)`.
    pub fn wait(&mut self) -> io::Result<()> {
        self.0.wait().map(drop)
    }

    /// Waits until a child changes state (`true`) or `timeout` passes (`false`).
    ///
    /// # Errors
    ///
    /// The OS error from `poll(2)`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<bool> {
        Ok(!self.0.wait_timeout(timeout)?.is_empty())
    }
}

/// Runs `call` with a deadline: a blocking system call inside it that is still waiting when
/// `timeout` has passed fails, and `with_timeout` returns [`io::ErrorKind::TimedOut`].
///
/// * A per-thread POSIX timer (`timer_create(2)` with `SIGEV_THREAD_ID`) sends
///   [`TIMEOUT_SIGNAL`] to the calling thread at the deadline, then every millisecond until
///   `call` returns.
/// * The signal's handler does nothing and is installed without `SA_RESTART`, so the blocking
///   call fails with `EINTR`. An `EINTR` before the deadline (another signal) calls `call`
///   again.
/// * On every way out, the timer is deleted and the thread's signal mask restored.
///
/// `call` must not retry on `EINTR` itself: `rustix` calls and ipcbox's own ends do not, but
/// `std::fs::File::open` and `std::io::Read::read_exact` do, and would then never time out.
///
/// # Errors
///
/// * [`io::ErrorKind::TimedOut`] ("timed out after …") when the deadline passed while `call`
///   was blocked.
/// * `call`'s own error otherwise.
/// * `AlreadyExists` if the program already handles [`TIMEOUT_SIGNAL`] itself.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use std::time::Duration;
///
/// let (mut reader, _writer) = ipcbox::pipe::new()?;
/// let mut buf = [0u8; 8];
/// let err = ipcbox::signal::with_timeout(Duration::from_millis(20), || reader.read(&mut buf))
///     .unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "alarm")]
#[doc(alias = "timer_create")]
pub fn with_timeout<T>(
    timeout: Duration,
    mut call: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let sig = TIMEOUT_SIGNAL.as_raw();
    sys::signal::install_interrupt_handler(sig)
        .context_with(|| format!("install the timeout handler for {TIMEOUT_SIGNAL}"))?;
    let deadline = Instant::now().checked_add(timeout);
    // Declared before the timer so that it is dropped after it: the timer is deleted (and a
    // pending expiry delivered to the no-op handler) while the signal is still unblocked.
    let _unblocked = Unblocked::new(sig)?;
    let timer = sys::signal::ThreadTimer::for_this_thread(sig)
        .context_with(|| "create a timer for a timeout")?;
    timer
        .arm(timeout, TIMEOUT_REPEAT)
        .context_with(|| format!("arm a timer for {timeout:?}"))?;
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("timed out after {timeout:?}"),
                    ));
                }
            }
            result => return result,
        }
    }
}

/// Keeps a signal unblocked in this thread; blocks it again on drop if it was blocked.
struct Unblocked {
    sig: i32,
    was_blocked: bool,
}

impl Unblocked {
    fn new(sig: i32) -> io::Result<Unblocked> {
        let was_blocked =
            sys::signal::unblock_in_thread(sig).context_with(|| format!("unblock signal {sig}"))?;
        Ok(Unblocked { sig, was_blocked })
    }
}

impl Drop for Unblocked {
    fn drop(&mut self) {
        if self.was_blocked {
            sys::signal::block_in_thread(self.sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_timeout_works_when_the_thread_blocks_the_signal_and_restores_the_mask() {
        std::thread::spawn(|| {
            let sig = TIMEOUT_SIGNAL.as_raw();
            sys::signal::block_in_thread(sig);
            let (mut reader, _writer) = pipe::new().unwrap();
            let mut buf = [0u8; 1];
            let err = with_timeout(Duration::from_millis(5), || {
                std::io::Read::read(&mut reader, &mut buf)
            })
            .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(
                sys::signal::unblock_in_thread(sig).unwrap(),
                "blocked again afterwards"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn with_timeout_passes_results_and_errors_through() {
        assert_eq!(with_timeout(Duration::MAX, || Ok(5)).unwrap(), 5);
        let err = with_timeout(Duration::ZERO, || -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::NotFound))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
