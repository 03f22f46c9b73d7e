//! The transports a connection runs over, and how each one delimits frames.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use rustix::fs::{fcntl_getfl, FileType, OFlags};

use crate::pipe;
use crate::socket;

#[cfg(doc)]
use super::Connection;
/// How a transport delimits frames (see `WIRE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// A byte stream (stream sockets, pipes): frames follow each other and the header's length
    /// says where one ends. A frame may arrive in pieces, several frames in one read.
    Stream,
    /// A message transport (`SOCK_SEQPACKET`, `SOCK_DGRAM`): exactly one frame per message,
    /// header included; a message whose length disagrees with its header is dropped with a
    /// `LengthMismatch` error.
    Message,
}

/// A descriptor-backed transport a [`Connection`] can run over.
///
/// The connection does its I/O on the descriptor itself (`read`/`writev`, or `recv`/`sendmsg`
/// with `MSG_DONTWAIT`/`MSG_NOSIGNAL` on sockets), so a transport only says what it is. Which
/// directions it carries is said by the marker traits [`Readable`] and [`Writable`].
pub trait Transport: AsFd {
    /// How frames map onto this transport.
    const FRAMING: Framing = Framing::Stream;

    /// Checks that an inherited descriptor is of this transport's kind (used by
    /// [`Connection::from_env`] before it takes ownership).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] naming what the descriptor is instead.
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()>;
}

/// A transport frames can be received from.
pub trait Readable: Transport {}

/// A transport frames can be sent on.
pub trait Writable: Transport {}

fn check_socket(
    fd: BorrowedFd<'_>,
    want: rustix::net::SocketType,
    families: &[rustix::net::AddressFamily],
) -> io::Result<()> {
    let what = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let ty = rustix::net::sockopt::socket_type(fd)
        .map_err(|e| what(format!("descriptor is not a socket ({e})")))?;
    if ty != want {
        return Err(what(format!("socket is of type {ty:?}, not {want:?}")));
    }
    let domain = rustix::net::sockopt::socket_domain(fd)?;
    if !families.contains(&domain) {
        return Err(what(format!("socket is of family {domain:?}")));
    }
    Ok(())
}

fn check_pipe_end(fd: BorrowedFd<'_>, mode: OFlags, end: &str) -> io::Result<()> {
    let ty = FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode);
    let access = fcntl_getfl(fd)? & OFlags::RWMODE;
    if ty != FileType::Fifo || access != mode {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor is a {ty:?} opened {access:?}, not the {end} end of a pipe"),
        ));
    }
    Ok(())
}

const UNIX: &[rustix::net::AddressFamily] = &[rustix::net::AddressFamily::UNIX];
pub(super) const INET: &[rustix::net::AddressFamily] = &[
    rustix::net::AddressFamily::INET,
    rustix::net::AddressFamily::INET6,
];
const ANY_STREAM: &[rustix::net::AddressFamily] = &[
    rustix::net::AddressFamily::UNIX,
    rustix::net::AddressFamily::INET,
    rustix::net::AddressFamily::INET6,
];

impl Transport for UnixStream {
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_socket(fd, rustix::net::SocketType::STREAM, UNIX)
    }
}
impl Readable for UnixStream {}
impl Writable for UnixStream {}

impl Transport for std::net::TcpStream {
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_socket(fd, rustix::net::SocketType::STREAM, INET)
    }
}
impl Readable for std::net::TcpStream {}
impl Writable for std::net::TcpStream {}

impl Transport for socket::Stream {
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_socket(fd, rustix::net::SocketType::STREAM, ANY_STREAM)
    }
}
impl Readable for socket::Stream {}
impl Writable for socket::Stream {}

/// One frame per message; the peer closing is `Disconnected` as on a stream.
impl Transport for socket::SeqPacket {
    const FRAMING: Framing = Framing::Message;
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_socket(fd, rustix::net::SocketType::SEQPACKET, UNIX)
    }
}
impl Readable for socket::SeqPacket {}
impl Writable for socket::SeqPacket {}

/// One frame per datagram. Sending needs a connected socket ([`socket::Datagram::connect`],
/// [`socket::Datagram::pair`]); receiving takes frames from any sender.
///
/// * A datagram socket has no end of stream: receiving never reports `Disconnected`, and an
///   empty datagram is a `LengthMismatch`.
/// * Unix datagrams are reliable and ordered: a full receiver makes the sender wait.
/// * UDP may lose, duplicate or reorder datagrams (frames), never tear one. Build
///   acknowledgements and retries on top, or use TCP.
/// * Over UDP a frame must fit one datagram: at most 65 503 payload bytes over IPv4, less
///   over IPv6. A longer send fails with `EMSGSIZE`.
/// * A UDP peer that is gone shows as an [`io::ErrorKind::ConnectionRefused`] error on a
///   later call.
impl Transport for socket::Datagram {
    const FRAMING: Framing = Framing::Message;
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_socket(fd, rustix::net::SocketType::DGRAM, ANY_STREAM)
    }
}
impl Readable for socket::Datagram {}
impl Writable for socket::Datagram {}

impl Transport for pipe::Reader {
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_pipe_end(fd, OFlags::RDONLY, "reading")
    }
}
impl Readable for pipe::Reader {}

impl Transport for pipe::Writer {
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        check_pipe_end(fd, OFlags::WRONLY, "writing")
    }
}
impl Writable for pipe::Writer {}

impl<T: Transport> Transport for &T {
    const FRAMING: Framing = T::FRAMING;
    fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
        T::check_fd(fd)
    }
}
impl<T: Readable> Readable for &T {}
impl<T: Writable> Writable for &T {}
