//! Raw parts of the object store (`store`): its header and table entries as atomics, and a
//! liveness check for pids. Views of object data and of plain-old-data are in `sys::mmap`.
//!
//! The store's metadata (header, table) is only touched through atomics, so a peer writing it
//! at any time can change values but never cause a data race here.

use std::sync::atomic::{AtomicU32, AtomicU64};

use super::sync::SharedState;

/// Holder records per object: distinct processes that may hold views of it at once.
pub(crate) const HOLDERS: usize = 16;

/// The header at offset 0 of a store segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawHeader {
    /// Written last (release) by the creator.
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    /// Bit 0: evict sealed unheld objects when full.
    pub(crate) flags: AtomicU32,
    /// The metadata lock: 0 = free, otherwise the holder (see `sync::pid_lock`).
    pub(crate) lock: AtomicU32,
    /// Unused (the lock keeps its waiting bit in its own word).
    pub(crate) reserved: AtomicU32,
    /// Bumped (under the lock) by every seal; `get` sleeps on it.
    pub(crate) seal_seq: AtomicU32,
    pub(crate) seal_waiters: AtomicU32,
    pub(crate) table_offset: AtomicU64,
    pub(crate) entries: AtomicU64,
    pub(crate) data_offset: AtomicU64,
    pub(crate) capacity: AtomicU64,
    pub(crate) total_size: AtomicU64,
    /// Seal counter: the order objects were sealed in (for eviction).
    pub(crate) clock: AtomicU64,
}

/// One process holding views of an object: its pid and how many views it holds.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawHolder {
    pub(crate) pid: AtomicU32,
    pub(crate) count: AtomicU32,
}

/// One entry of the object table.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawEntry {
    /// Free, creating, sealed or deleting (see `shm::store`).
    pub(crate) state: AtomicU32,
    /// The pid of the process creating the object (while creating).
    pub(crate) creator: AtomicU32,
    /// The 20-byte object id as five native-endian words.
    pub(crate) id: [AtomicU32; 5],
    /// Bumped whenever the entry is taken for a new object, so stale handles notice.
    pub(crate) generation: AtomicU32,
    /// The allocation in the data area: offset from the data area's start and length.
    pub(crate) offset: AtomicU64,
    pub(crate) alloc_len: AtomicU64,
    /// The object's size in bytes (at most `alloc_len`).
    pub(crate) size: AtomicU64,
    /// The header's clock when the object was sealed.
    pub(crate) sealed_at: AtomicU64,
    pub(crate) holders: [RawHolder; HOLDERS],
}

// SAFETY: `#[repr(C)]` structs made only of `AtomicU32`/`AtomicU64` (and arrays of them), valid
// for any bit pattern.
unsafe impl SharedState for RawHeader {}
// SAFETY: as above.
unsafe impl SharedState for RawHolder {}
// SAFETY: as above.
unsafe impl SharedState for RawEntry {}

/// Whether process `pid` still runs: `pidfd_open` fails with `ESRCH` for a reaped (or never
/// existing) process, and the pidfd polls readable once it has exited (a zombie counts as dead).
///
/// Errors other than `ESRCH` (`EMFILE`, permission) count as alive: never reclaim on doubt.
pub(crate) fn process_alive(pid: u32) -> bool {
    process_alive_if(pid, || true)
}

/// Whether process `pid` is alive and `same()` (run while a pidfd pins the process, so what
/// it reads about `pid` in `/proc` is about this process if it is still alive afterwards)
/// says it is the expected one. Unknown (a pidfd cannot be had for another reason) counts
/// as alive.
pub(crate) fn process_alive_if(pid: u32, same: impl FnOnce() -> bool) -> bool {
    // `Err`, from `EINVAL`: not a process (a thread ID, or none at all).
    alive_by_pidfd(pid, rustix::process::PidfdFlags::empty(), same).unwrap_or_default()
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for one thread, readable once that thread has exited.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// As [`process_alive_if`] for thread `tid`, through a thread pidfd; `None` where the kernel
/// has none (before Linux 6.9), so the caller must look in `/proc` instead.
pub(crate) fn thread_alive_if(tid: u32, same: impl FnOnce() -> bool) -> Option<bool> {
    alive_by_pidfd(
        tid,
        rustix::process::PidfdFlags::from_bits_retain(PIDFD_THREAD),
        same,
    )
    .ok()
}

/// Whether `id` is alive and `same()`, through `pidfd_open(id, flags)`; `Err(())` when the
/// kernel refuses the request (`EINVAL`), any other failure counting as alive.
fn alive_by_pidfd(
    id: u32,
    flags: rustix::process::PidfdFlags,
    same: impl FnOnce() -> bool,
) -> Result<bool, ()> {
    let Some(pid) = i32::try_from(id)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(false);
    };
    match rustix::process::pidfd_open(pid, flags) {
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(rustix::io::Errno::INVAL) => Err(()),
        Err(_) => Ok(true),
        Ok(fd) => {
            if !same() {
                return Ok(false);
            }
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            Ok(match rustix::event::poll(&mut fds, Some(&zero)) {
                Ok(n) => n == 0,
                Err(_) => true,
            })
        }
    }
}
