//! The element types of typed shared data and how each is stored.

use std::fmt;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

#[cfg(doc)]
use super::{Array, Value};

pub(super) mod sealed {
    use std::sync::atomic::Ordering;

    /// How an element type is stored: in an atomic cell of its size.
    pub trait Element: Copy {
        const TAG: u32;
        const NAME: &'static str;
        type Cell: crate::sys::mmap::Cell;
        fn load(cell: &Self::Cell, order: Ordering) -> Self;
        fn store(cell: &Self::Cell, value: Self, order: Ordering);
    }

    /// Read-modify-write operations on integer cells.
    pub trait Integer: Element {
        fn fetch_add(cell: &Self::Cell, value: Self, order: Ordering) -> Self;
        fn fetch_sub(cell: &Self::Cell, value: Self, order: Ordering) -> Self;
        fn swap(cell: &Self::Cell, value: Self, order: Ordering) -> Self;
        fn compare_exchange(cell: &Self::Cell, current: Self, new: Self) -> Result<Self, Self>;
    }
}

/// Element types of [`Value`] and [`Array`]: `u8`…`u64`, `i8`…`i64`, `f32`, `f64`, `bool`.
///
/// Each is stored in its native byte order and size, and its name and size are recorded in
/// the segment's header, so opening with another type fails instead of reinterpreting bytes.
/// The trait is sealed: the list is fixed.
pub trait Element: Copy + PartialEq + fmt::Debug + Send + Sync + 'static + sealed::Element {}

/// The integer [`Element`] types, which have atomic read-modify-write operations
/// ([`Value::fetch_add`], [`Array::fetch_add`], …).
pub trait IntElement: Element + sealed::Integer {}

macro_rules! element {
    ($($t:ty, $tag:literal, $cell:ty, $to:expr, $from:expr;)*) => {$(
        impl sealed::Element for $t {
            const TAG: u32 = $tag;
            const NAME: &'static str = stringify!($t);
            type Cell = $cell;
            #[inline]
            fn load(cell: &$cell, order: Ordering) -> $t {
                let from = $from;
                from(cell.load(order))
            }
            #[inline]
            fn store(cell: &$cell, value: $t, order: Ordering) {
                let to = $to;
                cell.store(to(value), order)
            }
        }
        impl Element for $t {}
    )*};
}

macro_rules! integer {
    ($($t:ty, $bits:ty;)*) => {$(
        impl sealed::Integer for $t {
            #[inline]
            fn fetch_add(cell: &Self::Cell, value: $t, order: Ordering) -> $t {
                cell.fetch_add(value as $bits, order) as $t
            }
            #[inline]
            fn fetch_sub(cell: &Self::Cell, value: $t, order: Ordering) -> $t {
                cell.fetch_sub(value as $bits, order) as $t
            }
            #[inline]
            fn swap(cell: &Self::Cell, value: $t, order: Ordering) -> $t {
                cell.swap(value as $bits, order) as $t
            }
            #[inline]
            fn compare_exchange(cell: &Self::Cell, current: $t, new: $t) -> Result<$t, $t> {
                cell.compare_exchange(
                    current as $bits,
                    new as $bits,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .map(|v| v as $t)
                .map_err(|v| v as $t)
            }
        }
        impl IntElement for $t {}
    )*};
}

element! {
    u8, 1, AtomicU8, |v: u8| v, |b: u8| b;
    u16, 2, AtomicU16, |v: u16| v, |b: u16| b;
    u32, 3, AtomicU32, |v: u32| v, |b: u32| b;
    u64, 4, AtomicU64, |v: u64| v, |b: u64| b;
    i8, 5, AtomicU8, |v: i8| v as u8, |b: u8| b as i8;
    i16, 6, AtomicU16, |v: i16| v as u16, |b: u16| b as i16;
    i32, 7, AtomicU32, |v: i32| v as u32, |b: u32| b as i32;
    i64, 8, AtomicU64, |v: i64| v as u64, |b: u64| b as i64;
    f32, 9, AtomicU32, f32::to_bits, f32::from_bits;
    f64, 10, AtomicU64, f64::to_bits, f64::from_bits;
    bool, 11, AtomicU8, u8::from, |b: u8| b != 0;
}

integer! {
    u8, u8; u16, u16; u32, u32; u64, u64;
    i8, u8; i16, u16; i32, u32; i64, u64;
}

/// The name and size of the element type with `tag`, for error messages.
pub(super) fn element_name(tag: u32) -> Option<(&'static str, usize)> {
    fn of<T: Element>() -> (u32, &'static str, usize) {
        (T::TAG, T::NAME, size_of::<T>())
    }
    [
        of::<u8>(),
        of::<u16>(),
        of::<u32>(),
        of::<u64>(),
        of::<i8>(),
        of::<i16>(),
        of::<i32>(),
        of::<i64>(),
        of::<f32>(),
        of::<f64>(),
        of::<bool>(),
    ]
    .into_iter()
    .find(|&(t, _, _)| t == tag)
    .map(|(_, name, size)| (name, size))
}
