//! Raw parts of the object store (`shm::store`): its header and table entries as atomics,
//! byte views of object data, typed views of plain-old-data, and a liveness check for pids.
//!
//! The store's metadata (header, table) is only touched through atomics, so a peer writing it
//! at any time can change values but never cause a data race here. Object *data* is handed out
//! as byte slices ([`ObjectMem`]); why that is sound is explained there.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

use super::mmap::Mapping;
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

/// The two mappings of one store segment: read-write for metadata and objects being created,
/// read-only (`PROT_READ`) for the views of sealed objects.
#[derive(Debug)]
pub(crate) struct StoreMaps {
    pub(crate) rw: Mapping,
    pub(crate) ro: Mapping,
}

/// The bytes of one object, `offset..offset + len` of both mappings, kept mapped by the `Arc`.
///
/// # Soundness
///
/// Handing out `&[u8]` / `&mut [u8]` into shared memory is sound only while nobody else
/// writes (or, for `&mut`, reads) those bytes. Inside ipcbox the store's protocol guarantees
/// it: an `ObjectMem` is only made by `shm::store` for an allocation it recorded in the table
/// under the store's lock; a writable one only for the object its own handle is creating
/// (no one else can see the object before it is sealed, and the allocation is never handed
/// out twice), a read-only one only for a sealed object it holds (sealed bytes are never
/// written again, and the space is not reused while a holder record exists). Other processes
/// are outside Rust's reach: one that ignores the protocol (writes a sealed object through its
/// own mapping, or corrupts the table) can change the bytes under a view. That is the caveat
/// every shared-memory crate documents (memmap2's `Mmap`); `shm::store` documents it too.
#[derive(Debug)]
pub(crate) struct ObjectMem {
    maps: Arc<StoreMaps>,
    offset: usize,
    len: usize,
    writable: bool,
}

impl ObjectMem {
    /// `None` when the range does not lie inside the mappings.
    pub(crate) fn new(
        maps: Arc<StoreMaps>,
        offset: usize,
        len: usize,
        writable: bool,
    ) -> Option<ObjectMem> {
        if !maps.rw.contains(offset, len) || !maps.ro.contains(offset, len) {
            return None;
        }
        Some(ObjectMem {
            maps,
            offset,
            len,
            writable,
        })
    }

    fn ptr(&self) -> NonNull<u8> {
        let base = if self.writable {
            self.maps.rw.as_ptr()
        } else {
            self.maps.ro.as_ptr()
        };
        // `offset` lies inside the mapping (checked in `new`), so the address is not null.
        NonNull::new(base.wrapping_add(self.offset)).unwrap_or(NonNull::dangling())
    }

    /// The object's bytes (through the read-only mapping unless writable).
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the range lies inside a live mapping (checked in `new`; the `Arc` keeps it
        // mapped while `self` lives); nobody writes it meanwhile, by the store protocol (see
        // the type's docs); a writable view hands out `&mut` only through `&mut self`.
        unsafe { std::slice::from_raw_parts(self.ptr().as_ptr(), self.len) }
    }

    /// The object's bytes, writable; `None` for a read-only view.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: the range lies inside the live read-write mapping; `&mut self` excludes
        // every other reference from this view, and by the store protocol no other view of
        // this allocation exists in any process while it is being created.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr().as_ptr(), self.len) })
    }

    /// The address of the first byte.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr().as_ptr()
    }
}

/// Plain old data: types for which every bit pattern is a valid value and that have no padding,
/// so a typed view ([`ObjectRef::as_slice_of`](crate::shm::store::ObjectRef::as_slice_of)) of
/// any bytes is sound.
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

/// The error for a failed `cast_slice`, naming the type and the object.
pub(crate) fn cast_error<T>(e: CastError, len: usize, addr: *const u8, what: &str) -> io::Error {
    let ty = std::any::type_name::<T>();
    let size = std::mem::size_of::<T>();
    let align = std::mem::align_of::<T>();
    let why = match e {
        CastError::Size => format!("its {len} bytes are not a whole number of {size}-byte {ty}"),
        CastError::Misaligned => {
            format!("its address {addr:p} is not aligned to {align} bytes for {ty}")
        }
    };
    crate::error::invalid_input(format_args!("view {what} as [{ty}]: {why}"))
}

/// Views `n` table entries starting at `offset` in `map`, or `None` when they do not fit or
/// are misaligned.
pub(crate) fn table(map: &Mapping, offset: usize, n: usize) -> Option<&[RawEntry]> {
    let len = n.checked_mul(std::mem::size_of::<RawEntry>())?;
    if !map.contains(offset, len) {
        return None;
    }
    let ptr = map.as_ptr().wrapping_add(offset).cast::<RawEntry>();
    if !ptr.is_aligned() {
        return None;
    }
    // SAFETY: the range lies inside the live mapping, which `&map` keeps mapped for the
    // returned lifetime; alignment was checked; `RawEntry` is made of atomics only and accepts
    // any bit pattern (it is `SharedState`), so shared views of memory other processes write
    // are sound.
    Some(unsafe { std::slice::from_raw_parts(ptr, n) })
}
