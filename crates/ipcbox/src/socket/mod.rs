//! Sockets: Unix stream, seqpacket and datagram sockets (filesystem paths and the Linux
//! abstract namespace), socket pairs, TCP and UDP, with listeners, file-descriptor passing and
//! peer credentials.
//!
//! Endpoints are strings (see [`Endpoint`]): `unix:/path`, `unix-abstract:name`,
//! `unix-seqpacket:/path`, `unix-dgram:/path`, `tcp:host:port`, `udp:host:port`.
//!
//! | type | what it is |
//! |---|---|
//! | [`Listener`] → [`Stream`] | byte streams (Unix or TCP); `Read` + `Write` (also on `&Stream`) |
//! | [`SeqPacketListener`] → [`SeqPacket`] | connected Unix messages with their boundaries kept |
//! | [`Datagram`] | Unix datagrams or UDP: `send`/`recv`, `send_to`/`recv_from` |
//! | [`Stream::pair`], [`SeqPacket::pair`], [`Datagram::pair`] | `socketpair(2)` |
//!
//! The `try_` and `_timeout` forms of accepting, sending and receiving report "not now" in
//! `Ok` (`Ok(None)` from an accept or a receive, `Ok(false)` from a send), as
//! [the crate's rule](crate#outcomes) says; `connect_timeout`, like std's, fails with
//! [`io::ErrorKind::TimedOut`].
//!
//! Every socket is created close-on-exec. Sends use `MSG_NOSIGNAL`: writing to a closed peer is
//! [`io::ErrorKind::BrokenPipe`], never a `SIGPIPE` death. TCP streams get `TCP_NODELAY` once
//! when they connect or are accepted; no operation makes more than the one system call it
//! needs when it does not have to wait.
//!
//! Over Unix sockets, [`Stream::send_fds`] / [`Stream::recv_fds`] (and the same on
//! [`SeqPacket`] and [`Datagram`]) pass open file descriptors (`SCM_RIGHTS`), and
//! `peer_credentials` tells who is on the other end (`SO_PEERCRED`). A listener can refuse
//! peers of another user: [`Options::same_uid_only`].
//!
//! ```
//! use ipcbox::socket::SeqPacket;
//!
//! let (a, b) = SeqPacket::pair()?;
//! a.send(b"one")?;
//! a.send(b"two")?;
//! let mut buf = [0; 16];
//! assert_eq!(b.recv(&mut buf)?, 3); // "one": message boundaries are kept
//! assert_eq!(&buf[..3], b"one");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Socket files
//!
//! * A listener (or bound datagram socket) creates its socket file with mode 0600 and removes
//!   it on drop, if the path still names the file it created.
//! * When binding finds a socket file whose listener has died (connecting to it is refused),
//!   the file is removed and the bind retried. A live listener sees that check as a
//!   connection that closes at once.
//! * A live listener's path is [`io::ErrorKind::AddrInUse`].
//! * A file that is not a socket is never removed.
//!
//! Two processes that find the same stale file at the same instant may race: one may remove
//! the other's fresh file. Bind under a lock if that matters.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{self, sockopt, AddressFamily, RecvFlags, SendFlags};

use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::pid::Pid;
use crate::sys::socket as sys;

mod bind;
mod connect;
mod endpoint;
mod listener;
mod ready;

use bind::{bind_unix, BoundFile};
use connect::{connect_fd, pair_fds};
use endpoint::{endpoint_of, local_endpoint, peer_endpoint, unix_addr};

pub use endpoint::{Endpoint, Kind, MAX_UNIX_NAME};
pub use listener::{Listener, Options, Refusal, SeqPacketListener};
pub(crate) use ready::wait_ready;

/// The process, user and group of a Unix socket's peer, as recorded when it connected (or
/// created the pair) — `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The peer's process (`None` if it is in a PID namespace this process cannot see).
    pub pid: Option<Pid>,
    /// The peer's effective user ID.
    pub uid: u32,
    /// The peer's effective group ID.
    pub gid: u32,
}

