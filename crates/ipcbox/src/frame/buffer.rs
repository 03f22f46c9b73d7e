//! The engine under a connection: the receive buffer that frames are cut from, sends of
//! whole frames and of what a timed-out send left pending, and the waits of the `try_` and
//! `_timeout` forms.

use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::event::PollFlags;
use rustix::fs::{fcntl_getfl, fcntl_setfl, FileType, OFlags};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};

use super::error::Fail;
use super::transport::{Framing, INET};
use super::{DEFAULT_MAX_FRAME_LEN, HEADER_LEN};
use crate::codec::{Codec, SPLIT_HEAD_MAX};
use crate::deadline::Deadline;
use crate::error::{context, ResultExt};
use crate::socket;
use crate::sys;
/// What the receive buffer starts at (allocated on the first receive).
pub(super) const INITIAL_BUF: usize = 64 << 10;

/// A receive buffer larger than this is freed once it is empty, unless the last frame took
/// more than half of it.
const KEEP_BUF: usize = 1 << 20;

/// Frames (header included) up to this long are copied into one buffer to be sent.
const SMALL_FRAME: usize = 1 << 10;

/// Frames at least this long are received straight into the caller's memory when possible.
const DIRECT_MIN: usize = INITIAL_BUF;

/// What [`State::fill_frame`] did with the next frame.
pub(super) enum Filled {
    /// The frame is buffered whole at `rpos`, with a payload this long.
    Buffered(usize),
    /// The payload, this long, went to the sink.
    Direct(usize),
}

/// Where [`State::fill_frame`] puts a large frame's payload.
pub(super) trait Sink {
    /// Whether to take a payload of `len` bytes that starts with `head` (its first
    /// [`SPLIT_HEAD_MAX`] bytes); if not, the frame is received through the buffer.
    fn accepts(&mut self, head: &[u8], len: usize) -> bool {
        let _ = (head, len);
        true
    }
    /// Takes the part of the payload of `len` bytes that was already buffered.
    fn start(&mut self, prefix: &[u8], len: usize);
    /// One read of payload bytes `filled..len` at most; how many came, 0 at end of file.
    fn read(&mut self, fd: BorrowedFd<'_>, filled: usize, len: usize) -> rustix::io::Result<usize>;
}

/// The caller's buffer, at least `len` long (checked against `max` before use).
impl Sink for [u8] {
    fn start(&mut self, prefix: &[u8], _len: usize) {
        self[..prefix.len()].copy_from_slice(prefix);
    }
    fn read(&mut self, fd: BorrowedFd<'_>, filled: usize, len: usize) -> rustix::io::Result<usize> {
        rustix::io::read(fd, &mut self[filled..len])
    }
}

/// A new `Vec` receiving a payload, allocated in step with arrivals: never beyond what has
/// arrived of the frame (at most doubling) or the length of the frame before it, so frames of
/// one size fill one allocation each, with no copy and no zeroing.
pub(super) struct Growing {
    pub(super) vec: Vec<u8>,
    /// How far ahead of arrivals the first allocation may go: the previous frame's length.
    ahead: usize,
}

impl Growing {
    pub(super) fn new(previous_frame: usize) -> Growing {
        Growing {
            vec: Vec::new(),
            ahead: previous_frame,
        }
    }
}

impl Sink for Growing {
    fn start(&mut self, prefix: &[u8], len: usize) {
        let first = self.ahead.max(INITIAL_BUF).max(prefix.len()).min(len);
        self.vec = Vec::with_capacity(first);
        self.vec.extend_from_slice(prefix);
    }
    fn read(&mut self, fd: BorrowedFd<'_>, filled: usize, len: usize) -> rustix::io::Result<usize> {
        if self.vec.len() == self.vec.capacity() {
            self.vec.reserve_exact((2 * filled).min(len) - filled);
        }
        sys::fd::read_to_spare(fd, &mut self.vec, len - filled)
    }
}

/// A typed message whose encoding is a head then the message's own memory
/// ([`Codec::split_payload`]): the head is kept, the rest received into a [`Growing`] `Vec`.
pub(super) struct Split<'c, C, M> {
    codec: &'c mut C,
    msg: PhantomData<fn() -> M>,
    pub(super) head: [u8; SPLIT_HEAD_MAX],
    pub(super) head_len: usize,
    pub(super) body: Growing,
}

