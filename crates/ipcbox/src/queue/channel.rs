//! One-to-one channels in shared memory: one [`Sender`], one [`Receiver`], the lowest latency
//! and the highest throughput ipcbox offers for messages.
//!
//! A channel is a fixed ring of slots, each a whole number of cache lines with room for one
//! message of up to [`Options::max_message_size`] bytes. No lock and no atomic
//! read-modify-write is on the message path: the sender alone writes the tail index, the
//! receiver alone the head index, each on its own cache line.
//!
//! `send` and `recv` block; their `try_`, `_timeout` and `_deadline` forms say "not now" in
//! `Ok` (the [crate's rule](crate#outcomes)). A blocked end spins (per [`WaitPolicy`]), then
//! sleeps on a futex. Its peer wakes it only if it sleeps, so while both ends are busy nobody
//! enters the kernel.
//!
//! # Waiting on a descriptor
//!
//! Each end has a file descriptor ([`AsFd`]), its doorbell, for event loops and
//! [`crate::wait()`], used as the [queue's](super#waiting-on-a-descriptor): [`Receiver::arm`]
//! (or [`Sender::arm`]), poll the descriptor, try the operation, arm again. The peer rings
//! it only when the end's sleeping flag says it waits, so the message path stays free of
//! system calls. As for the queue, an end inherited across `fork` gets a doorbell of its own
//! at its first `arm`. Where `membarrier` is refused ([`Receiver::doorbell_registered`] false) a
//! ring may be missed and the waiter polls (every 10 ms in the `tokio` adapters and
//! [`crate::wait()`]).
//!
//! # Large messages
//!
//! * [`Receiver::recv_into`] copies a message once, from its slot into the caller's buffer.
//! * [`Sender::send_with`] writes a message in place in its slot and [`Receiver::recv_with`]
//!   reads it in place, so a message can cross with no copy at all.
//! * A message is at most [`Options::max_message_size`] bytes, and every slot reserves that
//!   much. For larger data, put it in a [`Store`](crate::store::Store) and send its
//!   [`ObjectId`](crate::store::ObjectId); the error for a message over the limit says so.
//!
//! # Crash safety and disconnection
//!
//! * A message whose `send` returned is received exactly once, unless the receiver that took
//!   it died.
//! * A `send` that did not return either published its message or left no trace of it.
//! * A `recv` that did not return either left its message in the channel, for the next
//!   receiver, or took it with it; never both.
//! * Each end is owned by one process, recorded in the channel as PID and start time when it
//!   first sends or receives. So a handle inherited across `fork` belongs to the process that
//!   uses it. Dropping an end marks it gone.
//! * A receiver finding the channel empty gets `Disconnected` once the sender is gone or its
//!   process is dead (checked every 100 ms of sleeping). A sender gets `Disconnected` once the
//!   receiver is gone or dead.
//! * Opening an end of a named channel takes it over when its recorded owner is dead, and fails
//!   with `ResourceBusy` while that owner lives.
//! * Indices and lengths read from shared memory are checked; a corrupted channel gives an
//!   `InvalidData` error.
//!
//! # Limitations
//!
//! * One thread sends and one receives: [`Sender`] and [`Receiver`] are `Send` but not `Sync`.
//! * Every slot reserves room for the largest message. The capacity is rounded up to a power
//!   of two, at most 2^30 slots.
//! * Each time an end goes to sleep, the CPUs then running processes registered for
//!   `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` take an interrupt.
//! * Where `membarrier` is refused, an end fences each index store, and a sleeper that could
//!   not fence its peer wakes every millisecond to look again.
//! * Both ends must share one PID namespace: ownership goes by PID and start time.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::bell::{self, Bell};
use super::error::{done, waited, Failure, RecvError, SendError};
use super::object::{self, Object};
use super::peers;
use super::wait::{self, Deadline, WaitPolicy};
use super::{codec, with_scratch};
use crate::layout::channel::{
    RawChannelHeader, RawEnd, RawSlot, MAGIC, PAYLOAD_OFFSET, READY, SLOTS_OFFSET, VERSION,
};
use crate::mode::CreationMode;
use crate::sys::futex;

mod inplace;

// A slot is a 4-byte length, a 4-byte stamp and the payload. A sender writes the slot, stamps
// it with its sequence number, then stores the tail. A receiver watches the stamp of the slot
// it expects next (not the tail), copies the slot out, then frees it with one store of the
// head.
//
// A message of up to 56 bytes therefore costs one cache line moving from the sender's core to
// the receiver's. A longer one costs one more line per 64 bytes, fetched once the stamp is
// seen: a 64-byte message, with its 8-byte header, takes two lines one after the other.

const MAX_CAPACITY: u64 = 1 << 30;

