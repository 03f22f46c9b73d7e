//! Checked views of a mapping: typed references into memory shared with other processes, made
//! only after the range has been checked to lie inside the mapping and to be aligned.
//!
//! Everything viewed here accepts any bit pattern and is only accessed through atomics (or, for
//! plain bytes, under a protocol its owner documents), so a peer writing the memory at any time
//! can change values but never cause a data race in this process.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
use std::sync::Arc;

use super::Mapping;

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

/// The address of `n` values of type `T` from `offset` in `map`, if they lie inside the mapping
/// and are aligned.
fn checked<T>(map: &Mapping, offset: usize, n: usize) -> Option<*const T> {
    let len = n.checked_mul(size_of::<T>())?;
    if !map.contains(offset, len) {
        return None;
    }
    let ptr = map.as_ptr().wrapping_add(offset).cast::<T>();
    ptr.is_aligned().then_some(ptr.cast_const())
}

/// Views `len` cells of type `C` from `offset` in `map`, or `None` when they do not fit or
/// are misaligned.
pub(crate) fn cells<C: Cell>(map: &Mapping, offset: usize, len: usize) -> Option<&[C]> {
    let ptr = checked::<C>(map, offset, len)?;
    // SAFETY: the range lies inside the live mapping, which `&map` keeps mapped for the
    // returned lifetime; alignment was checked; `C: Cell` is atomics accepting any bit pattern.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Views `n` values of type `T` from `offset` in `map` (a table of entries), or `None` when
/// they do not fit or are misaligned.
pub(crate) fn slice<T: SharedState>(map: &Mapping, offset: usize, n: usize) -> Option<&[T]> {
    let ptr = checked::<T>(map, offset, n)?;
    // SAFETY: the range lies inside the live mapping, which `&map` keeps mapped for the
    // returned lifetime; alignment was checked; `T: SharedState` accepts any bit pattern and
    // is only mutated through atomics, so shared views of memory other processes write are
    // sound.
    Some(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Types made only of atomics and cells whose every bit pattern is valid, so that a view of
/// them in memory shared with other (possibly hostile) processes is sound.
///
/// # Safety
///
/// Implementors must be `#[repr(C)]`/`#[repr(transparent)]`, accept any bit pattern, and only
/// be mutated through atomics or `UnsafeCell`s.
pub(crate) unsafe trait SharedState {}

/// Views the `T` at `offset` in `map`, or `None` when it does not fit or is misaligned.
pub(crate) fn view<T: SharedState>(map: &Mapping, offset: usize) -> Option<&T> {
    let ptr = checked::<T>(map, offset, 1)?;
    // SAFETY: the range lies inside the live mapping, which `&map` keeps mapped for the
    // returned lifetime; alignment was checked; `T: SharedState` accepts any bit pattern.
    Some(unsafe { &*ptr })
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

/// Declares a `#[repr(C)]` struct that lives in shared memory, pins every field at the byte
/// offset written beside it, and implements [`SharedState`] for it, so [`view`] can hand out
/// references to it.
///
/// - Every field must itself be `SharedState` (an atomic integer, an array of them, or another
///   struct declared with this macro). That is checked at compile time, which is what makes
///   the `unsafe impl` below sound whatever module the struct is declared in.
/// - Every field's offset is checked at compile time against the one given (`= 8`), the one
///   LAYOUT.md gives, so the code and the description cannot drift apart unnoticed.
///
/// ```text
/// shared_layout! {
///     /// What it is.
///     #[derive(Debug)]
///     pub(crate) struct Header {
///         pub(crate) magic: AtomicU32 = 0,
///         pub(crate) ids: [AtomicU32; 5] = 4,
///     }
/// }
/// ```
macro_rules! shared_layout {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_attr:meta])*
                $field_vis:vis $field:ident: $ty:ty = $offset:expr
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
            $(assert!(
                ::core::mem::offset_of!($name, $field) == $offset,
                concat!(stringify!($name), ".", stringify!($field), " is not at its offset"),
            );)*
        };

        // SAFETY: `#[repr(C)]`, and every field is `SharedState` (checked just above), so the
        // struct accepts any bit pattern and is only mutated through the atomics it is made of.
        #[allow(unsafe_code)]
        unsafe impl $crate::sys::mmap::SharedState for $name {}
    };
}

pub(crate) use shared_layout;

/// A mapping with a lock of type `L` at `lock_offset` and `len` cells of type `C` from
/// `data_offset`, all checked to lie inside the mapping and be aligned when placed.
///
/// The mapping is owned here, so the places stay valid for as long as `self` lives, whatever
/// the caller does with the rest of the object the mapping came from (its name, its file).
pub(crate) struct Placed<L, C> {
    /// Keeps the places mapped; unmapped when `self` is dropped.
    _map: Mapping,
    lock: NonNull<L>,
    cells: NonNull<C>,
    len: usize,
}

// SAFETY: the pointers point into the owned mapping, which is shared memory accessed only
// through atomics; sending the mapping sends them with it.
unsafe impl<L: SharedState + Sync, C: Cell> Send for Placed<L, C> {}
// SAFETY: as above; `&Placed` only hands out shared references to atomics and the lock.
unsafe impl<L: SharedState + Sync, C: Cell> Sync for Placed<L, C> {}

