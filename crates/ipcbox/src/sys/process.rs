//! Process calls that need `unsafe`: `wait4`, `fork`, `_exit`, `pidfd_send_signal`, the code
//! that runs in a spawned child between `fork` and `exec` (`pre_exec`), the steps of
//! `daemonize`, the number of online CPUs, and a generation number that changes in a child
//! after every `fork` (`pthread_atfork`). Raw integers in and out; `process` builds its types
//! on them.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

use super::cvt;
use crate::error::ResultExt;

/// What `wait4` reported: the child's ID, its raw status word and its resource usage.
pub(crate) struct WaitResult {
    pub(crate) pid: i32,
    pub(crate) status: i32,
    pub(crate) usage: libc::rusage,
}

/// `wait4(pid, &status, options, &rusage)`, retried on `EINTR`. `Ok(None)` when `WNOHANG` was
/// given and no child has changed state.
pub(crate) fn wait4(pid: i32, options: i32) -> io::Result<Option<WaitResult>> {
    loop {
        let mut status = 0;
        let mut usage = MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `status` and `usage` are valid for writes of their types for the whole call.
        let ret = unsafe { libc::wait4(pid, &mut status, options, usage.as_mut_ptr()) };
        match cvt(ret) {
            Ok(0) => return Ok(None),
            Ok(pid) => {
                return Ok(Some(WaitResult {
                    pid,
                    status,
                    // SAFETY: zero-initialised, and filled by the kernel on success; every bit
                    // pattern is a valid `rusage` (plain integers).
                    usage: unsafe { usage.assume_init() },
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(pidfd: impl AsFd, sig: i32) -> io::Result<()> {
    // SAFETY: the fd is valid (borrowed) for the call, a null siginfo and zero flags are
    // allowed; the call touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    cvt(ret).map(drop)
}

/// `_exit(code)`: ends the process at once, without running destructors or `atexit` handlers
/// and without flushing stdio buffers.
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; not running destructors is a leak, never UB.
    unsafe { libc::_exit(code) }
}

/// Where `fork` returned: in the parent, with the child's raw pid.
pub(crate) enum ForkResult {
    Parent(i32),
    Child,
}

/// `fork()`, returning the raw pid.
///
/// # Safety
///
/// In the child only the calling thread exists; if the parent had other threads, the child
/// may only call async-signal-safe functions until it execs or exits (see `process::fork`).
pub(crate) unsafe fn fork() -> io::Result<ForkResult> {
    // SAFETY: the caller upholds the rules for what the child may do.
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent(pid)),
    }
}

/// The work a spawned child does between `fork` and `exec`, prepared in the parent so the child
/// allocates nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildSetup {
    /// `PR_SET_PDEATHSIG` signal and the parent's pid (to catch a parent that died before the
    /// `prctl`).
    pub(crate) death_signal: Option<(i32, i32)>,
    /// `(fd in the parent, fd number in the child)`.
    pub(crate) fds: Vec<(RawFd, RawFd)>,
    /// Lowest fd number above every fd involved, for the temporary copies.
    pub(crate) scratch_base: RawFd,
    /// Call `setsid()`.
    pub(crate) new_session: bool,
}

impl ChildSetup {
    pub(crate) fn is_empty(&self) -> bool {
        self.death_signal.is_none() && self.fds.is_empty() && !self.new_session
    }

    /// Registers this setup to run in the child after std has set up stdin/stdout/stderr.
    pub(crate) fn install(self, cmd: &mut std::process::Command) {
        if self.is_empty() {
            return;
        }
        let mut scratch = vec![-1; self.fds.len()];
        // SAFETY: the closure only makes async-signal-safe system calls (setsid, prctl,
        // getppid, kill, fcntl, dup2, close) and writes into `scratch`, which was allocated
        // in the parent; it allocates nothing and takes no locks.
        unsafe {
            cmd.pre_exec(move || self.run_in_child(&mut scratch));
        }
    }

    fn run_in_child(&self, scratch: &mut [RawFd]) -> io::Result<()> {
        if self.new_session {
            // SAFETY: `setsid` takes no arguments and touches no memory.
            cvt(unsafe { libc::setsid() })?;
        }
        if let Some((sig, parent)) = self.death_signal {
            // SAFETY: `prctl(PR_SET_PDEATHSIG, sig)` takes integers only.
            cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) })?;
            // The parent may have died between fork and prctl: then the signal never comes.
            // SAFETY: `getppid` takes no arguments.
            if unsafe { libc::getppid() } != parent {
                // SAFETY: `getpid` and `kill` take integers only.
                cvt(unsafe { libc::kill(libc::getpid(), sig) })?;
            }
        }
        // Two phases so that a target number equal to another source number is not clobbered:
        // first copy every source above all numbers involved, then dup2 onto the targets.
        for (slot, &(src, _)) in scratch.iter_mut().zip(&self.fds) {
            // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` on an fd the parent keeps open until spawn
            // returns; integers only.
            *slot = cvt(unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, self.scratch_base) })?;
        }
        for (&tmp, &(_, dst)) in scratch.iter().zip(&self.fds) {
            // SAFETY: integers only; dup2 clears close-on-exec on `dst`.
            cvt(unsafe { libc::dup2(tmp, dst) })?;
            // SAFETY: `tmp` is our own temporary copy.
            unsafe { libc::close(tmp) };
        }
        Ok(())
    }
}