impl From<net::UCred> for Credentials {
    fn from(c: net::UCred) -> Credentials {
        Credentials {
            pid: Pid::from_raw(c.pid.as_raw_nonzero().get()).ok(),
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        }
    }
}

/// The credentials of the peer of the Unix socket `fd` (`SO_PEERCRED`).
fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<Credentials> {
    let cred = sys::peer_cred(fd)?;
    // What the kernel reports for a socket without a Unix peer (TCP, UDP, an unconnected
    // datagram socket); a pid of 0 alone is a peer in a PID namespace we cannot see.
    if cred.pid == 0 && cred.uid == u32::MAX && cred.gid == u32::MAX {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "get peer credentials (SO_PEERCRED): the socket has no Unix peer that sent any",
        ));
    }
    Ok(Credentials {
        pid: Pid::from_raw(cred.pid).ok(),
        uid: cred.uid,
        gid: cred.gid,
    })
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}, uid {}, gid {}", self.uid, self.gid),
            None => write!(f, "pid unknown, uid {}, gid {}", self.uid, self.gid),
        }
    }
}

/// Methods every connected socket type has.
macro_rules! socket_common {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// `socketpair(2)`: two connected Unix sockets of this kind, close-on-exec.
            ///
            /// # Errors
            ///
            /// The OS error when out of descriptors.
            #[doc(alias = "socketpair")]
            pub fn pair() -> io::Result<($ty, $ty)> {
                let (a, b) = pair_fds($kind)?;
                Ok(($ty::from(a), $ty::from(b)))
            }

            /// This socket's own address (`getsockname(2)`); `None` for an unnamed Unix socket.
            ///
            /// # Errors
            ///
            /// The OS error.
            #[doc(alias = "getsockname")]
            pub fn local_endpoint(&self) -> io::Result<Option<Endpoint>> {
                local_endpoint(self.as_fd(), $kind)
            }

            /// The peer's address (`getpeername(2)`); `None` for an unnamed Unix peer.
            ///
            /// # Errors
            ///
            /// `ENOTCONN` ([`io::ErrorKind::NotConnected`]) for an unconnected socket.
            #[doc(alias = "getpeername")]
            pub fn peer_endpoint(&self) -> io::Result<Option<Endpoint>> {
                peer_endpoint(self.as_fd(), $kind)
            }

            /// The pid, uid and gid of the peer of a Unix socket (`SO_PEERCRED`), as they were
            /// when it connected or created the pair.
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::NotConnected`] for a socket without a Unix peer (TCP, UDP, an
            /// unconnected datagram socket); the OS error otherwise.
            #[doc(alias = "SO_PEERCRED")]
            pub fn peer_credentials(&self) -> io::Result<Credentials> {
                peer_cred(self.as_fd())
            }

            /// Sends `bytes` with the open descriptors `fds` attached: `sendmsg(2)` with an
            /// `SCM_RIGHTS` control message, over Unix sockets only. The receiver gets
            /// duplicates of the descriptors, and ours stay open. At least one byte must be
            /// sent with them.
            ///
            /// # Errors
            ///
            /// The OS error (`EINVAL` on a non-Unix socket, `ETOOMANYREFS` past the kernel's
            /// limit of 253 descriptors per message).
            #[doc(alias = "SCM_RIGHTS")]
            #[doc(alias = "sendmsg")]
            pub fn send_fds(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
                sys::send_fds(self.as_fd(), bytes, fds, SendFlags::empty())
            }

            /// Receives up to `buf.len()` bytes and at most `max_fds` descriptors
            /// (`recvmsg(2)` with `MSG_CMSG_CLOEXEC`: they arrive close-on-exec). Returns the
            /// byte count and the descriptors, which this process now owns.
            ///
            /// # Errors
            ///
            /// * [`io::ErrorKind::InvalidData`] if the peer sent more descriptors than
            ///   `max_fds`: the control data was truncated, those that arrived are closed and
            ///   the bytes are consumed.
            /// * [`io::ErrorKind::InvalidData`] if a message did not fit `buf`.
            /// * The OS error otherwise.
            #[doc(alias = "recvmsg")]
            pub fn recv_fds(
                &self,
                buf: &mut [u8],
                max_fds: usize,
            ) -> io::Result<(usize, Vec<OwnedFd>)> {
                let trunc = if $kind == Kind::Stream {
                    RecvFlags::empty()
                } else {
                    RecvFlags::TRUNC
                };
                let (n, truncated, fds) = sys::recv_fds(self.as_fd(), buf, max_fds, trunc)?;
                if truncated {
                    return Err(too_long(n, buf.len()));
                }
                Ok((n, fds))
            }

            /// Switches `O_NONBLOCK` on or off.
            ///
            /// # Errors
            ///
            /// The OS error from `fcntl`.
            pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                rustix::io::ioctl_fionbio(&self.0, on)?;
                Ok(())
            }

            /// `SO_RCVTIMEO`: a blocking receive fails with [`io::ErrorKind::WouldBlock`]
            /// after `timeout` (`None`: wait forever).
            ///
            /// # Errors
            ///
            /// The OS error.
            pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Recv, timeout)?;
                Ok(())
            }

            /// `SO_SNDTIMEO`: a blocking send fails with [`io::ErrorKind::WouldBlock`] after
            /// `timeout` (`None`: wait forever).
            ///
            /// # Errors
            ///
            /// The OS error.
            pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                sockopt::set_socket_timeout(&self.0, sockopt::Timeout::Send, timeout)?;
                Ok(())
            }

            /// Shuts down reading, writing or both (`shutdown(2)`); the peer sees end of file
            /// after a write shutdown.
            ///
            /// # Errors
            ///
            /// The OS error, e.g. `ENOTCONN`.
            pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
                let how = match how {
                    std::net::Shutdown::Read => net::Shutdown::Read,
                    std::net::Shutdown::Write => net::Shutdown::Write,
                    std::net::Shutdown::Both => net::Shutdown::Both,
                };
                Ok(net::shutdown(&self.0, how)?)
            }

            /// Duplicates the socket (`dup` with close-on-exec); both handles share it.
            ///
            /// # Errors
            ///
            /// The OS error when out of descriptors.
            pub fn try_clone(&self) -> io::Result<$ty> {
                Ok($ty::from(self.0.try_clone()?))
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                OwnedFd::from(self).into_raw_fd()
            }
        }
    };
}

fn too_long(len: usize, cap: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a message of {len} bytes did not fit the {cap}-byte buffer and was truncated"),
    )
}

/// A connected byte stream: Unix (`SOCK_STREAM`) or TCP.
///
/// It implements [`Read`] and [`Write`], also on `&Stream` so one thread can read while another
/// writes. Each `read`/`write` is one `read(2)`/`send(2)`.
#[derive(Debug)]
pub struct Stream(OwnedFd);

impl Stream {
    /// Connects to a `unix:`, `unix-abstract:` or `tcp:` endpoint (`socket(2)`, `connect(2)`;
    /// TCP: every address the host resolves to in turn, then `TCP_NODELAY`).
    ///
    /// # Errors
    ///
    /// The OS error quoting the endpoint: [`io::ErrorKind::ConnectionRefused`] when nobody
    /// listens, [`io::ErrorKind::NotFound`] for a missing socket file, `InvalidInput` for an
    /// endpoint of another kind.
    pub fn connect(ep: &Endpoint) -> io::Result<Stream> {
        connect_fd(ep, Kind::Stream, None).map(Stream)
    }

    /// [`connect`](Self::connect), giving up after `timeout` with [`io::ErrorKind::TimedOut`]
    /// (a TCP handshake, or a Unix listener whose queue is full).
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect), and `TimedOut`.
    pub fn connect_timeout(ep: &Endpoint, timeout: Duration) -> io::Result<Stream> {
        connect_fd(ep, Kind::Stream, Some(timeout)).map(Stream)
    }

    /// `TCP_NODELAY` (on for every TCP stream ipcbox makes).
    ///
    /// # Errors
    ///
    /// The OS error (e.g. on a Unix socket).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        Ok(sockopt::set_tcp_nodelay(&self.0, on)?)
    }

    /// Whether `TCP_NODELAY` is on.
    ///
    /// # Errors
    ///
    /// The OS error (e.g. on a Unix socket).
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(sockopt::tcp_nodelay(&self.0)?)
    }

    /// Reads what is available without waiting (`recv(2)` with `MSG_DONTWAIT`): `Ok(None)` if
    /// nothing is, `Ok(Some(0))` at end of file.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        recv_once(self.as_fd(), buf, RecvFlags::DONTWAIT)
    }

    /// Reads, waiting at most `timeout` for data: `Ok(None)` when it passes.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        recv_timeout(self.as_fd(), buf, RecvFlags::DONTWAIT, timeout)
    }
}

fn recv_once(fd: BorrowedFd<'_>, buf: &mut [u8], flags: RecvFlags) -> io::Result<Option<usize>> {
    loop {
        match net::recv(fd, &mut *buf, flags) {
            Ok((_, n)) => return Ok(Some(n)),
            Err(Errno::AGAIN) => return Ok(None),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn recv_timeout(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: RecvFlags,
    timeout: Duration,
) -> io::Result<Option<usize>> {
    let deadline = Deadline::after(timeout);
    loop {
        if let Some(n) = recv_once(fd, buf, flags | RecvFlags::DONTWAIT)? {
            return Ok(Some(n));
        }
        if !wait_ready(fd, PollFlags::IN, deadline)? {
            return Ok(None);
        }
    }
}

socket_common!(Stream, Kind::Stream);

impl From<OwnedFd> for Stream {
    /// Takes a connected stream socket (e.g. one inherited or received over `SCM_RIGHTS`).
    fn from(fd: OwnedFd) -> Stream {
        Stream(fd)
    }
}

impl From<Stream> for OwnedFd {
    fn from(s: Stream) -> OwnedFd {
        s.0
    }
}

impl From<std::os::unix::net::UnixStream> for Stream {
    /// Takes std's connected Unix stream socket as it is.
    fn from(s: std::os::unix::net::UnixStream) -> Stream {
        Stream(s.into())
    }
}

impl From<std::net::TcpStream> for Stream {
    /// Takes std's connected TCP stream as it is (`TCP_NODELAY` unchanged).
    fn from(s: std::net::TcpStream) -> Stream {
        Stream(s.into())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::io::read(&self.0, &mut *buf) {
                Err(Errno::INTR) => {}
                other => return Ok(other?),
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.0.as_fd(), buf, SendFlags::empty())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut control = net::SendAncillaryBuffer::default();
        loop {
            match net::sendmsg(&self.0, bufs, &mut control, SendFlags::NOSIGNAL) {
                Err(Errno::INTR) => {}
                other => return Ok(other?),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whole-message send and receive, shared by [`SeqPacket`] and [`Datagram`].
macro_rules! message_methods {
    ($ty:ident) => {
        impl $ty {
            /// Sends one whole message (`send(2)` with `MSG_NOSIGNAL`), waiting for room.
            ///
            /// # Errors
            ///
            /// `EMSGSIZE` for a message larger than the socket allows, `EPIPE`
            /// ([`io::ErrorKind::BrokenPipe`]) when the peer is gone; the OS error otherwise.
            pub fn send(&self, msg: &[u8]) -> io::Result<()> {
                let n = sys::send(self.as_fd(), msg, SendFlags::empty())
                    .map_err(|e| context(e, format_args!("send a {}-byte message", msg.len())))?;
                sent_whole(n, msg.len())
            }

            /// [`send`](Self::send) without waiting (`MSG_DONTWAIT`): `Ok(false)` if there is
            /// no room now.
            ///
            /// # Errors
            ///
            /// As for [`send`](Self::send).
            pub fn try_send(&self, msg: &[u8]) -> io::Result<bool> {
                match sys::send(self.as_fd(), msg, SendFlags::DONTWAIT) {
                    Ok(n) => sent_whole(n, msg.len()).map(|()| true),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                    Err(e) => Err(context(
                        e,
                        format_args!("send a {}-byte message", msg.len()),
                    )),
                }
            }

            /// [`send`](Self::send), waiting at most `timeout` for room: `Ok(false)` when it
            /// passes.
            ///
            /// # Errors
            ///
            /// As for [`send`](Self::send).
            pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> io::Result<bool> {
                let deadline = Deadline::after(timeout);
                loop {
                    if self.try_send(msg)? {
                        return Ok(true);
                    }
                    if !wait_ready(self.as_fd(), PollFlags::OUT, deadline)? {
                        return Ok(false);
                    }
                }
            }

            /// Receives one whole message into `buf` (`recv(2)`), waiting for one; returns its
            /// length. On a connected seqpacket socket, `Ok(0)` is end of file.
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::InvalidData`] naming both sizes if the message was longer than
            /// `buf`: the rest of it is lost, and the socket stays usable. The OS error
            /// otherwise.
            pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                let (_, n) = loop {
                    match net::recv(&self.0, &mut *buf, RecvFlags::TRUNC) {
                        Err(Errno::INTR) => {}
                        other => break other?,
                    }
                };
                check_len(n, buf.len())
            }

            /// [`recv`](Self::recv) without waiting (`MSG_DONTWAIT`): `Ok(None)` if no
            /// message is queued.
            ///
            /// # Errors
            ///
            /// As for [`recv`](Self::recv).
            pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
                recv_once(self.as_fd(), buf, RecvFlags::TRUNC | RecvFlags::DONTWAIT)?
                    .map(|n| check_len(n, buf.len()))
                    .transpose()
            }

            /// [`recv`](Self::recv), waiting at most `timeout`: `Ok(None)` when it passes.
            ///
            /// # Errors
            ///
            /// As for [`recv`](Self::recv).
            pub fn recv_timeout(
                &self,
                buf: &mut [u8],
                timeout: Duration,
            ) -> io::Result<Option<usize>> {
                recv_timeout(self.as_fd(), buf, RecvFlags::TRUNC, timeout)?
                    .map(|n| check_len(n, buf.len()))
                    .transpose()
            }

            /// The length of the next message, without taking it (`MSG_PEEK | MSG_TRUNC`),
            /// waiting for one: size a buffer with it before [`recv`](Self::recv).
            ///
            /// # Errors
            ///
            /// The OS error.
            pub fn peek_len(&self) -> io::Result<usize> {
                let mut none = [0u8; 0];
                loop {
                    match net::recv(&self.0, &mut none[..], RecvFlags::PEEK | RecvFlags::TRUNC) {
                        Err(Errno::INTR) => {}
                        other => return Ok(other?.1),
                    }
                }
            }
        }
    };
}

