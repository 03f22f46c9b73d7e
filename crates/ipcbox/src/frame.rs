//! Typed message connections over any byte transport, and `multiprocessing.Pipe`'s analogue.
//!
//! A [`Connection`] sends and receives *frames* over a descriptor-backed transport (a Unix or
//! TCP stream socket, one end of a pipe; the socket module's types slot in the same way).
//! Every transport uses the one wire format described in `WIRE.md` at the repository root: a
//! 4-byte little-endian payload length, then the payload. A Python program with `socket` and
//! `struct` speaks it in a few lines.
//!
//! * **Typed**: [`send`](Connection::send) / [`recv`](Connection::recv) encode and decode
//!   messages with a [`Codec`]; the default, [`Postcard`], takes any `serde` type.
//! * **Bytes**: [`send_bytes`](Connection::send_bytes), [`recv_bytes`](Connection::recv_bytes),
//!   [`recv_bytes_into`](Connection::recv_bytes_into) move raw payloads: one system call per
//!   message (a frame up to 1 KiB is copied into one buffer for `send`/`write`, a larger one
//!   goes out with `sendmsg`/`writev` of header and payload), and small frames arrive with one `read` into a reused buffer (which may take in
//!   several frames at once), with no allocation per message. A blocking receive of a large
//!   frame (64 KiB and up) reads the payload straight into the caller's buffer. On a message
//!   socket each frame is one `recv` when the receive limit is under 64 KiB (or on UDP); under
//!   a larger limit a `MSG_PEEK` learns its size first.
//! * On a blocking message socket with a receive timeout (`SO_RCVTIMEO`), a blocking receive
//!   that outlasts it fails with [`io::ErrorKind::TimedOut`] instead of waiting on.
//! * Every blocking operation has `try_` and `_timeout` forms. A frame that arrives partly
//!   before a timeout stays buffered and is completed by the next call: timeouts never
//!   desynchronise the stream.
//! * The receiver refuses frames longer than [`max_frame_len`](Connection::max_frame_len)
//!   (default [`DEFAULT_MAX_FRAME_LEN`]) with an error naming both sizes, and grows its buffer
//!   only as bytes actually arrive: a header claiming 4 GiB costs nothing.
//!
//! [`duplex`] and [`pipe()`] are `multiprocessing.Pipe(duplex=True)` and `Pipe(duplex=False)`.
//!
//! # Handing an end to a child process
//!
//! * A spawned program (Rust or not): [`Connection::pass_to_child`] keeps the descriptor open
//!   across `exec` in that child only and names it in an environment variable;
//!   [`Connection::from_env`] in the child checks it (open, same device and inode, right kind)
//!   before owning it. A Python child takes the number before the first `:` of the variable.
//! * As the child's standard input or output: [`Connection::into_transport`], then
//!   `Stdio::from(OwnedFd::from(transport))`; the child wraps descriptor 0 or 1.
//! * Through `fork`: the child already owns its copy; close the parent's end in each process.
//!
//! Frames are never split between a parent's and a child's copy of one end: hand an end over
//! (and drop your copy), don't share it.
//!
//! ```
//! use ipcbox::frame::{self, RecvError};
//!
//! let (mut left, mut right) = frame::duplex::<(u32, String)>()?;
//! left.send(&(1, "one".to_string()))?;
//! drop(left); // closing after a send: the message still arrives, then Disconnected
//! assert_eq!(right.recv()?, (1, "one".to_string()));
//! assert!(matches!(right.recv(), Err(RecvError::Disconnected)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, FileType, OFlags};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};

use crate::codec::{Codec, DecodeError, EncodeError, Postcard};
use crate::error::{context, ResultExt};
use crate::pipe;
use crate::socket;
use crate::sys;

/// Bytes in a frame header: the payload length as a little-endian `u32`.
pub const HEADER_LEN: usize = 4;

/// The largest payload a connection accepts unless told otherwise: 64 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 << 20;

/// The largest payload the wire format can carry: `u32::MAX` bytes.
pub const WIRE_MAX_FRAME_LEN: usize = u32::MAX as usize;

/// What the receive buffer starts at (allocated on the first receive).
const INITIAL_BUF: usize = 64 << 10;

/// A receive buffer larger than this is freed once it is empty.
const KEEP_BUF: usize = 1 << 20;

/// Frames (header included) up to this long are copied into one buffer to be sent.
const SMALL_FRAME: usize = 1 << 10;

/// Frames at least this long are received straight into the caller's buffer when possible.
const DIRECT_MIN: usize = INITIAL_BUF;

/// Where [`State::recv_direct`] puts a payload.
trait Sink {
    /// Takes the part of the payload that was already buffered.
    fn start(&mut self, prefix: &[u8]);
    /// Free space for payload bytes `filled..`, non-empty while `filled < len`.
    fn room(&mut self, filled: usize, len: usize) -> &mut [u8];
}

/// The caller's buffer, at least `len` long (checked against `max` before use).
impl Sink for [u8] {
    fn start(&mut self, prefix: &[u8]) {
        self[..prefix.len()].copy_from_slice(prefix);
    }
    fn room(&mut self, filled: usize, len: usize) -> &mut [u8] {
        &mut self[filled..len]
    }
}

/// A new `Vec`, grown in step with arrivals (at most doubling), never to a claimed length.
impl Sink for Vec<u8> {
    fn start(&mut self, prefix: &[u8]) {
        self.clear();
        self.extend_from_slice(prefix);
    }
    fn room(&mut self, filled: usize, len: usize) -> &mut [u8] {
        if self.len() == filled {
            let grown = (2 * filled).max(INITIAL_BUF).min(len);
            self.resize(grown, 0);
        }
        &mut self[filled..]
    }
}

/// How a transport delimits frames (see `WIRE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// A byte stream (stream sockets, pipes): frames follow each other and the header's length
    /// says where one ends. A frame may arrive in pieces, several frames in one read.
    Stream,
    /// A message transport (`SOCK_SEQPACKET`, `SOCK_DGRAM`): exactly one frame per message,
    /// header included; a message whose length disagrees with its header is a torn frame.
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
const INET: &[rustix::net::AddressFamily] = &[
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
/// A datagram socket has no end of stream: receiving never reports `Disconnected`, and an
/// empty datagram is a torn frame. Unix datagrams are reliable and ordered (a full receiver
/// makes the sender wait). UDP may lose, duplicate or reorder datagrams (frames), never tear
/// one; a frame must fit one datagram (at most 65 503 payload bytes over IPv4, less with
/// IPv6; a longer send fails with `EMSGSIZE`); a peer that is gone shows as an
/// [`io::ErrorKind::ConnectionRefused`] error on a later call. Build acknowledgements and
/// retries on top, or use TCP.
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

/// A pair of connected duplex connections over a Unix stream `socketpair`:
/// `multiprocessing.Pipe(duplex=True)`.
///
/// Wraps [`socketpair(2)`](https://man7.org/linux/man-pages/man2/socketpair.2.html)
/// (`AF_UNIX`, `SOCK_STREAM`, close-on-exec). Either end sends and receives.
///
/// # Errors
///
/// The OS error when out of descriptors.
#[doc(alias = "socketpair")]
#[doc(alias = "Pipe")]
pub fn duplex<M>() -> io::Result<(Connection<M>, Connection<M>)> {
    let (a, b) = UnixStream::pair().context_with(|| "create socketpair for a duplex connection")?;
    Ok((Connection::new(a)?, Connection::new(b)?))
}

/// A one-way connection over an anonymous pipe: `multiprocessing.Pipe(duplex=False)`.
///
/// Wraps [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe.2.html). As in Python, the
/// first end receives and the second sends; here the types say so.
///
/// # Errors
///
/// The OS error when out of descriptors.
///
/// # Examples
///
/// ```
/// let (mut rx, mut tx) = ipcbox::frame::pipe::<Vec<u16>>()?;
/// tx.send(&vec![1, 2, 3])?;
/// assert_eq!(rx.recv()?, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(clippy::type_complexity)]
pub fn pipe<M>() -> io::Result<(Connection<M, pipe::Reader>, Connection<M, pipe::Writer>)> {
    let (r, w) = pipe::new()?;
    Ok((Connection::new(r)?, Connection::new(w)?))
}

/// How long an operation may wait.
#[derive(Clone, Copy)]
enum Wait {
    Block,
    Try,
    Until(Instant),
}

impl Wait {
    fn timeout(d: Duration) -> Wait {
        match Instant::now().checked_add(d) {
            Some(t) => Wait::Until(t),
            None => Wait::Block,
        }
    }
}

/// Why an internal operation stopped; mapped onto the public error enums.
enum Fail {
    WouldBlock,
    Disconnected,
    TooLarge { len: usize, max: usize },
    Torn { expected: usize, received: usize },
    Decode(DecodeError),
    Encode(EncodeError),
    Io(io::Error),
}

/// Waits until `fd` is ready for `flags`; `false` when the wait ran out first.
fn wait_ready(fd: BorrowedFd<'_>, flags: PollFlags, wait: Wait) -> io::Result<bool> {
    loop {
        let timeout = match wait {
            Wait::Block => None,
            Wait::Try => Some(Duration::ZERO),
            Wait::Until(t) => Some(t.saturating_duration_since(Instant::now())),
        };
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos().into(),
        });
        let mut fds = [PollFd::new(&fd, flags)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(context(e, "poll connection")),
        }
    }
}

