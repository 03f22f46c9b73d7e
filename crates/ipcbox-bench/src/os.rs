//! The bench's processes: `fork` for the peer, through [`ipcbox::process::fork`] with its
//! precondition checked at run time (the process must have exactly one thread), the peer's
//! end, and the `SIGPIPE` disposition.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use anyhow::{bail, Context};
use ipcbox::process::{self, ExitStatus};

/// Which side of a [`fork`] the caller is on.
#[derive(Debug)]
pub enum Fork {
    /// The original process, with a handle on the new child.
    Parent(Child),
    /// The new child process. It must end in [`run_child`] and never return to the caller's
    /// caller: the stack above it belongs to the parent's bench loop.
    Child,
}

/// A forked peer process. Dropping it unreaped kills and reaps it, so an error in the parent
/// never leaves a stray peer behind.
#[derive(Debug)]
pub struct Child(process::Child);

/// Forks the process (`fork(2)`).
///
/// # Errors
///
/// When the process has more than one thread (a child of a multi-threaded process may only do
/// async-signal-safe work, and the bench's peer allocates), or when `fork` fails.
#[allow(unsafe_code)]
pub fn fork() -> anyhow::Result<Fork> {
    let threads = thread_count().context("count the bench's threads before fork")?;
    if threads != 1 {
        bail!("cannot fork the benchmark peer: the bench process has {threads} threads, it must have exactly one");
    }
    // Whatever the std buffers hold would otherwise be in both processes' memory; the child
    // never flushes (it ends with `_exit`) but an empty buffer makes that obviously true.
    let _ = io::stdout().flush();
    // SAFETY: `process::fork`'s rules hold. The process has exactly one thread (checked above;
    // nothing between the check and this call starts one), so the child is a complete copy of
    // a consistent process: no lock, allocator state or std-internal structure is owned by a
    // thread missing in the child, and the child may run ordinary Rust code, allocation
    // included. And the child ends in `run_child`, with `exit_immediately`, never by returning.
    match unsafe { process::fork() }.context("fork the benchmark peer")? {
        process::Fork::Child => Ok(Fork::Child),
        process::Fork::Parent(child) => Ok(Fork::Parent(Child(child))),
    }
}

/// Runs the child's work and ends the child process with `_exit`: status 0 on success, 1
/// (after printing the error to stderr) on an error, 101 on a panic. Never returns, so no
/// destructor of the parent's state runs twice and no stdout buffer is flushed twice.
pub fn run_child(work: impl FnOnce() -> anyhow::Result<()>) -> ! {
    let code = match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            eprintln!("ipcbox-bench: peer process: {err:#}");
            1
        }
        Err(_) => 101,
    };
    // No atexit handler or destructor runs: the parent's state is not ours to clean up.
    process::exit_immediately(code)
}

impl Child {
    /// Waits for the child and checks that it exited with status 0.
    ///
    /// # Errors
    ///
    /// The wait error, or a description of how the peer ended when it did not succeed.
    pub fn wait(mut self) -> anyhow::Result<()> {
        let status = self.0.wait().context("wait for the benchmark peer")?;
        if !status.success() {
            bail!("benchmark peer (pid {}) {}", self.0.pid(), describe(status));
        }
        Ok(())
    }

    /// How the child ended, if it has ended without success; `None` while it runs or after it
    /// exited with status 0 (a later [`wait`](Child::wait) still reports its status).
    ///
    /// # Errors
    ///
    /// The wait error.
    pub fn failed(&mut self) -> anyhow::Result<Option<String>> {
        let status = self.0.try_wait().context("look at the benchmark peer")?;
        Ok(status
            .filter(|s| !s.success())
            .map(|s| format!("(pid {}) {}", self.0.pid(), describe(s))))
    }

    /// Kills the child with `SIGKILL` (if it still runs), reaps it and describes how it ended.
    pub fn kill(mut self) -> String {
        let _ = self.0.kill();
        match self.0.wait() {
            Ok(status) => describe(status),
            Err(err) => format!("could not be reaped: {err:#}"),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Both do nothing for a child already reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(sig) = status.signal() {
        format!("was killed by {sig}")
    } else {
        format!("ended with wait status {:#x}", status.raw())
    }
}

fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Ignores `SIGPIPE` so that a peer that dies makes a write fail with `EPIPE` (reported as an
/// error) instead of killing the bench. ipcbox's pipes do the same; raw rows must not depend on
/// whether an ipcbox pipe was created first.
///
/// # Errors
///
/// The OS error from `signal`.
#[allow(unsafe_code)]
pub fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: `SIG_IGN` installs no handler function, so no code of ours ever runs in signal
    // context; `signal` itself is safe to call at any time.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    if previous == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
