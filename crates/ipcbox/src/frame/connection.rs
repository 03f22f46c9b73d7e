//! `Connection`, its constructors `duplex` and `pipe`, and handing an end to a child.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use super::buffer::{Filled, Growing, Split, State};
use super::error::{received, sent, Fail, RecvError, SendError};
use super::transport::{Readable, Transport, Writable};
use super::{HEADER_LEN, WIRE_MAX_FRAME_LEN};
use crate::codec::{Codec, Postcard, Raw};
use crate::deadline::Deadline;
use crate::error::ResultExt;
use crate::pipe;
use crate::socket;
use crate::sys;

#[cfg(doc)]
use super::DEFAULT_MAX_FRAME_LEN;
/// A pair of connected duplex connections over a Unix stream `socketpair`, both ends sending
/// and receiving `M`: `multiprocessing.Pipe(duplex=True)`.
///
/// Wraps [`socketpair(2)`](https://man7.org/linux/man-pages/man2/socketpair.2.html)
/// (`AF_UNIX`, `SOCK_STREAM`, close-on-exec) through [`socket::Stream::pair`]. For ends that
/// send one type and receive another, see [`Connection::pair`].
///
/// # Errors
///
/// The OS error when out of descriptors.
#[doc(alias = "socketpair")]
#[doc(alias = "Pipe")]
pub fn duplex<M>() -> io::Result<(Connection<M>, Connection<M>)> {
    Connection::pair()
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
pub fn pipe<M>() -> io::Result<(
    Connection<M, M, pipe::Reader>,
    Connection<M, M, pipe::Writer>,
)> {
    let (r, w) = pipe::new()?;
    Ok((Connection::new(r)?, Connection::new(w)?))
}

/// The descriptor of a connection's transport (borrowing only that field).
pub(super) fn fd_of<T: AsFd>(transport: &Option<T>) -> BorrowedFd<'_> {
    transport
        .as_ref()
        .expect("a connection holds its transport until into_transport")
        .as_fd()
}

/// A framed, typed connection over the transport `T` (default ipcbox's own
/// [`socket::Stream`]) that sends messages of type `Out` and receives messages of type `In`
/// (default: the same type), encoded by the codec `C` (default [`Postcard`]).
///
/// * `Connection<Msg>` sends and receives `Msg`.
/// * `Connection<Request, Response>` is a client's end of a request/reply protocol, and
///   `Connection<Response, Request>` the server's ([`Connection::pair`] makes both).
/// * [`ByteConnection`] carries raw payloads (`Vec<u8>`, codec [`Raw`]), no message type.
/// * Any [`Transport`] works: `Connection<Msg, Msg, std::os::unix::net::UnixStream>`, or
///   `Connection::new(transport)` and let the type be inferred.
///
/// Sending needs `T:` [`Writable`], receiving `T:` [`Readable`]. The raw-bytes operations work
/// whatever the message types are, and mix freely with typed ones (they are the same frames).
///
/// Dropping a connection closes its descriptor: the peer receives every frame sent before,
/// then [`RecvError::Disconnected`].
///
/// If a `try_`, `_timeout` or `_deadline` send left part of a frame unsent, drop first sends
/// the rest, blocking if need be (as `BufWriter` does). That is forever if the peer is alive
/// but never reads again: call [`flush_timeout`](Connection::flush_timeout) (or
/// [`try_flush`](Connection::try_flush)) first to bound it.
pub struct Connection<Out, In = Out, T: Transport = socket::Stream, C = Postcard> {
    /// Always `Some` except inside `into_transport`, which moves it out past `Drop`.
    pub(super) transport: Option<T>,
    pub(super) codec: C,
    pub(super) state: State,
    _message: PhantomData<fn(Out) -> In>,
}

