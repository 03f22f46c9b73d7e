//! Sockets, six transports, each in its own group of three rows measured side by side:
//!
//! * `<t>`: the typed API, `ipcbox::frame::Connection<Vec<u8>, Vec<u8>, _>` with the default
//!   Postcard codec, which sends a `Vec<u8>` as one block: the frame is the 4-byte header, a
//!   1–3 byte length varint, then the bytes. In the throughput loop the sender sends the one
//!   `Vec` it built, and the receiver checks the length of each decoded `Vec` (a new one per
//!   message) and drops it: what a user holding typed messages pays. The latency loop copies
//!   each message into the `Vec` before `send` and out of the decoded one after `recv`, to
//!   echo and check the bytes.
//! * `<t> bytes`: the bytes API, `Connection::send_bytes` / `Connection::recv_bytes_into`
//!   (4-byte header + payload, no copy or allocation by the caller).
//! * `<t> raw`: the bare transport with fixed-size messages and no framing: `read(2)` /
//!   `write(2)` in a loop on stream sockets, one `send(2)` / `recv(2)` per message on message
//!   sockets. This is the baseline the API's overhead is measured against.
//!
//! All three rows of a group set the sockets up the same way, with ipcbox (socket pair, or
//! listener + connect, `TCP_NODELAY` on TCP), so they differ only in the per-message calls.
//!
//! | group | set-up | sizes |
//! |---|---|---|
//! | `socketpair` | `Stream::pair` (Unix `SOCK_STREAM`) before `fork` | 64 B, 4 KiB, 1 MiB |
//! | `unix stream` | `Listener` on a path in a private directory; the parent accepts, the child connects | 64 B, 4 KiB, 1 MiB |
//! | `unix seqpacket` | `SeqPacket::pair` | 64 B, 4 KiB (one message each) |
//! | `unix dgram` | `Datagram::pair` | 64 B, 4 KiB (one datagram each) |
//! | `tcp` | `Listener` on `127.0.0.1:0`; accept / connect | 64 B, 4 KiB, 1 MiB |
//! | `udp` | two sockets on `127.0.0.1:0` connected to each other | 64 B, 4 KiB (one datagram each) |
//!
//! The message-socket groups stop at 4 KiB: a 1 MiB message does not fit a datagram (UDP
//! carries at most 65,507 bytes; a Unix datagram at most the sender's send buffer, 208 KiB by
//! default).
//!
//! UDP may drop datagrams when the receiver falls behind, even on loopback, so its throughput
//! loop is not the shared one (which would wait forever for a lost message): see [`Udp`]. Its
//! latency loop is the shared ping-pong (one datagram in flight, which loopback does not
//! drop); a receive timeout (`SO_RCVTIMEO`, 5 s) on both sockets turns a loss there into an
//! error instead of a hang.
//!
//! The `unix stream` group also holds the comparison rows for ipc-channel, in `ipc_channel.rs`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ipcbox::frame::{ByteConnection, Connection, Readable, Writable};
use ipcbox::socket::{Datagram, Endpoint as Ep, Listener, SeqPacket, Stream};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use serde::de::{Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::cpus::Placement;
use crate::measure;
use crate::row::{
    forked, Endpoint, Info, Kind, LatencyJob, Link, Row, ThroughputJob, STANDARD_SIZES,
};
use crate::rows::common::{FdStream, TempDir};
use crate::rows::ipc_channel;

/// The throughput sizes of the message-socket groups.
const MESSAGE_SIZES: &[usize] = &[64, 4 << 10];
/// The receive timeout that turns a lost UDP datagram into an error.
const UDP_TIMEOUT: Duration = Duration::from_secs(5);

/// Every socket row, group by group.
pub fn rows() -> Vec<Box<dyn Row>> {
    let mut rows = Vec::new();
    rows.extend(group("socketpair", SocketPair, STANDARD_SIZES));
    rows.extend(group("unix stream", UnixPath, STANDARD_SIZES));
    rows.extend(ipc_channel::rows("unix stream"));
    rows.extend(crate::rows::async_rows::unix_stream_rows("unix stream"));
    rows.extend(group("unix seqpacket", SeqPair, MESSAGE_SIZES));
    rows.extend(group("unix dgram", DgramPair, MESSAGE_SIZES));
    rows.extend(group("tcp", Tcp, STANDARD_SIZES));
    rows.push(udp(Info::new("udp", "udp", Kind::Ipcbox), Typed));
    rows.push(udp(Info::new("udp bytes", "udp", Kind::Ipcbox), Bytes));
    rows.push(udp(Info::new("udp raw", "udp", Kind::Raw), Raw));
    rows
}

/// The typed, bytes and raw rows of one transport.
fn group<S: Sockets + Copy + 'static>(
    name: &'static str,
    sockets: S,
    sizes: &'static [usize],
) -> [Box<dyn Row>; 3] {
    let info = |row, kind| {
        Info::new(row, name, kind)
            .sizes(sizes)
            .max_message(if S::Sock::MESSAGES {
                64 << 10
            } else {
                usize::MAX
            })
    };
    // Row names must be 'static: the three names per group are spelled out here.
    let (typed, bytes, raw) = names(name);
    [
        forked(info(typed, Kind::Ipcbox), Via(sockets, Typed)),
        forked(info(bytes, Kind::Ipcbox), Via(sockets, Bytes)),
        forked(info(raw, Kind::Raw), Via(sockets, Raw)),
    ]
}

