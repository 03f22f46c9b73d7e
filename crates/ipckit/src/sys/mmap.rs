//! Shared memory mappings: the one place that turns a file descriptor into addressable memory.
//!
//! Every mechanism that lives in shared memory (segments, locks, queues, the object store)
//! builds on [`Mapping`]. The memory is shared with other processes, so it is never handed out
//! as a Rust reference to plain data: callers go through atomics or copy bytes in and out.

use std::io;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use rustix::mm::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};

/// A `MAP_SHARED` mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; access to its contents goes through
// atomics or explicit copies, which are sound from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only exposes the address and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared, readable and (if `writable`) writable.
    pub(crate) fn map_fd(fd: impl AsFd, len: usize, writable: bool) -> io::Result<Mapping> {
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
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
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
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is the range this value mapped and nobody else unmaps it.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
