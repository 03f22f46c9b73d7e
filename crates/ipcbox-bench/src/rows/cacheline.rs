//! The hardware floors of shared memory: two processes bouncing a counter through one cache
//! line ([`Turns::PING_PONG`], latency), the same hand-off through two lines, one per direction
//! ([`Turns::LINE_PAIR`], latency), and a plain busy-spinning ring ([`SpinRing`], latency,
//! and throughput up to 64 MiB messages). All live in anonymous `MAP_SHARED` memory made before `fork` and
//! wait by spinning on an atomic, nothing else: no length, no check, no wake-up. ipcbox's
//! shared-memory rows are measured beside them.
//!
//! [`Turns::PING_PONG`] is the least a round trip can cost, but only a link whose replier writes the
//! very line it has just read can reach it. A round trip made of two one-way channels cannot:
//! each direction has its own line, which the writer must first take from the reader spinning
//! on it (a read-for-ownership) before the reader can fetch it back, two line transfers per
//! hop instead of one. [`Turns::LINE_PAIR`] is that floor: one line per direction, no payload, no
//! index, no ring, so the gap between it and the ping-pong is what the one-way design itself
//! costs on this machine, and the gap between a channel row and it is what the channel adds.

use std::io;
use std::sync::atomic::Ordering::{Acquire, Release};

use crate::rawsys::SharedMemory;
use crate::row::{Endpoint, Info, Kind, Link};
use crate::rows::common::spin_until;

/// The raw cache-line ping-pong row (latency only) for group `group`.
pub fn ping_pong_info(name: &'static str, group: &'static str) -> Info {
    Info::new(name, group, Kind::Raw).sizes(&[])
}

/// The message sizes of the shared-memory rows that carry large messages: the standard ones
/// and 64 MiB.
pub const LARGE_SIZES: &[usize] = &[64, 4 << 10, 1 << 20, 64 << 20];

/// The raw ring row for group `group`, at [`LARGE_SIZES`] (64 MiB in a full run only).
pub fn spin_ring_info(name: &'static str, group: &'static str) -> Info {
    Info::new(name, group, Kind::Raw)
        .sizes(LARGE_SIZES)
        .quick_max_message(1 << 20)
}

/// The raw two-line ping-pong row (latency only) for group `group`.
pub fn line_pair_info(name: &'static str, group: &'static str) -> Info {
    Info::new(name, group, Kind::Raw).sizes(&[])
}

/// Where each side's process ID is kept in the shared page (for the dead-peer check).
const PARENT_PID: usize = 64;
const CHILD_PID: usize = 128;

/// Records our PID and returns the peer's (the child stores its own first thing; the parent
/// gives up after ten seconds without it).
fn record_pids(mem: &SharedMemory, child: bool) -> io::Result<u32> {
    let me = std::process::id();
    if child {
        mem.u64_at(CHILD_PID).store(u64::from(me), Release);
        return Ok(std::os::unix::process::parent_id());
    }
    mem.u64_at(PARENT_PID).store(u64::from(me), Release);
    let start = std::time::Instant::now();
    loop {
        let pid = mem.u64_at(CHILD_PID).load(Acquire);
        if pid != 0 {
            return Ok(pid as u32);
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not start within 10 s",
            ));
        }
        std::thread::yield_now();
    }
}

/// Two processes taking turns through a counter: the parent makes it odd, the child even,
/// each storing its turn in its own word and spinning until the peer's word says it is its
/// turn again. The two words are where a [`Turns`] value puts them:
///
/// * [`Turns::PING_PONG`]: one word in one cache line, so a hand-off moves that one line
///   between the cores and nothing else: the least any shared-memory message can cost.
/// * [`Turns::LINE_PAIR`]: one line per direction, each side's line away from the PIDs and
///   from the other's 128-byte pair of lines (which the adjacent-line prefetcher fetches
///   together): two one-way links with nothing else in them, so every hop moves a line that
///   the reader was spinning on, the floor of a round trip over any pair of one-way channels
///   (see the module docs).
///
/// It carries no payload: the counter is the whole message. Since the peer only ever echoes,
/// [`Endpoint::recv`] gives back the last message this side sent, so the shared measuring loop
/// sees its echo.
#[derive(Debug, Clone, Copy)]
pub struct Turns {
    parent_word: usize,
    child_word: usize,
}