/// How a channel is created or opened.
///
/// # Examples
///
/// ```
/// let (tx, rx) = ipcbox::queue::channel::Options::new()
///     .capacity(64)
///     .max_message_size(128)
///     .anonymous::<u64>()?;
/// tx.send(&7)?;
/// assert_eq!(rx.recv()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: u64,
    max_message: u64,
    mode: CreationMode,
    permissions: u32,
    policy: WaitPolicy,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// 1024 slots of up to 1024 bytes, create exclusively, mode 0600, [`WaitPolicy::Park`].
    pub fn new() -> Options {
        Options {
            capacity: 1024,
            max_message: 1024,
            mode: CreationMode::CreateExclusive,
            permissions: 0o600,
            policy: WaitPolicy::Park,
        }
    }

    /// Number of message slots (rounded up to a power of two; at least 1).
    pub fn capacity(&mut self, messages: usize) -> &mut Options {
        self.capacity = messages as u64;
        self
    }

    /// Largest message in bytes (each slot reserves this much).
    pub fn max_message_size(&mut self, bytes: usize) -> &mut Options {
        self.max_message = bytes as u64;
        self
    }

    /// How [`Options::sender`] and [`Options::receiver`] treat the name (default: create
    /// exclusively).
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// Permission bits of a named channel (default `0o600`), set exactly (see
    /// [Named objects](crate#named-objects)).
    pub fn permissions(&mut self, mode: u32) -> &mut Options {
        self.permissions = mode;
        self
    }

    /// How blocked operations wait (default [`WaitPolicy::Park`]).
    pub fn wait_policy(&mut self, policy: WaitPolicy) -> &mut Options {
        self.policy = policy;
        self
    }

    fn layout(&self) -> io::Result<(u64, u64, usize)> {
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(crate::error::invalid_input(format_args!(
                "channel capacity must be 1..={MAX_CAPACITY} messages, got {}",
                self.capacity
            )));
        }
        if self.max_message == 0 || self.max_message > u32::MAX as u64 {
            return Err(crate::error::invalid_input(format_args!(
                "channel maximum message size must be 1..={} bytes, got {}",
                u32::MAX,
                self.max_message
            )));
        }
        let cap = self.capacity.next_power_of_two();
        // Whole cache lines, so a slot's header and its first payload bytes share one line.
        let slot = (8 + self.max_message + 63) & !63;
        let len = cap
            .checked_mul(slot)
            .and_then(|n| n.checked_add(SLOTS_OFFSET as u64))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                crate::error::invalid_input(format_args!(
                    "channel of {cap} slots of {slot} bytes is too large"
                ))
            })?;
        Ok((cap, slot, len))
    }

    /// Creates a channel in anonymous shared memory, inherited across `fork`: keep the
    /// [`Sender`] in one process and the [`Receiver`] in the other.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero capacity or size; the `mmap` error.
    pub fn anonymous<T>(&self) -> io::Result<(Sender<T>, Receiver<T>)> {
        let (cap, slot, len) = self.layout()?;
        let chan = Chan::init(Object::anonymous(len)?, cap, slot, self.max_message)?;
        let chan = std::sync::Arc::new(chan);
        Ok((
            Sender::new(Endpoint::new(chan.clone(), self.policy)?),
            Receiver::new(Endpoint::new(chan, self.policy)?),
        ))
    }

    fn named_chan(&self, name: &str) -> io::Result<Chan> {
        let (cap, slot, len) = if self.mode == CreationMode::Open {
            (0, 0, 0)
        } else {
            self.layout()?
        };
        let (obj, created) = Object::named(name, self.mode, len, self.permissions)?;
        if created {
            Chan::init(obj, cap, slot, self.max_message)
        } else {
            Chan::validate(obj)
        }
    }

    /// Creates or opens (per [`Options::mode`]) the channel `name` in POSIX shared memory
    /// (`shm_open`) and takes its sending end.
    ///
    /// # Errors
    ///
    /// `NotFound`, `AlreadyExists`, `InvalidInput`, `InvalidData` as for a queue;
    /// `ResourceBusy` if a live process owns the sending end.
    pub fn sender<T>(&self, name: &str) -> io::Result<Sender<T>> {
        let ep = Endpoint::new(std::sync::Arc::new(self.named_chan(name)?), self.policy)?;
        ep.claim(Role::Sender, false)?;
        Ok(Sender::new(ep))
    }

    /// Creates or opens (per [`Options::mode`]) the channel `name` and takes its receiving end.
    ///
    /// # Errors
    ///
    /// As [`Options::sender`].
    pub fn receiver<T>(&self, name: &str) -> io::Result<Receiver<T>> {
        let ep = Endpoint::new(std::sync::Arc::new(self.named_chan(name)?), self.policy)?;
        ep.claim(Role::Receiver, false)?;
        Ok(Receiver::new(ep))
    }
}

