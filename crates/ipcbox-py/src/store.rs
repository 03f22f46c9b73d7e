//! `RawStore`: the zero-copy object store. Objects are handed to Python by address and
//! length (the limited API has no buffer protocol before 3.11): the Python layer wraps them in
//! a ctypes array kept alive with the hold, and gives out a read-only memoryview of it.

use std::sync::Mutex;

use ipcbox::store::{ObjectBuf, ObjectId, ObjectRef, Options, Store};
use ipcbox::CreationMode;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use crate::error;
use crate::owner::{creator, creator_only_drop};
use crate::wait::{try_or_wait, Wait};

fn object_id(id: &Bound<'_, PyAny>) -> PyResult<ObjectId> {
    if let Ok(n) = id.cast::<PyInt>() {
        let n: u64 = n.extract().map_err(|_| {
            error::value(format!("an object id number must be 0 to 2**64-1, not {n}"))
        })?;
        return Ok(ObjectId::from_u64(n));
    }
    if let Ok(b) = id.cast::<PyBytes>() {
        return ObjectId::from_slice(b.as_bytes()).map_err(error::os);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "an object id is an int or 20 bytes, not {}",
        id.get_type().name()?
    )))
}

/// A handle on a named object store.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawStore {
    store: Store,
    creator: u32,
}

creator_only_drop!(RawStore, store);

#[pymethods]
impl RawStore {
    /// Creates (exclusively, `capacity` bytes) or opens the store `name`.
    #[new]
    #[pyo3(signature = (name, create, capacity = 0, evict = false))]
    fn new(name: &str, create: bool, capacity: usize, evict: bool) -> PyResult<RawStore> {
        let mut options = Options::new();
        if create {
            options.capacity(capacity).evict(evict);
        } else {
            options.mode(CreationMode::Open);
        }
        Ok(RawStore {
            store: options.open(name).map_err(error::os)?,
            creator: creator(create),
        })
    }

    /// Reserves `size` bytes for object `id`: the buffer to write, then seal.
    fn create_object(&self, id: &Bound<'_, PyAny>, size: usize) -> PyResult<RawObjectBuf> {
        let buf = self
            .store
            .create_object(object_id(id)?, size)
            .map_err(error::os)?;
        Ok(RawObjectBuf {
            buf: Mutex::new(Some(buf)),
        })
    }

    /// A view of the sealed object `id`, waiting for it to be sealed; `None` if it was not in
    /// time.
    #[pyo3(signature = (id, block = true, timeout = None))]
    fn get(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<RawObject>> {
        let id = object_id(id)?;
        let store = &self.store;
        let got = try_or_wait(
            py,
            Wait::new(block, timeout)?,
            || store.try_get(id),
            |left| store.get_timeout(id, left),
            error::os,
        )?;
        Ok(got.map(|view| RawObject { view }))
    }

    /// Removes object `id` from view (its space is freed when the last view goes).
    fn delete(&self, id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.store.delete(object_id(id)?).map_err(error::os)
    }

    /// Whether a sealed object `id` is in the store.
    fn contains(&self, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.store.contains(object_id(id)?).map_err(error::os)
    }

    /// The data area's size in bytes.
    #[getter]
    fn capacity(&self) -> usize {
        self.store.capacity()
    }

    /// The store's name.
    #[getter]
    fn name(&self) -> &str {
        self.store.name()
    }
}

/// A hold on a sealed object: its bytes stay in place while this lives.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawObject {
    view: ObjectRef,
}

#[pymethods]
impl RawObject {
    /// The address of the object's first byte in this process (read-only memory).
    fn address(&self) -> usize {
        self.view.as_ptr() as usize
    }

    fn __len__(&self) -> usize {
        self.view.len()
    }
}

/// An object being written: its address, then `seal` or `abort`.
#[pyclass(module = "ipcbox._ipcbox", frozen)]
pub(crate) struct RawObjectBuf {
    buf: Mutex<Option<ObjectBuf>>,
}

impl RawObjectBuf {
    fn with<R>(&self, f: impl FnOnce(&mut ObjectBuf) -> R) -> PyResult<R> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        match buf.as_mut() {
            Some(b) => Ok(f(b)),
            None => Err(error::value(
                "the object was already sealed or aborted".into(),
            )),
        }
    }

    fn take(&self) -> PyResult<ObjectBuf> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.take()
            .ok_or_else(|| error::value("the object was already sealed or aborted".into()))
    }
}

#[pymethods]
impl RawObjectBuf {
    /// The address of the object's first byte, writable until it is sealed.
    fn address(&self) -> PyResult<usize> {
        self.with(|b| b.as_mut_ptr() as usize)
    }

    fn __len__(&self) -> PyResult<usize> {
        self.with(|b| b.len())
    }

    /// Makes the object immutable and visible.
    fn seal(&self) -> PyResult<()> {
        self.take()?.seal().map_err(error::os)
    }

    /// Gives the space back without publishing the object.
    fn abort(&self) -> PyResult<()> {
        self.take()?.abort().map_err(error::os)
    }
}
