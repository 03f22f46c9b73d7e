//! A fixed-length typed array in shared memory.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::shared::{Held, Shared};
use super::{Element, IntElement, Kind, LockResult, TryLockResult, TypedOptions};
#[cfg(doc)]
use super::{LockError, Value};
use crate::mode::CreationMode;

/// A fixed-length array of `T` in shared memory, like Python's `multiprocessing.Array`, with
/// its lock (a robust process-shared mutex).
///
/// * Each element is accessed atomically ([`get`](Array::get), [`set`](Array::set), and for
///   integers [`fetch_add`](Array::fetch_add)), so single elements never tear.
/// * Copies of many elements ([`read_into`](Array::read_into),
///   [`write_from`](Array::write_from)) are consistent only under the [`lock`](Array::lock),
///   when every writer locks.
/// * Indexes are bounds-checked against the length checked on open; errors name the index and
///   the length.
///
/// The header, the lock and the trust rules are those of [`Value`].
///
/// # Examples
///
/// ```
/// use ipcbox::shm::Array;
///
/// # let name = format!("ipcbox-doc-array-{}", std::process::id());
/// let a = Array::from_slice(&name, &[1.0f64, 2.0, 3.0])?;
/// let b = Array::<f64>::open(&name)?; // e.g. in another process
/// b.set(1, 20.0)?;
/// let mut guard = a.lock()?;
/// assert_eq!(guard.to_vec(), [1.0, 20.0, 3.0]);
/// assert!(guard.get(3).is_err()); // index 3 out of range for length 3
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Array<T: Element> {
    pub(super) shared: Shared<T>,
}

fn index_error(index: usize, len: usize) -> io::Error {
    crate::error::invalid_input(format_args!(
        "shm array index {index} out of range for length {len}"
    ))
}

fn length_error(what: &str, got: usize, len: usize) -> io::Error {
    crate::error::invalid_input(format_args!(
        "shm array {what}: slice of {got} elements for an array of length {len}"
    ))
}

fn copy_out<T: Element>(cells: &[T::Cell], buf: &mut [T], order: Ordering) -> io::Result<()> {
    if buf.len() != cells.len() {
        return Err(length_error("read_into", buf.len(), cells.len()));
    }
    for (dst, cell) in buf.iter_mut().zip(cells) {
        *dst = T::load(cell, order);
    }
    Ok(())
}

fn copy_in<T: Element>(cells: &[T::Cell], data: &[T], order: Ordering) -> io::Result<()> {
    if data.len() != cells.len() {
        return Err(length_error("write_from", data.len(), cells.len()));
    }
    for (cell, &v) in cells.iter().zip(data) {
        T::store(cell, v, order);
    }
    Ok(())
}

impl<T: Element> Array<T> {
    /// Creates the array `name` (`/dev/shm/<name>`, owner-only) of `len ≥ 1` zero elements.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `len` 0 or too large, otherwise as [`Value::create`].
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, len: usize) -> io::Result<Array<T>> {
        TypedOptions::new().open_array(name, len)
    }

    /// Creates the array `name` holding a copy of `data` (at least one element).
    ///
    /// # Errors
    ///
    /// As [`create`](Array::create).
    pub fn from_slice(name: &str, data: &[T]) -> io::Result<Array<T>> {
        TypedOptions::new().open_array_from(name, data)
    }

    /// Opens the existing array `name`, whatever its length, and checks its header.
    ///
    /// # Errors
    ///
    /// As [`Value::open`].
    pub fn open(name: &str) -> io::Result<Array<T>> {
        let shared = TypedOptions::new().mode(CreationMode::Open).open_shared(
            name,
            Kind::Array,
            None,
            &[],
        )?;
        Ok(Array { shared })
    }

    /// An array in anonymous shared memory holding a copy of `data`, shared with the children
    /// forked afterwards.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty `data`, or when the memory cannot be mapped.
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn anonymous(data: &[T]) -> io::Result<Array<T>> {
        Ok(Array {
            shared: Shared::anonymous(Kind::Array, data)?,
        })
    }

    /// The name ("/name") of a named array.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.shared.detach();
    }

    #[inline]
    fn cells(&self) -> &[T::Cell] {
        self.shared.placed().cells()
    }

    #[inline]
    fn cell(&self, index: usize) -> io::Result<&T::Cell> {
        let cells = self.cells();
        cells
            .get(index)
            .ok_or_else(|| index_error(index, cells.len()))
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells().len()
    }

    /// Always `false`: an array has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Element `index` (an atomic load, acquire).
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the index and the length when `index` is out of range.
    #[inline]
    pub fn get(&self, index: usize) -> io::Result<T> {
        Ok(T::load(self.cell(index)?, Ordering::Acquire))
    }

    /// Replaces element `index` (an atomic store, release).
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn set(&self, index: usize, value: T) -> io::Result<()> {
        T::store(self.cell(index)?, value, Ordering::Release);
        Ok(())
    }

    /// Copies all elements into `buf`, element by element without the lock (each element is
    /// whole, but the copy as a whole may mix old and new elements unless the caller holds
    /// the lock or no one writes).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `buf.len()` is not [`len`](Array::len).
    pub fn read_into(&self, buf: &mut [T]) -> io::Result<()> {
        copy_out::<T>(self.cells(), buf, Ordering::Acquire)
    }

    /// Copies `data` into all elements, element by element without the lock.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `data.len()` is not [`len`](Array::len).
    pub fn write_from(&self, data: &[T]) -> io::Result<()> {
        copy_in::<T>(self.cells(), data, Ordering::Release)
    }

    /// A copy of all elements (as [`read_into`](Array::read_into)).
    pub fn to_vec(&self) -> Vec<T> {
        self.cells()
            .iter()
            .map(|c| T::load(c, Ordering::Acquire))
            .collect()
    }

    /// Locks the array's mutex (as `pthread_mutex_lock`); see [`Value::lock`].
    ///
    /// # Errors
    ///
    /// As [`Value::lock`].
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> LockResult<ArrayGuard<'_, T>> {
        self.shared.lock(|held| ArrayGuard { held })
    }

    /// Locks if nobody holds the lock (as `pthread_mutex_trylock`); `Ok(None)` when someone
    /// does.
    ///
    /// # Errors
    ///
    /// As [`Value::try_lock`].
    pub fn try_lock(&self) -> TryLockResult<ArrayGuard<'_, T>> {
        self.shared.try_lock(|held| ArrayGuard { held })
    }

    /// Locks, waiting at most `timeout` (as `pthread_mutex_clocklock`); `Ok(None)` when the
    /// lock stayed held.
    ///
    /// # Errors
    ///
    /// As [`Value::lock_timeout`].
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<ArrayGuard<'_, T>> {
        self.shared
            .lock_timeout(timeout, |held| ArrayGuard { held })
    }
}

