//! `RawLock` (the robust mutex), `RawSemaphore` and `RawEvent`: named ipcbox primitives.

use std::io;
use std::time::Instant;

use ipcbox::sync::{Event, LockError, Mutex, Semaphore};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error;
use crate::wait::{blocking, sleep_out, Wait};

/// Removes the name only in the process that created it, not in a copy inherited by `fork`.
macro_rules! creator_only_drop {
    ($ty:ident, $field:ident) => {
        impl Drop for $ty {
            fn drop(&mut self) {
                if std::process::id() != self.creator {
                    self.$field.detach();
                }
            }
        }
    };
}

fn creator(create: bool) -> u32 {
    if create {
        std::process::id()
    } else {
        0
    }
}

/// A robust lock in shared memory, owned by the thread that acquired it.
///
/// When its holder dies, the next `acquire` gets it and reports that the owner died; the lock
/// is then marked consistent again, so it stays usable.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawLock {
    mutex: Mutex,
    creator: u32,
}

creator_only_drop!(RawLock, mutex);

/// What one attempt to lock gave.
enum Locked {
    Yes { owner_died: bool },
    ByMe,
}

fn locked<G: Mark>(got: Result<Option<G>, LockError<G>>) -> PyResult<Option<Locked>> {
    match got {
        Ok(Some(guard)) => {
            std::mem::forget(guard);
            Ok(Some(Locked::Yes { owner_died: false }))
        }
        Ok(None) => Ok(None),
        Err(LockError::OwnerDied(guard)) => {
            // Python code cannot repair state through the guard later; the acquirer is told
            // that the owner died and the lock is usable again.
            let mut guard = guard;
            let marked = mark(&mut guard);
            std::mem::forget(guard);
            marked?;
            Ok(Some(Locked::Yes { owner_died: true }))
        }
        Err(LockError::NotRecoverable) => Err(PyRuntimeError::new_err(
            "the lock is not recoverable: an owner died and the next did not mark it consistent",
        )),
        Err(LockError::Io(e)) if e.kind() == io::ErrorKind::Deadlock => Ok(Some(Locked::ByMe)),
        Err(LockError::Io(e)) => Err(error::os(e)),
    }
}

trait Mark {
    fn mark(&mut self) -> io::Result<()>;
}

impl Mark for ipcbox::sync::MutexGuard<'_> {
    fn mark(&mut self) -> io::Result<()> {
        self.mark_consistent()
    }
}

fn mark<G: Mark>(guard: &mut G) -> PyResult<()> {
    guard.mark().map_err(error::os)
}

#[pymethods]
impl RawLock {
    /// Creates (exclusively) or opens the lock `name`.
    #[new]
    fn new(name: &str, create: bool) -> PyResult<RawLock> {
        let mutex = if create {
            Mutex::create(name)
        } else {
            Mutex::open(name)
        }
        .map_err(error::os)?;
        Ok(RawLock {
            mutex,
            creator: creator(create),
        })
    }

    /// Locks; returns `(acquired, owner_died)`. A thread acquiring a lock it holds gets
    /// `(False, False)` without waiting when `block` is false, after the timeout otherwise,
    /// and a `RuntimeError` when it would wait for ever.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<(bool, bool)> {
        let m = &self.mutex;
        let wait = Wait::new(block, timeout)?;
        let got = blocking(py, wait, |end| match end {
            None => locked(m.try_lock()),
            Some(end) => locked(m.lock_timeout(end.saturating_duration_since(Instant::now()))),
        })?;
        match got {
            Some(Locked::Yes { owner_died }) => Ok((true, owner_died)),
            None => Ok((false, false)),
            Some(Locked::ByMe) => match wait {
                Wait::Until(None) => Err(PyRuntimeError::new_err(format!(
                    "deadlock: this thread already holds the lock {}",
                    m.name().unwrap_or("(anonymous)")
                ))),
                _ => sleep_out(py, wait).map(|()| (false, false)),
            },
        }
    }

    /// Unlocks; `ValueError` if the calling thread does not hold the lock.
    fn release(&self) -> PyResult<()> {
        self.mutex.unlock().map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                error::value("release of a lock the calling thread does not hold".into())
            } else {
                error::os(e)
            }
        })
    }

    /// Whether some thread holds the lock now.
    fn locked(&self) -> PyResult<bool> {
        match self.mutex.try_lock() {
            Ok(Some(guard)) => {
                drop(guard);
                Ok(false)
            }
            Ok(None) => Ok(true),
            Err(LockError::OwnerDied(mut guard)) => {
                mark(&mut guard)?;
                Ok(false)
            }
            Err(e) => Err(error::os(e.into())),
        }
    }

    /// The shared-memory name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.mutex.name()
    }
}

