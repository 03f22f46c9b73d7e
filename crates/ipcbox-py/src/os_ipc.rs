//! The operating system's own queues and semaphores, as `posix_ipc` and `sysv_ipc` give them:
//! POSIX message queues (priorities), System V message queues (types), named POSIX semaphores
//! and System V semaphore sets.

use std::time::Instant;

use ipcbox::mq::{self, PosixQueue, SysVQueue, TypeSelector};
use ipcbox::sync::{NamedSemaphore, SemOp, SemaphoreSet};
use ipcbox::IpcKey;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error;
use crate::owner::{creator, creator_only_drop};
use crate::wait::{blocking, try_or_wait_done, Wait};

fn left(end: Instant) -> std::time::Duration {
    end.saturating_duration_since(Instant::now())
}

/// A POSIX message queue (`mq_open`).
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawPosixQueue {
    queue: PosixQueue,
    creator: u32,
}

creator_only_drop!(RawPosixQueue, queue);

#[pymethods]
impl RawPosixQueue {
    /// Creates (exclusively) or opens the queue `name`.
    #[new]
    #[pyo3(signature = (name, create, max_messages = 10, max_message_size = 8192))]
    fn new(
        name: &str,
        create: bool,
        max_messages: usize,
        max_message_size: usize,
    ) -> PyResult<RawPosixQueue> {
        let queue = if create {
            PosixQueue::create(
                name,
                mq::Attributes {
                    max_messages,
                    max_message_size,
                },
            )
        } else {
            PosixQueue::open(name)
        }
        .map_err(error::os)?;
        Ok(RawPosixQueue {
            queue,
            creator: creator(create),
        })
    }

    /// Sends `msg` with `priority`; `False` if the queue stayed full.
    #[pyo3(signature = (msg, priority = 0, block = true, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        msg: &[u8],
        priority: u32,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let q = &self.queue;
        try_or_wait_done(
            py,
            Wait::new(block, timeout)?,
            || q.try_send(msg, priority),
            |left| q.send_timeout(msg, priority, left),
            error::os,
        )
    }

    /// Receives the oldest message of the highest priority: `(bytes, priority)`, or `None`.
    #[pyo3(signature = (block = true, timeout = None))]
    fn receive<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, u32)>> {
        let q = &self.queue;
        let mut buf = vec![0; q.max_message_size()];
        let got = blocking(py, Wait::new(block, timeout)?, |end| {
            match end {
                None => q.try_recv(&mut buf),
                Some(end) => q.recv_timeout(&mut buf, left(end)),
            }
            .map_err(error::os)
        })?;
        Ok(got.map(|r| (PyBytes::new(py, &buf[..r.len]), r.priority)))
    }

    /// Messages in the queue now.
    fn current_messages(&self) -> PyResult<usize> {
        Ok(self.queue.attributes().map_err(error::os)?.current_messages)
    }

    #[getter]
    fn max_message_size(&self) -> usize {
        self.queue.max_message_size()
    }

    #[getter]
    fn name(&self) -> &str {
        self.queue.name()
    }

    /// Removes the name `name`.
    #[staticmethod]
    fn unlink(name: &str) -> PyResult<()> {
        PosixQueue::unlink(name).map_err(error::os)
    }
}

fn selector(mtype: i64) -> TypeSelector {
    match mtype {
        0 => TypeSelector::Any,
        t if t > 0 => TypeSelector::Exactly(t),
        t => TypeSelector::AtMost(t.saturating_neg()),
    }
}

fn ipc_key(key: i64) -> PyResult<IpcKey> {
    i32::try_from(key)
        .map(IpcKey::from_raw)
        .map_err(|_| error::value(format!("a System V key is a 32-bit number, not {key}")))
}

/// A System V message queue (`msgget`).
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawSysVQueue {
    queue: SysVQueue,
    creator: u32,
}

creator_only_drop!(RawSysVQueue, queue);

#[pymethods]
impl RawSysVQueue {
    /// Creates (exclusively) or opens the queue with `key`.
    #[new]
    fn new(key: i64, create: bool) -> PyResult<RawSysVQueue> {
        let key = ipc_key(key)?;
        let queue = if create {
            SysVQueue::create(key)
        } else {
            SysVQueue::open(key)
        }
        .map_err(error::os)?;
        Ok(RawSysVQueue {
            queue,
            creator: creator(create),
        })
    }

