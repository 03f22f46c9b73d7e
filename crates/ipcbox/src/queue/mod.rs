//! Queues in shared memory: [`Queue`] (`multiprocessing.Queue` done right: many producers and
//! consumers, bounded, typed) and [`channel`] (one producer, one consumer, lowest latency).
//!
//! # The queue
//!
//! A [`Queue<T>`] lives in one shared-memory object: a header and a ring of variable-length
//! records. It is bounded twice, and these limits, never the ring's wrap-around, decide when
//! it is full:
//!
//! * in messages ([`Options::capacity`]);
//! * in payload bytes ([`Options::byte_capacity`]).
//!
//! Typed messages are encoded with `postcard`; [`ByteQueue`] (from [`Queue::as_bytes`]) moves
//! raw bytes. A queue is either:
//!
//! * anonymous, created before `fork` and inherited ([`Queue::new`], [`Options::anonymous`]);
//! * named, created and opened by unrelated processes ([`Queue::create`], [`Queue::open`],
//!   [`Options::named`]). An opener checks the magic number, the layout version and that the
//!   geometry fits the object.
//!
//! Every operation has a blocking form (`put`, `get`), a `try_` and a `_timeout` form, and the
//! single ones a `_deadline` form. Outcomes follow the [crate's rule](crate#outcomes): "not
//! now" (full, empty, timed out) is `Ok(false)`, `Ok(None)` or a count of 0; an `Err` is a
//! failure ([`SendError`], [`RecvError`], [`PutManyError`]).
//!
//! A blocked operation sleeps on a futex, holding no lock. A waker enters the kernel only if
//! someone sleeps, so while both sides are busy no process makes a system call.
//! [`WaitPolicy::SpinThenPark`] spins before it sleeps, for the lowest latency when both sides
//! are busy.
//!
//! # Waiting on a descriptor
//!
//! A queue handle has a file descriptor ([`AsFd`]), its *doorbell*, so that an event loop
//! (epoll, mio, tokio) or [`crate::wait()`] can wait on it with other objects:
//!
//! * [`Queue::arm`] says whether a `get` (`put`, `join`) would wait; if so, it registers the
//!   doorbell, and the descriptor becomes readable when that may have changed.
//! * After it is readable, try the operation with its `try_` form, then arm again.
//! * The doorbell is rung only by a waker that finds a waiter flagged, like a futex sleeper:
//!   while nobody waits, `put` and `get` make no system call.
//! * Fallback: a queue has room for 32 doorbells. When they are all taken
//!   ([`Queue::doorbell_registered`] is false) the waiter must poll: the `tokio` adapters and
//!   [`crate::wait()`] then re-check every 10 ms.
//! * A doorbell is an abstract Unix socket, so processes in different network namespaces
//!   cannot ring each other's: such a waiter sees news only at its periodic liveness check.
//! * After `fork`, a child's handle gets a doorbell socket of its own, under the same
//!   descriptor number, at its first `arm`: register the descriptor with an event loop after
//!   that (the `tokio` adapters see to it).
//! * A descriptor waiter learns that its peers are gone from [`Queue::is_abandoned`], which it
//!   checks now and then (the `tokio` adapters every second).
//!
//! # Closing and disconnection
//!
//! * `close()` makes every later `put` fail with `Disconnected`. Consumers drain what is left,
//!   then get `Disconnected`.
//! * A waiter also gets `Disconnected` when some other process has attached to the queue at
//!   some time and none of them is alive any more. So a consumer does not hang forever on a
//!   queue whose producers were all killed, nor a producer on a full queue whose consumers
//!   were (Python's `multiprocessing.Queue` hangs in both cases).
//! * A consumer first takes every message the dead producers committed.
//! * A process attaches when it creates or opens the queue or, for a handle inherited across
//!   `fork`, at its first operation. A queue nobody else has attached to yet is merely empty
//!   (or full).
//! * Liveness goes by PID and start time, so a zombie child or a recycled PID does not count.
//!   A sleeping waiter checks it after every 100 ms without news.
//!
//! The queue is joinable, like `JoinableQueue`:
//!
//! * each `put` counts an unfinished task;
//! * [`Queue::task_done`] finishes one (an error if more are finished than were taken);
//! * [`Queue::join`] waits until none is unfinished.
//!
//! # Crash safety
//!
//! Any participant may be `SIGKILL`ed at any instruction. What this means for messages:
//!
//! * A message whose `put` returned `Ok` is in the queue and is returned by exactly one `get`,
//!   unless the consumer that takes it dies.
//! * A `put` that did not return (its producer died) either committed the message or left no
//!   trace of it.
//! * A `get` that did not return (its consumer died) either left the message in the queue,
//!   where another consumer gets it, or took it with it: then that one message is lost. It is
//!   never delivered twice.
//! * The queue is thus *at most once* for a message in the hands of a dying consumer, like a
//!   message a consumer receives and then dies before handling. A consumer that must not lose
//!   work acknowledges with [`Queue::task_done`], and its producers re-send what
//!   [`Queue::join`] shows unfinished.
//! * Shared memory is untrusted input: every index, length and record header read from it is
//!   checked before use. A corrupted queue gives an `InvalidData` error, never undefined
//!   behaviour.
//!
//! How it holds:
//!
//! * The producers' side of the queue changes only under one lock, the consumers' side only
//!   under another. A lock survives its owner: a process that finds the owner dead takes the
//!   lock over and repairs that side ([`Queue::recoveries`] counts these repairs).
//! * Each side reads the other's totals without its lock. A stale view can only make the
//!   queue look fuller or emptier for a moment.
//! * A side commits its new totals through a redo journal, so a death at any instruction
//!   leaves either the old state or the new one, never a state in between.
//! * A process killed while others sleep cannot strand them: a sleeper looks at the queue
//!   again after every 100 ms without news, and a repair wakes everybody.
//!
//! # Batches
//!
//! [`Queue::put_many`] and [`Queue::get_many`] (and their `try_` and `_timeout` forms, and the
//! [`ByteQueue`] ones) move many messages per lock hold: one lock hold, one commit and one
//! publication of the totals per batch instead of per message. The crash guarantees above hold
//! per lock hold:
//!
//! * `put_many` puts as many messages as fit in one lock hold, commits them, and waits for
//!   room for the rest. The `try_` form stops after the first hold and returns how many it put.
//! * A producer killed inside `put_many` leaves a prefix of its messages in the queue, whole
//!   and in order: every earlier lock hold's messages, plus all or none of the current one's.
//!   Never a torn message, never a gap. An error says how many were put
//!   ([`PutManyError::sent`]).
//! * `get_many` takes up to `max` messages (at least one) in one lock hold, and stops
//!   early once it holds 256 KiB of payload, so a batch of large messages does not keep the
//!   producers waiting for all of its copies. They are consecutive in the queue's order, and
//!   the caller's once it returns.
//! * A consumer killed inside `get_many` either left all of that batch in the queue or took
//!   all of it with it: it loses at most that one batch, up to `max` messages.
//!
//! Messages from one producer's `put_many` calls interleave with other producers' only
//! between lock holds. A batch holds the lock for the copy of each of its messages, so keep
//! batches to tens or hundreds of small messages.
//!
//! # Large messages
//!
//! * [`ByteQueue::get_into_slice`] copies a message once, from the queue's memory into the
//!   caller's buffer; [`ByteQueue::get_into`] does the same into a `Vec` it reuses.
//! * [`ByteQueue::put_with`] writes a message in place and [`ByteQueue::get_with`] reads it
//!   in place, so a message can cross with no copy at all. Each runs under its side's lock:
//!   the other producers (consumers) wait while it does.
//! * A message is at most [`Options::max_message_size`] bytes, and the queue reserves memory
//!   for its byte capacity plus one such message. For larger data, put it in a
//!   [`Store`](crate::store::Store) (objects of any size, handed over without a copy) and
//!   send its [`ObjectId`](crate::store::ObjectId); the error for a message over the limit
//!   says so.
//! * The [`channel`] has the same forms: `recv_into`, `send_with`, `recv_with`.
//!
//! # Limitations
//!
//! * A live process that keeps a lock (stopped with `SIGSTOP` while holding it, or whose PID a
//!   peer wrote into the lock word) blocks the others of its side, and sleepers registering
//!   with that side:
//!   * a blocking operation for up to 10 s, then it fails with `TimedOut`;
//!   * a `_timeout` form until its deadline, then "not now";
//!   * a `try_` form for up to 20 ms, then `Failed` with `TimedOut`, naming the holder's PID.
//! * A process that writes garbage into the shared memory can make operations fail (and lose
//!   messages), not crash other processes.
//! * At most 64 processes are tracked for disconnection; beyond that, peers are not counted.
//!   Disconnection is about processes: the threads of one process are one peer.
//! * Every process using a queue must share one PID namespace (and time namespace): the locks
//!   and the disconnection check go by PID and start time.
//! * A dead lock owner whose PID a new process got passes for alive when the two start times
//!   are equal modulo 511 clock ticks: always within one tick, about once in 511 times
//!   otherwise (see the crate's Limitations).