fn sent_whole(n: usize, len: usize) -> io::Result<()> {
    if n == len {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {n} of a {len}-byte message"),
        ))
    }
}

fn check_len(n: usize, cap: usize) -> io::Result<usize> {
    if n > cap {
        Err(too_long(n, cap))
    } else {
        Ok(n)
    }
}

/// A connected Unix `SOCK_SEQPACKET` socket: reliable, ordered messages whose boundaries are
/// kept (one `send` is one `recv`), with end of file like a stream.
#[derive(Debug)]
pub struct SeqPacket(OwnedFd);

impl SeqPacket {
    /// Connects to a `unix-seqpacket:` or `unix-abstract-seqpacket:` endpoint.
    ///
    /// # Errors
    ///
    /// As for [`Stream::connect`].
    pub fn connect(ep: &Endpoint) -> io::Result<SeqPacket> {
        connect_fd(ep, Kind::SeqPacket, None).map(SeqPacket)
    }

    /// [`connect`](Self::connect) within `timeout` ([`io::ErrorKind::TimedOut`] after it).
    ///
    /// # Errors
    ///
    /// As for [`Stream::connect_timeout`].
    pub fn connect_timeout(ep: &Endpoint, timeout: Duration) -> io::Result<SeqPacket> {
        connect_fd(ep, Kind::SeqPacket, Some(timeout)).map(SeqPacket)
    }
}

