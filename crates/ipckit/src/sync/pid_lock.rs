//! A lock in shared memory whose word holds its owner's process ID: the lock of the object
//! store and of each side of a queue.
//!
//! Unlike glibc's robust mutex, it keeps nothing of its owner's in the shared memory but the
//! PID: glibc links a robust mutex into its owner thread's robust list through pointers stored
//! inside the mutex, so a peer that overwrites them can make the owner's unlock write through
//! a pointer of the peer's choosing. A peer that overwrites this lock can only make lockers
//! wait, fail, or (with a forged PID of a dead process) take it while someone holds it.
//!
//! Locking is one compare-and-swap of 0 to our PID; unlocking one compare-and-swap back and a
//! look at the waiter count, so with nobody waiting no process enters the kernel. A locker
//! spins first, then sleeps on the word in slices. It checks whether the owner still lives
//! (a pidfd: the process gone, or a zombie) when spinning ends and after every slice without
//! progress, and takes a dead owner's lock over, telling the caller to repair what the lock
//! protects. All processes using one lock must share a PID namespace. A live owner that holds
//! the lock past the caller's patience (stopped, or a PID a peer wrote) makes `lock` fail with
//! `TimedOut` rather than hang.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::{Duration, Instant};

use crate::sys::futex;
use crate::sys::queue::my_pid;
use crate::sys::store::process_alive;

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
    /// How long a lock held by a live process is waited for before `TimedOut`.
    pub(crate) limit: Duration,
}

/// A lock word and its waiter count, both in shared memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PidLock<'a> {
    word: &'a AtomicU32,
    waiters: &'a AtomicU32,
}

impl<'a> PidLock<'a> {
    pub(crate) fn new(word: &'a AtomicU32, waiters: &'a AtomicU32) -> PidLock<'a> {
        PidLock { word, waiters }
    }

    /// Takes the lock for this process. `what` names the lock in a `TimedOut` error.
    ///
    /// # Errors
    ///
    /// `TimedOut` when a live process (or a PID written into the word) holds it longer than
    /// `patience.limit`.
    pub(crate) fn lock(
        &self,
        patience: Patience,
        what: &dyn Fn() -> String,
    ) -> io::Result<Acquired> {
        let me = my_pid();
        if self.word.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
            return Ok(Acquired::Clean);
        }
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
        let give_up = Instant::now() + patience.limit;
        let mut check = true;
        loop {
            let cur = self.word.load(Relaxed);
            if cur == 0 {
                if self.word.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
                    return Ok(Acquired::Clean);
                }
                continue;
            }
            if check && cur != me && !process_alive(cur) {
                if self.word.compare_exchange(cur, me, SeqCst, Relaxed).is_ok() {
                    return Ok(Acquired::OwnerDied);
                }
                continue;
            }
            if Instant::now() > give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: the lock stayed held by live pid {cur} for {:?}",
                        what(),
                        patience.limit
                    ),
                ));
            }
            self.waiters.fetch_add(1, SeqCst);
            let woken = futex::wait(self.word, cur, Some(patience.slice));
            self.waiters.fetch_sub(1, SeqCst);
            woken?;
            // A whole slice without progress: look at the owner again.
            check = self.word.load(Relaxed) == cur;
        }
    }

    /// Releases the lock this process holds and wakes one waiter, if any sleeps.
    pub(crate) fn unlock(&self) {
        // Only a peer that overwrote the word makes this fail; leave it to them then.
        if self
            .word
            .compare_exchange(my_pid(), 0, SeqCst, Relaxed)
            .is_ok()
            && self.waiters.load(SeqCst) != 0
        {
            futex::wake(self.word, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Patience = Patience {
        spins: 4,
        slice: Duration::from_millis(5),
        limit: Duration::from_millis(200),
    };

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_dead_owners_lock_is_taken_over_and_said_so() {
        let (word, waiters) = (AtomicU32::new(dead_pid()), AtomicU32::new(0));
        let lock = PidLock::new(&word, &waiters);
        assert_eq!(
            lock.lock(QUICK, &|| "test".into()).unwrap(),
            Acquired::OwnerDied
        );
        assert_eq!(word.load(Relaxed), std::process::id());
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
        let (word, waiters) = (AtomicU32::new(parent), AtomicU32::new(0));
        let lock = PidLock::new(&word, &waiters);
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
            parent,
            "a live owner's lock is never taken"
        );
    }

    #[test]
    fn threads_take_turns() {
        let (word, waiters) = (AtomicU32::new(0), AtomicU32::new(0));
        let counter = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let lock = PidLock::new(&word, &waiters);
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
    }
}
