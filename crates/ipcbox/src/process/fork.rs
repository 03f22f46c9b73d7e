//! `fork`, `daemonize` and the way a forked child ends.

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
/// The child has only the calling thread. Other threads of this process (a test harness, a
/// runtime, a logger) may have held locks — in the allocator, in stdio, in any `Mutex` — that
/// stay locked forever in the child. So:
///
/// * The child of a multi-threaded process does only async-signal-safe work (see
///   [signal-safety(7)](https://man7.org/linux/man-pages/man7/signal-safety.7.html)): no
///   allocation, no `println!`, no locks. Then it calls `exec` or [`exit_immediately`].
/// * The child of a single-threaded process may run any code.
/// * Either way the child ends with [`exit_immediately`], not by returning, so that it does
///   not run the parent's destructors or flush its buffers a second time.
///
/// # Errors
///
/// `EAGAIN` (process limit) or `ENOMEM`.
///
/// # Examples
///
/// ```
/// use ipcbox::process::{self, Fork};
///
/// // SAFETY: the child calls nothing but `exit_immediately`.
/// # #[allow(unsafe_code)]
/// match unsafe { process::fork()? } {
///     Fork::Child => process::exit_immediately(7),
///     Fork::Parent(mut child) => assert_eq!(child.wait()?.code(), Some(7)),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
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
/// The classic double `fork`:
///
/// * A first child calls `setsid` (a new session, no controlling terminal), forks the daemon
///   and exits at once. The daemon is re-parented to init (or a subreaper) and, not being a
///   session leader, can never acquire a terminal.
/// * The daemon changes to `/` and connects stdin, stdout and stderr to `/dev/null`. It keeps
///   its other fds and the umask.
/// * The original process waits until the daemon is set up, then exits with code 0 (`_exit`).
///
/// # Safety
///
/// The daemon continues running the caller's code in a forked child, so the calling process
/// must be single-threaded (see [`fork`]).
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