impl Turns {
    /// One word for both directions.
    pub const PING_PONG: Turns = Turns {
        parent_word: 0,
        child_word: 0,
    };
    /// One cache line per direction.
    pub const LINE_PAIR: Turns = Turns {
        parent_word: 1024,
        child_word: 2048,
    };
}

/// One side of a [`Turns`].
#[derive(Debug)]
pub struct TurnsEnd {
    mem: SharedMemory,
    /// Where we store our turns, and where the peer stores its.
    mine: usize,
    theirs: usize,
    /// The counter's value after our last hand-off or the peer's last we saw.
    value: u64,
    peer: u32,
    last: Vec<u8>,
}

impl TurnsEnd {
    fn new(turns: Turns, mem: SharedMemory, child: bool) -> io::Result<TurnsEnd> {
        let peer = record_pids(&mem, child)?;
        let (mine, theirs) = if child {
            (turns.child_word, turns.parent_word)
        } else {
            (turns.parent_word, turns.child_word)
        };
        Ok(TurnsEnd {
            mem,
            mine,
            theirs,
            value: 0,
            peer,
            last: Vec::new(),
        })
    }
}

impl Endpoint for TurnsEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.last.clear();
        self.last.extend_from_slice(msg);
        self.value += 1;
        self.mem.u64_at(self.mine).store(self.value, Release);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let want = self.value + 1;
        let word = self.mem.u64_at(self.theirs);
        spin_until(self.peer, || word.load(Acquire) == want)?;
        self.value = want;
        if self.last.len() == buf.len() {
            buf.copy_from_slice(&self.last);
        }
        Ok(())
    }
}

impl Link for Turns {
    type Shared = SharedMemory;
    type Parent = TurnsEnd;
    type Child = TurnsEnd;

    fn prepare(&self, _max_message: usize) -> io::Result<SharedMemory> {
        SharedMemory::new(4096)
    }

    fn parent(&self, mem: SharedMemory) -> io::Result<TurnsEnd> {
        TurnsEnd::new(*self, mem, false)
    }

    fn child(&self, mem: SharedMemory) -> io::Result<TurnsEnd> {
        TurnsEnd::new(*self, mem, true)
    }
}

/// Layout of one ring: the producer's tail index on its own line, the consumer's head index on
/// the next, then the slots.
const TAIL: usize = 0;
const HEAD: usize = 64;
const RING_SLOTS: usize = 128;
/// The two rings (to the child, to the parent) follow the PIDs' page.
const RING_BASE: usize = 4096;

/// One ring's geometry: where it starts, its slot size and number of slots.
#[derive(Debug, Clone, Copy)]
struct RingGeo {
    base: usize,
    slot: usize,
    slots: usize,
}

impl RingGeo {
    /// A ring for messages of up to `size` bytes at `base`: slots of whole cache lines, as
    /// many as [`slots_for`] gives.
    fn new(base: usize, size: usize) -> RingGeo {
        RingGeo {
            base,
            slot: size.max(1).next_multiple_of(64),
            slots: slots_for(size),
        }
    }

    fn len(&self) -> usize {
        RING_SLOTS + self.slots * self.slot
    }

    fn slot_at(&self, index: u64) -> usize {
        // `slots` is a power of two: a mask, not a division, on the message path.
        self.base + RING_SLOTS + (index as usize & (self.slots - 1)) * self.slot
    }
}

/// Messages of room in the rings, channels and queues of the shared-memory rows: about 8 MiB
/// of messages, at least 2 (so one can be written while the other is read), at most 1024; a
/// power of two.
pub fn slots_for(size: usize) -> usize {
    let n = ((8 << 20) / size.max(1)).clamp(2, 1024);
    1 << n.ilog2()
}

/// The message size the backward link of a row carrying `size`-byte messages is made for:
/// it carries only the 64-byte echoes of the latency rounds and the 1-byte acks.
pub fn back_size(size: usize) -> usize {
    size.min(64 << 10)
}

