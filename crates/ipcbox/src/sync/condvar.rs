//! A condition variable in shared memory that works with [`Mutex`].

use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use super::mutex::{Mutex, MutexGuard};
use super::region::{Kind, Region, STATE_OFFSET};
use crate::layout::sync::RawCondvar;
use crate::mode::CreationMode;
use crate::robust::LockError;
use crate::sys::futex;
use crate::sys::mmap::view;
use crate::sys::mmap::Mapping;

impl RawCondvar {
    pub(crate) fn init(&self) {
        self.seq.store(0, Relaxed);
        self.waiters.store(0, Relaxed);
    }

    /// Waits for a notify: reads the sequence (the caller holds the mutex), calls `unlock`
    /// and sleeps; the caller relocks.
    ///
    /// * `Ok(Ok(true))` when woken, `Ok(Ok(false))` on timeout.
    /// * `Err` when `unlock` failed: the mutex is still held.
    /// * `Ok(Err)` when the futex wait failed.
    pub(crate) fn wait(
        &self,
        unlock: impl FnOnce() -> io::Result<()>,
        timeout: Option<Duration>,
    ) -> io::Result<io::Result<bool>> {
        // Read the sequence while holding the mutex: a notify after we unlock changes it, so
        // the futex wait below returns at once instead of missing it.
        let seq = self.seq.load(SeqCst);
        self.waiters.fetch_add(1, SeqCst);
        let waited = unlock().map(|()| futex::wait(&self.seq, seq, timeout));
        self.waiters.fetch_sub(1, SeqCst);
        waited
    }

    pub(crate) fn notify(&self, n: u32) {
        self.seq.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) != 0 {
            futex::wake(&self.seq, n);
        }
    }
}

/// Whether [`Condvar::wait_timeout`] returned because the time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` when the wait ended by timeout (the condition may still have changed).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable shared between processes, used with a [`Mutex`]: a sequence number
/// in shared memory that waiters sleep on (a futex) and notifiers bump.
///
/// As with every condition variable, wake-ups can be spurious: wait in a loop that checks the
/// condition. Notifying makes a system call only when someone sleeps.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// use ipcbox::sync::{Condvar, Mutex};
///
/// let (mutex, cond) = (Mutex::anonymous()?, Condvar::anonymous()?);
/// let guard = mutex.lock()?;
/// let (guard, result) = cond.wait_timeout(guard, Duration::from_millis(1))?;
/// assert!(result.timed_out());
/// drop(guard);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Condvar {
    region: Region,
}

impl Condvar {
    /// A new condition variable in anonymous shared memory.
    ///
    /// # Errors
    ///
    /// Mapping errors.
    pub fn anonymous() -> io::Result<Condvar> {
        Region::anonymous(Kind::Condvar, size_of::<RawCondvar>(), init)
            .map(|region| Condvar { region })
    }

    /// Creates the named condition variable `name`; removed on drop unless detached.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name exists; `InvalidInput` for an invalid name.
    pub fn create(name: &str) -> io::Result<Condvar> {
        super::Options::new().open_condvar(name)
    }

    /// Opens the existing named condition variable `name`.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `InvalidInput` if it holds no ipcbox condition variable.
    pub fn open(name: &str) -> io::Result<Condvar> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_condvar(name)
    }

    pub(crate) fn with_options(
        name: &str,
        mode: CreationMode,
        permissions: u32,
    ) -> io::Result<Condvar> {
        Region::named(
            name,
            mode,
            permissions,
            Kind::Condvar,
            size_of::<RawCondvar>(),
            init,
        )
        .map(|region| Condvar { region })
    }

    fn raw(&self) -> &RawCondvar {
        self.region.state()
    }

    /// Unlocks the guard's mutex, sleeps until notified, and locks it again.
    ///
    /// # Errors
    ///
    /// Those of [`Mutex::lock`] when relocking (including [`LockError::OwnerDied`]).
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a>,
    ) -> Result<MutexGuard<'a>, LockError<MutexGuard<'a>>> {
        self.wait_inner(guard, None).map(|(g, _)| g)
    }

    /// As [`wait`](Condvar::wait), sleeping at most `timeout`. The guard comes back either way;
    /// the [`WaitTimeoutResult`] says whether the time ran out.
    ///
    /// # Errors
    ///
    /// Those of [`Mutex::lock`] when relocking.
    pub fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a>,
        timeout: Duration,
    ) -> Result<(MutexGuard<'a>, WaitTimeoutResult), LockError<MutexGuard<'a>>> {
        self.wait_inner(guard, Some(timeout))
    }

    fn wait_inner<'a>(
        &self,
        guard: MutexGuard<'a>,
        timeout: Option<Duration>,
    ) -> Result<(MutexGuard<'a>, WaitTimeoutResult), LockError<MutexGuard<'a>>> {
        let mutex: &'a Mutex = guard.into_mutex();
        let waited = match self.raw().wait(|| mutex.unlock_raw(), timeout) {
            Ok(waited) => waited,
            // Only a corrupted mutex fails to unlock; it stays (unusably) held.
            Err(unlock_failed) => return Err(LockError::Io(unlock_failed)),
        };
        let guard = mutex.relock()?;
        match waited {
            Ok(woken) => Ok((guard, WaitTimeoutResult(!woken))),
            Err(e) => Err(LockError::Io(e)),
        }
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.raw().notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.raw().notify(u32::MAX);
    }

    /// The shared-memory name ("/name") of a named condition variable.
    pub fn name(&self) -> Option<&str> {
        self.region.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.region.detach();
    }
}

fn init(map: &Mapping) -> io::Result<()> {
    view::<RawCondvar>(map, STATE_OFFSET)
        .ok_or_else(|| io::Error::other("condition variable segment too small"))?
        .init();
    Ok(())
}