/// The descriptor of a connection's transport (borrowing only that field).
fn fd_of<T: AsFd>(transport: &Option<T>) -> BorrowedFd<'_> {
    transport
        .as_ref()
        .expect("a connection holds its transport until into_transport")
        .as_fd()
}

/// The buffers and state of a connection, apart from its transport and codec.
struct State {
    /// Received bytes; `rbuf[rpos..rend]` is not consumed yet (whole or partial frames).
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    /// The peer closed its side; what is buffered is all there will be.
    eof: bool,
    /// Scratch space for encoding typed messages: header placeholder, then payload.
    wbuf: Vec<u8>,
    /// The unsent rest of a frame a `try_`/`_timeout` send had started: sent before anything
    /// else so the stream stays whole.
    pending: Vec<u8>,
    pending_pos: usize,
    max_frame: usize,
    framing: Framing,
    socket: bool,
    /// A `SOCK_DGRAM` socket: an empty message is a (torn) datagram, never the end.
    datagram: bool,
    /// Descriptors received with the frame being received by `recv_with_fds`.
    fds: Vec<OwnedFd>,
    /// Every message the transport can carry fits a receive buffer of [`INITIAL_BUF`] (UDP).
    small_messages: bool,
    /// `O_NONBLOCK` is set on the descriptor (by its creator, or by us for a non-socket
    /// writer's first `try_`/`_timeout` send).
    nonblocking: bool,
    /// We set `O_NONBLOCK` ourselves: [`Connection::into_transport`] clears it again, so the
    /// descriptor handed back (or to a child) blocks as it did when it was given to us.
    set_nonblocking: bool,
}

impl State {
    fn new(fd: BorrowedFd<'_>, framing: Framing) -> io::Result<State> {
        let st = rustix::fs::fstat(fd).context_with(|| "inspect connection descriptor")?;
        let socket = FileType::from_raw_mode(st.st_mode) == FileType::Socket;
        if !socket {
            // Sockets are written with MSG_NOSIGNAL; pipes need SIGPIPE ignored for EPIPE.
            sys::signal::ignore_sigpipe_if_default()?;
        }
        let nonblocking = fcntl_getfl(fd)?.contains(OFlags::NONBLOCK);
        let datagram = framing == Framing::Message
            && rustix::net::sockopt::socket_type(fd)? == rustix::net::SocketType::DGRAM;
        // A UDP datagram carries at most 65,507 (IPv4) or 65,527 (IPv6) bytes.
        let small_messages = framing == Framing::Message
            && socket
            && INET.contains(&rustix::net::sockopt::socket_domain(fd)?);
        Ok(State {
            rbuf: Vec::new(),
            rpos: 0,
            rend: 0,
            eof: false,
            wbuf: Vec::new(),
            pending: Vec::new(),
            pending_pos: 0,
            max_frame: DEFAULT_MAX_FRAME_LEN,
            framing,
            socket,
            datagram,
            fds: Vec::new(),
            small_messages,
            nonblocking,
            set_nonblocking: false,
        })
    }

