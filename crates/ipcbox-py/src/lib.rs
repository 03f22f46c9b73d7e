//! The native half of the `ipcbox` Python package: thin handles over the ipcbox library's
//! shared-memory objects, which the pure-Python layer (`python/ipcbox/`) shapes into
//! `multiprocessing`'s API.
//!
//! Every blocking call here releases the GIL while it waits and wakes in short slices to let
//! Python run its signal handlers, so `KeyboardInterrupt` reaches a blocked `get`, `acquire`
//! or `wait` promptly. A call that need not wait keeps the GIL: the
//! release and re-acquisition cost more than a message.

mod error;
mod os_ipc;
mod owner;
mod queue;
mod store;
mod sync;
mod typed;
mod wait;

use pyo3::prelude::*;

/// The module `ipcbox._ipcbox`.
#[pymodule]
fn _ipcbox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Disconnected", m.py().get_type::<error::Disconnected>())?;
    m.add("OwnerDied", m.py().get_type::<error::OwnerDied>())?;
    m.add_class::<queue::RawQueue>()?;
    m.add_class::<sync::RawLock>()?;
    m.add_class::<sync::RawSemaphore>()?;
    m.add_class::<sync::RawEvent>()?;
    m.add_class::<store::RawStore>()?;
    m.add_class::<store::RawObject>()?;
    m.add_class::<store::RawObjectBuf>()?;
    m.add_class::<os_ipc::RawPosixQueue>()?;
    m.add_class::<os_ipc::RawSysVQueue>()?;
    m.add_class::<os_ipc::RawNamedSemaphore>()?;
    m.add_class::<os_ipc::RawSemaphoreSet>()?;
    m.add_function(wrap_pyfunction!(typed::create_typed, m)?)?;
    m.add_function(wrap_pyfunction!(sync::after_fork_in_child, m)?)?;
    m.add("SEMAPHORE_MAX", ipcbox::sync::SEMAPHORE_MAX)?;
    Ok(())
}
