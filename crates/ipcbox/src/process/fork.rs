use std::io;

use super::{Child, Pid};
use crate::error::ResultExt;
use crate::sys;
use crate::sys::process::ForkResult;

/// Where [`fork`] returned.
#[derive(Debug)]
pub enum Fork {
    /// In the parent, with a handle on the new child.
    Parent(Child),
    /// In the child.
    Child,
}

/// Creates a child process that is a copy of this one (`fork(2)`).
///
/// # Safety
///
/// The child has only the calling thread. If this process has other threads (a test harness,
/// a runtime, a logger), they may have held locks — in the allocator, in stdio, in any
/// `Mutex` — that stay locked forever in the child. So, in the child of a multi-threaded
/// process, do only async-signal-safe work (see
/// [signal-safety(7)](https://man7.org/linux/man-pages/man7/signal-safety.7.html)): no
/// allocation, no `println!`, no locks; then `exec` or [`exit_immediately`]. A
/// single-threaded process's child may run any code. Either way the child should end with
/// [`exit_immediately`], not by returning, so it does not run the parent's destructors and
/// flush its buffers a second time.
///
/// [`exit_immediately`]: crate::process::exit_immediately
///
/// # Errors
///
/// `EAGAIN` (process limit) or `ENOMEM`.
#[allow(unsafe_code)]
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller upholds the rules above.
    match unsafe { sys::process::fork() }.context_with(|| "fork")? {
        ForkResult::Child => Ok(Fork::Child),
        ForkResult::Parent(pid) => Ok(Fork::Parent(Child::adopt(Pid::from_raw(pid)?, false)?)),
    }
}

/// Ends this process at once with `code` (`_exit(2)`): no destructors, no `atexit` handlers,
/// no flushing of stdio buffers. The way for a forked child to end.
#[doc(alias = "_exit")]
pub fn exit_immediately(code: i32) -> ! {
    sys::process::exit_immediately(code)
}

/// Turns this process into a daemon and returns in the daemon only.
///
/// Forks; the child calls `setsid` (a new session, no controlling terminal) and forks again
/// so the daemon is not a session leader and can never acquire a terminal; the daemon changes
/// to `/` and connects stdin, stdout and stderr to `/dev/null`. The original process waits
/// until the daemon is set up, then exits with code 0 (`_exit`); the middle one exits at once,
/// so the daemon is re-parented to init (or a subreaper). Other fds and the umask are kept.
///
/// # Safety
///
/// The daemon continues running the caller's code in a forked child, so the calling process
/// must be single-threaded (see [`fork`](crate::process::fork)).
///
/// # Errors
///
/// In the original process, when a step fails (the message names it); the daemon is then not
/// running.
#[doc(alias = "daemon")]
#[allow(unsafe_code)]
pub unsafe fn daemonize() -> io::Result<()> {
    // SAFETY: the caller guarantees a single-threaded process.
    unsafe { sys::process::daemonize(c"/dev/null", c"/") }
}
