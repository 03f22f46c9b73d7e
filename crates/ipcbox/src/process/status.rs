//! How a child ended or changed state, and the resources it used.

use std::fmt;
use std::time::Duration;

use crate::signum::Signal;

#[cfg(doc)]
use super::WaitOptions;

/// How a child ended, or changed state: the raw status word of `waitpid(2)`.
///
/// Displays like a shell reports it: `exit code 3`, `killed by SIGKILL`,
/// `killed by SIGSEGV (core dumped)`, `stopped by SIGSTOP`, `continued`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(pub(super) i32);

impl ExitStatus {
    /// The status from a raw `waitpid` status word.
    pub const fn from_raw(raw: i32) -> ExitStatus {
        ExitStatus(raw)
    }

    /// The raw status word.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The exit code, if the child exited (`WIFEXITED`, `WEXITSTATUS`).
    pub fn code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }

    /// Exited with code 0.
    pub fn success(self) -> bool {
        self.code() == Some(0)
    }

    /// The signal that terminated the child (`WIFSIGNALED`, `WTERMSIG`).
    pub fn signal(self) -> Option<Signal> {
        libc::WIFSIGNALED(self.0)
            .then(|| Signal::from_raw(libc::WTERMSIG(self.0)).ok())
            .flatten()
    }

    /// The child was terminated by a signal and dumped core (`WCOREDUMP`). False when core
    /// dumps are disabled (`RLIMIT_CORE` of 0, an unwritable directory).
    pub fn core_dumped(self) -> bool {
        libc::WIFSIGNALED(self.0) && libc::WCOREDUMP(self.0)
    }

    /// The signal that stopped the child (`WIFSTOPPED`, `WSTOPSIG`); reported only to waits
    /// with [`WaitOptions::stopped`].
    pub fn stopped_signal(self) -> Option<Signal> {
        libc::WIFSTOPPED(self.0)
            .then(|| Signal::from_raw(libc::WSTOPSIG(self.0)).ok())
            .flatten()
    }

    /// The child was resumed by `SIGCONT` (`WIFCONTINUED`); reported only to waits with
    /// [`WaitOptions::continued`].
    pub fn continued(self) -> bool {
        libc::WIFCONTINUED(self.0)
    }

    /// The child exited or was killed (as opposed to stopped or continued).
    pub fn terminated(self) -> bool {
        libc::WIFEXITED(self.0) || libc::WIFSIGNALED(self.0)
    }

    /// The number a shell's `$?` shows: the exit code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        if libc::WIFSIGNALED(self.0) {
            128 + libc::WTERMSIG(self.0)
        } else {
            libc::WEXITSTATUS(self.0)
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = *self;
        if let Some(code) = s.code() {
            write!(f, "exit code {code}")
        } else if libc::WIFSIGNALED(s.0) {
            match s.signal() {
                Some(sig) => write!(f, "killed by {sig}")?,
                None => write!(f, "killed by signal {}", libc::WTERMSIG(s.0))?,
            }
            if s.core_dumped() {
                write!(f, " (core dumped)")?;
            }
            Ok(())
        } else if libc::WIFSTOPPED(s.0) {
            match s.stopped_signal() {
                Some(sig) => write!(f, "stopped by {sig}"),
                None => write!(f, "stopped by signal {}", libc::WSTOPSIG(s.0)),
            }
        } else if s.continued() {
            write!(f, "continued")
        } else {
            write!(f, "unknown wait status {:#x}", s.0)
        }
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitStatus({self})")
    }
}

/// Resources a child used, as `wait4(2)` reports them (`struct rusage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceUsage {
    user_time: Duration,
    system_time: Duration,
    max_rss_kib: u64,
    minor_faults: u64,
    major_faults: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(
        u64::try_from(tv.tv_sec).unwrap_or(0),
        u32::try_from(tv.tv_usec).unwrap_or(0).min(999_999) * 1000,
    )
}

impl ResourceUsage {
    pub(super) fn from_raw(ru: &libc::rusage) -> ResourceUsage {
        let n = |v: libc::c_long| u64::try_from(v).unwrap_or(0);
        ResourceUsage {
            user_time: timeval(ru.ru_utime),
            system_time: timeval(ru.ru_stime),
            max_rss_kib: n(ru.ru_maxrss),
            minor_faults: n(ru.ru_minflt),
            major_faults: n(ru.ru_majflt),
            voluntary_switches: n(ru.ru_nvcsw),
            involuntary_switches: n(ru.ru_nivcsw),
        }
    }

    /// CPU time spent in user mode (`ru_utime`).
    pub fn user_time(&self) -> Duration {
        self.user_time
    }

    /// CPU time spent in the kernel (`ru_stime`).
    pub fn system_time(&self) -> Duration {
        self.system_time
    }

    /// Peak resident set size in KiB (`ru_maxrss`).
    pub fn max_rss_kib(&self) -> u64 {
        self.max_rss_kib
    }

    /// Page faults served without I/O (`ru_minflt`).
    pub fn minor_faults(&self) -> u64 {
        self.minor_faults
    }

    /// Page faults that needed I/O (`ru_majflt`).
    pub fn major_faults(&self) -> u64 {
        self.major_faults
    }

    /// Times the child gave up the CPU to wait (`ru_nvcsw`).
    pub fn voluntary_context_switches(&self) -> u64 {
        self.voluntary_switches
    }

    /// Times the child was preempted (`ru_nivcsw`).
    pub fn involuntary_context_switches(&self) -> u64 {
        self.involuntary_switches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_reads_and_prints_like_a_shell() {
        let exited = ExitStatus::from_raw(3 << 8);
        assert_eq!(exited.code(), Some(3));
        assert_eq!(exited.to_string(), "exit code 3");
        assert_eq!(exited.shell_code(), 3);
        assert!(!exited.success());
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(killed.signal(), Some(Signal::KILL));
        assert_eq!(killed.to_string(), "killed by SIGKILL");
        assert_eq!(killed.shell_code(), 137);
        let cored = ExitStatus::from_raw(libc::SIGSEGV | 0x80);
        assert!(cored.core_dumped());
        assert_eq!(cored.to_string(), "killed by SIGSEGV (core dumped)");
        let stopped = ExitStatus::from_raw((libc::SIGSTOP << 8) | 0x7f);
        assert_eq!(stopped.stopped_signal(), Some(Signal::STOP));
        assert!(!stopped.terminated());
        assert_eq!(stopped.to_string(), "stopped by SIGSTOP");
        let cont = ExitStatus::from_raw(0xffff);
        assert!(cont.continued());
        assert_eq!(cont.to_string(), "continued");
    }
}
