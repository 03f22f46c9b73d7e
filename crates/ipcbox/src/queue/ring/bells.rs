//! Waiting on the queue through a doorbell (LAYOUT.md, "Doorbells"): the table of bells in the
//! header, arming a handle's bell, and ringing the bells of a futex word's waiters.
//!
//! A doorbell waiter registers like a futex sleeper: it sets the word's waiter bit under the
//! lock of the side whose commits it waits for, and re-checks. It also sets the word's bit in
//! its table entry, before the waiter bit. A waker that takes the waiter bit down (under that
//! lock) wakes the futex sleepers, then rings every bell whose entry has the word's bit,
//! taking the bit down first. So a commit either shows in the arming re-check or finds the
//! waiter bit, and then the entry's bit: no ring is lost, and with no waiter no waker makes a
//! system call.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::*};

use super::layout::{Side, CONSUMERS, PRODUCERS};
use super::Ring;
use crate::layout::queue::{RawBell, BELL_ALL_DONE, BELL_NOT_EMPTY, BELL_NOT_FULL};
use crate::queue::bell;

/// What a waiter on a queue's descriptor waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// A message to get (or the queue closed or disconnected): `get` would not wait.
    Get,
    /// Room to put a message (or the queue closed or disconnected): a `put` of the smallest
    /// message would not wait.
    Put,
    /// Every message put finished with `task_done`: `join` would not wait.
    Join,
}

/// Wakes from an unarmed queue are rung to nobody: the index of no entry.
pub(super) const NO_SLOT: usize = usize::MAX;

impl Ring {
    /// The futex word, table bit and waking side of `interest`.
    fn word_of(&self, interest: Interest) -> (&AtomicU32, u32, Option<Side>) {
        let h = self.h();
        match interest {
            Interest::Get => (&h.not_empty, BELL_NOT_EMPTY, Some(PRODUCERS)),
            Interest::Put => (&h.not_full, BELL_NOT_FULL, Some(CONSUMERS)),
            Interest::Join => (&h.all_done, BELL_ALL_DONE, None),
        }
    }

    /// Whether an operation of `interest` would wait now (lock-free, on fresh totals).
    pub(crate) fn blocked(&self, interest: Interest) -> bool {
        match interest {
            Interest::Get => self.empty_now(),
            Interest::Put => self.full_for(0),
            Interest::Join => !self.all_done(),
        }
    }

    /// This handle's entry in the table of bells, claimed with its token on first use (and
    /// again if a waker cleared it as stale); `None` when the table is full.
    fn bell_entry(&self, token: u64) -> Option<&RawBell> {
        let bells = &self.h().bells;
        let cached = self.bell_slot.load(Relaxed);
        if let Some(e) = bells.get(cached) {
            if e.token.load(Acquire) == token {
                return Some(e);
            }
        }
        // Free entries first; only a full table is worth probing for stale ones, since a
        // probe rings a live bell for nothing.
        for probe in [false, true] {
            for (i, e) in bells.iter().enumerate() {
                let cur = e.token.load(Acquire);
                let free = cur == 0 || (probe && cur >> 32 != token >> 32 && !bell::ring(cur));
                // Claimed with a compare-and-swap against the old token, so two claimers
                // cannot both take it.
                if free
                    && e.token
                        .compare_exchange(cur, token, AcqRel, Acquire)
                        .is_ok()
                {
                    e.mask.store(0, SeqCst);
                    self.bell_slot.store(i, Relaxed);
                    return Some(e);
                }
            }
        }
        None
    }

    /// Drains this handle's bell, then returns true if an operation of `interest` would not
    /// wait now; otherwise registers the bell so that the next commit, close or repair that
    /// may change that rings it. `Ok(false)` with [`Ring::bell_registered`] false means the
    /// table of bells is full: the caller polls.
    pub(crate) fn arm(&self, interest: Interest) -> io::Result<bool> {
        self.attach()?;
        self.bell.drain();
        if !self.blocked(interest) {
            return Ok(true);
        }
        let token = self.bell.token()?;
        let (word, bit, wakers) = self.word_of(interest);
        let entry = self.bell_entry(token);
        self.bell_ok.store(entry.is_some(), Relaxed);
        if let Some(e) = entry {
            e.mask.fetch_or(bit, SeqCst);
        }
        // As a futex sleeper registers in `Ring::run`.
        let still = match wakers {
            Some(side) => {
                let repaired = self.lock(side)?;
                word.fetch_or(1, SeqCst);
                let still = self.blocked(interest);
                self.unlock(side, repaired);
                still
            }
            None => {
                word.fetch_or(1, SeqCst);
                self.blocked(interest)
            }
        };
        Ok(!still)
    }

    /// Binds this process's doorbell socket if the handle came across `fork`.
    pub(crate) fn own_bell(&self) -> io::Result<()> {
        self.bell.token().map(drop)
    }

    /// Whether the last [`Ring::arm`] found room in the table of bells.
    pub(crate) fn bell_registered(&self) -> bool {
        self.bell_ok.load(Relaxed)
    }

    /// Whether a waiter for `interest` should give up as disconnected: it would still wait,
    /// and another process attached once and none is alive.
    pub(crate) fn waiting_alone(&self, interest: Interest) -> bool {
        self.blocked(interest) && self.peers_gone()
    }

    /// Rings every bell waiting on the words in `bits`. Called after the futex wake that took
    /// those words' waiter bits down.
    pub(super) fn ring_bells(&self, bits: u32) {
        for e in &self.h().bells {
            if e.mask.load(Relaxed) & bits == 0 {
                continue;
            }
            if e.mask.fetch_and(!bits, SeqCst) & bits == 0 {
                continue;
            }
            let token = e.token.load(Acquire);
            if token != 0 && !bell::ring(token) {
                // Its socket is gone: free the entry unless someone claimed it meanwhile.
                let _ = e.token.compare_exchange(token, 0, AcqRel, Relaxed);
            }
        }
    }

    /// Frees this handle's entry in the table of bells, if it has one in this process.
    pub(super) fn release_bell(&self) {
        let slot = self.bell_slot.load(Relaxed);
        if let (Some(e), Some(token)) = (self.h().bells.get(slot), self.bell.current()) {
            if e.token.load(Acquire) == token {
                e.mask.store(0, SeqCst);
                let _ = e.token.compare_exchange(token, 0, AcqRel, Relaxed);
            }
        }
    }
}
