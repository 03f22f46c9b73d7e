//! `Pid`: a process ID, the base type every mechanism names processes with.

use std::fmt;
use std::io;

use crate::error::invalid_input;

/// A process ID (a positive `pid_t`), or a process group ID where a function says so.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

impl Pid {
    /// The process ID `raw`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when `raw` is not positive. To `kill(2)` and
    /// `waitpid(2)`, 0 and negative numbers mean "my process group" and "a process group";
    /// ipcbox spells those out instead ([`process::WaitTarget`], [`signal::send_group`]).
    ///
    /// [`process::WaitTarget`]: crate::process::WaitTarget
    /// [`signal::send_group`]: crate::signal::send_group
    pub fn from_raw(raw: i32) -> io::Result<Pid> {
        if raw > 0 {
            Ok(Pid(raw))
        } else {
            Err(invalid_input(format_args!(
                "invalid process ID {raw}: must be positive"
            )))
        }
    }

    /// The ID of the calling process (`getpid`).
    #[doc(alias = "getpid")]
    pub fn this() -> Pid {
        Pid(rustix::process::getpid().as_raw_nonzero().get())
    }

    /// The ID of the calling process's parent (`getppid`); `None` if it has none in this PID
    /// namespace.
    #[doc(alias = "getppid")]
    pub fn parent() -> Option<Pid> {
        rustix::process::getppid().map(|p| Pid(p.as_raw_nonzero().get()))
    }

    /// The number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pid({})", self.0)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_rejects_non_positive_numbers() {
        assert!(Pid::from_raw(0).unwrap_err().to_string().contains('0'));
        assert!(Pid::from_raw(-5).unwrap_err().to_string().contains("-5"));
        assert_eq!(Pid::this().as_raw(), std::process::id() as i32);
        assert!(Pid::parent().is_some());
    }
}