pub(crate) mod bell;
mod codec;
mod error;
mod inplace;
mod object;
pub(crate) mod peers;
mod ring;
mod wait;

pub mod channel;

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::{PutManyError, RecvError, SendError};
pub use ring::Interest;
pub use wait::WaitPolicy;

use crate::mode::CreationMode;
use error::{done, waited};
use ring::{Geometry, Ring};
use wait::Deadline;

/// How a queue is created or opened: capacity, byte capacity, message size limit, permissions,
/// wait policy.
///
/// # Examples
///
/// ```
/// use ipcbox::queue::Options;
///
/// let q = Options::new().capacity(16).byte_capacity(4096).anonymous::<String>()?;
/// q.put(&"hi".to_string())?;
/// assert_eq!(q.get()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: u64,
    byte_capacity: Option<u64>,
    max_message: Option<u64>,
    mode: CreationMode,
    permissions: u32,
    policy: WaitPolicy,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

/// Default number of messages.
const DEFAULT_CAPACITY: u64 = 1024;
/// Default payload byte bound.
const DEFAULT_BYTES: u64 = 1 << 20;

impl Options {
    /// Capacity 1024 messages, 1 MiB of payload, messages up to the byte capacity, create
    /// exclusively, mode 0600, [`WaitPolicy::Park`].
    pub fn new() -> Options {
        Options {
            capacity: DEFAULT_CAPACITY,
            byte_capacity: None,
            max_message: None,
            mode: CreationMode::CreateExclusive,
            permissions: 0o600,
            policy: WaitPolicy::Park,
        }
    }

