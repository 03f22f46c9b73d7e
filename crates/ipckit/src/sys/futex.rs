//! Futex waits and wakes on words in shared memory (`FUTEX_WAIT` / `FUTEX_WAKE`, not private:
//! the waiters and wakers are different processes).

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `word` holds `expected`, at most `timeout` (forever if `None`).
///
/// Returns normally on a wake, a changed value, a timeout or a signal: callers re-check their
/// condition in a loop, so all of those mean "look again".
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => Ok(()),
        Err(e)
            if e == rustix::io::Errno::AGAIN
                || e == rustix::io::Errno::TIMEDOUT
                || e == rustix::io::Errno::INTR =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Wakes every process sleeping on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    // A failed wake (EFAULT cannot happen on a live mapping) leaves sleepers to their
    // time-sliced re-checks, so the error is not worth reporting.
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}
