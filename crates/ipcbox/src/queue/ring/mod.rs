//! The multi-producer multi-consumer byte ring behind [`Queue`](super::Queue).
//!
//! It has two sides, the producers' and the consumers'. Each side has:
//!
//! * a lock that survives its owner's death ([`PidLock`](crate::pid_lock::PidLock));
//! * a redo journal, which the next locker rolls forward after a death inside a commit;
//! * three published totals: its ring position (the tail for producers, the head for
//!   consumers), and the messages and payload bytes it has moved since the queue was made.
//!
//! Besides the sides: futex words with waiter bits, and a table of attached processes.
//!
//! A side changes its totals only under its own lock, and reads the other side's without a
//! lock. A stale or half-updated view of the other side can make the queue look fuller or
//! emptier than it is for a moment. It never gives out space that is still in use, nor a
//! record not yet written.

mod bells;
mod inplace;
mod journal;
mod layout;

pub use bells::Interest;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

use super::bell::Bell;
use super::error::{Failure, PutManyError, RecvError, SendError};
use super::object::Object;
use super::peers;
use super::wait::{self, Deadline, WaitPolicy};
use crate::layout::queue::{
    RawQueueHeader, RawSide, BELL_ALL_DONE, BELL_NOT_EMPTY, BELL_NOT_FULL, DATA_OFFSET, TAG_MASK,
    TAG_RECORD, TAG_SKIP,
};
use crate::mode::CreationMode;
use crate::sys::futex;
use crate::sys::mmap::Region;
pub(crate) use layout::Geometry;
use layout::{align8, corrupted, Side, CONSUMERS, PRODUCERS};

// Why every state another process can see is a state between two whole operations, which is
// what the queue's crash guarantees rest on:
//
// - Totals only grow, and a side publishes its position after the records or the space it
//   covers are ready (`apply_journal`, position last). So any view of the other side,
//   however stale or half-updated, is a view of an earlier moment.
// - A put writes its record into free space past the tail, which no one reads, then commits
//   (`stage_put`). A get copies its record out, then commits (`stage_get`).
// - A commit goes through the side's redo journal (journal.rs). A death before the journal is
//   valid leaves the old totals, and the bytes written are unreachable free space. A death
//   after it leaves a journal the next locker of that side applies again.
// - No waiting happens under a lock, only a copy and a few stores. Sleepers register under
//   the lock of the side whose commits they wait for (`run`), so no wake-up is lost.

/// Bounds on how many pauses a producer spinning on a full queue makes between two reads of
/// the consumers' totals: two per message of capacity (see [`Ring::full_poll`]).
// While a full queue holds many messages, its consumers have work for a while, and every read
// of their line makes their next commit wait for it to come back. A pause is some 30 ns here.
const FULL_POLL_MIN: u64 = 4;
const FULL_POLL_MAX: u64 = 256;

/// A `get_many` batch stops taking messages once it holds this many payload bytes.
// Room is freed only when a batch commits: a batch of many large messages would keep the
// producers waiting for all of its copies, where smaller ones let them refill behind it.
// Small messages never reach it; a message of this size or more makes a batch of one.
const BATCH_BYTES: usize = 256 << 10;

/// One side's totals: its ring position and the messages and payload bytes it has moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    pos: u64,
    msgs: u64,
    bytes: u64,
}

