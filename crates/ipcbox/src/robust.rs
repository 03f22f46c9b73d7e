//! ipcbox's robust mutex ([`RawMutex`]): the lock of [`Mutex`](super::Mutex),
//! [`shm::Value`](crate::shm::Value) and [`shm::Array`](crate::shm::Array).
//!
//! A lock word owned by a thread ([`PidLock`]), and beside it a state word that gives POSIX's
//! robust semantics:
//!
//! * A locker that finds the owner thread dead takes the lock over, marks the state
//!   inconsistent and reports [`MutexLock::OwnerDied`].
//! * So does every later locker, until one marks it consistent ([`RawMutex::consistent`]).
//! * Unlocking while it is inconsistent makes it not recoverable: every later lock reports
//!   [`MutexLock::NotRecoverable`] and leaves the lock free.
//!
//! Nothing in shared memory points anywhere: a peer that scribbles over the mutex can make
//! lockers wait, fail or get in together, never make this process write through a pointer it
//! chose.
//!
//! The lock word's format and the protocol: LAYOUT.md, "Lock words".

// glibc's robust mutexes keep their owner's robust-list links inside the mutex, and the
// owner's unlock writes through them: a peer that overwrites them aims that write. Two plain
// numbers cannot be aimed anywhere.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::Duration;

use crate::layout::sync::RawMutex;
use crate::pid_lock::{Acquired, Patience, PidLock};

/// What locking a robust mutex gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MutexLock {
    /// Locked; the protected state is consistent.
    Locked,
    /// Locked, but the previous owner died holding it (`EOWNERDEAD`).
    OwnerDied,
    /// Nobody can lock it any more (`ENOTRECOVERABLE`).
    NotRecoverable,
    /// Held by someone else (`try_lock`, or `lock_timeout` past its timeout).
    Busy,
}

const CONSISTENT: u32 = 0;
const INCONSISTENT: u32 = 1;
const NOT_RECOVERABLE: u32 = 2;

/// How long a locker sleeps between looks at whether the owner thread still lives.
const SLICE: Duration = Duration::from_millis(10);

impl RawMutex {
    /// Makes fresh memory a free, consistent mutex (before the segment is published).
    pub(crate) fn init(&self) -> io::Result<()> {
        self.state.store(CONSISTENT, Release);
        self.word.store(0, Release);
        Ok(())
    }

    fn pid_lock(&self) -> PidLock<'_> {
        PidLock::per_thread(&self.word)
    }

    /// Locks, waiting `limit` at most for a live owner (`Duration::MAX`: for ever).
    #[inline]
    fn lock_within(&self, spins: u32, limit: Duration) -> io::Result<MutexLock> {
        let patience = Patience {
            spins,
            slice: SLICE,
            limit,
        };
        let acquired = match self.pid_lock().lock(patience, &|| String::from("mutex")) {
            Ok(acquired) => acquired,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(MutexLock::Busy),
            Err(e) => return Err(e),
        };
        match self.state.load(Acquire) {
            CONSISTENT if acquired == Acquired::Clean => Ok(MutexLock::Locked),
            CONSISTENT | INCONSISTENT => {
                // A dead owner, or one that took it over after a death and died too (a clean
                // hand-over of an inconsistent mutex cannot happen: unlocking it makes it not
                // recoverable).
                self.state.store(INCONSISTENT, Release);
                Ok(MutexLock::OwnerDied)
            }
            _ => {
                self.pid_lock().unlock();
                Ok(MutexLock::NotRecoverable)
            }
        }
    }

    /// Locks, waiting for as long as a live thread holds it (`pthread_mutex_lock`).
    #[inline]
    pub(crate) fn lock(&self) -> io::Result<MutexLock> {
        self.lock_within(8, Duration::MAX)
    }

    /// Locks if it is free or its owner is dead (`pthread_mutex_trylock`).
    pub(crate) fn try_lock(&self) -> io::Result<MutexLock> {
        match self.lock_within(0, Duration::ZERO) {
            // The calling thread holds it: busy, as for `pthread_mutex_trylock`.
            Err(e) if e.kind() == io::ErrorKind::Deadlock => Ok(MutexLock::Busy),
            got => got,
        }
    }

    /// Locks, waiting at most `timeout` for a live owner.
    pub(crate) fn lock_timeout(&self, timeout: Duration) -> io::Result<MutexLock> {
        self.lock_within(8, timeout)
    }

    /// Whether some thread holds the lock now (a hint for spinning: reads, never writes).
    pub(crate) fn is_held(&self) -> bool {
        self.pid_lock().is_held()
    }

    /// Unlocks; an inconsistent mutex becomes not recoverable.
    ///
    /// # Errors
    ///
    /// `PermissionDenied` (`EPERM`) when the calling thread does not hold it.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        let lock = self.pid_lock();
        let me = lock.me();
        if !lock.is_held_by(me) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "unlocking a mutex the calling thread does not hold",
            ));
        }
        if self.state.load(Acquire) == INCONSISTENT {
            self.state.store(NOT_RECOVERABLE, Release);
        }
        lock.unlock_as(me);
        Ok(())
    }

    /// Marks the state repaired after [`MutexLock::OwnerDied`] (`pthread_mutex_consistent`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` (`EINVAL`) when the calling thread does not hold it or it was not
    /// inconsistent.
    pub(crate) fn consistent(&self) -> io::Result<()> {
        let lock = self.pid_lock();
        if !lock.is_held_by(lock.me()) || self.state.load(Acquire) != INCONSISTENT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mutex is not inconsistent, or not held by the calling thread",
            ));
        }
        self.state.store(CONSISTENT, Release);
        Ok(())
    }
}