    /// Sends `msg` with type `mtype` (>= 1); `False` if the queue stayed full.
    #[pyo3(signature = (msg, mtype = 1, block = true, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        msg: &[u8],
        mtype: i64,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let q = &self.queue;
        try_or_wait_done(
            py,
            Wait::new(block, timeout)?,
            || q.try_send(msg, mtype),
            |left| q.send_timeout(msg, mtype, left),
            error::os,
        )
    }

    /// Receives by type (0 the first, > 0 the first of that type, < 0 the lowest type up to
    /// |t|): `(bytes, type)`, or `None`.
    #[pyo3(signature = (mtype = 0, block = true, timeout = None, max_size = 65536))]
    fn receive<'py>(
        &self,
        py: Python<'py>,
        mtype: i64,
        block: bool,
        timeout: Option<f64>,
        max_size: usize,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, i64)>> {
        let q = &self.queue;
        let sel = selector(mtype);
        let mut buf = vec![0; max_size];
        let got = blocking(py, Wait::new(block, timeout)?, |end| {
            match end {
                None => q.try_recv(&mut buf, sel),
                Some(end) => q.recv_timeout(&mut buf, sel, left(end)),
            }
            .map_err(error::os)
        })?;
        Ok(got.map(|r| (PyBytes::new(py, &buf[..r.len]), r.mtype)))
    }

    #[getter]
    fn id(&self) -> i32 {
        self.queue.id()
    }

    /// Removes the queue from the system.
    fn remove(&self) -> PyResult<()> {
        SysVQueue::from_id(self.queue.id())
            .and_then(|q| q.remove())
            .map_err(error::os)
    }
}

/// A named POSIX semaphore (`sem_open`), as `posix_ipc.Semaphore`.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawNamedSemaphore {
    sem: NamedSemaphore,
    creator: u32,
}

creator_only_drop!(RawNamedSemaphore, sem);

#[pymethods]
impl RawNamedSemaphore {
    #[new]
    #[pyo3(signature = (name, create, value = 0))]
    fn new(name: &str, create: bool, value: u32) -> PyResult<RawNamedSemaphore> {
        let sem = if create {
            NamedSemaphore::create(name, value)
        } else {
            NamedSemaphore::open(name)
        }
        .map_err(error::os)?;
        Ok(RawNamedSemaphore {
            sem,
            creator: creator(create),
        })
    }

    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let s = &self.sem;
        try_or_wait_done(
            py,
            Wait::new(block, timeout)?,
            || s.try_wait(),
            |left| s.wait_timeout(left),
            error::os,
        )
    }

    fn release(&self) -> PyResult<()> {
        self.sem.post().map_err(error::os)
    }

    #[getter]
    fn value(&self) -> PyResult<u32> {
        self.sem.value().map_err(error::os)
    }

    #[getter]
    fn name(&self) -> &str {
        self.sem.name()
    }

    #[staticmethod]
    fn unlink(name: &str) -> PyResult<()> {
        NamedSemaphore::unlink(name).map_err(error::os)
    }
}

/// A System V semaphore set (`semget`), as `sysv_ipc.Semaphore` (a set of one) and more.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawSemaphoreSet {
    set: SemaphoreSet,
    creator: u32,
}

creator_only_drop!(RawSemaphoreSet, set);

#[pymethods]
impl RawSemaphoreSet {
    #[new]
    #[pyo3(signature = (key, create, nsems = 1))]
    fn new(key: i64, create: bool, nsems: usize) -> PyResult<RawSemaphoreSet> {
        let key = ipc_key(key)?;
        let set = if create {
            SemaphoreSet::create(key, nsems)
        } else {
            SemaphoreSet::open(key)
        }
        .map_err(error::os)?;
        Ok(RawSemaphoreSet {
            set,
            creator: creator(create),
        })
    }

    /// `semop` of `(index, delta)` pairs, all or nothing; `undo` adds `SEM_UNDO`. `False` if it
    /// could not be done in time.
    #[pyo3(signature = (ops, undo = false, block = true, timeout = None))]
    fn op(
        &self,
        py: Python<'_>,
        ops: Vec<(u16, i16)>,
        undo: bool,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let ops: Vec<SemOp> = ops
            .into_iter()
            .map(|(i, d)| {
                let op = SemOp::new(i, d);
                if undo {
                    op.undo()
                } else {
                    op
                }
            })
            .collect();
        let set = &self.set;
        let done = blocking(py, Wait::new(block, timeout)?, |end| {
            let done = match end {
                None => {
                    let nowait: Vec<SemOp> = ops.iter().map(|o| o.nowait()).collect();
                    match set.op(&nowait) {
                        Ok(()) => Ok(true),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
                        Err(e) => Err(e),
                    }
                }
                Some(end) => set.op_timeout(&ops, left(end)),
            };
            Ok(done.map_err(error::os)?.then_some(()))
        })?;
        Ok(done.is_some())
    }

    fn get(&self, index: usize) -> PyResult<u16> {
        self.set.get(index).map_err(error::os)
    }

    fn set(&self, index: usize, value: u16) -> PyResult<()> {
        self.set.set(index, value).map_err(error::os)
    }

    #[getter]
    fn id(&self) -> i32 {
        self.set.id()
    }

    fn __len__(&self) -> usize {
        self.set.len()
    }

    /// Removes the set from the system.
    fn remove(&self) -> PyResult<()> {
        SemaphoreSet::open(self.set.key())
            .and_then(|s| s.remove())
            .map_err(error::os)
    }
}
