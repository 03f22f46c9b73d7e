//! One typed value in shared memory.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::shared::{Held, Shared};
use super::{Element, IntElement, Kind, LockResult, TryLockResult, TypedOptions};
#[cfg(doc)]
use super::{LockError, LAYOUT_VERSION};
use crate::mode::CreationMode;

/// One value of type `T` in shared memory, like Python's `multiprocessing.Value`, with its
/// lock (a robust process-shared mutex).
///
/// Every access to the value is one atomic instruction on its own cache line:
///
/// * [`get`] and [`set`] are an atomic load and store, and never tear;
/// * for integers, [`fetch_add`], [`fetch_sub`], [`swap`] and [`compare_exchange`] are atomic
///   read-modify-writes, so simple counters need no lock.
///
/// [`lock`] is for updates made of several steps (read, compute, write, or keeping the value in
/// step with other data): while one process holds the guard, every other process that also
/// goes through `lock` waits. `get` and `set` do not take the lock, so they see and may
/// overwrite the value between a holder's steps: a protocol that locks must lock on every side.
///
/// Named values (`/dev/shm/<name>`) have a header recording the layout version, the element
/// type and its size; [`open`](Value::open) checks it and fails with
/// [`io::ErrorKind::InvalidData`] naming what the segment holds and what was expected. The
/// creator removes the name on drop unless [`detach`](Value::detach)ed.
///
/// [`get`]: Value::get
/// [`set`]: Value::set
/// [`fetch_add`]: Value::fetch_add
/// [`fetch_sub`]: Value::fetch_sub
/// [`swap`]: Value::swap
/// [`compare_exchange`]: Value::compare_exchange
/// [`lock`]: Value::lock
///
/// # Layout
///
/// For peers in other languages: the header, the lock and the elements are described in
/// LAYOUT.md, "Typed values and arrays"; the lock word's format and the protocol in LAYOUT.md,
/// "Lock words". [`LAYOUT_VERSION`] is the layout version this code writes and reads.
///
/// # Trust
///
/// The data is shared with every process that can open the segment: one that writes it
/// without locking changes the value, never this process's memory safety.
///
/// * The header is checked once, on open; what it says later is not read again.
/// * The lock has the limits described on [`sync::Mutex`](crate::sync::Mutex).
/// * A peer that shrinks the segment (`ftruncate`) makes the next access raise `SIGBUS`, as
///   with any POSIX shared memory.
///
/// # Examples
///
/// ```
/// use ipcbox::shm::Value;
///
/// # let name = format!("ipcbox-doc-value-{}", std::process::id());
/// let counter = Value::create(&name, 0u64)?;
/// counter.fetch_add(1); // lock-free
/// {
///     let mut guard = counter.lock()?; // several steps under the lock
///     let v = guard.get();
///     guard.set(v * 10);
/// }
/// assert_eq!(Value::<u64>::open(&name)?.get(), 10);
/// assert!(Value::<u32>::open(&name).is_err()); // wrong type: a clear error
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Value<T: Element> {
    pub(super) shared: Shared<T>,
}