/// A connection whose messages are raw payloads: `send` takes and `recv` returns the frame's
/// bytes as they are (codec [`Raw`]), with no message type to name.
///
/// ```
/// use ipcbox::frame::ByteConnection;
/// use ipcbox::socket::Stream;
///
/// let (a, b) = Stream::pair()?;
/// let (mut a, mut b) = (ByteConnection::new(a)?, ByteConnection::new(b)?);
/// a.send_bytes(b"ping")?;
/// assert_eq!(b.recv()?, b"ping"); // the same as b.recv_bytes()
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type ByteConnection<T = socket::Stream> = Connection<Vec<u8>, Vec<u8>, T, Raw>;

impl<Out, In, C: Default> Connection<Out, In, socket::Stream, C> {
    /// Two connected ends over a Unix stream `socketpair`: the first sends `Out` and receives
    /// `In`, the second the reverse. `Connection::<Msg>::pair()` is [`duplex`].
    ///
    /// # Errors
    ///
    /// The OS error when out of descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// use ipcbox::frame::Connection;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// enum Request { Add(u32, u32) }
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// enum Reply { Sum(u32) }
    ///
    /// let (mut client, mut server) = Connection::<Request, Reply>::pair()?;
    /// client.send(&Request::Add(2, 3))?;
    /// let Request::Add(a, b) = server.recv()?;
    /// server.send(&Reply::Sum(a + b))?;
    /// assert_eq!(client.recv()?, Reply::Sum(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::type_complexity)]
    #[doc(alias = "socketpair")]
    pub fn pair() -> io::Result<(
        Connection<Out, In, socket::Stream, C>,
        Connection<In, Out, socket::Stream, C>,
    )> {
        let (a, b) =
            socket::Stream::pair().context_with(|| "create socketpair for a duplex connection")?;
        Ok((Connection::new(a)?, Connection::new(b)?))
    }
}

impl<Out, In, T: Transport, C> fmt::Debug for Connection<Out, In, T, C> {
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

impl<Out, In, T: Transport, C: Default> Connection<Out, In, T, C> {
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
    /// use ipcbox::socket::{Endpoint, Listener, Stream};
    ///
    /// # let dir = std::env::temp_dir().join(format!("ipcbox-doc-conn-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let endpoint = Endpoint::unix(dir.join("server.sock"));
    /// let listener = Listener::bind(&endpoint)?;
    /// let mut client = Connection::<String>::new(Stream::connect(&endpoint)?)?;
    /// let mut server = Connection::<String>::new(listener.accept()?)?;
    /// client.send(&"hi".to_string())?;
    /// assert_eq!(server.recv()?, "hi");
    ///
    /// // std's sockets work too: name the transport, or let it be inferred.
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut a: Connection<String, String, _> = Connection::new(a)?;
    /// let mut b = Connection::<String, String, std::os::unix::net::UnixStream>::new(b)?;
    /// a.send(&"hello".to_string())?;
    /// assert_eq!(b.recv()?, "hello");
    /// # drop(listener);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(transport: T) -> io::Result<Self> {
        Self::with_codec(transport, C::default())
    }

    /// Takes the connection end a parent passed with [`pass_to_child`](Self::pass_to_child):
    /// reads the environment variable `var`, checks that the descriptor it names is open, is
    /// the very object the parent passed (same device and inode) and is of transport `T`'s
    /// kind, and takes ownership of it. A process can take it once; it becomes close-on-exec
    /// again.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::NotFound`] if `var` is not set.
    /// * [`io::ErrorKind::InvalidInput`] if its value is malformed, or the descriptor is not the
    ///   one passed or not of the right kind.
    /// * [`io::ErrorKind::AlreadyExists`] if this process already took it.
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
        let fd = sys::fd::claim_inherited(var, &value, T::check_fd)?;
        Self::new(T::from(fd))
    }
}

impl<Out, In, T: Transport, C> Connection<Out, In, T, C> {
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

    /// Whether a receive would return without reading the transport: a whole frame is
    /// buffered, or the peer has closed.
    pub(crate) fn frame_buffered(&self) -> bool {
        let st = &self.state;
        let have = &st.rbuf[st.rpos..st.rend];
        st.eof
            || (st.framing == super::transport::Framing::Message && !have.is_empty())
            || have
                .first_chunk::<4>()
                .is_some_and(|h| 4 + u64::from(u32::from_le_bytes(*h)) <= have.len() as u64)
    }

