//! System V shared memory: `shmget`, `shmctl`. Attaching is
//! [`Mapping::shmat`](super::mmap::Mapping::shmat).

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