    /// Maximum number of messages in the queue (`maxsize`); at least 1.
    pub fn capacity(&mut self, messages: usize) -> &mut Options {
        self.capacity = messages as u64;
        self
    }

    /// Maximum total payload bytes in the queue (default 1 MiB).
    ///
    /// The queue's memory is larger: its ring keeps room for one more message of the
    /// [maximum size](Options::max_message_size), since a message that does not fit before
    /// the ring's end starts again at its beginning. A queue takes
    /// `4096 + byte capacity + max message size + 16 × capacity + 16` bytes, with both sizes
    /// rounded up to a multiple of 8, reserved in `/dev/shm` for a named queue. With the
    /// default maximum, the byte capacity, that is about twice the byte capacity; a smaller
    /// maximum message size shrinks it.
    pub fn byte_capacity(&mut self, bytes: usize) -> &mut Options {
        self.byte_capacity = Some(bytes as u64);
        self
    }

    /// Largest single message in bytes (default: the byte capacity). The queue's memory grows
    /// by this much (see [`byte_capacity`](Options::byte_capacity)).
    pub fn max_message_size(&mut self, bytes: usize) -> &mut Options {
        self.max_message = Some(bytes as u64);
        self
    }

    /// How [`Options::named`] treats an existing name (default: create exclusively).
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// Permission bits of a named queue (default `0o600`), set exactly (see
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

    fn geometry(&self) -> Geometry {
        let cap_bytes = self.byte_capacity.unwrap_or(DEFAULT_BYTES);
        Geometry {
            cap_msgs: self.capacity,
            cap_bytes,
            max_msg: self.max_message.unwrap_or(cap_bytes),
        }
    }

    /// Creates a queue in anonymous shared memory (`mmap(MAP_SHARED | MAP_ANONYMOUS)`),
    /// inherited by the children this process forks afterwards.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a capacity of 0 or sizes over the limits; the `mmap` error.
    pub fn anonymous<T>(&self) -> io::Result<Queue<T>> {
        Ok(Queue::wrap(Ring::anonymous(self.geometry(), self.policy)?))
    }

    /// Creates or opens (per [`Options::mode`]) the queue `name` in POSIX shared memory
    /// (`shm_open`, `/dev/shm/<name>`). The creator removes the name when its handle is
    /// dropped, unless [`Queue::detach`]ed; the sizes are ignored when opening.
    ///
    /// # Errors
    ///
    /// `NotFound` (opening a name that does not exist), `AlreadyExists` (creating one that
    /// does), `InvalidInput` (bad name or sizes), `InvalidData` (the object is not a queue of
    /// this layout version, or its header is corrupted).
    pub fn named<T>(&self, name: &str) -> io::Result<Queue<T>> {
        Ok(Queue::wrap(Ring::named(
            name,
            self.mode,
            self.geometry(),
            self.permissions,
            self.policy,
        )?))
    }
}

