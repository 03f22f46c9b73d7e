//! `RawQueue`: a named ipcbox queue of byte messages (pickling is the Python layer's job).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipcbox::queue::{Options, PutManyError, RecvError, SendError, WaitPolicy};
use ipcbox::{CreationMode, Queue};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList};

use crate::error::{self, Disconnected};
use crate::owner::{creator, creator_only_drop};
use crate::wait::{blocking, try_or_wait_done, Wait};

/// A handle on a named queue of byte messages in shared memory.
///
/// `put`/`get` return `False`/`None` for "not now" (full, empty, timed out) and raise
/// `Disconnected` when the queue was closed for everyone or every other process attached to
/// it has died (after the last committed message was taken).
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawQueue {
    queue: Queue<Vec<u8>>,
    creator: u32,
    /// Pickles an object into a message (`put`); `None` in a bytes-only handle.
    dumps: Option<Py<PyAny>>,
    /// Unpickles a message (`get`).
    loads: Option<Py<PyAny>>,
    /// This handle was closed (`multiprocessing`'s close is per handle).
    closed: AtomicBool,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// How long a blocked `put`/`get` spins before it sleeps: a peer that is busy on another core
/// usually answers within it, which saves both sides a wake-up (tens of microseconds on
/// virtual machines).
const SPIN: Duration = Duration::from_micros(50);

fn queue_exception(py: Python<'_>, name: &str, msg: Option<String>) -> PyErr {
    match py.import("queue").and_then(|m| m.getattr(name)) {
        Ok(cls) => match msg {
            Some(msg) => {
                PyErr::from_type(cls.cast_into().expect("queue exceptions are types"), msg)
            }
            None => PyErr::from_type(cls.cast_into().expect("queue exceptions are types"), ()),
        },
        Err(e) => e,
    }
}

creator_only_drop!(RawQueue, queue);

fn send_error(e: SendError) -> PyErr {
    match e {
        SendError::Disconnected => Disconnected::new_err(
            "the queue is closed or every other process attached to it has died",
        ),
        SendError::Failed(e) => error::os(e),
    }
}

fn recv_error(e: RecvError) -> PyErr {
    match e {
        RecvError::Disconnected => Disconnected::new_err(
            "the queue is empty and closed, or every other process attached to it has died",
        ),
        RecvError::Failed(e) => error::os(e),
    }
}

impl RawQueue {
    fn check_open(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(error::value(format!(
                "Queue {} is closed",
                self.queue.name().unwrap_or("(anonymous)")
            )));
        }
        Ok(())
    }

    fn put_buffer(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let put = if let Ok(bytes) = data.cast::<PyBytes>() {
            self.put(py, bytes.as_bytes(), block, timeout)?
        } else {
            // The limited API has no buffer protocol before 3.11: memoryview copies it out.
            let view = pyo3::types::PyMemoryView::from(data).map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "a message must be bytes or a buffer of bytes, not {}",
                    data.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            let copy = view.call_method0("tobytes")?;
            let bytes = copy.cast::<PyBytes>()?.as_bytes().to_vec();
            self.put(py, &bytes, block, timeout)?
        };
        if put {
            Ok(())
        } else {
            Err(queue_exception(py, "Full", None))
        }
    }
}