    /// Bytes of a started frame not yet handed to the transport (see [`flush`](Self::flush)).
    pub fn pending_len(&self) -> usize {
        self.state.pending.len() - self.state.pending_pos
    }

    /// Gives the transport back, after sending any pending bytes; a pipe end that a `try_`,
    /// `_timeout` or `_deadline` send switched to `O_NONBLOCK` is switched back to blocking.
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
            .flush_pending(fd_of(&self.transport), Deadline::Forever)
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
        let value = sys::fd::keep_open_in_child(cmd, fd)?;
        cmd.env(var, value);
        Ok(())
    }
}

impl<Out, In, T: Transport, C> Drop for Connection<Out, In, T, C> {
    fn drop(&mut self) {
        if let Some(t) = &self.transport {
            if self.state.pending_pos < self.state.pending.len() {
                let _ = self.state.flush_pending(t.as_fd(), Deadline::Forever);
            }
        }
    }
}

impl<Out, In, T: Writable, C: Codec<Out>> Connection<Out, In, T, C> {
    fn send_with(&mut self, msg: &Out, deadline: Deadline) -> Result<(), Fail> {
        let mut wbuf = std::mem::take(&mut self.state.wbuf);
        wbuf.clear();
        wbuf.extend_from_slice(&[0; HEADER_LEN]);
        let res = match self.codec.encode_vectored(msg, &mut wbuf) {
            Ok(block) => self
                .state
                .check_send_len(wbuf.len() - HEADER_LEN + block.len())
                .and_then(|h| {
                    let payload = [&wbuf[HEADER_LEN..], block];
                    self.state
                        .write_frame(fd_of(&self.transport), h, payload, deadline)
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
    pub fn send(&mut self, msg: &Out) -> Result<(), SendError> {
        self.send_with(msg, Deadline::Forever)
            .map_err(SendError::from_fail)
    }

    /// [`send`](Self::send) without waiting.
    ///
    /// * `Ok(true)`: the frame is taken. The transport took all of it, or (on a stream) a
    ///   first part: the connection keeps the rest and sends it before anything else (see
    ///   [`flush`](Self::flush)).
    /// * `Ok(false)`: nothing of `msg` was taken; the transport had no room. If the rest of an
    ///   earlier frame was still pending, part of that rest may have gone out.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn try_send(&mut self, msg: &Out) -> Result<bool, SendError> {
        sent(self.send_with(msg, Deadline::Now))
    }

    /// [`send`](Self::send) waiting at most `timeout` for room: `Ok(false)` when it passes
    /// first, with the meaning of `Ok(true)` and `Ok(false)` of [`try_send`](Self::try_send).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_timeout(&mut self, msg: &Out, timeout: Duration) -> Result<bool, SendError> {
        sent(self.send_with(msg, Deadline::after(timeout)))
    }

    /// [`send`](Self::send) waiting until `deadline` at most for room: `Ok(false)` when it
    /// passes first, with the meaning of `Ok(true)` and `Ok(false)` of
    /// [`try_send`](Self::try_send). A deadline already passed still tries once.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_deadline(&mut self, msg: &Out, deadline: Instant) -> Result<bool, SendError> {
        sent(self.send_with(msg, Deadline::At(deadline)))
    }
}

impl<Out, In, T: Writable, C> Connection<Out, In, T, C> {
    fn send_bytes_with(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), Fail> {
        let header = self.state.check_send_len(bytes.len())?;
        self.state
            .write_frame(fd_of(&self.transport), header, [bytes, &[]], deadline)
    }

    /// Sends `bytes` as one frame, as is, with no allocation: one `sendmsg`/`writev` of header
    /// and payload, or for a frame up to 1 KiB one `send`/`write` of a copy on the stack.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), without `Encode`.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.send_bytes_with(bytes, Deadline::Forever)
            .map_err(SendError::from_fail)
    }

