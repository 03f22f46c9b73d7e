//! The multi-producer multi-consumer byte ring behind [`Queue`](super::Queue): two locks that
//! survive their owner's death (one for the producers' side, one for the consumers'; see
//! [`PidLock`]), a redo journal per side,
//! futex words with waiter bits, and a table of attached processes. See the module docs of
//! [`queue`](super) for the crash-safety argument.
//!
//! Each side publishes three totals on a cache line of its own: its ring position (the tail
//! for producers, the head for consumers), the messages and the payload bytes it has moved
//! since the queue was made. A side changes its totals only under its own lock and reads the
//! other side's without a lock. Totals only grow, so a stale or half-updated view of the
//! other side is a view of an earlier moment: it can make a queue look fuller or emptier than
//! it is for a moment, never give out space that is still in use or a record not yet written.
//! With one producer and one consumer neither lock is ever contended: each stays in its
//! owner's cache, and a message costs the lines it is written into and one published total.

use std::io;
use std::sync::atomic::{compiler_fence, AtomicU32, AtomicU64, Ordering::*};

use super::error::Stop;
use super::object::{self, Object};
use super::peers::{self, Table};
use super::wait::{Deadline, WaitPolicy};
use crate::mode::CreationMode;
use crate::sync::pid_lock::{Acquired, Patience, PidLock};
use crate::sys::futex;
use crate::sys::queue::Region;

const MAGIC: u64 = u64::from_le_bytes(*b"IPCBQUE\x01");
const VERSION: u32 = 6;
const READY: u32 = 0x5245_4459;

// Layout (byte offsets). Geometry first, written once by the creator before READY.
const O_MAGIC: usize = 0;
const O_VERSION: usize = 8;
const O_READY: usize = 12;
const O_CAP_MSGS: usize = 16;
const O_CAP_BYTES: usize = 24;
const O_RING: usize = 32;
const O_MAX_MSG: usize = 40;
const O_DATA_OFF: usize = 48;

/// Where one side's words live: its lock word and the journal's valid flag (one line), the
/// journal's new totals (the next line), and the published totals (a line of their own, the
/// only one the other side reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Side {
    lock: usize,
    j_valid: usize,
    journal: usize,
    totals: usize,
    name: &'static str,
}

/// Offsets within a set of totals (published or in the journal).
const T_POS: usize = 0;
const T_MSGS: usize = 8;
const T_BYTES: usize = 16;

const PRODUCERS: Side = Side {
    lock: 64,
    j_valid: 72,
    journal: 128,
    totals: 192,
    name: "producer",
};
const CONSUMERS: Side = Side {
    lock: 256,
    j_valid: 264,
    journal: 320,
    totals: 384,
    name: "consumer",
};
// Rarely written: closed flag, recoveries, processes that ever attached.
const O_CLOSED: usize = 448;
const O_RECOVERIES: usize = 456;
const O_ATTACHED_EVER: usize = 464;
// Messages finished with `task_done` (written by consumers, read by `join`).
const O_DONE: usize = 512;
// Futex words (each on its own cache line): bit 0 = someone sleeps, the rest a sequence.
const O_NOT_EMPTY: usize = 576;
const O_NOT_FULL: usize = 640;
const O_ALL_DONE: usize = 704;
// Attached processes: SLOTS x (pid, start time, handles).
const O_PEERS: usize = 768;
const SLOTS: usize = 64;
const DATA_OFF: usize = 4096;
const _: () = assert!(
    PRODUCERS.j_valid + 8 <= PRODUCERS.journal
        && CONSUMERS.j_valid + 8 <= CONSUMERS.journal
        && PRODUCERS.totals + 24 <= CONSUMERS.lock
        && CONSUMERS.totals + 24 <= O_CLOSED
        && O_PEERS + SLOTS * 24 <= DATA_OFF
        && DATA_OFF % 64 == 0
);

const TAG_RECORD: u64 = 0xA5 << 56;
const TAG_SKIP: u64 = 0x5A << 56;
const TAG_MASK: u64 = 0xFF << 56;

/// How a side's lock waits: compare-and-swap rounds with a back-off (about 150 pause
/// instructions in all, a few microseconds, longer than any critical section), then 10 ms
/// sleeps with the owner's life checked after each; a live owner holding it for 10 s (stopped,
/// say) makes the operation fail with `TimedOut`.
const LOCK_PATIENCE: Patience = Patience {
    spins: 12,
    slice: std::time::Duration::from_millis(10),
    limit: std::time::Duration::from_secs(10),
};
/// How long a `try_` operation waits for a lock a live process holds: far longer than any
/// lock hold (a copy and a few stores), far shorter than a stopped holder.
const TRY_LOCK_LIMIT: std::time::Duration = std::time::Duration::from_millis(20);
/// Under [`WaitPolicy::SpinThenPark`]: about 4000 pause instructions, some tens of
/// microseconds, before sleeping.
const SPIN_LOCK_PATIENCE: Patience = Patience {
    spins: 256,
    ..LOCK_PATIENCE
};
/// A producer spinning on a full queue reads the consumers' totals once every two pauses per
/// message of capacity (a pause is some 30 ns here), within these bounds: while a full queue
/// holds many messages, its consumers have work for a while, and every read of their line
/// makes their next commit wait for it to come back.
const FULL_POLL_MIN: u64 = 4;
const FULL_POLL_MAX: u64 = 256;
/// Largest message count, byte bound and message size a queue accepts.
pub(crate) const MAX_CAPACITY: u64 = 1 << 32;
pub(crate) const MAX_BYTES: u64 = 1 << 40;
/// Largest ring position and total a valid header holds.
const MAX_POSITION: u64 = 1 << 62;

fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

fn corrupted(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("queue header corrupted: {what}"),
    )
}

/// One side's totals: its ring position and the messages and payload bytes it has moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    pos: u64,
    msgs: u64,
    bytes: u64,
}

/// Sizes chosen by the creator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) cap_msgs: u64,
    pub(crate) cap_bytes: u64,
    pub(crate) max_msg: u64,
}

impl Geometry {
    /// Physical ring size: room for `cap_bytes` of payload in `cap_msgs` records with their
    /// headers and padding, plus one wrap-around gap; so the limits, not the ring, say "full".
    fn ring(&self) -> u64 {
        align8(self.cap_bytes + 16 * self.cap_msgs + 8 + align8(self.max_msg) + 8)
    }

    pub(crate) fn check(&self) -> io::Result<()> {
        let bad = |m: String| Err(crate::error::invalid_input(m));
        if self.cap_msgs == 0 {
            return bad("queue capacity must be at least 1 message, got 0".into());
        }
        if self.cap_msgs > MAX_CAPACITY {
            return bad(format!(
                "queue capacity {} messages over the limit {MAX_CAPACITY}",
                self.cap_msgs
            ));
        }
        if self.cap_bytes == 0 || self.cap_bytes > MAX_BYTES {
            return bad(format!(
                "queue byte capacity {} must be 1..={MAX_BYTES}",
                self.cap_bytes
            ));
        }
        if self.max_msg == 0 || self.max_msg > self.cap_bytes || self.max_msg > u32::MAX as u64 {
            return bad(format!(
                "maximum message size {} must be 1..={} (the byte capacity, at most 4 GiB)",
                self.max_msg, self.cap_bytes
            ));
        }
        Ok(())
    }
}

