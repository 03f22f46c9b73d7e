//! `Child`: a child process this process waits for, signals and reaps.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, PidfdFlags};

use super::{ExitStatus, Pid, ResourceUsage, WaitOptions};
use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::pipe;
use crate::signum::Signal;
use crate::sys;

#[cfg(doc)]
use super::{reap_all, Stdio};

/// A child process of this process, which this handle reaps.
///
/// Holds a pidfd (`pidfd_open`) for signals and timed waits; it is also what
/// [`AsFd`] gives, for an event loop (readable when the child has exited).
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    reaped: Option<(ExitStatus, ResourceUsage)>,
    kill_on_drop: bool,
    /// The writing end of the child's stdin, if it was [`Stdio::piped`].
    pub stdin: Option<pipe::Writer>,
    /// The reading end of the child's stdout, if it was [`Stdio::piped`].
    pub stdout: Option<pipe::Reader>,
    /// The reading end of the child's stderr, if it was [`Stdio::piped`].
    pub stderr: Option<pipe::Reader>,
}

impl Child {
    /// Takes charge of `pid`, an unreaped child of this process.
    pub(crate) fn adopt(pid: Pid, kill_on_drop: bool) -> io::Result<Child> {
        let rpid =
            rustix::process::Pid::from_raw(pid.as_raw()).ok_or_else(|| invalid_input("pid 0"))?;
        let pidfd = match pidfd_open(rpid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                // Still our unreaped child, so the pid cannot have been reused.
                let _ = sys::signal::kill(pid.as_raw(), libc::SIGKILL);
                let _ = sys::process::wait4(pid.as_raw(), 0);
                return Err(context(e, format_args!("pidfd_open for child {pid}")));
            }
        };
        Ok(Child {
            pid,
            pidfd,
            reaped: None,
            kill_on_drop,
            stdin: None,
            stdout: None,
            stderr: None,
        })
    }

    /// The child's process ID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn wait_raw(&mut self, options: i32) -> io::Result<Option<(ExitStatus, ResourceUsage)>> {
        if let Some(done) = self.reaped {
            return Ok(Some(done));
        }
        let got = sys::process::wait4(self.pid.as_raw(), options)
            .context_with(|| format!("wait for child {}", self.pid))?;
        Ok(got.map(|r| {
            let done = (ExitStatus(r.status), ResourceUsage::from_raw(&r.usage));
            if done.0.terminated() {
                self.reaped = Some(done);
            }
            done
        }))
    }

    /// Waits until the child terminates and reaps it (`wait4(pid, 0)`). Closes nothing: drop
    /// [`stdin`](Child::stdin) first if the child reads it to the end. Once reaped, every wait
    /// returns the same status.
    ///
    /// # Errors
    ///
    /// `ECHILD` if the child was reaped by someone else (e.g. [`reap_all`]).
    #[doc(alias = "waitpid")]
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        Ok(self.wait_with_usage()?.0)
    }

    /// Like [`wait`](Child::wait), and also returns the child's resource usage (`wait4`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    #[doc(alias = "wait4")]
    pub fn wait_with_usage(&mut self) -> io::Result<(ExitStatus, ResourceUsage)> {
        loop {
            if let Some(done) = self.wait_raw(0)? {
                return Ok(done);
            }
        }
    }

    /// Reaps the child if it has terminated, else returns `Ok(None)` at once (`WNOHANG`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(self.wait_raw(libc::WNOHANG)?.map(|d| d.0))
    }

    /// Waits at most `timeout` for the child to terminate: `Ok(None)` if it is still running
    /// then. Sleeps in `poll` on the child's pidfd (woken by its exit), never in a loop.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Deadline::after(timeout);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if deadline.has_passed() {
                return Ok(None);
            }
            let mut pfd = [PollFd::new(&self.pidfd, PollFlags::IN)];
            match poll(&mut pfd, deadline.poll_timeout().as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(context(e, format_args!("poll pidfd of child {}", self.pid))),
            }
        }
    }

    /// Waits for a state change [`WaitOptions`] asks about: termination, and a stop or a
    /// continue if enabled. A termination reaps the child.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn wait_with(&mut self, options: &WaitOptions) -> io::Result<ExitStatus> {
        loop {
            if let Some(done) = self.wait_raw(options.flags())? {
                return Ok(done.0);
            }
        }
    }

    /// Like [`wait_with`](Child::wait_with) but returns `Ok(None)` at once if nothing changed.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn try_wait_with(&mut self, options: &WaitOptions) -> io::Result<Option<ExitStatus>> {
        Ok(self.wait_raw(options.flags() | libc::WNOHANG)?.map(|d| d.0))
    }

    /// Sends `signal` to the child (`pidfd_send_signal`).
    ///
    /// # Errors
    ///
    /// An error naming the pid when the child has already been reaped or the signal cannot be
    /// sent.
    #[doc(alias = "kill")]
    #[doc(alias = "pidfd_send_signal")]
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.reaped.is_some() {
            return Err(invalid_input(format_args!(
                "cannot send {signal} to child {}: it was already reaped",
                self.pid
            )));
        }
        sys::process::pidfd_send_signal(&self.pidfd, signal.as_raw())
            .context_with(|| format!("send {signal} to child {}", self.pid))
    }

    /// Kills the child with `SIGKILL`; does nothing if it has already exited. Does not reap:
    /// call [`wait`](Child::wait) afterwards.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    pub fn kill(&self) -> io::Result<()> {
        if self.reaped.is_some() {
            return Ok(());
        }
        match sys::process::pidfd_send_signal(&self.pidfd, libc::SIGKILL) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r.context_with(|| format!("kill child {}", self.pid)),
        }
    }
}

impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop && self.reaped.is_none() {
            let _ = self.kill();
            let _ = self.wait();
        }
    }
}