/// A one-to-one channel of at most `capacity` messages of up to 1024 encoded bytes, in
/// anonymous shared memory inherited across `fork`.
///
/// # Errors
///
/// As [`Options::anonymous`].
pub fn new<T>(capacity: usize) -> io::Result<(Sender<T>, Receiver<T>)> {
    Options::new().capacity(capacity).anonymous()
}

/// One end of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sender,
    Receiver,
}

impl Role {
    fn peer(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

#[derive(Debug)]
struct Chan {
    obj: Object<RawChannelHeader>,
    cap: u64,
    slot: u64,
    max_msg: u64,
}

impl Chan {
    fn init(obj: Object<RawChannelHeader>, cap: u64, slot: u64, max_msg: u64) -> io::Result<Chan> {
        let h = obj.region.header();
        h.capacity.store(cap, Relaxed);
        h.slot.store(slot, Relaxed);
        h.max_msg.store(max_msg, Relaxed);
        h.version.store(VERSION, Relaxed);
        h.magic.store(MAGIC, Relaxed);
        h.ready.store(READY, Release);
        Ok(Chan {
            obj,
            cap,
            slot,
            max_msg,
        })
    }

    fn validate(obj: Object<RawChannelHeader>) -> io::Result<Chan> {
        let r = &obj.region;
        let h = r.header();
        let label = obj.label().to_owned();
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        object::wait_ready(&format!("channel {label}"), || {
            h.ready.load(Acquire) == READY
        })?;
        let (magic, version) = (h.magic.load(Relaxed), h.version.load(Relaxed));
        if magic != MAGIC || version != VERSION {
            return Err(bad(format!(
                "{label} is not an ipcbox channel of layout version {VERSION} (magic {magic:#x}, version {version})"
            )));
        }
        let cap = h.capacity.load(Relaxed);
        let slot = h.slot.load(Relaxed);
        let max_msg = h.max_msg.load(Relaxed);
        let fits = cap
            .checked_mul(slot)
            .and_then(|n| n.checked_add(SLOTS_OFFSET as u64))
            .is_some_and(|n| n <= r.len() as u64);
        if !cap.is_power_of_two()
            || cap > MAX_CAPACITY
            || slot
                .checked_sub(PAYLOAD_OFFSET as u64)
                .is_none_or(|room| room < max_msg)
            || slot % 8 != 0
            || !fits
        {
            return Err(bad(format!(
                "channel header corrupted: {label}: {cap} slots of {slot} bytes, max message {max_msg}, object {} bytes",
                r.len()
            )));
        }
        Ok(Chan {
            obj,
            cap,
            slot,
            max_msg,
        })
    }

    /// The header, checked to fit the mapping when it was attached.
    #[inline]
    fn h(&self) -> &RawChannelHeader {
        self.obj.region.header()
    }

    #[inline]
    fn end(&self, role: Role) -> &RawEnd {
        match role {
            Role::Sender => &self.h().sender,
            Role::Receiver => &self.h().receiver,
        }
    }

    /// The index `role` alone writes: the tail for the sender, the head for the receiver.
    #[inline]
    fn index(&self, role: Role) -> &AtomicU32 {
        match role {
            Role::Sender => &self.h().tail,
            Role::Receiver => &self.h().head,
        }
    }

    /// The flag `role` raises while it may sleep on its peer's index.
    #[inline]
    fn sleeping(&self, role: Role) -> &AtomicU32 {
        match role {
            Role::Sender => &self.h().tx_sleeping,
            Role::Receiver => &self.h().rx_sleeping,
        }
    }

    /// The slot of message `index`: its length and stamp, and where its payload starts.
    #[inline]
    fn slot(&self, index: u32) -> io::Result<(&RawSlot, usize)> {
        // In bounds for any index once `validate` checked the geometry against the mapping;
        // checked again all the same, since the mapping is shared with other processes.
        let off = SLOTS_OFFSET + ((u64::from(index) & (self.cap - 1)) * self.slot) as usize;
        match self.obj.region.at::<RawSlot>(off) {
            Some(slot) => Ok((slot, off + PAYLOAD_OFFSET)),
            None => Err(self.bad_slot(off)),
        }
    }

    #[cold]
    fn bad_slot(&self, off: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "channel {} corrupted: slot at offset {off} outside its {} byte object",
                self.obj.label(),
                self.obj.region.len()
            ),
        )
    }
}

/// The state one end keeps privately.
#[derive(Debug)]
struct Endpoint {
    chan: std::sync::Arc<Chan>,
    policy: WaitPolicy,
    /// Fork generation in which this end claimed ownership (`u64::MAX`: not claimed).
    claimed_gen: Cell<u64>,
    /// Cached copy of the other side's index.
    other: Cell<u32>,
    /// Our own index (we are its only writer).
    mine: Cell<u32>,
    /// The owner word we wrote when claiming.
    owner_word: Cell<u64>,
    /// Whether this process is registered for `membarrier`, so that our index stores need no
    /// fence (see [`wait::register_fence_free`]).
    fence_free: Cell<bool>,
    /// This end's doorbell, and whether the last arming could fence the peer (see
    /// [`Endpoint::arm`]).
    bell: Bell,
    bell_fenced: Cell<bool>,
}