/// `CommandExt::exec`: replaces the process image; returns only on failure.
pub(crate) fn exec(cmd: &mut std::process::Command) -> io::Error {
    cmd.exec()
}

/// The steps of `daemonize` after the first `fork`, as raw calls that are safe in a child of a
/// multi-threaded parent. Returns in the daemon; every other process `_exit`s.
///
/// # Safety
///
/// As for [`fork`], and the caller's process must be one where continuing to run the caller's
/// code in a forked child is sound (single-threaded).
pub(crate) unsafe fn daemonize(dev_null: &CStr, root: &CStr) -> io::Result<()> {
    let (report_r, report_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let report_w = std::os::fd::IntoRawFd::into_raw_fd(report_w);
    let fail = |step: i32| -> ! {
        let err = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let msg = [step, err];
        // SAFETY: writing 8 bytes from a local array to our own pipe end; async-signal-safe.
        unsafe { libc::write(report_w, msg.as_ptr().cast(), std::mem::size_of_val(&msg)) };
        exit_immediately(1)
    };
    // SAFETY: the caller upholds the fork rules; the child below only makes raw system calls.
    let forked = unsafe { fork() };
    if forked.is_err() {
        // SAFETY: our own write end, not yet shared with any process.
        unsafe { libc::close(report_w) };
    }
    match forked.context_with(|| "daemonize: fork")? {
        ForkResult::Parent(middle) => {
            // Close our write end so EOF arrives when the daemon is set up (or gone).
            // SAFETY: closing our copy of the write end, which nothing else owns here.
            unsafe { libc::close(report_w) };
            let mut buf = [0u8; 8];
            let mut got = 0;
            while got < buf.len() {
                match rustix::io::read(&report_r, &mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let reaped = wait4(middle, 0)?;
            if got == buf.len() {
                let step = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
                let what = [
                    "fork",
                    "setsid",
                    "fork",
                    "chdir to /",
                    "open /dev/null",
                    "dup2",
                ]
                .get(step as usize)
                .copied()
                .unwrap_or("set up");
                return Err(crate::error::context(
                    io::Error::from_raw_os_error(errno),
                    format_args!("daemonize: {what}"),
                ));
            }
            match reaped {
                Some(r) if libc::WIFEXITED(r.status) && libc::WEXITSTATUS(r.status) == 0 => {
                    exit_immediately(0)
                }
                _ => Err(io::Error::other(
                    "daemonize: the intermediate process failed",
                )),
            }
        }
        ForkResult::Child => {
            drop(report_r);
            // SAFETY: integers only.
            if unsafe { libc::setsid() } == -1 {
                fail(1);
            }
            // SAFETY: still in a forked child; only raw calls follow until we return.
            match unsafe { libc::fork() } {
                -1 => fail(2),
                0 => {}
                _ => exit_immediately(0),
            }
            // SAFETY: a valid NUL-terminated path.
            if unsafe { libc::chdir(root.as_ptr()) } == -1 {
                fail(3);
            }
            // SAFETY: a valid NUL-terminated path; integers otherwise.
            let null = unsafe { libc::open(dev_null.as_ptr(), libc::O_RDWR) };
            if null == -1 {
                fail(4);
            }
            for fd in 0..3 {
                // SAFETY: integers only.
                if unsafe { libc::dup2(null, fd) } == -1 {
                    fail(5);
                }
            }
            if null > 2 {
                // SAFETY: our own fd from `open` above.
                unsafe { libc::close(null) };
            }
            // SAFETY: our copy of the report pipe's write end; the reader sees EOF = success.
            unsafe { libc::close(report_w) };
            Ok(())
        }
    }
}

/// The number of CPUs online in the system (`sysconf(_SC_NPROCESSORS_ONLN)`), 1 if unknown.
///
/// Not this process's affinity mask: a peer holding a lock may run on another CPU even when
/// the caller is pinned to one.
pub(crate) fn online_cpus() -> usize {
    // SAFETY: `sysconf` takes no pointers and only reads system state.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// This process's lock owner word once made (0: not yet, or forked since).
static MY_LOCK_WORD: AtomicU32 = AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    MY_LOCK_WORD.store(0, Ordering::Relaxed);
}

/// A number that changes in a child after every `fork` (a `pthread_atfork` child handler), so a
/// handle inherited across fork can tell cheaply that it now lives in another process.
pub(crate) fn fork_generation() -> u64 {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the handler only increments an atomic, which is async-signal-safe as a
        // post-fork child handler must be; it is registered once.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// The word naming this process as the owner of a `PidLock`, made by `make(pid)` (never 0)
/// once per process, so the locks need no system call each time (`getpid` is one; they ask
/// twice per operation). Forgotten in a child after `fork` by the same handler as
/// [`fork_generation`], which is installed before the first lookup.
pub(crate) fn my_lock_word(make: impl FnOnce(u32) -> u32) -> u32 {
    fork_generation();
    match MY_LOCK_WORD.load(Ordering::Relaxed) {
        0 => {
            let word = make(std::process::id());
            MY_LOCK_WORD.store(word, Ordering::Relaxed);
            word
        }
        word => word,
    }
}