    /// Makes room in `rbuf` for a frame of `need` bytes starting at `rpos`, growing the buffer
    /// only in step with what has arrived (at most doubling), never to what a header claims.
    fn make_room(&mut self, need: usize) {
        if self.rpos > 0 && (self.rend == self.rbuf.len() || self.rbuf.len() - self.rpos < need) {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        if self.rend == self.rbuf.len() {
            let grown = (self.rbuf.len() * 2)
                .max(INITIAL_BUF)
                .min(need.max(INITIAL_BUF));
            self.rbuf.resize(grown, 0);
        }
    }

    /// One read into the free end of `rbuf`; sets `eof` when the peer has closed.
    fn read_some(&mut self, fd: BorrowedFd<'_>, wait: Wait) -> Result<(), Fail> {
        let blocking = matches!(wait, Wait::Block);
        loop {
            if !blocking && !self.socket && !self.nonblocking {
                // A blocking pipe end: only read once poll says it will not block.
                if !wait_ready(fd, PollFlags::IN, wait).map_err(Fail::Io)? {
                    return Err(Fail::WouldBlock);
                }
            }
            let buf = &mut self.rbuf[self.rend..];
            let res = if self.socket && !blocking {
                rustix::net::recv(fd, buf, RecvFlags::DONTWAIT).map(|(n, _)| n)
            } else {
                rustix::io::read(fd, buf)
            };
            match res {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.rend += n;
                    return Ok(());
                }
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    if matches!(wait, Wait::Try)
                        || !wait_ready(fd, PollFlags::IN, wait).map_err(Fail::Io)?
                    {
                        return Err(Fail::WouldBlock);
                    }
                }
                // A peer that closed with our data unread in its queue: an end like EOF.
                Err(Errno::CONNRESET) => {
                    self.eof = true;
                    return Ok(());
                }
                Err(e) => return Err(Fail::Io(context(e, "receive from connection"))),
            }
        }
    }

    /// Ensures a whole frame of at most `max` payload bytes is buffered at `rpos`; returns its
    /// payload length. A frame that is too long stays unconsumed.
    fn fill_frame(&mut self, fd: BorrowedFd<'_>, wait: Wait, max: usize) -> Result<usize, Fail> {
        if self.rpos == self.rend && self.rbuf.len() > KEEP_BUF {
            // One large frame should not pin its size in memory for the connection's life.
            self.rbuf = Vec::new();
            self.rpos = 0;
            self.rend = 0;
        }
        if self.framing == Framing::Message {
            return self.fill_message(fd, wait, max);
        }
        loop {
            let have = self.rend - self.rpos;
            let need = if have >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
                let len = u32::from_le_bytes(h) as usize;
                if len > max {
                    return Err(Fail::TooLarge { len, max });
                }
                if have >= HEADER_LEN + len {
                    return Ok(len);
                }
                HEADER_LEN + len
            } else {
                HEADER_LEN
            };
            if self.eof {
                if have == 0 {
                    return Err(Fail::Disconnected);
                }
                // Report the torn frame once; afterwards the connection is simply closed.
                self.rpos = 0;
                self.rend = 0;
                return Err(Fail::Torn {
                    expected: need,
                    received: have,
                });
            }
            self.make_room(need);
            self.read_some(fd, wait)?;
        }
    }

    /// [`fill_frame`](Self::fill_frame) for message transports: one frame per message.
    ///
    /// One `recv` per message when no frame the caller accepts can be longer than the receive
    /// buffer: when `max` plus the header fits it (a longer message is refused anyway), or on
    /// UDP, whose largest datagram always fits it. Otherwise the message's size is learned
    /// first without taking it (`MSG_PEEK | MSG_TRUNC`), so a long frame is never cut.
    fn fill_message(&mut self, fd: BorrowedFd<'_>, wait: Wait, max: usize) -> Result<usize, Fail> {
        if self.rend > self.rpos {
            // A whole message refused earlier as too long: it stays until taken.
            let len = self.rend - self.rpos - HEADER_LEN;
            if len > max {
                return Err(Fail::TooLarge { len, max });
            }
            return Ok(len);
        }
        self.rpos = 0;
        self.rend = 0;
        if self.eof {
            return Err(Fail::Disconnected);
        }
        if self.rbuf.len() < INITIAL_BUF {
            self.rbuf.resize(INITIAL_BUF, 0);
        }
        let one_call = self.small_messages || max.saturating_add(HEADER_LEN) <= self.rbuf.len();
        let (size, wait) = if one_call {
            (self.rbuf.len(), wait)
        } else {
            let size = self.recv_message(fd, 0, RecvFlags::PEEK, wait)?;
            if size > HEADER_LEN && size - HEADER_LEN > max {
                return Err(Fail::TooLarge {
                    len: size - HEADER_LEN,
                    max,
                });
            }
            if self.rbuf.len() < size {
                self.rbuf.resize(size, 0);
            }
            // The message is there: take it without waiting.
            (size.max(1), Wait::Try)
        };
        let got = self.recv_message(fd, size, RecvFlags::empty(), wait)?;
        if got == 0 && !self.datagram {
            // SOCK_SEQPACKET: the peer closed. (On a datagram socket an empty datagram is
            // just a message too short for a header: a torn frame, below.)
            self.eof = true;
            return Err(Fail::Disconnected);
        }
        if got > size {
            // Cut by the buffer, so longer than `max` (see above); the rest of it is lost.
            return Err(Fail::TooLarge {
                len: got - HEADER_LEN.min(got),
                max,
            });
        }
        let claimed = if got >= HEADER_LEN {
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&self.rbuf[..HEADER_LEN]);
            HEADER_LEN + u32::from_le_bytes(h) as usize
        } else {
            HEADER_LEN
        };
        if claimed != got {
            return Err(Fail::Torn {
                expected: claimed,
                received: got,
            });
        }
        self.rend = got;
        let len = got - HEADER_LEN;
        if len > max {
            // Received whole: it stays buffered for a receive with a higher limit.
            return Err(Fail::TooLarge { len, max });
        }
        Ok(len)
    }

    /// One `recv(2)` of a message into `rbuf[..len]` with `flags` (and `MSG_TRUNC`), waiting
    /// as `wait` allows; returns the message's real length, 0 at end of file.
    fn recv_message(
        &mut self,
        fd: BorrowedFd<'_>,
        len: usize,
        flags: RecvFlags,
        wait: Wait,
    ) -> Result<usize, Fail> {
        let blocking = matches!(wait, Wait::Block);
        let mut flags = flags | RecvFlags::TRUNC;
        if !blocking {
            flags |= RecvFlags::DONTWAIT;
        }
        loop {
            match rustix::net::recv(fd, &mut self.rbuf[..len], flags) {
                Ok((_, size)) => return Ok(size),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) if blocking && !self.nonblocking_now(fd)? => {
                    // A blocking socket with a receive timeout (`SO_RCVTIMEO`) that ran out.
                    return Err(Fail::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "receive from connection: the socket's receive timeout passed",
                    )));
                }
                Err(Errno::AGAIN) => {
                    if !wait_ready(fd, PollFlags::IN, wait).map_err(Fail::Io)? {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(Errno::CONNRESET) => return Ok(0),
                Err(e) => return Err(Fail::Io(context(e, "receive from connection"))),
            }
        }
    }

    /// Whether `O_NONBLOCK` is set on the descriptor now (someone may have set it since).
    fn nonblocking_now(&mut self, fd: BorrowedFd<'_>) -> Result<bool, Fail> {
        let flags = fcntl_getfl(fd).map_err(|e| Fail::Io(e.into()))?;
        self.nonblocking = flags.contains(OFlags::NONBLOCK);
        Ok(self.nonblocking)
    }

    /// Blocking receive of a large frame's payload straight into `sink`, saving the copy
    /// through `rbuf`: `Some(len)` when done, `None` when the frame is small, already buffered,
    /// too long or not there (then [`fill_frame`](Self::fill_frame) handles it).
    fn recv_direct<S: Sink + ?Sized>(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        sink: &mut S,
    ) -> Result<Option<usize>, Fail> {
        if self.framing != Framing::Stream {
            return Ok(None);
        }
        while self.rend - self.rpos < HEADER_LEN {
            if self.eof {
                return Ok(None);
            }
            self.make_room(HEADER_LEN);
            self.read_some(fd, Wait::Block)?;
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
        let len = u32::from_le_bytes(h) as usize;
        let have = self.rend - self.rpos - HEADER_LEN;
        if len > max || len < DIRECT_MIN || have >= len || self.eof {
            return Ok(None);
        }
        // The frame is incomplete, so nothing after it is buffered: all of rbuf is consumed.
        sink.start(&self.rbuf[self.rpos + HEADER_LEN..self.rend]);
        self.rpos = 0;
        self.rend = 0;
        let mut filled = have;
        while filled < len {
            match rustix::io::read(fd, sink.room(filled, len)) {
                Ok(0) | Err(Errno::CONNRESET) => {
                    self.eof = true;
                    return Err(Fail::Torn {
                        expected: HEADER_LEN + len,
                        received: HEADER_LEN + filled,
                    });
                }
                Ok(n) => filled += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    wait_ready(fd, PollFlags::IN, Wait::Block).map_err(Fail::Io)?;
                }
                Err(e) => {
                    // The stream is cut inside a frame; nothing after it can be trusted.
                    self.eof = true;
                    return Err(Fail::Io(context(e, "receive from connection")));
                }
            }
        }
        Ok(Some(len))
    }

    /// The payload of the frame [`fill_frame`](Self::fill_frame) found, consuming it.
    fn take_frame(&mut self, len: usize) -> &[u8] {
        let start = self.rpos + HEADER_LEN;
        self.rpos = start + len;
        if self.rpos == self.rend {
            // Nothing else buffered: the next read starts at the front again, with no copy.
            let (rpos, rend) = (self.rpos, self.rend);
            self.rpos = 0;
            self.rend = 0;
            return &self.rbuf[start..rend.min(rpos)];
        }
        &self.rbuf[start..start + len]
    }

    /// One write attempt of `bufs`, waiting for room as `wait` allows.
    fn write_some(
        &mut self,
        fd: BorrowedFd<'_>,
        bufs: &[IoSlice<'_>],
        wait: Wait,
    ) -> Result<usize, Fail> {
        let blocking = matches!(wait, Wait::Block);
        if !blocking && !self.socket && !self.nonblocking {
            let flags = fcntl_getfl(fd).map_err(|e| Fail::Io(e.into()))?;
            fcntl_setfl(fd, flags | OFlags::NONBLOCK).map_err(|e| Fail::Io(e.into()))?;
            self.nonblocking = true;
            self.set_nonblocking = true;
        }
        loop {
            let res = match (self.socket, bufs) {
                (true, _) => {
                    let mut flags = SendFlags::NOSIGNAL;
                    if !blocking {
                        flags |= SendFlags::DONTWAIT;
                    }
                    match bufs {
                        [one] => rustix::net::send(fd, one, flags),
                        _ => rustix::net::sendmsg(
                            fd,
                            bufs,
                            &mut SendAncillaryBuffer::default(),
                            flags,
                        ),
                    }
                }
                (false, [one]) => rustix::io::write(fd, one),
                (false, _) => rustix::io::writev(fd, bufs),
            };
            match res {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    if !wait_ready(fd, PollFlags::OUT, wait).map_err(Fail::Io)? {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(Errno::PIPE) | Err(Errno::CONNRESET) => return Err(Fail::Disconnected),
                Err(e) => return Err(Fail::Io(context(e, "send on connection"))),
            }
        }
    }

    /// Sends the rest of a frame a previous `try_`/`_timeout` send started.
    fn flush_pending(&mut self, fd: BorrowedFd<'_>, wait: Wait) -> Result<(), Fail> {
        while self.pending_pos < self.pending.len() {
            let pending = std::mem::take(&mut self.pending);
            let res = self.write_some(fd, &[IoSlice::new(&pending[self.pending_pos..])], wait);
            self.pending = pending;
            self.pending_pos += res?;
        }
        self.pending.clear();
        self.pending_pos = 0;
        Ok(())
    }

    /// Sends one frame: `header` then `payload`, in one system call when the transport takes
    /// it all. If a `try_`/`_timeout` send has put part of the frame out when time runs out,
    /// the rest is kept in `pending` and the frame counts as sent.
    fn write_frame(
        &mut self,
        fd: BorrowedFd<'_>,
        header: [u8; HEADER_LEN],
        payload: &[u8],
        wait: Wait,
    ) -> Result<(), Fail> {
        self.flush_pending(fd, wait)?;
        let total = HEADER_LEN + payload.len();
        // A small frame is copied into one buffer and sent with `send`/`write`: cheaper than
        // the kernel's `sendmsg`/`writev` of two pieces (about 150 ns a message).
        let mut small = [0u8; SMALL_FRAME];
        let (first, second): (&[u8], &[u8]) = if total <= SMALL_FRAME {
            small[..HEADER_LEN].copy_from_slice(&header);
            small[HEADER_LEN..total].copy_from_slice(payload);
            (&small[..total], &[])
        } else {
            (&header, payload)
        };
        let mut done = 0;
        while done < total {
            let (a, b) = if done < first.len() {
                (&first[done..], second)
            } else {
                (&second[done - first.len()..], &[][..])
            };
            let bufs = [IoSlice::new(a), IoSlice::new(b)];
            let bufs = if b.is_empty() { &bufs[..1] } else { &bufs[..] };
            match self.write_some(fd, bufs, wait) {
                Ok(n) => done += n,
                Err(Fail::WouldBlock) if done > 0 => {
                    self.pending.extend_from_slice(a);
                    self.pending.extend_from_slice(b);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            if self.framing == Framing::Message && done < total {
                return Err(Fail::Io(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("message transport took {done} of a {total}-byte frame"),
                )));
            }
        }
        Ok(())
    }

    fn check_send_len(&self, len: usize) -> Result<[u8; HEADER_LEN], Fail> {
        let max = self.max_frame;
        if len > max {
            return Err(Fail::TooLarge { len, max });
        }
        // `max_frame` never exceeds the wire's u32 limit, so this always converts.
        let len32 = u32::try_from(len).map_err(|_| Fail::TooLarge { len, max })?;
        Ok(len32.to_le_bytes())
    }
}

/// A framed, typed connection over the transport `T`, with messages of type `M` encoded by
/// the codec `C` (default [`Postcard`]).
///
/// Sending needs `T:` [`Writable`], receiving `T:` [`Readable`]. The raw-bytes operations work
/// whatever `M` is, and mix freely with typed ones (they are the same frames).
///
/// Dropping a connection closes its descriptor; the peer receives every frame sent before,
/// then [`RecvError::Disconnected`]. If a `try_`/`_timeout` send left part of a frame
/// unsent, drop first sends the rest, blocking if need be (as `BufWriter` does), which is
/// forever if the peer is alive but never reads again; call
/// [`flush_timeout`](Connection::flush_timeout) (or [`try_flush`](Connection::try_flush))
/// first to bound that.
pub struct Connection<M, T: Transport = UnixStream, C = Postcard> {
    /// Always `Some` except inside `into_transport`, which moves it out past `Drop`.
    transport: Option<T>,
    codec: C,
    state: State,
    _message: PhantomData<fn(M) -> M>,
}

impl<M, T: Transport, C> fmt::Debug for Connection<M, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd())
            .field("buffered", &(self.state.rend - self.state.rpos))
            .field(
                "pending",
                &(self.state.pending.len() - self.state.pending_pos),
            )
            .field("max_frame_len", &self.state.max_frame)
            .finish()
    }
}

