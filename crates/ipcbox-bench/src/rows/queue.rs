//! ipcbox's shared-memory queues: the one-to-one [`channel`](ipcbox::queue::channel) with a
//! spinning and a parking wait policy, and the many-to-many [`Queue`] one producer to one
//! consumer (a [`Link`] like every other row) and two producer processes to two consumer
//! processes ([`queue_2to2`], its own process model, which checks that every message arrives
//! exactly once), and one producer to one consumer in batches of [`BATCH`] (`put_many` /
//! `get_many`, throughput only, same process model and checks as the 2→2 row).
//!
//! All of them use the byte API, so no serialisation is measured, only the queue:
//!
//! * one copy in and one copy out, like the raw ring: `send_bytes` / `recv_into` on the
//!   channel, `put` / `get_into_slice` on [`ipcbox::queue::ByteQueue`] (`put_many` /
//!   `get_many_into` in batches, `put` / `get_into` between several processes);
//! * zero-copy (the `zero-copy` rows, throughput only): `send_with` / `recv_with` and
//!   `put_with` / `get_with`, where the sender writes the message's first and last 8 bytes in
//!   place and the receiver reads them there, as the `store get` row does: msg/s is
//!   hand-overs per second, flat as the size grows while nothing is copied.
//!
//! The rows carrying large messages ([`LARGE_SIZES`], up to 64 MiB) have room for
//! [`slots_for`] messages, like the raw ring, and their memory is written once before the
//! measurement, so no row pays for first touches of its pages while it is timed.

use std::io;
use std::time::Duration;

use ipcbox::queue::channel::{self, Receiver, Sender};
use ipcbox::queue::{Queue, WaitPolicy};

use crate::row::{Endpoint, Info, Kind, Link, Row};
use crate::rows::cacheline::{back_size, slots_for, LARGE_SIZES};
use crate::rows::queue_many::QueueMany;

/// How long a waiting side of the spinning rows spins before it sleeps: longer than a
/// round trip by far, shorter than the hypervisor's wake-up (about 60 us here) by little.
pub const SPIN: Duration = Duration::from_micros(200);

/// Messages per `put_many` / `get_many` call in the batched row.
pub const BATCH: usize = 64;

/// The message sizes of the zero-copy rows.
pub const ZERO_COPY_SIZES: &[usize] = &[4 << 10, 1 << 20, 64 << 20];

/// How a row's messages cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copies {
    /// Copied in by the sender, out by the receiver into the measuring loop's buffer.
    One,
    /// Touched in place (first and last 8 bytes) by both.
    Zero,
}

