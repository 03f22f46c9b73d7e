//! A mapping that starts with a header of type `H`, viewed once when the region is made, and
//! bounds-checked access to the rest: byte copies in and out, [`SharedState`] views at computed
//! offsets, and prefetch hints.
//!
//! Everything past the header takes offsets, never pointers, and checks them against the
//! mapping, so the safe modules above cannot reach outside it whatever a peer wrote into the
//! header.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};

use super::{view, Mapping, SharedState};

/// A shared mapping with a header of type `H` at offset 0: a queue's or a channel's memory.
///
/// The seam to the rest of the crate: any `MAP_SHARED` [`Mapping`], anonymous or the mapping
/// of a named `shm::Segment`, can back it.
pub(crate) struct Region<H> {
    /// Keeps the memory mapped; unmapped when `self` is dropped.
    _map: Mapping,
    // Copies of the mapping's address and length, so the hot path inlines.
    ptr: *mut u8,
    len: usize,
    header: PhantomData<H>,
}

// SAFETY: `ptr` points into `map`, which is Send and Sync; Region only reaches the memory
// through atomics (`H: SharedState` and the views of `at`, which are Sync) and bounds-checked
// copies, as Mapping does.
unsafe impl<H: SharedState + Sync> Send for Region<H> {}
// SAFETY: as above.
unsafe impl<H: SharedState + Sync> Sync for Region<H> {}

impl<H> fmt::Debug for Region<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl<H: SharedState> Region<H> {
    /// The region of `map`, or `None` when `map` is too small for the header (or misaligned
    /// for it, which a page-aligned mapping never is).
    pub(crate) fn new(map: Mapping) -> Option<Region<H>> {
        view::<H>(&map, 0)?;
        Some(Region {
            ptr: map.as_ptr(),
            len: map.len(),
            _map: map,
            header: PhantomData,
        })
    }

    /// The header.
    #[inline]
    pub(crate) fn header(&self) -> &H {
        // SAFETY: `new` viewed an `H` at offset 0 of the mapping: it fits and is aligned; the
        // mapping lives as long as `self`; `H: SharedState` accepts any bit pattern and is only
        // mutated through atomics.
        unsafe { &*self.ptr.cast::<H>() }
    }