    /// [`send_bytes`](Self::send_bytes) without waiting; `Ok(true)` and `Ok(false)` as for
    /// [`try_send`](Self::try_send).
    ///
    /// # Errors
    ///
    /// As [`send_bytes`](Self::send_bytes).
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> Result<bool, SendError> {
        sent(self.send_bytes_with(bytes, Deadline::Now))
    }

    /// [`send_bytes`](Self::send_bytes) waiting at most `timeout`; `Ok(true)` and `Ok(false)`
    /// as for [`try_send`](Self::try_send).
    ///
    /// # Errors
    ///
    /// As [`send_bytes`](Self::send_bytes).
    pub fn send_bytes_timeout(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<bool, SendError> {
        sent(self.send_bytes_with(bytes, Deadline::after(timeout)))
    }

    /// Sends what remains of a frame a `try_`/`_timeout`/`_deadline` send started, waiting as
    /// needed.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] or [`SendError::Io`].
    pub fn flush(&mut self) -> Result<(), SendError> {
        self.state
            .flush_pending(fd_of(&self.transport), Deadline::Forever)
            .map_err(SendError::from_fail)
    }

    /// [`flush`](Self::flush) without waiting: `Ok(true)` when nothing is pending any more,
    /// `Ok(false)` when some of it still is (part may have gone out).
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush).
    pub fn try_flush(&mut self) -> Result<bool, SendError> {
        sent(
            self.state
                .flush_pending(fd_of(&self.transport), Deadline::Now),
        )
    }

    /// [`flush`](Self::flush) waiting at most `timeout`: `Ok(false)` when some of the frame is
    /// still pending then (part may have gone out). Call it before dropping a connection whose
    /// peer may have stopped reading.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush).
    pub fn flush_timeout(&mut self, timeout: Duration) -> Result<bool, SendError> {
        sent(
            self.state
                .flush_pending(fd_of(&self.transport), Deadline::after(timeout)),
        )
    }
}

impl<Out, In, T: Readable, C: Codec<In>> Connection<Out, In, T, C> {
    fn recv_with(&mut self, deadline: Deadline) -> Result<In, Fail> {
        let max = self.state.max_frame;
        let fd = fd_of(&self.transport);
        // A large message the codec can take in place is received straight into its memory.
        let mut split = Split::new(&mut self.codec, self.state.last_frame);
        match self.state.fill_frame(fd, deadline, max, Some(&mut split))? {
            Filled::Direct(_) => split.decode(),
            Filled::Buffered(len) => {
                drop(split);
                let payload = self.state.take_frame(len);
                self.codec.decode(payload).map_err(Fail::Decode)
            }
        }
    }

    /// Receives one frame and decodes it, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// * [`RecvError::Disconnected`]: the peer closed, and every frame it sent was received.
    /// * [`RecvError::TooLarge`]: the next frame is longer than
    ///   [`max_frame_len`](Self::max_frame_len); it stays unread.
    /// * [`RecvError::Torn`]: the peer closed in the middle of a frame.
    /// * [`RecvError::LengthMismatch`]: on a message transport, a message that does not hold
    ///   the frame its header announces (dropped; the next one can be received).
    /// * [`RecvError::Decode`]: the payload is not an `In` (the frame is consumed; the next one
    ///   can be received).
    /// * [`RecvError::Io`].
    pub fn recv(&mut self) -> Result<In, RecvError> {
        self.recv_with(Deadline::Forever)
            .map_err(RecvError::from_fail)
    }

