//! What a benchmark row is: [`Info`] (name, group, kind, limits) and [`Row`] (how to measure).
//!
//! Most rows are two processes joined by one mechanism: they implement [`Link`] (set up before
//! `fork`, one [`Endpoint`] on each side after it) and become rows with [`forked`]; the
//! measuring loops in [`crate::measure`] are then the same for every mechanism, which is
//! what makes an ipcbox row and its raw row comparable. Rows with their own process model (a
//! Python peer, several producers and consumers) implement [`Row`] directly and return the same
//! samples.

use std::io;
use std::time::Duration;

use serde::Serialize;

use crate::cpus::Placement;
use crate::measure;

/// Whose code a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// ipcbox's public API.
    Ipcbox,
    /// The same loop on bare system calls: the baseline ipcbox's rows are compared with.
    Raw,
    /// Another library doing the same job.
    Competitor,
}

impl Kind {
    /// The word shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ipcbox => "ipcbox",
            Kind::Raw => "raw",
            Kind::Competitor => "other",
        }
    }
}

/// The throughput message sizes of a row that does not choose its own.
pub const STANDARD_SIZES: &[usize] = &[64, 4 << 10, 1 << 20];

/// A row's identity and limits.
#[derive(Clone, Debug)]
pub struct Info {
    /// Unique name shown in the table and matched by `--filter`, e.g. `"pipe raw"`.
    pub name: &'static str,
    /// Rows measured side by side (interleaved rounds); the group's [`Kind::Raw`] row is the
    /// baseline of the "vs raw" column. Usually the mechanism, e.g. `"pipe"`.
    pub group: &'static str,
    /// Whose code this is.
    pub kind: Kind,
    /// Whether round-trip latency is measured.
    pub latency: bool,
    /// Message sizes for one-way throughput ([`STANDARD_SIZES`] by default; the table gets a
    /// column for every size some row uses).
    pub sizes: &'static [usize],
    /// The largest message the row can carry; larger sizes are skipped (UDP, datagram limits,
    /// fixed-size slots).
    pub max_message: usize,
    /// The largest message measured in a `--quick` run (larger sizes only in a full run).
    pub quick_max_message: usize,
}

impl Info {
    /// A row measuring latency and throughput at the standard sizes.
    pub const fn new(name: &'static str, group: &'static str, kind: Kind) -> Info {
        Info {
            name,
            group,
            kind,
            latency: true,
            sizes: STANDARD_SIZES,
            max_message: usize::MAX,
            quick_max_message: usize::MAX,
        }
    }

    /// Measures messages over `bytes` only in a full run, not with `--quick` (they take long
    /// to set up: memory for several of them, written once before each round).
    pub const fn quick_max_message(mut self, bytes: usize) -> Info {
        self.quick_max_message = bytes;
        self
    }

    /// Limits the messages to `bytes`.
    pub const fn max_message(mut self, bytes: usize) -> Info {
        self.max_message = bytes;
        self
    }

    /// Measures throughput at `sizes` instead of the standard sizes (an object store: 1 KiB,
    /// 1 MiB, 64 MiB); an empty list measures latency only (a mutex hand-off).
    pub const fn sizes(mut self, sizes: &'static [usize]) -> Info {
        self.sizes = sizes;
        self
    }

    /// Measures throughput only.
    pub const fn no_latency(mut self) -> Info {
        self.latency = false;
        self
    }

    /// The throughput sizes the row measures, in increasing order.
    pub fn throughput_sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self
            .sizes
            .iter()
            .copied()
            .filter(|&s| s <= self.max_message)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// Whether the row measures throughput with `size`-byte messages.
    pub fn takes(&self, size: usize) -> bool {
        size <= self.max_message && self.sizes.contains(&size)
    }
}

/// A latency measurement: round trips of `size`-byte messages (the peer echoes each).
#[derive(Clone, Copy, Debug)]
pub struct LatencyJob {
    /// Message size in bytes.
    pub size: usize,
    /// Round trips made first and not recorded.
    pub warmup: usize,
    /// Round trips recorded.
    pub count: usize,
}

/// A one-way throughput measurement: `count` messages of `size` bytes, then a 1-byte ack back.
#[derive(Clone, Copy, Debug)]
pub struct ThroughputJob {
    /// Message size in bytes.
    pub size: usize,
    /// Messages sent (and acknowledged) before the clock starts.
    pub warmup: usize,
    /// Messages timed.
    pub count: usize,
}

/// What a row's setup leaves to undo once its group has been measured (see [`Row::setup`]).
#[must_use = "the driver runs a row's teardown after its group"]
pub struct Teardown(Option<Box<dyn FnOnce()>>);

impl Teardown {
    /// Nothing to undo.
    pub fn none() -> Teardown {
        Teardown(None)
    }

    /// Undoes the setup with `undo`.
    pub fn new(undo: impl FnOnce() + 'static) -> Teardown {
        Teardown(Some(Box::new(undo)))
    }

    /// Runs the undoing.
    pub fn run(mut self) {
        if let Some(undo) = self.0.take() {
            undo();
        }
    }
}