impl Endpoint {
    fn new(chan: std::sync::Arc<Chan>, policy: WaitPolicy) -> io::Result<Endpoint> {
        Ok(Endpoint {
            chan,
            policy,
            claimed_gen: Cell::new(u64::MAX),
            other: Cell::new(0),
            mine: Cell::new(0),
            owner_word: Cell::new(0),
            fence_free: Cell::new(false),
            bell: Bell::new()?,
            bell_fenced: Cell::new(true),
        })
    }

    /// Binds this process's doorbell socket if the end came across `fork`.
    fn own_bell(&self) -> io::Result<()> {
        self.bell.token().map(drop)
    }

    /// Drains the doorbell, then returns true if `ready()` or the peer is gone (the operation
    /// would not wait); otherwise raises bit 1 of our sleeping flag with our bell's token in
    /// our end, so the peer's next index store rings it. Registers as a futex sleeper does in
    /// [`Endpoint::wait`], fence included.
    fn arm(&self, role: Role, ready: impl Fn() -> bool) -> io::Result<bool> {
        self.ensure(role)?;
        self.bell.drain();
        let c = &self.chan;
        if ready() || self.peer_gone(role.peer(), false) {
            return Ok(true);
        }
        c.end(role).bell.store(self.bell.token()?, SeqCst);
        let sleeping = c.sleeping(role);
        sleeping.fetch_or(2, SeqCst);
        self.bell_fenced.set(wait::fence_peers());
        if ready() || self.peer_gone(role.peer(), false) {
            sleeping.fetch_and(!2, SeqCst);
            return Ok(true);
        }
        Ok(false)
    }

    /// Takes ownership of the end `role` for this process. An opener (`force` false) fails
    /// while a live process owns it; a handle inherited across `fork` (`force` true) is that
    /// same end and takes it over.
    #[cold]
    fn claim(&self, role: Role, force: bool) -> io::Result<()> {
        let gen = crate::sys::process::fork_generation();
        let (pid, start) = peers::me();
        let me = peers::pack(pid, start);
        let c = &self.chan;
        let end = c.end(role);
        let owner = &end.owner;
        loop {
            let cur = owner.load(Acquire);
            if !force && cur != 0 && peers::alive_packed(cur) {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "channel {} {} is owned by live process {}",
                        c.obj.label(),
                        role.name(),
                        cur & 0xFFFF_FFFF
                    ),
                ));
            }
            if owner.compare_exchange(cur, me, AcqRel, Acquire).is_ok() {
                break;
            }
        }
        end.gone.store(0, Release);
        self.owner_word.set(me);
        if role == Role::Sender {
            // A sender killed between stamping a slot and storing the tail left a message
            // the receiver may already have taken: move the tail past every stamped slot, so
            // the next message goes after it, and tell a sleeping receiver.
            let mut tail = c.h().tail.load(Acquire);
            for _ in 0..c.cap {
                if c.slot(tail)?.0.stamp.load(Acquire) != tail.wrapping_add(1) {
                    break;
                }
                tail = tail.wrapping_add(1);
            }
            c.h().tail.store(tail, SeqCst);
            wake_sleeper(c, Role::Receiver);
        }
        // Take up our index where the previous owner left it.
        self.mine.set(c.index(role).load(Acquire));
        self.other.set(c.index(role.peer()).load(Acquire));
        self.fence_free.set(wait::register_fence_free());
        self.claimed_gen.set(gen);
        Ok(())
    }

    // Flag and index must agree: a waker stores its index then loads the peer's "sleeping"
    // flag, a sleeper stores its flag then loads the index, and neither may see only the old
    // value of the other's store.
    //
    // The sleeper fences with a full barrier and then with
    // `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which makes every thread of the processes
    // registered for it execute one. So the message path of a registered process needs no
    // fence; the price is an interrupt on the CPUs running them each time an end sleeps.
    // Where `membarrier` is refused, an end fences its index store itself, and a sleeper that
    // could not fence its peer sleeps in short slices (`wait::UNFENCED_SLICE`).

    /// Publishes `role`'s (our) index `value`; the peer's "sleeping" flag is loaded after it.
    #[inline]
    fn publish(&self, role: Role, value: u32) {
        let index = self.chan.index(role);
        if self.fence_free.get() {
            // A sleeping peer's `membarrier` orders this store before our flag load.
            index.store(value, Release);
        } else {
            index.store(value, SeqCst);
        }
    }

    #[inline]
    fn ensure(&self, role: Role) -> io::Result<()> {
        if self.claimed_gen.get() != crate::sys::process::fork_generation() {
            self.claim(role, true)?;
        }
        Ok(())
    }

    /// Whether the end `peer` has gone (dropped) or, if `check_alive`, its owner died.
    #[inline]
    fn peer_gone(&self, peer: Role, check_alive: bool) -> bool {
        let end = self.chan.end(peer);
        if end.gone.load(Acquire) != 0 {
            return true;
        }
        let owner = end.owner.load(Acquire);
        check_alive && owner != 0 && !peers::alive_packed(owner)
    }

    /// Marks our end gone and wakes the peer, if this process still owns it (a process that
    /// handed its end to a forked child and then drops its copy does not disconnect the child).
    fn release(&self, role: Role) {
        if self.claimed_gen.get() != crate::sys::process::fork_generation() {
            return;
        }
        let end = self.chan.end(role);
        let mine = self.owner_word.get();
        if end
            .owner
            .compare_exchange(mine, 0, AcqRel, Relaxed)
            .is_err()
        {
            return;
        }
        end.bell.store(0, Relaxed);
        end.gone.store(1, SeqCst);
    }

    /// Waits, as `role`, until `ready()` (true) or the deadline (false); the peer wakes us
    /// through its index when we raise our sleeping flag. `Disconnected` once the peer is gone
    /// and still not `ready()`.
    fn wait<E: Failure>(
        &self,
        deadline: Deadline,
        role: Role,
        fast_ready: impl Fn() -> bool,
        ready: impl Fn() -> bool,
    ) -> Result<bool, E> {
        let c = &self.chan;
        let (word, sleeping, peer) = (c.index(role.peer()), c.sleeping(role), role.peer());
        let gone = || {
            if ready() {
                Ok(true)
            } else {
                Err(E::disconnected())
            }
        };
        if self.peer_gone(peer, false) {
            return gone();
        }
        if wait::spin(deadline, self.policy.spin_for(), || !fast_ready()) {
            return Ok(true);
        }
        loop {
            let Some(slice) = deadline.slice(wait::SLICE) else {
                return Ok(false);
            };
            let seen = word.load(SeqCst);
            sleeping.store(1, SeqCst);
            // A fence-free peer may have stored its index and loaded our flag in the other
            // order; after this, either it sees the flag or `ready()` sees its index.
            let slice = if wait::fence_peers() {
                slice
            } else {
                slice.min(wait::UNFENCED_SLICE)
            };
            if ready() || self.peer_gone(peer, false) {
                sleeping.store(0, Relaxed);
                return gone();
            }
            let res = futex::wait(word, seen, Some(slice));
            sleeping.store(0, Relaxed);
            res.map_err(E::failed)?;
            if ready() {
                return Ok(true);
            }
            if self.peer_gone(peer, word.load(Relaxed) == seen) {
                return gone();
            }
        }
    }
}