    /// [`recv`](Self::recv) without waiting: `Ok(None)` unless a whole frame is available.
    /// The bytes of a partial frame that did arrive stay buffered in the connection
    /// ([`buffered_len`](Self::buffered_len)), and the next receive completes it.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<In>, RecvError> {
        received(self.recv_with(Deadline::Now))
    }

    /// [`recv`](Self::recv) waiting at most `timeout`: `Ok(None)` when no whole frame came in
    /// time (a partial one stays buffered, as for [`try_recv`](Self::try_recv)).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<In>, RecvError> {
        received(self.recv_with(Deadline::after(timeout)))
    }

    /// [`recv`](Self::recv) waiting until `deadline` at most: `Ok(None)` when no whole frame
    /// came by then (a partial one stays buffered, as for [`try_recv`](Self::try_recv)). A
    /// deadline already passed still takes a frame that is there.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let (mut a, mut b) = ipcbox::frame::duplex::<u32>()?;
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// assert!(a.send_deadline(&7, deadline)?);
    /// assert_eq!(b.recv_deadline(deadline)?, Some(7));
    /// assert_eq!(b.recv_deadline(Instant::now())?, None); // nothing more: not now
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Option<In>, RecvError> {
        received(self.recv_with(Deadline::At(deadline)))
    }
}

impl<Out, In, T: Readable, C> Connection<Out, In, T, C> {
    fn recv_bytes_with(&mut self, deadline: Deadline) -> Result<Vec<u8>, Fail> {
        let max = self.state.max_frame;
        let fd = fd_of(&self.transport);
        let mut out = Growing::new(self.state.last_frame);
        match self.state.fill_frame(fd, deadline, max, Some(&mut out))? {
            Filled::Direct(_) => Ok(out.vec),
            Filled::Buffered(len) => Ok(self.state.take_frame(len).to_vec()),
        }
    }

    fn recv_bytes_into_with(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, Fail> {
        let max = buf.len().min(self.state.max_frame);
        let fd = fd_of(&self.transport);
        match self.state.fill_frame(fd, deadline, max, Some(&mut *buf))? {
            Filled::Direct(len) => Ok(len),
            Filled::Buffered(len) => {
                buf[..len].copy_from_slice(self.state.take_frame(len));
                Ok(len)
            }
        }
    }

    /// Receives one frame's payload, up to [`max_frame_len`](Self::max_frame_len) bytes, as a
    /// new `Vec`, like Python's `Connection.recv_bytes`. To bound one receive lower, receive
    /// into a buffer of that size ([`recv_bytes_into`](Self::recv_bytes_into)).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv) without `Decode`.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_bytes_with(Deadline::Forever)
            .map_err(RecvError::from_fail)
    }

    /// [`recv_bytes`](Self::recv_bytes) without waiting: `Ok(None)` as for
    /// [`try_recv`](Self::try_recv).
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](Self::recv_bytes).
    pub fn try_recv_bytes(&mut self) -> Result<Option<Vec<u8>>, RecvError> {
        received(self.recv_bytes_with(Deadline::Now))
    }

    /// [`recv_bytes`](Self::recv_bytes) waiting at most `timeout`: `Ok(None)` as for
    /// [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, RecvError> {
        received(self.recv_bytes_with(Deadline::after(timeout)))
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
    /// let (mut a, mut b) = ipcbox::frame::ByteConnection::pair()?;
    /// a.send_bytes(b"ping")?;
    /// let mut buf = [0u8; 64];
    /// let n = b.recv_bytes_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"ping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.recv_bytes_into_with(buf, Deadline::Forever)
            .map_err(RecvError::from_fail)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) without waiting: `Ok(None)` as for
    /// [`try_recv`](Self::try_recv), and `buf` is untouched then.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes_into`](Self::recv_bytes_into).
    pub fn try_recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        received(self.recv_bytes_into_with(buf, Deadline::Now))
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) waiting at most `timeout`: `Ok(None)` as for
    /// [`recv_timeout`](Self::recv_timeout), and `buf` is untouched then.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes_into`](Self::recv_bytes_into).
    pub fn recv_bytes_into_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<usize>, RecvError> {
        received(self.recv_bytes_into_with(buf, Deadline::after(timeout)))
    }
}

impl<Out, In, T: Transport, C> AsFd for Connection<Out, In, T, C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}