impl<M, T: Transport, C: Default> Connection<M, T, C> {
    /// Wraps a connected transport, with the default codec.
    ///
    /// Inspects the descriptor (`fstat`, `fcntl(F_GETFL)`); for a non-socket it also makes sure
    /// `SIGPIPE` is ignored (if still at its default) so a closed reader is an error, not death.
    ///
    /// # Errors
    ///
    /// The OS error from inspecting the descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use ipcbox::frame::Connection;
    /// use std::os::unix::net::UnixStream;
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// let mut a = Connection::<String>::new(a)?;
    /// let mut b = Connection::<String>::new(b)?;
    /// a.send(&"hi".to_string())?;
    /// assert_eq!(b.recv()?, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(transport: T) -> io::Result<Self> {
        Self::with_codec(transport, C::default())
    }

    /// Takes the connection end a parent passed with [`pass_to_child`](Self::pass_to_child):
    /// reads the environment variable `var`, checks that the descriptor it names is open, is
    /// the very object the parent passed (same device and inode) and is of transport `T`'s
    /// kind, and takes ownership of it (once per process; it becomes close-on-exec again).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `var` is not set; [`io::ErrorKind::InvalidInput`] if its
    /// value is malformed, or the descriptor is not the one passed or not of the right kind;
    /// [`io::ErrorKind::AlreadyExists`] if this process already took it.
    pub fn from_env(var: &str) -> io::Result<Self>
    where
        T: From<OwnedFd>,
    {
        let value = std::env::var(var).map_err(|e| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("environment variable {var} naming a connection: {e}"),
            )
        })?;
        let fd = sys::frame::claim_inherited(var, &value, T::check_fd)?;
        Self::new(T::from(fd))
    }
}

impl<M, T: Transport, C> Connection<M, T, C> {
    /// Wraps a connected transport, with the given codec. See [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// The OS error from inspecting the descriptor.
    pub fn with_codec(transport: T, codec: C) -> io::Result<Self> {
        let state = State::new(transport.as_fd(), T::FRAMING)?;
        Ok(Connection {
            transport: Some(transport),
            codec,
            state,
            _message: PhantomData,
        })
    }

    /// The longest payload this connection sends or accepts, in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.state.max_frame
    }

    /// Sets the longest payload this connection sends or accepts (capped at
    /// [`WIRE_MAX_FRAME_LEN`]). Raising it lets a frame refused with `TooLarge`, which stays
    /// unread, be received.
    pub fn set_max_frame_len(&mut self, max: usize) -> &mut Self {
        self.state.max_frame = max.min(WIRE_MAX_FRAME_LEN);
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        self.transport
            .as_ref()
            .expect("a connection holds its transport until into_transport")
    }

    fn fd(&self) -> BorrowedFd<'_> {
        fd_of(&self.transport)
    }

    /// The codec.
    pub fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// Bytes received from the transport and not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.state.rend - self.state.rpos
    }

    /// Bytes of a started frame not yet handed to the transport (see [`flush`](Self::flush)).
    pub fn pending_len(&self) -> usize {
        self.state.pending.len() - self.state.pending_pos
    }

    /// Gives the transport back, after sending any pending bytes; a pipe end that a `try_` or
    /// `_timeout` send switched to `O_NONBLOCK` is switched back to blocking.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] if received bytes are buffered (they would be lost: the
    /// connection is dropped then), or the error from sending the pending bytes.
    pub fn into_transport(mut self) -> io::Result<T> {
        let buffered = self.buffered_len();
        if buffered > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{buffered} received bytes are buffered in the connection"),
            ));
        }
        self.state
            .flush_pending(fd_of(&self.transport), Wait::Block)
            .map_err(|f| io::Error::from(SendError::from_fail(f)))?;
        if self.state.set_nonblocking {
            let fd = fd_of(&self.transport);
            let flags = fcntl_getfl(fd).context_with(|| "restore blocking mode")?;
            fcntl_setfl(fd, flags - OFlags::NONBLOCK).context_with(|| "restore blocking mode")?;
            self.state.nonblocking = false;
            self.state.set_nonblocking = false;
        }
        self.transport
            .take()
            .ok_or_else(|| io::Error::other("connection has no transport"))
    }

    /// Hands this end to the program `cmd` will run: the descriptor stays open across `exec`
    /// in that child only (a `pre_exec` hook clears its close-on-exec flag after `fork`), and
    /// the environment variable `var` names it for [`from_env`](Self::from_env) (value
    /// `fd:dev:ino`; a non-Rust child takes the number before the first `:`). The parent's copy
    /// lives in `cmd` and closes when `cmd` is dropped: drop it after `spawn`, or the peer never
    /// sees `Disconnected` from this end.
    ///
    /// # Errors
    ///
    /// As [`into_transport`](Self::into_transport), and the OS error from `fstat`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ipcbox::frame::{self, Connection};
    /// use std::process::Command;
    ///
    /// let (mine, theirs) = frame::duplex::<String>()?;
    /// let mut cmd = Command::new("worker");
    /// theirs.pass_to_child(&mut cmd, "WORKER_CONN")?;
    /// let child = cmd.spawn()?;
    /// drop(cmd); // closes the parent's copy: the child alone holds that end
    /// // In the worker: let conn = Connection::<String>::from_env("WORKER_CONN")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pass_to_child(self, cmd: &mut Command, var: &str) -> io::Result<()>
    where
        T: Into<OwnedFd>,
    {
        let fd: OwnedFd = self.into_transport()?.into();
        let value = sys::frame::keep_open_in_child(cmd, fd)?;
        cmd.env(var, value);
        Ok(())
    }
}

impl<M, T: Transport, C> Drop for Connection<M, T, C> {
    fn drop(&mut self) {
        if let Some(t) = &self.transport {
            if self.state.pending_pos < self.state.pending.len() {
                let _ = self.state.flush_pending(t.as_fd(), Wait::Block);
            }
        }
    }
}

impl<M, T: Writable, C: Codec<M>> Connection<M, T, C> {
    fn send_with(&mut self, msg: &M, wait: Wait) -> Result<(), Fail> {
        let mut wbuf = std::mem::take(&mut self.state.wbuf);
        wbuf.clear();
        wbuf.extend_from_slice(&[0; HEADER_LEN]);
        let res = match self.codec.encode(msg, &mut wbuf) {
            Ok(()) => self
                .state
                .check_send_len(wbuf.len() - HEADER_LEN)
                .and_then(|h| {
                    self.state
                        .write_frame(fd_of(&self.transport), h, &wbuf[HEADER_LEN..], wait)
                }),
            Err(e) => Err(Fail::Encode(e)),
        };
        self.state.wbuf = wbuf;
        res
    }