    /// The `T` at `off`, or `None` when it leaves the mapping or is misaligned (a corrupted
    /// header computed `off`).
    #[inline]
    pub(crate) fn at<T: SharedState>(&self, off: usize) -> Option<&T> {
        let ptr = self.check(off, size_of::<T>(), align_of::<T>()).ok()?;
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `self`;
        // `T: SharedState` accepts any bit pattern and is only mutated through atomics.
        Some(unsafe { &*ptr.cast::<T>() })
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn check(&self, off: usize, len: usize, align: usize) -> io::Result<*mut u8> {
        // The mapping is page aligned, so an offset aligned for a type is an aligned address.
        match off.checked_add(len) {
            Some(end) if end <= self.len && off % align == 0 => {
                // SAFETY: `off + len <= map.len()`, so the result stays inside the mapping.
                Ok(unsafe { self.ptr.add(off) })
            }
            _ => Err(self.out_of_bounds(off, len)),
        }
    }

    #[cold]
    fn out_of_bounds(&self, off: usize, len: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "shared memory access at offset {off} (+{len}) outside its {} byte mapping",
                self.len
            ),
        )
    }

    /// Copies `src` into the mapping at `off`.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the range leaves the mapping (a corrupted header computed it).
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) -> io::Result<()> {
        let dst = self.check(off, src.len(), 1)?;
        // SAFETY: `dst..dst+len` is inside the mapping (checked) and cannot overlap `src`, a
        // private buffer. The protocol gives the range to this process alone (it lies in the
        // ring's free space or a slot it owns); a peer breaking the protocol can only garble
        // the bytes, which carry no validity invariant.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        Ok(())
    }

    /// Copies from the mapping at `off` into `dst`.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the range leaves the mapping.
    #[inline]
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) -> io::Result<()> {
        let src = self.check(off, dst.len(), 1)?;
        // SAFETY: as in `write`, with the roles swapped; any byte pattern is a valid `u8`.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Replaces the contents of `out` with the `len` bytes at `off` (no zero-filling first).
    ///
    /// # Errors
    ///
    /// `InvalidData` if the range leaves the mapping.
    #[inline]
    pub(crate) fn read_to_vec(&self, off: usize, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let src = self.check(off, len, 1)?;
        out.clear();
        out.reserve(len);
        // SAFETY: `src..src+len` is inside the mapping (checked); `out` has room for `len`
        // bytes (reserved) and does not overlap the mapping; after the copy its first `len`
        // bytes are initialised, so `set_len(len)` is sound.
        unsafe {
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), len);
            out.set_len(len);
        }
        Ok(())
    }

    /// Appends the `len` bytes at `off` to `out`.
    pub(crate) fn read_append(&self, off: usize, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let src = self.check(off, len, 1)?;
        out.reserve(len);
        let old = out.len();
        // SAFETY: `src..src+len` is inside the mapping (checked); `out` has room for `len`
        // more bytes after its `old` initialised ones (reserved) and does not overlap the
        // mapping; after the copy its first `old + len` bytes are initialised.
        unsafe {
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(old), len);
            out.set_len(old + len);
        }
        Ok(())
    }

    /// Runs `f` on the `len` bytes at `off`, in place.
    ///
    /// For bytes the caller's protocol keeps unwritten while `f` runs: a published record or
    /// slot that only this process may free. A peer breaking the protocol can only change
    /// the bytes `f` sees, never make it reach outside the mapping.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the range leaves the mapping.
    #[inline]
    pub(crate) fn with_bytes<R>(
        &self,
        off: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<R> {
        let src = self.check(off, len, 1)?;
        // SAFETY: `src..src+len` is inside the mapping (checked), which lives as long as
        // `self`, and any byte pattern is a valid `u8`. The protocol named above keeps every
        // process from writing the range while the shared borrow lives (the borrow ends
        // with `f`); a peer that ignores it can only garble bytes that carry no invariant.
        Ok(f(unsafe { std::slice::from_raw_parts(src, len) }))
    }

    /// Runs `f` on the `len` bytes at `off`, writable in place.
    ///
    /// For bytes the caller's protocol gives to this process alone while `f` runs: the
    /// ring's free space past the tail, under the producers' lock, or a slot that only this
    /// process's sender fills before it publishes it.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the range leaves the mapping.
    #[inline]
    pub(crate) fn with_bytes_mut<R>(
        &self,
        off: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> io::Result<R> {
        let dst = self.check(off, len, 1)?;
        // SAFETY: `dst..dst+len` is inside the writable mapping (checked), which lives as
        // long as `self`; any byte pattern is a valid `u8`. The protocol named above gives
        // the range to this process alone, and `f` is the only code holding a reference to
        // it until it returns; a peer that ignores the protocol can only garble bytes that
        // carry no invariant.
        Ok(f(unsafe { std::slice::from_raw_parts_mut(dst, len) }))
    }

    /// Asks the CPU to fetch the cache line at `off` for writing (`prefetchw`), so a store
    /// there soon after does not wait for the line to come from another core. A hint only:
    /// an offset outside the mapping is ignored.
    #[inline]
    pub(crate) fn prefetch_write(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        self.prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(off);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = off;
    }

    /// Asks the CPU to fetch the cache line at `off` for reading (`prefetcht0`), as
    /// [`Region::prefetch_write`] for a load.
    #[inline]
    pub(crate) fn prefetch_read(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        self.prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(off);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = off;
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn prefetch<const HINT: i32>(&self, off: usize) {
        if let Ok(ptr) = self.check(off, 1, 1) {
            // SAFETY: a prefetch never faults and changes no memory; `ptr` is inside the
            // mapping anyway (checked).
            unsafe { std::arch::x86_64::_mm_prefetch::<HINT>(ptr.cast_const().cast()) };
        }
    }
}
