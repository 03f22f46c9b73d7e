//! The layout of a queue's shared-memory object, and what a valid one holds.
//!
//! * The header: the geometry (written once by the creator, before the ready word), each
//!   side's lock, journal and published totals, the closed flag and counters, the futex
//!   words, and the table of attached processes.
//! * The ring of records, from [`DATA_OFF`] on. A record is an 8-byte header (the tag
//!   [`TAG_RECORD`] and the payload length) and the payload, padded to 8 bytes.
//! * Where a record would not fit before the end of the ring, a [`TAG_SKIP`] word stands
//!   in its place and the record starts at the beginning of the ring.
//!
//! An opener checks the magic number, the layout version and the geometry against the
//! object's size ([`Ring::validate`]). Every operation checks the totals it reads
//! ([`Ring::check`]) before it computes with them.

use std::io;
use std::sync::atomic::Ordering::*;

use super::{Ring, Totals};
use crate::queue::object::{self, Object};
use crate::queue::peers::Table;
use crate::queue::wait::WaitPolicy;

const MAGIC: u64 = u64::from_le_bytes(*b"IPCBQUE\x01");
const VERSION: u32 = 6;
const READY: u32 = 0x5245_4459;

// Layout (byte offsets). Geometry first, written once by the creator before READY.
const O_MAGIC: usize = 0;
const O_VERSION: usize = 8;
const O_READY: usize = 12;
const O_CAP_MSGS: usize = 16;
const O_CAP_BYTES: usize = 24;
const O_RING: usize = 32;
const O_MAX_MSG: usize = 40;
const O_DATA_OFF: usize = 48;

/// Where one side's words live: its lock word and the journal's valid flag (one line), the
/// journal's new totals (the next line), and the published totals (a line of their own, the
/// only one the other side reads).
// With one producer and one consumer neither lock is ever contended: each stays in its
// owner's cache, and a message costs the lines it is written into and one published total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Side {
    pub(super) lock: usize,
    pub(super) j_valid: usize,
    pub(super) journal: usize,
    pub(super) totals: usize,
    pub(super) name: &'static str,
}

/// Offsets within a set of totals (published or in the journal).
pub(super) const T_POS: usize = 0;
pub(super) const T_MSGS: usize = 8;
pub(super) const T_BYTES: usize = 16;

pub(super) const PRODUCERS: Side = Side {
    lock: 64,
    j_valid: 72,
    journal: 128,
    totals: 192,
    name: "producer",
};
pub(super) const CONSUMERS: Side = Side {
    lock: 256,
    j_valid: 264,
    journal: 320,
    totals: 384,
    name: "consumer",
};
// Rarely written: closed flag, recoveries, processes that ever attached.
pub(super) const O_CLOSED: usize = 448;
pub(super) const O_RECOVERIES: usize = 456;
pub(super) const O_ATTACHED_EVER: usize = 464;
// Messages finished with `task_done` (written by consumers, read by `join`).
pub(super) const O_DONE: usize = 512;
// Futex words (each on its own cache line): bit 0 = someone sleeps, the rest a sequence.
pub(super) const O_NOT_EMPTY: usize = 576;
pub(super) const O_NOT_FULL: usize = 640;
pub(super) const O_ALL_DONE: usize = 704;
// Attached processes: SLOTS x (pid, start time, handles).
const O_PEERS: usize = 768;
const SLOTS: usize = 64;
pub(super) const DATA_OFF: usize = 4096;
const _: () = assert!(
    PRODUCERS.j_valid + 8 <= PRODUCERS.journal
        && CONSUMERS.j_valid + 8 <= CONSUMERS.journal
        && PRODUCERS.totals + 24 <= CONSUMERS.lock
        && CONSUMERS.totals + 24 <= O_CLOSED
        && O_PEERS + SLOTS * 24 <= DATA_OFF
        && DATA_OFF % 64 == 0
);

pub(super) const TAG_RECORD: u64 = 0xA5 << 56;
pub(super) const TAG_SKIP: u64 = 0x5A << 56;
pub(super) const TAG_MASK: u64 = 0xFF << 56;

/// Largest message count, byte bound and message size a queue accepts.
pub(crate) const MAX_CAPACITY: u64 = 1 << 32;
pub(crate) const MAX_BYTES: u64 = 1 << 40;
/// Largest ring position and total a valid header holds.
const MAX_POSITION: u64 = 1 << 62;

pub(super) fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

pub(super) fn corrupted(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("queue header corrupted: {what}"),
    )
}

/// Sizes chosen by the creator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) cap_msgs: u64,
    pub(crate) cap_bytes: u64,
    pub(crate) max_msg: u64,
}

impl Geometry {
    /// Physical ring size: room for `cap_bytes` of payload in `cap_msgs` records with their
    /// headers and padding, plus one wrap-around gap; so the limits, not the ring, say "full".
    pub(super) fn ring(&self) -> u64 {
        align8(self.cap_bytes + 16 * self.cap_msgs + 8 + align8(self.max_msg) + 8)
    }