socket_common!(SeqPacket, Kind::SeqPacket);
message_methods!(SeqPacket);

impl From<OwnedFd> for SeqPacket {
    fn from(fd: OwnedFd) -> SeqPacket {
        SeqPacket(fd)
    }
}

impl From<SeqPacket> for OwnedFd {
    fn from(s: SeqPacket) -> OwnedFd {
        s.0
    }
}

/// A datagram socket: Unix `SOCK_DGRAM` (reliable, ordered) or UDP.
///
/// * Bind it to receive at a known endpoint.
/// * Connect it to talk to one peer with [`send`](Self::send)/[`recv`](Self::recv).
/// * Or address each message with [`send_to`](Self::send_to) /
///   [`recv_from`](Self::recv_from).
///
/// ```
/// use ipcbox::socket::Datagram;
///
/// let server = Datagram::bind(&"udp:127.0.0.1:0".parse()?)?;
/// let ep = server.local_endpoint()?.expect("bound");
/// let client = Datagram::connect(&ep)?;
/// client.send(b"hi")?;
/// let mut buf = [0; 8];
/// let (n, from) = server.recv_from(&mut buf)?;
/// server.send_to(&buf[..n], &from.expect("udp peers have addresses"))?;
/// assert_eq!(client.recv(&mut buf)?, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Datagram(OwnedFd, Option<BoundFile>);

