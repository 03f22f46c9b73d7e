//! A process-shared mutex that reports when its previous owner died holding it.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use super::region::{Kind, Region};
use crate::layout::sync::RawMutex;
use crate::mode::CreationMode;
#[cfg(doc)]
use crate::robust::LockError;
use crate::robust::{lock_result, try_lock_result, LockResult, TryLockResult};

/// A mutual-exclusion lock shared between processes, robust against its owner dying: the
/// semantics of a `pthread_mutex_t` made `PTHREAD_PROCESS_SHARED`, `PTHREAD_MUTEX_ROBUST` and
/// `PTHREAD_MUTEX_ERRORCHECK`, with no pointers in shared memory (see Trust below).
///
/// Get one with [`Mutex::create`] / [`Mutex::open`] (a named segment in `/dev/shm`; see
/// [`Options`](super::Options) for the creation mode and permissions) or
/// [`Mutex::anonymous`] (shared with the children forked afterwards).
///
/// The lock belongs to the thread that took it. It is not a container: it protects whatever
/// the processes agree it protects (a shared segment, a file).
///
/// * [`lock`](Mutex::lock) waits while a live thread holds the lock.
///   [`try_lock`](Mutex::try_lock) and [`lock_timeout`](Mutex::lock_timeout) return
///   `Ok(None)` instead of waiting (longer).
/// * When the owner thread ends holding the lock, or its process dies (even by `SIGKILL`), the
///   next locker takes it over and gets [`LockError::OwnerDied`] with the guard.
/// * That new owner repairs what the lock protects and calls [`MutexGuard::mark_consistent`].
///   Dropping the guard without it makes the mutex unusable for everyone
///   ([`LockError::NotRecoverable`]), as POSIX specifies.
/// * Locking again from the thread that holds the lock fails with
///   [`io::ErrorKind::Deadlock`] instead of hanging.
///
/// Uncontended locking and unlocking are a compare-and-swap in user space. A locker that finds
/// the lock held retries briefly, then sleeps on a futex, looking every 10 ms at whether the
/// owner lives. Unlocking makes a system call only when someone sleeps.
///
/// # Layout
///
/// For peers in other languages: the segment is described in LAYOUT.md, "Synchronisation
/// primitives"; the lock word's format and the protocol in LAYOUT.md, "Lock words".
///
/// # Trust
///
/// Any process that can write the mutex's memory can break mutual exclusion or make the mutex
/// fail. A word naming a live thread that never unlocks keeps [`lock`](Mutex::lock) waiting,
/// as a live holder would. No writer can make this process touch memory outside the mutex,
/// which holds two numbers and no pointers. Give write access only to processes you trust (the
/// default permissions are 0600).
///
/// Owners are told apart by thread ID and a tag of the thread's start time, so:
///
/// * all processes using one mutex must share a PID namespace;
/// * a new thread given a dead owner's ID passes for it when their start times are equal
///   modulo 511 clock ticks (always within one tick, about once in 511 times otherwise; see
///   the crate's Limitations), and the lock then waits for that thread.
///
/// # `exec`
///
/// A program that `exec`s while its main thread holds the mutex keeps holding it: the main
/// thread keeps its ID and start time across `exec` (and a thread that `exec`s takes over
/// both), so the new program passes for the owner until it exits, and only then is the owner
/// dead. (The kernel releases glibc's robust mutexes at `exec`; nothing tells it about this
/// lock.) Drop guards before `exec`.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::sync::{LockError, Mutex};
///
/// let mutex = Mutex::anonymous()?;
/// let guard = match mutex.lock() {
///     Ok(guard) => guard,
///     Err(LockError::OwnerDied(mut guard)) => {
///         // repair the protected state here, then:
///         guard.mark_consistent()?;
///         guard
///     }
///     Err(e) => return Err(e.into()),
/// };
/// drop(guard);
/// # Ok(())
/// # }
/// ```
///
/// See [pthread_mutex_lock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_lock.3p.html)
/// and [pthread_mutex_consistent(3)](https://man7.org/linux/man-pages/man3/pthread_mutex_consistent.3.html).
// No pointers, unlike glibc's robust mutexes: they keep their owner thread's robust-list links
// inside the mutex, and the owner's unlock writes through them, so a hostile writer could aim
// that write anywhere.
#[derive(Debug)]
pub struct Mutex {
    region: Region,
}

impl Mutex {
    /// A new mutex in anonymous shared memory, shared with the children forked afterwards.
    ///
    /// # Errors
    ///
    /// When the memory cannot be mapped or the mutex initialised.
    pub fn anonymous() -> io::Result<Mutex> {
        Region::anonymous(Kind::Mutex, size_of::<RawMutex>(), init).map(Mutex::from_region)
    }

    /// Creates the named mutex `name` (`/dev/shm/<name>`, owner-only); the handle removes the
    /// name on drop unless [`detach`](Mutex::detach)ed.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] if the name exists, `InvalidInput` for an invalid name.
    pub fn create(name: &str) -> io::Result<Mutex> {
        super::Options::new().open_mutex(name)
    }

