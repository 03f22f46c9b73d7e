//! System V shared memory: `shmget`, `shmctl`. Attaching is
//! [`Mapping::shmat`](super::mmap::Mapping::shmat).
//!
//! Also the unsafe escape hatches of every `shm` type, `as_slice` and `as_mut_slice`: public
//! `unsafe fn`s, so they are declared here rather than in the safe `shm` module.

use std::io;

use super::cvt;

/// `shmget(key, size, flags)`: the id of the segment with `key`, created if `flags` say so.
pub(crate) fn shmget(key: i32, size: usize, flags: i32) -> io::Result<i32> {
    // SAFETY: shmget takes plain integers and touches no memory of ours.
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// What `shmctl(IPC_STAT)` tells about a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShmStat {
    /// `shm_segsz`: the size in bytes.
    pub(crate) size: usize,
    /// `shm_perm.mode & 0o777`: the permission bits.
    pub(crate) mode: u32,
    /// `shm_nattch`: how many attachments exist.
    pub(crate) attached: u64,
    /// `shm_perm.__key`: the key (`IPC_PRIVATE`, 0, once removed).
    pub(crate) key: i32,
}

/// `shmctl(shmid, IPC_STAT)`.
pub(crate) fn shm_stat(shmid: i32) -> io::Result<ShmStat> {
    // SAFETY: shmid_ds is plain old data, for which all-zero bytes are a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds for the kernel to fill.
    cvt(unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) })?;
    Ok(ShmStat {
        size: ds.shm_segsz,
        mode: u32::from(ds.shm_perm.mode) & 0o777,
        attached: ds.shm_nattch,
        key: ds.shm_perm.__key,
    })
}

/// `shmctl(shmid, IPC_RMID)`: removes the segment once the last attachment is gone; its key
/// is free at once.
pub(crate) fn shm_remove(shmid: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer, so a null pointer is allowed.
    cvt(unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) })?;
    Ok(())
}

/// `as_slice` / `as_mut_slice` for each `shm` type, over its `mapping()`.
macro_rules! unsafe_slices {
    ($($ty:ty),*) => {$(
        impl $ty {
            /// The whole memory as a byte slice.
            ///
            /// # Safety
            ///
            /// While the slice lives, no one may write the memory: not this process, and not
            /// any other process that has it mapped. ipcbox cannot check other processes; use
            /// `read_at` unless a protocol excludes such writes (a lock, or memory that is
            /// never written again once published).
            pub unsafe fn as_slice(&self) -> &[u8] {
                // SAFETY: forwarded from the caller's promise, see # Safety.
                unsafe { self.mapping().as_slice() }
            }

            /// The whole memory as a mutable byte slice.
            ///
            /// # Safety
            ///
            /// The handle must be writable, and while the slice lives no one else may read or
            /// write the memory: not this process, and not any other process that has it mapped.
            pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
                // SAFETY: forwarded from the caller's promise, see # Safety; `&mut self`
                // excludes other slices from this handle.
                unsafe { self.mapping().as_mut_slice() }
            }
        }
    )*};
}

unsafe_slices!(
    crate::shm::Segment,
    crate::shm::SysVSegment,
    crate::shm::FileMap,
    crate::shm::AnonymousMap
);
