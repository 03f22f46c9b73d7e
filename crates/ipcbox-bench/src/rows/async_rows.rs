//! Async rows, both ends on a tokio current-thread runtime (`block_on` per send and receive),
//! beside the sync rows of their groups:
//!
//! | row | what | group |
//! |---|---|---|
//! | `unix stream async` | `ipcbox::tokio::Connection`, `send_bytes` / `recv_bytes_into` | `unix stream` |
//! | `unix stream framed` | ipcbox's wire format as a tokio-util `Framed` with `FrameCodec` | `unix stream` |
//! | `unix stream tokio` | tokio's own `UnixStream`, `write_all` / `read_exact` of the bare bytes | `unix stream` |
//! | `channel async` | `ipcbox::tokio::{Sender, Receiver}`, waiting through the doorbell | `queue` |
//! | `queue 1-1 async` | `ipcbox::tokio::Queue`, waiting through the doorbell | `queue` |

use std::io;
use std::os::fd::OwnedFd;

use futures_util::{SinkExt, StreamExt};
use ipcbox::queue::{channel, Queue, WaitPolicy};
use ipcbox::socket::{Endpoint as Ep, Listener, Stream};
use ipcbox::tokio::FrameCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio_util::codec::Framed;

use crate::row::{forked, Endpoint, Info, Kind, Link, Row, STANDARD_SIZES};
use crate::rows::common::TempDir;
use crate::rows::queue::queue_options;

/// The async rows of the `unix stream` group.
pub fn unix_stream_rows(group: &'static str) -> Vec<Box<dyn Row>> {
    vec![
        forked(
            Info::new("unix stream async", group, Kind::Ipcbox).sizes(STANDARD_SIZES),
            UnixAsync(Api::Connection),
        ),
        forked(
            Info::new("unix stream framed", group, Kind::Ipcbox).sizes(STANDARD_SIZES),
            UnixAsync(Api::Framed),
        ),
        forked(
            Info::new("unix stream tokio", group, Kind::Competitor).sizes(STANDARD_SIZES),
            UnixAsync(Api::Tokio),
        ),
    ]
}

/// The async rows of the shared-memory queue group.
pub fn queue_rows(group: &'static str) -> Vec<Box<dyn Row>> {
    vec![
        forked(
            Info::new("channel async", group, Kind::Ipcbox),
            ChannelAsync,
        ),
        forked(
            Info::new("queue 1-1 async", group, Kind::Ipcbox),
            QueueAsync,
        ),
    ]
}

fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn wrong_length(got: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("received a message of {got} bytes, expected {want}"),
    )
}

/// A Unix stream on a path (the parent accepts, the child connects), async on both ends.
#[derive(Debug)]
struct UnixAsync(Api);

/// What a [`UnixAsync`] row runs over the stream.
#[derive(Debug, Clone, Copy)]
enum Api {
    /// `ipcbox::tokio::Connection`'s bytes API.
    Connection,
    /// tokio-util's `Framed` with ipcbox's `FrameCodec`.
    Framed,
    /// tokio's `UnixStream`, bare bytes.
    Tokio,
}

/// One end of [`UnixAsync`].
enum UnixEnd {
    Connection(Runtime, ipcbox::tokio::Connection<()>),
    Framed(Runtime, Framed<tokio::net::UnixStream, FrameCodec>),
    Bare(Runtime, tokio::net::UnixStream),
}

impl UnixAsync {
    fn end(&self, stream: Stream) -> io::Result<UnixEnd> {
        let rt = runtime()?;
        let _in = rt.enter();
        if let Api::Connection = self.0 {
            let conn = ipcbox::tokio::Connection::new(ipcbox::Connection::new(stream)?)?;
            drop(_in);
            return Ok(UnixEnd::Connection(rt, conn));
        }
        let std = std::os::unix::net::UnixStream::from(OwnedFd::from(stream));
        std.set_nonblocking(true)?;
        let stream = tokio::net::UnixStream::from_std(std)?;
        drop(_in);
        Ok(match self.0 {
            Api::Framed => UnixEnd::Framed(rt, Framed::new(stream, FrameCodec::new())),
            _ => UnixEnd::Bare(rt, stream),
        })
    }
}

impl Link for UnixAsync {
    type Shared = (Listener, TempDir);
    type Parent = UnixEnd;
    type Child = UnixEnd;

    fn prepare(&self, _max: usize) -> io::Result<(Listener, TempDir)> {
        let dir = TempDir::new("unix-async")?;
        let listener = Listener::bind(&Ep::unix(dir.path().join("sock")))?;
        Ok((listener, dir))
    }

    fn parent(&self, (listener, _dir): (Listener, TempDir)) -> io::Result<UnixEnd> {
        self.end(listener.accept()?)
    }

    fn child(&self, (mut listener, _dir): (Listener, TempDir)) -> io::Result<UnixEnd> {
        listener.detach();
        let ep = listener.local_endpoint().clone();
        drop(listener);
        self.end(Stream::connect(&ep)?)
    }
}

