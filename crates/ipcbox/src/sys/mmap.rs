//! Shared memory mappings: the one place that turns a file descriptor into addressable memory.
//!
//! Every mechanism that lives in shared memory (segments, locks, queues, the object store)
//! builds on [`Mapping`]. The memory is shared with other processes, so it is never handed out
//! as a Rust reference to plain data: callers go through atomics or copy bytes in and out.

use std::io;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use rustix::mm::{mmap, mmap_anonymous, msync, munmap, MapFlags, MsyncFlags, ProtFlags};

mod region;
mod view;

pub(crate) use region::Region;

pub use view::Pod;
pub(crate) use view::{
    assert_shared_state, cast_slice, cast_slice_mut, cells, shared_layout, slice, view, CastError,
    Cell, Placed, SharedBytes, SharedState,
};

/// A `MAP_SHARED` mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    release: Release,
}

/// How a mapping is given back to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// `munmap(ptr, len)`: memory from `mmap`.
    Munmap,
    /// `shmdt(ptr)`: a System V segment attached with `shmat`.
    Shmdt,
}

// SAFETY: the mapping is plain memory owned by this value; access to its contents goes through
// atomics or explicit copies, which are sound from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only exposes the address and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared, readable and (if `writable`) writable.
    pub(crate) fn map_fd(fd: impl AsFd, len: usize, writable: bool) -> io::Result<Mapping> {
        Mapping::map_fd_at(fd, 0, len, writable)
    }

    /// Maps `len` bytes of `fd` from `offset` (a multiple of the page size), shared.
    pub(crate) fn map_fd_at(
        fd: impl AsFd,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map 0 bytes",
            ));
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a null address lets the kernel choose a fresh range, so no existing memory
        // is replaced; the result is owned by the returned Mapping and unmapped once on drop.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )?
        };
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
            release: Release::Munmap,
        })
    }

    /// Maps `len` bytes of fresh zeroed memory, shared with the children this process forks.
    pub(crate) fn anonymous(len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map 0 bytes",
            ));
        }
        // SAFETY: a null address lets the kernel choose a fresh range; owned as above.
        let ptr = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )?
        };
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
            release: Release::Munmap,
        })
    }

    /// Attaches the System V segment `shmid` (`shmat`), `len` bytes long (its `shm_segsz`),
    /// read-only unless `writable`; detached with `shmdt` on drop.
    pub(crate) fn shmat(shmid: i32, len: usize, writable: bool) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot attach 0 bytes",
            ));
        }
        let flags = if writable { 0 } else { libc::SHM_RDONLY };
        // SAFETY: a null address lets the kernel choose a fresh range, so no existing memory
        // is replaced; the result is owned by the returned Mapping and detached once on drop.
        let ptr = unsafe { libc::shmat(shmid, std::ptr::null(), flags) };
        if ptr as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast::<u8>())
                .ok_or_else(|| io::Error::other("shmat returned null"))?,
            len,
            release: Release::Shmdt,
        })
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether `offset..offset + len` lies inside the mapping.
    pub(crate) fn contains(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`; `false` (and nothing copied) if the
    /// range is not inside the mapping.
    ///
    /// Another process may write the same bytes meanwhile: the copy then holds some mix of old
    /// and new bytes, which callers must treat as untrusted input.
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> bool {
        if !self.contains(offset, buf.len()) {
            return false;
        }
        // SAFETY: `offset..offset + buf.len()` was checked to lie inside the mapping, which
        // stays mapped while `self` lives; `ptr::copy` tolerates overlap should `buf` itself
        // point into shared memory. Concurrent writers in other processes are outside Rust's
        // memory model: they can only change which byte values are copied.
        unsafe { std::ptr::copy(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copies `data` to `offset`; `false` (and nothing copied) if the range is not inside the
    /// mapping. The mapping must be writable (the caller tracks that).
    pub(crate) fn write_at(&self, offset: usize, data: &[u8]) -> bool {
        if !self.contains(offset, data.len()) {
            return false;
        }
        // SAFETY: the range was checked to lie inside the mapping; no Rust reference to the
        // mapped bytes exists (they are only reached through raw pointers and atomics), so
        // writing through the raw pointer invalidates none.
        unsafe { std::ptr::copy(data.as_ptr(), self.as_ptr().add(offset), data.len()) };
        true
    }

    /// The whole mapping as a byte slice.
    ///
    /// # Safety
    ///
    /// No one may write the mapped bytes while the slice lives: not this process (through
    /// `write_at`, atomics or another slice) and not any other process sharing the memory.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is mapped and readable while `self` lives; the caller guarantees
        // that nobody writes it while the slice lives.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// The whole mapping as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// The mapping must be writable, and while the slice lives no one else may read or write
    /// the mapped bytes: not this process (through another slice, `read_at`, `write_at` or
    /// atomics) and not any other process sharing the memory.
    #[allow(clippy::mut_from_ref)] // the exclusivity is the caller's promise, see # Safety
    pub(crate) unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: the range is mapped while `self` lives; the caller guarantees it is writable
        // and that nobody else touches it while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.len) }
    }

    /// Writes the mapped range `offset..offset + len` back to its file (`msync`), waiting for
    /// the write when `wait` (`MS_SYNC`), only scheduling it otherwise (`MS_ASYNC`).
    pub(crate) fn flush(&self, offset: usize, len: usize, wait: bool) -> io::Result<()> {
        if !self.contains(offset, len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "flush range outside the mapping",
            ));
        }
        // msync wants a page-aligned start: round the start down to its page.
        let page = rustix::param::page_size();
        let start = offset - (self.as_ptr() as usize + offset) % page;
        let flags = if wait {
            MsyncFlags::SYNC
        } else {
            MsyncFlags::ASYNC
        };
        // SAFETY: `start..offset + len` lies inside this mapping (the base is page-aligned,
        // so rounding down stays at or after it); msync does not change the memory.
        unsafe { msync(self.as_ptr().add(start).cast(), offset + len - start, flags)? };
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        match self.release {
            Release::Munmap => {
                // SAFETY: `ptr..ptr+len` is the range this value mapped and nobody else
                // unmaps it.
                let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
            }
            Release::Shmdt => {
                // SAFETY: `ptr` is the address this value attached and nobody else detaches it.
                let _ = unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
            }
        }
    }
}