impl<T: Element> Value<T> {
    /// Creates the value `name` (`/dev/shm/<name>`, owner-only) holding `initial`
    /// (`shm_open`, `mmap`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] if the name exists, `InvalidInput` for an invalid name,
    /// and the errors of [`Options::open`](crate::shm::Options::open).
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, initial: T) -> io::Result<Value<T>> {
        TypedOptions::new().open_value(name, initial)
    }

    /// Opens the existing value `name` and checks its header.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if there is none; [`io::ErrorKind::InvalidData`] when the
    /// segment is not an ipcbox value of `T` (the message names what it holds: "shm value
    /// '/x' of u64: it holds u32 (4 bytes), opened as u64 (8 bytes)"), or its header is
    /// damaged.
    pub fn open(name: &str) -> io::Result<Value<T>> {
        let shared = TypedOptions::new().mode(CreationMode::Open).open_shared(
            name,
            Kind::Value,
            Some(1),
            &[],
        )?;
        Ok(Value { shared })
    }

    /// A value in anonymous shared memory, shared with the children forked afterwards.
    ///
    /// # Errors
    ///
    /// When the memory cannot be mapped or the lock initialised.
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn anonymous(initial: T) -> io::Result<Value<T>> {
        Ok(Value {
            shared: Shared::anonymous(Kind::Value, &[initial])?,
        })
    }

    /// The name ("/name") of a named value.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.shared.detach();
    }

    #[inline]
    fn cell(&self) -> &T::Cell {
        self.shared.placed().first()
    }

    /// The value (an atomic load, acquire).
    #[inline]
    pub fn get(&self) -> T {
        T::load(self.cell(), Ordering::Acquire)
    }

    /// Replaces the value (an atomic store, release).
    #[inline]
    pub fn set(&self, value: T) {
        T::store(self.cell(), value, Ordering::Release);
    }

    /// Locks the value's mutex, sleeping while another live thread holds it
    /// (as `pthread_mutex_lock`).
    ///
    /// # Errors
    ///
    /// * [`LockError::OwnerDied`]: locked, but the previous owner died holding the lock. The
    ///   guard's [`mark_consistent`](ValueGuard::mark_consistent) repairs the lock.
    /// * [`LockError::NotRecoverable`].
    /// * [`LockError::Io`]: `Deadlock` when this thread already holds the lock.
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> LockResult<ValueGuard<'_, T>> {
        self.shared.lock(|held| ValueGuard { held })
    }

    /// Locks if nobody holds the lock (as `pthread_mutex_trylock`); `Ok(None)` when someone
    /// does.
    ///
    /// # Errors
    ///
    /// As [`lock`](Value::lock), except that a lock held by someone else is `Ok(None)`.
    pub fn try_lock(&self) -> TryLockResult<ValueGuard<'_, T>> {
        self.shared.try_lock(|held| ValueGuard { held })
    }

    /// Locks, waiting at most `timeout` (as `pthread_mutex_clocklock`); `Ok(None)` when the
    /// lock stayed held.
    ///
    /// # Errors
    ///
    /// As [`lock`](Value::lock), except that a lock held for the whole timeout is `Ok(None)`.
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<ValueGuard<'_, T>> {
        self.shared
            .lock_timeout(timeout, |held| ValueGuard { held })
    }
}

impl<T: IntElement> Value<T> {
    /// Adds `value` (wrapping) and returns the previous value: one atomic instruction
    /// (`lock xadd`), no lock.
    #[inline]
    pub fn fetch_add(&self, value: T) -> T {
        T::fetch_add(self.cell(), value, Ordering::AcqRel)
    }

    /// Subtracts `value` (wrapping) and returns the previous value; atomic, no lock.
    #[inline]
    pub fn fetch_sub(&self, value: T) -> T {
        T::fetch_sub(self.cell(), value, Ordering::AcqRel)
    }

    /// Stores `value` and returns the previous value; atomic, no lock.
    #[inline]
    pub fn swap(&self, value: T) -> T {
        T::swap(self.cell(), value, Ordering::AcqRel)
    }

    /// Stores `new` if the value is `current`; `Ok(previous)` if it was, `Err(actual)` if not.
    /// Atomic, no lock.
    ///
    /// # Errors
    ///
    /// `Err(actual)` when the value was not `current`.
    #[inline]
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        T::compare_exchange(self.cell(), current, new)
    }
}

/// A [`Value`]'s lock, held: unlocks on drop. Stays on the thread that locked.
pub struct ValueGuard<'a, T: Element> {
    held: Held<'a, T>,
}

impl<T: Element> ValueGuard<'_, T> {
    /// The value.
    #[inline]
    pub fn get(&self) -> T {
        T::load(&self.held.cells()[0], Ordering::Relaxed)
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&mut self, value: T) {
        T::store(&self.held.cells()[0], value, Ordering::Relaxed);
    }

    /// Replaces the value with `f(value)` and returns the new value.
    pub fn update(&mut self, f: impl FnOnce(T) -> T) -> T {
        let new = f(self.get());
        self.set(new);
        new
    }

    /// Declares the value repaired after [`LockError::OwnerDied`] (as `pthread_mutex_consistent`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the lock was not inconsistent.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&mut self) -> io::Result<()> {
        self.held.mark_consistent()
    }
}

impl<T: Element> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard")
            .field("value", &self.get())
            .finish()
    }
}
