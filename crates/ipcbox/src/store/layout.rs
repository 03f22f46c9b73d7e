//! The segment's layout, checked against the segment's size whenever it is opened or locked:
//!
//! * at offset 0, the header ([`RawHeader`]): magic, version, geometry, the metadata lock, the
//!   seal counter;
//! * at [`TABLE_OFFSET`], the table: `max_objects` entries ([`RawEntry`]) of id, state,
//!   creator pid, allocation and up to [`HOLDERS`] holder records `(pid, count)`;
//! * from the next page boundary, the data area of `capacity` bytes.
//!
//! Allocations are derived from the table itself (first fit between the recorded allocations,
//! [`ALIGN`]-aligned), so there is no free list to corrupt: every operation re-checks every
//! offset and length it reads (inside the data area, no overlap, sizes within allocations).
//! Metadata is only touched through atomics.

use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::invalid_input;
use crate::shm;
use crate::sys::mmap::view;
use crate::sys::mmap::{shared_layout, Mapping};

const MAGIC: u64 = u64::from_le_bytes(*b"IPBSTORE");
const VERSION: u32 = 4;
/// Where the table starts (the header is smaller).
pub(super) const TABLE_OFFSET: usize = 128;
/// Allocation granularity and alignment in the data area.
pub const ALIGN: usize = 64;
/// The most table entries a store may have.
pub const MAX_OBJECTS_LIMIT: usize = 1 << 20;
pub(super) const FLAG_EVICT: u32 = 1;

pub(super) const FREE: u32 = 0;
pub(super) const CREATING: u32 = 1;
pub(super) const SEALED: u32 = 2;
pub(super) const DELETING: u32 = 3;

/// Holder records per object: distinct processes that may hold views of it at once.
pub(crate) const HOLDERS: usize = 16;

shared_layout! {
    /// The header at offset 0 of a store segment.
    #[derive(Debug)]
    pub(crate) struct RawHeader {
        /// Written last (release) by the creator.
        pub(crate) magic: AtomicU64,
        pub(crate) version: AtomicU32,
        /// Bit 0: evict sealed unheld objects when full.
        pub(crate) flags: AtomicU32,
        /// The metadata lock: 0 = free, otherwise the holder (see `pid_lock`).
        pub(crate) lock: AtomicU32,
        /// Unused (the lock keeps its waiting bit in its own word).
        pub(crate) reserved: AtomicU32,
        /// Bumped (under the lock) by every seal; `get` sleeps on it.
        pub(crate) seal_seq: AtomicU32,
        pub(crate) seal_waiters: AtomicU32,
        pub(crate) table_offset: AtomicU64,
        pub(crate) entries: AtomicU64,
        pub(crate) data_offset: AtomicU64,
        pub(crate) capacity: AtomicU64,
        pub(crate) total_size: AtomicU64,
        /// Seal counter: the order objects were sealed in (for eviction).
        pub(crate) clock: AtomicU64,
    }
}

shared_layout! {
    /// One process holding views of an object: its pid and how many views it holds.
    #[derive(Debug)]
    pub(crate) struct RawHolder {
        pub(crate) pid: AtomicU32,
        pub(crate) count: AtomicU32,
    }
}

shared_layout! {
    /// One entry of the object table.
    #[derive(Debug)]
    pub(crate) struct RawEntry {
        /// Free, creating, sealed or deleting (see `store`).
        pub(crate) state: AtomicU32,
        /// The pid of the process creating the object (while creating).
        pub(crate) creator: AtomicU32,
        /// The 20-byte object id as five native-endian words.
        pub(crate) id: [AtomicU32; 5],
        /// Bumped whenever the entry is taken for a new object, so stale handles notice.
        pub(crate) generation: AtomicU32,
        /// The allocation in the data area: offset from the data area's start and length.
        pub(crate) offset: AtomicU64,
        pub(crate) alloc_len: AtomicU64,
        /// The object's size in bytes (at most `alloc_len`).
        pub(crate) size: AtomicU64,
        /// The header's clock when the object was sealed.
        pub(crate) sealed_at: AtomicU64,
        pub(crate) holders: [RawHolder; HOLDERS],
    }
}

/// Where things are in a store segment, checked against the segment's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) entries: usize,
    pub(super) data_offset: usize,
    pub(super) capacity: usize,
    pub(super) total: usize,
}

