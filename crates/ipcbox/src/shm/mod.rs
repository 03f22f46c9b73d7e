//! Shared memory: named POSIX segments, System V segments, file-backed and anonymous maps.
//!
//! | type | OS object | found by | shared with |
//! |---|---|---|---|
//! | [`Segment`] | `shm_open` object in `/dev/shm` | a name (`"/name"`) | any process, Python's `multiprocessing.shared_memory` and `posix_ipc` |
//! | [`SysVSegment`] | System V segment (`shmget`) | an [`IpcKey`](crate::IpcKey) (explicit or [`IpcKey::ftok`](crate::IpcKey::ftok)) | any process, Python's `sysv_ipc` |
//! | [`FileMap`] | a regular file, `mmap`ed `MAP_SHARED` | a path | any process that maps the file |
//! | [`AnonymousMap`] | anonymous `MAP_SHARED` memory | nothing | children forked after it was made |
//! | [`Value`], [`Array`] | a named segment or anonymous memory holding typed numbers, a lock and a checked header | a name, or nothing | any process that opens it with the same element type |
//! | [`Store`] | an object store in one named segment: create → write → seal → zero-copy read-only views (module [`store`](mod@store)) | a name, object ids | any process using ipcbox |
//!
//! * The four byte-level types copy bytes in and out with bounds-checked `read_at` /
//!   `write_at`. The memory is shared with other processes, so what is read is untrusted input.
//! * `as_ptr` and the unsafe `as_slice` / `as_mut_slice` are for callers that organise
//!   concurrent access themselves.
//! * [`Value`] and [`Array`] hold numbers (see [`Element`]), each accessed atomically.
//!
//! # Python's `SharedMemory` and its resource tracker
//!
//! `multiprocessing.shared_memory.SharedMemory(name=...)` opens a [`Segment`], but CPython's
//! resource tracker then unlinks the name when that Python process exits, though it only
//! attached (every version, with default arguments). The segment loses its name under its
//! owner: mappings stay valid, new openers get `NotFound`. In the Python process:
//!
//! * Python 3.13 and later: `SharedMemory(name=name, track=False)`.
//! * Before 3.13: right after attaching,
//!   `multiprocessing.resource_tracker.unregister(seg._name, "shared_memory")`.
//!
//! `posix_ipc.SharedMemory` does not do this.
//!
//! ```
//! use ipcbox::shm;
//!
//! # let name = format!("ipcbox-doc-mod-{}", std::process::id());
//! let seg = shm::Segment::create(&name, 4096)?; // removed again when `seg` is dropped
//! seg.write_at(0, b"ping")?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;

/// The byte access every shared-memory type has, over its `map: Mapping` and `writable: bool`
/// fields and a `what()` description for error messages.
macro_rules! byte_access {
    ($ty:ident) => {
        impl $ty {
            /// The size in bytes of the mapped memory.
            pub fn len(&self) -> usize {
                self.map.len()
            }

            /// Always `false`: a zero-sized mapping cannot be made.
            pub fn is_empty(&self) -> bool {
                false
            }

            /// Copies `buf.len()` bytes at `offset` into `buf`.
            ///
            /// Other processes may write the same bytes meanwhile; what is read is then some mix
            /// of old and new bytes, so treat it as untrusted input.
            ///
            /// # Errors
            ///
            /// [`std::io::ErrorKind::InvalidInput`] if the range does not fit; the message
            /// names the offset, the length and the size.
            pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> std::io::Result<()> {
                if self.map.read_at(offset, buf) {
                    Ok(())
                } else {
                    Err($crate::shm::out_of_bounds(
                        "read",
                        &self.what(),
                        offset,
                        buf.len(),
                        self.len(),
                    ))
                }
            }

            /// Copies `data` into the memory at `offset`.
            ///
            /// # Errors
            ///
            /// [`std::io::ErrorKind::InvalidInput`] if the range does not fit (the message
            /// names the offset, the length and the size),
            /// [`std::io::ErrorKind::PermissionDenied`] on a read-only handle.
            pub fn write_at(&self, offset: usize, data: &[u8]) -> std::io::Result<()> {
                if !self.writable {
                    return Err($crate::shm::read_only(&self.what()));
                }
                if self.map.write_at(offset, data) {
                    Ok(())
                } else {
                    Err($crate::shm::out_of_bounds(
                        "write",
                        &self.what(),
                        offset,
                        data.len(),
                        self.len(),
                    ))
                }
            }

            /// The address of the first byte, for callers that organise concurrent access
            /// themselves. Valid while `self` lives; writing through it needs a writable handle.
            pub fn as_ptr(&self) -> *mut u8 {
                self.map.as_ptr()
            }

            /// The whole memory as a byte slice.
            ///
            /// # Safety
            ///
            /// While the slice lives, no one may write the memory: not this process, and not
            /// any other process that has it mapped. ipcbox cannot check other processes; use
            /// `read_at` unless a protocol excludes such writes (a lock, or memory that is
            /// never written again once published).
            #[allow(unsafe_code)]
            pub unsafe fn as_slice(&self) -> &[u8] {
                // SAFETY: forwarded from the caller's promise, see # Safety.
                unsafe { self.mapping().as_slice() }
            }

            /// The whole memory as a mutable byte slice.
            ///
            /// # Safety
            ///
            /// The handle must be writable, and while the slice lives no one else may read or
            /// write the memory: not this process, and not any other process that has it mapped.
            #[allow(unsafe_code)]
            pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
                // SAFETY: forwarded from the caller's promise, see # Safety; `&mut self`
                // excludes other slices from this handle.
                unsafe { self.mapping().as_mut_slice() }
            }

            /// The mapping, for `as_slice` / `as_mut_slice` and the crate's structures that live
            /// in shared memory.
            pub(crate) fn mapping(&self) -> &$crate::sys::mmap::Mapping {
                &self.map
            }
        }
    };
}

mod map;
mod segment;
mod sysv;
mod typed;

pub use crate::store;
pub use map::{AnonymousMap, FileMap};
pub(crate) use segment::Link;
pub use segment::{unlink, Options, Segment, NAME_MAX, SIZE_MAX};
pub use store::{ObjectBuf, ObjectId, ObjectRef, Pod, Store};
pub use sysv::{SysVOptions, SysVSegment};
pub use typed::{
    Array, ArrayGuard, Element, IntElement, LockError, LockResult, TryLockResult, TypedOptions,
    Value, ValueGuard, LAYOUT_VERSION,
};

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
