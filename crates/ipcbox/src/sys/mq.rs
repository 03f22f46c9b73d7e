//! POSIX message queues (`mq_*`) and System V message queues (`msg*`), which `rustix` does not
//! cover: thin safe wrappers over the `libc` calls, one system call each.
//!
//! On Linux a `mqd_t` is a file descriptor (glibc's `mq_close` is `close`), so an open POSIX
//! queue is held as an [`OwnedFd`].

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

use super::cvt;

/// Size of the `long mtype` that starts every System V message buffer (`struct msgbuf`).
pub(crate) const MTYPE_SIZE: usize = mem::size_of::<libc::c_long>();

/// `mq_open(name, oflag, mode, attr)`; `attr` is `(mq_maxmsg, mq_msgsize)` for a queue this call
/// creates (`None`: the kernel's defaults).
pub(crate) fn mq_open(
    name: &CStr,
    oflag: libc::c_int,
    mode: u32,
    attr: Option<(i64, i64)>,
) -> io::Result<OwnedFd> {
    let mut raw_attr = zeroed_mq_attr();
    let attr_ptr = match attr {
        Some((maxmsg, msgsize)) => {
            raw_attr.mq_maxmsg = maxmsg;
            raw_attr.mq_msgsize = msgsize;
            &mut raw_attr as *mut libc::mq_attr
        }
        None => ptr::null_mut(),
    };
    // SAFETY: `name` is NUL-terminated; the variadic arguments are the `mode_t` (promoted to an
    // unsigned int) and a pointer to an `mq_attr` that lives across the call, or NULL.
    let fd = cvt(unsafe {
        libc::mq_open(
            name.as_ptr(),
            oflag | libc::O_CLOEXEC,
            mode as libc::c_uint,
            attr_ptr,
        )
    })?;
    // SAFETY: `mq_open` succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mq_unlink(name)`.
pub(crate) fn mq_unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    cvt(unsafe { libc::mq_unlink(name.as_ptr()) })?;
    Ok(())
}

fn zeroed_mq_attr() -> libc::mq_attr {
    // SAFETY: `mq_attr` is plain integers (and integer padding); all zeroes is a valid value.
    unsafe { mem::zeroed() }
}

/// `mq_getattr`: `(mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs)`.
pub(crate) fn mq_getattr(fd: BorrowedFd<'_>) -> io::Result<(i64, i64, i64, i64)> {
    let mut attr = zeroed_mq_attr();
    // SAFETY: `fd` is open for the call; `attr` is a writable `mq_attr`.
    cvt(unsafe { libc::mq_getattr(fd.as_raw_fd(), &mut attr) })?;
    Ok((
        attr.mq_flags,
        attr.mq_maxmsg,
        attr.mq_msgsize,
        attr.mq_curmsgs,
    ))
}

/// `mq_setattr` of `mq_flags` (only `O_NONBLOCK` can change).
pub(crate) fn mq_set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let mut attr = zeroed_mq_attr();
    attr.mq_flags = if on { i64::from(libc::O_NONBLOCK) } else { 0 };
    // SAFETY: `fd` is open for the call; `attr` is a valid `mq_attr`; old attributes not wanted.
    cvt(unsafe { libc::mq_setattr(fd.as_raw_fd(), &attr, ptr::null_mut()) })?;
    Ok(())
}

/// `mq_timedsend` (`mq_send` when `deadline` is `None`: glibc's `mq_send` is the same system
/// call with a NULL timeout). `deadline` is absolute, on `CLOCK_REALTIME`.
pub(crate) fn mq_send(
    fd: BorrowedFd<'_>,
    msg: &[u8],
    prio: u32,
    deadline: Option<&libc::timespec>,
) -> io::Result<()> {
    let ts = deadline.map_or(ptr::null(), |d| d as *const libc::timespec);
    // SAFETY: `msg` is readable for `msg.len()` bytes; `ts` is NULL or a valid timespec; `fd`
    // is open for the call.
    cvt(unsafe {
        libc::mq_timedsend(
            fd.as_raw_fd(),
            msg.as_ptr().cast::<libc::c_char>(),
            msg.len(),
            prio,
            ts,
        )
    })?;
    Ok(())
}