/// The TCP connection's bytes row and the raw TCP row under other names, in another group
/// (the NATS rows' baselines).
pub fn tcp_rows(
    group: &'static str,
    bytes: &'static str,
    raw: &'static str,
    sizes: &'static [usize],
) -> [Box<dyn Row>; 2] {
    [
        forked(
            Info::new(bytes, group, Kind::Ipcbox).sizes(sizes),
            Via(Tcp, Bytes),
        ),
        forked(Info::new(raw, group, Kind::Raw).sizes(sizes), Via(Tcp, Raw)),
    ]
}

fn names(group: &'static str) -> (&'static str, &'static str, &'static str) {
    match group {
        "socketpair" => ("socketpair", "socketpair bytes", "socketpair raw"),
        "unix stream" => ("unix stream", "unix stream bytes", "unix stream raw"),
        "unix seqpacket" => (
            "unix seqpacket",
            "unix seqpacket bytes",
            "unix seqpacket raw",
        ),
        "unix dgram" => ("unix dgram", "unix dgram bytes", "unix dgram raw"),
        "tcp" => ("tcp", "tcp bytes", "tcp raw"),
        other => unreachable!("no row names for the socket group {other}"),
    }
}

/// A socket type the rows run over.
trait Sock: ipcbox::frame::Transport + Readable + Writable + Into<OwnedFd> + 'static {
    /// Whether one `send` is one message (seqpacket, datagram) rather than a byte stream.
    const MESSAGES: bool;
}

impl Sock for Stream {
    const MESSAGES: bool = false;
}
impl Sock for SeqPacket {
    const MESSAGES: bool = true;
}
impl Sock for Datagram {
    const MESSAGES: bool = true;
}

/// How a transport's two connected sockets are made: what exists before `fork`, then each
/// side's socket after it.
trait Sockets {
    type Shared;
    type Sock: Sock;
    fn prepare(&self) -> io::Result<Self::Shared>;
    fn parent(&self, shared: Self::Shared) -> io::Result<Self::Sock>;
    fn child(&self, shared: Self::Shared) -> io::Result<Self::Sock>;
}

/// `socketpair(AF_UNIX, SOCK_STREAM)`.
#[derive(Debug, Clone, Copy)]
struct SocketPair;

impl Sockets for SocketPair {
    type Shared = (Stream, Stream);
    type Sock = Stream;
    fn prepare(&self) -> io::Result<(Stream, Stream)> {
        Stream::pair()
    }
    fn parent(&self, (mine, _): (Stream, Stream)) -> io::Result<Stream> {
        Ok(mine)
    }
    fn child(&self, (_, theirs): (Stream, Stream)) -> io::Result<Stream> {
        Ok(theirs)
    }
}

/// A Unix stream listener on a path; the parent accepts, the child connects.
#[derive(Debug, Clone, Copy)]
struct UnixPath;