/// A bounded multi-producer multi-consumer queue of raw byte messages in shared memory.
///
/// The untyped face of a [`Queue`]; see the [module docs](self).
#[derive(Debug)]
pub struct ByteQueue {
    ring: Ring,
}

impl ByteQueue {
    /// Prepares a wait on this handle's descriptor ([`AsFd`]) for `interest`: `Ok(true)` if
    /// the operation would not wait now; otherwise `Ok(false)`, and the descriptor becomes
    /// readable once it may not (a message put, room made, work finished, the queue closed or
    /// a dead peer's lock repaired). Arm again after each wake-up: a wake-up can be spurious,
    /// and arming reads pending wake-ups so the descriptor stops being readable.
    ///
    /// This is what [`crate::wait()`] and the `tokio` adapters build on; see
    /// [Waiting on a descriptor](self#waiting-on-a-descriptor).
    ///
    /// # Errors
    ///
    /// The lock failed (corrupted queue), or the doorbell's socket could not be bound.
    pub fn arm(&self, interest: Interest) -> io::Result<bool> {
        self.ring.arm(interest)
    }

    /// Makes the doorbell this process's own (a handle inherited across `fork` gets a new
    /// socket under the same descriptor), so that the descriptor can be registered with an
    /// event loop before the first [`ByteQueue::arm`].
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn own_bell(&self) -> io::Result<()> {
        self.ring.own_bell()
    }

    /// Whether the last [`ByteQueue::arm`] registered the doorbell. False when the queue's
    /// table of doorbells was full: the descriptor may then not become readable, and the
    /// waiter must poll (see [Waiting on a descriptor](self#waiting-on-a-descriptor)).
    pub fn doorbell_registered(&self) -> bool {
        self.ring.bell_registered()
    }

    /// Whether a waiter for `interest` would wait forever: the operation would wait now, and
    /// another process attached to the queue once and none is alive (the blocking forms'
    /// `Disconnected`). A descriptor waiter checks this now and then, as a blocking call
    /// checks every 100 ms of sleep.
    pub fn is_abandoned(&self, interest: Interest) -> bool {
        self.ring.waiting_alone(interest)
    }

    /// Appends `msg`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] if the queue is closed or every other attached process is
    /// gone; [`SendError::Failed`] for a message over the size limit or a corrupted queue.
    pub fn put(&self, msg: &[u8]) -> Result<(), SendError> {
        done(self.ring.put(msg, Deadline::Forever))
    }

    /// Appends `msg` if there is room now; `Ok(false)` if the queue is full.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put`].
    pub fn try_put(&self, msg: &[u8]) -> Result<bool, SendError> {
        self.ring.put(msg, Deadline::Now)
    }

    /// Appends `msg`, waiting at most `timeout` for room; `Ok(false)` if the queue stayed
    /// full.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put`].
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<bool, SendError> {
        self.ring.put(msg, Deadline::after(timeout))
    }

    /// Appends `msg`, waiting until `deadline` at most for room; `Ok(false)` if the queue
    /// stayed full.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put`].
    pub fn put_deadline(&self, msg: &[u8], deadline: Instant) -> Result<bool, SendError> {
        self.ring.put(msg, Deadline::At(deadline))
    }

    /// Removes the oldest message into `buf` (replacing its contents), waiting while the queue
    /// is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the queue is closed (or every other attached process is
    /// gone) and empty; [`RecvError::Failed`] for a corrupted queue.
    pub fn get_into(&self, buf: &mut Vec<u8>) -> Result<(), RecvError> {
        done(self.ring.get(buf, Deadline::Forever))
    }