/// Two single-producer single-consumer rings, one each way: the textbook lock-free ring (each
/// side keeps its own index and a cached copy of the other's, publishes with one release store
/// per message, spins when full or empty), with one copy in and one copy out. The ring from
/// the bench to the peer has [`slots_for`] slots of the message size (whole cache lines); the
/// one back is made for [`back_size`]. Messages are exactly the size the receiver asks for;
/// there is no length, no bounds check against a hostile peer, and no way to sleep.
#[derive(Debug, Clone, Copy)]
pub struct SpinRing;

/// One side of a [`SpinRing`].
#[derive(Debug)]
pub struct SpinRingEnd {
    mem: SharedMemory,
    peer: u32,
    tx: RingGeo,
    rx: RingGeo,
    tail: u64,
    cached_head: u64,
    head: u64,
    cached_tail: u64,
}

/// The rings of a [`SpinRing`] for `size`-byte messages: to the child, then to the parent.
fn spin_rings(size: usize) -> (RingGeo, RingGeo) {
    let down = RingGeo::new(RING_BASE, size);
    let up = RingGeo::new(RING_BASE + down.len(), back_size(size));
    (down, up)
}

impl SpinRingEnd {
    fn new(mem: SharedMemory, child: bool, size: usize) -> io::Result<SpinRingEnd> {
        let peer = record_pids(&mem, child)?;
        let (down, up) = spin_rings(size);
        let (tx, rx) = if child { (up, down) } else { (down, up) };
        Ok(SpinRingEnd {
            mem,
            peer,
            tx,
            rx,
            tail: 0,
            cached_head: 0,
            head: 0,
            cached_tail: 0,
        })
    }
}

impl Endpoint for SpinRingEnd {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let slots = self.tx.slots as u64;
        if msg.len() > self.tx.slot {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} bytes over the ring's {}-byte slots",
                    msg.len(),
                    self.tx.slot
                ),
            ));
        }
        if self.tail - self.cached_head == slots {
            let head = self.mem.u64_at(self.tx.base + HEAD);
            let tail = self.tail;
            let mut seen = 0;
            spin_until(self.peer, || {
                seen = head.load(Acquire);
                tail - seen < slots
            })?;
            self.cached_head = seen;
        }
        self.mem.write(self.tx.slot_at(self.tail), msg);
        self.tail += 1;
        self.mem
            .u64_at(self.tx.base + TAIL)
            .store(self.tail, Release);
        Ok(())
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() > self.rx.slot {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        if self.head == self.cached_tail {
            let tail = self.mem.u64_at(self.rx.base + TAIL);
            let head = self.head;
            let mut seen = 0;
            spin_until(self.peer, || {
                seen = tail.load(Acquire);
                seen != head
            })?;
            self.cached_tail = seen;
        }
        self.mem.read(self.rx.slot_at(self.head), buf);
        self.head += 1;
        self.mem
            .u64_at(self.rx.base + HEAD)
            .store(self.head, Release);
        Ok(())
    }
}

/// The shared memory of a [`SpinRing`] and the message size it was made for.
#[derive(Debug)]
pub struct SpinRingMemory {
    mem: SharedMemory,
    size: usize,
}

impl Link for SpinRing {
    type Shared = SpinRingMemory;
    type Parent = SpinRingEnd;
    type Child = SpinRingEnd;

    fn prepare(&self, max_message: usize) -> io::Result<SpinRingMemory> {
        let (_, up) = spin_rings(max_message);
        let mem = SharedMemory::new(up.base + up.len())?;
        mem.prefault();
        Ok(SpinRingMemory {
            mem,
            size: max_message,
        })
    }

    fn parent(&self, shared: SpinRingMemory) -> io::Result<SpinRingEnd> {
        SpinRingEnd::new(shared.mem, false, shared.size)
    }

    fn child(&self, shared: SpinRingMemory) -> io::Result<SpinRingEnd> {
        SpinRingEnd::new(shared.mem, true, shared.size)
    }
}