/// The doorbell's socket: readable after a ring; see [`Sender::arm`].
impl<T> AsFd for Sender<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ep.bell.as_fd()
    }
}

/// The doorbell's socket: readable after a ring; see [`Receiver::arm`].
impl<T> AsFd for Receiver<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ep.bell.as_fd()
    }
}

/// The sending end of a one-to-one channel. `Send` but not `Sync`: one thread sends.
#[derive(Debug)]
pub struct Sender<T> {
    ep: Endpoint,
    _marker: PhantomData<fn(T)>,
}

/// The receiving end of a one-to-one channel. `Send` but not `Sync`: one thread receives.
#[derive(Debug)]
pub struct Receiver<T> {
    ep: Endpoint,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Sender<T> {
    fn new(ep: Endpoint) -> Sender<T> {
        Sender {
            ep,
            _marker: PhantomData,
        }
    }

    /// Sends `msg`; false if the deadline passed first.
    #[inline]
    fn send_raw(&self, msg: &[u8], deadline: Deadline) -> Result<bool, SendError> {
        let region = &self.ep.chan.obj.region;
        let sent = self.send_fill(msg.len(), deadline, |at| region.write(at, msg))?;
        Ok(sent.is_some())
    }

    /// Sends a `len`-byte message whose payload `fill` writes, given its region offset in
    /// the slot, before the slot is published; `None` if the deadline passed first (`fill`
    /// not called). An error from `fill` publishes nothing.
    #[inline(always)]
    fn send_fill<R>(
        &self,
        len: usize,
        deadline: Deadline,
        fill: impl FnOnce(usize) -> io::Result<R>,
    ) -> Result<Option<R>, SendError> {
        let ep = &self.ep;
        let c = &*ep.chan;
        if len as u64 > c.max_msg {
            return Err(SendError::Failed(crate::error::invalid_input(
                format_args!(
                    "message of {len} bytes over the channel's limit of {} bytes \
                     (Options::max_message_size); put larger data in an \
                     ipcbox::store::Store and send its ObjectId",
                    c.max_msg
                ),
            )));
        }
        ep.ensure(Role::Sender).map_err(SendError::Failed)?;
        if ep.peer_gone(Role::Receiver, false) {
            return Err(SendError::Disconnected);
        }
        let tail = ep.mine.get();
        let cap = c.cap as u32;
        if tail.wrapping_sub(ep.other.get()) >= cap {
            let refresh = || tail.wrapping_sub(c.h().head.load(Acquire)) < cap;
            if !ep.wait(deadline, Role::Sender, refresh, refresh)? {
                return Ok(None);
            }
            let head = c.h().head.load(Acquire);
            if tail.wrapping_sub(head) > cap {
                return Err(SendError::Failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "channel header corrupted: {}: head {head}, tail {tail}",
                        c.obj.label()
                    ),
                )));
            }
            ep.other.set(head);
        }
        let (slot, payload) = c.slot(tail).map_err(SendError::Failed)?;
        let out = fill(payload).map_err(SendError::Failed)?;
        slot.len.store(len as u32, Relaxed);
        let next = tail.wrapping_add(1);
        // The stamp publishes the slot to a receiver watching it; the tail (ordered before
        // the load of the receiver's sleeping flag) to one about to sleep.
        slot.stamp.store(next, Release);
        ep.publish(Role::Sender, next);
        ep.mine.set(next);
        wake_sleeper(c, Role::Receiver);
        Ok(Some(out))
    }

    /// Sends raw bytes, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn send_bytes(&self, msg: &[u8]) -> Result<(), SendError> {
        done(self.send_raw(msg, Deadline::Forever))
    }

    /// Sends raw bytes if there is room now; `Ok(false)` if the channel is full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn try_send_bytes(&self, msg: &[u8]) -> Result<bool, SendError> {
        self.send_raw(msg, Deadline::Now)
    }

    /// Sends raw bytes, waiting at most `timeout` for room; `Ok(false)` if the channel stayed
    /// full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn send_bytes_timeout(&self, msg: &[u8], timeout: Duration) -> Result<bool, SendError> {
        self.send_raw(msg, Deadline::after(timeout))
    }

    /// Sends raw bytes, waiting until `deadline` at most for room; `Ok(false)` if the channel
    /// stayed full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn send_bytes_deadline(&self, msg: &[u8], deadline: Instant) -> Result<bool, SendError> {
        self.send_raw(msg, Deadline::At(deadline))
    }

    /// Prepares a wait on this end's descriptor ([`AsFd`]): `Ok(true)` if a send would not
    /// wait now (room, or the receiver gone); otherwise `Ok(false)`, and the descriptor
    /// becomes readable once the receiver frees a slot or goes. Arm again after each wake-up.
    ///
    /// # Errors
    ///
    /// The doorbell's socket could not be bound, or the channel is corrupted.
    pub fn arm(&self) -> io::Result<bool> {
        let c = &*self.ep.chan;
        // Our own index, read after `arm` has claimed the end for this process.
        self.ep.arm(Role::Sender, || {
            self.ep.mine.get().wrapping_sub(c.h().head.load(Acquire)) < c.cap as u32
        })
    }

    /// Whether the last arming could make the peer's wake-up reliable. False where
    /// `membarrier` is refused: the descriptor may then stay quiet after a message, and the
    /// waiter must poll (see [Waiting on a descriptor](self#waiting-on-a-descriptor)).
    pub fn doorbell_registered(&self) -> bool {
        self.ep.bell_fenced.get()
    }

    /// As [`crate::queue::ByteQueue`]'s: this process's own doorbell before registering it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn own_bell(&self) -> io::Result<()> {
        self.ep.own_bell()
    }

    /// Whether a send would wait forever: the channel is full and the receiver's process is
    /// dead (the blocking forms' `Disconnected`).
    pub fn is_abandoned(&self) -> bool {
        self.is_full() && self.ep.peer_gone(Role::Receiver, true)
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.ep.chan.cap as usize
    }

    /// Approximate number of messages in the channel.
    pub fn len(&self) -> usize {
        len(&self.ep.chan)
    }

    /// Whether the channel is empty (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the channel is full (approximate).
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// Keeps the channel's name after this (creating) handle is dropped.
    pub fn detach(&mut self) {
        detach(&mut self.ep);
    }
}

