//! Library errors as Python exceptions: the kind of an `io::Error` picks the class, the
//! message names the object and the value that was wrong.

use std::io;

use pyo3::exceptions::{PyEOFError, PyFileExistsError, PyFileNotFoundError, PyValueError};
use pyo3::{create_exception, PyErr};

create_exception!(
    _ipcbox,
    Disconnected,
    PyEOFError,
    "The queue was closed for everyone, or every other process attached to it has died."
);

create_exception!(
    _ipcbox,
    OwnerDied,
    pyo3::exceptions::PyRuntimeError,
    "A lock's previous owner died holding it."
);

/// The Python exception for an OS or library error.
pub(crate) fn os(e: io::Error) -> PyErr {
    match e.kind() {
        io::ErrorKind::InvalidInput => PyValueError::new_err(e.to_string()),
        io::ErrorKind::NotFound => PyFileNotFoundError::new_err(e.to_string()),
        io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(e.to_string()),
        _ => PyErr::from(e),
    }
}

/// `ValueError` with `msg`.
pub(crate) fn value(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}