/// A counting semaphore in shared memory.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawSemaphore {
    sem: Semaphore,
    creator: u32,
}

creator_only_drop!(RawSemaphore, sem);

#[pymethods]
impl RawSemaphore {
    /// Creates (exclusively, with `value` permits) or opens the semaphore `name`.
    #[new]
    #[pyo3(signature = (name, create, value = 1))]
    fn new(name: &str, create: bool, value: i64) -> PyResult<RawSemaphore> {
        let sem = if create {
            let initial = u32::try_from(value)
                .ok()
                .filter(|v| *v <= ipcbox::sync::SEMAPHORE_MAX)
                .ok_or_else(|| {
                    error::value(format!(
                        "semaphore initial value must be 0 to {}, not {value}",
                        ipcbox::sync::SEMAPHORE_MAX
                    ))
                })?;
            Semaphore::create(name, initial)
        } else {
            Semaphore::open(name)
        }
        .map_err(error::os)?;
        Ok(RawSemaphore {
            sem,
            creator: creator(create),
        })
    }

    /// Takes a permit; `False` if none came in time.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let s = &self.sem;
        let got = blocking(py, Wait::new(block, timeout)?, |end| {
            let got = match end {
                None => s.try_acquire(),
                Some(end) => s.acquire_timeout(end.saturating_duration_since(Instant::now())),
            };
            Ok(got.map_err(error::os)?.then_some(()))
        })?;
        Ok(got.is_some())
    }

    /// Returns `n` permits.
    #[pyo3(signature = (n = 1))]
    fn release(&self, n: u32) -> PyResult<()> {
        self.sem.release_n(n).map_err(error::os)
    }

    /// The permits now.
    fn get_value(&self) -> u32 {
        self.sem.value()
    }

    /// The shared-memory name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.sem.name()
    }
}

/// A flag in shared memory that processes wait on.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawEvent {
    event: Event,
    creator: u32,
}

creator_only_drop!(RawEvent, event);

#[pymethods]
impl RawEvent {
    /// Creates (exclusively, clear) or opens the event `name`.
    #[new]
    fn new(name: &str, create: bool) -> PyResult<RawEvent> {
        let event = if create {
            Event::create(name)
        } else {
            Event::open(name)
        }
        .map_err(error::os)?;
        Ok(RawEvent {
            event,
            creator: creator(create),
        })
    }

    /// Sets the flag and wakes every waiter.
    fn set(&self) {
        self.event.set()
    }

    /// Clears the flag.
    fn clear(&self) {
        self.event.clear()
    }

    /// Whether the flag is set.
    fn is_set(&self) -> bool {
        self.event.is_set()
    }

    /// Waits until the flag is set; `False` on timeout.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let ev = &self.event;
        let set = blocking(py, Wait::new(true, timeout)?, |end| {
            let set = match end {
                None => ev.is_set(),
                Some(end) => ev
                    .wait_timeout(end.saturating_duration_since(Instant::now()))
                    .map_err(error::os)?,
            };
            Ok(set.then_some(()))
        })?;
        Ok(set.is_some())
    }

    /// The shared-memory name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.event.name()
    }
}
