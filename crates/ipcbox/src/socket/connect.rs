//! `connect(2)` with a timeout, and the connected sockets it makes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{self, sockopt, AddressFamily, SocketAddrUnix, SocketFlags};

use super::endpoint::unix_addr;
use super::ready::wait_ready;
use super::{Endpoint, Kind};
use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::sys::socket as sys;

/// `connect(2)` with an optional timeout. The timeout uses `SO_SNDTIMEO`, which bounds both a
/// TCP handshake and a wait on a full Unix listen queue; it is reset afterwards.
///
/// A signal handler interrupts a connect that has a timeout even with `SA_RESTART`
/// (signal(7)), so `EINTR` is retried in both forms: a Unix connect starts again with the time
/// that is left; a TCP handshake goes on in the background (`EALREADY`) and is waited for.
pub(super) fn connect(
    fd: BorrowedFd<'_>,
    addr: &impl net::addr::SocketAddrArg,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let deadline = Deadline::from_timeout(timeout);
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
    let mut interrupted = false;
    let res = loop {
        if let Some(t) = timeout {
            // Forever: a timeout too long to reach; ask the kernel for it all the same.
            let left = deadline.remaining().unwrap_or(t);
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
                if !wait_ready(fd, PollFlags::OUT, deadline)? {
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

/// Creates a socket of `kind` connected to `ep`, optionally within `timeout`.
pub(super) fn connect_fd(
    ep: &Endpoint,
    kind: Kind,
    timeout: Option<Duration>,
) -> io::Result<OwnedFd> {
    if ep.kind() != kind {
        return Err(invalid_input(format_args!(
            "connect to \"{ep}\": a {kind} socket cannot connect to a {} endpoint",
            ep.kind()
        )));
    }
    match ep {
        Endpoint::Unix { .. } | Endpoint::Abstract { .. } => {
            let addr = unix_addr(ep)?;
            let fd = sys::socket(AddressFamily::UNIX, kind.socket_type(), false)
                .context_with(|| format!("connect to \"{ep}\": create a socket"))?;
            if kind == Kind::Datagram {
                // Autobind to a unique abstract name so the peer can answer.
                net::bind(&fd, &SocketAddrUnix::new_unnamed())
                    .context_with(|| format!("autobind for \"{ep}\""))?;
            }
            connect(fd.as_fd(), &addr, timeout)
                .map_err(|e| context(e, format_args!("connect to \"{ep}\"")))?;
            Ok(fd)
        }
        Endpoint::Tcp { .. } | Endpoint::Udp { .. } => {
            let mut last = None;
            for addr in ep.resolve()? {
                let family = if addr.is_ipv4() {
                    AddressFamily::INET
                } else {
                    AddressFamily::INET6
                };
                let fd = sys::socket(family, kind.socket_type(), false)
                    .context_with(|| format!("connect to \"{ep}\": create a socket"))?;
                match connect(fd.as_fd(), &addr, timeout) {
                    Ok(()) => {
                        if kind == Kind::Stream {
                            sockopt::set_tcp_nodelay(&fd, true)
                                .context_with(|| format!("set TCP_NODELAY for \"{ep}\""))?;
                        }
                        return Ok(fd);
                    }
                    Err(e) => last = Some(e),
                }
            }
            let err = last.unwrap_or_else(|| io::Error::other("no address"));
            Err(context(err, format_args!("connect to \"{ep}\"")))
        }
    }
}

pub(super) fn pair_fds(kind: Kind) -> io::Result<(OwnedFd, OwnedFd)> {
    net::socketpair(
        AddressFamily::UNIX,
        kind.socket_type(),
        SocketFlags::CLOEXEC,
        None,
    )
    .context_with(|| format!("socketpair ({kind})"))
}