/// An attached MPMC byte ring.
#[derive(Debug)]
pub(crate) struct Ring {
    obj: Object,
    geo: Geometry,
    ring: u64,
    policy: WaitPolicy,
    /// Fork generation this handle is attached in (`u64::MAX`: not attached).
    attached_gen: AtomicU64,
    my_pid: AtomicU64,
    my_start: AtomicU64,
    /// The consumers' totals as this handle last read them (position, messages, bytes).
    /// Totals only grow, so an old copy only makes the queue look fuller: producers use it
    /// until it says "full" and only then read the consumers' line again, which the
    /// consumers keep writing.
    seen_consumers: [AtomicU64; 3],
    /// The producers' position as this handle last read it (acquire; stored with release,
    /// so a thread using it also sees the records before it): consumers read the producers'
    /// line again only once they have caught up with it.
    seen_tail: AtomicU64,
}

/// What a successful locked operation did, for the wakes to make after unlocking.
#[derive(Clone, Copy)]
struct Wakes {
    not_empty: bool,
    not_full: bool,
    all_done: bool,
}

impl Wakes {
    const NONE: Wakes = Wakes {
        not_empty: false,
        not_full: false,
        all_done: false,
    };
}

/// A side's lock held by [`Ring::run`]: unlocked when dropped, so a panic in the operation
/// does not leave the side locked for as long as this process lives.
struct Held<'r> {
    ring: &'r Ring,
    side: Side,
    repaired: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.ring.unlock(self.side, self.repaired);
    }
}

impl Ring {
    pub(crate) fn anonymous(geo: Geometry, policy: WaitPolicy) -> io::Result<Ring> {
        geo.check()?;
        let obj = Object::anonymous(DATA_OFF + geo.ring() as usize)?;
        let ring = Ring::new(obj, geo, policy);
        ring.init()?;
        ring.attach()?;
        Ok(ring)
    }

    pub(crate) fn named(
        name: &str,
        mode: CreationMode,
        geo: Geometry,
        permissions: u32,
        policy: WaitPolicy,
    ) -> io::Result<Ring> {
        if mode != CreationMode::Open {
            geo.check()?;
        }
        // Opening ignores the geometry (the object's own is validated), so an absurd one must
        // not even be computed: its ring size could overflow.
        let len = if mode == CreationMode::Open {
            0
        } else {
            DATA_OFF + geo.ring() as usize
        };
        let (obj, created) = Object::named(name, mode, len, permissions)?;
        let ring = if created {
            let ring = Ring::new(obj, geo, policy);
            ring.init()?;
            ring
        } else {
            Ring::validate(obj, policy)?
        };
        ring.attach()?;
        Ok(ring)
    }

    fn new(obj: Object, geo: Geometry, policy: WaitPolicy) -> Ring {
        Ring {
            obj,
            ring: geo.ring(),
            geo,
            policy,
            attached_gen: AtomicU64::new(u64::MAX),
            my_pid: AtomicU64::new(0),
            my_start: AtomicU64::new(0),
            seen_consumers: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            seen_tail: AtomicU64::new(0),
        }
    }

    fn r(&self) -> &Region {
        &self.obj.region
    }
    fn u64(&self, off: usize) -> &AtomicU64 {
        self.r().u64_at(off)
    }
    fn u32(&self, off: usize) -> &AtomicU32 {
        self.r().u32_at(off)
    }

    fn init(&self) -> io::Result<()> {
        let r = self.r();
        r.u64_at(O_CAP_MSGS).store(self.geo.cap_msgs, Relaxed);
        r.u64_at(O_CAP_BYTES).store(self.geo.cap_bytes, Relaxed);
        r.u64_at(O_RING).store(self.ring, Relaxed);
        r.u64_at(O_MAX_MSG).store(self.geo.max_msg, Relaxed);
        r.u64_at(O_DATA_OFF).store(DATA_OFF as u64, Relaxed);
        r.u32_at(O_VERSION).store(VERSION, Relaxed);
        r.u64_at(O_MAGIC).store(MAGIC, Relaxed);
        r.u32_at(O_READY).store(READY, Release);
        Ok(())
    }

