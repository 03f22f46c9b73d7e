//! The multi-producer multi-consumer byte ring behind [`Queue`](super::Queue): a robust mutex,
//! a redo journal, futex words with waiter bits, and a table of attached processes.
//! See the module docs of [`queue`](super) for the crash-safety argument.

use std::io;
use std::sync::atomic::{compiler_fence, AtomicU32, AtomicU64, Ordering::*};

use super::error::Stop;
use super::object::{self, Object};
use super::peers::{self, Table};
use super::wait::{Deadline, WaitPolicy};
use crate::mode::CreationMode;
use crate::sys::futex;
use crate::sys::queue::{Locked, Region, MUTEX_SIZE};

const MAGIC: u64 = u64::from_le_bytes(*b"IPCKQUE\x01");
const VERSION: u32 = 1;
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
// Cache line 1: the mutex and the indices, which every operation touches together.
const O_MUTEX: usize = 64;
const O_HEAD: usize = 104;
const O_TAIL: usize = 112;
const O_COUNT: usize = 120;
// Cache line 2: the rest of the state every commit writes, and the redo journal: valid flag,
// then the new values of head, tail, count, bytes, unfinished.
const O_BYTES: usize = 128;
const O_UNFINISHED: usize = 136;
const O_J_VALID: usize = 144;
const O_J: usize = 152;
const STATE_FIELDS: [usize; 5] = [O_HEAD, O_TAIL, O_COUNT, O_BYTES, O_UNFINISHED];
// Cache line 3: rarely written, under the lock.
const O_CLOSED: usize = 192;
const O_RECOVERIES: usize = 200;
// Number of processes that ever attached.
const O_ATTACHED_EVER: usize = 208;
// Futex words (each on its own cache line): bit 0 = someone sleeps, the rest a sequence.
const O_NOT_EMPTY: usize = 256;
const O_NOT_FULL: usize = 320;
const O_ALL_DONE: usize = 384;
// Attached processes: SLOTS x (pid, start time, handles).
const O_PEERS: usize = 448;
const SLOTS: usize = 64;
const DATA_OFF: usize = 2048;
const _: () = assert!(
    O_MUTEX + MUTEX_SIZE <= O_HEAD
        && O_J + 40 == O_CLOSED
        && O_PEERS + SLOTS * 24 <= DATA_OFF
        && DATA_OFF % 64 == 0
);

const TAG_RECORD: u64 = 0xA5 << 56;
const TAG_SKIP: u64 = 0x5A << 56;
const TAG_MASK: u64 = 0xFF << 56;

