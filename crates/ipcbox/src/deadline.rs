//! When a call that may block gives up: the one deadline behind every mechanism's blocking,
//! `try_`, `_timeout` and `_deadline` forms.

use std::time::{Duration, Instant};

/// How long a call may wait.
///
/// - [`Now`](Deadline::Now): look once, never wait (the `try_` forms).
/// - [`At`](Deadline::At): wait until that instant (the `_timeout` and `_deadline` forms).
/// - [`Forever`](Deadline::Forever): wait as long as it takes (the blocking forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    Now,
    At(Instant),
    Forever,
}

impl Deadline {
    /// `timeout` from now, or [`Forever`](Deadline::Forever) when that instant is too far away
    /// to represent.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(at) => Deadline::At(at),
            None => Deadline::Forever,
        }
    }

    /// [`after`](Deadline::after) the timeout, or [`Forever`](Deadline::Forever) without one.
    pub(crate) fn from_timeout(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::Forever, Deadline::after)
    }

    /// How long the caller may still wait: `None` for ever, `Some(Duration::ZERO)` once the
    /// deadline has passed (and always for [`Now`](Deadline::Now)).
    ///
    /// This is the timeout to hand to `poll`, `futex` and friends, where `None` means "no
    /// timeout" and zero means "do not sleep".
    pub(crate) fn remaining(self) -> Option<Duration> {
        match self {
            Deadline::Now => Some(Duration::ZERO),
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
            Deadline::Forever => None,
        }
    }

    /// Whether the caller may wait no longer.
    pub(crate) fn has_passed(self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// The next sleep of a caller that wakes at least every `max` (to look at its peers, say):
    /// `max` or what is left if less, `None` once the deadline has passed.
    pub(crate) fn slice(self, max: Duration) -> Option<Duration> {
        match self.remaining() {
            None => Some(max),
            Some(left) if left.is_zero() => None,
            Some(left) => Some(left.min(max)),
        }
    }

    /// [`remaining`](Deadline::remaining) as the timeout of `poll(2)`: `None` for ever.
    pub(crate) fn poll_timeout(self) -> Option<rustix::time::Timespec> {
        self.remaining().map(|left| rustix::time::Timespec {
            tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: left.subsec_nanos().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_never_waits_and_forever_has_no_timeout() {
        assert_eq!(Deadline::Now.remaining(), Some(Duration::ZERO));
        assert!(Deadline::Now.has_passed());
        assert_eq!(Deadline::Now.slice(Duration::from_secs(1)), None);
        assert_eq!(Deadline::Forever.remaining(), None);
        assert!(!Deadline::Forever.has_passed());
        let max = Duration::from_millis(100);
        assert_eq!(Deadline::Forever.slice(max), Some(max));
        assert!(Deadline::Forever.poll_timeout().is_none());
    }

    #[test]
    fn a_deadline_in_the_past_has_passed_and_one_ahead_caps_the_slice() {
        let past = Deadline::At(Instant::now());
        assert!(past.has_passed());
        assert_eq!(past.slice(Duration::from_secs(1)), None);
        let ahead = Deadline::after(Duration::from_secs(3600));
        assert!(!ahead.has_passed());
        let max = Duration::from_millis(100);
        assert_eq!(ahead.slice(max), Some(max));
        let left = ahead.remaining().unwrap();
        assert!(left > Duration::from_secs(3000), "{left:?}");
    }

    #[test]
    fn an_unrepresentable_timeout_waits_for_ever() {
        assert_eq!(Deadline::after(Duration::MAX), Deadline::Forever);
        assert_eq!(Deadline::from_timeout(None), Deadline::Forever);
        assert!(matches!(
            Deadline::from_timeout(Some(Duration::ZERO)),
            Deadline::At(_)
        ));
    }
}