    /// Removes the oldest message into `buf` if there is one now; `Ok(false)` if the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn try_get_into(&self, buf: &mut Vec<u8>) -> Result<bool, RecvError> {
        self.ring.get(buf, Deadline::Now)
    }

    /// Removes the oldest message into `buf`, waiting at most `timeout` for one; `Ok(false)`
    /// if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn get_into_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<bool, RecvError> {
        self.ring.get(buf, Deadline::after(timeout))
    }

    /// Removes the oldest message into `buf`, waiting until `deadline` at most for one;
    /// `Ok(false)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn get_into_deadline(
        &self,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<bool, RecvError> {
        self.ring.get(buf, Deadline::At(deadline))
    }

    /// Removes and returns the oldest message, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn get(&self) -> Result<Vec<u8>, RecvError> {
        waited(self.get_vec(Deadline::Forever))
    }

    /// Removes and returns the oldest message if there is one now; `Ok(None)` if the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn try_get(&self) -> Result<Option<Vec<u8>>, RecvError> {
        self.get_vec(Deadline::Now)
    }

    /// Removes and returns the oldest message, waiting at most `timeout` for one; `Ok(None)`
    /// if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>, RecvError> {
        self.get_vec(Deadline::after(timeout))
    }

    /// Removes and returns the oldest message, waiting until `deadline` at most for one;
    /// `Ok(None)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`].
    pub fn get_deadline(&self, deadline: Instant) -> Result<Option<Vec<u8>>, RecvError> {
        self.get_vec(Deadline::At(deadline))
    }

    fn get_vec(&self, deadline: Deadline) -> Result<Option<Vec<u8>>, RecvError> {
        let mut buf = Vec::new();
        Ok(self.ring.get(&mut buf, deadline)?.then_some(buf))
    }

    /// Appends every message of `msgs`, in order, taking the lock once for as many as fit
    /// and waiting for room for the rest. See [Batches](self#batches) for what a crash leaves.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put`], with how many messages were put: `msgs[..sent]` is in the
    /// queue, the rest is not. A message over the size limit fails the batch at it.
    pub fn put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), PutManyError> {
        self.ring.put_many(msgs, Deadline::Forever).map(drop)
    }

    /// Appends as many of `msgs` as fit now (a prefix, in one lock hold) and returns how many;
    /// 0 if not even the first fits.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put_many`].
    pub fn try_put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<usize, PutManyError> {
        self.ring.put_many(msgs, Deadline::Now)
    }

    /// Like [`ByteQueue::put_many`], waiting at most `timeout` in all for room; returns how
    /// many were put (a prefix, all of them unless the timeout passed first).
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put_many`].
    pub fn put_many_timeout<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        timeout: Duration,
    ) -> Result<usize, PutManyError> {
        self.ring.put_many(msgs, Deadline::after(timeout))
    }

    /// Removes up to `max` of the oldest messages in one lock hold, appending each one to
    /// `out`, waiting while the queue is empty; returns how many (at least 1, or 0 for a
    /// `max` of 0). See [Batches](self#batches).
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`]; nothing is appended then.
    pub fn get_many(&self, max: usize, out: &mut Vec<Vec<u8>>) -> Result<usize, RecvError> {
        self.bytes_many(max, out, Deadline::Forever)
    }

    /// Like [`ByteQueue::get_many`] if there is a message now; 0 if the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_many`].
    pub fn try_get_many(&self, max: usize, out: &mut Vec<Vec<u8>>) -> Result<usize, RecvError> {
        self.bytes_many(max, out, Deadline::Now)
    }

    /// Like [`ByteQueue::get_many`], waiting at most `timeout` for a message; 0 if the queue
    /// stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_many`].
    pub fn get_many_timeout(
        &self,
        max: usize,
        out: &mut Vec<Vec<u8>>,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.bytes_many(max, out, Deadline::after(timeout))
    }

    fn bytes_many(
        &self,
        max: usize,
        out: &mut Vec<Vec<u8>>,
        deadline: Deadline,
    ) -> Result<usize, RecvError> {
        self.flat_many(max, deadline, |buf, ends| {
            let mut from = 0;
            for &end in ends {
                out.push(buf[from..end].to_vec());
                from = end;
            }
            Ok(ends.len())
        })
    }

    /// Takes up to `max` messages into a flat scratch buffer and hands it (with the end offset
    /// of each message) to `f`, after the lock is released; 0 without calling `f` if there
    /// is none before the deadline.
    fn flat_many(
        &self,
        max: usize,
        deadline: Deadline,
        f: impl FnOnce(&[u8], &[usize]) -> Result<usize, RecvError>,
    ) -> Result<usize, RecvError> {
        if max == 0 {
            return f(&[], &[]);
        }
        with_scratch(|buf| {
            buf.clear();
            let mut ends = Vec::with_capacity(max.min(1024));
            if !self.ring.get_many(max, buf, &mut ends, deadline)? {
                return Ok(0);
            }
            f(buf, &ends)
        })
    }
}

/// The doorbell's socket: readable after a ring; see [`ByteQueue::arm`].
impl AsFd for ByteQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.bell_fd()
    }
}

