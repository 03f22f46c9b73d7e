//! The layout of an object store's segment (LAYOUT.md, "Object store").

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::sys::mmap::shared_layout;

pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"IPBSTORE");
pub(crate) const VERSION: u32 = 4;
/// Where the table starts (the header is smaller).
pub(crate) const TABLE_OFFSET: usize = 128;
/// Allocation granularity and alignment in the data area.
pub const ALIGN: usize = 64;
/// The most table entries a store may have.
pub const MAX_OBJECTS_LIMIT: usize = 1 << 20;
pub(crate) const FLAG_EVICT: u32 = 1;

pub(crate) const FREE: u32 = 0;
pub(crate) const CREATING: u32 = 1;
pub(crate) const SEALED: u32 = 2;
pub(crate) const DELETING: u32 = 3;

/// Holder records per object: distinct processes that may hold views of it at once.
pub(crate) const HOLDERS: usize = 16;

shared_layout! {
    /// The header at offset 0 of a store segment.
    #[derive(Debug)]
    pub(crate) struct RawHeader {
        /// Written last (release) by the creator.
        pub(crate) magic: AtomicU64 = 0,
        pub(crate) version: AtomicU32 = 8,
        /// Bit 0: evict sealed unheld objects when full.
        pub(crate) flags: AtomicU32 = 12,
        /// The metadata lock: 0 = free, otherwise the holder (see `pid_lock`).
        pub(crate) lock: AtomicU32 = 16,
        /// Unused (the lock keeps its waiting bit in its own word).
        pub(crate) reserved: AtomicU32 = 20,
        /// Bumped (under the lock) by every seal; `get` sleeps on it.
        pub(crate) seal_seq: AtomicU32 = 24,
        pub(crate) seal_waiters: AtomicU32 = 28,
        pub(crate) table_offset: AtomicU64 = 32,
        pub(crate) entries: AtomicU64 = 40,
        pub(crate) data_offset: AtomicU64 = 48,
        pub(crate) capacity: AtomicU64 = 56,
        pub(crate) total_size: AtomicU64 = 64,
        /// Seal counter: the order objects were sealed in (for eviction).
        pub(crate) clock: AtomicU64 = 72,
    }
}

shared_layout! {
    /// One process holding views of an object: its pid and how many views it holds.
    #[derive(Debug)]
    pub(crate) struct RawHolder {
        pub(crate) pid: AtomicU32 = 0,
        pub(crate) count: AtomicU32 = 4,
    }
}

shared_layout! {
    /// One entry of the object table.
    #[derive(Debug)]
    pub(crate) struct RawEntry {
        /// Free, creating, sealed or deleting (see `store`).
        pub(crate) state: AtomicU32 = 0,
        /// The pid of the process creating the object (while creating).
        pub(crate) creator: AtomicU32 = 4,
        /// The 20-byte object id as five native-endian words.
        pub(crate) id: [AtomicU32; 5] = 8,
        /// Bumped whenever the entry is taken for a new object, so stale handles notice.
        pub(crate) generation: AtomicU32 = 28,
        /// The allocation in the data area: offset from the data area's start and length.
        pub(crate) offset: AtomicU64 = 32,
        pub(crate) alloc_len: AtomicU64 = 40,
        /// The object's size in bytes (at most `alloc_len`).
        pub(crate) size: AtomicU64 = 48,
        /// The header's clock when the object was sealed.
        pub(crate) sealed_at: AtomicU64 = 56,
        pub(crate) holders: [RawHolder; HOLDERS] = 64,
    }
}
