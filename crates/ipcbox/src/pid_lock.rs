//! A lock in shared memory whose word names its owner, a process or a thread, by its ID and a
//! tag of its start time. It is the lock of the object store and of each side of a queue
//! (process owners), and of `sync::Mutex`, `shm::Value` and `shm::Array` (thread owners, see
//! `robust`).
//!
//! Guarantees:
//!
//! * With nobody waiting, locking and unlocking never enter the kernel.
//! * A dead owner's lock is taken over, and the caller told to repair what the lock protects
//!   ([`Acquired::OwnerDied`]).
//! * A sleeper that is killed leaves nothing behind.
//! * A live owner that holds the lock past the caller's [`Patience`] (stopped, or a word a peer
//!   wrote) makes `lock` fail with `TimedOut` rather than hang, unless that patience is
//!   `Duration::MAX` (`sync::Mutex::lock`, which waits as `pthread_mutex_lock` does).
//! * A peer that overwrites the word can make lockers wait, fail, or (with a forged word naming
//!   no live owner) take it while someone holds it; never make this process write anywhere.
//!
//! Limits:
//!
//! * The start time tag has 9 bits: a new process on a dead owner's PID passes for the owner
//!   when their start times are equal modulo 511 clock ticks (always within one tick, about
//!   once in 511 times otherwise; LAYOUT.md, "Lock words"), and the lock then waits for that
//!   process as for a live owner.
//! * All processes using one lock must share a PID namespace, and a time namespace (start
//!   times are read through `/proc`).
//!
//! The lock word's format and the protocol: LAYOUT.md, "Lock words".

// Locking is one compare-and-swap of 0 to our word, unlocking one back. A locker about to
// sleep sets the word's top bit; an unlock that finds it set wakes one sleeper, which then
// takes the lock with the bit set (others may sleep still), so the bit clears itself once
// nobody waits. A locker spins first, then sleeps on the word in slices; it asks
// `crate::liveness` whether the owner lives when spinning ends and after every slice without
// progress.
//
// glibc links a robust mutex into its owner thread's robust list through pointers stored
// inside the mutex, so a peer that overwrites them can make the owner's unlock write through
// a pointer of the peer's choosing. This lock keeps nothing of its owner's but the word.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::liveness::{self, start_time, Liveness};
use crate::sys::futex;
use crate::sys::process::{fork_generation, my_lock_word};

/// The fields of a lock word: the owner's ID, its start time tag, and the bit saying someone
/// may sleep on the word.
// Linux IDs are below 2^22 (`PID_MAX_LIMIT`). The tag keeps a new process given a dead owner's
// PID from passing for the owner: with the default `pid_max` of 32768 a PID comes round
// again within minutes. Nine bits is what the 32-bit futex word leaves. More would only shrink
// the chance for unrelated start times (a layout change for every lock in shared memory): a
// process reborn in the owner's clock tick has the owner's very start time, whatever the
// width.
const PID_BITS: u32 = 22;
const PID_MASK: u32 = (1 << PID_BITS) - 1;
const TAG_MASK: u32 = 0x1ff << PID_BITS;
const WAITING: u32 = 1 << 31;

/// The tag of a start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
fn tag(start: u64) -> u32 {
    (start % 511) as u32 + 1
}

/// The lock word naming the process or thread `id` as owner.
fn word_of(id: u32) -> u32 {
    let tag = start_time(id).map_or(0, tag);
    (id & PID_MASK) | tag << PID_BITS
}

thread_local! {
    /// This thread's lock word and the fork generation it was made in (a child of `fork`
    /// runs the forking thread under a new thread ID).
    static THREAD_WORD: std::cell::Cell<(u64, u32)> = const { std::cell::Cell::new((u64::MAX, 0)) };
}

/// Who owns a lock: the calling process (any of its threads may unlock what another locked,
/// and a thread of the owner finding it held waits), or the calling thread (locking it again
/// from that thread is an error, and a thread that ends holding it is a dead owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Process,
    Thread,
}