impl Endpoint for UnixEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            UnixEnd::Connection(rt, c) => rt.block_on(c.send_bytes(msg)).map_err(io::Error::from),
            UnixEnd::Framed(rt, f) => rt.block_on(f.send(msg)).map_err(io::Error::from),
            UnixEnd::Bare(rt, s) => rt.block_on(s.write_all(msg)),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self {
            UnixEnd::Connection(rt, c) => {
                let n = rt
                    .block_on(c.recv_bytes_into(buf))
                    .map_err(io::Error::from)?;
                if n != buf.len() {
                    return Err(wrong_length(n, buf.len()));
                }
                Ok(())
            }
            UnixEnd::Framed(rt, f) => {
                let frame = rt
                    .block_on(f.next())
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?
                    .map_err(io::Error::from)?;
                if frame.len() != buf.len() {
                    return Err(wrong_length(frame.len(), buf.len()));
                }
                buf.copy_from_slice(&frame);
                Ok(())
            }
            UnixEnd::Bare(rt, s) => rt.block_on(s.read_exact(buf)).map(drop),
        }
    }
}

/// Two channels, one each way, parking (an async waiter never spins), async on both ends.
#[derive(Debug)]
struct ChannelAsync;

type Channels = (
    (channel::Sender<()>, channel::Receiver<()>),
    (channel::Sender<()>, channel::Receiver<()>),
);

/// One end of [`ChannelAsync`].
struct ChannelEnd {
    rt: Runtime,
    tx: ipcbox::tokio::Sender<()>,
    rx: ipcbox::tokio::Receiver<()>,
    buf: Vec<u8>,
}

impl ChannelEnd {
    fn new(tx: channel::Sender<()>, rx: channel::Receiver<()>) -> io::Result<ChannelEnd> {
        let rt = runtime()?;
        let _in = rt.enter();
        let (tx, rx) = (
            ipcbox::tokio::Sender::new(tx)?,
            ipcbox::tokio::Receiver::new(rx)?,
        );
        drop(_in);
        Ok(ChannelEnd {
            rt,
            tx,
            rx,
            buf: Vec::new(),
        })
    }
}

impl Link for ChannelAsync {
    type Shared = Channels;
    type Parent = ChannelEnd;
    type Child = ChannelEnd;

    fn prepare(&self, max_message: usize) -> io::Result<Channels> {
        let mut options = channel::Options::new();
        options
            .capacity(((8 << 20) / (max_message + 8)).clamp(4, 1024))
            .max_message_size(max_message.max(1))
            .wait_policy(WaitPolicy::Park);
        Ok((options.anonymous()?, options.anonymous()?))
    }

    fn parent(&self, ((tx, _), (_, rx)): Channels) -> io::Result<ChannelEnd> {
        ChannelEnd::new(tx, rx)
    }

    fn child(&self, ((_, rx), (tx, _)): Channels) -> io::Result<ChannelEnd> {
        ChannelEnd::new(tx, rx)
    }
}

impl Endpoint for ChannelEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.rt
            .block_on(self.tx.send_bytes(msg))
            .map_err(io::Error::from)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.rt
            .block_on(self.rx.recv_bytes_into(&mut self.buf))
            .map_err(io::Error::from)?;
        if self.buf.len() != buf.len() {
            return Err(wrong_length(self.buf.len(), buf.len()));
        }
        buf.copy_from_slice(&self.buf);
        Ok(())
    }
}

/// Two queues, one each way, parking, async on both ends.
#[derive(Debug)]
struct QueueAsync;

/// One end of [`QueueAsync`].
struct QueueEnd {
    rt: Runtime,
    tx: ipcbox::tokio::Queue<()>,
    rx: ipcbox::tokio::Queue<()>,
    buf: Vec<u8>,
}

impl QueueEnd {
    fn new(tx: Queue<()>, rx: Queue<()>) -> io::Result<QueueEnd> {
        let rt = runtime()?;
        let _in = rt.enter();
        let (tx, rx) = (
            ipcbox::tokio::Queue::new(tx)?,
            ipcbox::tokio::Queue::new(rx)?,
        );
        drop(_in);
        Ok(QueueEnd {
            rt,
            tx,
            rx,
            buf: Vec::new(),
        })
    }
}

impl Link for QueueAsync {
    type Shared = (Queue<()>, Queue<()>);
    type Parent = QueueEnd;
    type Child = QueueEnd;

    fn prepare(&self, max_message: usize) -> io::Result<(Queue<()>, Queue<()>)> {
        let options = queue_options(max_message, WaitPolicy::Park);
        Ok((options.anonymous()?, options.anonymous()?))
    }

    fn parent(&self, (to_child, to_parent): (Queue<()>, Queue<()>)) -> io::Result<QueueEnd> {
        QueueEnd::new(to_child, to_parent)
    }

    fn child(&self, (to_child, to_parent): (Queue<()>, Queue<()>)) -> io::Result<QueueEnd> {
        QueueEnd::new(to_parent, to_child)
    }
}

impl Endpoint for QueueEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.rt
            .block_on(self.tx.put_bytes(msg))
            .map_err(io::Error::from)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.rt
            .block_on(self.rx.get_bytes_into(&mut self.buf))
            .map_err(io::Error::from)?;
        if self.buf.len() != buf.len() {
            return Err(wrong_length(self.buf.len(), buf.len()));
        }
        buf.copy_from_slice(&self.buf);
        Ok(())
    }
}
