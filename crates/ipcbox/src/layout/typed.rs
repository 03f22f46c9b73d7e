//! The layout of a typed value or array segment: a header, the lock and the elements at fixed
//! offsets (LAYOUT.md, "Typed values and arrays").

use std::sync::atomic::{AtomicU32, AtomicU64};

use super::sync::RawMutex;
use crate::sys::mmap::shared_layout;

/// "IPBT" in memory order.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"IPBT");
/// The layout version this code writes and reads.
/// 2: the lock is ipcbox's own (two `u32`s naming the owner thread), not a glibc mutex.
pub const LAYOUT_VERSION: u32 = 3;
/// Where the lock lives.
pub(crate) const LOCK_OFFSET: usize = 64;
/// Where the elements start: on their own cache line, away from the header and the lock.
pub(crate) const DATA_OFFSET: usize = 128;

shared_layout! {
    /// The header at the start of a typed segment.
    #[derive(Debug)]
    pub(crate) struct TypedHeader {
        /// Written last (release) by the creator.
        pub(crate) magic: AtomicU32 = 0,
        pub(crate) version: AtomicU32 = 4,
        /// Value or array.
        pub(crate) kind: AtomicU32 = 8,
        /// The element type's tag.
        pub(crate) elem_tag: AtomicU32 = 12,
        pub(crate) elem_size: AtomicU32 = 16,
        /// Where the elements start.
        pub(crate) data_offset: AtomicU32 = 20,
        /// Number of elements.
        pub(crate) len: AtomicU64 = 24,
        /// `data_offset + len * elem_size`.
        pub(crate) total_size: AtomicU64 = 32,
    }
}

const _: () = assert!(size_of::<TypedHeader>() <= LOCK_OFFSET);
const _: () = assert!(LOCK_OFFSET + size_of::<RawMutex>() <= DATA_OFFSET);