impl std::fmt::Debug for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Teardown(Some(..))"
        } else {
            "Teardown(None)"
        })
    }
}

/// The error of a row's [`Row::setup`] when something the row needs is not on this machine
/// (a server): the row is shown as not measured, with this reason, and the bench does not
/// fail for it.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Something `ipcbox-bench` measures.
pub trait Row {
    /// The row's name, group, kind and limits.
    fn info(&self) -> &Info;

    /// Runs once before the row's group is measured, in the bench process; the driver runs the
    /// [`Teardown`] it returns once the group is done, whether the row's measurements
    /// succeeded or not. An error fails the row without measuring it. For what a row leaves
    /// behind beyond its measurements (a library's global state); the default does nothing.
    ///
    /// # Errors
    ///
    /// Whatever keeps the row from being measured.
    fn setup(&self) -> anyhow::Result<Teardown> {
        Ok(Teardown::none())
    }

    /// Makes `job.warmup` then `job.count` round trips and returns the recorded ones' times
    /// in nanoseconds (one per round trip; fast ones timed in batches, each given its batch's
    /// mean), with the processes placed on the CPUs `cpus` says.
    fn latency(&self, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>>;

    /// Moves `job.count` messages one way (after `job.warmup` untimed ones) and returns the
    /// time from the first timed send to the receipt of the peer's ack.
    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration>;
}

/// One side of a two-way link between the bench and its peer.
pub trait Endpoint {
    /// Sends one message: all of `msg`.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// Receives one message of exactly `buf.len()` bytes into `buf`.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()>;

    /// Sends `msg` again: the throughput loop's form of [`send`](Endpoint::send), called with
    /// the same bytes every time. A typed row sends the message it built from them the first
    /// time, as a user sends the message they hold, instead of copying the bytes in anew.
    fn send_again(&mut self, msg: &[u8]) -> io::Result<()> {
        self.send(msg)
    }

    /// Receives one message of exactly `buf.len()` bytes that nobody reads: the throughput
    /// loop's form of [`recv`](Endpoint::recv). A row that receives a message of its own (a
    /// decoded `Vec`) checks its length and drops it instead of copying it into `buf`.
    fn recv_unread(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.recv(buf)
    }
}

/// A mechanism joining the bench (parent) to a forked peer (child).
///
/// [`prepare`](Link::prepare) runs in the parent before `fork`; then the parent calls
/// [`parent`](Link::parent) and the child [`child`](Link::child) at the same time, so any
/// blocking rendezvous (opening a FIFO, `accept`/`connect`) must be ordered to meet. Each side
/// drops the pieces it does not use, so a peer that dies shows up as end of file or `EPIPE`.
/// The child never runs destructors after its loop (it ends with `_exit`), but values it
/// drops before that do run theirs: names to be removed by their creator (FIFOs, sockets,
/// shared memory) must be forgotten or detached on the child side.
pub trait Link {
    /// What exists before `fork` and both processes inherit.
    type Shared;
    /// The bench's end.
    type Parent: Endpoint;
    /// The peer's end.
    type Child: Endpoint;

    /// The row's [`Row::setup`]: once before its group, not per measurement.
    ///
    /// # Errors
    ///
    /// Whatever keeps the row from being measured.
    fn setup(&self) -> io::Result<Teardown> {
        Ok(Teardown::none())
    }

    /// Sets the mechanism up for messages of up to `max_message` bytes.
    fn prepare(&self, max_message: usize) -> io::Result<Self::Shared>;

    /// The parent's end, after `fork`.
    fn parent(&self, shared: Self::Shared) -> io::Result<Self::Parent>;

    /// The child's end, after `fork`.
    fn child(&self, shared: Self::Shared) -> io::Result<Self::Child>;
}

/// A [`Row`] measuring a [`Link`] with the shared parent/child loops.
#[derive(Debug)]
pub struct Forked<L> {
    info: Info,
    link: L,
}

/// Makes the row `info` from `link`.
pub fn forked<L: Link + 'static>(info: Info, link: L) -> Box<dyn Row> {
    Box::new(Forked { info, link })
}

impl<L: Link> Row for Forked<L> {
    fn info(&self) -> &Info {
        &self.info
    }

    fn setup(&self) -> anyhow::Result<Teardown> {
        Ok(self.link.setup()?)
    }

    fn latency(&self, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        measure::latency(&self.link, cpus, job)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        measure::throughput(&self.link, cpus, job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_respect_the_row_limits() {
        let info = Info::new("udp", "udp", Kind::Raw).max_message(65_507);
        assert_eq!(info.throughput_sizes(), [64, 4096]);
        assert!(info.takes(4096) && !info.takes(1 << 20) && !info.takes(100));
        let store = Info::new("store get", "store", Kind::Ipcbox)
            .sizes(&[64 << 20, 1 << 10, 1 << 20])
            .no_latency();
        assert_eq!(store.throughput_sizes(), [1 << 10, 1 << 20, 64 << 20]);
        assert!(!store.latency);
        let mutex = Info::new("mutex", "mutex", Kind::Ipcbox).sizes(&[]);
        assert!(mutex.throughput_sizes().is_empty() && mutex.latency);
    }
}