/// The doorbell's socket: readable after a ring; see [`ByteQueue::arm`].
impl<T> AsFd for Queue<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.bytes.as_fd()
    }
}

/// A bounded multi-producer multi-consumer queue of `T` in shared memory, like Python's
/// `multiprocessing.Queue(maxsize)` and `JoinableQueue`; see the [module docs](self) for the
/// design and what survives a crash.
///
/// # Examples
///
/// A queue of capacity 1 between a parent and a forked child:
///
/// ```
/// use ipcbox::queue::Queue;
///
/// let q: Queue<(u32, String)> = Queue::new(1)?;
/// q.put(&(1, "one".into()))?;
/// assert!(q.is_full());
/// assert_eq!(q.get()?, (1, "one".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    bytes: ByteQueue,
    _marker: PhantomData<fn(T) -> T>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::new()),
    })
}

impl<T> Queue<T> {
    fn wrap(ring: Ring) -> Queue<T> {
        Queue {
            bytes: ByteQueue { ring },
            _marker: PhantomData,
        }
    }

    /// A queue of at most `capacity` messages in anonymous shared memory, inherited across
    /// `fork` (other sizes as [`Options::new`]).
    ///
    /// # Errors
    ///
    /// As [`Options::anonymous`].
    pub fn new(capacity: usize) -> io::Result<Queue<T>> {
        Options::new().capacity(capacity).anonymous()
    }