#[pymethods]
impl RawQueue {
    /// Creates (`create=True`, exclusively) or opens the queue `name`. `capacity` messages and
    /// `byte_capacity` payload bytes at most, messages up to `max_message` bytes (0: the byte
    /// capacity); the sizes are ignored when opening.
    #[new]
    #[pyo3(signature = (name, create, capacity = 1024, byte_capacity = 1 << 20, max_message = 0,
                        dumps = None, loads = None))]
    fn new(
        name: &str,
        create: bool,
        capacity: usize,
        byte_capacity: usize,
        max_message: usize,
        dumps: Option<Py<PyAny>>,
        loads: Option<Py<PyAny>>,
    ) -> PyResult<RawQueue> {
        let mut options = Options::new();
        options.wait_policy(WaitPolicy::SpinThenPark(SPIN));
        if create {
            options.capacity(capacity).byte_capacity(byte_capacity);
            if max_message > 0 {
                options.max_message_size(max_message);
            }
        } else {
            options.mode(CreationMode::Open);
        }
        let queue = options.named(name).map_err(error::os)?;
        Ok(RawQueue {
            queue,
            creator: creator(create),
            dumps,
            loads,
            closed: AtomicBool::new(false),
        })
    }

    /// `Queue.put`: pickles `obj` with `dumps` here and now, puts it; `queue.Full` if there
    /// was no room in time, `ValueError` after `close()`.
    #[pyo3(signature = (obj, block = true, timeout = None))]
    fn put_obj(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        self.check_open()?;
        let dumps = self
            .dumps
            .as_ref()
            .ok_or_else(|| error::value("this queue has no dumps".into()))?;
        let data = dumps.call1(py, (obj,))?;
        self.put_buffer(py, data.bind(py), block, timeout)
    }

    /// `Queue.get`: takes a message and unpickles it with `loads`; `queue.Empty` if none came
    /// in time.
    #[pyo3(signature = (block = true, timeout = None))]
    fn get_obj(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let data = self.get_bytes(py, block, timeout)?;
        let loads = self
            .loads
            .as_ref()
            .ok_or_else(|| error::value("this queue has no loads".into()))?;
        loads.call1(py, (data,))
    }

    /// `Queue.put_bytes`: puts the bytes of `data` (any buffer) as they are.
    #[pyo3(signature = (data, block = true, timeout = None))]
    fn put_bytes(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        self.check_open()?;
        self.put_buffer(py, data, block, timeout)
    }

    /// `Queue.get_bytes`: takes a message as `bytes`. `queue.Empty` if none came in time;
    /// `Disconnected` from a blocking call without timeout when every other process attached
    /// to the queue died.
    #[pyo3(signature = (block = true, timeout = None))]
    fn get_bytes<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.check_open()?;
        match self.get(py, block, timeout) {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Err(queue_exception(py, "Empty", None)),
            Err(e) if e.is_instance_of::<Disconnected>(py) && (!block || timeout.is_some()) => {
                Err(queue_exception(py, "Empty", None))
            }
            Err(e) => Err(e),
        }
    }

    /// Closes this handle: later calls raise `ValueError`.
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Whether this handle was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Puts one message; `False` if it did not fit in time.
    #[pyo3(signature = (msg, block = true, timeout = None))]
    fn put(&self, py: Python<'_>, msg: &[u8], block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let q = self.queue.as_bytes();
        try_or_wait_done(
            py,
            Wait::new(block, timeout)?,
            || q.try_put(msg),
            |left| q.put_timeout(msg, left),
            send_error,
        )
    }

    /// Takes one message; `None` if none came in time.
    #[pyo3(signature = (block = true, timeout = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let q = self.queue.as_bytes();
        // One receive buffer per thread, reused: a fresh one per message would make every
        // large message pay for new pages.
        SCRATCH.with(|scratch| {
            let mut buf = scratch.take();
            let got = blocking(py, Wait::new(block, timeout)?, |end| {
                let got = match end {
                    None => q.try_get_into(&mut buf),
                    Some(end) => q.get_into_deadline(&mut buf, end),
                };
                Ok(got.map_err(recv_error)?.then_some(()))
            });
            let out = got.map(|got| got.map(|()| PyBytes::new(py, &buf)));
            buf.clear();
            scratch.set(buf);
            out
        })
    }

    /// Puts the messages in order, as many per lock hold as fit; returns how many were put
    /// (fewer than all only when time ran out).
    #[pyo3(signature = (msgs, block = true, timeout = None))]
    fn put_many(
        &self,
        py: Python<'_>,
        msgs: Vec<PyBackedBytes>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let q = self.queue.as_bytes();
        let mut sent = 0;
        let result = blocking(py, Wait::new(block, timeout)?, |end| {
            let rest = &msgs[sent..];
            let n = match end {
                None => q.try_put_many(rest),
                Some(end) => {
                    q.put_many_timeout(rest, end.saturating_duration_since(Instant::now()))
                }
            };
            match n {
                Ok(n) => sent += n,
                Err(PutManyError { sent: n, error }) => {
                    sent += n;
                    return Err(send_error(error));
                }
            }
            Ok((sent == msgs.len()).then_some(()))
        });
        match result {
            Ok(_) => Ok(sent),
            // The messages put before the failure are in the queue: the error says how many.
            Err(e) => {
                e.value(py).setattr("sent", sent)?;
                Err(e)
            }
        }
    }

    /// Takes up to `max` messages (at least one, in one lock hold); an empty list if none
    /// came in time.
    #[pyo3(signature = (max, block = true, timeout = None))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        if max == 0 {
            return Err(error::value(
                "get_many: max must be at least 1, not 0".into(),
            ));
        }
        let q = self.queue.as_bytes();
        let mut out = Vec::new();
        blocking(py, Wait::new(block, timeout)?, |end| {
            let n = match end {
                None => q.try_get_many(max, &mut out),
                Some(end) => {
                    q.get_many_timeout(max, &mut out, end.saturating_duration_since(Instant::now()))
                }
            };
            Ok((n.map_err(recv_error)? > 0).then_some(()))
        })?;
        PyList::new(py, out.iter().map(|m| PyBytes::new(py, m)))
    }

    /// Messages in the queue (approximate).
    fn qsize(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes in the queue (approximate).
    fn used_bytes(&self) -> usize {
        self.queue.used_bytes()
    }

    /// Most messages the queue holds.
    #[getter]
    fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Most payload bytes the queue holds.
    #[getter]
    fn byte_capacity(&self) -> usize {
        self.queue.byte_capacity()
    }

    /// Largest message.
    #[getter]
    fn max_message(&self) -> usize {
        self.queue.max_message_size()
    }

    /// The shared-memory name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.queue.name()
    }

    /// Closes the queue for every process (later puts raise `Disconnected`, gets drain it).
    fn close_everywhere(&self) -> PyResult<()> {
        self.queue.close().map_err(error::os)
    }

    /// Whether the queue was closed for every process.
    fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Marks one taken message as handled.
    fn task_done(&self) -> PyResult<()> {
        self.queue
            .task_done()
            .map_err(|_| error::value("task_done() called more times than there were items".into()))
    }

    /// Waits until every message put was taken and marked done; `False` on timeout.
    #[pyo3(signature = (timeout = None))]
    fn join(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let q = &self.queue;
        let done = blocking(py, Wait::new(true, timeout)?, |end| {
            let left = end.map_or(std::time::Duration::ZERO, |e| {
                e.saturating_duration_since(Instant::now())
            });
            Ok(q.join_timeout(left)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        Disconnected::new_err(e.to_string())
                    } else {
                        error::os(e)
                    }
                })?
                .then_some(()))
        })?;
        Ok(done.is_some())
    }

    /// How many times a dead lock owner's side was repaired.
    fn recoveries(&self) -> u64 {
        self.queue.recoveries()
    }
}