impl Owner {
    /// The lock word naming the caller as owner.
    #[inline]
    fn me(self) -> u32 {
        match self {
            Owner::Process => my_lock_word(word_of),
            Owner::Thread => {
                let gen = fork_generation();
                THREAD_WORD.with(|cached| match cached.get() {
                    (g, word) if g == gen => word,
                    _ => {
                        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                        let word = word_of(tid);
                        cached.set((gen, word));
                        word
                    }
                })
            }
        }
    }

    /// Whether the owner named by lock word `word` may live: its ID names a live process or
    /// thread whose start time has the word's tag (when both are known), or the system cannot
    /// tell (see [`liveness`]).
    fn alive(self, word: u32) -> bool {
        let (id, want) = (word & PID_MASK, (word & TAG_MASK) >> PID_BITS);
        let same = |start: u64| want == 0 || tag(start) == want;
        let verdict = match self {
            Owner::Process => liveness::process(id, same),
            Owner::Thread => liveness::thread(id, same),
        };
        verdict != Liveness::Dead
    }
}

/// How a [`PidLock`] was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous owner unlocked it.
    Clean,
    /// The previous owner died holding it: repair what it protects before unlocking.
    OwnerDied,
}

/// How long to try before sleeping, how long each sleep lasts, and how long a live owner is
/// waited for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// Compare-and-swap attempts, with an exponential back-off of up to 16 pauses between.
    pub(crate) spins: u32,
    /// One futex sleep; the owner's life is checked after each one without progress.
    pub(crate) slice: Duration,
    /// How long a lock held by a live owner is waited for before `TimedOut` (`Duration::MAX`:
    /// for ever).
    pub(crate) limit: Duration,
}

/// A lock word in shared memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PidLock<'a> {
    word: &'a AtomicU32,
    owner: Owner,
}