/// What the blocking `lock` of a [`Mutex`](crate::sync::Mutex), a
/// [`shm::Value`](crate::shm::Value) or a [`shm::Array`](crate::shm::Array) returns; `G` is
/// the guard.
pub type LockResult<G> = Result<G, LockError<G>>;

/// What `try_lock` and `lock_timeout` return: `Ok(None)` when someone else held the lock (now,
/// or for the whole timeout), otherwise what a [`LockResult`] holds.
pub type TryLockResult<G> = Result<Option<G>, LockError<G>>;

/// Why locking a robust lock did not simply succeed; `G` is the guard.
///
/// A lock held by someone else is no error: `try_lock` and `lock_timeout` report it as
/// `Ok(None)` ([`TryLockResult`]).
pub enum LockError<G> {
    /// The lock is yours, but its previous owner died holding it: the state it protects may be
    /// half-updated.
    ///
    /// Repair it and call `mark_consistent` on the guard (as
    /// [`MutexGuard::mark_consistent`](crate::sync::MutexGuard::mark_consistent)). Dropping the
    /// guard without that makes the lock [`NotRecoverable`](LockError::NotRecoverable).
    OwnerDied(G),
    /// An owner died and the next one unlocked without marking the state consistent: nobody can
    /// lock it any more (`ENOTRECOVERABLE`). Recreate it.
    NotRecoverable,
    /// Any other error (`Deadlock` when the calling thread already holds the lock).
    Io(io::Error),
}

/// The [`TryLockResult`] of a lock attempt that gave `got`: `guard()` makes the guard of a lock
/// now held; a lock held by someone else is `Ok(None)`.
pub(crate) fn try_lock_result<G>(
    got: io::Result<MutexLock>,
    guard: impl FnOnce() -> G,
) -> TryLockResult<G> {
    match got {
        Ok(MutexLock::Locked) => Ok(Some(guard())),
        Ok(MutexLock::OwnerDied) => Err(LockError::OwnerDied(guard())),
        Ok(MutexLock::NotRecoverable) => Err(LockError::NotRecoverable),
        Ok(MutexLock::Busy) => Ok(None),
        Err(e) => Err(LockError::Io(e)),
    }
}

/// The [`LockResult`] of a blocking lock ([`RawMutex::lock`]) that gave `got`.
pub(crate) fn lock_result<G>(
    got: io::Result<MutexLock>,
    guard: impl FnOnce() -> G,
) -> LockResult<G> {
    // The blocking lock waits for as long as a live thread holds the lock, so it never
    // reports it busy; should it ever, that is a failure, not a guard.
    try_lock_result(got, guard)?
        .ok_or_else(|| LockError::Io(io::Error::other("lock: gave up on a held lock")))
}

impl<G> LockError<G> {
    /// `true` for [`LockError::OwnerDied`].
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
            LockError::Io(e) => f.debug_tuple("Io").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => {
                f.write_str("the previous owner of the lock died holding it")
            }
            LockError::NotRecoverable => f.write_str(
                "the lock is not recoverable: an owner died and the next one did not mark it \
                 consistent",
            ),
            LockError::Io(e) => write!(f, "lock: {e}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}

impl<G> From<LockError<G>> for io::Error {
    /// Converts into an [`io::Error`] of the kind the variant calls for: an
    /// [`Io`](LockError::Io) error's own kind, [`io::ErrorKind::Other`] for the others.
    ///
    /// An [`OwnerDied`](LockError::OwnerDied) guard is dropped unmarked on the way, which makes
    /// the lock not recoverable.
    fn from(e: LockError<G>) -> io::Error {
        let kind = match &e {
            LockError::OwnerDied(_) | LockError::NotRecoverable => io::ErrorKind::Other,
            LockError::Io(io) => io.kind(),
        };
        io::Error::new(kind, e.to_string())
    }
}
