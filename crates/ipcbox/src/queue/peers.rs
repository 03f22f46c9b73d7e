//! Which processes are attached to a queue, and whether they still live.
//!
//! A process is identified by its PID and its start time (field 22 of `/proc/<pid>/stat`), so
//! a recycled PID is not taken for the process that died. A zombie counts as dead: a parent
//! that has not reaped its killed child must still learn that the child is gone.

use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// The start time of process `pid` in clock ticks since boot, and whether it is still running
/// (not a zombie); `None` if there is no such process or `/proc` could not tell.
pub(crate) fn stat(pid: u32) -> Option<(u64, bool)> {
    try_stat(pid).ok().flatten()
}

/// As [`stat`], telling "no such process or thread" (`Ok(None)`: `/proc/<id>` does not exist)
/// from "could not tell" (`Err`: out of file descriptors or memory, an unexpected format), so
/// that a caller deciding whether an owner is dead does not take the second for the first.
pub(crate) fn try_stat(pid: u32) -> std::io::Result<Option<(u64, bool)>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let parsed = (|| {
        // The command name in parentheses may contain anything, so parse after the last ')'.
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?;
        // After the state, field 4 (ppid) is index 0 here; starttime is field 22, index 18.
        let start = fields.nth(18)?.parse().ok()?;
        Some((start, !matches!(state, "Z" | "X" | "x")))
    })();
    parsed.map(Some).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format"),
        )
    })
}

/// The start time of process `pid` in clock ticks since boot, if `/proc` tells it.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(start, _)| start)
}

/// This process's identity as a registry entry: (pid, start time).
pub(crate) fn me() -> (u64, u64) {
    let pid = std::process::id();
    (u64::from(pid), stat(pid).map_or(0, |(s, _)| s))
}

/// Whether the process recorded as (`pid`, `start`) is alive. Where `/proc` cannot tell
/// (not mounted, or this process out of file descriptors or memory), liveness is unknown and
/// the process counts as alive (no false disconnects).
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

/// Whether process `pid` runs and `same(its start time)`; unknown counts as alive.
fn alive_if(pid: u64, same: impl FnOnce(u64) -> bool) -> bool {
    match u32::try_from(pid) {
        Ok(p) if p > 0 => match try_stat(p) {
            Ok(Some((s, running))) => running && same(s),
            Ok(None) => !std::path::Path::new("/proc/self/stat").exists(),
            Err(_) => true,
        },
        _ => false,
    }
}

/// A table of attached processes in shared memory: each slot is (pid, start, handles).
/// Only mutated under the producers' lock of the queue; read without it for liveness scans.
pub(crate) struct Table<'a> {
    pub(crate) slots: Vec<[&'a AtomicU64; 3]>,
}

impl Table<'_> {
    /// Counts one more handle for (`pid`, `start`). Returns true if the process was not
    /// attached before (false also when the table is full).
    pub(crate) fn attach(&self, pid: u64, start: u64) -> bool {
        let mut free = None;
        for s in &self.slots {
            let (p, st) = (s[0].load(Acquire), s[1].load(Relaxed));
            if p == pid && st == start {
                s[2].fetch_add(1, Relaxed);
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
                s[0].store(0, Release);
                s[2].store(1, Relaxed);
                s[1].store(start, Release);
                s[0].store(pid, Release);
                true
            }
            None => false,
        }
    }

    /// Counts one handle less for (`pid`, `start`).
    pub(crate) fn detach(&self, pid: u64, start: u64) {
        for s in &self.slots {
            if s[0].load(Relaxed) == pid && s[1].load(Relaxed) == start {
                let n = s[2].load(Relaxed);
                if n <= 1 {
                    s[0].store(0, Relaxed);
                    s[2].store(0, Relaxed);
                } else {
                    s[2].store(n - 1, Relaxed);
                }
                return;
            }
        }
    }

    /// Whether any process other than `pid` is attached and alive.
    pub(crate) fn others_alive(&self, pid: u64) -> bool {
        self.slots.iter().any(|s| {
            let p = s[0].load(Acquire);
            p != 0 && p != pid && alive(p, s[1].load(Acquire))
        })
    }
}