impl Geometry {
    pub(super) fn new(name: &str, capacity: usize, entries: usize) -> io::Result<Geometry> {
        if entries == 0 || entries > MAX_OBJECTS_LIMIT {
            return Err(invalid_input(format_args!(
                "create object store {name:?}: max_objects {entries} is not in 1..={MAX_OBJECTS_LIMIT}"
            )));
        }
        let too_big = || {
            invalid_input(format_args!(
                "create object store {name:?}: capacity {capacity} is too large"
            ))
        };
        let capacity = round_up(capacity, ALIGN).ok_or_else(too_big)?;
        let data_offset = data_offset(entries).ok_or_else(too_big)?;
        let total = data_offset.checked_add(capacity).ok_or_else(too_big)?;
        if total > shm::SIZE_MAX {
            return Err(too_big());
        }
        Ok(Geometry {
            entries,
            data_offset,
            capacity,
            total,
        })
    }

    /// Reads and checks the geometry in `header` against a segment of `len` bytes.
    pub(super) fn read(header: &RawHeader, len: usize) -> Result<Geometry, String> {
        let magic = header.magic.load(Acquire);
        let version = header.version.load(Relaxed);
        if magic != MAGIC {
            return Err(format!(
                "bad magic {magic:#018x} (expected {MAGIC:#018x}): not an ipcbox object store"
            ));
        }
        if version != VERSION {
            return Err(format!("version {version}, this ipcbox reads {VERSION}"));
        }
        let table = header.table_offset.load(Relaxed);
        let entries = header.entries.load(Relaxed);
        let data = header.data_offset.load(Relaxed);
        let capacity = header.capacity.load(Relaxed);
        let total = header.total_size.load(Relaxed);
        if table != TABLE_OFFSET as u64 {
            return Err(format!("table offset {table}, expected {TABLE_OFFSET}"));
        }
        let entries = usize::try_from(entries)
            .ok()
            .filter(|&n| n > 0 && n <= MAX_OBJECTS_LIMIT)
            .ok_or_else(|| format!("table size {entries} not in 1..={MAX_OBJECTS_LIMIT}"))?;
        let expected = data_offset(entries).unwrap_or(usize::MAX);
        if data != expected as u64 {
            return Err(format!(
                "data offset {data}, expected {expected} for {entries} entries"
            ));
        }
        let capacity = usize::try_from(capacity)
            .ok()
            .filter(|c| c % ALIGN == 0)
            .ok_or_else(|| format!("capacity {capacity} not a multiple of {ALIGN}"))?;
        let end = expected.checked_add(capacity);
        if end != Some(len) || total != len as u64 {
            return Err(format!(
                "data offset {expected} + capacity {capacity} (total recorded {total}) does not \
                 match the segment's {len} bytes"
            ));
        }
        Ok(Geometry {
            entries,
            data_offset: expected,
            capacity,
            total: len,
        })
    }
}

pub(super) fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|n| n / to * to)
}

fn data_offset(entries: usize) -> Option<usize> {
    let table = entries.checked_mul(size_of::<RawEntry>())?;
    round_up(TABLE_OFFSET.checked_add(table)?, rustix::param::page_size())
}

pub(super) fn init(map: &Mapping, geo: &Geometry, flags: u32) -> io::Result<()> {
    let header: &RawHeader =
        view(map, 0).ok_or_else(|| io::Error::other("store segment too small for its header"))?;
    // A fresh segment is zeroed: every entry is FREE already.
    header.version.store(VERSION, Relaxed);
    header.flags.store(flags, Relaxed);
    header.table_offset.store(TABLE_OFFSET as u64, Relaxed);
    header.entries.store(geo.entries as u64, Relaxed);
    header.data_offset.store(geo.data_offset as u64, Relaxed);
    header.capacity.store(geo.capacity as u64, Relaxed);
    header.total_size.store(geo.total as u64, Relaxed);
    header.magic.store(MAGIC, Release);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_is_checked() {
        assert!(Geometry::new("x", 100, 0).is_err());
        assert!(Geometry::new("x", usize::MAX, 10).is_err());
        let g = Geometry::new("x", 100, 10).unwrap();
        assert_eq!(g.capacity, 128);
        assert_eq!(g.data_offset % rustix::param::page_size(), 0);
    }
}