impl Datagram {
    /// A datagram socket bound to `ep` (`unix-dgram:`, `unix-abstract-dgram:`, `udp:`), with
    /// the default [`Options`] (socket file mode 0600; the stale-file policy and removal on drop
    /// of [`Listener::bind`]).
    ///
    /// # Errors
    ///
    /// As for [`Listener::bind`].
    pub fn bind(ep: &Endpoint) -> io::Result<Datagram> {
        Options::new().bind_datagram(ep)
    }

    pub(crate) fn bind_inner(ep: &Endpoint, mode: u32) -> io::Result<Datagram> {
        match ep {
            Endpoint::Unix {
                kind: Kind::Datagram,
                ..
            }
            | Endpoint::Abstract {
                kind: Kind::Datagram,
                ..
            } => {
                let fd = sys::socket(AddressFamily::UNIX, Kind::Datagram.socket_type(), false)
                    .context_with(|| format!("bind \"{ep}\": create a socket"))?;
                let file = bind_unix(fd.as_fd(), ep, mode)?;
                Ok(Datagram(fd, file))
            }
            Endpoint::Udp { .. } => {
                let mut last = None;
                for addr in ep.resolve()? {
                    let family = if addr.is_ipv4() {
                        AddressFamily::INET
                    } else {
                        AddressFamily::INET6
                    };
                    let fd = sys::socket(family, Kind::Datagram.socket_type(), false)
                        .context_with(|| format!("bind \"{ep}\": create a socket"))?;
                    match net::bind(&fd, &addr) {
                        Ok(()) => return Ok(Datagram(fd, None)),
                        Err(e) => last = Some(e),
                    }
                }
                let err = last.map_or_else(|| io::Error::other("no address"), io::Error::from);
                Err(context(err, format_args!("bind \"{ep}\"")))
            }
            _ => Err(invalid_input(format_args!(
                "bind \"{ep}\": a datagram socket needs a unix-dgram:, unix-abstract-dgram: or \
                 udp: endpoint"
            ))),
        }
    }