    /// Encodes `msg` and sends it as one frame, waiting for room in the transport.
    ///
    /// One `send`/`write` (a frame up to 1 KiB) or `sendmsg`/`writev` when the transport takes
    /// the frame at once.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] when the peer has closed (`EPIPE`, `ECONNRESET`),
    /// [`SendError::TooLarge`] when the encoding exceeds [`max_frame_len`](Self::max_frame_len),
    /// [`SendError::Encode`], or [`SendError::Io`].
    pub fn send(&mut self, msg: &M) -> Result<(), SendError> {
        self.send_with(msg, Wait::Block)
            .map_err(SendError::from_fail)
    }

    /// [`send`](Self::send) without waiting: [`TrySendError::Full`] when the transport has no
    /// room (nothing sent). If only part of the frame fits, the rest is kept and sent first by
    /// the next operation (the frame counts as sent; see [`flush`](Self::flush)).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), plus `Full`.
    pub fn try_send(&mut self, msg: &M) -> Result<(), TrySendError> {
        self.send_with(msg, Wait::Try)
            .map_err(TrySendError::from_fail)
    }

    /// [`send`](Self::send) waiting at most `timeout` for room, with the same partial-frame
    /// rule as [`try_send`](Self::try_send).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), plus `Timeout` (nothing sent).
    pub fn send_timeout(&mut self, msg: &M, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_with(msg, Wait::timeout(timeout))
            .map_err(SendTimeoutError::from_fail)
    }
}

impl<M, T: Writable, C> Connection<M, T, C> {
    fn send_bytes_with(&mut self, bytes: &[u8], wait: Wait) -> Result<(), Fail> {
        let header = self.state.check_send_len(bytes.len())?;
        self.state
            .write_frame(fd_of(&self.transport), header, bytes, wait)
    }

    /// Sends `bytes` as one frame, as is, with no allocation: one `sendmsg`/`writev` of header
    /// and payload, or for a frame up to 1 KiB one `send`/`write` of a copy on the stack.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), without `Encode`.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.send_bytes_with(bytes, Wait::Block)
            .map_err(SendError::from_fail)
    }

    /// [`send_bytes`](Self::send_bytes) without waiting; see [`try_send`](Self::try_send).
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send).
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> Result<(), TrySendError> {
        self.send_bytes_with(bytes, Wait::Try)
            .map_err(TrySendError::from_fail)
    }

    /// [`send_bytes`](Self::send_bytes) waiting at most `timeout`; see
    /// [`send_timeout`](Self::send_timeout).
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_bytes_timeout(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.send_bytes_with(bytes, Wait::timeout(timeout))
            .map_err(SendTimeoutError::from_fail)
    }

    /// Sends what remains of a frame a `try_`/`_timeout` send started, waiting as needed.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] or [`SendError::Io`].
    pub fn flush(&mut self) -> Result<(), SendError> {
        self.state
            .flush_pending(fd_of(&self.transport), Wait::Block)
            .map_err(SendError::from_fail)
    }

    /// [`flush`](Self::flush) without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send).
    pub fn try_flush(&mut self) -> Result<(), TrySendError> {
        self.state
            .flush_pending(fd_of(&self.transport), Wait::Try)
            .map_err(TrySendError::from_fail)
    }

    /// [`flush`](Self::flush) waiting at most `timeout`; what it could not send stays
    /// pending. Call it before dropping a connection whose peer may have stopped reading.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn flush_timeout(&mut self, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.state
            .flush_pending(fd_of(&self.transport), Wait::timeout(timeout))
            .map_err(SendTimeoutError::from_fail)
    }
}

impl<M, T: Readable, C: Codec<M>> Connection<M, T, C> {
    fn recv_with(&mut self, wait: Wait) -> Result<M, Fail> {
        let max = self.state.max_frame;
        let len = self.state.fill_frame(fd_of(&self.transport), wait, max)?;
        let payload = self.state.take_frame(len);
        self.codec.decode(payload).map_err(Fail::Decode)
    }

    /// Receives one frame and decodes it, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// * [`RecvError::Disconnected`]: the peer closed, and every frame it sent was received.
    /// * [`RecvError::TooLarge`]: the next frame is longer than
    ///   [`max_frame_len`](Self::max_frame_len); it stays unread.
    /// * [`RecvError::Torn`]: the peer closed in the middle of a frame.
    /// * [`RecvError::Decode`]: the payload is not an `M` (the frame is consumed; the next one
    ///   can be received).
    /// * [`RecvError::Io`].
    pub fn recv(&mut self) -> Result<M, RecvError> {
        self.recv_with(Wait::Block).map_err(RecvError::from_fail)
    }

    /// [`recv`](Self::recv) without waiting: [`TryRecvError::Empty`] unless a whole frame is
    /// available (a partial one stays buffered).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), plus `Empty`.
    pub fn try_recv(&mut self) -> Result<M, TryRecvError> {
        self.recv_with(Wait::Try).map_err(TryRecvError::from_fail)
    }

    /// [`recv`](Self::recv) waiting at most `timeout`; a frame cut by the timeout stays buffered
    /// and is completed by the next receive.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), plus `Timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<M, RecvTimeoutError> {
        self.recv_with(Wait::timeout(timeout))
            .map_err(RecvTimeoutError::from_fail)
    }
}

impl<M, T: Readable, C> Connection<M, T, C> {
    fn recv_bytes_with(&mut self, max_len: usize, wait: Wait) -> Result<Vec<u8>, Fail> {
        let max = max_len.min(self.state.max_frame);
        let fd = fd_of(&self.transport);
        if matches!(wait, Wait::Block) {
            let mut out = Vec::new();
            if self.state.recv_direct(fd, max, &mut out)?.is_some() {
                return Ok(out);
            }
        }
        let len = self.state.fill_frame(fd, wait, max)?;
        Ok(self.state.take_frame(len).to_vec())
    }

    fn recv_bytes_into_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Fail> {
        let max = buf.len().min(self.state.max_frame);
        let fd = fd_of(&self.transport);
        if matches!(wait, Wait::Block) {
            if let Some(len) = self.state.recv_direct(fd, max, buf)? {
                return Ok(len);
            }
        }
        let len = self.state.fill_frame(fd, wait, max)?;
        buf[..len].copy_from_slice(self.state.take_frame(len));
        Ok(len)
    }

    /// Receives one frame's payload as a new `Vec`, like Python's `Connection.recv_bytes`.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv) without `Decode`; `TooLarge` names `max_len` when the frame is
    /// longer than it (the frame stays unread).
    pub fn recv_bytes(&mut self, max_len: usize) -> Result<Vec<u8>, RecvError> {
        self.recv_bytes_with(max_len, Wait::Block)
            .map_err(RecvError::from_fail)
    }

    /// [`recv_bytes`](Self::recv_bytes) without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv) without `Decode`.
    pub fn try_recv_bytes(&mut self, max_len: usize) -> Result<Vec<u8>, TryRecvError> {
        self.recv_bytes_with(max_len, Wait::Try)
            .map_err(TryRecvError::from_fail)
    }

    /// [`recv_bytes`](Self::recv_bytes) waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout) without `Decode`.
    pub fn recv_bytes_timeout(
        &mut self,
        max_len: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_bytes_with(max_len, Wait::timeout(timeout))
            .map_err(RecvTimeoutError::from_fail)
    }

    /// Receives one frame's payload into `buf` and returns its length, like Python's
    /// `Connection.recv_bytes_into`; no allocation.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv) without `Decode`; a frame longer than `buf` is `TooLarge` (naming
    /// both sizes) and stays unread, so a larger buffer can take it (on a message transport,
    /// a message longer than 64 KiB refused by a `buf` under 64 KiB is dropped instead).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut a, mut b) = ipcbox::frame::duplex::<()>()?;
    /// a.send_bytes(b"ping")?;
    /// let mut buf = [0u8; 64];
    /// let n = b.recv_bytes_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"ping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_bytes_into_with(buf, Wait::Block)
            .map_err(RecvError::from_fail)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv) without `Decode`.
    pub fn try_recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, TryRecvError> {
        self.recv_bytes_into_with(buf, Wait::Try)
            .map_err(TryRecvError::from_fail)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout) without `Decode`.
    pub fn recv_bytes_into_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_bytes_into_with(buf, Wait::timeout(timeout))
            .map_err(RecvTimeoutError::from_fail)
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors beside frames (Unix sockets)

/// The most descriptors one frame carries: the kernel's limit per message (`SCM_MAX_FD`).
pub const MAX_FDS_PER_FRAME: usize = 253;