    /// Creates the named queue `name` of at most `capacity` messages (fails if it exists).
    ///
    /// # Errors
    ///
    /// As [`Options::named`].
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, capacity: usize) -> io::Result<Queue<T>> {
        Options::new().capacity(capacity).named(name)
    }

    /// Opens the existing named queue `name`.
    ///
    /// # Errors
    ///
    /// As [`Options::named`]; `NotFound` if there is no such name.
    pub fn open(name: &str) -> io::Result<Queue<T>> {
        Options::new().mode(CreationMode::Open).named(name)
    }

    /// The raw byte interface of this queue.
    pub fn as_bytes(&self) -> &ByteQueue {
        &self.bytes
    }

    /// The number of messages in the queue; approximate, since others change it concurrently.
    #[doc(alias = "qsize")]
    pub fn len(&self) -> usize {
        self.bytes.ring.len() as usize
    }

    /// Whether the queue holds no message (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds its maximum number of messages (approximate; a large message
    /// can also be refused by the byte bound when this is false).
    pub fn is_full(&self) -> bool {
        self.len() as u64 >= self.bytes.ring.geometry().cap_msgs
    }

    /// Payload bytes in the queue (approximate).
    pub fn used_bytes(&self) -> usize {
        self.bytes.ring.used_bytes() as usize
    }

    /// Maximum number of messages.
    pub fn capacity(&self) -> usize {
        self.bytes.ring.geometry().cap_msgs as usize
    }

    /// Maximum total payload bytes.
    pub fn byte_capacity(&self) -> usize {
        self.bytes.ring.geometry().cap_bytes as usize
    }

    /// Largest single encoded message in bytes.
    pub fn max_message_size(&self) -> usize {
        self.bytes.ring.geometry().max_msg as usize
    }

    /// Closes the queue for every process: later `put`s fail with `Disconnected`, `get`s
    /// drain what is left and then fail with `Disconnected`. Wakes everyone waiting.
    ///
    /// # Errors
    ///
    /// The lock failed (corrupted queue).
    pub fn close(&self) -> io::Result<()> {
        self.bytes.ring.close()
    }

    /// Whether [`Queue::close`] was called (by any process).
    pub fn is_closed(&self) -> bool {
        self.bytes.ring.is_closed()
    }

    /// Marks one message taken from the queue as handled (`JoinableQueue.task_done`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if it is called more times than messages were taken out.
    pub fn task_done(&self) -> io::Result<()> {
        self.bytes.ring.task_done()
    }

    /// Waits until every message ever put has been taken and marked done with
    /// [`Queue::task_done`] (`JoinableQueue.join`).
    ///
    /// A message taken by a consumer that died before its `task_done` stays unfinished, so
    /// after a consumer crash use [`Queue::join_timeout`] (or count the work yourself).
    ///
    /// # Errors
    ///
    /// `BrokenPipe` if no other attached process is alive to finish the work.
    pub fn join(&self) -> io::Result<()> {
        done(self.bytes.ring.join(Deadline::Forever)).map_err(|e| self.join_error(e))
    }

    /// Like [`Queue::join`] for at most `timeout`; `Ok(false)` if work is still unfinished
    /// then.
    ///
    /// # Errors
    ///
    /// As [`Queue::join`].
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.bytes
            .ring
            .join(Deadline::after(timeout))
            .map_err(|e| self.join_error(e))
    }

    fn join_error(&self, e: RecvError) -> io::Error {
        match e {
            RecvError::Disconnected => io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "no other process attached to queue {} is alive to finish its work",
                    self.name().unwrap_or("(anonymous)")
                ),
            ),
            RecvError::Failed(e) => e,
        }
    }

    /// As [`ByteQueue::arm`].
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::arm`].
    pub fn arm(&self, interest: Interest) -> io::Result<bool> {
        self.bytes.arm(interest)
    }

    /// As [`ByteQueue::doorbell_registered`].
    pub fn doorbell_registered(&self) -> bool {
        self.bytes.doorbell_registered()
    }

    /// As [`ByteQueue::is_abandoned`].
    pub fn is_abandoned(&self, interest: Interest) -> bool {
        self.bytes.is_abandoned(interest)
    }

    /// The queue's shared-memory name (`/name`), if it has one.
    pub fn name(&self) -> Option<&str> {
        self.bytes.ring.name()
    }

    /// Keeps the name after this (creating) handle is dropped; someone must remove it.
    pub fn detach(&mut self) {
        self.bytes.ring.detach_name();
    }

    /// How many times a process found the owner of a lock (the producers' or the consumers')
    /// dead and repaired its side of the queue.
    pub fn recoveries(&self) -> u64 {
        self.bytes.ring.recoveries()
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    fn encode_put(&self, msg: &T, deadline: Deadline) -> Result<bool, SendError> {
        with_scratch(|buf| {
            codec::encode(msg, buf).map_err(SendError::Failed)?;
            self.bytes.ring.put(buf, deadline)
        })
    }

    fn get_decode(&self, deadline: Deadline) -> Result<Option<T>, RecvError> {
        with_scratch(|buf| {
            if !self.bytes.ring.get(buf, deadline)? {
                return Ok(None);
            }
            codec::decode(buf).map(Some).map_err(RecvError::Failed)
        })
    }

    /// Appends `msg`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] if the queue is closed or every other attached process is
    /// gone; [`SendError::Failed`] if the encoded message is over the size limit or the queue
    /// is corrupted.
    pub fn put(&self, msg: &T) -> Result<(), SendError> {
        done(self.encode_put(msg, Deadline::Forever))
    }

    /// Appends `msg` if there is room now; `Ok(false)` if the queue is full.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    pub fn try_put(&self, msg: &T) -> Result<bool, SendError> {
        self.encode_put(msg, Deadline::Now)
    }

    /// Appends `msg`, waiting at most `timeout` for room; `Ok(false)` if the queue stayed
    /// full.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    pub fn put_timeout(&self, msg: &T, timeout: Duration) -> Result<bool, SendError> {
        self.encode_put(msg, Deadline::after(timeout))
    }

    /// Appends `msg`, waiting until `deadline` at most for room; `Ok(false)` if the queue
    /// stayed full.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`].
    pub fn put_deadline(&self, msg: &T, deadline: Instant) -> Result<bool, SendError> {
        self.encode_put(msg, Deadline::At(deadline))
    }

    /// Encodes `msgs` into one scratch buffer and puts them as [`ByteQueue::put_many`] does;
    /// an encoding error stops the batch at that message.
    fn encode_put_many(&self, msgs: &[T], deadline: Deadline) -> Result<usize, PutManyError> {
        with_scratch(|buf| {
            buf.clear();
            let mut ends = Vec::with_capacity(msgs.len());
            let mut failed = None;
            for msg in msgs {
                let start = buf.len();
                if let Err(e) = crate::codec::Postcard::encode_to(msg, buf) {
                    buf.truncate(start);
                    failed = Some(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "encode {} message {} of the batch: {}",
                            std::any::type_name::<T>(),
                            ends.len(),
                            e.into_inner()
                        ),
                    ));
                    break;
                }
                ends.push(buf.len());
            }
            let mut slices = Vec::with_capacity(ends.len());
            let mut from = 0;
            for &end in &ends {
                slices.push(&buf[from..end]);
                from = end;
            }
            let sent = self.bytes.ring.put_many(&slices, deadline)?;
            match failed {
                Some(e) if sent == slices.len() => Err(PutManyError {
                    sent,
                    error: SendError::Failed(e),
                }),
                _ => Ok(sent),
            }
        })
    }

    /// Takes up to `max` messages and decodes them into `out`.
    fn get_decode_many(
        &self,
        max: usize,
        out: &mut Vec<T>,
        deadline: Deadline,
    ) -> Result<usize, RecvError> {
        self.bytes.flat_many(max, deadline, |buf, ends| {
            let mut from = 0;
            let mut failed = None;
            for &end in ends {
                match codec::decode(&buf[from..end]) {
                    Ok(msg) => out.push(msg),
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
                from = end;
            }
            match failed {
                None => Ok(ends.len()),
                Some(e) => Err(RecvError::Failed(e)),
            }
        })
    }

    /// Appends every message of `msgs`, in order, taking the lock once for as many as fit
    /// and waiting for room for the rest (like Python's feeder thread, without the thread).
    /// See [Batches](self#batches) for what a crash leaves.
    ///
    /// # Errors
    ///
    /// As [`Queue::put`], with how many messages were put: `msgs[..sent]` is in the queue,
    /// the rest is not. A message that does not encode or is over the size limit fails the
    /// batch at it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ipcbox::queue::Queue;
    ///
    /// let q: Queue<u32> = Queue::new(100)?;
    /// q.put_many(&[1, 2, 3])?;
    /// let mut got = Vec::new();
    /// assert_eq!(q.get_many(10, &mut got)?, 3);
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&self, msgs: &[T]) -> Result<(), PutManyError> {
        self.encode_put_many(msgs, Deadline::Forever).map(drop)
    }

    /// Appends as many of `msgs` as fit now (a prefix, in one lock hold) and returns how many;
    /// 0 if not even the first fits.
    ///
    /// # Errors
    ///
    /// As [`Queue::put_many`].
    pub fn try_put_many(&self, msgs: &[T]) -> Result<usize, PutManyError> {
        self.encode_put_many(msgs, Deadline::Now)
    }

    /// Like [`Queue::put_many`], waiting at most `timeout` in all for room; returns how many
    /// were put (a prefix, all of them unless the timeout passed first).
    ///
    /// # Errors
    ///
    /// As [`Queue::put_many`].
    pub fn put_many_timeout(&self, msgs: &[T], timeout: Duration) -> Result<usize, PutManyError> {
        self.encode_put_many(msgs, Deadline::after(timeout))
    }

    /// Removes up to `max` of the oldest messages in one lock hold, appending them to `out` in
    /// order, waiting while the queue is empty; returns how many (at least 1, or 0 for a `max`
    /// of 0). See [Batches](self#batches).
    ///
    /// # Errors
    ///
    /// As [`Queue::get`]. If some messages of the batch do not decode as `T`, they are
    /// dropped, the others are still appended to `out`, and the first decoding error is
    /// returned.
    pub fn get_many(&self, max: usize, out: &mut Vec<T>) -> Result<usize, RecvError> {
        self.get_decode_many(max, out, Deadline::Forever)
    }

    /// Like [`Queue::get_many`] if there is a message now; 0 if the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_many`].
    pub fn try_get_many(&self, max: usize, out: &mut Vec<T>) -> Result<usize, RecvError> {
        self.get_decode_many(max, out, Deadline::Now)
    }

    /// Like [`Queue::get_many`], waiting at most `timeout` for a message; 0 if the queue
    /// stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Queue::get_many`].
    pub fn get_many_timeout(
        &self,
        max: usize,
        out: &mut Vec<T>,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.get_decode_many(max, out, Deadline::after(timeout))
    }

    /// Removes and returns the oldest message, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the queue is closed (or every other attached process
    /// is gone) and empty; [`RecvError::Failed`] if the message does not decode as `T` (it is
    /// dropped; the queue stays usable) or the queue is corrupted.
    pub fn get(&self) -> Result<T, RecvError> {
        waited(self.get_decode(Deadline::Forever))
    }

    /// Removes and returns the oldest message if there is one now; `Ok(None)` if the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn try_get(&self) -> Result<Option<T>, RecvError> {
        self.get_decode(Deadline::Now)
    }

    /// Removes and returns the oldest message, waiting at most `timeout` for one; `Ok(None)`
    /// if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, RecvError> {
        self.get_decode(Deadline::after(timeout))
    }

    /// Removes and returns the oldest message, waiting until `deadline` at most for one;
    /// `Ok(None)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn get_deadline(&self, deadline: Instant) -> Result<Option<T>, RecvError> {
        self.get_decode(Deadline::At(deadline))
    }
}
