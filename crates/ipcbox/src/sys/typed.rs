//! Raw parts of the typed shared values and arrays (`shm::Value`, `shm::Array`): a mapping's
//! owner together with the lock and element cells placed in it, checked once when placed.
//!
//! Elements are only ever accessed through atomics of their size (`AtomicU8` … `AtomicU64`),
//! so a peer writing the memory at any time can change values but never cause a data race in
//! this process.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};

use super::mmap::Mapping;
use super::sync::{RawMutex, SharedState};

/// Atomic cells an element can be stored in: any bit pattern is a valid value.
///
/// # Safety
///
/// Implementors must be atomics (or made of them) valid for every bit pattern, with the
/// alignment of their size.
pub unsafe trait Cell: Send + Sync + 'static {}

// SAFETY: atomics of plain integers accept any bit pattern and are aligned to their size.
unsafe impl Cell for AtomicU8 {}
// SAFETY: as above.
unsafe impl Cell for AtomicU16 {}
// SAFETY: as above.
unsafe impl Cell for AtomicU32 {}
// SAFETY: as above.
unsafe impl Cell for AtomicU64 {}

/// Owners of one shared mapping.
///
/// # Safety
///
/// `mapping` returns the same mapping, never unmapped or remapped, for the owner's whole life.
pub(crate) unsafe trait MapOwner {
    fn mapping(&self) -> &Mapping;

    /// Keeps a name the owner would remove on drop.
    fn detach(&mut self) {}
}

// SAFETY: a segment's mapping is a field set once at construction and unmapped on drop.
unsafe impl MapOwner for crate::shm::Segment {
    fn mapping(&self) -> &Mapping {
        crate::shm::Segment::mapping(self)
    }

    fn detach(&mut self) {
        crate::shm::Segment::detach(self);
    }
}

// SAFETY: as for `Segment`.
unsafe impl MapOwner for crate::shm::AnonymousMap {
    fn mapping(&self) -> &Mapping {
        crate::shm::AnonymousMap::mapping(self)
    }
}

/// The header at the start of a typed segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct TypedHeader {
    /// Written last (release) by the creator.
    pub(crate) magic: AtomicU32,
    pub(crate) version: AtomicU32,
    /// Value or array.
    pub(crate) kind: AtomicU32,
    /// The element type's tag.
    pub(crate) elem_tag: AtomicU32,
    pub(crate) elem_size: AtomicU32,
    /// Where the elements start.
    pub(crate) data_offset: AtomicU32,
    /// Number of elements.
    pub(crate) len: AtomicU64,
    /// `data_offset + len * elem_size`.
    pub(crate) total_size: AtomicU64,
}

// SAFETY: `#[repr(C)]` struct of atomics, valid for any bit pattern.
unsafe impl SharedState for TypedHeader {}

/// An owner of a mapping with a [`RawMutex`] at `lock_offset` and `len` cells of type `C` from
/// `data_offset`, all checked to lie inside the mapping and be aligned when placed.
pub(crate) struct Placed<O, C> {
    owner: O,
    lock: NonNull<RawMutex>,
    cells: NonNull<C>,
    len: usize,
}

// SAFETY: the pointers point into the owner's mapping, which is shared memory accessed only
// through atomics; sending the owner sends them with it.
unsafe impl<O: Send, C: Cell> Send for Placed<O, C> {}
// SAFETY: as above; `&Placed` only hands out shared references to atomics and the mutex.
unsafe impl<O: Sync, C: Cell> Sync for Placed<O, C> {}

impl<O: MapOwner, C: Cell> Placed<O, C> {
    /// Places the lock and `len ≥ 1` cells; hands `owner` back with an error when they do not fit.
    pub(crate) fn new(
        owner: O,
        lock_offset: usize,
        data_offset: usize,
        len: usize,
    ) -> Result<Placed<O, C>, (O, io::Error)> {
        let map = owner.mapping();
        let base = map.as_ptr();
        let lock_fits = lock_offset
            .checked_add(size_of::<RawMutex>())
            .is_some_and(|end| end <= map.len())
            && lock_offset % align_of::<RawMutex>() == 0;
        let data_fits = len
            .checked_mul(size_of::<C>())
            .and_then(|bytes| bytes.checked_add(data_offset))
            .is_some_and(|end| end <= map.len())
            && data_offset % align_of::<C>() == 0
            && len >= 1;
        // Mappings are page aligned, so offsets aligned for a type give aligned addresses.
        if !lock_fits || !data_fits || base as usize % 4096 != 0 {
            let len_bytes = map.len();
            return Err((
                owner,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{len} elements of {} bytes from offset {data_offset} do not fit in \
                         {len_bytes} bytes",
                        size_of::<C>()
                    ),
                ),
            ));
        }
        let lock = NonNull::new(base.wrapping_add(lock_offset).cast::<RawMutex>());
        let cells = NonNull::new(base.wrapping_add(data_offset).cast::<C>());
        match (lock, cells) {
            (Some(lock), Some(cells)) => Ok(Placed {
                owner,
                lock,
                cells,
                len,
            }),
            _ => Err((owner, io::Error::other("null mapping address"))),
        }
    }

    pub(crate) fn owner(&self) -> &O {
        &self.owner
    }

    /// Keeps the owner's name after it is dropped.
    pub(crate) fn detach(&mut self) {
        self.owner.detach();
    }

    pub(crate) fn lock(&self) -> &RawMutex {
        // SAFETY: checked in `new` to lie inside the mapping, aligned; the owner keeps it
        // mapped while `self` lives; `RawMutex` is atomics accepting any bytes.
        unsafe { self.lock.as_ref() }
    }

    /// The first cell (there is always at least one).
    #[inline]
    pub(crate) fn first(&self) -> &C {
        // SAFETY: as in `lock`; `C: Cell` accepts any bit pattern.
        unsafe { self.cells.as_ref() }
    }

    /// All cells.
    #[inline]
    pub(crate) fn cells(&self) -> &[C] {
        // SAFETY: `len` cells from `cells` were checked in `new` to lie inside the mapping,
        // aligned; the owner keeps them mapped while `self` lives; atomics of any bit pattern.
        unsafe { std::slice::from_raw_parts(self.cells.as_ptr(), self.len) }
    }
}

// SAFETY: a mapping is its own mapping.
unsafe impl MapOwner for Mapping {
    fn mapping(&self) -> &Mapping {
        self
    }
}

// SAFETY: a shared reference keeps the owner, and so its mapping, alive and unchanged.
unsafe impl<O: MapOwner> MapOwner for &O {
    fn mapping(&self) -> &Mapping {
        (**self).mapping()
    }
}

/// The memory a typed value or array lives in.
#[derive(Debug)]
pub(crate) enum Memory {
    Named(crate::shm::Segment),
    Anonymous(crate::shm::AnonymousMap),
}

// SAFETY: forwards to the owners above, which each satisfy the contract.
unsafe impl MapOwner for Memory {
    fn mapping(&self) -> &Mapping {
        match self {
            Memory::Named(seg) => seg.mapping(),
            Memory::Anonymous(map) => map.mapping(),
        }
    }

    fn detach(&mut self) {
        if let Memory::Named(seg) = self {
            seg.detach();
        }
    }
}