    /// Checks an opened object's layout against this build's and reads its geometry.
    fn validate(obj: Object, policy: WaitPolicy) -> io::Result<Ring> {
        let r = &obj.region;
        let label = obj.label().to_owned();
        if r.len() < DATA_OFF {
            return Err(corrupted(format_args!(
                "{label} is {} bytes, smaller than a queue header",
                r.len()
            )));
        }
        object::wait_ready(&format!("queue {label}"), || {
            r.u32_at(O_READY).load(Acquire) == READY
        })?;
        let magic = r.u64_at(O_MAGIC).load(Relaxed);
        let version = r.u32_at(O_VERSION).load(Relaxed);
        if magic != MAGIC || version != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{label} is not an ipcbox queue of layout version {VERSION} (magic {magic:#x}, version {version})"),
            ));
        }
        let geo = Geometry {
            cap_msgs: r.u64_at(O_CAP_MSGS).load(Relaxed),
            cap_bytes: r.u64_at(O_CAP_BYTES).load(Relaxed),
            max_msg: r.u64_at(O_MAX_MSG).load(Relaxed),
        };
        geo.check()
            .map_err(|e| corrupted(format_args!("{label}: {e}")))?;
        let ring = r.u64_at(O_RING).load(Relaxed);
        if ring != geo.ring()
            || r.u64_at(O_DATA_OFF).load(Relaxed) != DATA_OFF as u64
            || DATA_OFF as u64 + ring > r.len() as u64
        {
            return Err(corrupted(format_args!(
                "{label}: ring of {ring} bytes does not fit its {} byte object",
                r.len()
            )));
        }
        Ok(Ring::new(obj, geo, policy))
    }

    pub(crate) fn geometry(&self) -> Geometry {
        self.geo
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.obj.name.as_deref()
    }

    pub(crate) fn detach_name(&mut self) {
        self.obj.detach();
    }

    fn peers(&self) -> Table<'_> {
        Table {
            slots: (0..SLOTS)
                .map(|i| {
                    let b = O_PEERS + i * 24;
                    [self.u64(b), self.u64(b + 8), self.u64(b + 16)]
                })
                .collect(),
        }
    }

    /// Registers this process as attached, once per handle and process (again after fork).
    /// The table is kept under the producers' lock.
    fn attach(&self) -> io::Result<()> {
        let gen = crate::sys::queue::fork_generation();
        if self.attached_gen.load(Relaxed) == gen {
            return Ok(());
        }
        let me = peers::me();
        let died = self.lock(PRODUCERS)?;
        if self.peers().attach(me.0, me.1) {
            self.u64(O_ATTACHED_EVER).fetch_add(1, Relaxed);
        }
        self.unlock(PRODUCERS, died);
        self.my_pid.store(me.0, Relaxed);
        self.my_start.store(me.1, Relaxed);
        self.attached_gen.store(gen, Relaxed);
        Ok(())
    }

    fn pid_lock(&self, side: Side) -> PidLock<'_> {
        PidLock::new(self.u32(side.lock))
    }

    /// Locks `side`, repairing its totals if the previous owner died. Returns whether a
    /// repair was made (then the unlock wakes everybody, since the dead owner may have owed a
    /// wake).
    fn lock(&self, side: Side) -> io::Result<bool> {
        self.lock_until(side, Deadline::Never)
    }

    /// [`Ring::lock`] for an operation that gives up at `deadline`: a live holder is waited
    /// for only as long as the deadline allows (a `try_` form: [`TRY_LOCK_LIMIT`]), and never
    /// longer than the lock's own patience.
    fn lock_until(&self, side: Side, deadline: Deadline) -> io::Result<bool> {
        let mut patience = match self.policy {
            WaitPolicy::Park => LOCK_PATIENCE,
            // A spinning caller would rather keep trying than pay a futex sleep and wake-up
            // when the holder is merely slow (preempted on a busy machine).
            WaitPolicy::SpinThenPark(_) => SPIN_LOCK_PATIENCE,
        };
        patience.limit = match deadline {
            Deadline::Never => patience.limit,
            Deadline::Now => TRY_LOCK_LIMIT.min(patience.limit),
            Deadline::At(t) => t
                .saturating_duration_since(std::time::Instant::now())
                .min(patience.limit),
        };
        let what = || format!("queue {}, {}s' side", self.obj.label(), side.name);
        match self.pid_lock(side).lock(patience, &what)? {
            Acquired::Clean => Ok(false),
            Acquired::OwnerDied => {
                // Roll the journal forward if the dead owner was inside a commit: the new
                // totals are complete once the valid flag is set, and applying them is
                // idempotent.
                if self.u64(side.j_valid).load(Relaxed) == 1 {
                    self.apply_journal(side);
                }
                self.u64(O_RECOVERIES).fetch_add(1, Relaxed);
                Ok(true)
            }
        }
    }

    fn unlock(&self, side: Side, repaired: bool) {
        self.pid_lock(side).unlock();
        if repaired {
            for w in [O_NOT_EMPTY, O_NOT_FULL, O_ALL_DONE] {
                self.u32(w).fetch_add(2, SeqCst);
                futex::wake_all(self.u32(w));
            }
        }
    }

    /// Copies the journal's totals to the published ones, the position last: a reader that
    /// sees the new position (acquire) sees the records and counts before it.
    fn apply_journal(&self, side: Side) {
        let j = |t: usize| self.u64(side.journal + t).load(Relaxed);
        let (pos, msgs, bytes) = (j(T_POS), j(T_MSGS), j(T_BYTES));
        self.u64(side.totals + T_MSGS).store(msgs, Release);
        self.u64(side.totals + T_BYTES).store(bytes, Release);
        self.u64(side.totals + T_POS).store(pos, Release);
        compiler_fence(SeqCst);
        self.u64(side.j_valid).store(0, Relaxed);
    }

    /// Commits new totals of `side` (its lock held) so that a death at any instruction leaves
    /// either the old totals (journal not yet valid) or the new ones (journal valid: the next
    /// locker rolls it forward). Compiler fences keep the stores in program order; x86 keeps
    /// them in that order for other cores, and the next locker's lock acquisition orders them
    /// for it on any architecture. Each published total only grows, so another side reading
    /// them half-applied sees some of the new values and some of the old, all of them true.
    fn commit(&self, side: Side, new: Totals) {
        for (t, v) in [(T_POS, new.pos), (T_MSGS, new.msgs), (T_BYTES, new.bytes)] {
            self.u64(side.journal + t).store(v, Relaxed);
        }
        compiler_fence(SeqCst);
        self.u64(side.j_valid).store(1, Relaxed);
        compiler_fence(SeqCst);
        self.apply_journal(side);
    }

    /// The published totals of `side`, position first: whatever counts are read after it are
    /// at least as recent.
    fn totals(&self, side: Side) -> Totals {
        let pos = self.u64(side.totals + T_POS).load(Acquire);
        Totals {
            pos,
            msgs: self.u64(side.totals + T_MSGS).load(Acquire),
            bytes: self.u64(side.totals + T_BYTES).load(Acquire),
        }
    }

    /// Reads both sides' totals, the consumers' first (so the producers' read after them
    /// are at least as recent, and a consumer is never seen past the producers), and checks
    /// them.
    fn both(&self) -> io::Result<(Totals, Totals)> {
        let c = self.totals(CONSUMERS);
        let p = self.totals(PRODUCERS);
        self.check(&p, &c)?;
        Ok((p, c))
    }

    /// Checks a view of both sides: positions only grow (2^62 bytes take centuries to
    /// pass), a consumer is never past the producers, and the space between them fits the
    /// ring. Bounding them keeps the arithmetic on them from overflowing.
    fn check(&self, p: &Totals, c: &Totals) -> io::Result<()> {
        let sane = |t: &Totals| {
            t.pos <= MAX_POSITION
                && t.pos % 8 == 0
                && t.msgs <= MAX_POSITION
                && t.bytes <= MAX_POSITION
        };
        if sane(p)
            && sane(c)
            && c.pos <= p.pos
            && p.pos - c.pos <= self.ring
            && c.msgs <= p.msgs
            && c.bytes <= p.bytes
        {
            return Ok(());
        }
        Err(corrupted(format_args!(
            "{}: producers at {} ({} messages, {} bytes), consumers at {} ({} messages, {} \
             bytes), ring {}",
            self.obj.label(),
            p.pos,
            p.msgs,
            p.bytes,
            c.pos,
            c.msgs,
            c.bytes,
            self.ring
        )))
    }

    /// The consumers' totals as this handle last saw them.
    fn seen_consumers(&self) -> Totals {
        // Acquire, paired with the release below: a thread using another's view of the
        // consumers also sees their copying-out done before it (so it may write over it).
        let [pos, msgs, bytes] = &self.seen_consumers;
        Totals {
            pos: pos.load(Acquire),
            msgs: msgs.load(Acquire),
            bytes: bytes.load(Acquire),
        }
    }

    /// Reads the consumers' totals afresh and remembers them.
    fn refresh_consumers(&self) -> Totals {
        let c = self.totals(CONSUMERS);
        let [pos, msgs, bytes] = &self.seen_consumers;
        pos.store(c.pos, Release);
        msgs.store(c.msgs, Release);
        bytes.store(c.bytes, Release);
        c
    }

    fn data(&self, pos: u64) -> usize {
        DATA_OFF + pos as usize
    }

    /// Where a record of `len` payload bytes goes after the producers' totals `p`: the ring
    /// position it starts at and the position after it, or `None` if the queue (seen with the
    /// consumers at `c`) has no room for it. The lock-free "full" check uses the same
    /// arithmetic as `put`, so the two never disagree on one view of the totals.
    /// `off` is `p.pos`'s offset in the ring (see [`Ring::offset`]).
    fn place(&self, p: &Totals, off: u64, c: &Totals, len: u64) -> Option<(u64, u64)> {
        let queued = p.msgs.wrapping_sub(c.msgs);
        let queued_bytes = p.bytes.wrapping_sub(c.bytes);
        if queued >= self.geo.cap_msgs || queued_bytes.saturating_add(len) > self.geo.cap_bytes {
            return None;
        }
        let rec = 8 + align8(len);
        let to_end = self.ring - off;
        let start = if rec > to_end { p.pos + to_end } else { p.pos };
        let end = start + rec;
        (end.wrapping_sub(c.pos) <= self.ring).then_some((start, end))
    }

    /// A position's offset in the ring: the one division on a message's path (the ring's size
    /// is not a power of two); the offsets of the positions after it follow by addition.
    fn offset(&self, pos: u64) -> u64 {
        pos % self.ring
    }

    /// Under the producers' lock: appends `msg` or says why not.
    fn put_locked(&self, msg: &[u8]) -> Result<Wakes, Stop> {
        let mut n = 0;
        self.put_many_locked(&[msg], &mut n)
    }

    /// Under the producers' lock: appends as many of `msgs` as fit (a prefix, counted in
    /// `done`) with one commit, or says why none could be. Room is judged on this handle's
    /// last view of the consumers first, and on a fresh one when that says "full".
    fn put_many_locked<M: AsRef<[u8]>>(&self, msgs: &[M], done: &mut usize) -> Result<Wakes, Stop> {
        if self.u64(O_CLOSED).load(Acquire) != 0 {
            return Err(Stop::Disconnected);
        }
        let mut p = self.totals(PRODUCERS);
        let mut c = self.seen_consumers();
        if self.check(&p, &c).is_err() {
            // A view from before a fork or from another thread may be older than anything
            // this handle has committed since; a fresh one must pass.
            c = self.refresh_consumers();
            self.check(&p, &c)?;
        }
        let mut fresh = false;
        let mut n = 0;
        let mut off = self.offset(p.pos);
        while n < msgs.len() {
            match self.stage_put(&mut p, &mut off, &c, msgs[n].as_ref()) {
                Ok(()) => n += 1,
                Err(Stop::Full) if !fresh => {
                    fresh = true;
                    c = self.refresh_consumers();
                    self.check(&p, &c)?;
                }
                Err(Stop::Full) => break,
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Err(Stop::Full);
        }
        // The next record goes where this batch ends: start fetching its line now, while
        // this one's stores drain.
        self.r().prefetch_write(self.data(off));
        self.r().prefetch_write(self.data(off + 64));
        // One commit for the whole batch: a death before it leaves none of its records
        // reachable, a death after it all of them.
        self.commit(PRODUCERS, p);
        *done = n;
        Ok(Wakes {
            not_empty: self.take_waiters(O_NOT_EMPTY),
            not_full: false,
            all_done: false,
        })
    }

    /// Under the producers' lock: writes `msg`'s record at the producers' totals `p` (read
    /// by [`Ring::both`], advanced by the records staged before in this lock hold) and
    /// advances `p` past it, or says it does not fit. Nothing is visible before `p` is
    /// committed: everything from the tail on is free space no consumer reads. `off` is
    /// `p.pos`'s offset in the ring, advanced with it.
    #[inline(always)]
    fn stage_put(&self, p: &mut Totals, off: &mut u64, c: &Totals, msg: &[u8]) -> Result<(), Stop> {
        let len = msg.len() as u64;
        let Some((start, end)) = self.place(p, *off, c, len) else {
            return Err(Stop::Full);
        };
        let at = if start != p.pos {
            self.r().write(self.data(*off), &TAG_SKIP.to_le_bytes())?;
            0
        } else {
            *off
        };
        let next = at + (end - start);
        *off = if next == self.ring { 0 } else { next };
        self.r()
            .write(self.data(at), &(TAG_RECORD | len).to_le_bytes())?;
        self.r().write(self.data(at + 8), msg)?;
        *p = Totals {
            pos: end,
            msgs: p.msgs + 1,
            bytes: p.bytes + len,
        };
        Ok(())
    }

    /// Under the consumers' lock: the consumers' totals and the producers' position, if
    /// there is a message between them, else why not (empty, or closed and drained). Unless
    /// `fresh` (a batch, which wants all there is), the producers' line is read only when
    /// this handle's last view of it is used up.
    fn visible(&self, fresh: bool) -> Result<(Totals, u64), Stop> {
        let c = self.totals(CONSUMERS);
        let mut tail = self.seen_tail.load(Acquire);
        if fresh || tail <= c.pos || self.check_tail(&c, tail).is_err() {
            tail = self.u64(PRODUCERS.totals + T_POS).load(Acquire);
            self.check_tail(&c, tail)?;
            self.seen_tail.store(tail, Release);
        }
        if tail == c.pos {
            if self.u64(O_CLOSED).load(Acquire) == 0 {
                return Err(Stop::Empty);
            }
            // Closing takes the producers' lock, so every put committed before it is
            // visible once the flag is: look again.
            tail = self.u64(PRODUCERS.totals + T_POS).load(Acquire);
            self.check_tail(&c, tail)?;
            if tail == c.pos {
                return Err(Stop::Disconnected);
            }
        }
        Ok((c, tail))
    }

    /// [`Ring::check`] for a consumer, which reads only the producers' position.
    fn check_tail(&self, c: &Totals, tail: u64) -> io::Result<()> {
        let p = Totals {
            pos: tail,
            msgs: MAX_POSITION,
            bytes: MAX_POSITION,
        };
        self.check(&p, c)
    }

    /// Under the consumers' lock: removes the oldest message into `out` or says why not.
    fn get_locked(&self, out: &mut Vec<u8>) -> Result<Wakes, Stop> {
        let (mut c, tail) = self.visible(false)?;
        let mut off = self.offset(c.pos);
        let (at, len) = self.stage_get(&mut c, &mut off, tail)?;
        self.r().read_to_vec(at, len, out)?;
        if c.pos != tail {
            // The next record is whole already: start fetching it while this commit drains.
            self.r().prefetch_read(self.data(off));
            self.r().prefetch_read(self.data(off + 64));
        }
        self.commit(CONSUMERS, c);
        Ok(Wakes {
            not_empty: false,
            not_full: self.take_waiters(O_NOT_FULL),
            all_done: false,
        })
    }

    /// Under the consumers' lock: removes up to `max` (at least 1) of the oldest messages
    /// with one commit, appending their payloads to `buf` and each one's end offset in `buf`
    /// to `ends`, or says why none could be. On an error `buf` and `ends` are as they were.
    fn get_many_locked(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<Wakes, Stop> {
        let (mut c, tail) = self.visible(true)?;
        let (buf_len, ends_len) = (buf.len(), ends.len());
        let res = (|| {
            let mut n = 0;
            let mut off = self.offset(c.pos);
            while n < max && c.pos != tail {
                let (at, len) = self.stage_get(&mut c, &mut off, tail)?;
                self.r().read_append(at, len, buf)?;
                ends.push(buf.len());
                n += 1;
            }
            Ok::<(), Stop>(())
        })();
        if let Err(e) = res {
            buf.truncate(buf_len);
            ends.truncate(ends_len);
            return Err(e);
        }
        // One commit for the whole batch: a death before it leaves every message in the
        // queue, a death after it takes them all.
        self.commit(CONSUMERS, c);
        Ok(Wakes {
            not_empty: false,
            not_full: self.take_waiters(O_NOT_FULL),
            all_done: false,
        })
    }

    /// Under the consumers' lock: checks the record at the consumers' totals `c` (which are
    /// behind `tail`) and advances `c` past it; returns the region offset and length of its
    /// payload, to be copied out before `c` is committed. `off` is `c.pos`'s offset in the
    /// ring, advanced with it.
    #[inline(always)]
    fn stage_get(&self, c: &mut Totals, off: &mut u64, tail: u64) -> Result<(usize, usize), Stop> {
        let mut start = c.pos;
        let mut at = *off;
        let mut word = [0u8; 8];
        self.r().read(self.data(at), &mut word)?;
        let mut hdr = u64::from_le_bytes(word);
        if hdr & TAG_MASK == TAG_SKIP {
            start += self.ring - at;
            at = 0;
            self.r().read(self.data(at), &mut word)?;
            hdr = u64::from_le_bytes(word);
        }
        let len = hdr & !TAG_MASK;
        let rec = 8 + align8(len);
        if hdr & TAG_MASK != TAG_RECORD
            || len > self.geo.max_msg
            || rec > self.ring - at
            || start + rec > tail
        {
            return Err(Stop::Failed(corrupted(format_args!(
                "{}: record header {hdr:#x} at ring offset {at}",
                self.obj.label()
            ))));
        }
        *c = Totals {
            pos: start + rec,
            msgs: c.msgs + 1,
            bytes: c.bytes + len,
        };
        *off = if at + rec == self.ring { 0 } else { at + rec };
        Ok((self.data(at + 8), len as usize))
    }

    /// If someone sleeps on `word`, advances its sequence and clears the bit. Called under
    /// the lock that sleepers on `word` register under (see [`Ring::run`]), after the commit
    /// they wait for.
    fn take_waiters(&self, word: usize) -> bool {
        let w = self.u32(word);
        // Sequentially consistent for `join`, whose sleepers register without a lock.
        let mut v = w.load(SeqCst);
        while v & 1 == 1 {
            match w.compare_exchange_weak(v, v.wrapping_add(1), SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    fn wake(&self, w: Wakes) {
        if w.not_empty {
            futex::wake_all(self.u32(O_NOT_EMPTY));
        }
        if w.not_full {
            futex::wake_all(self.u32(O_NOT_FULL));
        }
        if w.all_done {
            futex::wake_all(self.u32(O_ALL_DONE));
        }
    }

    /// Runs `op` under `side`'s lock (without a lock for `None`: `join`, whose check reads
    /// only totals) until it succeeds, fails for good, or the deadline passes; sleeps on the futex `word` in between. `blocked` is the lock-free check of
    /// what `op` waits for, made with the same arithmetic on fresh totals: spinning runs on
    /// it. A sleeper sets its waiter bit under the lock of the side whose commits it waits
    /// for (`wakers`), which checks the bit under that lock after each commit, and runs
    /// `blocked` once more before it lets go of that lock: a commit before the registration
    /// shows in that check, one after it sees the bit. So the message path needs no fence of
    /// its own. With no `wakers` (join) the bit is set and the check made with sequentially
    /// consistent operations, matched in `task_done`.
    #[allow(
        clippy::too_many_arguments,
        reason = "private; each caller differs in every one"
    )]
    fn run(
        &self,
        side: Option<Side>,
        wakers: Option<Side>,
        deadline: Deadline,
        word: usize,
        blocked_stop: Stop,
        blocked: impl Fn() -> bool,
        mut op: impl FnMut() -> Result<Wakes, Stop>,
    ) -> Result<(), Stop> {
        self.attach()?;
        let spin = self.policy.spin_for();
        let mut sleep = spin.is_zero();
        let mut blocked_stop = Some(blocked_stop);
        // A lock held past the deadline ends a `_timeout` form as a timeout; a `try_` form,
        // or a holder past the lock's own patience, as the lock's error.
        let lock = |side: Side| {
            self.lock_until(side, deadline).map_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut
                    && matches!(deadline, Deadline::At(_))
                    && deadline.slice().is_none()
                {
                    Stop::Timeout
                } else {
                    Stop::from(e)
                }
            })
        };
        loop {
            let res = match side {
                Some(side) => {
                    let repaired = lock(side)?;
                    // Unlocks on the way out, a panic in `op` included (only a caller's
                    // `AsRef` in `put_many` can panic there, before anything is committed).
                    let _held = Held {
                        ring: self,
                        side,
                        repaired,
                    };
                    op()
                }
                None => op(),
            };
            match res {
                Ok(w) => {
                    self.wake(w);
                    return Ok(());
                }
                Err(Stop::Full) | Err(Stop::Empty) => {}
                Err(e) => return Err(e),
            }
            let Some(slice) = deadline.slice() else {
                return Err(match deadline {
                    Deadline::Now => blocked_stop.take().unwrap_or(Stop::Timeout),
                    _ => Stop::Timeout,
                });
            };
            if !sleep {
                if side == Some(PRODUCERS) {
                    // A full queue: read the consumers' line only every few pauses (see
                    // `FULL_POLL_MIN`), so their commits do not wait for it each time.
                    let polls = std::cell::Cell::new(0u32);
                    deadline.spin(spin, || {
                        polls.set(polls.get().wrapping_add(1));
                        polls.get() % self.full_poll() != 0 || blocked()
                    });
                } else {
                    deadline.spin(spin, &blocked);
                }
                sleep = true;
                continue;
            }
            let expect = match wakers {
                Some(wakers) => {
                    let repaired = lock(wakers)?;
                    let expect = self.u32(word).fetch_or(1, SeqCst) | 1;
                    let still = blocked();
                    self.unlock(wakers, repaired);
                    still.then_some(expect)
                }
                None => {
                    let expect = self.u32(word).fetch_or(1, SeqCst) | 1;
                    blocked().then_some(expect)
                }
            };
            let Some(expect) = expect else {
                continue;
            };
            futex::wait(self.u32(word), expect, Some(slice))?;
            // A waker killed between its commit and its wake leaves the word as it was: look
            // at the queue itself before calling it disconnected.
            if self.u32(word).load(Relaxed) == expect && blocked() && self.peers_gone() {
                return Err(Stop::Disconnected);
            }
        }
    }

    /// Whether another process attached at some time and none is alive now.
    fn peers_gone(&self) -> bool {
        self.u64(O_ATTACHED_EVER).load(Relaxed) >= 2
            && !self.peers().others_alive(self.my_pid.load(Relaxed))
    }

    /// Pauses between a spinning producer's reads of the consumers' totals.
    fn full_poll(&self) -> u32 {
        (self.geo.cap_msgs.saturating_mul(2)).clamp(FULL_POLL_MIN, FULL_POLL_MAX) as u32
    }

    fn closed(&self) -> bool {
        self.u64(O_CLOSED).load(SeqCst) != 0
    }

    /// Lock-free, on fresh totals: whether a put of `len` bytes would find the queue full
    /// (and open) now.
    fn full_for(&self, len: u64) -> bool {
        let c = self.refresh_consumers();
        let p = self.totals(PRODUCERS);
        !self.closed() && self.place(&p, self.offset(p.pos), &c, len).is_none()
    }

    /// Lock-free, on fresh totals: whether a get would find the queue empty (and open) now.
    fn empty_now(&self) -> bool {
        let head = self.u64(CONSUMERS.totals + T_POS).load(Acquire);
        let tail = self.u64(PRODUCERS.totals + T_POS).load(Acquire);
        tail == head && !self.closed()
    }

    pub(crate) fn put(&self, msg: &[u8], deadline: Deadline) -> Result<(), Stop> {
        if msg.len() as u64 > self.geo.max_msg {
            return Err(Stop::Failed(crate::error::invalid_input(format_args!(
                "message of {} bytes over the queue's limit of {} bytes",
                msg.len(),
                self.geo.max_msg
            ))));
        }
        let len = msg.len() as u64;
        self.run(
            Some(PRODUCERS),
            Some(CONSUMERS),
            deadline,
            O_NOT_FULL,
            Stop::Full,
            || self.full_for(len),
            || self.put_locked(msg),
        )
    }

    pub(crate) fn get(&self, out: &mut Vec<u8>, deadline: Deadline) -> Result<(), Stop> {
        self.run(
            Some(CONSUMERS),
            Some(PRODUCERS),
            deadline,
            O_NOT_EMPTY,
            Stop::Empty,
            || self.empty_now(),
            || self.get_locked(out),
        )
    }

    /// Puts a prefix of `msgs`: under `Deadline::Now` as many as fit in one lock hold, else
    /// all of them, each lock hold committing what fits then. Returns how many were put (a
    /// prefix of `msgs`) and why it stopped before the end, if it did.
    pub(crate) fn put_many<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        deadline: Deadline,
    ) -> (usize, Result<(), Stop>) {
        let max = self.geo.max_msg;
        let fit = msgs
            .iter()
            .position(|m| m.as_ref().len() as u64 > max)
            .unwrap_or(msgs.len());
        let mut done = 0;
        while done < fit {
            let rest = &msgs[done..fit];
            let first = rest[0].as_ref().len() as u64;
            let mut n = 0;
            let res = self.run(
                Some(PRODUCERS),
                Some(CONSUMERS),
                deadline,
                O_NOT_FULL,
                Stop::Full,
                || self.full_for(first),
                || self.put_many_locked(rest, &mut n),
            );
            done += n;
            if let Err(e) = res {
                return (done, Err(e));
            }
            if matches!(deadline, Deadline::Now) && done < fit {
                return (done, Ok(()));
            }
        }
        if fit < msgs.len() {
            return (
                done,
                Err(Stop::Failed(crate::error::invalid_input(format_args!(
                    "message {fit} of the batch has {} bytes, over the queue's limit of {max} bytes",
                    msgs[fit].as_ref().len()
                )))),
            );
        }
        (done, Ok(()))
    }

    /// Removes up to `max` (at least 1) messages in one lock hold, appending their payloads
    /// to `buf` and their end offsets in `buf` to `ends`.
    pub(crate) fn get_many(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        deadline: Deadline,
    ) -> Result<(), Stop> {
        self.run(
            Some(CONSUMERS),
            Some(PRODUCERS),
            deadline,
            O_NOT_EMPTY,
            Stop::Empty,
            || self.empty_now(),
            || self.get_many_locked(max, buf, ends),
        )
    }

    /// Closes the queue under the producers' lock, so no put commits after it, and wakes
    /// every waiter: sleeping consumers registered under the producers' lock, sleeping
    /// producers under the consumers' (see [`Ring::run`]).
    pub(crate) fn close(&self) -> io::Result<()> {
        let repaired = self.lock(PRODUCERS)?;
        self.u64(O_CLOSED).store(1, SeqCst);
        let not_empty = self.take_waiters(O_NOT_EMPTY);
        self.unlock(PRODUCERS, repaired);
        let repaired = self.lock(CONSUMERS)?;
        let not_full = self.take_waiters(O_NOT_FULL);
        self.unlock(CONSUMERS, repaired);
        self.wake(Wakes {
            not_empty,
            not_full,
            all_done: false,
        });
        Ok(())
    }

    /// Counts one taken message as finished: lock-free, one compare-and-swap on the done
    /// total, which must stay at most the consumers' message total.
    pub(crate) fn task_done(&self) -> io::Result<()> {
        self.attach()?;
        let done = self.u64(O_DONE);
        let mut d = done.load(SeqCst);
        loop {
            let (_, c) = self.both()?;
            if d > c.msgs {
                return Err(corrupted(format_args!(
                    "{}: {d} messages finished, {} taken",
                    self.obj.label(),
                    c.msgs
                )));
            }
            if d == c.msgs {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "task_done called too many times on queue {}: no message taken from it is unfinished",
                        self.obj.label()
                    ),
                ));
            }
            match done.compare_exchange_weak(d, d + 1, SeqCst, SeqCst) {
                Ok(_) => {
                    if d + 1 == self.totals(PRODUCERS).msgs && self.take_waiters(O_ALL_DONE) {
                        futex::wake_all(self.u32(O_ALL_DONE));
                    }
                    return Ok(());
                }
                Err(now) => d = now,
            }
        }
    }

    /// Lock-free: whether every message put has been taken and finished. The done total is
    /// read first: the producers' total, read after it, is at least as recent, so equality
    /// means there was a moment with nothing unfinished.
    fn all_done(&self) -> bool {
        let done = self.u64(O_DONE).load(SeqCst);
        done == self.u64(PRODUCERS.totals + T_MSGS).load(SeqCst)
    }

    pub(crate) fn join(&self, deadline: Deadline) -> Result<(), Stop> {
        self.run(
            None,
            None,
            deadline,
            O_ALL_DONE,
            Stop::Timeout,
            || !self.all_done(),
            || {
                if self.all_done() {
                    Ok(Wakes::NONE)
                } else {
                    Err(Stop::Empty)
                }
            },
        )
    }

    /// Approximate number of messages in the queue (consumers read first, so the difference
    /// never goes below zero).
    pub(crate) fn len(&self) -> u64 {
        let c = self.totals(CONSUMERS);
        let p = self.totals(PRODUCERS);
        p.msgs.saturating_sub(c.msgs).min(self.geo.cap_msgs)
    }
    pub(crate) fn used_bytes(&self) -> u64 {
        let c = self.totals(CONSUMERS);
        let p = self.totals(PRODUCERS);
        p.bytes.saturating_sub(c.bytes).min(self.geo.cap_bytes)
    }
    pub(crate) fn is_closed(&self) -> bool {
        self.closed()
    }
    pub(crate) fn recoveries(&self) -> u64 {
        self.u64(O_RECOVERIES).load(Relaxed)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.attached_gen.load(Relaxed) == crate::sys::queue::fork_generation() {
            if let Ok(repaired) = self.lock(PRODUCERS) {
                self.peers()
                    .detach(self.my_pid.load(Relaxed), self.my_start.load(Relaxed));
                self.unlock(PRODUCERS, repaired);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::pid_lock::tests::dead_pid;

    fn small() -> Ring {
        let geo = Geometry {
            cap_msgs: 4,
            cap_bytes: 1024,
            max_msg: 256,
        };
        Ring::anonymous(geo, WaitPolicy::Park).unwrap()
    }

    /// Leaves `side`'s lock held by a dead process, as a process killed holding it does.
    fn die_holding(ring: &Ring, side: Side) {
        ring.u32(side.lock).store(dead_pid(), SeqCst);
    }

    /// Does what a consumer killed inside a `get` commit leaves behind: the commit of the
    /// first message (5 bytes) started, the journal written, and if `valid` the valid flag
    /// set and only the message count applied; the consumers' lock held by the dead process.
    fn die_inside_get_commit(ring: &Ring, valid: bool) {
        ring.lock(CONSUMERS).unwrap();
        {
            {
                let (_, c) = ring.both().unwrap();
                let new = [
                    (T_POS, c.pos + 16),
                    (T_MSGS, c.msgs + 1),
                    (T_BYTES, c.bytes + 5),
                ];
                for (t, v) in new {
                    ring.u64(CONSUMERS.journal + t).store(v, Relaxed);
                }
                if valid {
                    ring.u64(CONSUMERS.j_valid).store(1, Relaxed);
                    ring.u64(CONSUMERS.totals + T_MSGS)
                        .store(c.msgs + 1, Relaxed);
                }
            }
        }
        die_holding(ring, CONSUMERS);
    }

    #[test]
    fn a_commit_torn_after_its_journal_is_valid_is_rolled_forward() {
        let ring = small();
        ring.put(b"hello", Deadline::Now).unwrap();
        ring.put(b"world", Deadline::Now).unwrap();
        die_inside_get_commit(&ring, true);
        // The producers see the half-applied totals (one message fewer, its space not yet
        // free) and still work.
        ring.put(b"third", Deadline::Now).unwrap();
        let mut out = Vec::new();
        ring.get(&mut out, Deadline::Now).unwrap();
        assert_eq!(out, b"world", "the dead consumer's message is taken, once");
        ring.get(&mut out, Deadline::Now).unwrap();
        assert_eq!(out, b"third");
        assert!(matches!(
            ring.get(&mut out, Deadline::Now),
            Err(Stop::Empty)
        ));
        assert_eq!(ring.recoveries(), 1);
        assert_eq!((ring.len(), ring.used_bytes()), (0, 0));
        ring.put(b"again", Deadline::Now).unwrap();
        ring.get(&mut out, Deadline::Now).unwrap();
        assert_eq!(out, b"again");
    }

    #[test]
    fn a_lock_a_live_process_keeps_ends_timeouts_at_their_deadline() {
        let ring = small();
        // A live process (the test runner's parent) holds the producers' lock, as a stopped
        // producer would.
        let parent = std::os::unix::process::parent_id();
        ring.u32(PRODUCERS.lock).store(parent, SeqCst);
        // Watchdog: the lock's own patience is 10 s; giving up at the operations' deadlines
        // answers long before half of it.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let timed = ring.put(b"x", Deadline::after(std::time::Duration::from_millis(50)));
                let tried = ring.put(b"x", Deadline::Now);
                done.send((timed, tried)).unwrap();
            });
            let (timed, tried) = finished
                .recv_timeout(LOCK_PATIENCE.limit / 2)
                .expect("put waited for the live holder past its deadline");
            assert!(matches!(timed, Err(Stop::Timeout)), "{timed:?}");
            assert!(
                matches!(&tried, Err(Stop::Failed(e)) if e.kind() == io::ErrorKind::TimedOut
                    && e.to_string().contains(&format!("held by live pid {parent}"))),
                "{tried:?}"
            );
        });
        // The consumers' side does not need that lock: an empty queue says so at once.
        let mut out = Vec::new();
        assert!(matches!(
            ring.get(&mut out, Deadline::Now),
            Err(Stop::Empty)
        ));
        ring.u32(PRODUCERS.lock).store(0, SeqCst);
        ring.put(b"x", Deadline::Now).unwrap();
        ring.get(&mut out, Deadline::Now).unwrap();
        assert_eq!(out, b"x");
    }

    #[test]
    fn a_commit_torn_before_its_journal_is_valid_leaves_the_old_state() {
        let ring = small();
        ring.put(b"hello", Deadline::Now).unwrap();
        die_inside_get_commit(&ring, false);
        let mut out = Vec::new();
        ring.get(&mut out, Deadline::Now).unwrap();
        assert_eq!(out, b"hello", "the message stays for the next consumer");
        assert_eq!(ring.recoveries(), 1);
        assert!(matches!(
            ring.get(&mut out, Deadline::Now),
            Err(Stop::Empty)
        ));
    }

    /// Does what a producer killed inside a `put_many` commit leaves behind: `msgs` staged,
    /// the journal written and, if `valid`, its valid flag set (but nothing applied); the
    /// producers' lock held by the dead process.
    fn die_inside_put_many_commit(ring: &Ring, msgs: &[&[u8]], valid: bool) {
        ring.lock(PRODUCERS).unwrap();
        {
            {
                let (mut p, c) = ring.both().unwrap();
                for m in msgs {
                    let mut off = ring.offset(p.pos);
                    ring.stage_put(&mut p, &mut off, &c, m).unwrap();
                }
                for (t, v) in [(T_POS, p.pos), (T_MSGS, p.msgs), (T_BYTES, p.bytes)] {
                    ring.u64(PRODUCERS.journal + t).store(v, Relaxed);
                }
                if valid {
                    ring.u64(PRODUCERS.j_valid).store(1, Relaxed);
                }
            }
        }
        die_holding(ring, PRODUCERS);
    }

    #[test]
    fn a_batch_commit_is_all_or_nothing_when_its_producer_dies() {
        let mut out = Vec::new();
        for valid in [false, true] {
            let ring = small();
            ring.put(b"first", Deadline::Now).unwrap();
            die_inside_put_many_commit(&ring, &[b"a", b"bb", b"ccc"], valid);
            // Consumers do not wait for the dead producer's lock: they see what was
            // committed before it.
            let mut ends = Vec::new();
            out.clear();
            ring.get_many(10, &mut out, &mut ends, Deadline::Now)
                .unwrap();
            assert_eq!(out, b"first");
            // The next producer repairs the producers' side.
            assert_eq!(ring.put_many(&[b"x"], Deadline::Now).0, 1);
            out.clear();
            ends.clear();
            ring.get_many(10, &mut out, &mut ends, Deadline::Now)
                .unwrap();
            let want: &[u8] = if valid { b"abbcccx" } else { b"x" };
            assert_eq!(out, want, "journal valid: {valid}");
            assert_eq!(ends.len(), if valid { 4 } else { 1 });
            assert_eq!(ring.recoveries(), 1);
            assert_eq!((ring.len(), ring.used_bytes()), (0, 0));
        }
    }

    #[test]
    fn a_sleeping_consumer_takes_a_dead_producers_committed_message_not_disconnected() {
        let ring = small();
        // Another process attached once and is dead now: a sleeper that hears nothing for a
        // slice is told the queue is disconnected, if nothing is left to take.
        ring.lock(PRODUCERS).unwrap();
        assert!(ring.peers().attach(u64::from(dead_pid()), 1));
        ring.u64(O_ATTACHED_EVER).fetch_add(1, Relaxed);
        ring.unlock(PRODUCERS, false);
        std::thread::scope(|s| {
            let consumer = s.spawn(|| {
                let mut out = Vec::new();
                ring.get(&mut out, Deadline::Never).map(|()| out)
            });
            // Wait until the consumer sleeps (its waiter bit set under the producers' lock).
            while ring.u32(O_NOT_EMPTY).load(SeqCst) & 1 == 0 {
                std::thread::yield_now();
            }
            // A producer killed after its commit, before it could look for sleepers to wake.
            ring.lock(PRODUCERS).unwrap();
            let (mut p, c) = ring.both().unwrap();
            let mut off = ring.offset(p.pos);
            ring.stage_put(&mut p, &mut off, &c, b"last words").unwrap();
            ring.commit(PRODUCERS, p);
            die_holding(&ring, PRODUCERS);
            let got = consumer.join().unwrap();
            assert!(
                matches!(got, Ok(ref m) if m == b"last words"),
                "a committed message is taken before the queue counts as disconnected: {got:?}"
            );
        });
    }

    #[test]
    fn huge_totals_in_the_header_are_errors_not_overflows() {
        const TOP: u64 = !7;
        // (fields overwritten, put fails, get fails): each side checks what it reads. A
        // producer judges room on its last view of the consumers first, so a consumers'
        // total it has not read again yet cannot fail its put.
        type Case = (&'static [(usize, u64)], bool, bool);
        let cases: [Case; 5] = [
            (
                &[
                    (PRODUCERS.totals + T_POS, TOP),
                    (CONSUMERS.totals + T_POS, TOP),
                ],
                true,
                true,
            ),
            (&[(PRODUCERS.totals + T_BYTES, u64::MAX)], true, false),
            (&[(PRODUCERS.totals + T_POS, 1 << 40)], true, true),
            (&[(CONSUMERS.totals + T_MSGS, u64::MAX)], false, true),
            (&[(CONSUMERS.totals + T_POS, 4096)], false, true),
        ];
        for (fields, put_fails, get_fails) in cases {
            let ring = small();
            for &(field, value) in fields {
                ring.u64(field).store(value, Relaxed);
            }
            let mut out = Vec::new();
            let put = ring.put(b"x", Deadline::Now);
            assert_eq!(
                matches!(put, Err(Stop::Failed(ref e)) if e.kind() == io::ErrorKind::InvalidData),
                put_fails,
                "put with {fields:?}: {put:?}"
            );
            let get = ring.get(&mut out, Deadline::Now);
            assert_eq!(
                matches!(get, Err(Stop::Failed(ref e)) if e.kind() == io::ErrorKind::InvalidData),
                get_fails,
                "get with {fields:?}: {get:?}"
            );
            assert!(ring.task_done().is_err(), "task_done with {fields:?}");
            // Filling the queue makes a producer read the consumers' totals afresh: then
            // every corruption shows.
            let fill: Result<Vec<()>, Stop> =
                (0..8).map(|_| ring.put(b"x", Deadline::Now)).collect();
            assert!(
                matches!(fill, Err(Stop::Failed(_))),
                "filling with {fields:?}: {fill:?}"
            );
        }
        let ring = small();
        ring.put(b"x", Deadline::Now).unwrap();
        ring.u64(O_DONE).store(u64::MAX, Relaxed);
        let err = ring.task_done().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn too_many_task_done_is_an_error_and_join_sees_all_done() {
        let ring = small();
        ring.put(b"a", Deadline::Now).unwrap();
        ring.put(b"b", Deadline::Now).unwrap();
        let mut out = Vec::new();
        ring.get(&mut out, Deadline::Now).unwrap();
        ring.task_done().unwrap();
        let err = ring.task_done().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(!ring.all_done());
        ring.get(&mut out, Deadline::Now).unwrap();
        ring.task_done().unwrap();
        assert!(ring.all_done());
        ring.join(Deadline::Now).unwrap();
    }

    #[test]
    fn opening_ignores_an_absurd_geometry() {
        let geo = Geometry {
            cap_msgs: u64::MAX,
            cap_bytes: u64::MAX,
            max_msg: u64::MAX,
        };
        let name = format!("ipcbox-ring-open-absurd-{}", std::process::id());
        let err = Ring::named(&name, CreationMode::Open, geo, 0o600, WaitPolicy::Park).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn wrap_around_keeps_records_whole() {
        let ring = small();
        let mut out = Vec::new();
        for round in 0..200u32 {
            let len = (round as usize * 37) % 250 + 1;
            let msg: Vec<u8> = (0..len).map(|i| (i as u32 + round) as u8).collect();
            ring.put(&msg, Deadline::Now).unwrap();
            if round % 3 == 0 {
                ring.put(&msg, Deadline::Now).unwrap();
                ring.get(&mut out, Deadline::Now).unwrap();
                assert_eq!(out, msg);
            }
            ring.get(&mut out, Deadline::Now).unwrap();
            assert_eq!(out, msg);
        }
    }
}