/// Wakes `sleeper` if it sleeps (on its peer's index): the first waker takes the flag down, so
/// a burst of messages to a sleeper that is still waking up costs one wake-up call, not one
/// each.
#[inline]
fn wake_sleeper(c: &Chan, sleeper: Role) {
    let flag = c.sleeping(sleeper);
    if flag.load(SeqCst) != 0 {
        let was = flag.swap(0, SeqCst);
        wake_flagged(c, sleeper, was);
    }
}

/// Wakes `sleeper` as its sleeping flag `was` says: on the futex (bit 0), through its
/// doorbell (bit 1).
#[cold]
fn wake_flagged(c: &Chan, sleeper: Role, was: u32) {
    if was & 1 != 0 {
        futex::wake_all(c.index(sleeper.peer()));
    }
    if was & 2 != 0 {
        let token = c.end(sleeper).bell.load(Acquire);
        if token != 0 {
            bell::ring(token);
        }
    }
}

fn len(c: &Chan) -> usize {
    let n = c
        .h()
        .tail
        .load(Relaxed)
        .wrapping_sub(c.h().head.load(Relaxed)) as i32;
    (n.max(0) as u64).min(c.cap) as usize
}

fn detach(ep: &mut Endpoint) {
    if let Some(chan) = std::sync::Arc::get_mut(&mut ep.chan) {
        chan.obj.detach();
    } else {
        // Shared with the other end of an anonymous channel, which has no name anyway.
    }
}