impl<'c, M, C: Codec<M>> Split<'c, C, M> {
    pub(super) fn new(codec: &'c mut C, previous_frame: usize) -> Self {
        Split {
            codec,
            msg: PhantomData,
            head: [0; SPLIT_HEAD_MAX],
            head_len: 0,
            body: Growing::new(previous_frame),
        }
    }

    /// The message, from the head and the body received.
    pub(super) fn decode(self) -> Result<M, Fail> {
        let head = &self.head[..self.head_len];
        self.codec
            .decode_vectored(head, self.body.vec)
            .map_err(Fail::Decode)
    }
}

impl<M, C: Codec<M>> Sink for Split<'_, C, M> {
    fn accepts(&mut self, head: &[u8], len: usize) -> bool {
        match self.codec.split_payload(head, len) {
            Some(n) if n <= head.len() => {
                self.head_len = n;
                true
            }
            _ => false,
        }
    }
    fn start(&mut self, prefix: &[u8], len: usize) {
        let n = self.head_len;
        self.head[..n].copy_from_slice(&prefix[..n]);
        self.body.start(&prefix[n..], len - n);
    }
    fn read(&mut self, fd: BorrowedFd<'_>, filled: usize, len: usize) -> rustix::io::Result<usize> {
        let n = self.head_len;
        self.body.read(fd, filled - n, len - n)
    }
}

/// Waits until `fd` is ready for `flags`; `false` when the deadline passed first.
pub(super) fn wait_ready(
    fd: BorrowedFd<'_>,
    flags: PollFlags,
    deadline: Deadline,
) -> Result<bool, Fail> {
    socket::wait_ready(fd, flags, deadline).map_err(|e| Fail::Io(context(e, "poll connection")))
}

/// The buffers and state of a connection, apart from its transport and codec.
pub(super) struct State {
    /// Received bytes; `rbuf[rpos..rend]` is not consumed yet (whole or partial frames).
    pub(super) rbuf: Vec<u8>,
    pub(super) rpos: usize,
    pub(super) rend: usize,
    /// The peer closed its side; what is buffered is all there will be.
    pub(super) eof: bool,
    /// The length of the last frame received, header included.
    pub(super) last_frame: usize,
    /// Scratch space for encoding typed messages: header placeholder, then payload.
    pub(super) wbuf: Vec<u8>,
    /// The unsent rest of a frame a `try_`/`_timeout` send had started: sent before anything
    /// else so the stream stays whole.
    pub(super) pending: Vec<u8>,
    pub(super) pending_pos: usize,
    pub(super) max_frame: usize,
    pub(super) framing: Framing,
    pub(super) socket: bool,
    /// A `SOCK_DGRAM` socket: an empty message is a malformed datagram, never the end.
    pub(super) datagram: bool,
    /// Descriptors received with the frame being received by `recv_with_fds`.
    pub(super) fds: Vec<OwnedFd>,
    /// Every message the transport can carry fits a receive buffer of [`INITIAL_BUF`] (UDP).
    pub(super) small_messages: bool,
    /// `O_NONBLOCK` is set on the descriptor (by its creator, or by us for a non-socket
    /// writer's first `try_`/`_timeout` send).
    pub(super) nonblocking: bool,
    /// We set `O_NONBLOCK` ourselves: [`Connection::into_transport`] clears it again, so the
    /// descriptor handed back (or to a child) blocks as it did when it was given to us.
    pub(super) set_nonblocking: bool,
}

