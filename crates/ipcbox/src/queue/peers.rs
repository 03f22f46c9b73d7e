//! Which processes are attached to a queue, and whether they still live (by the one rule of
//! [`liveness`]: a process is its PID and its start time).

use crate::layout::queue::RawPeer;
use crate::liveness::{self, Liveness};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// This process's identity as a registry entry: (pid, start time).
pub(crate) fn me() -> (u64, u64) {
    let (pid, start) = liveness::me();
    (u64::from(pid), start)
}

/// Whether the process recorded as (`pid`, `start`) may be alive (see [`liveness`]).
pub(crate) fn alive(pid: u64, start: u64) -> bool {
    alive_if(pid, |s| s == start)
}

/// One word naming a process: its PID in the low half, the low half of its start time in the
/// high half, so that an owner can be claimed with a single compare-and-swap.
pub(crate) fn pack(pid: u64, start: u64) -> u64 {
    (start << 32) | (pid & 0xFFFF_FFFF)
}

/// Whether the process named by a [`pack`]ed word is alive (as [`alive`]).
pub(crate) fn alive_packed(word: u64) -> bool {
    alive_if(word & 0xFFFF_FFFF, |s| (s & 0xFFFF_FFFF) == word >> 32)
}

/// Whether process `pid` may be alive and `same(its start time)`.
fn alive_if(pid: u64, same: impl FnOnce(u64) -> bool) -> bool {
    u32::try_from(pid).is_ok_and(|pid| liveness::process(pid, same) != Liveness::Dead)
}

/// A table of attached processes in shared memory. Only mutated under the producers' lock of
/// the queue; read without it for liveness scans.
pub(crate) struct Table<'a> {
    pub(crate) slots: &'a [RawPeer],
}

impl Table<'_> {
    /// Counts one more handle for (`pid`, `start`). Returns true if the process was not
    /// attached before (false also when the table is full).
    pub(crate) fn attach(&self, pid: u64, start: u64) -> bool {
        let mut free = None;
        for s in self.slots {
            let (p, st) = (s.pid.load(Acquire), s.start.load(Relaxed));
            if p == pid && st == start {
                s.handles.fetch_add(1, Relaxed);
                return false;
            }
            if free.is_none() && (p == 0 || !alive(p, st)) {
                free = Some(s);
            }
        }
        match free {
            Some(s) => {
                // A death between these stores leaves a pid whose start time does not match:
                // it reads as dead and the slot is reused.
                s.pid.store(0, Release);
                s.handles.store(1, Relaxed);
                s.start.store(start, Release);
                s.pid.store(pid, Release);
                true
            }
            None => false,
        }
    }

    /// Counts one handle less for (`pid`, `start`).
    pub(crate) fn detach(&self, pid: u64, start: u64) {
        for s in self.slots {
            if s.pid.load(Relaxed) == pid && s.start.load(Relaxed) == start {
                let n = s.handles.load(Relaxed);
                if n <= 1 {
                    s.pid.store(0, Relaxed);
                    s.handles.store(0, Relaxed);
                } else {
                    s.handles.store(n - 1, Relaxed);
                }
                return;
            }
        }
    }

    /// Whether any process other than `pid` is attached and alive.
    pub(crate) fn others_alive(&self, pid: u64) -> bool {
        self.slots.iter().any(|s| {
            let p = s.pid.load(Acquire);
            p != 0 && p != pid && alive(p, s.start.load(Acquire))
        })
    }
}