impl<T: Serialize> Sender<T> {
    fn encode_send(&self, msg: &T, deadline: Deadline) -> Result<bool, SendError> {
        with_scratch(|buf| {
            codec::encode(msg, buf).map_err(SendError::Failed)?;
            self.send_raw(buf, deadline)
        })
    }

    /// Sends `msg`, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] if the receiver is gone or dead; [`SendError::Failed`] if
    /// the encoded message is over the size limit or the channel is corrupted.
    pub fn send(&self, msg: &T) -> Result<(), SendError> {
        done(self.encode_send(msg, Deadline::Forever))
    }

    /// Sends `msg` if there is room now; `Ok(false)` if the channel is full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn try_send(&self, msg: &T) -> Result<bool, SendError> {
        self.encode_send(msg, Deadline::Now)
    }

    /// Sends `msg`, waiting at most `timeout` for room; `Ok(false)` if the channel stayed
    /// full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn send_timeout(&self, msg: &T, timeout: Duration) -> Result<bool, SendError> {
        self.encode_send(msg, Deadline::after(timeout))
    }

    /// Sends `msg`, waiting until `deadline` at most for room; `Ok(false)` if the channel
    /// stayed full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    pub fn send_deadline(&self, msg: &T, deadline: Instant) -> Result<bool, SendError> {
        self.encode_send(msg, Deadline::At(deadline))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.ep.release(Role::Sender);
        // The receiver sleeps on the tail word; it re-checks the gone flag when woken.
        let c = &*self.ep.chan;
        wake_flagged(c, Role::Receiver, c.h().rx_sleeping.load(SeqCst));
    }
}

impl<T> Receiver<T> {
    fn new(ep: Endpoint) -> Receiver<T> {
        Receiver {
            ep,
            _marker: PhantomData,
        }
    }

    /// Receives a message into `out`; false if the deadline passed first.
    #[inline]
    fn recv_raw(&self, out: &mut Vec<u8>, deadline: Deadline) -> Result<bool, RecvError> {
        let region = &self.ep.chan.obj.region;
        let got = self.recv_take(deadline, |at, len| region.read_to_vec(at, len, out))?;
        Ok(got.is_some())
    }

