//! `RawLock` (the robust mutex), `RawSemaphore` and `RawEvent`: named ipcbox primitives.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use ipcbox::sync::{Event, LockError, Mutex, Semaphore};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error;
use crate::owner::{creator, creator_only_drop};
use crate::wait::{blocking, sleep_out, try_or_wait_done, Wait};

/// Bumped in a child after `fork` (through `os.register_at_fork`): a lock's record of its
/// owning thread from before the fork then names nobody in the child.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_TOKEN: u8 = const { 0 };
}

/// This thread, as a lock records its owner: the address of a thread-local (unique among the
/// live threads of the process) and the fork generation.
fn this_thread() -> (usize, u64) {
    (
        THREAD_TOKEN.with(|t| t as *const u8 as usize),
        FORK_GENERATION.load(Ordering::Relaxed),
    )
}

/// Called in a child after `fork`.
#[pyfunction]
pub(crate) fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// A robust lock in shared memory, owned by the thread that acquired it; recursive (an
/// `RLock`) or not (a `Lock`). The Python classes `Lock` and `RLock` derive from it.
///
/// When its holder dies, the next `acquire` gets it and sets `owner_died`; the lock is then
/// marked consistent again, so it stays usable.
#[pyclass(module = "ipcbox._ipcbox", frozen, subclass)]
pub(crate) struct RawLock {
    mutex: Mutex,
    creator: u32,
    recursive: bool,
    /// The owning thread in this process (see `this_thread`), 0 when none here.
    owner: AtomicUsize,
    owner_generation: AtomicU64,
    /// How many times the owner holds it (an RLock's recursion).
    count: AtomicU32,
    owner_died: AtomicBool,
}

creator_only_drop!(RawLock, mutex);

impl RawLock {
    fn is_mine_now(&self) -> bool {
        let (me, generation) = this_thread();
        self.owner.load(Ordering::Relaxed) == me
            && self.owner_generation.load(Ordering::Relaxed) == generation
    }

    fn not_held_error(&self) -> PyErr {
        if self.recursive {
            PyRuntimeError::new_err("cannot release un-acquired lock")
        } else {
            error::value("release of a lock the calling thread does not hold".into())
        }
    }

    fn release_fully(&self) -> PyResult<()> {
        self.owner.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.mutex.unlock().map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                self.not_held_error()
            } else {
                error::os(e)
            }
        })
    }
}

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
    #[pyo3(signature = (name, create, recursive = false))]
    fn new(name: &str, create: bool, recursive: bool) -> PyResult<RawLock> {
        let mutex = if create {
            Mutex::create(name)
        } else {
            Mutex::open(name)
        }
        .map_err(error::os)?;
        Ok(RawLock {
            mutex,
            creator: creator(create),
            recursive,
            owner: AtomicUsize::new(0),
            owner_generation: AtomicU64::new(0),
            count: AtomicU32::new(0),
            owner_died: AtomicBool::new(false),
        })
    }

    /// Takes the lock; `False` if it stayed held (`block=False`, or the timeout). An `RLock`
    /// taken again by its owner counts one more; a `Lock` taken again by its owner is never
    /// free: `False` at once or after the timeout, a `RuntimeError` when it would wait for
    /// ever.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let wait = Wait::new(block, timeout)?;
        if self.is_mine_now() {
            if self.recursive {
                self.count.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            return self.deadlock(py, wait);
        }
        let m = &self.mutex;
        let got = blocking(py, wait, |end| match end {
            None => locked(m.try_lock()),
            Some(end) => locked(m.lock_timeout(end.saturating_duration_since(Instant::now()))),
        })?;
        match got {
            Some(Locked::Yes { owner_died }) => {
                let (me, generation) = this_thread();
                self.owner.store(me, Ordering::Relaxed);
                self.owner_generation.store(generation, Ordering::Relaxed);
                self.count.store(1, Ordering::Relaxed);
                self.owner_died.store(owner_died, Ordering::Relaxed);
                Ok(true)
            }
            None => Ok(false),
            // Held by this thread under a record from before a fork, or a peer's garbage.
            Some(Locked::ByMe) => self.deadlock(py, wait),
        }
    }

    /// Releases once (an `RLock` is free after as many releases as acquires); `ValueError`
    /// (`Lock`) or `RuntimeError` (`RLock`) if the calling thread does not hold it.
    fn release(&self) -> PyResult<()> {
        if !self.is_mine_now() {
            return Err(self.not_held_error());
        }
        if self.recursive && self.count.load(Ordering::Relaxed) > 1 {
            self.count.fetch_sub(1, Ordering::Relaxed);
            return Ok(());
        }
        self.release_fully()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release()?;
        Ok(false)
    }

    /// Whether the last `acquire` took the lock over from a holder that had died.
    #[getter]
    fn owner_died(&self) -> bool {
        self.owner_died.load(Ordering::Relaxed)
    }

    /// Whether the calling thread holds the lock.
    fn _is_mine(&self) -> bool {
        self.is_mine_now()
    }

    /// How many times the calling thread holds it.
    #[getter]
    fn _count(&self) -> u32 {
        if self.is_mine_now() {
            self.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Releases every hold of the calling thread and returns how many there were (for a
    /// condition variable's wait).
    fn _release_all(&self) -> PyResult<u32> {
        if !self.is_mine_now() {
            return Err(self.not_held_error());
        }
        let count = self.count.load(Ordering::Relaxed);
        self.release_fully()?;
        Ok(count)
    }

    /// Takes the lock back with `count` holds (after `_release_all`).
    fn _acquire_restore(&self, py: Python<'_>, count: u32) -> PyResult<()> {
        self.acquire(py, true, None)?;
        self.count.store(count.max(1), Ordering::Relaxed);
        Ok(())
    }

    /// Whether some thread holds the lock now.
    fn locked(&self) -> PyResult<bool> {
        if self.is_mine_now() {
            return Ok(true);
        }
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

impl RawLock {
    /// A non-recursive lock acquired again by its holder: never free.
    fn deadlock(&self, py: Python<'_>, wait: Wait) -> PyResult<bool> {
        match wait {
            Wait::Until(None) => Err(PyRuntimeError::new_err(format!(
                "deadlock: this thread already holds the lock {}",
                self.mutex.name().unwrap_or("(anonymous)")
            ))),
            _ => sleep_out(py, wait).map(|()| false),
        }
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
        try_or_wait_done(
            py,
            Wait::new(block, timeout)?,
            || s.try_acquire(),
            |left| s.acquire_timeout(left),
            error::os,
        )
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
        try_or_wait_done(
            py,
            Wait::new(true, timeout)?,
            || Ok(ev.is_set()),
            |left| ev.wait_timeout(left),
            error::os,
        )
    }

    /// The shared-memory name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.event.name()
    }
}
