//! Waiting for any child or a process group, reaping, the child subreaper.

use std::fmt;
use std::io;

use super::{ExitStatus, Pid, ResourceUsage};
use crate::error::{context, ResultExt};
use crate::sys;

#[cfg(doc)]
use super::Child;

/// Which children a wait is about (the `pid` argument of `waitpid(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTarget {
    /// Any child (`-1`).
    Any,
    /// This one child.
    Pid(Pid),
    /// Any child in the caller's process group (`0`).
    SameGroup,
    /// Any child in process group `pgid` (`-pgid`).
    Group(Pid),
}

impl WaitTarget {
    fn raw(self) -> i32 {
        match self {
            WaitTarget::Any => -1,
            WaitTarget::Pid(p) => p.as_raw(),
            WaitTarget::SameGroup => 0,
            WaitTarget::Group(g) => -g.as_raw(),
        }
    }
}

impl fmt::Display for WaitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitTarget::Any => write!(f, "any child"),
            WaitTarget::Pid(p) => write!(f, "child {p}"),
            WaitTarget::SameGroup => write!(f, "a child in our process group"),
            WaitTarget::Group(g) => write!(f, "a child in process group {g}"),
        }
    }
}

/// A child that changed state, as [`WaitOptions::wait`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// Which child.
    pub pid: Pid,
    /// What happened to it.
    pub status: ExitStatus,
    /// Its resource usage (so far, for a stop or continue).
    pub usage: ResourceUsage,
}

impl Waited {
    fn from_raw(r: sys::process::WaitResult) -> io::Result<Waited> {
        Ok(Waited {
            pid: Pid::from_raw(r.pid)?,
            status: ExitStatus(r.status),
            usage: ResourceUsage::from_raw(&r.usage),
        })
    }
}

/// Which state changes a wait reports, besides termination: the flags of `waitpid(2)`.
///
/// ```
/// use ipcbox::process::{Command, WaitOptions, WaitTarget};
///
/// let child = Command::new("true").spawn()?;
/// let got = WaitOptions::new().wait(WaitTarget::Pid(child.pid()))?;
/// assert_eq!(got.pid, child.pid());
/// assert!(got.status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct WaitOptions {
    stopped: bool,
    continued: bool,
}

impl WaitOptions {
    /// Termination only.
    pub fn new() -> WaitOptions {
        WaitOptions::default()
    }

    /// Also report children stopped by a signal (`WUNTRACED`).
    #[doc(alias = "WUNTRACED")]
    pub fn stopped(&mut self, on: bool) -> &mut WaitOptions {
        self.stopped = on;
        self
    }

    /// Also report stopped children resumed by `SIGCONT` (`WCONTINUED`).
    #[doc(alias = "WCONTINUED")]
    pub fn continued(&mut self, on: bool) -> &mut WaitOptions {
        self.continued = on;
        self
    }

    pub(super) fn flags(&self) -> i32 {
        let mut flags = 0;
        if self.stopped {
            flags |= libc::WUNTRACED;
        }
        if self.continued {
            flags |= libc::WCONTINUED;
        }
        flags
    }

    /// Waits until a child of `target` changes state (`wait4`); a terminated child is reaped.
    ///
    /// There is no timeout form for [`WaitTarget::Any`] and groups: Linux has no pollable
    /// handle for "any child". Use [`Child::wait_timeout`] for one child.
    ///
    /// # Errors
    ///
    /// `ECHILD` (the message names the target) when there is no such child.
    #[doc(alias = "waitpid")]
    #[doc(alias = "wait4")]
    pub fn wait(&self, target: WaitTarget) -> io::Result<Waited> {
        loop {
            if let Some(w) = self.wait_flags(target, self.flags())? {
                return Ok(w);
            }
        }
    }

    /// Like [`wait`](WaitOptions::wait) but returns `Ok(None)` at once if no child of
    /// `target` has changed state (`WNOHANG`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](WaitOptions::wait).
    pub fn try_wait(&self, target: WaitTarget) -> io::Result<Option<Waited>> {
        self.wait_flags(target, self.flags() | libc::WNOHANG)
    }

    fn wait_flags(&self, target: WaitTarget, flags: i32) -> io::Result<Option<Waited>> {
        sys::process::wait4(target.raw(), flags)
            .context_with(|| format!("wait for {target}"))?
            .map(Waited::from_raw)
            .transpose()
    }
}

/// Waits for any child of this process to terminate and reaps it (`wait4(-1)`); `Ok(None)`
/// when this process has no children left (`ECHILD`), so that
/// `while let Some(done) = process::wait_any()? { .. }` reaps every child. See
/// [Who reaps whom](super#who-reaps-whom).
///
/// # Errors
///
/// A wait error other than `ECHILD`.
#[doc(alias = "wait")]
pub fn wait_any() -> io::Result<Option<Waited>> {
    match sys::process::wait4(-1, 0) {
        Ok(got) => got.map(Waited::from_raw).transpose(),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(None),
        Err(e) => Err(context(e, "wait for any child")),
    }
}

/// Reaps every child that has terminated, without blocking (`wait4(-1, WNOHANG)` until
/// nothing is left); an empty list when none has. See [Who reaps whom](super#who-reaps-whom).
///
/// # Errors
///
/// A wait error other than `ECHILD` (which just means there are no children).
pub fn reap_all() -> io::Result<Vec<Waited>> {
    let mut all = Vec::new();
    loop {
        match sys::process::wait4(-1, libc::WNOHANG) {
            Ok(Some(got)) => all.push(Waited::from_raw(got)?),
            Ok(None) => return Ok(all),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(all),
            Err(e) => return Err(context(e, "reap finished children")),
        }
    }
}

/// Makes this process a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): orphaned
/// descendants are re-parented to it instead of to init, so it can reap them (with
/// [`wait_any`] or [`reap_all`]). Process-wide.
///
/// # Errors
///
/// The OS error from `prctl`.
#[doc(alias = "PR_SET_CHILD_SUBREAPER")]
pub fn set_child_subreaper(on: bool) -> io::Result<()> {
    let arg = on.then(rustix::process::getpid);
    rustix::process::set_child_subreaper(arg).context_with(|| "set child subreaper")
}

/// Whether this process is a child subreaper (`prctl(PR_GET_CHILD_SUBREAPER)`).
///
/// # Errors
///
/// The OS error from `prctl`.
pub fn is_child_subreaper() -> io::Result<bool> {
    Ok(rustix::process::child_subreaper()
        .context_with(|| "query child subreaper")?
        .is_some())
}
