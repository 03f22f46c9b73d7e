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

use crate::error::invalid_input;
use crate::shm;
use crate::sys::mmap::view;
use crate::sys::mmap::Mapping;

pub(crate) use crate::layout::store::*;

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
