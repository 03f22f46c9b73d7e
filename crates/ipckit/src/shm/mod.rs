//! Shared memory: named POSIX segments, System V segments, file-backed and anonymous maps.
//!
//! | type | OS object | found by | shared with |
//! |---|---|---|---|
//! | [`Segment`] | `shm_open` object in `/dev/shm` | a name (`"/name"`) | any process, Python's `multiprocessing.shared_memory` and `posix_ipc` |
//! | [`SysVSegment`] | System V segment (`shmget`) | an [`IpcKey`] (explicit or [`ftok`]) | any process, Python's `sysv_ipc` |
//! | [`FileMap`] | a regular file, `mmap`ed `MAP_SHARED` | a path | any process that maps the file |
//! | [`AnonymousMap`] | anonymous `MAP_SHARED` memory | nothing | children forked after it was made |
//!
//! All four copy bytes in and out with bounds-checked `read_at` / `write_at`; the memory is
//! shared with other processes, so what is read is untrusted input. `as_ptr` and the unsafe
//! `as_slice` / `as_mut_slice` are for callers that organise concurrent access themselves.
//!
//! ```
//! use ipckit::shm;
//!
//! # let name = format!("ipckit-doc-mod-{}", std::process::id());
//! let seg = shm::Segment::create(&name, 4096)?; // removed again when `seg` is dropped
//! seg.write_at(0, b"ping")?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;

mod segment;

pub use segment::{unlink, Options, Segment, NAME_MAX, SIZE_MAX};

/// The error for a `read_at` / `write_at` range outside an object.
fn out_of_bounds(
    op: &str,
    what: &dyn fmt::Display,
    offset: usize,
    len: usize,
    size: usize,
) -> io::Error {
    crate::error::invalid_input(format_args!(
        "{op} {len} bytes at offset {offset} of shared memory {what}: outside its {size} bytes"
    ))
}

/// The error for a write through a read-only handle.
fn read_only(what: &dyn fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("write to shared memory {what}: the handle is read-only"),
    )
}
