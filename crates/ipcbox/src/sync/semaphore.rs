//! A counting semaphore in shared memory, waiting on a futex.

use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::Duration;

use super::region::{Kind, Region, STATE_OFFSET};
use crate::deadline::Deadline;
use crate::error::invalid_input;
use crate::layout::sync::RawSemaphore;
use crate::mode::CreationMode;
use crate::spin::spin_until;
use crate::sys::futex;
use crate::sys::mmap::view;
use crate::sys::mmap::Mapping;

/// The largest value a [`Semaphore`] holds (`SEM_VALUE_MAX`, `i32::MAX`).
pub const SEMAPHORE_MAX: u32 = i32::MAX as u32;

impl RawSemaphore {
    pub(crate) fn init(&self, initial: u32) {
        self.count.store(initial, Relaxed);
        self.waiters.store(0, Relaxed);
    }

    pub(crate) fn try_acquire(&self, n: u32) -> bool {
        let mut c = self.count.load(Relaxed);
        loop {
            if c < n {
                return false;
            }
            match self.count.compare_exchange_weak(c, c - n, SeqCst, Relaxed) {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
    }

    /// `Ok(false)` on timeout.
    pub(crate) fn acquire(&self, n: u32, timeout: Option<Duration>) -> io::Result<bool> {
        if self.try_acquire(n) || spin_until(|| self.try_acquire(n)) {
            return Ok(true);
        }
        let deadline = Deadline::from_timeout(timeout);
        loop {
            // Announce the sleeper before the last look at the count, so that a releaser either
            // sees us (and wakes) or we see its permits (SeqCst on both sides).
            self.waiters.fetch_add(1, SeqCst);
            let c = self.count.load(SeqCst);
            let outcome = if c >= n {
                Ok(true)
            } else {
                if deadline.has_passed() {
                    Ok(false)
                } else {
                    futex::wait(&self.count, c, deadline.remaining())
                }
            };
            self.waiters.fetch_sub(1, SeqCst);
            let woken = outcome?;
            if self.try_acquire(n) {
                return Ok(true);
            }
            if !woken || deadline.has_passed() {
                return Ok(false);
            }
        }
    }

    pub(crate) fn release(&self, n: u32) -> io::Result<()> {
        let mut c = self.count.load(Relaxed);
        loop {
            let new = match c.checked_add(n) {
                Some(v) if v <= SEMAPHORE_MAX => v,
                _ => {
                    return Err(invalid_input(format_args!(
                    "semaphore release by {n} would overflow its value {c} (max {SEMAPHORE_MAX})"
                )))
                }
            };
            match self.count.compare_exchange_weak(c, new, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        if self.waiters.load(SeqCst) != 0 {
            // Sleepers may want different amounts; wake them all to let each look again.
            futex::wake(&self.count, u32::MAX);
        }
        Ok(())
    }

    pub(crate) fn value(&self) -> u32 {
        self.count.load(Acquire)
    }
}

fn check_n(n: u32) -> io::Result<u32> {
    if n == 0 || n > SEMAPHORE_MAX {
        Err(invalid_input(format_args!(
            "invalid semaphore count {n}: must be between 1 and {SEMAPHORE_MAX}"
        )))
    } else {
        Ok(n)
    }
}

fn check_initial(initial: u32) -> io::Result<u32> {
    if initial > SEMAPHORE_MAX {
        Err(invalid_input(format_args!(
            "invalid semaphore initial value {initial}: the maximum is {SEMAPHORE_MAX}"
        )))
    } else {
        Ok(initial)
    }
}

/// A counting semaphore shared between processes: a counter in shared memory and a futex.
///
/// * Acquiring when enough permits are there, and releasing when nobody sleeps, are atomic
///   operations without a system call.
/// * A caller that has to wait spins briefly, then sleeps on the futex.
/// * A release wakes sleepers only when there are any.
///
/// Get one with [`Semaphore::create`] / [`Semaphore::open`] (a named segment in `/dev/shm`,
/// see [`Options`](super::Options)) or [`Semaphore::anonymous`] (shared with children forked
/// afterwards).
///
/// # Limitations
///
/// Permits held by a process that dies are not given back: the counter cannot know who held
/// what. When that matters, use a System V [`SemaphoreSet`](super::SemaphoreSet) with
/// [`SemOp::undo`](super::SemOp::undo), which the kernel reverts when the process exits.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::sync::Semaphore;
///
/// let sem = Semaphore::anonymous(3)?;
/// sem.acquire_n(2)?;
/// assert!(!sem.try_acquire_n(2)?);
/// sem.release_n(2)?;
/// assert_eq!(sem.value(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Semaphore {
    region: Region,
}

impl Semaphore {
    /// A new semaphore holding `initial` permits in anonymous shared memory.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `initial` exceeds [`SEMAPHORE_MAX`]; mapping errors.
    pub fn anonymous(initial: u32) -> io::Result<Semaphore> {
        let initial = check_initial(initial)?;
        Region::anonymous(Kind::Semaphore, size_of::<RawSemaphore>(), |m| {
            init(m, initial)
        })
        .map(|region| Semaphore { region })
    }

    /// Creates the named semaphore `name` (`/dev/shm/<name>`, owner-only) with `initial`
    /// permits; the handle removes the name on drop unless [`detach`](Semaphore::detach)ed.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name exists; `InvalidInput` for an invalid name or `initial`.
    pub fn create(name: &str, initial: u32) -> io::Result<Semaphore> {
        super::Options::new().open_semaphore(name, initial)
    }

    /// Opens the existing named semaphore `name`.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `InvalidInput` if it holds no ipcbox semaphore.
    pub fn open(name: &str) -> io::Result<Semaphore> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_semaphore(name, 0)
    }

    pub(crate) fn with_options(
        name: &str,
        mode: CreationMode,
        permissions: u32,
        initial: u32,
    ) -> io::Result<Semaphore> {
        let initial = check_initial(initial)?;
        Region::named(
            name,
            mode,
            permissions,
            Kind::Semaphore,
            size_of::<RawSemaphore>(),
            |m| init(m, initial),
        )
        .map(|region| Semaphore { region })
    }

    fn raw(&self) -> &RawSemaphore {
        self.region.state()
    }

    /// Takes one permit, sleeping until there is one.
    ///
    /// # Errors
    ///
    /// Only when the futex wait fails unexpectedly.
    pub fn acquire(&self) -> io::Result<()> {
        self.acquire_n(1)
    }

    /// Takes `n` permits at once (all or nothing), sleeping until there are enough.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `n` is 0 or above [`SEMAPHORE_MAX`].
    pub fn acquire_n(&self, n: u32) -> io::Result<()> {
        self.raw().acquire(check_n(n)?, None).map(drop)
    }

    /// Takes one permit if there is one: `Ok(false)` when there is none.
    ///
    /// # Errors
    ///
    /// None in practice.
    // The `Result` keeps the blocking, `try_` and `_timeout` forms alike.
    pub fn try_acquire(&self) -> io::Result<bool> {
        self.try_acquire_n(1)
    }

    /// Takes `n` permits if there are that many: `Ok(false)` otherwise.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `n` is 0 or above [`SEMAPHORE_MAX`].
    pub fn try_acquire_n(&self, n: u32) -> io::Result<bool> {
        Ok(self.raw().try_acquire(check_n(n)?))
    }

    /// Takes one permit, waiting at most `timeout`: `Ok(false)` when it timed out.
    ///
    /// # Errors
    ///
    /// Only when the futex wait fails unexpectedly.
    pub fn acquire_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.acquire_n_timeout(1, timeout)
    }

    /// Takes `n` permits, waiting at most `timeout`: `Ok(false)` when it timed out.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `n` is 0 or above [`SEMAPHORE_MAX`].
    pub fn acquire_n_timeout(&self, n: u32, timeout: Duration) -> io::Result<bool> {
        self.raw().acquire(check_n(n)?, Some(timeout))
    }

    /// Gives back one permit, waking sleepers if there are any.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the value would exceed [`SEMAPHORE_MAX`].
    pub fn release(&self) -> io::Result<()> {
        self.release_n(1)
    }

    /// Gives back `n` permits, waking sleepers if there are any.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `n` is 0 or the value would exceed [`SEMAPHORE_MAX`].
    pub fn release_n(&self, n: u32) -> io::Result<()> {
        self.raw().release(check_n(n)?)
    }

    /// The number of permits available now (a snapshot).
    pub fn value(&self) -> u32 {
        self.raw().value()
    }

    /// The shared-memory name ("/name") of a named semaphore.
    pub fn name(&self) -> Option<&str> {
        self.region.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.region.detach();
    }
}

fn init(map: &Mapping, initial: u32) -> io::Result<()> {
    view::<RawSemaphore>(map, STATE_OFFSET)
        .ok_or_else(|| io::Error::other("semaphore segment too small"))?
        .init(initial);
    Ok(())
}
