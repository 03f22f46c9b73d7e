//! Reinterpreting memory without copying it: slices of plain numbers as their bytes, and a
//! value of a generic type as the one concrete type it turns out to be.
//!
//! The codec uses both to move bulk data (`Vec<u8>`, `Vec<f32>`, …) as one block instead of
//! one element at a time.

use std::any::TypeId;
use std::mem::{self, ManuallyDrop};

/// Number types with no padding bytes and no invalid bit patterns: a slice of them is a slice
/// of initialised bytes, and any bytes are a slice of them.
///
/// # Safety
///
/// Implement only for types with both properties.
pub(crate) unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty)*) => ($(
        // SAFETY: a primitive number: no padding, every bit pattern is a value.
        unsafe impl Pod for $t {}
    )*)
}

pod! { u8 i8 u16 i16 u32 i32 u64 i64 u128 i128 f32 f64 }

/// The bytes of `s`, in memory order.
pub(crate) fn as_bytes<T: Pod>(s: &[T]) -> &[u8] {
    // SAFETY: `T` has no padding (Pod), so all `size_of_val(s)` bytes behind the pointer are
    // initialised and borrowed for as long as `s`; `u8` needs no alignment.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), mem::size_of_val(s)) }
}

/// A new `Vec<T>` whose memory holds `bytes` (a whole number of `T`s), copied in one block.
///
/// # Panics
///
/// If `bytes.len()` is not a multiple of `size_of::<T>()` (callers check it first).
pub(crate) fn vec_from_bytes<T: Pod>(bytes: &[u8]) -> Vec<T> {
    let size = mem::size_of::<T>().max(1);
    assert_eq!(bytes.len() % size, 0, "not a whole number of elements");
    let n = bytes.len() / size;
    let mut v = Vec::<T>::with_capacity(n);
    // SAFETY: the allocation holds `n` elements, `n * size == bytes.len()` bytes, and does not
    // overlap `bytes` (it is new). After the copy the first `n` elements are initialised, and
    // any bytes are a valid `T` (Pod).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr().cast::<u8>(), bytes.len());
        v.set_len(n);
    }
    v
}

/// The bytes of `v` as signed bytes, in the same allocation.
pub(crate) fn bytes_into_i8(v: Vec<u8>) -> Vec<i8> {
    let mut v = ManuallyDrop::new(v);
    let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
    // SAFETY: `i8` has the size and alignment of `u8` and every bit pattern is one, so the
    // allocation (made for `cap` bytes) is a valid `Vec<i8>` of `len` initialised elements;
    // `v` is never dropped, so it is owned exactly once.
    unsafe { Vec::from_raw_parts(ptr.cast::<i8>(), len, cap) }
}

/// Types that name no lifetime anywhere: a type whose `TypeId` with every lifetime erased
/// equals theirs is the very same type.
///
/// # Safety
///
/// Implement only for types without lifetime parameters, at any depth.
pub(crate) unsafe trait Concrete: 'static {}

// SAFETY: `Vec<T>` of a primitive number names no lifetime.
unsafe impl<T: Pod> Concrete for Vec<T> {}

/// Whether `A` is `B`. `A` may borrow (no `'static` bound): its lifetimes are erased before
/// the comparison, which is exact because `B` has none (Concrete).
pub(crate) fn is<A: ?Sized, B: Concrete>() -> bool {
    typeid::of::<A>() == TypeId::of::<B>()
}

/// `a` as a `B`, if `A` is `B`.
pub(crate) fn downcast_ref<A: ?Sized, B: Concrete>(a: &A) -> Option<&B> {
    if !is::<A, B>() {
        return None;
    }
    // SAFETY: `A` is `B` (same lifetime-erased type, and `B` names no lifetime), so the
    // pointer points to a valid `B` borrowed for as long as `a`; `A` is sized since `B` is.
    Some(unsafe { &*(a as *const A).cast::<B>() })
}

/// `b` moved into an `A`, if `A` is `B`; `b` back otherwise.
pub(crate) fn cast<B: Concrete, A>(b: B) -> Result<A, B> {
    if !is::<A, B>() {
        return Err(b);
    }
    let b = ManuallyDrop::new(b);
    // SAFETY: `A` is `B` (see `downcast_ref`): reading the value out moves it, and `b` is
    // never dropped, so it is owned exactly once.
    Ok(unsafe { std::ptr::read((&*b as *const B).cast::<A>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_only_the_same_type() {
        let v = vec![1u8, 2, 3];
        assert_eq!(downcast_ref::<_, Vec<u8>>(&v), Some(&v));
        assert_eq!(downcast_ref::<_, Vec<i8>>(&v), None);
        assert!(is::<Vec<f32>, Vec<f32>>());
        assert!(!is::<[u8], Vec<u8>>());
        assert!(!is::<&[u8], Vec<u8>>());
        let back: Vec<u8> = cast(v.clone()).unwrap();
        assert_eq!(back, v);
        assert_eq!(cast::<_, String>(v.clone()), Err(v));
        assert_eq!(bytes_into_i8(vec![0, 1, 255]), [0, 1, -1]);
    }

    #[test]
    fn bytes_round_trip() {
        let v = [1.5f32, -0.0];
        let bytes = as_bytes(&v);
        assert_eq!(bytes.len(), 8);
        assert_eq!(vec_from_bytes::<f32>(bytes), v);
        assert!(vec_from_bytes::<u64>(&[]).is_empty());
    }
}
