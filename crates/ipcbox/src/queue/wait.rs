//! Deadlines and the wait policy shared by the queue and the channel.

use std::time::{Duration, Instant};

/// How a blocked `put`/`get` waits for the other side.
///
/// Parking costs nothing while waiting but a wake-up across cores costs tens of microseconds on
/// virtual machines; spinning first answers in well under a microsecond when the other side is
/// busy on another core, at the price of burning that core while it spins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitPolicy {
    /// Sleep on a futex at once (after a handful of re-checks).
    #[default]
    Park,
    /// Spin re-checking for up to the given time, then sleep on a futex.
    SpinThenPark(Duration),
}

impl WaitPolicy {
    pub(crate) fn spin_for(self) -> Duration {
        match self {
            WaitPolicy::Park => Duration::ZERO,
            WaitPolicy::SpinThenPark(d) => d,
        }
    }
}

pub(crate) use crate::deadline::Deadline;

/// Sleeps longer than this are cut into slices, after each of which the waiter checks whether
/// its peers are still alive.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// Registers this process for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` (idempotent, per
/// process) and says whether that worked: then a peer about to sleep makes every thread of
/// ours execute a full barrier ([`fence_peers`]), so our stores of an index and loads of the
/// peer's "sleeping" flag need no fence of their own on the message path.
///
/// A waker stores its index, then loads the sleeper's flag; a sleeper stores its flag, then
/// loads the index. Without a barrier between its store and its load on *both* sides (x86
/// lets a load pass an earlier store), each could miss the other's store and the sleeper would
/// sleep through the message. With `membarrier` the sleeper's call puts the barrier into the
/// waker's instruction stream: either the waker's load comes after it and sees the flag, or
/// its store (before the load in program order) is visible to the sleeper's re-check.
pub(crate) fn register_fence_free() -> bool {
    rustix::thread::membarrier(rustix::thread::MembarrierCommand::RegisterGlobalExpedited).is_ok()
}

/// Makes every running thread of every process registered by [`register_fence_free`] execute
/// a full memory barrier; false if the system refuses (the caller must then not count on a
/// fence-free peer's wake-up and sleeps in short slices).
pub(crate) fn fence_peers() -> bool {
    rustix::thread::membarrier(rustix::thread::MembarrierCommand::GlobalExpedited).is_ok()
}

/// The longest sleep of a waiter whose [`fence_peers`] failed: a fence-free peer's wake-up
/// may then be missed, and this bounds the delay.
pub(crate) const UNFENCED_SLICE: Duration = Duration::from_millis(1);

/// Spins for up to `spin` (never past `deadline`) while `blocked()` holds. Returns true if
/// it stopped because `blocked()` turned false.
pub(crate) fn spin(deadline: Deadline, spin: Duration, blocked: impl Fn() -> bool) -> bool {
    if spin.is_zero() || deadline == Deadline::Now {
        return !blocked();
    }
    // A first burst without reading the clock: a busy peer usually answers within it, and
    // the clock read would be on the latency path.
    for _ in 0..256 {
        if !blocked() {
            return true;
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    let end = match deadline {
        Deadline::At(t) => t.min(start + spin),
        _ => start + spin,
    };
    let mut rounds = 0u32;
    loop {
        for _ in 0..64 {
            if !blocked() {
                return true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= end {
            return !blocked();
        }
        rounds += 1;
        if rounds % 16 == 0 {
            // On an oversubscribed machine the peer may be waiting for this very core.
            std::thread::yield_now();
        }
    }
}
