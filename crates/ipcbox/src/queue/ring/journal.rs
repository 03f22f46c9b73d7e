//! Each side's lock and its redo journal.
//!
//! A side's totals change only through [`Ring::commit`] under [`Ring::lock`]. A process killed
//! at any instruction of a commit leaves either the old totals or a valid journal of the new
//! ones, which the next locker of that side applies.

use std::io;
use std::sync::atomic::{compiler_fence, Ordering::*};

use super::layout::Side;
use super::{Ring, Totals};
use crate::layout::queue::{BELL_ALL_DONE, BELL_NOT_EMPTY, BELL_NOT_FULL};
use crate::pid_lock::{Acquired, Patience, PidLock};
use crate::queue::wait::{Deadline, WaitPolicy};
use crate::sys::futex;

/// How a side's lock waits:
///
/// * compare-and-swap rounds with a back-off;
/// * then 10 ms sleeps, with the owner's life checked after each;
/// * a live owner holding it for 10 s (stopped, say) makes the operation fail with `TimedOut`.
// The back-off is about 150 pause instructions in all, a few microseconds: longer than any
// critical section, which is a copy and a few stores.
pub(super) const LOCK_PATIENCE: Patience = Patience {
    spins: 12,
    slice: std::time::Duration::from_millis(10),
    limit: std::time::Duration::from_secs(10),
};
/// How long a `try_` operation waits for a lock a live process holds: far longer than any
/// lock hold (a copy and a few stores), far shorter than a stopped holder.
const TRY_LOCK_LIMIT: std::time::Duration = std::time::Duration::from_millis(20);
/// How a side's lock waits under [`WaitPolicy::SpinThenPark`]: longer spinning before it
/// sleeps.
// About 4000 pause instructions, some tens of microseconds.
const SPIN_LOCK_PATIENCE: Patience = Patience {
    spins: 256,
    ..LOCK_PATIENCE
};

impl Ring {
    fn pid_lock(&self, side: Side) -> PidLock<'_> {
        PidLock::new(&self.side(side).lock)
    }

    /// Locks `side`, repairing its totals if the previous owner died. Returns whether a
    /// repair was made (then the unlock wakes everybody, since the dead owner may have owed a
    /// wake).
    pub(super) fn lock(&self, side: Side) -> io::Result<bool> {
        self.lock_until(side, Deadline::Forever)
    }

    /// [`Ring::lock`] for an operation that gives up at `deadline`: a live holder is waited
    /// for only as long as the deadline allows (a `try_` form: [`TRY_LOCK_LIMIT`]), and never
    /// longer than the lock's own patience.
    pub(super) fn lock_until(&self, side: Side, deadline: Deadline) -> io::Result<bool> {
        let mut patience = match self.policy {
            WaitPolicy::Park => LOCK_PATIENCE,
            // A spinning caller would rather keep trying than pay a futex sleep and wake-up
            // when the holder is merely slow (preempted on a busy machine).
            WaitPolicy::SpinThenPark(_) => SPIN_LOCK_PATIENCE,
        };
        patience.limit = match deadline {
            Deadline::Forever => patience.limit,
            Deadline::Now => TRY_LOCK_LIMIT.min(patience.limit),
            Deadline::At(t) => t
                .saturating_duration_since(std::time::Instant::now())
                .min(patience.limit),
        };
        let what = || format!("queue {}, {}s' side", self.obj.label(), side.name());
        match self.pid_lock(side).lock(patience, &what)? {
            Acquired::Clean => Ok(false),
            Acquired::OwnerDied => {
                // Roll the journal forward if the dead owner was inside a commit: the new
                // totals are complete once the valid flag is set, and applying them is
                // idempotent.
                if self.side(side).journal_valid.load(Relaxed) == 1 {
                    self.apply_journal(side);
                }
                self.h().recoveries.fetch_add(1, Relaxed);
                Ok(true)
            }
        }
    }

    pub(super) fn unlock(&self, side: Side, repaired: bool) {
        self.pid_lock(side).unlock();
        if repaired {
            let h = self.h();
            for w in [&h.not_empty, &h.not_full, &h.all_done] {
                w.fetch_add(2, SeqCst);
                futex::wake_all(w);
            }
            self.ring_bells(BELL_NOT_EMPTY | BELL_NOT_FULL | BELL_ALL_DONE);
        }
    }

    /// Copies the journal's totals to the published ones, the position last: a reader that
    /// sees the new position (acquire) sees the records and counts before it.
    fn apply_journal(&self, side: Side) {
        let s = self.side(side);
        let j = &s.journal;
        let (pos, msgs, bytes) = (
            j.pos.load(Relaxed),
            j.msgs.load(Relaxed),
            j.bytes.load(Relaxed),
        );
        s.totals.msgs.store(msgs, Release);
        s.totals.bytes.store(bytes, Release);
        s.totals.pos.store(pos, Release);
        compiler_fence(SeqCst);
        s.journal_valid.store(0, Relaxed);
    }

    /// Commits new totals of `side` (its lock held) so that a death at any instruction leaves
    /// either the old totals (journal not yet valid) or the new ones (journal valid: the next
    /// locker rolls it forward). Compiler fences keep the stores in program order; x86 keeps
    /// them in that order for other cores, and the next locker's lock acquisition orders them
    /// for it on any architecture. Each published total only grows, so another side reading
    /// them half-applied sees some of the new values and some of the old, all of them true.
    pub(super) fn commit(&self, side: Side, new: Totals) {
        let s = self.side(side);
        s.journal.pos.store(new.pos, Relaxed);
        s.journal.msgs.store(new.msgs, Relaxed);
        s.journal.bytes.store(new.bytes, Relaxed);
        compiler_fence(SeqCst);
        s.journal_valid.store(1, Relaxed);
        compiler_fence(SeqCst);
        self.apply_journal(side);
    }
}