impl State {
    fn check_socket_for_fds(&self) -> Result<(), Fail> {
        if self.socket {
            return Ok(());
        }
        Err(Fail::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors travel only over Unix sockets, and this connection is not a socket",
        )))
    }

    /// One `recvmsg` of at most `want` bytes into the free end of `rbuf`, keeping any
    /// descriptors that come with them in `fds`; sets `eof` when the peer has closed.
    fn read_exact_part(&mut self, fd: BorrowedFd<'_>, want: usize, wait: Wait) -> Result<(), Fail> {
        let flags = if matches!(wait, Wait::Block) {
            RecvFlags::empty()
        } else {
            RecvFlags::DONTWAIT
        };
        loop {
            let end = self.rbuf.len().min(self.rend + want);
            let buf = &mut self.rbuf[self.rend..end];
            match sys::socket::recv_fds(fd, buf, MAX_FDS_PER_FRAME, flags) {
                Ok((0, _, _)) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok((n, _, fds)) => {
                    self.rend += n;
                    self.fds.extend(fds);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if matches!(wait, Wait::Try)
                        || !wait_ready(fd, PollFlags::IN, wait).map_err(Fail::Io)?
                    {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return Ok(());
                }
                Err(e) => return Err(Fail::Io(e)),
            }
        }
    }

    /// [`fill_frame`](Self::fill_frame) that never reads past the frame (so it cannot take the
    /// next frame's descriptors) and keeps the descriptors that arrive with this one in `fds`.
    fn fill_frame_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        wait: Wait,
        max: usize,
    ) -> Result<usize, Fail> {
        if self.framing == Framing::Message {
            return self.fill_message_fds(fd, wait, max);
        }
        loop {
            let have = self.rend - self.rpos;
            let need = if have >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
                let len = u32::from_le_bytes(h) as usize;
                if len > max {
                    return Err(Fail::TooLarge { len, max });
                }
                if have >= HEADER_LEN + len {
                    return Ok(len);
                }
                HEADER_LEN + len
            } else {
                HEADER_LEN
            };
            if self.eof {
                self.fds.clear();
                if have == 0 {
                    return Err(Fail::Disconnected);
                }
                self.rpos = 0;
                self.rend = 0;
                return Err(Fail::Torn {
                    expected: need,
                    received: have,
                });
            }
            self.make_room(need);
            self.read_exact_part(fd, need - have, wait)?;
        }
    }

    /// [`fill_message`](Self::fill_message) with the descriptors attached to the message.
    fn fill_message_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        wait: Wait,
        max: usize,
    ) -> Result<usize, Fail> {
        self.rpos = 0;
        self.rend = 0;
        if self.eof {
            return Err(Fail::Disconnected);
        }
        loop {
            // The real size of the next message, without taking it (MSG_TRUNC reports it).
            let size = match rustix::net::recv(
                fd,
                &mut [0u8; 0][..],
                RecvFlags::PEEK | RecvFlags::TRUNC | RecvFlags::DONTWAIT,
            ) {
                Ok((_, size)) => size,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    if matches!(wait, Wait::Try)
                        || !wait_ready(fd, PollFlags::IN, wait).map_err(Fail::Io)?
                    {
                        return Err(Fail::WouldBlock);
                    }
                    continue;
                }
                Err(Errno::CONNRESET) => return Err(Fail::Disconnected),
                Err(e) => return Err(Fail::Io(context(e, "receive from connection"))),
            };
            if size == 0 && !self.datagram {
                self.eof = true;
                return Err(Fail::Disconnected);
            }
            if size > HEADER_LEN && size - HEADER_LEN > max {
                return Err(Fail::TooLarge {
                    len: size - HEADER_LEN,
                    max,
                });
            }
            if self.rbuf.len() < size {
                self.rbuf.resize(size.max(INITIAL_BUF), 0);
            }
            let buf = &mut self.rbuf[..size];
            let (got, _, fds) =
                sys::socket::recv_fds(fd, buf, MAX_FDS_PER_FRAME, RecvFlags::DONTWAIT)
                    .map_err(Fail::Io)?;
            let claimed = if got >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.rbuf[..HEADER_LEN]);
                HEADER_LEN + u32::from_le_bytes(h) as usize
            } else {
                HEADER_LEN
            };
            if claimed != got {
                return Err(Fail::Torn {
                    expected: claimed,
                    received: got,
                });
            }
            self.fds = fds;
            self.rend = got;
            return Ok(got - HEADER_LEN);
        }
    }

    /// Sends `frame` (header included) with `fds` attached to its first byte: one `sendmsg`
    /// with `SCM_RIGHTS`, then plain sends for any rest (kept pending if time runs out).
    fn write_frame_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        frame: &[u8],
        fds: &[BorrowedFd<'_>],
        wait: Wait,
    ) -> Result<(), Fail> {
        self.flush_pending(fd, wait)?;
        let flags = if matches!(wait, Wait::Block) {
            SendFlags::empty()
        } else {
            SendFlags::DONTWAIT
        };
        let mut done = loop {
            match sys::socket::send_fds(fd, frame, fds, flags) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_ready(fd, PollFlags::OUT, wait).map_err(Fail::Io)? {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Err(Fail::Disconnected)
                }
                Err(e) => return Err(Fail::Io(e)),
            }
        };
        while done < frame.len() {
            match self.write_some(fd, &[IoSlice::new(&frame[done..])], wait) {
                Ok(n) => done += n,
                Err(Fail::WouldBlock) => {
                    self.pending.extend_from_slice(&frame[done..]);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<M, T: Writable, C: Codec<M>> Connection<M, T, C> {
    fn send_fds_with(&mut self, msg: &M, fds: &[BorrowedFd<'_>], wait: Wait) -> Result<(), Fail> {
        self.state.check_socket_for_fds()?;
        let mut wbuf = std::mem::take(&mut self.state.wbuf);
        wbuf.clear();
        wbuf.extend_from_slice(&[0; HEADER_LEN]);
        let res = match self.codec.encode(msg, &mut wbuf) {
            Ok(()) => self
                .state
                .check_send_len(wbuf.len() - HEADER_LEN)
                .and_then(|h| {
                    wbuf[..HEADER_LEN].copy_from_slice(&h);
                    self.state
                        .write_frame_fds(fd_of(&self.transport), &wbuf, fds, wait)
                }),
            Err(e) => Err(Fail::Encode(e)),
        };
        self.state.wbuf = wbuf;
        res
    }

    /// Sends `msg` as one frame with the open descriptors `fds` attached to the frame's first
    /// byte (`sendmsg(2)` with an `SCM_RIGHTS` control message; Unix sockets only). The peer
    /// receives duplicates with [`recv_with_fds`](Self::recv_with_fds); ours stay open. See
    /// `WIRE.md`, "File descriptors".
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`SendError::Io`] with `InvalidInput` on a pipe, and the OS
    /// error on a TCP socket or past [`MAX_FDS_PER_FRAME`] descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use ipcbox::{frame, pipe};
    ///
    /// let (mut a, mut b) = frame::duplex::<String>()?;
    /// let (_reader, writer) = pipe::new()?;
    /// a.send_with_fds(&"a pipe".to_string(), &[writer.as_fd()])?;
    /// let (msg, fds) = b.recv_with_fds()?;
    /// assert_eq!((msg.as_str(), fds.len()), ("a pipe", 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&mut self, msg: &M, fds: &[BorrowedFd<'_>]) -> Result<(), SendError> {
        self.send_fds_with(msg, fds, Wait::Block)
            .map_err(SendError::from_fail)
    }

    /// [`send_with_fds`](Self::send_with_fds) without waiting: `Full` when the socket has no
    /// room (nothing sent, no descriptor passed).
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send).
    pub fn try_send_with_fds(
        &mut self,
        msg: &M,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), TrySendError> {
        self.send_fds_with(msg, fds, Wait::Try)
            .map_err(TrySendError::from_fail)
    }

    /// [`send_with_fds`](Self::send_with_fds) waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_with_fds_timeout(
        &mut self,
        msg: &M,
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.send_fds_with(msg, fds, Wait::timeout(timeout))
            .map_err(SendTimeoutError::from_fail)
    }
}

impl<M, T: Readable, C: Codec<M>> Connection<M, T, C> {
    fn recv_fds_with(&mut self, wait: Wait) -> Result<(M, Vec<OwnedFd>), Fail> {
        self.state.check_socket_for_fds()?;
        let max = self.state.max_frame;
        let len = self
            .state
            .fill_frame_fds(fd_of(&self.transport), wait, max)?;
        let fds = std::mem::take(&mut self.state.fds);
        let payload = self.state.take_frame(len);
        // A frame that does not decode is consumed with its descriptors (closed here).
        Ok((self.codec.decode(payload).map_err(Fail::Decode)?, fds))
    }