/// The ipcbox shared-memory queue rows of group `group`.
pub fn rows(group: &'static str) -> Vec<Box<dyn Row>> {
    let spin = WaitPolicy::SpinThenPark(SPIN);
    // 64 MiB in a full run only: its memory takes long to set up for every round.
    let zero_copy = |name| {
        Info::new(name, group, Kind::Ipcbox)
            .sizes(ZERO_COPY_SIZES)
            .quick_max_message(1 << 20)
            .no_latency()
    };
    let large = |name| {
        Info::new(name, group, Kind::Ipcbox)
            .sizes(LARGE_SIZES)
            .quick_max_message(1 << 20)
    };
    vec![
        crate::row::forked(
            large("channel spin"),
            ChannelLink {
                policy: spin,
                copies: Copies::One,
            },
        ),
        crate::row::forked(
            zero_copy("channel zero-copy"),
            ChannelLink {
                policy: spin,
                copies: Copies::Zero,
            },
        ),
        crate::row::forked(
            Info::new("channel park", group, Kind::Ipcbox),
            ChannelLink {
                policy: WaitPolicy::Park,
                copies: Copies::One,
            },
        ),
        crate::row::forked(
            large("queue 1-1"),
            QueueLink {
                policy: spin,
                copies: Copies::One,
            },
        ),
        crate::row::forked(
            zero_copy("queue 1-1 zero-copy"),
            QueueLink {
                policy: spin,
                copies: Copies::Zero,
            },
        ),
        crate::row::forked(
            Info::new("queue 1-1 park", group, Kind::Ipcbox),
            QueueLink {
                policy: WaitPolicy::Park,
                copies: Copies::One,
            },
        ),
        Box::new(
            QueueMany::new(
                Info::new("queue 1-1 batch", group, Kind::Ipcbox).no_latency(),
                1,
                1,
                spin,
            )
            .batched(BATCH),
        ),
        Box::new(QueueMany::new(
            Info::new("queue 2-2", group, Kind::Ipcbox).no_latency(),
            2,
            2,
            spin,
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
            copies: Copies::One,
        },
    )
}

/// Writes the first and last (up to) 8 bytes of `msg` into `buf`, its place in the channel
/// or queue: what a zero-copy sender does to its message here.
fn touch_in(buf: &mut [u8], msg: &[u8]) {
    let n = msg.len().min(8);
    buf[..n].copy_from_slice(&msg[..n]);
    let from = msg.len() - n;
    buf[from..].copy_from_slice(&msg[from..]);
}

/// Reads the first and last (up to) 8 bytes of `msg`, in place, into `buf`: what a zero-copy
/// receiver does here. Fails if the lengths differ.
fn touch_out(msg: &[u8], buf: &mut [u8]) -> io::Result<()> {
    if msg.len() != buf.len() {
        return Err(wrong_length(msg.len(), buf.len()));
    }
    touch_in(buf, msg);
    Ok(())
}

/// Two channels, one each way, in anonymous shared memory made before `fork`: the one to
/// the peer for the message size, the one back for [`back_size`].
#[derive(Debug)]
struct ChannelLink {
    policy: WaitPolicy,
    copies: Copies,
}

/// One end: a sender and a receiver.
#[derive(Debug)]
struct ChannelEnd {
    tx: Sender<()>,
    rx: Receiver<()>,
    copies: Copies,
}

type Channels = ((Sender<()>, Receiver<()>), (Sender<()>, Receiver<()>));

impl ChannelLink {
    fn channel(&self, size: usize) -> io::Result<(Sender<()>, Receiver<()>)> {
        channel::Options::new()
            .capacity(slots_for(size))
            .max_message_size(size.max(1))
            .wait_policy(self.policy)
            .anonymous()
    }
}

impl Link for ChannelLink {
    type Shared = Channels;
    type Parent = ChannelEnd;
    type Child = ChannelEnd;

    fn prepare(&self, max_message: usize) -> io::Result<Channels> {
        Ok((
            self.channel(max_message)?,
            self.channel(back_size(max_message))?,
        ))
    }

    // Before the measurement, the bench fills every slot of the channel to the peer once and
    // the peer takes them, so the pages are in memory. Not in `prepare`: an end used there
    // would belong to the bench, and dropping the peer's would disconnect it.
    fn parent(&self, ((tx, _), (_, rx)): Channels) -> io::Result<ChannelEnd> {
        let size = tx.max_message_size();
        for _ in 0..tx.capacity() {
            tx.send_with(size, |buf| buf.fill(0))?;
        }
        Ok(ChannelEnd {
            tx,
            rx,
            copies: self.copies,
        })
    }

    fn child(&self, ((_, rx), (tx, _)): Channels) -> io::Result<ChannelEnd> {
        for _ in 0..rx.capacity() {
            rx.recv_with(|_| ())?;
        }
        Ok(ChannelEnd {
            tx,
            rx,
            copies: self.copies,
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
        match self.copies {
            Copies::One => self.tx.send_bytes(msg)?,
            Copies::Zero => self.tx.send_with(msg.len(), |buf| touch_in(buf, msg))?,
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self.copies {
            Copies::One => {
                let n = self.rx.recv_into(buf)?;
                if n != buf.len() {
                    return Err(wrong_length(n, buf.len()));
                }
                Ok(())
            }
            Copies::Zero => self.rx.recv_with(|msg| touch_out(msg, buf))?,
        }
    }
}

/// Options of the queues of the queue rows for `max_message`-byte messages: 1024 messages,
/// [`slots_for`] of the largest (at least 1 MiB).
pub fn queue_options(max_message: usize, policy: WaitPolicy) -> ipcbox::queue::Options {
    let mut options = ipcbox::queue::Options::new();
    options
        .capacity(1024)
        .byte_capacity((slots_for(max_message) * max_message).max(1 << 20))
        .max_message_size(max_message.max(1))
        .wait_policy(policy);
    options
}

/// Writes the ring of `queue`, made for `max_message`-byte messages, once from end to end,
/// so its pages are in memory before a measurement.
pub fn prefault(queue: &Queue<()>, max_message: usize) -> io::Result<()> {
    let q = queue.as_bytes();
    for _ in 0..queue.byte_capacity() / max_message.max(1) + 2 {
        q.put_with(max_message, |buf| buf.fill(0))?;
        q.get_with(|_| ())?;
    }
    Ok(())
}

/// Two queues, one each way: the one to the peer for the message size, the one back for
/// [`back_size`].
#[derive(Debug)]
struct QueueLink {
    policy: WaitPolicy,
    copies: Copies,
}

/// One end: the queue it puts into, the queue it gets from.
#[derive(Debug)]
struct QueueEnd {
    tx: Queue<()>,
    rx: Queue<()>,
    copies: Copies,
}

impl Link for QueueLink {
    type Shared = (Queue<()>, Queue<()>);
    type Parent = QueueEnd;
    type Child = QueueEnd;

    fn prepare(&self, max_message: usize) -> io::Result<(Queue<()>, Queue<()>)> {
        let down = queue_options(max_message, self.policy).anonymous()?;
        prefault(&down, max_message)?;
        let up = queue_options(back_size(max_message), self.policy).anonymous()?;
        Ok((down, up))
    }

    fn parent(&self, (to_child, to_parent): (Queue<()>, Queue<()>)) -> io::Result<QueueEnd> {
        Ok(QueueEnd {
            tx: to_child,
            rx: to_parent,
            copies: self.copies,
        })
    }

    fn child(&self, (to_child, to_parent): (Queue<()>, Queue<()>)) -> io::Result<QueueEnd> {
        Ok(QueueEnd {
            tx: to_parent,
            rx: to_child,
            copies: self.copies,
        })
    }
}

impl Endpoint for QueueEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let q = self.tx.as_bytes();
        match self.copies {
            Copies::One => q.put(msg)?,
            Copies::Zero => q.put_with(msg.len(), |buf| touch_in(buf, msg))?,
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let q = self.rx.as_bytes();
        match self.copies {
            Copies::One => {
                let n = q.get_into_slice(buf)?;
                if n != buf.len() {
                    return Err(wrong_length(n, buf.len()));
                }
                Ok(())
            }
            Copies::Zero => q.get_with(|msg| touch_out(msg, buf))?,
        }
    }
}