impl Sockets for UnixPath {
    type Shared = (Listener, TempDir);
    type Sock = Stream;
    fn prepare(&self) -> io::Result<(Listener, TempDir)> {
        let dir = TempDir::new("unix-stream")?;
        let listener = Listener::bind(&Ep::unix(dir.path().join("sock")))?;
        Ok((listener, dir))
    }
    // The parent's listener (and directory) go when this returns: the connection is made.
    fn parent(&self, (listener, _dir): (Listener, TempDir)) -> io::Result<Stream> {
        listener.accept()
    }
    fn child(&self, (mut listener, _dir): (Listener, TempDir)) -> io::Result<Stream> {
        // The socket file is the parent's: the child's copy must not remove it.
        listener.detach();
        let ep = listener.local_endpoint().clone();
        drop(listener);
        Stream::connect(&ep)
    }
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET)`.
#[derive(Debug, Clone, Copy)]
struct SeqPair;

impl Sockets for SeqPair {
    type Shared = (SeqPacket, SeqPacket);
    type Sock = SeqPacket;
    fn prepare(&self) -> io::Result<Self::Shared> {
        SeqPacket::pair()
    }
    fn parent(&self, (mine, _): Self::Shared) -> io::Result<SeqPacket> {
        Ok(mine)
    }
    fn child(&self, (_, theirs): Self::Shared) -> io::Result<SeqPacket> {
        Ok(theirs)
    }
}

/// `socketpair(AF_UNIX, SOCK_DGRAM)`.
#[derive(Debug, Clone, Copy)]
struct DgramPair;

impl Sockets for DgramPair {
    type Shared = (Datagram, Datagram);
    type Sock = Datagram;
    fn prepare(&self) -> io::Result<Self::Shared> {
        Datagram::pair()
    }
    fn parent(&self, (mine, _): Self::Shared) -> io::Result<Datagram> {
        Ok(mine)
    }
    fn child(&self, (_, theirs): Self::Shared) -> io::Result<Datagram> {
        Ok(theirs)
    }
}

/// A TCP listener on `127.0.0.1:0`; the parent accepts, the child connects (`TCP_NODELAY` on
/// both, as ipcbox sets it).
#[derive(Debug, Clone, Copy)]
struct Tcp;

impl Sockets for Tcp {
    type Shared = Listener;
    type Sock = Stream;
    fn prepare(&self) -> io::Result<Listener> {
        Listener::bind(&Ep::tcp("127.0.0.1", 0))
    }
    fn parent(&self, listener: Listener) -> io::Result<Stream> {
        listener.accept()
    }
    fn child(&self, listener: Listener) -> io::Result<Stream> {
        let ep = listener.local_endpoint().clone();
        drop(listener);
        Stream::connect(&ep)
    }
}

/// Two UDP sockets on `127.0.0.1`, each connected to the other, with a large receive buffer
/// (fewer drops) and a receive timeout (a drop is an error, not a hang).
#[derive(Debug, Clone, Copy)]
struct UdpPair;

impl Sockets for UdpPair {
    type Shared = (Datagram, Datagram);
    type Sock = Datagram;
    fn prepare(&self) -> io::Result<Self::Shared> {
        let ep = Ep::udp("127.0.0.1", 0);
        let (a, b) = (Datagram::bind(&ep)?, Datagram::bind(&ep)?);
        let addr = |d: &Datagram| {
            d.local_endpoint()?
                .ok_or_else(|| io::Error::other("a bound UDP socket has no address"))
        };
        a.connect_to(&addr(&b)?)?;
        b.connect_to(&addr(&a)?)?;
        for d in [&a, &b] {
            rustix::net::sockopt::set_socket_recv_buffer_size(d, 4 << 20)?;
            d.set_read_timeout(Some(UDP_TIMEOUT))?;
        }
        Ok((a, b))
    }
    fn parent(&self, (mine, _): Self::Shared) -> io::Result<Datagram> {
        Ok(mine)
    }
    fn child(&self, (_, theirs): Self::Shared) -> io::Result<Datagram> {
        Ok(theirs)
    }
}

/// Which API a row uses on its sockets: makes the [`Endpoint`] from a connected socket.
trait Api {
    type End<S: Sock>: Endpoint + UdpEnd;
    fn wrap<S: Sock>(&self, sock: S) -> io::Result<Self::End<S>>;
}

/// The typed API (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Typed;
/// The bytes API.
#[derive(Debug, Clone, Copy)]
struct Bytes;
/// Bare system calls.
#[derive(Debug, Clone, Copy)]
struct Raw;

impl Api for Typed {
    type End<S: Sock> = TypedEnd<S>;
    fn wrap<S: Sock>(&self, sock: S) -> io::Result<TypedEnd<S>> {
        Ok(TypedEnd {
            conn: Connection::new(sock)?,
            msg: Vec::new(),
            built: false,
        })
    }
}

impl Api for Bytes {
    type End<S: Sock> = BytesEnd<S>;
    fn wrap<S: Sock>(&self, sock: S) -> io::Result<BytesEnd<S>> {
        Ok(BytesEnd(Connection::new(sock)?))
    }
}

impl Api for Raw {
    type End<S: Sock> = RawEnd;
    fn wrap<S: Sock>(&self, sock: S) -> io::Result<RawEnd> {
        let fd: OwnedFd = sock.into();
        Ok(if S::MESSAGES {
            RawEnd::Messages(fd)
        } else {
            RawEnd::Stream(FdStream::new(fd.try_clone()?, fd))
        })
    }
}

/// A row: the sockets `S` used through the API `A`.
#[derive(Debug)]
struct Via<S, A>(S, A);

impl<S: Sockets, A: Api> Link for Via<S, A> {
    type Shared = S::Shared;
    type Parent = A::End<S::Sock>;
    type Child = A::End<S::Sock>;

    fn prepare(&self, _max_message: usize) -> io::Result<S::Shared> {
        self.0.prepare()
    }
    fn parent(&self, shared: S::Shared) -> io::Result<Self::Parent> {
        self.1.wrap(self.0.parent(shared)?)
    }
    fn child(&self, shared: S::Shared) -> io::Result<Self::Child> {
        self.1.wrap(self.0.child(shared)?)
    }
}

/// A byte payload serialised as one byte string (`serialize_bytes`), as `serde_bytes::ByteBuf`
/// does, rather than as a sequence of `u8`s: ipc-channel's typed row sends it, its best case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct BlobVisitor;
        impl Visitor<'_> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(BlobVisitor)
    }
}

fn wrong_length(got: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("received a {got}-byte message, expected {want} bytes"),
    )
}

/// The typed row's end: a connection carrying `Vec<u8>` messages, and the one it sends from.
struct TypedEnd<S: Sock> {
    conn: Connection<Vec<u8>, Vec<u8>, S>,
    msg: Vec<u8>,
    /// `msg` holds the bytes `send_again` was given (a `send` of other bytes clears it).
    built: bool,
}

impl<S: Sock> Endpoint for TypedEnd<S> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.msg.clear();
        self.msg.extend_from_slice(msg);
        self.built = false;
        Ok(self.conn.send(&self.msg)?)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let got = self.conn.recv()?;
        if got.len() != buf.len() {
            return Err(wrong_length(got.len(), buf.len()));
        }
        buf.copy_from_slice(&got);
        Ok(())
    }

    fn send_again(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.msg.len() != msg.len() || !self.built {
            self.msg.clear();
            self.msg.extend_from_slice(msg);
            self.built = true;
        }
        Ok(self.conn.send(&self.msg)?)
    }

    fn recv_unread(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let got = self.conn.recv()?;
        if got.len() != buf.len() {
            return Err(wrong_length(got.len(), buf.len()));
        }
        Ok(())
    }
}

/// The bytes row's end.
struct BytesEnd<S: Sock>(ByteConnection<S>);

impl<S: Sock> Endpoint for BytesEnd<S> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        Ok(self.0.send_bytes(msg)?)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let n = self.0.recv_bytes_into(buf)?;
        if n != buf.len() {
            return Err(wrong_length(n, buf.len()));
        }
        Ok(())
    }
}

/// The raw row's end: a byte stream on `read`/`write`, or one `send`/`recv` per message.
#[derive(Debug)]
enum RawEnd {
    Stream(FdStream),
    Messages(OwnedFd),
}

impl Endpoint for RawEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            RawEnd::Stream(s) => s.send(msg),
            RawEnd::Messages(fd) => loop {
                match rustix::net::send(fd.as_fd(), msg, SendFlags::NOSIGNAL) {
                    Ok(n) if n == msg.len() => return Ok(()),
                    Ok(n) => return Err(wrong_length(n, msg.len())),
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            },
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self {
            RawEnd::Stream(s) => s.recv(buf),
            RawEnd::Messages(fd) => {
                let n = raw_recv(fd, buf, RecvFlags::TRUNC)?;
                match n {
                    0 => Err(io::ErrorKind::UnexpectedEof.into()),
                    n if n == buf.len() => Ok(()),
                    n => Err(wrong_length(n, buf.len())),
                }
            }
        }
    }
}

/// One `recv(2)`, retried on `EINTR`; returns the message's real length (`MSG_TRUNC`).
fn raw_recv(fd: &OwnedFd, buf: &mut [u8], flags: RecvFlags) -> io::Result<usize> {
    loop {
        match rustix::net::recv(fd.as_fd(), &mut *buf, flags) {
            Ok((_, n)) => return Ok(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receiving a datagram of any length up to the buffer's, waiting at most a while: what the
/// UDP throughput protocol needs beyond [`Endpoint`].
trait UdpEnd {
    /// One message into `buf`: `Ok(Some(len))`, or `Ok(None)` when `timeout` passed first.
    fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>>;
}

impl<S: Sock> UdpEnd for TypedEnd<S> {
    fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        match self.conn.recv_timeout(timeout)? {
            Some(got) if got.len() <= buf.len() => {
                buf[..got.len()].copy_from_slice(&got);
                Ok(Some(got.len()))
            }
            Some(got) => Err(wrong_length(got.len(), buf.len())),
            None => Ok(None),
        }
    }
}

impl<S: Sock> UdpEnd for BytesEnd<S> {
    fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        Ok(self.0.recv_bytes_into_timeout(buf, timeout)?)
    }
}

impl UdpEnd for RawEnd {
    fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let RawEnd::Messages(fd) = self else {
            return Err(io::Error::other("recv_within needs a message socket"));
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: i64::from(ms / 1000),
            tv_nsec: i64::from(ms % 1000) * 1_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let n = raw_recv(fd, buf, RecvFlags::TRUNC | RecvFlags::DONTWAIT)?;
        if n > buf.len() {
            return Err(wrong_length(n, buf.len()));
        }
        Ok(Some(n))
    }
}

/// A UDP row: the shared ping-pong for latency, and its own throughput protocol.
///
/// Throughput: the bench sends its warm-up datagrams, then an end marker (a 2-byte datagram
/// `[MARK, phase]`, never the size of a data message) again every [`MARK_EVERY`] until the
/// peer answers with `[MARK, phase, count as u64 LE]`: the data datagrams it received in that
/// phase. Then the same for the timed datagrams; the clock stops at the answer. A lost data
/// datagram is counted as lost and never waited for; a lost marker or answer is sent again.
/// The rate reported is of the datagrams that arrived (the elapsed time is scaled by
/// sent / received); lost datagrams are reported on stderr. The peer gives up after
/// [`UDP_TIMEOUT`] without any datagram, the bench after as long without an answer.
struct Udp<A> {
    info: Info,
    api: A,
}

const MARK: u8 = 0xee;
const MARK_EVERY: Duration = Duration::from_millis(20);
/// The phase byte of the last datagram the bench sends: the peer may exit without waiting.
const BYE: u8 = 2;

fn udp<A: Api + 'static>(info: Info, api: A) -> Box<dyn Row> {
    Box::new(Udp {
        info: info.sizes(MESSAGE_SIZES).max_message(64 << 10),
        api,
    })
}

impl<A: Api> Row for Udp<A> {
    fn info(&self) -> &Info {
        &self.info
    }

    fn latency(&self, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        measure::latency(&Via(UdpPair, Sel(&self.api)), cpus, job)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        let (elapsed, received) = measure::run(
            &Via(UdpPair, Sel(&self.api)),
            cpus,
            job.size,
            |end| udp_sink(end, job.size).context("peer: receive"),
            |end| udp_source(end, job),
        )?;
        let lost = job.count - received;
        if lost > 0 {
            eprintln!(
                "ipcbox-bench: {}: {lost} of {} {}-byte datagrams lost; \
                 the rate counts those received",
                self.info.name, job.count, job.size
            );
        }
        Ok(elapsed.mul_f64(job.count as f64 / received as f64))
    }
}

/// Borrows an [`Api`] (so a row keeps its own).
struct Sel<'a, A>(&'a A);

impl<A: Api> Api for Sel<'_, A> {
    type End<S: Sock> = A::End<S>;
    fn wrap<S: Sock>(&self, sock: S) -> io::Result<A::End<S>> {
        self.0.wrap(sock)
    }
}

/// Sends `job`'s datagrams; returns the time from the first timed one to the peer's count,
/// and that count.
fn udp_source<E: Endpoint + UdpEnd>(
    end: &mut E,
    job: &ThroughputJob,
) -> anyhow::Result<(Duration, usize)> {
    let msg = vec![0xa5; job.size];
    for _ in 0..job.warmup {
        end.send(&msg).context("send")?;
    }
    end_phase(end, 0).context("end the warm-up")?;
    let start = Instant::now();
    for _ in 0..job.count {
        end.send(&msg).context("send")?;
    }
    let received = end_phase(end, 1).context("end the timed phase")?;
    let elapsed = start.elapsed();
    // Tell the peer it may go: otherwise it waits out its grace period, in case our answer
    // was lost, before the bench can reap it. If this datagram is lost, that wait still ends.
    end.send(&[MARK, BYE]).context("send the goodbye")?;
    if received == 0 || received > job.count {
        bail!("the peer received {received} of {} datagrams", job.count);
    }
    Ok((elapsed, received))
}

/// Sends the end marker of `phase` until the peer answers; returns its count.
fn end_phase<E: Endpoint + UdpEnd>(end: &mut E, phase: u8) -> anyhow::Result<usize> {
    let mut buf = [0u8; 16];
    let give_up = Instant::now() + UDP_TIMEOUT;
    loop {
        end.send(&[MARK, phase]).context("send the end marker")?;
        let wait_until = Instant::now() + MARK_EVERY;
        loop {
            let left = wait_until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match end
                .recv_within(&mut buf, left)
                .context("receive the count")?
            {
                Some(10) if buf[..2] == [MARK, phase] => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&buf[2..10]);
                    return Ok(usize::try_from(u64::from_le_bytes(n))?);
                }
                Some(_) => {} // An answer to an earlier marker.
                None => break,
            }
        }
        if Instant::now() > give_up {
            bail!("no answer to the end marker for {UDP_TIMEOUT:?}");
        }
    }
}

/// Counts `size`-byte datagrams, answers each end marker with the count of its phase, and
/// returns after answering the timed phase's (answering it again if the bench asks again).
fn udp_sink<E: Endpoint + UdpEnd>(end: &mut E, size: usize) -> anyhow::Result<()> {
    let mut buf = vec![0u8; size.max(16)];
    let mut counts = [0u64; 2];
    let mut phase = 0usize;
    let mut done = false;
    loop {
        // After the last answer, wait a little in case it was lost and the bench asks again.
        let timeout = if done { MARK_EVERY * 10 } else { UDP_TIMEOUT };
        let Some(n) = end.recv_within(&mut buf, timeout)? else {
            if done {
                return Ok(());
            }
            bail!("no datagram for {UDP_TIMEOUT:?}");
        };
        if n == size {
            counts[phase] += 1;
        } else if n == 2 && buf[..2] == [MARK, BYE] {
            return Ok(());
        } else if n == 2 && buf[0] == MARK && buf[1] < 2 {
            let asked = usize::from(buf[1]);
            if asked == 1 {
                done = true;
            }
            phase = phase.max(asked + 1).min(1);
            let mut answer = [0u8; 10];
            answer[..2].copy_from_slice(&[MARK, buf[1]]);
            answer[2..].copy_from_slice(&counts[asked].to_le_bytes());
            end.send(&answer)?;
        } else {
            bail!("unexpected {n}-byte datagram");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn blob_is_one_postcard_byte_string() {
        let (a, b) = Stream::pair().unwrap();
        let mut a = Connection::<Blob, Blob, _>::new(a).unwrap();
        a.send(&Blob(vec![1, 2, 3])).unwrap();
        let mut raw = RawEnd::Stream(FdStream::new(b.try_clone().unwrap().into(), b.into()));
        let mut frame = [0u8; 8];
        raw.recv(&mut frame).unwrap();
        assert_eq!(frame, [4, 0, 0, 0, 3, 1, 2, 3]);
        let (x, y) = Stream::pair().unwrap();
        let (mut x, mut y) = (Typed.wrap(x).unwrap(), Typed.wrap(y).unwrap());
        x.send(&[9; 300]).unwrap();
        let mut buf = [0u8; 300];
        y.recv(&mut buf).unwrap();
        assert_eq!(buf, [9; 300]);
        x.send(&[1; 2]).unwrap();
        assert_eq!(
            y.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    /// One side of an in-process "network" that loses what `drop` says.
    struct Lossy {
        tx: mpsc::Sender<Vec<u8>>,
        rx: mpsc::Receiver<Vec<u8>>,
        sent: usize,
        drop: fn(usize, &[u8]) -> bool,
        queue: VecDeque<Vec<u8>>,
    }

    impl Endpoint for Lossy {
        fn send(&mut self, msg: &[u8]) -> io::Result<()> {
            self.sent += 1;
            if !(self.drop)(self.sent, msg) {
                let _ = self.tx.send(msg.to_vec());
            }
            Ok(())
        }
        fn recv(&mut self, _buf: &mut [u8]) -> io::Result<()> {
            unreachable!("the UDP protocol uses recv_within")
        }
    }

    impl UdpEnd for Lossy {
        fn recv_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
            let msg = match self.queue.pop_front() {
                Some(m) => m,
                None => match self.rx.recv_timeout(timeout) {
                    Ok(m) => m,
                    Err(_) => return Ok(None),
                },
            };
            buf[..msg.len()].copy_from_slice(&msg);
            Ok(Some(msg.len()))
        }
    }

    fn lossy_pair(drop: fn(usize, &[u8]) -> bool) -> (Lossy, Lossy) {
        let (tx1, rx1) = mpsc::channel();
        let (tx2, rx2) = mpsc::channel();
        let end = |tx, rx, drop| Lossy {
            tx,
            rx,
            sent: 0,
            drop,
            queue: VecDeque::new(),
        };
        (end(tx1, rx2, drop), end(tx2, rx1, |_, _| false))
    }

    #[test]
    fn udp_protocol_counts_losses_and_resends_lost_markers() {
        // The bench's datagrams are numbered from 1: every third is lost, and so are its end
        // markers of the timed phase that fall on an even number.
        let (mut bench, mut peer) = lossy_pair(|n, msg| {
            (msg.len() == 64 && n % 3 == 0) || (msg.len() == 2 && msg[1] == 1 && n % 2 == 0)
        });
        let peer = std::thread::spawn(move || udp_sink(&mut peer, 64));
        let job = ThroughputJob {
            size: 64,
            warmup: 10,
            count: 300,
        };
        let (elapsed, received) = udp_source(&mut bench, &job).unwrap();
        peer.join().unwrap().unwrap();
        // 1..=10 warm-up, 11 the warm-up's marker, 12..=311 timed (100 of them lost), 312 the
        // first timed marker (lost, so sent again as 313).
        assert_eq!(received, 200);
        assert!(elapsed > Duration::ZERO);
    }

    #[test]
    fn udp_sink_fails_on_a_stray_datagram() {
        let (mut bench, mut peer) = lossy_pair(|_, _| false);
        bench.send(&[1, 2, 3]).unwrap();
        let err = udp_sink(&mut peer, 64).unwrap_err();
        assert!(format!("{err}").contains("3-byte"), "{err}");
    }
}
