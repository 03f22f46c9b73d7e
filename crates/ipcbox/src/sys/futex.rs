//! Futex waits and wakes on words in shared memory (`FUTEX_WAIT` / `FUTEX_WAKE`, not private:
//! the waiters and wakers are different processes). Every primitive in shared memory (`sync`,
//! `queue`) sleeps and wakes through these two calls.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

/// Sleeps while `word` holds `expected`, at most `timeout` (forever if `None`).
///
/// Returns `Ok(false)` when `timeout` elapsed, `Ok(true)` when woken, interrupted by a signal,
/// or when the word no longer held `expected`: callers re-check their condition in a loop, so
/// all of those mean "look again".
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<bool> {
    let ts = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) | Err(Errno::AGAIN | Errno::INTR) => Ok(true),
        Err(Errno::TIMEDOUT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Wakes up to `n` processes sleeping on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    // A failed wake (EFAULT cannot happen on a live `&AtomicU32`) leaves sleepers to their
    // time-sliced re-checks, so the error is not worth reporting.
    let _ = futex::wake(word, futex::Flags::empty(), n.min(i32::MAX as u32));
}

/// Wakes every process sleeping on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    wake(word, u32::MAX);
}
