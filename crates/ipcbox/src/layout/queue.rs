//! The layout of a queue's shared-memory object (LAYOUT.md, "Queue"): a header, then from
//! [`DATA_OFFSET`] on the ring of records.
//!
//! A record is an 8-byte little-endian header word, [`TAG_RECORD`] or'ed with the payload
//! length, then the payload, padded to 8 bytes. Where a record would not fit before the end of
//! the ring, a [`TAG_SKIP`] word stands in its place and the record starts at the ring's
//! beginning.

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::sys::mmap::shared_layout;

/// "IPCBQUE\x01" in memory order.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"IPCBQUE\x01");
/// The layout version this code writes and reads.
pub(crate) const VERSION: u32 = 7;
/// The value of [`RawQueueHeader::ready`] once the creator has written the geometry.
pub(crate) const READY: u32 = 0x5245_4459;
/// Where the ring of records starts.
pub(crate) const DATA_OFFSET: usize = 4096;
/// Entries of the table of attached processes.
pub(crate) const PEER_SLOTS: usize = 64;
/// Entries of the table of doorbells.
pub(crate) const BELL_SLOTS: usize = 32;
/// A doorbell's interest in [`RawQueueHeader::not_empty`].
pub(crate) const BELL_NOT_EMPTY: u32 = 1;
/// A doorbell's interest in [`RawQueueHeader::not_full`].
pub(crate) const BELL_NOT_FULL: u32 = 2;
/// A doorbell's interest in [`RawQueueHeader::all_done`].
pub(crate) const BELL_ALL_DONE: u32 = 4;

/// The tag of a record's header word (its top byte).
pub(crate) const TAG_RECORD: u64 = 0xA5 << 56;
/// The word that stands where a record did not fit before the end of the ring.
pub(crate) const TAG_SKIP: u64 = 0x5A << 56;
/// The tag's bits of a header word; the others are the payload length.
pub(crate) const TAG_MASK: u64 = 0xFF << 56;

shared_layout! {
    /// What one side has moved since the queue was made: its ring position (a byte count that
    /// only grows; its offset in the ring is this modulo the ring's size), and the messages and
    /// payload bytes.
    pub(crate) struct RawTotals {
        pub(crate) pos: AtomicU64 = 0,
        pub(crate) msgs: AtomicU64 = 8,
        pub(crate) bytes: AtomicU64 = 16,
    }
}

shared_layout! {
    /// One side of the queue (the producers' or the consumers'), three cache lines: its lock
    /// and the journal's valid flag, the journal's new totals, and the published totals (the
    /// only line the other side reads).
    pub(crate) struct RawSide {
        /// The side's lock: 0 when free, else the holder (see `pid_lock`).
        pub(crate) lock: AtomicU32 = 0,
        _reserved0: AtomicU32 = 4,
        /// 1 while [`RawSide::journal`] holds totals not yet all copied to
        /// [`RawSide::totals`]: the next locker copies them.
        pub(crate) journal_valid: AtomicU64 = 8,
        _reserved1: [AtomicU64; 6] = 16,
        /// The totals a commit is making published (a redo journal).
        pub(crate) journal: RawTotals = 64,
        _reserved2: [AtomicU64; 5] = 88,
        /// The published totals; the position is stored last.
        pub(crate) totals: RawTotals = 128,
        _reserved3: [AtomicU64; 5] = 152,
    }
}

shared_layout! {
    /// An entry of the table of attached processes: PID, start time and the handles it has
    /// open; a PID of 0 is a free entry.
    pub(crate) struct RawPeer {
        pub(crate) pid: AtomicU64 = 0,
        pub(crate) start: AtomicU64 = 8,
        pub(crate) handles: AtomicU64 = 16,
    }
}

shared_layout! {
    /// An entry of the table of doorbells: the token naming a waiter's socket (0 for a free
    /// entry) and the futex words it waits on (`BELL_*` bits), each bit taken down by the
    /// waker that rings for it.
    pub(crate) struct RawBell {
        pub(crate) token: AtomicU64 = 0,
        pub(crate) mask: AtomicU32 = 8,
        _reserved0: AtomicU32 = 12,
    }
}

shared_layout! {
    /// The header at offset 0 of a queue's object. The geometry is written once by the
    /// creator, before [`RawQueueHeader::ready`].
    pub(crate) struct RawQueueHeader {
        /// [`MAGIC`].
        pub(crate) magic: AtomicU64 = 0,
        /// [`VERSION`].
        pub(crate) version: AtomicU32 = 8,
        /// [`READY`] once the geometry is written (stored last, with release).
        pub(crate) ready: AtomicU32 = 12,
        /// The most messages the queue holds.
        pub(crate) cap_msgs: AtomicU64 = 16,
        /// The most payload bytes the queue holds.
        pub(crate) cap_bytes: AtomicU64 = 24,
        /// The ring's size in bytes (a multiple of 8).
        pub(crate) ring: AtomicU64 = 32,
        /// The largest payload of one message.
        pub(crate) max_msg: AtomicU64 = 40,
        /// Where the ring starts: [`DATA_OFFSET`].
        pub(crate) data_offset: AtomicU64 = 48,
        _reserved0: AtomicU64 = 56,
        pub(crate) producers: RawSide = 64,
        pub(crate) consumers: RawSide = 256,
        /// 1 once the queue is closed.
        pub(crate) closed: AtomicU64 = 448,
        /// How many times a locker found a side's owner dead and repaired it.
        pub(crate) recoveries: AtomicU64 = 456,
        /// How many distinct processes ever attached.
        pub(crate) attached_ever: AtomicU64 = 464,
        _reserved1: [AtomicU64; 5] = 472,
        /// Messages finished with `task_done`.
        pub(crate) done: AtomicU64 = 512,
        _reserved2: [AtomicU64; 7] = 520,
        /// Futex words, each on a line of its own: bit 0 is set while someone may sleep on
        /// it, the other bits are a sequence bumped by each wake.
        pub(crate) not_empty: AtomicU32 = 576,
        _reserved3: [AtomicU32; 15] = 580,
        pub(crate) not_full: AtomicU32 = 640,
        _reserved4: [AtomicU32; 15] = 644,
        pub(crate) all_done: AtomicU32 = 704,
        _reserved5: [AtomicU32; 15] = 708,
        /// The attached processes.
        pub(crate) peers: [RawPeer; PEER_SLOTS] = 768,
        /// The doorbells of waiters that poll a descriptor instead of sleeping on a futex.
        pub(crate) bells: [RawBell; BELL_SLOTS] = 2304,
    }
}

const _: () = assert!(size_of::<RawSide>() == 192);
const _: () = assert!(size_of::<RawQueueHeader>() <= DATA_OFFSET);
const _: () = assert!(DATA_OFFSET % 64 == 0);
