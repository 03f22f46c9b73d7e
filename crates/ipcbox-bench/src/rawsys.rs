//! The raw rows' unsafe code, beside `os.rs`: anonymous shared memory for the cache-line and
//! ring baselines, and bare `mq_*` / `msg*` calls for the kernel-queue baselines.
//!
//! Each item is a safe wrapper that checks what the call needs (lengths, bounds, alignment), so
//! the rows themselves stay safe code.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use rustix::mm::{MapFlags, ProtFlags};

/// Anonymous `MAP_SHARED` memory (`mmap`), made before `fork` so parent and child see the same
/// bytes; `munmap` on drop (in each process, for its own mapping). Every raw row that shares
/// memory maps it with this.
#[derive(Debug)]
pub struct SharedMemory {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMemory {
    /// Maps `len` bytes (at least one page), zero-filled and page-aligned.
    ///
    /// # Errors
    ///
    /// The `mmap` error, naming the size.
    pub fn new(len: usize) -> io::Result<SharedMemory> {
        let len = len.max(1);
        // SAFETY: a new mapping at an address the kernel chooses aliases no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }
        .map_err(|e| io::Error::new(e.kind(), format!("mmap {len} bytes of shared memory: {e}")))?;
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(SharedMemory { ptr, len })
    }

    /// The mapping's first byte; the memory is valid for `len` bytes while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The 8-byte atomic at byte offset `off`.
    ///
    /// # Panics
    ///
    /// If `off` is not 8-aligned or the word is out of bounds (a bug in the row).
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(
            off % 8 == 0 && off + 8 <= self.len,
            "word {off} of {}",
            self.len
        );
        // SAFETY: in bounds and aligned (the mapping is page-aligned); the memory lives as long
        // as `self`, and all access to words is atomic.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// Copies `src` to byte offset `off`. Callers order it with an atomic store (the other
    /// process reads these bytes only after an acquire load that sees that store).
    ///
    /// # Panics
    ///
    /// Out of bounds (a bug in the row).
    #[inline]
    pub fn write(&self, off: usize, src: &[u8]) {
        assert!(off <= self.len && src.len() <= self.len - off);
        // SAFETY: in bounds; `src` is a private buffer, never inside the mapping's bytes that
        // the other side reads at the same time (the rows' index protocol keeps them apart).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len())
        }
    }

    /// Writes zeros over the whole mapping, so that its pages are in memory before a
    /// measurement (a round's warm-up may not touch them all).
    pub fn prefault(&self) {
        // SAFETY: exactly the mapped range; done before `fork`, while no other process uses it.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, self.len) }
    }

    /// Copies from byte offset `off` into `dst` (ordered by the caller as for `write`).
    ///
    /// # Panics
    ///
    /// Out of bounds (a bug in the row).
    #[inline]
    pub fn read(&self, off: usize, dst: &mut [u8]) {
        assert!(off <= self.len && dst.len() <= self.len - off);
        // SAFETY: in bounds; `dst` is private memory, not inside the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory; every shared access goes through atomics or through the
// copy functions that the rows order with atomics.
unsafe impl Send for SharedMemory {}

fn last_error(what: impl std::fmt::Display) -> io::Error {
    let err = io::Error::last_os_error();
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// `mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, {maxmsg, msgsize})`: a new POSIX queue.
///
/// # Errors
///
/// The `mq_open` error, naming the queue and its size.
pub fn mq_create(name: &str, maxmsg: usize, msgsize: usize) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::other("queue name contains NUL"))?;
    // SAFETY: an all-zero mq_attr is valid.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = maxmsg as libc::c_long;
    attr.mq_msgsize = msgsize as libc::c_long;
    // SAFETY: `c` is a NUL-terminated string and `attr` a valid mq_attr, both alive for the call.
    let fd = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
            &attr as *const libc::mq_attr,
        )
    };
    if fd < 0 {
        return Err(last_error(format_args!(
            "mq_open {name} ({maxmsg} messages of {msgsize} bytes)"
        )));
    }
    // SAFETY: on Linux an mqd_t is a file descriptor, new and ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mq_unlink(name)`.
pub fn mq_unlink(name: &str) {
    if let Ok(c) = CString::new(name) {
        // SAFETY: NUL-terminated string alive for the call.
        unsafe { libc::mq_unlink(c.as_ptr()) };
    }
}

/// `mq_send(fd, msg, 0)`, retried on `EINTR`.
///
/// # Errors
///
/// The `mq_send` error.
#[inline]
pub fn mq_send(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: `msg` is valid for `msg.len()` bytes; the fd is a message queue.
        let r = unsafe { libc::mq_send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `mq_receive(fd, buf)`, retried on `EINTR`: the message's length.
///
/// # Errors
///
/// The `mq_receive` error (`EMSGSIZE` when `buf` is shorter than the queue's message size).
#[inline]
pub fn mq_receive(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; a null priority pointer is
        // allowed.
        let r = unsafe {
            libc::mq_receive(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                std::ptr::null_mut(),
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `msgget(IPC_PRIVATE, IPC_CREAT | 0600)`: a new System V queue's id.
///
/// # Errors
///
/// The `msgget` error.
pub fn msg_create() -> io::Result<i32> {
    // SAFETY: no pointers.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    if id < 0 {
        return Err(last_error("msgget(IPC_PRIVATE)"));
    }
    Ok(id)
}

/// `msgctl(id, IPC_RMID)`.
pub fn msg_remove(id: i32) {
    // SAFETY: IPC_RMID ignores the buffer pointer.
    unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

/// `msgsnd(id, buf, len, 0)` where `buf` is a `struct msgbuf`: an 8-byte `mtype` then the
/// payload; retried on `EINTR`.
///
/// # Errors
///
/// The `msgsnd` error; `InvalidInput` when `buf` is shorter than its type field.
#[inline]
pub fn msgsnd(id: i32, buf: &[u8]) -> io::Result<()> {
    let Some(len) = buf.len().checked_sub(8) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    loop {
        // SAFETY: `buf` holds the type and `len` payload bytes, valid for reads.
        let r = unsafe { libc::msgsnd(id, buf.as_ptr().cast(), len, 0) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `msgrcv(id, buf, len, 0, 0)` into a `struct msgbuf` (8-byte type, then room for the
/// payload): the payload's length.
///
/// # Errors
///
/// The `msgrcv` error; `InvalidInput` when `buf` is shorter than its type field.
#[inline]
pub fn msgrcv(id: i32, buf: &mut [u8]) -> io::Result<usize> {
    let Some(len) = buf.len().checked_sub(8) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    loop {
        // SAFETY: `buf` is valid for writes of the type field and `len` payload bytes.
        let r = unsafe { libc::msgrcv(id, buf.as_mut_ptr().cast(), len, 0, 0) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