impl<T: IntElement> Array<T> {
    /// Adds `value` (wrapping) to element `index` and returns its previous value; atomic.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn fetch_add(&self, index: usize, value: T) -> io::Result<T> {
        Ok(T::fetch_add(self.cell(index)?, value, Ordering::AcqRel))
    }

    /// Subtracts `value` (wrapping) from element `index`, returns its previous value; atomic.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn fetch_sub(&self, index: usize, value: T) -> io::Result<T> {
        Ok(T::fetch_sub(self.cell(index)?, value, Ordering::AcqRel))
    }

    /// Stores `new` in element `index` if it is `current`: `Ok(Ok(previous))` if it was,
    /// `Ok(Err(actual))` if not.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn compare_exchange(&self, index: usize, current: T, new: T) -> io::Result<Result<T, T>> {
        Ok(T::compare_exchange(self.cell(index)?, current, new))
    }
}

/// An [`Array`]'s lock, held: unlocks on drop. Stays on the thread that locked.
pub struct ArrayGuard<'a, T: Element> {
    held: Held<'a, T>,
}

impl<T: Element> ArrayGuard<'_, T> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.held.cells().len()
    }

    /// Always `false`: an array has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Element `index`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the index and the length when `index` is out of range.
    pub fn get(&self, index: usize) -> io::Result<T> {
        let cells = self.held.cells();
        let cell = cells
            .get(index)
            .ok_or_else(|| index_error(index, cells.len()))?;
        Ok(T::load(cell, Ordering::Relaxed))
    }

    /// Replaces element `index`.
    ///
    /// # Errors
    ///
    /// As [`get`](ArrayGuard::get).
    pub fn set(&mut self, index: usize, value: T) -> io::Result<()> {
        let cells = self.held.cells();
        let cell = cells
            .get(index)
            .ok_or_else(|| index_error(index, cells.len()))?;
        T::store(cell, value, Ordering::Relaxed);
        Ok(())
    }

    /// Copies all elements into `buf`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `buf.len()` is not the array's length.
    pub fn read_into(&self, buf: &mut [T]) -> io::Result<()> {
        copy_out::<T>(self.held.cells(), buf, Ordering::Relaxed)
    }

    /// Copies `data` into all elements.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `data.len()` is not the array's length.
    pub fn write_from(&mut self, data: &[T]) -> io::Result<()> {
        copy_in::<T>(self.held.cells(), data, Ordering::Relaxed)
    }

    /// A copy of all elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.held
            .cells()
            .iter()
            .map(|c| T::load(c, Ordering::Relaxed))
            .collect()
    }

    /// Declares the array repaired after [`LockError::OwnerDied`] (as `pthread_mutex_consistent`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the lock was not inconsistent.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&mut self) -> io::Result<()> {
        self.held.mark_consistent()
    }
}

impl<T: Element> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("len", &self.len())
            .finish()
    }
}
