//! `Signal`: a checked signal number with the names `kill -l` prints.

use std::fmt;
use std::io;
use std::str::FromStr;

use crate::error::invalid_input;

/// A signal number, checked to be one the kernel knows (1..=64 on Linux).
///
/// Names follow `kill -l`: [`Signal::from_str`] takes `"TERM"`, `"SIGTERM"`, `"term"`,
/// `"15"`, and `"RTMIN+3"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Standard signals with their names, in number order.
const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The highest signal number on Linux (`SIGRTMAX`).
const MAX: i32 = 64;

impl Signal {
    /// Hangup (`SIGHUP`).
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// Interrupt from the keyboard, Ctrl+C (`SIGINT`).
    pub const INT: Signal = Signal(libc::SIGINT);
    /// Quit from the keyboard (`SIGQUIT`).
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// Abort (`SIGABRT`).
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    /// Kill, cannot be caught (`SIGKILL`).
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// User-defined signal 1 (`SIGUSR1`).
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// Invalid memory reference (`SIGSEGV`).
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    /// User-defined signal 2 (`SIGUSR2`).
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// Write to a pipe with no reader (`SIGPIPE`).
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// Timer expired (`SIGALRM`).
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// Termination request (`SIGTERM`).
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// A child stopped, continued or terminated (`SIGCHLD`).
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// Continue if stopped (`SIGCONT`).
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// Stop, cannot be caught (`SIGSTOP`).
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// Stop from the terminal, Ctrl+Z (`SIGTSTP`).
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// Window size change (`SIGWINCH`).
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// The signal with number `num`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when `num` is not in `1..=64`, or lies between 31 and
    /// `SIGRTMIN` (32 and 33 with glibc): the C library reserves those for its threads.
    pub fn from_raw(num: i32) -> io::Result<Signal> {
        if (1..=31).contains(&num) || (libc::SIGRTMIN()..=MAX).contains(&num) {
            Ok(Signal(num))
        } else {
            Err(invalid_input(format_args!(
                "invalid signal number {num}: expected 1..=31 or {}..={MAX}",
                libc::SIGRTMIN()
            )))
        }
    }

    /// The real-time signal `SIGRTMIN+n`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when `SIGRTMIN+n` is above `SIGRTMAX`.
    pub fn rt(n: u32) -> io::Result<Signal> {
        let num = i64::from(libc::SIGRTMIN()) + i64::from(n);
        match i32::try_from(num) {
            Ok(num) if num <= MAX => Ok(Signal(num)),
            _ => Err(invalid_input(format_args!(
                "invalid real-time signal RTMIN+{n}: the last one is RTMIN+{}",
                MAX - libc::SIGRTMIN()
            ))),
        }
    }

    /// The real-time signal `SIGRTMAX-n`, for constants.
    pub(crate) const fn rtmax_minus(n: i32) -> Signal {
        // SIGRTMIN is 34 or 35 depending on the C library: keeping to the upper half of the
        // real-time range makes the signal exist everywhere, and be named RTMAX-n.
        assert!(0 <= n && n <= 14, "SIGRTMAX-n with n outside 0..=14");
        Signal(MAX - n)
    }

    /// The signal's number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// The name without the `SIG` prefix, as `kill -l` prints it (`"TERM"`, `"RTMIN+2"`).
    pub fn name(self) -> String {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return (*name).to_owned();
        }
        let rtmin = libc::SIGRTMIN();
        let mid = rtmin + (MAX - rtmin) / 2;
        if self.0 == rtmin {
            "RTMIN".to_owned()
        } else if self.0 == MAX {
            "RTMAX".to_owned()
        } else if self.0 <= mid {
            format!("RTMIN+{}", self.0 - rtmin)
        } else {
            format!("RTMAX-{}", MAX - self.0)
        }
    }

    /// Every signal in number order, as `kill -l` lists them.
    pub fn all() -> impl Iterator<Item = Signal> {
        (1..=MAX).filter_map(|n| Signal::from_raw(n).ok())
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl FromStr for Signal {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<Signal> {
        let bad = || invalid_input(format_args!("unknown signal {s:?}"));
        if let Ok(num) = s.parse::<i32>() {
            return Signal::from_raw(num);
        }
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, num)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Ok(Signal(*num));
        }
        let rtmin = libc::SIGRTMIN();
        let (base, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
            (rtmin, rest)
        } else if let Some(rest) = name.strip_prefix("RTMAX") {
            (MAX, rest)
        } else {
            return Err(bad());
        };
        let offset = match rest {
            "" => 0,
            _ => rest.parse::<i32>().map_err(|_| bad())?,
        };
        // The offset comes from the caller's text: an overflow is a bad name, not a panic.
        match base.checked_add(offset) {
            Some(num) if (rtmin..=MAX).contains(&num) => Ok(Signal(num)),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_like_kill_l() {
        for sig in Signal::all() {
            let parsed: Signal = sig.name().parse().unwrap();
            assert_eq!(parsed, sig, "{}", sig.name());
        }
        assert_eq!("sigterm".parse::<Signal>().unwrap(), Signal::TERM);
        assert_eq!("9".parse::<Signal>().unwrap(), Signal::KILL);
        assert_eq!(Signal::KILL.name(), "KILL");
        assert_eq!(Signal::rt(0).unwrap().name(), "RTMIN");
    }

    #[test]
    fn bad_names_and_numbers_are_quoted() {
        let err = "SIGNOPE".parse::<Signal>().unwrap_err();
        assert!(err.to_string().contains("\"SIGNOPE\""), "{err}");
        let err = Signal::from_raw(99).unwrap_err();
        assert!(err.to_string().contains("99"), "{err}");
        assert!(Signal::from_raw(0).is_err());
        assert!(Signal::rt(1000).is_err());
    }

    #[test]
    fn huge_real_time_offsets_are_errors_not_overflows() {
        for name in [
            "RTMIN+2147483647",
            "SIGRTMAX-2147483648",
            "rtmin+2147483600",
        ] {
            let err = name.parse::<Signal>().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
