//! ipcbox's shared-memory queues: the one-to-one [`channel`](ipcbox::queue::channel) with a
//! spinning and a parking wait policy, and the many-to-many [`Queue`] one producer to one
//! consumer (a [`Link`] like every other row) and two producer processes to two consumer
//! processes ([`queue_2to2`], its own process model, which checks that every message arrives
//! exactly once), and one producer to one consumer in batches of [`BATCH`] (`put_many` /
//! `get_many`, throughput only, same process model and checks as the 2→2 row).
//!
//! All of them use the byte API (`send_bytes` / `recv_bytes_into`, `put` / `get_into` / `put_many` / `get_many` on
//! [`ipcbox::queue::ByteQueue`]), so no serialisation is measured, only the queue.

use std::io;
use std::time::Duration;

use ipcbox::queue::channel::{self, Receiver, Sender};
use ipcbox::queue::{Queue, WaitPolicy};

use crate::row::{Endpoint, Info, Kind, Link, Row};
use crate::rows::queue_many::QueueMany;

/// How long a waiting side of the spinning rows spins before it sleeps: longer than a
/// round trip by far, shorter than the hypervisor's wake-up (about 60 us here) by little.
pub const SPIN: Duration = Duration::from_micros(200);

/// Messages per `put_many` / `get_many` call in the batched row.
pub const BATCH: usize = 64;

/// The ipcbox shared-memory queue rows of group `group`.
pub fn rows(group: &'static str) -> Vec<Box<dyn Row>> {
    vec![
        crate::row::forked(
            Info::new("channel spin", group, Kind::Ipcbox),
            ChannelLink {
                policy: WaitPolicy::SpinThenPark(SPIN),
            },
        ),
        crate::row::forked(
            Info::new("channel park", group, Kind::Ipcbox),
            ChannelLink {
                policy: WaitPolicy::Park,
            },
        ),
        crate::row::forked(
            Info::new("queue 1-1", group, Kind::Ipcbox),
            QueueLink {
                policy: WaitPolicy::SpinThenPark(SPIN),
            },
        ),
        Box::new(
            QueueMany::new(
                Info::new("queue 1-1 batch", group, Kind::Ipcbox).no_latency(),
                1,
                1,
                WaitPolicy::SpinThenPark(SPIN),
            )
            .batched(BATCH),
        ),
        Box::new(QueueMany::new(
            Info::new("queue 2-2", group, Kind::Ipcbox).no_latency(),
            2,
            2,
            WaitPolicy::SpinThenPark(SPIN),
        )),
    ]
}

/// The shared-memory Queue one producer to one consumer, as the row `info` (the NATS rows'
/// local counterpart).
pub fn queue_1to1(info: Info) -> Box<dyn Row> {
    crate::row::forked(
        info,
        QueueLink {
            policy: WaitPolicy::SpinThenPark(SPIN),
        },
    )
}

/// Two channels, one each way, in anonymous shared memory made before `fork`.
#[derive(Debug)]
struct ChannelLink {
    policy: WaitPolicy,
}

/// Slots per channel: the channel's default 1024 for small messages, fewer for large ones
/// (about 8 MiB of slots at most).
fn slots_for(max_message: usize) -> usize {
    ((8 << 20) / (max_message + 8)).clamp(4, 1024)
}

/// One end: a sender and a receiver, plus the buffer `recv_bytes_into` fills.
#[derive(Debug)]
struct ChannelEnd {
    tx: Sender<()>,
    rx: Receiver<()>,
    buf: Vec<u8>,
}

type Channels = ((Sender<()>, Receiver<()>), (Sender<()>, Receiver<()>));

impl Link for ChannelLink {
    type Shared = Channels;
    type Parent = ChannelEnd;
    type Child = ChannelEnd;

    fn prepare(&self, max_message: usize) -> io::Result<Channels> {
        let mut options = channel::Options::new();
        options
            .capacity(slots_for(max_message))
            .max_message_size(max_message.max(1))
            .wait_policy(self.policy);
        Ok((options.anonymous()?, options.anonymous()?))
    }

    fn parent(&self, ((tx, _), (_, rx)): Channels) -> io::Result<ChannelEnd> {
        Ok(ChannelEnd {
            tx,
            rx,
            buf: Vec::new(),
        })
    }

    fn child(&self, ((_, rx), (tx, _)): Channels) -> io::Result<ChannelEnd> {
        Ok(ChannelEnd {
            tx,
            rx,
            buf: Vec::new(),
        })
    }
}

fn wrong_length(got: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("received a message of {got} bytes, expected {want}"),
    )
}

impl Endpoint for ChannelEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send_bytes(msg).map_err(io::Error::from)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.rx
            .recv_bytes_into(&mut self.buf)
            .map_err(io::Error::from)?;
        if self.buf.len() != buf.len() {
            return Err(wrong_length(self.buf.len(), buf.len()));
        }
        buf.copy_from_slice(&self.buf);
        Ok(())
    }
}

/// Options of the queues of the 1→1 and 2→2 rows: 1024 messages, room for at least eight of
/// the largest.
pub fn queue_options(max_message: usize, policy: WaitPolicy) -> ipcbox::queue::Options {
    let mut options = ipcbox::queue::Options::new();
    options
        .capacity(1024)
        .byte_capacity((8 * max_message).max(1 << 20))
        .max_message_size(max_message.max(1))
        .wait_policy(policy);
    options
}

/// Two queues, one each way.
#[derive(Debug)]
struct QueueLink {
    policy: WaitPolicy,
}

/// One end: the queue it puts into, the queue it gets from.
#[derive(Debug)]
struct QueueEnd {
    tx: Queue<()>,
    rx: Queue<()>,
    buf: Vec<u8>,
}

impl Link for QueueLink {
    type Shared = (Queue<()>, Queue<()>);
    type Parent = QueueEnd;
    type Child = QueueEnd;

    fn prepare(&self, max_message: usize) -> io::Result<(Queue<()>, Queue<()>)> {
        let options = queue_options(max_message, self.policy);
        Ok((options.anonymous()?, options.anonymous()?))
    }

    fn parent(&self, (to_child, to_parent): (Queue<()>, Queue<()>)) -> io::Result<QueueEnd> {
        Ok(QueueEnd {
            tx: to_child,
            rx: to_parent,
            buf: Vec::new(),
        })
    }

    fn child(&self, (to_child, to_parent): (Queue<()>, Queue<()>)) -> io::Result<QueueEnd> {
        Ok(QueueEnd {
            tx: to_parent,
            rx: to_child,
            buf: Vec::new(),
        })
    }
}

impl Endpoint for QueueEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.as_bytes().put(msg).map_err(io::Error::from)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.rx
            .as_bytes()
            .get_into(&mut self.buf)
            .map_err(io::Error::from)?;
        if self.buf.len() != buf.len() {
            return Err(wrong_length(self.buf.len(), buf.len()));
        }
        buf.copy_from_slice(&self.buf);
        Ok(())
    }
}
