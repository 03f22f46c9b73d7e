//! Signal calls that rustix leaves to the C library: dispositions (`sigaction`), `kill`, the
//! calling thread's signal mask, and POSIX timers that signal one thread.

use std::io;
use std::mem::MaybeUninit;
use std::sync::Once;
use std::time::Duration;

use super::cvt;

/// Sets `SIGPIPE` to ignored if it is still at its default (terminate the process), once.
///
/// A write to a pipe or socket with no reader then fails with `EPIPE` instead of killing the
/// process. A disposition the program chose itself (a handler, or already ignored) is kept.
pub(crate) fn ignore_sigpipe_if_default() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| result = ignore_if_default(libc::SIGPIPE));
    result
}

fn ignore_if_default(sig: libc::c_int) -> io::Result<()> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is valid for writes of a `sigaction`.
    cvt(unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so it filled `old`; zeroed is also a valid `sigaction`.
    let old = unsafe { old.assume_init() };
    if old.sa_sigaction == libc::SIG_DFL {
        // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
        let mut new: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        new.sa_sigaction = libc::SIG_IGN;
        // SAFETY: `new` is a valid, initialised action; a null old pointer is allowed.
        cvt(unsafe { libc::sigaction(sig, &new, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// Sends `sig` to `pid` (a process when positive, the process group `-pid` when negative), or
/// only checks that it could when `sig` is 0.
pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers and touches no memory of ours.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// The handler of the timeout signal: it does nothing. Its only effect is that the blocking
/// system call the thread is in returns `EINTR` (it is installed without `SA_RESTART`).
extern "C" fn interrupt_only(_sig: libc::c_int) {}

/// Installs [`interrupt_only`] for `sig` without `SA_RESTART`, once per process.
///
/// # Errors
///
/// `AlreadyExists` when the program already handles or ignores `sig` itself: taking the signal
/// over would break that program's own use of it.
pub(crate) fn install_interrupt_handler(sig: libc::c_int) -> io::Result<()> {
    static RESULT: std::sync::OnceLock<Result<(), (io::ErrorKind, String)>> =
        std::sync::OnceLock::new();
    let result = RESULT
        .get_or_init(|| install_interrupt_handler_now(sig).map_err(|e| (e.kind(), e.to_string())));
    result
        .clone()
        .map_err(|(kind, msg)| io::Error::new(kind, msg))
}

fn install_interrupt_handler_now(sig: libc::c_int) -> io::Result<()> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is valid for writes of a `sigaction`.
    cvt(unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so it filled `old`; zeroed is also a valid `sigaction`.
    let old = unsafe { old.assume_init() };
    if old.sa_sigaction != libc::SIG_DFL {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "signal {sig} already has a handler or is ignored; it is reserved for timeouts"
            ),
        ));
    }
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
    let mut new: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    let handler: extern "C" fn(libc::c_int) = interrupt_only;
    new.sa_sigaction = handler as libc::sighandler_t;
    // No SA_RESTART: the interrupted call must return EINTR rather than be restarted.
    new.sa_flags = 0;
    // SAFETY: `new` is a valid action whose handler is async-signal-safe (it does nothing).
    cvt(unsafe { libc::sigaction(sig, &new, std::ptr::null_mut()) })?;
    Ok(())
}

/// Unblocks `sig` in the calling thread; returns whether it was blocked before.
pub(crate) fn unblock_in_thread(sig: libc::c_int) -> io::Result<bool> {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    let mut old = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: both sets are valid for writes; sigemptyset initialises `set`, sigaddset on an
    // initialised set with a valid signal number cannot fail in a way that leaves it invalid.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), sig);
    }
    // SAFETY: `set` is initialised above; `old` is valid for writes.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, set.as_ptr(), old.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_sigmask succeeded and filled `old`.
    let was = unsafe { libc::sigismember(old.as_ptr(), sig) };
    Ok(was == 1)
}

/// Blocks `sig` in the calling thread again (undoes [`unblock_in_thread`]).
pub(crate) fn block_in_thread(sig: libc::c_int) {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is valid for writes and initialised by sigemptyset before sigaddset.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), sig);
    }
    // SAFETY: `set` is initialised; a null old set is allowed. It cannot fail with valid args.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) };
}

/// A POSIX timer (`timer_create`, `CLOCK_MONOTONIC`) that delivers a signal to one thread
/// (`SIGEV_THREAD_ID`); deleted on drop.
pub(crate) struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    /// A disarmed timer that will send `sig` to the calling thread.
    pub(crate) fn for_this_thread(sig: libc::c_int) -> io::Result<ThreadTimer> {
        // SAFETY: an all-zero `sigevent` is a valid value; the fields that matter are set below.
        let mut ev: libc::sigevent = unsafe { MaybeUninit::zeroed().assume_init() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = sig;
        ev.sigev_notify_thread_id = rustix::thread::gettid().as_raw_nonzero().get();
        let mut id = MaybeUninit::<libc::timer_t>::zeroed();
        // SAFETY: `ev` is initialised, `id` is valid for writes of a timer_t.
        cvt(unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, id.as_mut_ptr()) })?;
        // SAFETY: timer_create succeeded and wrote the id.
        Ok(ThreadTimer(unsafe { id.assume_init() }))
    }

    /// Arms the timer: first expiry after `first`, then every `every`.
    pub(crate) fn arm(&self, first: Duration, every: Duration) -> io::Result<()> {
        let ts = |d: Duration| libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
        };
        let mut first = ts(first);
        if first.tv_sec == 0 && first.tv_nsec == 0 {
            // A zero value would disarm the timer; expire at once instead.
            first.tv_nsec = 1;
        }
        let spec = libc::itimerspec {
            it_interval: ts(every),
            it_value: first,
        };
        // SAFETY: `self.0` is a live timer of this process; `spec` is initialised; a null old
        // value is allowed.
        cvt(unsafe { libc::timer_settime(self.0, 0, &spec, std::ptr::null_mut()) })?;
        Ok(())
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a live timer created by timer_create and deleted only here.
        unsafe { libc::timer_delete(self.0) };
    }
}