    /// Opens the existing named mutex `name`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if there is none; `InvalidInput` if the segment does not
    /// hold an ipcbox mutex.
    pub fn open(name: &str) -> io::Result<Mutex> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_mutex(name)
    }

    pub(crate) fn with_options(
        name: &str,
        mode: CreationMode,
        permissions: u32,
    ) -> io::Result<Mutex> {
        Region::named(
            name,
            mode,
            permissions,
            Kind::Mutex,
            size_of::<RawMutex>(),
            init,
        )
        .map(Mutex::from_region)
    }

    fn from_region(region: Region) -> Mutex {
        Mutex { region }
    }

    fn raw(&self) -> &RawMutex {
        self.region.state()
    }

    /// Locks, sleeping while another live thread holds the lock (as `pthread_mutex_lock`).
    ///
    /// # Errors
    ///
    /// * [`LockError::OwnerDied`]: locked, but the previous owner died holding the lock.
    /// * [`LockError::NotRecoverable`].
    /// * [`LockError::Io`]: `Deadlock` when this thread already holds the lock.
    #[doc(alias = "pthread_mutex_lock")]
    pub fn lock(&self) -> LockResult<MutexGuard<'_>> {
        // A wake-up costs far more than a short wait for a holder that is about to unlock;
        // the spin only reads the lock word, and the lock then takes it (or sleeps).
        let raw = self.raw();
        if raw.is_held() {
            crate::spin::spin_until(|| !raw.is_held());
        }
        lock_result(raw.lock(), || MutexGuard::new(self))
    }

    /// Locks if nobody holds the lock (as `pthread_mutex_trylock`); `Ok(None)` when someone
    /// does.
    ///
    /// # Errors
    ///
    /// As [`lock`](Mutex::lock), except that a lock held by someone else is `Ok(None)`.
    #[doc(alias = "pthread_mutex_trylock")]
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_>> {
        try_lock_result(self.raw().try_lock(), || MutexGuard::new(self))
    }

    /// Locks, waiting at most `timeout` for a live holder (as `pthread_mutex_clocklock`);
    /// `Ok(None)` when the lock stayed held.
    ///
    /// # Errors
    ///
    /// As [`lock`](Mutex::lock), except that a lock held for the whole timeout is `Ok(None)`.
    #[doc(alias = "pthread_mutex_clocklock")]
    #[doc(alias = "pthread_mutex_timedlock")]
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<MutexGuard<'_>> {
        try_lock_result(self.raw().lock_timeout(timeout), || MutexGuard::new(self))
    }

    /// The shared-memory name ("/name") of a named mutex.
    pub fn name(&self) -> Option<&str> {
        self.region.name()
    }

    /// Keeps the name after this handle is dropped (only the creator removes it anyway).
    pub fn detach(&mut self) {
        self.region.detach();
    }

    /// Unlocks a mutex the calling thread holds without going through its guard
    /// (`pthread_mutex_unlock`); an inconsistent mutex becomes not recoverable, as when a
    /// guard is dropped.
    ///
    /// For bindings whose lock and unlock are separate calls, such as Python's `acquire` and
    /// `release`: they give the guard up with [`std::mem::forget`] and unlock here later, from
    /// the same thread.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::PermissionDenied`] when the calling thread does not hold the lock.
    #[doc(alias = "pthread_mutex_unlock")]
    pub fn unlock(&self) -> io::Result<()> {
        self.raw().unlock()
    }

    /// Relocks after [`Condvar`](super::Condvar) released the lock for waiting.
    pub(crate) fn relock(&self) -> LockResult<MutexGuard<'_>> {
        self.lock()
    }

    /// Unlocks for a guard given up with [`MutexGuard::into_mutex`].
    pub(crate) fn unlock_raw(&self) -> io::Result<()> {
        self.raw().unlock()
    }
}

fn init(map: &crate::sys::mmap::Mapping) -> io::Result<()> {
    crate::sys::mmap::view::<RawMutex>(map, super::region::STATE_OFFSET)
        .ok_or_else(|| io::Error::other("mutex segment too small"))?
        .init()
}

/// Holds a [`Mutex`] locked; unlocks on drop (`pthread_mutex_unlock`).
///
/// A guard stays on the thread that locked (the lock belongs to that thread).
pub struct MutexGuard<'a> {
    mutex: &'a Mutex,
    _not_send: PhantomData<*const ()>,
}

impl<'a> MutexGuard<'a> {
    fn new(mutex: &'a Mutex) -> MutexGuard<'a> {
        MutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// Declares the protected state repaired after [`LockError::OwnerDied`]
    /// (`pthread_mutex_consistent`); the mutex then works normally again.
    ///
    /// # Errors
    ///
    /// `InvalidInput` (`EINVAL`) when the mutex was not inconsistent.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&mut self) -> io::Result<()> {
        self.mutex
            .raw()
            .consistent()
            .map_err(|e| crate::error::context(e, "mark_consistent (was the owner dead?)"))
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &'a Mutex {
        self.mutex
    }

    /// Gives up the guard without unlocking (the caller unlocks through `mutex.unlock_raw`).
    pub(crate) fn into_mutex(self) -> &'a Mutex {
        let mutex = self.mutex;
        std::mem::forget(self);
        mutex
    }
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("mutex", &self.mutex.name())
            .finish()
    }
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        // Unlocking a mutex this thread holds only fails if a peer overwrote its lock word;
        // there is nothing better to do in a destructor than to leave it so.
        let _ = self.mutex.raw().unlock();
    }
}