impl State {
    pub(super) fn new(fd: BorrowedFd<'_>, framing: Framing) -> io::Result<State> {
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
            last_frame: 0,
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
    #[inline]
    pub(super) fn make_room(&mut self, need: usize) {
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

    /// Frees an empty receive buffer larger than [`KEEP_BUF`] unless the last frame took more
    /// than half of it.
    #[inline]
    fn free_idle_buffer(&mut self) {
        if self.rpos == self.rend && self.rbuf.len() > KEEP_BUF.max(2 * self.last_frame) {
            // One large frame should not pin its size in memory for the connection's life;
            // but while frames that large keep coming, growing the buffer again for each (a
            // copy per doubling, fresh pages to fault in) costs more than the frame's decoding.
            self.rbuf = Vec::new();
            self.rpos = 0;
            self.rend = 0;
        }
    }

    /// One read of at most `max` bytes into the free end of `rbuf`; sets `eof` when the peer
    /// has closed.
    pub(super) fn read_some(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Deadline,
        max: usize,
    ) -> Result<(), Fail> {
        let blocking = matches!(deadline, Deadline::Forever);
        loop {
            if !blocking && !self.socket && !self.nonblocking {
                // A blocking pipe end: only read once poll says it will not block.
                if !wait_ready(fd, PollFlags::IN, deadline)? {
                    return Err(Fail::WouldBlock);
                }
            }
            let end = self.rbuf.len().min(self.rend.saturating_add(max));
            let buf = &mut self.rbuf[self.rend..end];
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
                    if matches!(deadline, Deadline::Now)
                        || !wait_ready(fd, PollFlags::IN, deadline)?
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

    /// Ensures a whole frame of at most `max` payload bytes is buffered at `rpos`
    /// ([`Filled::Buffered`] with its payload length), or, for a large frame on a stream with
    /// no deadline that `sink` accepts, receives its payload straight into `sink`, saving the
    /// copy through `rbuf` ([`Filled::Direct`]). A frame that is too long stays unconsumed.
    pub(super) fn fill_frame<S: Sink + ?Sized>(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Deadline,
        max: usize,
        mut sink: Option<&mut S>,
    ) -> Result<Filled, Fail> {
        self.free_idle_buffer();
        if self.framing == Framing::Message {
            return self.fill_message(fd, deadline, max).map(Filled::Buffered);
        }
        if !matches!(deadline, Deadline::Forever) {
            sink = None;
        }
        // Enough to decide on a direct receive: the header and the payload's head.
        const NEED: usize = HEADER_LEN + SPLIT_HEAD_MAX;
        loop {
            let have = self.rend - self.rpos;
            let mut large = true;
            let need = if have >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
                let len = u32::from_le_bytes(h) as usize;
                if len > max {
                    return Err(Fail::TooLarge { len, max });
                }
                if have >= HEADER_LEN + len {
                    return Ok(Filled::Buffered(len));
                }
                large = len >= DIRECT_MIN;
                if large && have >= NEED && !self.eof {
                    if let Some(sink) = sink.as_deref_mut() {
                        let payload = self.rpos + HEADER_LEN;
                        if sink.accepts(&self.rbuf[payload..payload + SPLIT_HEAD_MAX], len) {
                            return self.recv_rest(fd, len, sink).map(|()| Filled::Direct(len));
                        }
                    }
                    sink = None;
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
            // After a large frame, read only the next header and head while a direct receive
            // may follow: more would be copied out of `rbuf` into the sink instead of going
            // there directly (and a copy of tens of KiB to a destination at another offset in
            // its page can run ten times slower than one to the same offset).
            let at_most = if sink.is_some() && large && have < NEED && self.last_frame >= DIRECT_MIN
            {
                NEED - have
            } else {
                usize::MAX
            };
            self.read_some(fd, deadline, at_most)?;
        }
    }

    /// [`fill_frame`](Self::fill_frame) for message transports: one frame per message.
    ///
    /// One `recv` per message when no frame the caller accepts can be longer than the receive
    /// buffer: when `max` plus the header fits it (a longer message is refused anyway), or on
    /// UDP, whose largest datagram always fits it. Otherwise the message's size is learned
    /// first without taking it (`MSG_PEEK | MSG_TRUNC`), so a long frame is never cut.
    fn fill_message(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Deadline,
        max: usize,
    ) -> Result<usize, Fail> {
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
        let (size, deadline) = if one_call {
            (self.rbuf.len(), deadline)
        } else {
            let size = self.recv_message(fd, 0, RecvFlags::PEEK, deadline)?;
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
            (size.max(1), Deadline::Now)
        };
        let got = self.recv_message(fd, size, RecvFlags::empty(), deadline)?;
        if got == 0 && !self.datagram {
            // SOCK_SEQPACKET: the peer closed. (On a datagram socket an empty datagram is
            // just a message too short for a header: a length mismatch, below.)
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
            return Err(Fail::LengthMismatch {
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
    /// until `deadline` at most; returns the message's real length, 0 at end of file.
    fn recv_message(
        &mut self,
        fd: BorrowedFd<'_>,
        len: usize,
        flags: RecvFlags,
        deadline: Deadline,
    ) -> Result<usize, Fail> {
        let blocking = matches!(deadline, Deadline::Forever);
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
                    if !wait_ready(fd, PollFlags::IN, deadline)? {
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

    /// Receives the rest of the large frame of `len` payload bytes at `rpos` (whose start is
    /// buffered) straight into `sink`, blocking.
    fn recv_rest<S: Sink + ?Sized>(
        &mut self,
        fd: BorrowedFd<'_>,
        len: usize,
        sink: &mut S,
    ) -> Result<(), Fail> {
        let payload = self.rpos + HEADER_LEN;
        let have = self.rend - payload;
        // The frame is incomplete, so nothing after it is buffered: all of rbuf is consumed.
        sink.start(&self.rbuf[payload..self.rend], len);
        self.rpos = 0;
        self.rend = 0;
        self.last_frame = HEADER_LEN + len;
        let mut filled = have;
        while filled < len {
            match sink.read(fd, filled, len) {
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
                    wait_ready(fd, PollFlags::IN, Deadline::Forever)?;
                }
                Err(e) => {
                    // The stream is cut inside a frame; nothing after it can be trusted.
                    self.eof = true;
                    return Err(Fail::Io(context(e, "receive from connection")));
                }
            }
        }
        Ok(())
    }

    /// The payload of the frame [`fill_frame`](Self::fill_frame) found, consuming it.
    pub(super) fn take_frame(&mut self, len: usize) -> &[u8] {
        self.last_frame = HEADER_LEN + len;
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

    /// One write attempt of `bufs`, waiting for room until `deadline` at most.
    pub(super) fn write_some(
        &mut self,
        fd: BorrowedFd<'_>,
        bufs: &[IoSlice<'_>],
        deadline: Deadline,
    ) -> Result<usize, Fail> {
        let blocking = matches!(deadline, Deadline::Forever);
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
                    if !wait_ready(fd, PollFlags::OUT, deadline)? {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(Errno::PIPE) | Err(Errno::CONNRESET) => return Err(Fail::Disconnected),
                Err(e) => return Err(Fail::Io(context(e, "send on connection"))),
            }
        }
    }

    /// Sends the rest of a frame a previous `try_`/`_timeout` send started.
    pub(super) fn flush_pending(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Deadline,
    ) -> Result<(), Fail> {
        while self.pending_pos < self.pending.len() {
            let pending = std::mem::take(&mut self.pending);
            let res = self.write_some(fd, &[IoSlice::new(&pending[self.pending_pos..])], deadline);
            self.pending = pending;
            self.pending_pos += res?;
        }
        self.pending.clear();
        self.pending_pos = 0;
        Ok(())
    }

    /// Sends one frame: `header` then the two parts of `payload`, in one system call when
    /// the transport takes it all. If a `try_`/`_timeout` send has put part of the frame out
    /// when time runs out, the rest is kept in `pending` and the frame counts as sent.
    pub(super) fn write_frame(
        &mut self,
        fd: BorrowedFd<'_>,
        header: [u8; HEADER_LEN],
        payload: [&[u8]; 2],
        deadline: Deadline,
    ) -> Result<(), Fail> {
        self.flush_pending(fd, deadline)?;
        let total = HEADER_LEN + payload[0].len() + payload[1].len();
        // A small frame is copied into one buffer and sent with `send`/`write`: cheaper than
        // the kernel's `sendmsg`/`writev` of two pieces (about 150 ns a message).
        let mut small = [0u8; SMALL_FRAME];
        let parts: [&[u8]; 3] = if total <= SMALL_FRAME {
            let mid = HEADER_LEN + payload[0].len();
            small[..HEADER_LEN].copy_from_slice(&header);
            small[HEADER_LEN..mid].copy_from_slice(payload[0]);
            small[mid..total].copy_from_slice(payload[1]);
            [&small[..total], &[], &[]]
        } else {
            [&header, payload[0], payload[1]]
        };
        let mut done = 0;
        while done < total {
            // What is left of the parts after the `done` bytes sent.
            let mut bufs = [IoSlice::new(&[]); 3];
            let (mut n, mut skip) = (0, done);
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                bufs[n] = IoSlice::new(&part[skip..]);
                skip = 0;
                n += 1;
            }
            match self.write_some(fd, &bufs[..n], deadline) {
                Ok(k) => done += k,
                Err(Fail::WouldBlock) if done > 0 => {
                    for b in &bufs[..n] {
                        self.pending.extend_from_slice(b);
                    }
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

    pub(super) fn check_send_len(&self, len: usize) -> Result<[u8; HEADER_LEN], Fail> {
        let max = self.max_frame;
        if len > max {
            return Err(Fail::TooLarge { len, max });
        }
        // `max_frame` never exceeds the wire's u32 limit, so this always converts.
        let len32 = u32::try_from(len).map_err(|_| Fail::TooLarge { len, max })?;
        Ok(len32.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::*;
    use crate::frame::{duplex, ByteConnection, Connection, RecvError, WIRE_MAX_FRAME_LEN};
    use crate::socket;

    fn seqpacket_pair() -> (
        Connection<String, String, socket::SeqPacket>,
        Connection<String, String, socket::SeqPacket>,
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
        assert_eq!(b.recv_bytes().unwrap(), b"");
        assert!(matches!(
            b.try_recv_bytes_into(&mut [0; 1]),
            Err(RecvError::TooLarge { len: 6, max: 1 })
        ));
        assert_eq!(b.try_recv().unwrap().as_deref(), Some("three"));
        assert!(b.try_recv().unwrap().is_none());
        // A message whose header disagrees with its length is dropped; the peer is still there.
        a.transport().send(&[9, 0, 0, 0, 1]).unwrap();
        a.send(&"after".to_string()).unwrap();
        assert!(matches!(
            b.recv(),
            Err(RecvError::LengthMismatch {
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
            ByteConnection::new(a).unwrap(),
            ByteConnection::new(b).unwrap(),
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
        assert_eq!(b.recv_bytes().unwrap(), long);
        // A frame refused by a small limit that fits the buffer stays for a larger one.
        a.send_bytes(&[1; 100]).unwrap();
        assert!(matches!(
            b.recv_bytes_into(&mut small),
            Err(RecvError::TooLarge { len: 100, max: 16 })
        ));
        assert_eq!(b.buffered_len(), 104);
        assert_eq!(b.recv_bytes().unwrap(), [1; 100]);
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
        let mut b = Connection::<u32, u32, _>::new(b).unwrap();
        for limit in [16, usize::MAX] {
            let mut buf = vec![0u8; limit.min(1 << 20)];
            match b.recv_bytes_into(&mut buf) {
                Err(RecvError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
                other => panic!("expected a timeout, got {other:?}"),
            }
        }
        // Made non-blocking after wrapping: a blocking receive waits in poll instead.
        let mut a = Connection::<u32, u32, _>::new(a).unwrap();
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
        let mut b = ByteConnection::new(b).unwrap();
        b.set_max_frame_len(WIRE_MAX_FRAME_LEN);
        rustix::io::write(&a, &u32::MAX.to_le_bytes()).unwrap();
        rustix::io::write(&a, &[7; 100]).unwrap();
        assert!(b.try_recv_bytes().unwrap().is_none());
        assert!(
            b.state.rbuf.len() <= 2 * INITIAL_BUF,
            "{}",
            b.state.rbuf.len()
        );
        drop(a);
        assert!(matches!(
            b.recv_bytes(),
            Err(RecvError::Torn {
                expected: 4_294_967_299,
                received: 104
            })
        ));
        assert!(b.recv_bytes().unwrap_err().is_disconnected());
    }

    #[test]
    fn large_frames_go_straight_to_the_callers_buffer() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = ByteConnection::new(b).unwrap();
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
    fn a_growing_vec_follows_arrivals_or_the_previous_frame() {
        use std::os::fd::AsFd;
        let (a, b) = UnixStream::pair().unwrap();
        let claim = 32 << 20;
        // A claim of 32 MiB gets the initial size, then doubles only as bytes fill it.
        let mut g = Growing::new(0);
        g.start(&[9; 10], claim);
        assert!(g.vec.capacity() < 2 * INITIAL_BUF, "{}", g.vec.capacity());
        rustix::io::write(&a, &vec![1; INITIAL_BUF]).unwrap();
        let mut filled = 10;
        while filled < INITIAL_BUF + 10 {
            filled += g.read(b.as_fd(), filled, claim).unwrap();
        }
        assert_eq!(g.vec.len(), filled);
        assert!(g.vec.capacity() <= 2 * filled, "{}", g.vec.capacity());
        assert!(g.vec[..10] == [9; 10] && g.vec[10..].iter().all(|&x| x == 1));
        // After a 3 MiB frame the next gets 3 MiB at once, but never more than its length.
        let mut g = Growing::new(3 << 20);
        g.start(&[], claim);
        assert!(g.vec.capacity() >= 3 << 20 && g.vec.capacity() < 4 << 20);
        g.start(&[], 1000);
        assert!(g.vec.capacity() < 2000, "{}", g.vec.capacity());
    }

    #[test]
    fn large_byte_vectors_are_received_into_their_own_memory() {
        // Frames written in pieces: a Vec<u8>, the same bytes as a Vec<i8>, a Vec<u8> whose
        // length disagrees with its frame, then a torn one.
        let (a, b) = UnixStream::pair().unwrap();
        let mut bytes = Connection::<Vec<u8>, Vec<u8>, UnixStream>::new(b).unwrap();
        let n = 5 * INITIAL_BUF + 3;
        let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let mut good = (n as u32 + 3).to_le_bytes().to_vec();
        good.extend(postcard::to_stdvec(&body).unwrap());
        let mut bad = good.clone();
        bad[4] ^= 1; // the element count, one off
        let writer = std::thread::spawn(move || {
            for frame in [&good, &good, &bad, &good[..1000]] {
                for chunk in frame.chunks(10_000) {
                    rustix::io::write(&a, chunk).unwrap();
                }
            }
        });
        let got = bytes.recv().unwrap();
        assert!(got == body, "the Vec<u8> arrived changed");
        assert!(bytes.state.rbuf.len() <= INITIAL_BUF, "copied through rbuf");
        let mut signed =
            Connection::<(), Vec<i8>, UnixStream>::new(bytes.into_transport().unwrap()).unwrap();
        let got = signed.recv().unwrap();
        assert!(got.iter().zip(&body).all(|(&s, &u)| s as u8 == u) && got.len() == n);
        let err = signed.recv().unwrap_err().to_string();
        assert!(err.contains("trailing byte"), "{err}");
        writer.join().unwrap();
        match signed.recv() {
            Err(RecvError::Torn { expected, received }) => {
                assert_eq!((expected, received), (n + 7, 1000));
            }
            other => panic!("expected Torn, got {other:?}"),
        }
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
        let got = b.recv_bytes().unwrap();
        assert_eq!(got.len(), 3 * INITIAL_BUF + 17);
        assert!(got.iter().all(|&x| x == 0xA5));
        drop(t.join().unwrap());
    }

    #[test]
    fn a_large_buffer_stays_while_large_frames_come_and_goes_after() {
        // Strings: a codec cannot receive them in place, so they go through the buffer.
        let (mut a, mut b) = duplex::<String>().unwrap();
        let big = "7".repeat(2 * KEEP_BUF);
        let (go, wait) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            for msg in [&big, &big, &"1".to_string()] {
                a.send(msg).unwrap();
            }
            // The last frame only once the one before is taken: the buffer is empty then.
            wait.recv().unwrap();
            a.send(&"2".to_string()).unwrap();
            a
        });
        assert_eq!(b.recv().unwrap().len(), 2 * KEEP_BUF);
        let grown = b.state.rbuf.len();
        assert!(grown > 2 * KEEP_BUF, "{grown}");
        assert_eq!(b.recv().unwrap().len(), 2 * KEEP_BUF);
        assert_eq!(b.state.rbuf.len(), grown, "kept for the second large frame");
        assert_eq!(b.recv().unwrap(), "1");
        go.send(()).unwrap();
        assert_eq!(b.recv().unwrap(), "2");
        assert!(b.state.rbuf.len() <= KEEP_BUF, "freed after a small frame");
        drop(t.join().unwrap());
    }

    #[test]
    fn a_vec_goes_out_from_its_own_memory_whole_or_in_pieces() {
        // A Vec<u8> message is its length, then its own memory, in one writev; a try_send the
        // socket takes only part of keeps the rest, and the frame arrives whole.
        let (mut a, mut b) = duplex::<Vec<u8>>().unwrap();
        let big: Vec<u8> = (0..3 * KEEP_BUF).map(|i| (i % 241) as u8).collect();
        assert!(a.try_send(&big).unwrap());
        assert!(a.pending_len() > 0, "the socket took it all");
        let reader = std::thread::spawn(move || {
            let got = b.recv().unwrap();
            (b.recv().unwrap(), got)
        });
        a.send(&vec![5u8; 100]).unwrap();
        let (small, got) = reader.join().unwrap();
        assert!(got == big, "the large frame arrived changed");
        assert_eq!(small, [5u8; 100]);
        // One message per frame on a message transport, header and all.
        let (x, y) = socket::SeqPacket::pair().unwrap();
        let (mut x, mut y) = (
            Connection::<Vec<f32>, Vec<f32>, socket::SeqPacket>::new(x).unwrap(),
            Connection::<Vec<f32>, Vec<f32>, socket::SeqPacket>::new(y).unwrap(),
        );
        let floats = vec![0.25f32; 4000];
        x.send(&floats).unwrap();
        assert_eq!(y.recv().unwrap(), floats);
    }
}