    /// Receives one frame and decodes it, with the descriptors the peer attached to it
    /// ([`send_with_fds`](Self::send_with_fds); empty for a frame sent without). They arrive
    /// close-on-exec and are this process's to own.
    ///
    /// On a stream socket this reads exactly one frame (`recvmsg` of the header, then of the
    /// payload) rather than ahead, since a read that took the next frame's first byte would
    /// take its descriptors too. Receive every frame of a peer that sends descriptors this
    /// way: a plain [`recv`](Self::recv) reads ahead with `read(2)`, and the kernel closes the
    /// descriptors attached to what that takes.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), and `InvalidInput` on a pipe. A frame refused as `TooLarge`
    /// keeps its descriptors (they come with it once the limit is raised); a torn or
    /// undecodable frame's descriptors are closed.
    #[doc(alias = "SCM_RIGHTS")]
    pub fn recv_with_fds(&mut self) -> Result<(M, Vec<OwnedFd>), RecvError> {
        self.recv_fds_with(Wait::Block)
            .map_err(RecvError::from_fail)
    }

    /// [`recv_with_fds`](Self::recv_with_fds) without waiting; a partial frame stays buffered
    /// with its descriptors.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    pub fn try_recv_with_fds(&mut self) -> Result<(M, Vec<OwnedFd>), TryRecvError> {
        self.recv_fds_with(Wait::Try)
            .map_err(TryRecvError::from_fail)
    }

    /// [`recv_with_fds`](Self::recv_with_fds) waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_with_fds_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<(M, Vec<OwnedFd>), RecvTimeoutError> {
        self.recv_fds_with(Wait::timeout(timeout))
            .map_err(RecvTimeoutError::from_fail)
    }
}

impl<M, T: Transport, C> AsFd for Connection<M, T, C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

const DISCONNECTED: &str = "the peer closed the connection";

fn too_large(f: &mut fmt::Formatter<'_>, len: usize, max: usize) -> fmt::Result {
    write!(
        f,
        "frame of {len} bytes is longer than the limit of {max} bytes"
    )
}

fn torn(f: &mut fmt::Formatter<'_>, expected: usize, received: usize) -> fmt::Result {
    write!(
        f,
        "the peer closed the connection in the middle of a frame \
         ({received} of {expected} bytes received)"
    )
}