/// `mq_timedreceive` (`mq_receive` when `deadline` is `None`) into `buf`: `(length, priority)`.
pub(crate) fn mq_receive(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Option<&libc::timespec>,
) -> io::Result<(usize, u32)> {
    let ts = deadline.map_or(ptr::null(), |d| d as *const libc::timespec);
    let mut prio: libc::c_uint = 0;
    // SAFETY: `buf` is writable for `buf.len()` bytes and the kernel writes at most that many;
    // `prio` is a writable c_uint; `ts` is NULL or valid; `fd` is open for the call.
    let n = cvt(unsafe {
        libc::mq_timedreceive(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
            &mut prio,
            ts,
        )
    })?;
    Ok((n as usize, prio))
}

/// `msgget(key, flags)`: the queue identifier.
pub(crate) fn msgget(key: i32, flags: libc::c_int) -> io::Result<i32> {
    // SAFETY: no pointers are involved.
    cvt(unsafe { libc::msgget(key, flags) })
}

/// `msgsnd(id, msgbuf, msgbuf.len() - MTYPE_SIZE, flags)`: `msgbuf` is a whole `struct msgbuf`,
/// the `long mtype` (native endian) followed by the data.
pub(crate) fn msgsnd(id: i32, msgbuf: &[u8], flags: libc::c_int) -> io::Result<()> {
    assert!(msgbuf.len() >= MTYPE_SIZE, "msgbuf without its mtype");
    // SAFETY: `msgbuf` is readable for its whole length, which is the mtype plus `msgsz`
    // bytes; the kernel copies it (no alignment is required of a user buffer).
    cvt(unsafe {
        libc::msgsnd(
            id,
            msgbuf.as_ptr().cast::<libc::c_void>(),
            msgbuf.len() - MTYPE_SIZE,
            flags,
        )
    })?;
    Ok(())
}

/// `msgrcv(id, msgbuf, msgbuf.len() - MTYPE_SIZE, msgtyp, flags)`: the data length; the mtype is
/// in the first [`MTYPE_SIZE`] bytes of `msgbuf`, the data after it.
pub(crate) fn msgrcv(
    id: i32,
    msgbuf: &mut [u8],
    msgtyp: libc::c_long,
    flags: libc::c_int,
) -> io::Result<usize> {
    assert!(
        msgbuf.len() >= MTYPE_SIZE,
        "msgbuf without room for its mtype"
    );
    // SAFETY: `msgbuf` is writable for its whole length; the kernel writes the mtype and at
    // most `msgsz` = len - MTYPE_SIZE data bytes after it.
    let n = cvt(unsafe {
        libc::msgrcv(
            id,
            msgbuf.as_mut_ptr().cast::<libc::c_void>(),
            msgbuf.len() - MTYPE_SIZE,
            msgtyp,
            flags,
        )
    })?;
    Ok(n as usize)
}

/// `msgctl(id, IPC_STAT)`.
pub(crate) fn msgctl_stat(id: i32) -> io::Result<libc::msqid_ds> {
    // SAFETY: `msqid_ds` is plain integers; all zeroes is a valid value.
    let mut ds: libc::msqid_ds = unsafe { mem::zeroed() };
    // SAFETY: `ds` is a writable `msqid_ds`.
    cvt(unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) })?;
    Ok(ds)
}

/// `msgctl(id, IPC_SET)` with `ds` (from [`msgctl_stat`], fields changed).
pub(crate) fn msgctl_set(id: i32, ds: &libc::msqid_ds) -> io::Result<()> {
    let mut ds = *ds;
    // SAFETY: `ds` is a valid `msqid_ds`; IPC_SET only reads it.
    cvt(unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) })?;
    Ok(())
}

/// `msgctl(id, IPC_RMID)`.
pub(crate) fn msgctl_rmid(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID does not use the buffer argument.
    cvt(unsafe { libc::msgctl(id, libc::IPC_RMID, ptr::null_mut()) })?;
    Ok(())
}
