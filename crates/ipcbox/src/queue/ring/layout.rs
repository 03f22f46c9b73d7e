//! What a valid queue object holds; its layout is in [`crate::layout::queue`].
//!
//! An opener checks the magic number, the layout version and the geometry against the
//! object's size ([`Ring::validate`]). Every operation checks the totals it reads
//! ([`Ring::check`]) before it computes with them.

use std::io;
use std::sync::atomic::Ordering::*;

use super::{Ring, Totals};
use crate::layout::queue::{RawQueueHeader, DATA_OFFSET, MAGIC, READY, VERSION};
use crate::queue::object::{self, Object};
use crate::queue::peers::Table;
use crate::queue::wait::WaitPolicy;

/// One side of the queue: its lock, journal and totals are a
/// [`RawSide`](crate::layout::queue::RawSide) of the header.
// With one producer and one consumer neither lock is ever contended: each stays in its
// owner's cache, and a message costs the lines it is written into and one published total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Producers,
    Consumers,
}

pub(super) const PRODUCERS: Side = Side::Producers;
pub(super) const CONSUMERS: Side = Side::Consumers;

impl Side {
    pub(super) fn name(self) -> &'static str {
        match self {
            Side::Producers => "producer",
            Side::Consumers => "consumer",
        }
    }
}

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
        let h = self.h();
        h.cap_msgs.store(self.geo.cap_msgs, Relaxed);
        h.cap_bytes.store(self.geo.cap_bytes, Relaxed);
        h.ring.store(self.ring, Relaxed);
        h.max_msg.store(self.geo.max_msg, Relaxed);
        h.data_offset.store(DATA_OFFSET as u64, Relaxed);
        h.version.store(VERSION, Relaxed);
        h.magic.store(MAGIC, Relaxed);
        h.ready.store(READY, Release);
        Ok(())
    }

    /// Checks an opened object's layout against this build's and reads its geometry.
    pub(super) fn validate(obj: Object<RawQueueHeader>, policy: WaitPolicy) -> io::Result<Ring> {
        let r = &obj.region;
        let h = r.header();
        let label = obj.label().to_owned();
        if r.len() < DATA_OFFSET {
            return Err(corrupted(format_args!(
                "{label} is {} bytes, smaller than a queue header",
                r.len()
            )));
        }
        object::wait_ready(&format!("queue {label}"), || h.ready.load(Acquire) == READY)?;
        let magic = h.magic.load(Relaxed);
        let version = h.version.load(Relaxed);
        if magic != MAGIC || version != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{label} is not an ipcbox queue of layout version {VERSION} (magic {magic:#x}, version {version})"),
            ));
        }
        let geo = Geometry {
            cap_msgs: h.cap_msgs.load(Relaxed),
            cap_bytes: h.cap_bytes.load(Relaxed),
            max_msg: h.max_msg.load(Relaxed),
        };
        geo.check()
            .map_err(|e| corrupted(format_args!("{label}: {e}")))?;
        let ring = h.ring.load(Relaxed);
        if ring != geo.ring()
            || h.data_offset.load(Relaxed) != DATA_OFFSET as u64
            || DATA_OFFSET as u64 + ring > r.len() as u64
        {
            return Err(corrupted(format_args!(
                "{label}: ring of {ring} bytes does not fit its {} byte object",
                r.len()
            )));
        }
        Ring::new(obj, geo, policy)
    }

    pub(super) fn peers(&self) -> Table<'_> {
        Table {
            slots: &self.h().peers,
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