    /// A datagram socket connected to `ep`: `send`/`recv` talk to that peer only. A Unix one
    /// is first bound to a unique abstract name (autobind) so the peer can answer.
    ///
    /// # Errors
    ///
    /// As for [`Stream::connect`]; connecting to a Unix datagram socket nobody has bound is
    /// [`io::ErrorKind::ConnectionRefused`].
    pub fn connect(ep: &Endpoint) -> io::Result<Datagram> {
        connect_fd(ep, Kind::Datagram, None).map(|fd| Datagram(fd, None))
    }

    /// Connects this (bound or unbound) socket to `ep` (`connect(2)`).
    ///
    /// # Errors
    ///
    /// The OS error quoting the endpoint.
    pub fn connect_to(&self, ep: &Endpoint) -> io::Result<()> {
        match ep {
            Endpoint::Udp { .. } => {
                let mut last = None;
                for addr in ep.resolve()? {
                    match net::connect(&self.0, &addr) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = Some(e),
                    }
                }
                let err = last.map_or_else(|| io::Error::other("no address"), io::Error::from);
                Err(context(err, format_args!("connect to \"{ep}\"")))
            }
            _ => net::connect(&self.0, &unix_addr(ep)?)
                .context_with(|| format!("connect to \"{ep}\"")),
        }
    }

    /// Sends one message to `ep` (`sendto(2)`; a host name is resolved on every call).
    ///
    /// # Errors
    ///
    /// The OS error quoting the endpoint.
    pub fn send_to(&self, msg: &[u8], ep: &Endpoint) -> io::Result<()> {
        let res = match ep {
            Endpoint::Udp { .. } => {
                // The first address of this socket's family (IPv4 or IPv6) that takes it.
                let mut res = Err(Errno::AFNOSUPPORT);
                for addr in ep.resolve()? {
                    res = net::sendto(&self.0, msg, SendFlags::NOSIGNAL, &addr);
                    if !matches!(res, Err(Errno::AFNOSUPPORT | Errno::INVAL)) {
                        break;
                    }
                }
                res
            }
            _ => net::sendto(&self.0, msg, SendFlags::NOSIGNAL, &unix_addr(ep)?),
        };
        let n = res.context_with(|| format!("send a {}-byte message to \"{ep}\"", msg.len()))?;
        sent_whole(n, msg.len())
    }

    /// Receives one message and its sender (`recvfrom(2)`); the sender is `None` for an
    /// unnamed Unix socket (it cannot be answered).
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Option<Endpoint>)> {
        let (_, n, from) = loop {
            match net::recvfrom(&self.0, &mut *buf, RecvFlags::TRUNC) {
                Err(Errno::INTR) => {}
                other => break other?,
            }
        };
        let n = check_len(n, buf.len())?;
        Ok((n, from.and_then(|a| endpoint_of(a, Kind::Datagram))))
    }

    /// Keeps the socket file on drop.
    pub fn detach(&mut self) {
        if let Some(f) = &mut self.1 {
            f.keep();
        }
    }
}

socket_common!(Datagram, Kind::Datagram);
message_methods!(Datagram);

impl From<OwnedFd> for Datagram {
    fn from(fd: OwnedFd) -> Datagram {
        Datagram(fd, None)
    }
}

impl From<Datagram> for OwnedFd {
    /// The socket; its socket file (if it bound one) is kept.
    fn from(mut d: Datagram) -> OwnedFd {
        d.detach();
        let Datagram(fd, _) = d;
        fd
    }
}