macro_rules! recv_error {
    ($(#[$doc:meta])* $name:ident, $wait:ident, $wait_doc:literal, $wait_msg:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            #[doc = $wait_doc]
            $wait,
            /// The peer closed the connection (every frame it sent before was received): the
            /// analogue of Python's `EOFError`.
            Disconnected,
            /// The next frame's payload (`len` bytes) is longer than the limit `max`; it
            /// stays unread (on a message transport: unless it was longer than the 64 KiB
            /// receive buffer too, when it is dropped; see `WIRE.md`).
            TooLarge {
                /// The payload length the frame header gives.
                len: usize,
                /// The limit it exceeds.
                max: usize,
            },
            /// The peer closed the connection in the middle of a frame (killed, say): the
            /// partial frame is dropped and the next receive reports `Disconnected`. On a
            /// message transport: a message whose length disagrees with its header (dropped;
            /// receiving goes on).
            Torn {
                /// The bytes of the frame (header included) the receiver was waiting for.
                expected: usize,
                /// The bytes that had arrived.
                received: usize,
            },
            /// A whole frame arrived but its payload is not a valid message; it is consumed.
            Decode(DecodeError),
            /// An OS error.
            Io(io::Error),
        }

        impl $name {
            fn from_fail(f: Fail) -> $name {
                match f {
                    Fail::WouldBlock => $name::$wait,
                    Fail::Disconnected => $name::Disconnected,
                    Fail::TooLarge { len, max } => $name::TooLarge { len, max },
                    Fail::Torn { expected, received } => $name::Torn { expected, received },
                    Fail::Decode(e) => $name::Decode(e),
                    Fail::Encode(e) => $name::Io(io::Error::new(io::ErrorKind::InvalidData, e)),
                    Fail::Io(e) => $name::Io(e),
                }
            }

            /// `true` for `Disconnected`.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $name::Disconnected)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::$wait => f.write_str($wait_msg),
                    $name::Disconnected => f.write_str(DISCONNECTED),
                    $name::TooLarge { len, max } => too_large(f, *len, *max),
                    $name::Torn { expected, received } => torn(f, *expected, *received),
                    $name::Decode(e) => e.fmt(f),
                    $name::Io(e) => e.fmt(f),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Decode(e) => Some(e),
                    $name::Io(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$name> for io::Error {
            fn from(e: $name) -> io::Error {
                let kind = match &e {
                    $name::$wait => io::ErrorKind::WouldBlock,
                    $name::Disconnected | $name::Torn { .. } => io::ErrorKind::UnexpectedEof,
                    $name::TooLarge { .. } | $name::Decode(_) => io::ErrorKind::InvalidData,
                    $name::Io(e) => e.kind(),
                };
                match e {
                    $name::Io(e) => e,
                    e => io::Error::new(kind, e),
                }
            }
        }
    };
}

/// Why [`Connection::recv`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// The peer closed the connection (every frame it sent before was received): the analogue
    /// of Python's `EOFError`.
    Disconnected,
    /// The next frame's payload (`len` bytes) is longer than the limit `max`; it stays unread
    /// (on a message transport: unless it was longer than the 64 KiB receive buffer too, when
    /// it is dropped; see `WIRE.md`).
    TooLarge {
        /// The payload length the frame header gives.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame (killed, say): the partial
    /// frame is dropped and the next receive reports `Disconnected`. On a message transport:
    /// a message whose length disagrees with its header (dropped; receiving goes on).
    Torn {
        /// The bytes of the frame (header included) the receiver was waiting for.
        expected: usize,
        /// The bytes that had arrived.
        received: usize,
    },
    /// A whole frame arrived but its payload is not a valid message; it is consumed.
    Decode(DecodeError),
    /// An OS error.
    Io(io::Error),
}

impl RecvError {
    fn from_fail(f: Fail) -> RecvError {
        match f {
            // A blocking receive does not run out of time; keep the case total all the same.
            Fail::WouldBlock => RecvError::Io(io::ErrorKind::WouldBlock.into()),
            Fail::Disconnected => RecvError::Disconnected,
            Fail::TooLarge { len, max } => RecvError::TooLarge { len, max },
            Fail::Torn { expected, received } => RecvError::Torn { expected, received },
            Fail::Decode(e) => RecvError::Decode(e),
            Fail::Encode(e) => RecvError::Io(io::Error::new(io::ErrorKind::InvalidData, e)),
            Fail::Io(e) => RecvError::Io(e),
        }
    }

    /// `true` for `Disconnected`.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvError::Disconnected)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Disconnected => f.write_str(DISCONNECTED),
            RecvError::TooLarge { len, max } => too_large(f, *len, *max),
            RecvError::Torn { expected, received } => torn(f, *expected, *received),
            RecvError::Decode(e) => e.fmt(f),
            RecvError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Decode(e) => Some(e),
            RecvError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> io::Error {
        let kind = match &e {
            RecvError::Disconnected | RecvError::Torn { .. } => io::ErrorKind::UnexpectedEof,
            RecvError::TooLarge { .. } | RecvError::Decode(_) => io::ErrorKind::InvalidData,
            RecvError::Io(_) => io::ErrorKind::Other,
        };
        match e {
            RecvError::Io(e) => e,
            e => io::Error::new(kind, e),
        }
    }
}

recv_error!(
    /// Why [`Connection::try_recv`] failed.
    TryRecvError,
    Empty,
    "No whole frame is available yet (a partial one stays buffered).",
    "no whole frame is available yet"
);

recv_error!(
    /// Why [`Connection::recv_timeout`] failed.
    RecvTimeoutError,
    Timeout,
    "No whole frame arrived in time (a partial one stays buffered).",
    "timed out waiting for a frame"
);

fn send_too_large(f: &mut fmt::Formatter<'_>, len: usize, max: usize) -> fmt::Result {
    write!(
        f,
        "message of {len} bytes is longer than the frame limit of {max} bytes"
    )
}

macro_rules! send_error {
    ($(#[$doc:meta])* $name:ident $(, $wait:ident, $wait_doc:literal, $wait_msg:literal)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            $(
                #[doc = $wait_doc]
                $wait,
            )?
            /// The peer closed the connection (`EPIPE`, `ECONNRESET`); nothing more can be sent.
            Disconnected,
            /// The payload (`len` bytes) is longer than the limit `max`; nothing was sent.
            TooLarge {
                /// The payload length.
                len: usize,
                /// The connection's frame limit.
                max: usize,
            },
            /// The codec could not encode the message; nothing was sent.
            Encode(EncodeError),
            /// An OS error.
            Io(io::Error),
        }

        impl $name {
            fn from_fail(f: Fail) -> $name {
                match f {
                    $(Fail::WouldBlock => $name::$wait,)?
                    Fail::Disconnected => $name::Disconnected,
                    Fail::TooLarge { len, max } => $name::TooLarge { len, max },
                    Fail::Encode(e) => $name::Encode(e),
                    Fail::Io(e) => $name::Io(e),
                    #[allow(unreachable_patterns)]
                    Fail::WouldBlock => $name::Io(io::ErrorKind::WouldBlock.into()),
                    Fail::Torn { .. } | Fail::Decode(_) => {
                        $name::Io(io::Error::other("internal: receive error on send"))
                    }
                }
            }

            /// `true` for `Disconnected`.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $name::Disconnected)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$wait => f.write_str($wait_msg),)?
                    $name::Disconnected => f.write_str(DISCONNECTED),
                    $name::TooLarge { len, max } => send_too_large(f, *len, *max),
                    $name::Encode(e) => e.fmt(f),
                    $name::Io(e) => e.fmt(f),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Encode(e) => Some(e),
                    $name::Io(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$name> for io::Error {
            fn from(e: $name) -> io::Error {
                let kind = match &e {
                    $($name::$wait => io::ErrorKind::WouldBlock,)?
                    $name::Disconnected => io::ErrorKind::BrokenPipe,
                    $name::TooLarge { .. } | $name::Encode(_) => io::ErrorKind::InvalidInput,
                    $name::Io(e) => e.kind(),
                };
                match e {
                    $name::Io(e) => e,
                    e => io::Error::new(kind, e),
                }
            }
        }
    };
}

send_error!(
    /// Why [`Connection::send`] failed.
    SendError
);

send_error!(
    /// Why [`Connection::try_send`] failed.
    TrySendError,
    Full,
    "The transport has no room now; nothing was sent.",
    "the connection's transport is full"
);

send_error!(
    /// Why [`Connection::send_timeout`] failed.
    SendTimeoutError,
    Timeout,
    "The transport had no room in time; nothing was sent.",
    "timed out waiting to send"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn seqpacket_pair() -> (
        Connection<String, socket::SeqPacket>,
        Connection<String, socket::SeqPacket>,
    ) {
        let (a, b) = socket::SeqPacket::pair().unwrap();
        (Connection::new(a).unwrap(), Connection::new(b).unwrap())
    }

    #[test]
    fn message_framing_one_frame_per_message() {
        let (mut a, mut b) = seqpacket_pair();
        a.send(&"one".to_string()).unwrap();
        a.send_bytes(&[]).unwrap();
        a.send(&"three".to_string()).unwrap();
        assert_eq!(b.recv().unwrap(), "one");
        assert_eq!(b.recv_bytes(10).unwrap(), b"");
        assert!(matches!(
            b.try_recv_bytes(1),
            Err(TryRecvError::TooLarge { len: 6, max: 1 })
        ));
        assert_eq!(b.try_recv().unwrap(), "three");
        assert!(matches!(b.try_recv(), Err(TryRecvError::Empty)));
        // A message whose header disagrees with its length is a torn frame, and skipped.
        a.transport().send(&[9, 0, 0, 0, 1]).unwrap();
        a.send(&"after".to_string()).unwrap();
        assert!(matches!(
            b.recv(),
            Err(RecvError::Torn {
                expected: 13,
                received: 5
            })
        ));
        assert_eq!(b.recv().unwrap(), "after");
        drop(a);
        assert!(b.recv().unwrap_err().is_disconnected());
    }

    #[test]
    fn message_framing_long_frames_and_small_limits() {
        let (a, b) = socket::SeqPacket::pair().unwrap();
        rustix::net::sockopt::set_socket_send_buffer_size(&a, 1 << 20).unwrap();
        let (mut a, mut b) = (
            Connection::<(), _>::new(a).unwrap(),
            Connection::<(), _>::new(b).unwrap(),
        );
        let long = vec![7u8; 3 * INITIAL_BUF];
        let mut small = [0u8; 16];
        // One longer than the buffer, refused by a small limit, is dropped (its
        // rest is lost); the next arrives.
        a.send_bytes(&long).unwrap();
        a.send_bytes(b"next").unwrap();
        assert!(matches!(
            b.recv_bytes_into(&mut small),
            Err(RecvError::TooLarge { len, max: 16 }) if len == long.len()
        ));
        assert_eq!(b.recv_bytes_into(&mut small).unwrap(), 4);
        assert_eq!(&small[..4], b"next");
        // Under the default limit the size is learned first: a long frame arrives whole.
        a.send_bytes(&long).unwrap();
        assert_eq!(b.recv_bytes(usize::MAX).unwrap(), long);
        // A frame refused by a small limit that fits the buffer stays for a larger one.
        a.send_bytes(&[1; 100]).unwrap();
        assert!(matches!(
            b.recv_bytes_into(&mut small),
            Err(RecvError::TooLarge { len: 100, max: 16 })
        ));
        assert_eq!(b.buffered_len(), 104);
        assert_eq!(b.recv_bytes(100).unwrap(), [1; 100]);
        // A large caller's buffer (limit above the receive buffer) takes the PEEK path.
        let mut big = vec![0u8; 4 * INITIAL_BUF];
        a.send_bytes(&long).unwrap();
        assert_eq!(b.recv_bytes_into(&mut big).unwrap(), long.len());
        assert_eq!(&big[..long.len()], &long[..]);
    }

    #[test]
    fn message_receive_timeout_is_an_error_not_a_hang() {
        let (a, b) = socket::SeqPacket::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut b = Connection::<u32, _>::new(b).unwrap();
        for limit in [16, usize::MAX] {
            let mut buf = vec![0u8; limit.min(1 << 20)];
            match b.recv_bytes_into(&mut buf) {
                Err(RecvError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
                other => panic!("expected a timeout, got {other:?}"),
            }
        }
        // Made non-blocking after wrapping: a blocking receive waits in poll instead.
        let mut a = Connection::<u32, _>::new(a).unwrap();
        b.transport().set_nonblocking(true).unwrap();
        let t = std::thread::spawn(move || {
            a.send(&9).unwrap();
            a
        });
        assert_eq!(b.recv().unwrap(), 9);
        drop(t.join().unwrap());
    }

    #[test]
    fn buffer_grows_with_arrivals_not_claims() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = Connection::<(), _>::new(b).unwrap();
        b.set_max_frame_len(WIRE_MAX_FRAME_LEN);
        rustix::io::write(&a, &u32::MAX.to_le_bytes()).unwrap();
        rustix::io::write(&a, &[7; 100]).unwrap();
        assert!(matches!(
            b.try_recv_bytes(usize::MAX),
            Err(TryRecvError::Empty)
        ));
        assert!(
            b.state.rbuf.len() <= 2 * INITIAL_BUF,
            "{}",
            b.state.rbuf.len()
        );
        drop(a);
        assert!(matches!(
            b.recv_bytes(usize::MAX),
            Err(RecvError::Torn {
                expected: 4_294_967_299,
                received: 104
            })
        ));
        assert!(b.recv_bytes(usize::MAX).unwrap_err().is_disconnected());
    }

    #[test]
    fn large_frames_go_straight_to_the_callers_buffer() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = Connection::<(), _>::new(b).unwrap();
        let len = 5 * INITIAL_BUF + 3;
        let writer = std::thread::spawn(move || {
            let mut frame = (len as u32).to_le_bytes().to_vec();
            frame.extend((0..len).map(|i| (i % 253) as u8));
            for chunk in frame.chunks(10_000) {
                rustix::io::write(&a, chunk).unwrap();
            }
            // Then a torn one: header and part of the payload.
            rustix::io::write(&a, &(len as u32).to_le_bytes()).unwrap();
            rustix::io::write(&a, &[1; 100]).unwrap();
        });
        let mut buf = vec![0u8; len];
        assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), len);
        assert!(buf.iter().enumerate().all(|(i, &x)| x == (i % 253) as u8));
        assert!(b.state.rbuf.len() <= INITIAL_BUF, "copied through rbuf");
        writer.join().unwrap();
        match b.recv_bytes_into(&mut buf) {
            Err(RecvError::Torn { expected, received }) => {
                assert_eq!((expected, received), (len + 4, 104));
            }
            other => panic!("expected Torn, got {other:?}"),
        }
        assert!(b.recv_bytes_into(&mut buf).unwrap_err().is_disconnected());
    }

    #[test]
    fn many_small_frames_in_one_read_and_one_large() {
        let (mut a, mut b) = duplex::<u64>().unwrap();
        let t = std::thread::spawn(move || {
            for i in 0..1000 {
                a.send(&i).unwrap();
            }
            a.send_bytes(&vec![0xA5u8; 3 * INITIAL_BUF + 17]).unwrap();
            a
        });
        for i in 0..1000 {
            assert_eq!(b.recv().unwrap(), i);
        }
        let got = b.recv_bytes(usize::MAX).unwrap();
        assert_eq!(got.len(), 3 * INITIAL_BUF + 17);
        assert!(got.iter().all(|&x| x == 0xA5));
        drop(t.join().unwrap());
    }
}