    pub(crate) fn check(&self) -> io::Result<()> {
        let bad = |m: String| Err(crate::error::invalid_input(m));
        if self.cap_msgs == 0 {
            return bad("queue capacity must be at least 1 message, got 0".into());
        }
        if self.cap_msgs > MAX_CAPACITY {
            return bad(format!(
                "queue capacity {} messages over the limit {MAX_CAPACITY}",
                self.cap_msgs
            ));
        }
        if self.cap_bytes == 0 || self.cap_bytes > MAX_BYTES {
            return bad(format!(
                "queue byte capacity {} must be 1..={MAX_BYTES}",
                self.cap_bytes
            ));
        }
        if self.max_msg == 0 || self.max_msg > self.cap_bytes || self.max_msg > u32::MAX as u64 {
            return bad(format!(
                "maximum message size {} must be 1..={} (the byte capacity, at most 4 GiB)",
                self.max_msg, self.cap_bytes
            ));
        }
        Ok(())
    }
}

impl Ring {
    pub(super) fn init(&self) -> io::Result<()> {
        let r = self.r();
        r.u64_at(O_CAP_MSGS).store(self.geo.cap_msgs, Relaxed);
        r.u64_at(O_CAP_BYTES).store(self.geo.cap_bytes, Relaxed);
        r.u64_at(O_RING).store(self.ring, Relaxed);
        r.u64_at(O_MAX_MSG).store(self.geo.max_msg, Relaxed);
        r.u64_at(O_DATA_OFF).store(DATA_OFF as u64, Relaxed);
        r.u32_at(O_VERSION).store(VERSION, Relaxed);
        r.u64_at(O_MAGIC).store(MAGIC, Relaxed);
        r.u32_at(O_READY).store(READY, Release);
        Ok(())
    }

    /// Checks an opened object's layout against this build's and reads its geometry.
    pub(super) fn validate(obj: Object, policy: WaitPolicy) -> io::Result<Ring> {
        let r = &obj.region;
        let label = obj.label().to_owned();
        if r.len() < DATA_OFF {
            return Err(corrupted(format_args!(
                "{label} is {} bytes, smaller than a queue header",
                r.len()
            )));
        }
        object::wait_ready(&format!("queue {label}"), || {
            r.u32_at(O_READY).load(Acquire) == READY
        })?;
        let magic = r.u64_at(O_MAGIC).load(Relaxed);
        let version = r.u32_at(O_VERSION).load(Relaxed);
        if magic != MAGIC || version != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{label} is not an ipcbox queue of layout version {VERSION} (magic {magic:#x}, version {version})"),
            ));
        }
        let geo = Geometry {
            cap_msgs: r.u64_at(O_CAP_MSGS).load(Relaxed),
            cap_bytes: r.u64_at(O_CAP_BYTES).load(Relaxed),
            max_msg: r.u64_at(O_MAX_MSG).load(Relaxed),
        };
        geo.check()
            .map_err(|e| corrupted(format_args!("{label}: {e}")))?;
        let ring = r.u64_at(O_RING).load(Relaxed);
        if ring != geo.ring()
            || r.u64_at(O_DATA_OFF).load(Relaxed) != DATA_OFF as u64
            || DATA_OFF as u64 + ring > r.len() as u64
        {
            return Err(corrupted(format_args!(
                "{label}: ring of {ring} bytes does not fit its {} byte object",
                r.len()
            )));
        }
        Ok(Ring::new(obj, geo, policy))
    }

    pub(super) fn peers(&self) -> Table<'_> {
        Table {
            slots: (0..SLOTS)
                .map(|i| {
                    let b = O_PEERS + i * 24;
                    [self.u64(b), self.u64(b + 8), self.u64(b + 16)]
                })
                .collect(),
        }
    }

    /// Checks a view of both sides: positions only grow (2^62 bytes take centuries to
    /// pass), a consumer is never past the producers, and the space between them fits the
    /// ring. Bounding them keeps the arithmetic on them from overflowing.
    pub(super) fn check(&self, p: &Totals, c: &Totals) -> io::Result<()> {
        let sane = |t: &Totals| {
            t.pos <= MAX_POSITION
                && t.pos % 8 == 0
                && t.msgs <= MAX_POSITION
                && t.bytes <= MAX_POSITION
        };
        if sane(p)
            && sane(c)
            && c.pos <= p.pos
            && p.pos - c.pos <= self.ring
            && c.msgs <= p.msgs
            && c.bytes <= p.bytes
        {
            return Ok(());
        }
        Err(corrupted(format_args!(
            "{}: producers at {} ({} messages, {} bytes), consumers at {} ({} messages, {} \
             bytes), ring {}",
            self.obj.label(),
            p.pos,
            p.msgs,
            p.bytes,
            c.pos,
            c.msgs,
            c.bytes,
            self.ring
        )))
    }

    /// [`Ring::check`] for a consumer, which reads only the producers' position.
    pub(super) fn check_tail(&self, c: &Totals, tail: u64) -> io::Result<()> {
        let p = Totals {
            pos: tail,
            msgs: MAX_POSITION,
            bytes: MAX_POSITION,
        };
        self.check(&p, c)
    }
}
