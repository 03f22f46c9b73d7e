//! Socket system calls: creation, one wait for readiness, `send` without `SIGPIPE`, `SCM_RIGHTS`
//! and `SO_PEERCRED`. Plain types in and out (rustix types, descriptors, the raw `ucred`); what
//! an endpoint is, the stale-file bind policy and connecting with a timeout are the `socket`
//! module's.
//!
//! All of it goes through `rustix::net`, except `SO_PEERCRED` (see [`peer_cred`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::error::{invalid_input, ResultExt};

/// `socket(2)` with `SOCK_CLOEXEC`.
pub(crate) fn socket(
    family: AddressFamily,
    ty: SocketType,
    nonblocking: bool,
) -> io::Result<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    Ok(net::socket_with(family, ty, flags, None)?)
}

/// One `poll(2)` of `fd` for `events`, waiting at most `timeout` (`None`: no limit): `Ok(true)`
/// when `fd` is ready, `Ok(false)` when the time passed first. A signal that interrupts the
/// wait is an [`io::ErrorKind::Interrupted`] error: the caller waits again for what is left.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let timeout = timeout.map(|left| rustix::time::Timespec {
        tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: left.subsec_nanos().into(),
    });
    let mut fds = [PollFd::from_borrowed_fd(fd, events)];
    Ok(poll(&mut fds, timeout.as_ref())? > 0)
}

/// `sendmsg(2)` with the descriptors `fds` as an `SCM_RIGHTS` control message.
pub(crate) fn send_fds(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    flags: SendFlags,
) -> io::Result<usize> {
    let msg = SendAncillaryMessage::ScmRights(fds);
    let mut space = vec![MaybeUninit::<u8>::uninit(); msg.size()];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(msg) {
        return Err(invalid_input(format_args!(
            "{} descriptors do not fit one control message",
            fds.len()
        )));
    }
    let iov = [IoSlice::new(bytes)];
    loop {
        match net::sendmsg(fd, &iov, &mut control, flags | SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            other => {
                return other.context_with(|| format!("sendmsg with {} descriptors", fds.len()))
            }
        }
    }
}

/// `recvmsg(2)` of up to `buf.len()` bytes and `max_fds` descriptors (`MSG_CMSG_CLOEXEC`).
/// Returns the byte count (the message's real length when `flags` has `MSG_TRUNC`), whether
/// the data was truncated, and the descriptors. Truncated control data (`MSG_CTRUNC`) is an
/// error, and the descriptors that did arrive are closed.
pub(crate) fn recv_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    flags: RecvFlags,
) -> io::Result<(usize, bool, Vec<OwnedFd>)> {
    let mut space =
        vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(max_fds.max(1)))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let len = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match net::recvmsg(fd, &mut iov, &mut control, flags | RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => break other.context_with(|| "recvmsg")?,
        }
    };
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(iter) = m {
            fds.extend(iter);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) || fds.len() > max_fds {
        let got = fds.len();
        drop(fds);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "recvmsg: the peer sent more descriptors than the {max_fds} asked for \
                 (control data truncated; the {got} that arrived were closed)"
            ),
        ));
    }
    Ok((msg.bytes, msg.bytes > len, fds))
}

/// `SO_PEERCRED`, read as the raw `struct ucred`.
///
/// Not `rustix::net::sockopt::socket_peercred`: its `UCred` holds the pid as a non-zero `Pid`,
/// but the kernel reports pid 0 (with uid and gid -1) for a socket without a Unix peer (TCP,
/// UDP, an unconnected datagram socket), and pid 0 for a peer in a PID namespace we cannot
/// see; rustix would build an invalid `Pid` from that. The raw struct leaves both to the caller.
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes for the whole call and `len` gives the
    // size of `cred`; the kernel writes at most `len` bytes, and any bit pattern is a valid
    // `ucred` (plain integers).
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    super::cvt(ret).context_with(|| "get peer credentials (SO_PEERCRED)")?;
    Ok(cred)
}

/// Blocking `send(2)` of one buffer with `MSG_NOSIGNAL` (a closed peer is `EPIPE`, never a
/// `SIGPIPE` death), restarting on `EINTR`.
pub(crate) fn send(fd: BorrowedFd<'_>, bytes: &[u8], flags: SendFlags) -> io::Result<usize> {
    loop {
        match net::send(fd, bytes, flags | SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            other => return Ok(other?),
        }
    }
}