/// An attached MPMC byte ring.
#[derive(Debug)]
pub(crate) struct Ring {
    obj: Object<RawQueueHeader>,
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
    /// This handle's doorbell, its entry in the table of bells ([`bells::NO_SLOT`]: none yet),
    /// and whether the last arming found an entry.
    bell: Bell,
    bell_slot: AtomicUsize,
    bell_ok: AtomicBool,
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
        let obj = Object::anonymous(DATA_OFFSET + geo.ring() as usize)?;
        let ring = Ring::new(obj, geo, policy)?;
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
            DATA_OFFSET + geo.ring() as usize
        };
        let (obj, created) = Object::named(name, mode, len, permissions)?;
        let ring = if created {
            let ring = Ring::new(obj, geo, policy)?;
            ring.init()?;
            ring
        } else {
            Ring::validate(obj, policy)?
        };
        ring.attach()?;
        Ok(ring)
    }

    fn new(obj: Object<RawQueueHeader>, geo: Geometry, policy: WaitPolicy) -> io::Result<Ring> {
        Ok(Ring {
            obj,
            ring: geo.ring(),
            geo,
            policy,
            attached_gen: AtomicU64::new(u64::MAX),
            my_pid: AtomicU64::new(0),
            my_start: AtomicU64::new(0),
            seen_consumers: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            seen_tail: AtomicU64::new(0),
            bell: Bell::new()?,
            bell_slot: AtomicUsize::new(bells::NO_SLOT),
            bell_ok: AtomicBool::new(false),
        })
    }

    /// The descriptor a doorbell waiter polls ([`Ring::arm`]).
    pub(crate) fn bell_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.bell)
    }

    fn r(&self) -> &Region<RawQueueHeader> {
        &self.obj.region
    }

    /// The header, checked to fit the mapping when it was attached.
    #[inline]
    fn h(&self) -> &RawQueueHeader {
        self.obj.region.header()
    }

    #[inline]
    fn side(&self, side: Side) -> &RawSide {
        match side {
            Side::Producers => &self.h().producers,
            Side::Consumers => &self.h().consumers,
        }
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

    /// Registers this process as attached, once per handle and process (again after fork).
    /// The table is kept under the producers' lock.
    fn attach(&self) -> io::Result<()> {
        let gen = crate::sys::process::fork_generation();
        if self.attached_gen.load(Relaxed) == gen {
            return Ok(());
        }
        let me = peers::me();
        let died = self.lock(PRODUCERS)?;
        if self.peers().attach(me.0, me.1) {
            self.h().attached_ever.fetch_add(1, Relaxed);
        }
        self.unlock(PRODUCERS, died);
        self.my_pid.store(me.0, Relaxed);
        self.my_start.store(me.1, Relaxed);
        self.attached_gen.store(gen, Relaxed);
        Ok(())
    }

    /// The published totals of `side`, position first: whatever counts are read after it are
    /// at least as recent.
    fn totals(&self, side: Side) -> Totals {
        let t = &self.side(side).totals;
        let pos = t.pos.load(Acquire);
        Totals {
            pos,
            msgs: t.msgs.load(Acquire),
            bytes: t.bytes.load(Acquire),
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
        DATA_OFFSET + pos as usize
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

    /// Under the producers' lock: appends `msg`; `None` if it does not fit now.
    fn put_locked(&self, msg: &[u8]) -> Result<Option<Wakes>, SendError> {
        let mut n = 0;
        self.put_many_locked(&[msg], &mut n)
    }

    /// Under the producers' lock: appends as many of `msgs` as fit (a prefix, counted in
    /// `done`) with one commit; `None` if not even the first fits now. Room is judged on this
    /// handle's last view of the consumers first, and on a fresh one when that says "full".
    fn put_many_locked<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        done: &mut usize,
    ) -> Result<Option<Wakes>, SendError> {
        self.put_each_locked(
            msgs.len(),
            |i| msgs[i].as_ref().len() as u64,
            |i, at| self.r().write(at, msgs[i].as_ref()),
            done,
        )
    }

    /// [`Ring::put_many_locked`] for `count` messages, the `i`th of `len(i)` bytes, whose
    /// payload `write(i, region offset)` writes in place.
    #[inline(always)]
    fn put_each_locked(
        &self,
        count: usize,
        len: impl Fn(usize) -> u64,
        mut write: impl FnMut(usize, usize) -> io::Result<()>,
        done: &mut usize,
    ) -> Result<Option<Wakes>, SendError> {
        if self.h().closed.load(Acquire) != 0 {
            return Err(SendError::Disconnected);
        }
        let mut p = self.totals(PRODUCERS);
        let mut c = self.seen_consumers();
        if self.check(&p, &c).is_err() {
            // A view from before a fork or from another thread may be older than anything
            // this handle has committed since; a fresh one must pass.
            c = self.refresh_consumers();
            self.check(&p, &c).map_err(SendError::Failed)?;
        }
        let mut fresh = false;
        let mut n = 0;
        let mut off = self.offset(p.pos);
        while n < count {
            let staged = self
                .stage_put(&mut p, &mut off, &c, len(n), |at| write(n, at))
                .map_err(SendError::Failed)?;
            if staged {
                n += 1;
            } else if !fresh {
                fresh = true;
                c = self.refresh_consumers();
                self.check(&p, &c).map_err(SendError::Failed)?;
            } else {
                break;
            }
        }
        if n == 0 {
            return Ok(None);
        }
        // The next record goes where this batch ends: start fetching its line now, while
        // this one's stores drain.
        self.r().prefetch_write(self.data(off));
        self.r().prefetch_write(self.data(off + 64));
        // One commit for the whole batch: a death before it leaves none of its records
        // reachable, a death after it all of them.
        self.commit(PRODUCERS, p);
        *done = n;
        Ok(Some(Wakes {
            not_empty: self.take_waiters(&self.h().not_empty),
            not_full: false,
            all_done: false,
        }))
    }

    /// Under the producers' lock: writes the record of a `len`-byte message at the
    /// producers' totals `p` (read by [`Ring::both`], advanced by the records staged before
    /// in this lock hold), its payload by `write` (given the payload's region offset), and
    /// advances `p` past it; false if it does not fit (`write` is not called). Nothing is
    /// visible before `p` is committed: everything from the tail on is free space no consumer
    /// reads. `off` is `p.pos`'s offset in the ring, advanced with it.
    #[inline(always)]
    fn stage_put(
        &self,
        p: &mut Totals,
        off: &mut u64,
        c: &Totals,
        len: u64,
        write: impl FnOnce(usize) -> io::Result<()>,
    ) -> io::Result<bool> {
        let Some((start, end)) = self.place(p, *off, c, len) else {
            return Ok(false);
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
        write(self.data(at + 8))?;
        *p = Totals {
            pos: end,
            msgs: p.msgs + 1,
            bytes: p.bytes + len,
        };
        Ok(true)
    }

    /// Under the consumers' lock: the consumers' totals and the producers' position, if
    /// there is a message between them; `None` if the queue is empty, `Disconnected` if it is
    /// also closed. Unless `fresh` (a batch, which wants all there is), the producers' line is
    /// read only when this handle's last view of it is used up.
    fn visible(&self, fresh: bool) -> Result<Option<(Totals, u64)>, RecvError> {
        let c = self.totals(CONSUMERS);
        let mut tail = self.seen_tail.load(Acquire);
        if fresh || tail <= c.pos || self.check_tail(&c, tail).is_err() {
            tail = self.h().producers.totals.pos.load(Acquire);
            self.check_tail(&c, tail).map_err(RecvError::Failed)?;
            self.seen_tail.store(tail, Release);
        }
        if tail == c.pos {
            if self.h().closed.load(Acquire) == 0 {
                return Ok(None);
            }
            // Closing takes the producers' lock, so every put committed before it is
            // visible once the flag is: look again.
            tail = self.h().producers.totals.pos.load(Acquire);
            self.check_tail(&c, tail).map_err(RecvError::Failed)?;
            if tail == c.pos {
                return Err(RecvError::Disconnected);
            }
        }
        Ok(Some((c, tail)))
    }

    /// Under the consumers' lock: removes the oldest message, which `take` gets as its
    /// payload's region offset and length before the commit; `None` if there is none now. An
    /// error from `take` leaves the message in the queue.
    #[inline(always)]
    fn get_locked(
        &self,
        take: &mut impl FnMut(usize, usize) -> io::Result<()>,
    ) -> Result<Option<Wakes>, RecvError> {
        let Some((mut c, tail)) = self.visible(false)? else {
            return Ok(None);
        };
        let mut off = self.offset(c.pos);
        let (at, len) = self
            .stage_get(&mut c, &mut off, tail)
            .map_err(RecvError::Failed)?;
        // The copy-out comes before the commit: a consumer killed before the commit leaves the
        // message to the next one, killed after it takes the message with it. A redelivering
        // design could not tell a consumer that died just before `get` returned from one that
        // died just after, so it would duplicate; this one is at most once instead.
        take(at, len).map_err(RecvError::Failed)?;
        if c.pos != tail {
            // The next record is whole already: start fetching it while this commit drains.
            self.r().prefetch_read(self.data(off));
            self.r().prefetch_read(self.data(off + 64));
        }
        self.commit(CONSUMERS, c);
        Ok(Some(Wakes {
            not_empty: false,
            not_full: self.take_waiters(&self.h().not_full),
            all_done: false,
        }))
    }

    /// Under the consumers' lock: removes up to `max` (at least 1) of the oldest messages
    /// with one commit, appending their payloads to `buf` and each one's end offset in `buf`
    /// to `ends`; `None` if there is none now. On an error `buf` and `ends` are as they were.
    fn get_many_locked(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<Option<Wakes>, RecvError> {
        let Some((mut c, tail)) = self.visible(true)? else {
            return Ok(None);
        };
        let (buf_len, ends_len) = (buf.len(), ends.len());
        let res = (|| {
            let mut n = 0;
            let mut off = self.offset(c.pos);
            while n < max && c.pos != tail && buf.len() - buf_len < BATCH_BYTES {
                let (at, len) = self.stage_get(&mut c, &mut off, tail)?;
                self.r().read_append(at, len, buf)?;
                ends.push(buf.len());
                n += 1;
            }
            Ok::<(), io::Error>(())
        })();
        if let Err(e) = res {
            buf.truncate(buf_len);
            ends.truncate(ends_len);
            return Err(RecvError::Failed(e));
        }
        // One commit for the whole batch: a death before it leaves every message in the
        // queue, a death after it takes them all.
        self.commit(CONSUMERS, c);
        Ok(Some(Wakes {
            not_empty: false,
            not_full: self.take_waiters(&self.h().not_full),
            all_done: false,
        }))
    }

    /// Under the consumers' lock: checks the record at the consumers' totals `c` (which are
    /// behind `tail`) and advances `c` past it; returns the region offset and length of its
    /// payload, to be copied out before `c` is committed. `off` is `c.pos`'s offset in the
    /// ring, advanced with it.
    #[inline(always)]
    fn stage_get(&self, c: &mut Totals, off: &mut u64, tail: u64) -> io::Result<(usize, usize)> {
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
            return Err(corrupted(format_args!(
                "{}: record header {hdr:#x} at ring offset {at}",
                self.obj.label()
            )));
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
    fn take_waiters(&self, w: &AtomicU32) -> bool {
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
        let mut bells = 0;
        if w.not_empty {
            futex::wake_all(&self.h().not_empty);
            bells |= BELL_NOT_EMPTY;
        }
        if w.not_full {
            futex::wake_all(&self.h().not_full);
            bells |= BELL_NOT_FULL;
        }
        if w.all_done {
            futex::wake_all(&self.h().all_done);
            bells |= BELL_ALL_DONE;
        }
        if bells != 0 {
            self.ring_bells(bells);
        }
    }

    /// Runs `op` under `side`'s lock until it succeeds (true), fails for good, or the
    /// deadline passes (false), and sleeps on the futex `word` in between. `op` returns `None`
    /// while what it waits for is not there. `side` is `None` for `join`, whose check reads
    /// only totals.
    ///
    /// `blocked` is the lock-free check of what `op` waits for, made with the same arithmetic
    /// on fresh totals: spinning runs on it. A sleeper registers under `wakers`' lock.
    #[allow(
        clippy::too_many_arguments,
        reason = "private; each caller differs in every one"
    )]
    fn run<E: Failure>(
        &self,
        side: Option<Side>,
        wakers: Option<Side>,
        deadline: Deadline,
        poll: u32,
        word: &AtomicU32,
        blocked: impl Fn() -> bool,
        mut op: impl FnMut() -> Result<Option<Wakes>, E>,
    ) -> Result<bool, E> {
        self.attach().map_err(E::failed)?;
        let spin = self.policy.spin_for();
        let mut sleep = spin.is_zero();
        // A lock held past the deadline ends a `_timeout` form as "not now" (`None`); a
        // `try_` form, or a holder past the lock's own patience, as the lock's error.
        let lock = |side: Side| match self.lock_until(side, deadline) {
            Ok(repaired) => Ok(Some(repaired)),
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut
                    && matches!(deadline, Deadline::At(_))
                    && deadline.slice(wait::SLICE).is_none() =>
            {
                Ok(None)
            }
            Err(e) => Err(E::failed(e)),
        };
        // Whether this call took the `wakers` lock to roll a commit forward (below).
        let mut rolled = false;
        loop {
            let res = match side {
                Some(side) => {
                    let Some(repaired) = lock(side)? else {
                        return Ok(false);
                    };
                    // Unlocks on the way out, a panic in `op` included (only a caller's
                    // `AsRef` in `put_many` can panic there, before anything is committed).
                    let _held = Held {
                        ring: self,
                        side,
                        repaired,
                    };
                    op()?
                }
                None => op()?,
            };
            if let Some(w) = res {
                self.wake(w);
                return Ok(true);
            }
            let Some(slice) = deadline.slice(wait::SLICE) else {
                // A commit of the other side whose maker died inside it (journal valid) is
                // rolled forward by that side's next locker: before "not now", be that
                // locker once, so that no committed message or free room goes unseen.
                if let Some(w) = wakers {
                    if !rolled && self.side(w).journal_valid.load(Acquire) == 1 {
                        rolled = true;
                        if let Some(repaired) = lock(w)? {
                            self.unlock(w, repaired);
                        }
                        continue;
                    }
                }
                return Ok(false);
            };
            if !sleep {
                if poll > 1 {
                    // A full queue: read the consumers' line only every few pauses (see
                    // `FULL_POLL_MIN`), so their commits do not wait for it each time.
                    let polls = std::cell::Cell::new(0u32);
                    wait::spin(deadline, spin, || {
                        polls.set(polls.get().wrapping_add(1));
                        polls.get() % poll != 0 || blocked()
                    });
                } else {
                    wait::spin(deadline, spin, &blocked);
                }
                sleep = true;
                continue;
            }
            // A sleeper sets its waiter bit under the lock of the side whose commits it waits
            // for, which checks the bit under that lock after each commit, and runs `blocked`
            // once more before it lets go of that lock. A commit before the registration shows
            // in that check, one after it sees the bit: so the message path needs no fence of
            // its own. A killed sleeper leaves at most a set bit, which costs the next waker
            // one needless wake.
            //
            // With no `wakers` (join) the bit is set and the check made with sequentially
            // consistent operations, matched in `task_done`.
            let expect = match wakers {
                Some(wakers) => {
                    let Some(repaired) = lock(wakers)? else {
                        return Ok(false);
                    };
                    let expect = word.fetch_or(1, SeqCst) | 1;
                    let still = blocked();
                    self.unlock(wakers, repaired);
                    still.then_some(expect)
                }
                None => {
                    let expect = word.fetch_or(1, SeqCst) | 1;
                    blocked().then_some(expect)
                }
            };
            let Some(expect) = expect else {
                continue;
            };
            futex::wait(word, expect, Some(slice)).map_err(E::failed)?;
            // A waker killed between its commit and its wake leaves the word as it was: look
            // at the queue itself before calling it disconnected.
            if word.load(Relaxed) == expect && blocked() && self.peers_gone() {
                return Err(E::disconnected());
            }
        }
    }

    /// Whether another process attached at some time and none is alive now.
    fn peers_gone(&self) -> bool {
        self.h().attached_ever.load(Relaxed) >= 2
            && !self.peers().others_alive(self.my_pid.load(Relaxed))
    }

    /// Pauses between a spinning producer's reads of the consumers' totals, waiting to put
    /// a `len`-byte message: two per message the queue can hold.
    // A queue full of large messages holds few of them, and its consumers free room soon:
    // the limit in bytes counts as much as the one in messages.
    pub(super) fn full_poll(&self, len: u64) -> u32 {
        let fit = self.geo.cap_msgs.min(self.geo.cap_bytes / len.max(1));
        (fit.saturating_mul(2)).clamp(FULL_POLL_MIN, FULL_POLL_MAX) as u32
    }

    fn closed(&self) -> bool {
        self.h().closed.load(SeqCst) != 0
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
        let head = self.h().consumers.totals.pos.load(Acquire);
        let tail = self.h().producers.totals.pos.load(Acquire);
        tail == head && !self.closed()
    }

    /// Appends `msg`; false if the deadline passed first.
    pub(crate) fn put(&self, msg: &[u8], deadline: Deadline) -> Result<bool, SendError> {
        if msg.len() as u64 > self.geo.max_msg {
            return Err(self.too_large(msg.len() as u64));
        }
        let len = msg.len() as u64;
        self.run(
            Some(PRODUCERS),
            Some(CONSUMERS),
            deadline,
            self.full_poll(len),
            &self.h().not_full,
            || self.full_for(len),
            || self.put_locked(msg),
        )
    }

    /// Removes the oldest message into `out`; false if the deadline passed first.
    pub(crate) fn get(&self, out: &mut Vec<u8>, deadline: Deadline) -> Result<bool, RecvError> {
        self.get_by(deadline, |at, len| self.r().read_to_vec(at, len, out))
    }

    /// The get of every form: removes the oldest message, which `take` gets as its payload's
    /// region offset and length before the commit (an error from `take` leaves it in the
    /// queue); false if the deadline passed first.
    pub(super) fn get_by(
        &self,
        deadline: Deadline,
        mut take: impl FnMut(usize, usize) -> io::Result<()>,
    ) -> Result<bool, RecvError> {
        self.run(
            Some(CONSUMERS),
            Some(PRODUCERS),
            deadline,
            1,
            &self.h().not_empty,
            || self.empty_now(),
            || self.get_locked(&mut take),
        )
    }

    /// Puts a prefix of `msgs`: under `Deadline::Now` as many as fit in one lock hold, else
    /// all of them or as many as the deadline lets, each lock hold committing what fits then.
    /// Returns how many were put.
    pub(crate) fn put_many<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        deadline: Deadline,
    ) -> Result<usize, PutManyError> {
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
                self.full_poll(first),
                &self.h().not_full,
                || self.full_for(first),
                || self.put_many_locked(rest, &mut n),
            );
            done += n;
            match res {
                // A `try_` form stops after its one lock hold.
                Ok(true) if deadline == Deadline::Now && done < fit => return Ok(done),
                Ok(true) => {}
                Ok(false) => return Ok(done),
                Err(error) => return Err(PutManyError { sent: done, error }),
            }
        }
        if fit < msgs.len() {
            return Err(PutManyError {
                sent: done,
                error: SendError::Failed(crate::error::invalid_input(format_args!(
                    "message {fit} of the batch has {} bytes, over the queue's limit of {max} bytes",
                    msgs[fit].as_ref().len()
                ))),
            });
        }
        Ok(done)
    }

    /// Removes up to `max` (at least 1) messages in one lock hold, appending their payloads
    /// to `buf` and their end offsets in `buf` to `ends`.
    pub(crate) fn get_many(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        deadline: Deadline,
    ) -> Result<bool, RecvError> {
        self.run(
            Some(CONSUMERS),
            Some(PRODUCERS),
            deadline,
            1,
            &self.h().not_empty,
            || self.empty_now(),
            || self.get_many_locked(max, buf, ends),
        )
    }

    /// Closes the queue under the producers' lock, so no put commits after it, and wakes
    /// every waiter: sleeping consumers registered under the producers' lock, sleeping
    /// producers under the consumers' (see [`Ring::run`]).
    pub(crate) fn close(&self) -> io::Result<()> {
        let repaired = self.lock(PRODUCERS)?;
        self.h().closed.store(1, SeqCst);
        let not_empty = self.take_waiters(&self.h().not_empty);
        self.unlock(PRODUCERS, repaired);
        let repaired = self.lock(CONSUMERS)?;
        let not_full = self.take_waiters(&self.h().not_full);
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
        let done = &self.h().done;
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
                    if d + 1 == self.totals(PRODUCERS).msgs && self.take_waiters(&self.h().all_done)
                    {
                        futex::wake_all(&self.h().all_done);
                        self.ring_bells(BELL_ALL_DONE);
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
        let done = self.h().done.load(SeqCst);
        done == self.h().producers.totals.msgs.load(SeqCst)
    }

    /// Waits until every message put is finished; false if the deadline passed first.
    pub(crate) fn join(&self, deadline: Deadline) -> Result<bool, RecvError> {
        self.run(
            None,
            None,
            deadline,
            1,
            &self.h().all_done,
            || !self.all_done(),
            || Ok(self.all_done().then_some(Wakes::NONE)),
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
        self.h().recoveries.load(Relaxed)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.release_bell();
        if self.attached_gen.load(Relaxed) == crate::sys::process::fork_generation() {
            if let Ok(repaired) = self.lock(PRODUCERS) {
                self.peers()
                    .detach(self.my_pid.load(Relaxed), self.my_start.load(Relaxed));
                self.unlock(PRODUCERS, repaired);
            }
        }
    }
}

#[cfg(test)]
mod tests;