/// Trylock rounds before sleeping in `pthread_mutex_lock`; with the backoff below about
/// 150 pause instructions in all, a few microseconds, longer than any critical section.
const LOCK_SPINS: u32 = 12;
/// Trylock rounds under [`WaitPolicy::SpinThenPark`]: about 4000 pause instructions, some
/// tens of microseconds, before `pthread_mutex_lock` may sleep.
const SPIN_LOCK_SPINS: u32 = 256;
/// Largest message count, byte bound and message size a queue accepts.
pub(crate) const MAX_CAPACITY: u64 = 1 << 32;
pub(crate) const MAX_BYTES: u64 = 1 << 40;
/// Largest ring position (head, tail) and unfinished count a valid header holds.
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
        r.mutex_init(O_MUTEX)?;
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
                format!("{label} is not an ipckit queue of layout version {VERSION} (magic {magic:#x}, version {version})"),
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
    fn attach(&self) -> io::Result<()> {
        let gen = crate::sys::queue::fork_generation();
        if self.attached_gen.load(Relaxed) == gen {
            return Ok(());
        }
        let me = peers::me();
        let died = self.lock()?;
        if self.peers().attach(me.0, me.1) {
            self.u64(O_ATTACHED_EVER).fetch_add(1, Relaxed);
        }
        self.unlock(died);
        self.my_pid.store(me.0, Relaxed);
        self.my_start.store(me.1, Relaxed);
        self.attached_gen.store(gen, Relaxed);
        Ok(())
    }

    /// Locks, repairing the state if the previous owner died. Returns whether a repair was
    /// made (then the unlock wakes everybody, since the dead owner may have owed a wake).
    fn lock(&self) -> io::Result<bool> {
        let spins = match self.policy {
            WaitPolicy::Park => LOCK_SPINS,
            // A spinning caller would rather keep trying than pay a futex sleep and wake-up
            // when the holder is merely slow (preempted on a busy machine).
            WaitPolicy::SpinThenPark(_) => SPIN_LOCK_SPINS,
        };
        match self.r().mutex_lock(O_MUTEX, spins)? {
            Locked::Clean => Ok(false),
            Locked::OwnerDied => {
                // Roll the journal forward if the dead owner was inside a commit: the new
                // values are complete once J_VALID is set, and applying them is idempotent.
                if self.u64(O_J_VALID).load(Relaxed) == 1 {
                    self.apply_journal();
                }
                self.u64(O_RECOVERIES).fetch_add(1, Relaxed);
                self.r().mutex_consistent(O_MUTEX)?;
                Ok(true)
            }
        }
    }

    fn unlock(&self, repaired: bool) {
        self.r().mutex_unlock(O_MUTEX);
        if repaired {
            for w in [O_NOT_EMPTY, O_NOT_FULL, O_ALL_DONE] {
                self.u32(w).fetch_add(2, Relaxed);
                futex::wake_all(self.u32(w));
            }
        }
    }

    fn apply_journal(&self) {
        for (i, &f) in STATE_FIELDS.iter().enumerate() {
            let v = self.u64(O_J + 8 * i).load(Relaxed);
            self.u64(f).store(v, Relaxed);
        }
        compiler_fence(SeqCst);
        self.u64(O_J_VALID).store(0, Relaxed);
    }

    /// Commits new values of the protected state so that a death at any instruction leaves
    /// either the old state (journal not yet valid) or the new one (journal valid: the next
    /// locker rolls it forward). Compiler fences keep the stores in program order; x86 keeps
    /// them in that order for other cores, and the next locker's lock acquisition orders them
    /// for it on any architecture.
    fn commit(&self, new: [u64; 5]) {
        for (i, v) in new.iter().enumerate() {
            self.u64(O_J + 8 * i).store(*v, Relaxed);
        }
        compiler_fence(SeqCst);
        self.u64(O_J_VALID).store(1, Relaxed);
        compiler_fence(SeqCst);
        self.apply_journal();
    }

    /// Reads and checks the protected state (under the lock).
    fn state(&self) -> io::Result<[u64; 5]> {
        let s = STATE_FIELDS.map(|f| self.u64(f).load(Relaxed));
        let [head, tail, count, bytes, unfinished] = s;
        // The positions only grow (2^62 bytes take centuries to pass), and every message in the
        // queue is unfinished: bounding them keeps the arithmetic below from overflowing.
        if head > tail
            || tail > MAX_POSITION
            || unfinished < count
            || unfinished > MAX_POSITION
            || tail - head > self.ring
            || head % 8 != 0
            || tail % 8 != 0
            || count > self.geo.cap_msgs
            || bytes > self.geo.cap_bytes
            || (count == 0) != (head == tail)
        {
            return Err(corrupted(format_args!(
                "{}: head {head}, tail {tail}, count {count}, bytes {bytes}, unfinished \
                 {unfinished} (ring {})",
                self.obj.label(),
                self.ring
            )));
        }
        Ok(s)
    }

    fn data(&self, pos: u64) -> usize {
        DATA_OFF + pos as usize
    }

    /// Under the lock: appends `msg` or says why not.
    fn put_locked(&self, msg: &[u8]) -> Result<Wakes, Stop> {
        if self.u64(O_CLOSED).load(Relaxed) != 0 {
            return Err(Stop::Disconnected);
        }
        let mut st = self.state()?;
        self.stage_put(&mut st, msg)?;
        self.commit(st);
        Ok(Wakes {
            not_empty: self.take_waiters(O_NOT_EMPTY),
            not_full: false,
            all_done: false,
        })
    }

    /// Under the lock: appends as many of `msgs` as fit (a prefix, counted in `done`) with
    /// one commit, or says why none could be.
    fn put_many_locked<M: AsRef<[u8]>>(&self, msgs: &[M], done: &mut usize) -> Result<Wakes, Stop> {
        if self.u64(O_CLOSED).load(Relaxed) != 0 {
            return Err(Stop::Disconnected);
        }
        let mut st = self.state()?;
        let mut n = 0;
        for msg in msgs {
            match self.stage_put(&mut st, msg.as_ref()) {
                Ok(()) => n += 1,
                Err(Stop::Full) => break,
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Err(Stop::Full);
        }
        // One commit for the whole batch: a death before it leaves none of its records
        // reachable, a death after it all of them.
        self.commit(st);
        *done = n;
        Ok(Wakes {
            not_empty: self.take_waiters(O_NOT_EMPTY),
            not_full: false,
            all_done: false,
        })
    }

    /// Under the lock: writes `msg`'s record past the tail of the state `st` (read by
    /// [`Ring::state`], advanced by the records staged before in this lock hold) and advances
    /// `st` past it, or says it does not fit. Nothing is visible before `st` is committed.
    #[inline(always)]
    fn stage_put(&self, st: &mut [u64; 5], msg: &[u8]) -> Result<(), Stop> {
        let [head, tail, count, bytes, unfinished] = *st;
        let len = msg.len() as u64;
        if count >= self.geo.cap_msgs || bytes + len > self.geo.cap_bytes {
            return Err(Stop::Full);
        }
        let rec = 8 + align8(len);
        let pos = tail % self.ring;
        let to_end = self.ring - pos;
        let (start, at) = if rec > to_end {
            (tail + to_end, 0)
        } else {
            (tail, pos)
        };
        if start + rec - head > self.ring {
            return Err(Stop::Full);
        }
        // Everything below tail+... is free space: invisible until the commit.
        if at != pos {
            self.r().write(self.data(pos), &TAG_SKIP.to_le_bytes())?;
        }
        self.r()
            .write(self.data(at), &(TAG_RECORD | len).to_le_bytes())?;
        self.r().write(self.data(at + 8), msg)?;
        *st = [head, start + rec, count + 1, bytes + len, unfinished + 1];
        Ok(())
    }

    /// Under the lock: removes the oldest message into `out` or says why not.
    fn get_locked(&self, out: &mut Vec<u8>) -> Result<Wakes, Stop> {
        let mut st = self.state()?;
        if st[2] == 0 {
            return Err(self.empty_stop());
        }
        let (at, len) = self.stage_get(&mut st)?;
        self.r().read_to_vec(at, len, out)?;
        self.commit(st);
        Ok(Wakes {
            not_empty: false,
            not_full: self.take_waiters(O_NOT_FULL),
            all_done: false,
        })
    }

    /// Under the lock: removes up to `max` (at least 1) of the oldest messages with one
    /// commit, appending their payloads to `buf` and each one's end offset in `buf` to
    /// `ends`, or says why none could be. On an error `buf` and `ends` are as they were.
    fn get_many_locked(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<Wakes, Stop> {
        let mut st = self.state()?;
        if st[2] == 0 {
            return Err(self.empty_stop());
        }
        let (buf_len, ends_len) = (buf.len(), ends.len());
        let res = (|| {
            let mut n = 0;
            while n < max && st[2] > 0 {
                let (at, len) = self.stage_get(&mut st)?;
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
        self.commit(st);
        Ok(Wakes {
            not_empty: false,
            not_full: self.take_waiters(O_NOT_FULL),
            all_done: false,
        })
    }

    /// Why a `get` finds the queue empty: closed, or not yet.
    fn empty_stop(&self) -> Stop {
        if self.u64(O_CLOSED).load(Relaxed) != 0 {
            Stop::Disconnected
        } else {
            Stop::Empty
        }
    }

    /// Under the lock: checks the oldest record of the non-empty state `st` and advances
    /// `st` past it; returns the region offset and length of its payload, to be copied out
    /// before `st` is committed.
    #[inline(always)]
    fn stage_get(&self, st: &mut [u64; 5]) -> Result<(usize, usize), Stop> {
        let [head, tail, count, bytes, unfinished] = *st;
        let mut start = head;
        let mut word = [0u8; 8];
        self.r().read(self.data(start % self.ring), &mut word)?;
        let mut hdr = u64::from_le_bytes(word);
        if hdr & TAG_MASK == TAG_SKIP {
            start += self.ring - start % self.ring;
            self.r().read(self.data(start % self.ring), &mut word)?;
            hdr = u64::from_le_bytes(word);
        }
        let len = hdr & !TAG_MASK;
        let rec = 8 + align8(len);
        let at = start % self.ring;
        if hdr & TAG_MASK != TAG_RECORD
            || len > self.geo.max_msg
            || len > bytes
            || rec > self.ring - at
            || start + rec > tail
        {
            return Err(Stop::Failed(corrupted(format_args!(
                "{}: record header {hdr:#x} at ring offset {at}",
                self.obj.label()
            ))));
        }
        *st = [start + rec, tail, count - 1, bytes - len, unfinished];
        Ok((self.data(at + 8), len as usize))
    }

    /// Under the lock: if someone sleeps on `word`, advance its sequence and clear the bit.
    fn take_waiters(&self, word: usize) -> bool {
        let w = self.u32(word);
        let v = w.load(Relaxed);
        if v & 1 == 1 {
            w.store((v & !1).wrapping_add(2), Relaxed);
            true
        } else {
            false
        }
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

    /// Runs `op` under the lock until it succeeds, fails for good, or the deadline passes;
    /// sleeps on the futex `word` in between. `blocked` is a lock-free pre-check used for
    /// spinning (the spin runs before this waiter registers, so a spinning waiter costs the
    /// other side no wake-up syscall).
    fn run(
        &self,
        deadline: Deadline,
        word: usize,
        blocked_stop: Stop,
        blocked: impl Fn() -> bool,
        mut op: impl FnMut() -> Result<Wakes, Stop>,
    ) -> Result<(), Stop> {
        self.attach()?;
        let spin = self.policy.spin_for();
        let mut register = spin.is_zero();
        let mut blocked_stop = Some(blocked_stop);
        if !register && !matches!(deadline, Deadline::Now) && blocked() {
            // Spinning anyway: wait for the lock-free pre-check before taking the lock, so a
            // consumer that caught up does not take the lock from the producer only to find
            // the queue empty.
            deadline.spin(spin, &blocked);
        }
        loop {
            let repaired = self.lock()?;
            let res = op();
            let mut expect = None;
            if register && matches!(res, Err(Stop::Full) | Err(Stop::Empty)) {
                if let Deadline::Now = deadline {
                } else {
                    // Register as a sleeper while still holding the lock: any commit after our
                    // check sees the bit and wakes us.
                    expect = Some(self.u32(word).fetch_or(1, Relaxed) | 1);
                }
            }
            self.unlock(repaired);
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
            let Some(expect) = expect else {
                deadline.spin(spin, &blocked);
                register = true;
                continue;
            };
            futex::wait(self.u32(word), expect, Some(slice))?;
            if self.u32(word).load(Relaxed) == expect && self.peers_gone() {
                return Err(Stop::Disconnected);
            }
        }
    }

    /// Whether another process attached at some time and none is alive now.
    fn peers_gone(&self) -> bool {
        self.u64(O_ATTACHED_EVER).load(Relaxed) >= 2
            && !self.peers().others_alive(self.my_pid.load(Relaxed))
    }

    pub(crate) fn put(&self, msg: &[u8], deadline: Deadline) -> Result<(), Stop> {
        if msg.len() as u64 > self.geo.max_msg {
            return Err(Stop::Failed(crate::error::invalid_input(format_args!(
                "message of {} bytes over the queue's limit of {} bytes",
                msg.len(),
                self.geo.max_msg
            ))));
        }
        let cap = self.geo.cap_msgs;
        let cap_bytes = self.geo.cap_bytes;
        let len = msg.len() as u64;
        self.run(
            deadline,
            O_NOT_FULL,
            Stop::Full,
            || {
                self.u64(O_CLOSED).load(Relaxed) == 0
                    && (self.u64(O_COUNT).load(Relaxed) >= cap
                        || self.u64(O_BYTES).load(Relaxed).saturating_add(len) > cap_bytes)
            },
            || self.put_locked(msg),
        )
    }

    pub(crate) fn get(&self, out: &mut Vec<u8>, deadline: Deadline) -> Result<(), Stop> {
        self.run(
            deadline,
            O_NOT_EMPTY,
            Stop::Empty,
            || self.u64(O_COUNT).load(Relaxed) == 0 && self.u64(O_CLOSED).load(Relaxed) == 0,
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
        let cap = self.geo.cap_msgs;
        let cap_bytes = self.geo.cap_bytes;
        let mut done = 0;
        while done < fit {
            let rest = &msgs[done..fit];
            let first = rest[0].as_ref().len() as u64;
            let mut n = 0;
            let res = self.run(
                deadline,
                O_NOT_FULL,
                Stop::Full,
                || {
                    self.u64(O_CLOSED).load(Relaxed) == 0
                        && (self.u64(O_COUNT).load(Relaxed) >= cap
                            || self.u64(O_BYTES).load(Relaxed) + first > cap_bytes)
                },
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
            deadline,
            O_NOT_EMPTY,
            Stop::Empty,
            || self.u64(O_COUNT).load(Relaxed) == 0 && self.u64(O_CLOSED).load(Relaxed) == 0,
            || self.get_many_locked(max, buf, ends),
        )
    }

    pub(crate) fn close(&self) -> io::Result<()> {
        let repaired = self.lock()?;
        self.u64(O_CLOSED).store(1, Relaxed);
        let w = Wakes {
            not_empty: self.take_waiters(O_NOT_EMPTY),
            not_full: self.take_waiters(O_NOT_FULL),
            all_done: false,
        };
        self.unlock(repaired);
        self.wake(w);
        Ok(())
    }

    pub(crate) fn task_done(&self) -> io::Result<()> {
        self.attach()?;
        let repaired = self.lock()?;
        let res = (|| {
            let [head, tail, count, bytes, unfinished] = self.state()?;
            if unfinished <= count {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "task_done called too many times on queue {}: no message taken from it is unfinished",
                        self.obj.label()
                    ),
                ));
            }
            self.commit([head, tail, count, bytes, unfinished - 1]);
            Ok(unfinished == 1 && self.take_waiters(O_ALL_DONE))
        })();
        self.unlock(repaired);
        if res? {
            futex::wake_all(self.u32(O_ALL_DONE));
        }
        Ok(())
    }

    pub(crate) fn join(&self, deadline: Deadline) -> Result<(), Stop> {
        self.run(
            deadline,
            O_ALL_DONE,
            Stop::Timeout,
            || true,
            || {
                let [.., unfinished] = self.state()?;
                if unfinished == 0 {
                    Ok(Wakes::NONE)
                } else {
                    Err(Stop::Empty)
                }
            },
        )
    }

    pub(crate) fn len(&self) -> u64 {
        self.u64(O_COUNT).load(Relaxed)
    }
    pub(crate) fn used_bytes(&self) -> u64 {
        self.u64(O_BYTES).load(Relaxed)
    }
    pub(crate) fn is_closed(&self) -> bool {
        self.u64(O_CLOSED).load(Relaxed) != 0
    }
    pub(crate) fn recoveries(&self) -> u64 {
        self.u64(O_RECOVERIES).load(Relaxed)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.attached_gen.load(Relaxed) == crate::sys::queue::fork_generation() {
            if let Ok(repaired) = self.lock() {
                self.peers()
                    .detach(self.my_pid.load(Relaxed), self.my_start.load(Relaxed));
                self.unlock(repaired);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Ring {
        let geo = Geometry {
            cap_msgs: 4,
            cap_bytes: 1024,
            max_msg: 256,
        };
        Ring::anonymous(geo, WaitPolicy::Park).unwrap()
    }

    /// Runs, on a thread that then exits holding the lock (as a killed process would), the
    /// start of a `get` commit that removes the first message: the journal is written, and if
    /// `valid` the valid flag is set and only the head is applied.
    fn die_inside_get_commit(ring: &Ring, valid: bool) {
        std::thread::scope(|s| {
            s.spawn(|| {
                ring.lock().unwrap();
                let [head, tail, count, bytes, unfinished] = ring.state().unwrap();
                let new = [head + 16, tail, count - 1, bytes - 5, unfinished];
                for (i, v) in new.iter().enumerate() {
                    ring.u64(O_J + 8 * i).store(*v, Relaxed);
                }
                if valid {
                    ring.u64(O_J_VALID).store(1, Relaxed);
                    ring.u64(O_HEAD).store(new[0], Relaxed);
                }
                // Exit without unlocking: glibc's robust list hands the mutex to the kernel,
                // which marks it owner-died.
            });
        });
    }

    #[test]
    fn a_commit_torn_after_its_journal_is_valid_is_rolled_forward() {
        let ring = small();
        ring.put(b"hello", Deadline::Now).unwrap();
        ring.put(b"world", Deadline::Now).unwrap();
        die_inside_get_commit(&ring, true);
        let mut out = Vec::new();
        ring.get(&mut out, Deadline::Now).unwrap();
        assert_eq!(out, b"world", "the dead consumer's message is taken, once");
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

    /// Stages `msgs` as `put_many` does on a thread that then exits holding the lock, after
    /// writing the journal and, if `valid`, setting its valid flag (but applying nothing).
    fn die_inside_put_many_commit(ring: &Ring, msgs: &[&[u8]], valid: bool) {
        std::thread::scope(|s| {
            s.spawn(|| {
                ring.lock().unwrap();
                let mut st = ring.state().unwrap();
                for m in msgs {
                    ring.stage_put(&mut st, m).unwrap();
                }
                for (i, v) in st.iter().enumerate() {
                    ring.u64(O_J + 8 * i).store(*v, Relaxed);
                }
                if valid {
                    ring.u64(O_J_VALID).store(1, Relaxed);
                }
            });
        });
    }

    #[test]
    fn a_batch_commit_is_all_or_nothing_when_its_producer_dies() {
        let mut out = Vec::new();
        for valid in [false, true] {
            let ring = small();
            ring.put(b"first", Deadline::Now).unwrap();
            die_inside_put_many_commit(&ring, &[b"a", b"bb", b"ccc"], valid);
            let mut ends = Vec::new();
            out.clear();
            ring.get_many(10, &mut out, &mut ends, Deadline::Now)
                .unwrap();
            let want: &[u8] = if valid { b"firstabbccc" } else { b"first" };
            assert_eq!(out, want, "journal valid: {valid}");
            assert_eq!(ends.len(), if valid { 4 } else { 1 });
            assert_eq!(ring.recoveries(), 1);
            assert_eq!((ring.len(), ring.used_bytes()), (0, 0));
            assert_eq!(ring.put_many(&[b"x", b"y"], Deadline::Now).0, 2);
            ring.get(&mut out, Deadline::Now).unwrap();
            assert_eq!(out, b"x");
        }
    }

    #[test]
    fn huge_indices_or_counters_in_the_header_are_errors_not_overflows() {
        let top = !7u64;
        for (field, value) in [
            (O_HEAD, top),
            (O_TAIL, top),
            (O_UNFINISHED, u64::MAX),
            (O_BYTES, u64::MAX),
        ] {
            let ring = small();
            if field == O_TAIL || field == O_HEAD {
                ring.u64(O_HEAD).store(value, Relaxed);
                ring.u64(O_TAIL).store(value, Relaxed);
            } else {
                ring.u64(field).store(value, Relaxed);
            }
            let mut out = Vec::new();
            assert!(
                matches!(ring.put(b"x", Deadline::Now), Err(Stop::Failed(_))),
                "put with field {field} = {value:#x}"
            );
            assert!(
                matches!(ring.get(&mut out, Deadline::Now), Err(Stop::Failed(_))),
                "get with field {field} = {value:#x}"
            );
            assert!(ring.task_done().is_err());
        }
    }

    #[test]
    fn opening_ignores_an_absurd_geometry() {
        let geo = Geometry {
            cap_msgs: u64::MAX,
            cap_bytes: u64::MAX,
            max_msg: u64::MAX,
        };
        let name = format!("ipckit-ring-open-absurd-{}", std::process::id());
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
