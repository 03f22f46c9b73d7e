//! Synchronisation between processes: locks, semaphores, events, condition variables and
//! barriers in shared memory, and the operating system's named semaphores.
//!
//! | type | what | lives in |
//! |---|---|---|
//! | [`Mutex`] | lock that reports its owner's death ([`LockError::OwnerDied`]) | shared memory (a lock word naming the owner thread) |
//! | [`Semaphore`] | counting semaphore, acquire/release by `n` | shared memory (futex) |
//! | [`Event`] | set/clear flag to wait on | shared memory (futex) |
//! | [`Condvar`] | condition variable used with [`Mutex`] | shared memory (futex) |
//! | [`Barrier`] | `n` processes meet each round | shared memory (futex) |
//! | [`NamedSemaphore`] | POSIX `sem_open` semaphore, as `posix_ipc.Semaphore` | `/dev/shm/sem.<name>` |
//! | [`SemaphoreSet`] | System V set, `semop` over several, `SEM_UNDO`, as `sysv_ipc.Semaphore` | kernel |
//!
//! The shared-memory primitives are created either way:
//!
//! * *named*: `create(name, ..)` / `open(name)`, one small segment in `/dev/shm` each, which the
//!   creator removes on drop. [`Options`] chooses the creation mode and permissions.
//! * *anonymous*: `anonymous(..)`, inherited by the children forked afterwards.
//!
//! Their fast paths are atomic operations without system calls. A caller that must wait spins
//! briefly, then sleeps on a futex; a waker makes the wake-up system call only when someone
//! sleeps.
//!
//! # Trust
//!
//! Every process that can write a primitive's memory can break it (admit two holders, wake
//! nobody). ipcbox validates the segment's header when opening and bounds-checks what it
//! reads, so a hostile or crashed peer makes operations fail or misbehave as a lock, but
//! never makes this process's memory unsafe. A peer that shrinks a segment with `ftruncate`
//! makes the next access raise `SIGBUS`, as with any POSIX shared memory.

mod barrier;
mod condvar;
mod event;
pub(crate) mod mutex;
mod named;
pub(crate) mod region;
mod semaphore;
mod sysv;

use std::io;

use crate::mode::CreationMode;

pub use crate::robust::{LockError, LockResult, TryLockResult};
pub use barrier::{Barrier, BarrierWaitResult, BARRIER_MAX_PARTIES};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use named::{NamedSemaphore, NAMED_SEMAPHORE_MAX};
pub use semaphore::{Semaphore, SEMAPHORE_MAX};
pub use sysv::{SemOp, SemaphoreSet, SEMMSL, SEMVMX};

/// How a named primitive (or a System V set) is created or opened: [`CreationMode`] and
/// permissions.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::sync::Options;
/// use ipcbox::CreationMode;
///
/// let name = format!("ipcbox-doc-opts-{}", std::process::id());
/// let sem = Options::new().mode(CreationMode::OpenOrCreate).open_semaphore(&name, 2)?;
/// let same = Options::new().mode(CreationMode::OpenOrCreate).open_semaphore(&name, 9)?;
/// assert_eq!(same.value(), 2);
/// # drop(sem);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    mode: CreationMode,
    permissions: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Create exclusively, permissions 0600.
    pub fn new() -> Options {
        Options {
            mode: CreationMode::CreateExclusive,
            permissions: 0o600,
        }
    }

    /// How to create or open.
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// Permission bits for a newly created object, `0o600` by default, set exactly (see
    /// [Named objects](crate#named-objects)).
    pub fn permissions(&mut self, permissions: u32) -> &mut Options {
        self.permissions = permissions & 0o777;
        self
    }

    /// A named [`Mutex`].
    ///
    /// # Errors
    ///
    /// As [`Mutex::create`] / [`Mutex::open`].
    pub fn open_mutex(&self, name: &str) -> io::Result<Mutex> {
        Mutex::with_options(name, self.mode, self.permissions)
    }

    /// A named [`Semaphore`]; `initial` applies only if it is created.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::create`] / [`Semaphore::open`].
    pub fn open_semaphore(&self, name: &str, initial: u32) -> io::Result<Semaphore> {
        Semaphore::with_options(name, self.mode, self.permissions, initial)
    }

    /// A named [`Event`].
    ///
    /// # Errors
    ///
    /// As [`Event::create`] / [`Event::open`].
    pub fn open_event(&self, name: &str) -> io::Result<Event> {
        Event::with_options(name, self.mode, self.permissions)
    }

    /// A named [`Condvar`].
    ///
    /// # Errors
    ///
    /// As [`Condvar::create`] / [`Condvar::open`].
    pub fn open_condvar(&self, name: &str) -> io::Result<Condvar> {
        Condvar::with_options(name, self.mode, self.permissions)
    }

    /// A named [`Barrier`]; `parties` applies only if it is created.
    ///
    /// # Errors
    ///
    /// As [`Barrier::create`] / [`Barrier::open`].
    pub fn open_barrier(&self, name: &str, parties: u32) -> io::Result<Barrier> {
        Barrier::with_options(name, self.mode, self.permissions, parties)
    }

    /// A [`NamedSemaphore`] (`sem_open`); `initial` applies only if it is created.
    ///
    /// # Errors
    ///
    /// As [`NamedSemaphore::create`] / [`NamedSemaphore::open`].
    pub fn open_named_semaphore(&self, name: &str, initial: u32) -> io::Result<NamedSemaphore> {
        NamedSemaphore::with_options(name, self.mode, self.permissions, initial)
    }

    /// A System V [`SemaphoreSet`] of `nsems` semaphores under `key` (`semget`); `nsems`
    /// applies only if it is created.
    ///
    /// # Errors
    ///
    /// As [`SemaphoreSet::create`] / [`SemaphoreSet::open`].
    pub fn open_semaphore_set(&self, key: crate::IpcKey, nsems: usize) -> io::Result<SemaphoreSet> {
        SemaphoreSet::with_options(key, self.mode, self.permissions, nsems)
    }
}