impl<L: SharedState, C: Cell> Placed<L, C> {
    /// Places the lock and `len ≥ 1` cells in `map`.
    pub(crate) fn new(
        map: Mapping,
        lock_offset: usize,
        data_offset: usize,
        len: usize,
    ) -> io::Result<Placed<L, C>> {
        let base = map.as_ptr();
        let lock_fits = lock_offset
            .checked_add(size_of::<L>())
            .is_some_and(|end| end <= map.len())
            && lock_offset % align_of::<L>() == 0;
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
        let lock = NonNull::new(base.wrapping_add(lock_offset).cast::<L>());
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

    pub(crate) fn lock(&self) -> &L {
        // SAFETY: checked in `new` to lie inside the mapping, aligned; `self` keeps it
        // mapped while it lives; `L: SharedState` accepts any bytes.
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

/// `offset..offset + len` of a mapping, kept mapped by the `Arc`, handed out as byte slices.
///
/// # Soundness
///
/// A `&[u8]` into shared memory is sound only while nobody writes those bytes, and a
/// `&mut [u8]` only while nobody else reads or writes them. That cannot be checked here: make
/// one only for bytes a protocol protects that way, and name the protocol where it is made.
/// Other processes are outside Rust's reach: one that ignores the protocol can change the
/// bytes under a view, the caveat of every shared mapping (memmap2's `Mmap`), which the
/// public type built on this one must document.
#[derive(Debug)]
pub(crate) struct SharedBytes {
    map: Arc<Mapping>,
    offset: usize,
    len: usize,
    writable: bool,
}

impl SharedBytes {
    /// `None` when the range does not lie inside the mapping. A `writable` view must be of a
    /// writable mapping.
    pub(crate) fn new(
        map: Arc<Mapping>,
        offset: usize,
        len: usize,
        writable: bool,
    ) -> Option<SharedBytes> {
        if !map.contains(offset, len) {
            return None;
        }
        Some(SharedBytes {
            map,
            offset,
            len,
            writable,
        })
    }

    fn ptr(&self) -> NonNull<u8> {
        // `offset` lies inside the mapping (checked in `new`), so the address is not null.
        NonNull::new(self.map.as_ptr().wrapping_add(self.offset)).unwrap_or(NonNull::dangling())
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the range lies inside a live mapping (checked in `new`; the `Arc` keeps it
        // mapped while `self` lives); nobody writes it meanwhile, by the maker's protocol (see
        // the type's docs); a writable view hands out `&mut` only through `&mut self`.
        unsafe { std::slice::from_raw_parts(self.ptr().as_ptr(), self.len) }
    }

    /// The bytes, writable; `None` for a read-only view.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: the range lies inside the live, writable mapping; `&mut self` excludes every
        // other reference from this view, and by the maker's protocol no other view of these
        // bytes exists in any process while this one lives.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr().as_ptr(), self.len) })
    }

    /// The address of the first byte.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr().as_ptr()
    }
}

/// Plain old data: types for which every bit pattern is a valid value and that have no padding,
/// so viewing any bytes as a slice of them (as the object store's `as_slice_of` does) is sound.
///
/// Implemented for the primitive integers and floats and arrays of them.
///
/// # Safety
///
/// Implementors must be `Copy`, have no padding bytes, no invalid bit patterns (no `bool`,
/// `char`, enums, references or pointers) and no interior mutability.
pub unsafe trait Pod: Copy + Send + Sync + 'static {}

macro_rules! pod {
    ($($t:ty)*) => ($(
        // SAFETY: a primitive number: no padding, every bit pattern valid.
        unsafe impl Pod for $t {}
    )*)
}
pod! { u8 i8 u16 i16 u32 i32 u64 i64 u128 i128 usize isize f32 f64 }

// SAFETY: an array of `Pod` has no padding between its elements and no invalid patterns.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// Why bytes cannot be viewed as `[T]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CastError {
    /// The address is not aligned for `T`.
    Misaligned,
    /// The length is not a multiple of `size_of::<T>()` (or `T` is zero-sized).
    Size,
}

/// Views `bytes` as a slice of `T`.
pub(crate) fn cast_slice<T: Pod>(bytes: &[u8]) -> Result<&[T], CastError> {
    let size = std::mem::size_of::<T>();
    if size == 0 || bytes.len() % size != 0 {
        return Err(CastError::Size);
    }
    if !bytes.as_ptr().cast::<T>().is_aligned() {
        return Err(CastError::Misaligned);
    }
    // SAFETY: aligned, in bounds (len / size elements of `size` bytes), `T: Pod` accepts any
    // bytes; the lifetime is the input's.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

/// Views `bytes` as a mutable slice of `T`.
pub(crate) fn cast_slice_mut<T: Pod>(bytes: &mut [u8]) -> Result<&mut [T], CastError> {
    let size = std::mem::size_of::<T>();
    if size == 0 || bytes.len() % size != 0 {
        return Err(CastError::Size);
    }
    if !bytes.as_ptr().cast::<T>().is_aligned() {
        return Err(CastError::Misaligned);
    }
    // SAFETY: as in `cast_slice`; `T: Pod` also means any `T` written is valid bytes, and the
    // exclusive borrow is carried over.
    Ok(unsafe {
        std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T>(), bytes.len() / size)
    })
}
