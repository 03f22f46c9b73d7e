//! Socket system calls shared by the `socket` module: creation, addresses, binding with the
//! stale-file policy, connecting with a timeout, waiting for readiness, and `SCM_RIGHTS`.
//!
//! All of it goes through `rustix::net`, except `SO_PEERCRED` (see [`peer_cred`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    self, sockopt, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrAny,
    SocketAddrUnix, SocketFlags, SocketType,
};

use crate::error::{context, invalid_input, ResultExt};
use crate::socket::{Endpoint, Kind};

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

/// The `sockaddr_un` of a Unix endpoint.
pub(crate) fn unix_addr(ep: &Endpoint) -> io::Result<SocketAddrUnix> {
    match ep {
        Endpoint::Unix { path, .. } => {
            SocketAddrUnix::new(path.as_path()).context_with(|| format!("socket path of \"{ep}\""))
        }
        Endpoint::Abstract { name, .. } => SocketAddrUnix::new_abstract_name(name.as_bytes())
            .context_with(|| format!("abstract name of \"{ep}\"")),
        _ => Err(invalid_input(format_args!(
            "\"{ep}\" is not a Unix endpoint"
        ))),
    }
}

/// The endpoint of an address the kernel reported; `None` for an unnamed Unix socket.
pub(crate) fn endpoint_of(addr: SocketAddrAny, kind: Kind) -> Option<Endpoint> {
    match addr.address_family() {
        AddressFamily::UNIX => {
            let unix = SocketAddrUnix::try_from(addr).ok()?;
            if let Some(path) = unix.path_bytes() {
                use std::os::unix::ffi::OsStrExt;
                let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
                Some(Endpoint::Unix { path, kind })
            } else {
                unix.abstract_name().map(|name| Endpoint::Abstract {
                    name: String::from_utf8_lossy(name).into_owned(),
                    kind,
                })
            }
        }
        AddressFamily::INET | AddressFamily::INET6 => SocketAddr::try_from(addr)
            .ok()
            .map(|a| Endpoint::from_ip(a, kind)),
        _ => None,
    }
}

/// `getsockname(2)` as an endpoint.
pub(crate) fn local_endpoint(fd: BorrowedFd<'_>, kind: Kind) -> io::Result<Option<Endpoint>> {
    Ok(endpoint_of(
        net::getsockname(fd).context_with(|| "getsockname")?,
        kind,
    ))
}

/// `getpeername(2)` as an endpoint.
pub(crate) fn peer_endpoint(fd: BorrowedFd<'_>, kind: Kind) -> io::Result<Option<Endpoint>> {
    Ok(net::getpeername(fd)
        .context_with(|| "getpeername")?
        .and_then(|a| endpoint_of(a, kind)))
}

/// Waits with `poll(2)` until `fd` has one of `events` or `deadline` passes; `Ok(false)` on
/// timeout. `EINTR` restarts the wait with the time that is left.
pub(crate) fn wait(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The deadline `timeout` from now (`None` if it is too far to represent: wait forever).
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A socket file this process created by binding, identified by inode so that drop removes it
/// only if it is still the same file.
#[derive(Debug)]
pub(crate) struct BoundFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    keep: bool,
}

impl BoundFile {
    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for BoundFile {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// `bind(2)` for a Unix endpoint, with the stale-file policy: if the path exists and is a socket
/// nobody listens on (connecting gives `ECONNREFUSED`), it is removed and the bind retried; a
/// live socket gives `AddrInUse` naming the path; anything that is not a socket is never
/// removed. A filesystem socket then gets `mode` (before `listen`, so nobody can connect
/// earlier).
pub(crate) fn bind_unix(
    fd: BorrowedFd<'_>,
    ep: &Endpoint,
    mode: u32,
) -> io::Result<Option<BoundFile>> {
    let addr = unix_addr(ep)?;
    match net::bind(fd, &addr) {
        Ok(()) => {}
        Err(Errno::ADDRINUSE) => {
            let Endpoint::Unix { path, kind } = ep else {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("bind \"{ep}\": the abstract name is in use"),
                ));
            };
            remove_if_stale(path, *kind, ep)?;
            net::bind(fd, &addr).context_with(|| format!("bind \"{ep}\""))?;
        }
        Err(e) => return Err(context(e, format_args!("bind \"{ep}\""))),
    }
    let Endpoint::Unix { path, .. } = ep else {
        return Ok(None);
    };
    let meta = std::fs::symlink_metadata(path)
        .context_with(|| format!("stat the new socket file {}", path.display()))?;
    let file = BoundFile {
        path: path.clone(),
        dev: meta.dev(),
        ino: meta.ino(),
        keep: false,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context_with(|| format!("chmod {mode:o} {}", path.display()))?;
    Ok(Some(file))
}

fn remove_if_stale(path: &Path, kind: Kind, ep: &Endpoint) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .context_with(|| format!("bind \"{ep}\": address in use; stat {}", path.display()))?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "bind \"{ep}\": {} exists and is not a socket; it is left alone",
                path.display()
            ),
        ));
    }
    // A live listener sees this probe as a connection that closes at once.
    let probe = socket(AddressFamily::UNIX, kind.socket_type(), true)?;
    match net::connect(&probe, &unix_addr(ep)?) {
        Err(Errno::CONNREFUSED) => {
            // Nobody has the socket open: a listener died without removing its file.
            std::fs::remove_file(path).context_with(|| {
                format!(
                    "bind \"{ep}\": remove the stale socket file {}",
                    path.display()
                )
            })
        }
        Err(Errno::NOENT) => Ok(()), // removed meanwhile
        _ => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "bind \"{ep}\": a live socket is bound to {} (address in use)",
                path.display()
            ),
        )),
    }
}

/// `connect(2)` with an optional timeout. The timeout uses `SO_SNDTIMEO`, which bounds both a
/// TCP handshake and a wait on a full Unix listen queue; it is reset afterwards.
///
/// A signal handler interrupts a connect that has a timeout even with `SA_RESTART`
/// (signal(7)), so `EINTR` is retried in both forms: a Unix connect starts again with the time
/// that is left; a TCP handshake goes on in the background (`EALREADY`) and is waited for.
pub(crate) fn connect(
    fd: BorrowedFd<'_>,
    addr: &impl net::addr::SocketAddrArg,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let deadline = timeout.and_then(deadline);
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
    let mut interrupted = false;
    let res = loop {
        if let Some(t) = timeout {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => t,
            };
            if interrupted && left.is_zero() {
                break Err(timed_out());
            }
            // SO_SNDTIMEO of zero means "no timeout": use the smallest positive one instead.
            let left = left.max(Duration::from_micros(1));
            sockopt::set_socket_timeout(fd, sockopt::Timeout::Send, Some(left))?;
        }
        match net::connect(fd, addr) {
            Err(Errno::INTR) => interrupted = true,
            // A TCP handshake that a signal interrupted goes on in the background: wait for it.
            Err(Errno::ALREADY) if interrupted => {
                let wait_until = if timeout.is_some() { deadline } else { None };
                if !wait(fd, PollFlags::OUT, wait_until)? {
                    break Err(timed_out());
                }
                break match sockopt::socket_error(fd)? {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
            Err(Errno::ISCONN) if interrupted => break Ok(()),
            Err(Errno::INPROGRESS | Errno::AGAIN) if timeout.is_some() => break Err(timed_out()),
            other => break other.map_err(io::Error::from),
        }
    };
    if timeout.is_some() {
        sockopt::set_socket_timeout(fd, sockopt::Timeout::Send, None)?;
    }
    res
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
