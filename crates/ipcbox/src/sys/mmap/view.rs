//! Checked views of a mapping: typed references into memory shared with other processes, made
//! only after the range has been checked to lie inside the mapping and to be aligned.
//!
//! Everything viewed here accepts any bit pattern and is only accessed through atomics (or, for
//! plain bytes, under a protocol its owner documents), so a peer writing the memory at any time
//! can change values but never cause a data race in this process.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};

use super::Mapping;
use crate::sys::sync::{RawMutex, SharedState};

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

/// Views `len` cells of type `C` from `offset` in `map`, or `None` when they do not fit or
/// are misaligned.
pub(crate) fn cells<C: Cell>(map: &Mapping, offset: usize, len: usize) -> Option<&[C]> {
    let bytes = len.checked_mul(size_of::<C>())?;
    if !map.contains(offset, bytes) {
        return None;
    }
    let ptr = map.as_ptr().wrapping_add(offset).cast::<C>();
    if !ptr.is_aligned() {
        return None;
    }
    // SAFETY: the range lies inside the live mapping, which `&map` keeps mapped for the
    // returned lifetime; alignment was checked; `C: Cell` is atomics accepting any bit pattern.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

// SAFETY: atomic integers accept any bit pattern, have the layout of their integer (C's
// `_Atomic` types) and are only ever mutated atomically.
unsafe impl SharedState for AtomicU8 {}
// SAFETY: as above.
unsafe impl SharedState for AtomicU16 {}
// SAFETY: as above.
unsafe impl SharedState for AtomicU32 {}
// SAFETY: as above.
unsafe impl SharedState for AtomicU64 {}
// SAFETY: an array lays its elements out one after another without padding, so it accepts
// any bit pattern and is only mutated through atomics when its element type does and is.
unsafe impl<T: SharedState, const N: usize> SharedState for [T; N] {}

/// Compiles only for [`SharedState`] types; [`shared_layout!`] calls it for every field.
pub(crate) const fn assert_shared_state<T: SharedState>() {}

/// Declares a `#[repr(C)]` struct that lives in shared memory and implements [`SharedState`]
/// for it, so [`view`](crate::sys::sync::view) can hand out references to it.
///
/// Every field must itself be `SharedState` (an atomic integer, an array of them, or another
/// struct declared with this macro); that is checked at compile time, which is what makes the
/// `unsafe impl` below sound whatever module the struct is declared in.
///
/// ```ignore
/// shared_layout! {
///     /// What it is.
///     #[derive(Debug)]
///     pub(crate) struct Header {
///         pub(crate) magic: AtomicU32,
///         pub(crate) ids: [AtomicU32; 5],
///     }
/// }
/// ```
macro_rules! shared_layout {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_attr:meta])*
                $field_vis:vis $field:ident: $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[repr(C)]
        $vis struct $name {
            $(
                $(#[$field_attr])*
                $field_vis $field: $ty,
            )*
        }

        const _: () = {
            $($crate::sys::mmap::assert_shared_state::<$ty>();)*
        };

        // SAFETY: `#[repr(C)]`, and every field is `SharedState` (checked just above), so the
        // struct accepts any bit pattern and is only mutated through the atomics it is made of.
        #[allow(unsafe_code)]
        unsafe impl $crate::sys::sync::SharedState for $name {}
    };
}

pub(crate) use shared_layout;

/// A mapping with a [`RawMutex`] at `lock_offset` and `len` cells of type `C` from
/// `data_offset`, all checked to lie inside the mapping and be aligned when placed.
///
/// The mapping is owned here, so the places stay valid for as long as `self` lives, whatever
/// the caller does with the rest of the object the mapping came from (its name, its file).
pub(crate) struct Placed<C> {
    /// Keeps the places mapped; unmapped when `self` is dropped.
    _map: Mapping,
    lock: NonNull<RawMutex>,
    cells: NonNull<C>,
    len: usize,
}

// SAFETY: the pointers point into the owned mapping, which is shared memory accessed only
// through atomics; sending the mapping sends them with it.
unsafe impl<C: Cell> Send for Placed<C> {}
// SAFETY: as above; `&Placed` only hands out shared references to atomics and the mutex.
unsafe impl<C: Cell> Sync for Placed<C> {}

impl<C: Cell> Placed<C> {
    /// Places the lock and `len ≥ 1` cells in `map`.
    pub(crate) fn new(
        map: Mapping,
        lock_offset: usize,
        data_offset: usize,
        len: usize,
    ) -> io::Result<Placed<C>> {
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
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{len} elements of {} bytes from offset {data_offset} do not fit in \
                     {len_bytes} bytes",
                    size_of::<C>()
                ),
            ));
        }
        let lock = NonNull::new(base.wrapping_add(lock_offset).cast::<RawMutex>());
        let cells = NonNull::new(base.wrapping_add(data_offset).cast::<C>());
        match (lock, cells) {
            (Some(lock), Some(cells)) => Ok(Placed {
                _map: map,
                lock,
                cells,
                len,
            }),
            _ => Err(io::Error::other("null mapping address")),
        }
    }

    pub(crate) fn lock(&self) -> &RawMutex {
        // SAFETY: checked in `new` to lie inside the mapping, aligned; `self` keeps it
        // mapped while it lives; `RawMutex` is atomics accepting any bytes.
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
        // aligned; `self` keeps them mapped while it lives; atomics of any bit pattern.
        unsafe { std::slice::from_raw_parts(self.cells.as_ptr(), self.len) }
    }
}