    /// Receives a message, which `take` gets as its payload's region offset and length
    /// before the slot is freed; `None` if the deadline passed first (`take` not called). An
    /// error from `take` leaves the message in the channel.
    #[inline(always)]
    fn recv_take<R>(
        &self,
        deadline: Deadline,
        take: impl FnOnce(usize, usize) -> io::Result<R>,
    ) -> Result<Option<R>, RecvError> {
        let ep = &self.ep;
        let c = &*ep.chan;
        ep.ensure(Role::Receiver).map_err(RecvError::Failed)?;
        let head = ep.mine.get();
        let (slot, payload) = c.slot(head).map_err(RecvError::Failed)?;
        let next = head.wrapping_add(1);
        let stamp = &slot.stamp;
        if stamp.load(Acquire) != next {
            // Spin on the slot itself; sleep on the tail, which the sender stores after the
            // stamp and checks the sleeping flag against. The spin reads the stamp's line
            // only: also touching the slot's next line (where a 64-byte message ends) makes
            // the sender's stores fight this reader for it, which measured slower at the
            // median and the tail, not faster.
            let stamped = || stamp.load(Acquire) == next;
            // The stamp goes before the tail, so a receiver may be one past the tail for a
            // moment: only a tail ahead of the head means a message.
            let refresh = || stamped() || (c.h().tail.load(Acquire).wrapping_sub(head) as i32) > 0;
            if !ep.wait(deadline, Role::Receiver, stamped, refresh)? {
                return Ok(None);
            }
            if !stamped() {
                let tail = c.h().tail.load(Acquire);
                return Err(RecvError::Failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "channel corrupted: {}: head {head}, tail {tail}, slot stamp {}",
                        c.obj.label(),
                        stamp.load(Relaxed)
                    ),
                )));
            }
        }
        let len = u64::from(slot.len.load(Relaxed));
        if len > c.max_msg {
            return Err(RecvError::Failed(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "channel {} corrupted: slot length {len} over the limit {}",
                    c.obj.label(),
                    c.max_msg
                ),
            )));
        }
        let out = take(payload, len as usize).map_err(RecvError::Failed)?;
        ep.publish(Role::Receiver, next);
        ep.mine.set(next);
        wake_sleeper(c, Role::Sender);
        Ok(Some(out))
    }

    /// Receives raw bytes into `buf` (replacing its contents), waiting while the channel is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<(), RecvError> {
        done(self.recv_raw(buf, Deadline::Forever))
    }

    /// Receives raw bytes into `buf` if a message is there now; `Ok(false)` if the channel is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn try_recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<bool, RecvError> {
        self.recv_raw(buf, Deadline::Now)
    }

    /// Receives raw bytes into `buf`, waiting at most `timeout`; `Ok(false)` if the channel
    /// stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn recv_bytes_into_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<bool, RecvError> {
        self.recv_raw(buf, Deadline::after(timeout))
    }

    /// Receives raw bytes into `buf`, waiting until `deadline` at most; `Ok(false)` if the
    /// channel stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn recv_bytes_into_deadline(
        &self,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<bool, RecvError> {
        self.recv_raw(buf, Deadline::At(deadline))
    }

    /// Whether a message is there to receive now.
    fn has_message(&self) -> bool {
        let c = &*self.ep.chan;
        let head = c.h().head.load(Relaxed);
        let stamped = c
            .slot(head)
            .is_ok_and(|(slot, _)| slot.stamp.load(Acquire) == head.wrapping_add(1));
        stamped || (c.h().tail.load(Acquire).wrapping_sub(head) as i32) > 0
    }

    /// Prepares a wait on this end's descriptor ([`AsFd`]): `Ok(true)` if a receive would
    /// not wait now (a message, or the sender gone); otherwise `Ok(false)`, and the
    /// descriptor becomes readable once the sender publishes a message or goes. Arm again
    /// after each wake-up.
    ///
    /// # Errors
    ///
    /// The doorbell's socket could not be bound, or the channel is corrupted.
    pub fn arm(&self) -> io::Result<bool> {
        self.ep.arm(Role::Receiver, || self.has_message())
    }

    /// Whether the last arming could make the peer's wake-up reliable. False where
    /// `membarrier` is refused: the descriptor may then stay quiet after a message, and the
    /// waiter must poll (see [Waiting on a descriptor](self#waiting-on-a-descriptor)).
    pub fn doorbell_registered(&self) -> bool {
        self.ep.bell_fenced.get()
    }

    /// As [`Sender`]'s.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn own_bell(&self) -> io::Result<()> {
        self.ep.own_bell()
    }

    /// Whether a receive would wait forever: the channel is empty and the sender's process
    /// is dead (the blocking forms' `Disconnected`).
    pub fn is_abandoned(&self) -> bool {
        !self.has_message() && self.ep.peer_gone(Role::Sender, true)
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.ep.chan.cap as usize
    }

    /// Approximate number of messages in the channel.
    pub fn len(&self) -> usize {
        len(&self.ep.chan)
    }

    /// Whether the channel is empty (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the channel's name after this (creating) handle is dropped.
    pub fn detach(&mut self) {
        detach(&mut self.ep);
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    fn recv_decode(&self, deadline: Deadline) -> Result<Option<T>, RecvError> {
        with_scratch(|buf| {
            if !self.recv_raw(buf, deadline)? {
                return Ok(None);
            }
            codec::decode(buf).map(Some).map_err(RecvError::Failed)
        })
    }

    /// Receives a message, waiting while the channel is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the channel is empty and the sender is gone or dead;
    /// [`RecvError::Failed`] if the message does not decode (it is dropped) or the channel is
    /// corrupted.
    pub fn recv(&self) -> Result<T, RecvError> {
        waited(self.recv_decode(Deadline::Forever))
    }

    /// Receives a message if one is there now; `Ok(None)` if the channel is empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn try_recv(&self) -> Result<Option<T>, RecvError> {
        self.recv_decode(Deadline::Now)
    }

    /// Receives a message, waiting at most `timeout`; `Ok(None)` if the channel stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<T>, RecvError> {
        self.recv_decode(Deadline::after(timeout))
    }

    /// Receives a message, waiting until `deadline` at most; `Ok(None)` if the channel stayed
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv`].
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Option<T>, RecvError> {
        self.recv_decode(Deadline::At(deadline))
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.ep.release(Role::Receiver);
        let c = &*self.ep.chan;
        wake_flagged(c, Role::Sender, c.h().tx_sleeping.load(SeqCst));
    }
}