impl<'a> PidLock<'a> {
    /// A lock owned by processes.
    pub(crate) fn new(word: &'a AtomicU32) -> PidLock<'a> {
        PidLock {
            word,
            owner: Owner::Process,
        }
    }

    /// A lock owned by threads.
    pub(crate) fn per_thread(word: &'a AtomicU32) -> PidLock<'a> {
        PidLock {
            word,
            owner: Owner::Thread,
        }
    }

    /// The lock word naming the caller as owner.
    #[inline]
    pub(crate) fn me(&self) -> u32 {
        self.owner.me()
    }

    /// Whether `me` (from [`PidLock::me`]) owns the lock now.
    pub(crate) fn is_held_by(&self, me: u32) -> bool {
        self.word.load(Relaxed) & !WAITING == me
    }

    /// Whether anyone holds the lock now (a hint for spinning: reads, never writes).
    pub(crate) fn is_held(&self) -> bool {
        self.word.load(Relaxed) != 0
    }

    /// Takes the lock for the caller (this process or this thread, as the lock's owners are).
    /// `what` names the lock in a `TimedOut` error.
    ///
    /// # Errors
    ///
    /// * `TimedOut` when a live owner (or an ID written into the word) holds it longer than
    ///   `patience.limit`.
    /// * `Deadlock` when a thread-owned lock is already the calling thread's.
    #[inline]
    pub(crate) fn lock(
        &self,
        patience: Patience,
        what: &dyn Fn() -> String,
    ) -> io::Result<Acquired> {
        let me = self.owner.me();
        if self.word.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
            return Ok(Acquired::Clean);
        }
        self.lock_contended(me, patience, what)
    }

    /// [`PidLock::lock`] once the first compare-and-swap failed.
    #[cold]
    fn lock_contended(
        &self,
        me: u32,
        patience: Patience,
        what: &dyn Fn() -> String,
    ) -> io::Result<Acquired> {
        for round in 0..patience.spins {
            for _ in 0..(1u32 << round.min(4)) {
                std::hint::spin_loop();
            }
            if self.word.load(Relaxed) == 0
                && self.word.compare_exchange(0, me, SeqCst, Relaxed).is_ok()
            {
                return Ok(Acquired::Clean);
            }
        }
        if self.owner == Owner::Thread && self.word.load(Relaxed) & !WAITING == me {
            return Err(io::Error::new(
                io::ErrorKind::Deadlock,
                format!("{}: the calling thread holds the lock already", what()),
            ));
        }
        let give_up = Deadline::after(patience.limit);
        let mut check = true;
        // Once we have slept, others may sleep too: take the lock with the bit set, so our
        // unlock wakes the next of them.
        let mut slept = 0;
        loop {
            let cur = self.word.load(Relaxed);
            if cur == 0 {
                if self
                    .word
                    .compare_exchange(0, me | slept, SeqCst, Relaxed)
                    .is_ok()
                {
                    return Ok(Acquired::Clean);
                }
                continue;
            }
            let owner = cur & !WAITING;
            // A thread-owned word with our thread ID that is not our word names an earlier
            // thread given the same ID (or is forged): dead, whatever its tag, since the one
            // live thread with that ID, ours, does not hold the lock.
            let ours = self.owner == Owner::Thread && owner & PID_MASK == me & PID_MASK;
            if check && owner != me && (ours || !self.owner.alive(owner)) {
                if self
                    .word
                    .compare_exchange(cur, me | (cur & WAITING), SeqCst, Relaxed)
                    .is_ok()
                {
                    return Ok(Acquired::OwnerDied);
                }
                continue;
            }
            if give_up.has_passed() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: the lock stayed held by live {} {} for {:?}",
                        what(),
                        match self.owner {
                            Owner::Process => "pid",
                            Owner::Thread => "thread",
                        },
                        cur & PID_MASK,
                        patience.limit
                    ),
                ));
            }
            if cur & WAITING == 0
                && self
                    .word
                    .compare_exchange(cur, cur | WAITING, SeqCst, Relaxed)
                    .is_err()
            {
                continue;
            }
            let sleep = give_up.slice(patience.slice).unwrap_or_default();
            futex::wait(self.word, cur | WAITING, Some(sleep))?;
            slept = WAITING;
            // A whole slice without progress: look at the owner again.
            check = self.word.load(Relaxed) & !WAITING == owner;
        }
    }

    /// Releases the lock the caller holds and wakes one sleeper, if any may sleep.
    pub(crate) fn unlock(&self) {
        self.unlock_as(self.owner.me());
    }

    /// As [`PidLock::unlock`], for a caller that has its word (from [`PidLock::me`]) at hand.
    #[inline]
    pub(crate) fn unlock_as(&self, me: u32) {
        // Only a peer that overwrote the word makes both fail; leave it to them then.
        if self.word.compare_exchange(me, 0, SeqCst, Relaxed).is_err()
            && self
                .word
                .compare_exchange(me | WAITING, 0, SeqCst, Relaxed)
                .is_ok()
        {
            futex::wake(self.word, 1);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::liveness::tests::dead_pid;
    use std::time::Instant;

    const QUICK: Patience = Patience {
        spins: 4,
        slice: Duration::from_millis(5),
        limit: Duration::from_millis(200),
    };

    #[test]
    fn a_dead_owners_lock_is_taken_over_and_said_so() {
        let word = AtomicU32::new(dead_pid());
        let lock = PidLock::new(&word);
        assert_eq!(
            lock.lock(QUICK, &|| "test".into()).unwrap(),
            Acquired::OwnerDied
        );
        assert_eq!(word.load(Relaxed), Owner::Process.me());
        assert_eq!(word.load(Relaxed) & PID_MASK, std::process::id());
        lock.unlock();
        assert_eq!(
            lock.lock(QUICK, &|| "test".into()).unwrap(),
            Acquired::Clean
        );
        lock.unlock();
        assert_eq!(word.load(Relaxed), 0);
    }

    #[test]
    fn a_live_owner_past_the_limit_is_a_timeout_naming_it() {
        // Our parent (the test runner's parent) lives throughout the test.
        let parent = std::os::unix::process::parent_id();
        let word = AtomicU32::new(parent);
        let lock = PidLock::new(&word);
        let err = lock.lock(QUICK, &|| "queue q".into()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(
            err.to_string().contains(&format!(
                "queue q: the lock stayed held by live pid {parent}"
            )),
            "{err}"
        );
        assert_eq!(
            word.load(Relaxed),
            parent | WAITING,
            "a live owner's lock is never taken (the waiter left its bit for the owner's unlock)"
        );
    }

    /// The file a `role_lock_and_exit` child maps; names the test process, so parallel runs
    /// do not share it.
    const ROLE_FILE: &str = "IPCBOX_PID_LOCK_ROLE_FILE";

    fn map_file(path: &std::path::Path) -> crate::sys::mmap::Region<AtomicU32> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        file.set_len(4096).unwrap();
        let map = crate::sys::mmap::Mapping::map_fd(&file, 4096, true).unwrap();
        crate::sys::mmap::Region::new(map).unwrap()
    }

    /// A child role (run by `a_dead_owners_lock_is_taken_over_after_its_pid_is_reused`): takes
    /// the lock in the file named by `ROLE_FILE` and exits holding it.
    #[test]
    #[ignore = "a child role, run by another test"]
    fn role_lock_and_exit() {
        let Some(path) = std::env::var_os(ROLE_FILE) else {
            return;
        };
        let region = map_file(path.as_ref());
        let lock = PidLock::new(region.header());
        lock.lock(QUICK, &|| "role".into()).unwrap();
    }

    /// Kills and reaps a child on drop.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_dead_owners_lock_is_taken_over_after_its_pid_is_reused() {
        // With the default pid_max of 32768 a PID comes round again within minutes on a busy
        // machine. Reuse is forced here through ns_last_pid (root only; skipped otherwise).
        const LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";
        let path = std::env::temp_dir().join(format!("ipcbox-pid-lock-{}", std::process::id()));
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let _remove = Remove(path.clone());
        let region = map_file(&path);
        let word = region.header();
        for _ in 0..50 {
            word.store(0, SeqCst);
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "pid_lock::tests::role_lock_and_exit"])
                .args(["--ignored", "--quiet", "--test-threads=1"])
                .env(ROLE_FILE, &path)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut owner = Reap(status);
            let dead = owner.0.id();
            // Its start time, while /proc still has it (a zombie's too).
            let dead_start = start_time(dead);
            assert!(owner.0.wait().unwrap().success());
            assert_ne!(word.load(SeqCst), 0, "the child took the lock");
            // Start times count 10 ms ticks, and a PID comes round only after tens of
            // thousands of forks, never within one tick: wait until the clock start times
            // are read from has passed the child's (uptime, in the same ticks).
            if let Some(start) = dead_start {
                while uptime_ticks().is_some_and(|now| now <= start + 1) {
                    std::thread::yield_now();
                }
            }
            if std::fs::write(LAST_PID, format!("{}", dead - 1)).is_err() {
                eprintln!("skipped: cannot write {LAST_PID} to force PID reuse");
                return;
            }
            let reused = Reap(
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap(),
            );
            if reused.0.id() != dead
                || start_time(dead).map(tag) == Some((word.load(SeqCst) & TAG_MASK) >> PID_BITS)
            {
                // Another process took the PID first, or the start times share a tag (1 in
                // 511): try again.
                continue;
            }
            let lock = PidLock::new(word);
            let got = lock.lock(QUICK, &|| "test".into());
            assert!(
                matches!(got, Ok(Acquired::OwnerDied)),
                "the dead owner's PID {dead} now names a live process that never locked: {got:?}"
            );
            lock.unlock();
            assert_eq!(word.load(SeqCst), 0);
            return;
        }
        panic!("could not get a dead child's PID reused in 50 tries");
    }

    /// Clock ticks since boot (`/proc/uptime` in hundredths of a second, the unit of start
    /// times).
    fn uptime_ticks() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/uptime").ok()?;
        let secs: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
        Some((secs * 100.0) as u64)
    }

    #[test]
    fn an_owner_word_names_its_process_by_pid_and_start_time() {
        let me = Owner::Process.me();
        assert_eq!(me & PID_MASK, std::process::id());
        assert_ne!(me & TAG_MASK, 0, "our start time is read from /proc");
        assert_eq!(me & WAITING, 0);
        assert!(Owner::Process.alive(me));
        let other_start = (me & PID_MASK) | (((me & TAG_MASK) >> PID_BITS) % 511 + 1) << PID_BITS;
        assert!(
            !Owner::Process.alive(other_start),
            "same PID, another start time"
        );
        assert!(
            Owner::Process.alive(me & PID_MASK),
            "an unknown start time counts as the owner's"
        );
        assert!(!Owner::Process.alive(dead_pid()));
    }

    #[test]
    fn a_thread_owned_lock_names_the_thread_and_is_taken_over_when_it_ends() {
        let word = AtomicU32::new(0);
        let lock = PidLock::per_thread(&word);
        // A thread that ends holding the lock.
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(lock.lock(QUICK, &|| "t".into()).unwrap(), Acquired::Clean);
                let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                assert_eq!(word.load(Relaxed) & PID_MASK, tid);
                assert!(Owner::Thread.alive(word.load(Relaxed)));
            });
        });
        let dead = word.load(Relaxed);
        // `join` returns once the thread has released its memory; its `/proc` entry goes a
        // moment later, when the kernel reaps it (lockers look again after every slice).
        let joined = Instant::now();
        while Owner::Thread.alive(dead) {
            assert!(
                joined.elapsed() < Duration::from_secs(10),
                "the ended thread {} still looks alive",
                dead & PID_MASK
            );
            std::thread::yield_now();
        }
        assert!(!lock.is_held_by(lock.me()));
        assert_eq!(
            lock.lock(QUICK, &|| "t".into()).unwrap(),
            Acquired::OwnerDied
        );
        assert!(lock.is_held_by(lock.me()));
        // Locking it again from this thread fails instead of waiting for ever.
        let err = lock.lock(QUICK, &|| "mutex m".into()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Deadlock, "{err}");
        assert!(err.to_string().contains("mutex m"), "{err}");
        // Another live thread waits until the limit.
        std::thread::scope(|s| {
            s.spawn(|| {
                let err = lock.lock(QUICK, &|| "mutex m".into()).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
                assert!(err.to_string().contains("held by live thread"), "{err}");
            });
        });
        lock.unlock();
        assert_eq!(word.load(Relaxed), 0);
    }

    #[test]
    fn a_thread_pidfd_tells_a_live_thread_from_an_ended_one() {
        let me = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        assert_eq!(liveness::thread(me, |_| true), Liveness::Alive);
        assert_eq!(
            liveness::thread(me, |_| false),
            Liveness::Dead,
            "not the expected thread"
        );
        let ended = std::thread::spawn(|| rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .join()
            .unwrap();
        // Gone once the kernel has reaped it (a moment after `join`), never alive again
        // unless a new thread gets the ID.
        let joined = Instant::now();
        while liveness::thread(ended, |_| true) == Liveness::Alive {
            assert!(
                joined.elapsed() < Duration::from_secs(10),
                "thread {ended} still alive"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_killed_sleepers_bit_is_gone_after_one_unlock() {
        // A sleeper set the bit on our lock and was killed: nobody will take the wake-up.
        let word = AtomicU32::new(Owner::Process.me() | WAITING);
        let lock = PidLock::new(&word);
        lock.unlock();
        assert_eq!(word.load(Relaxed), 0);
        assert_eq!(
            lock.lock(QUICK, &|| "test".into()).unwrap(),
            Acquired::Clean
        );
        assert_eq!(
            word.load(Relaxed),
            Owner::Process.me(),
            "taken without the bit: unlocks make no syscall"
        );
        lock.unlock();
        assert_eq!(word.load(Relaxed), 0);
    }

    #[test]
    fn threads_take_turns() {
        let word = AtomicU32::new(0);
        let counter = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let lock = PidLock::new(&word);
                    for _ in 0..10_000 {
                        lock.lock(QUICK, &|| "test".into()).unwrap();
                        // Not atomic as a whole: only the lock keeps increments from being lost.
                        let v = counter.load(Relaxed);
                        counter.store(v + 1, Relaxed);
                        lock.unlock();
                    }
                });
            }
        });
        assert_eq!(counter.load(Relaxed), 40_000);
        assert_eq!(
            word.load(Relaxed),
            0,
            "the waiting bit clears itself once nobody waits"
        );
    }
}
