//! Views of sealed objects and buffers of objects being created.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::SeqCst;

use super::handle::{Deferred, Store};
use super::id::ObjectId;
use crate::error::invalid_input;
use crate::sys::futex;
use crate::sys::mmap::{cast_slice, cast_slice_mut, CastError, Pod, SharedBytes};

/// A read-only view of a sealed object, in place in the shared segment: `&[u8]` through
/// `Deref` (from a `PROT_READ` mapping), or `&[T]` through [`as_slice_of`](ObjectRef::as_slice_of).
///
/// The view is a hold recorded in the store: the object's space is not reused while it lives,
/// even if the object is deleted. Dropping it releases the hold ([`release`](ObjectRef::release)
/// reports errors instead). A hold belongs to the process (its pid): a child forked while the
/// parent holds a view does not hold it.
///
/// Dropping never waits long for the store's lock. If a live process holds it, the hold is
/// released at this process's next operation on the store, or, if none comes, once this
/// process has exited.
///
/// The bytes cannot be written through a view, by type:
///
/// ```compile_fail
/// # fn f(view: ipcbox::store::ObjectRef) {
/// view[0] = 1; // error: cannot assign to data in dereference of `ObjectRef`
/// # }
/// ```
///
/// nor through its address: the view points into a `PROT_READ` mapping, so a write faults.
pub struct ObjectRef {
    pub(super) store: Store,
    pub(super) mem: SharedBytes,
    pub(super) id: ObjectId,
    pub(super) index: usize,
    pub(super) generation: u32,
    pub(super) released: bool,
}

impl ObjectRef {
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The object's bytes viewed as a slice of `T` (e.g. `f64`): no copy.
    ///
    /// Objects start at multiples of [`ALIGN`](super::ALIGN) (64) bytes in a page-aligned
    /// data area, so any primitive type is aligned.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when the size is not a multiple of `size_of::<T>()`
    /// or the start is not aligned for `T`; the message names the type and the size.
    pub fn as_slice_of<T: Pod>(&self) -> io::Result<&[T]> {
        let bytes = self.mem.bytes();
        cast_slice(bytes).map_err(|e| {
            cast_error::<T>(
                e,
                bytes.len(),
                bytes.as_ptr(),
                &format!("object {}", self.id),
            )
        })
    }

    /// Releases the hold now.
    ///
    /// # Errors
    ///
    /// When the store's lock cannot be taken or the segment is corrupted; the hold may then
    /// stay recorded until this process exits.
    pub fn release(mut self) -> io::Result<()> {
        self.released = true;
        self.store
            .lock()?
            .release(self.index, self.generation, self.id)
    }
}

impl Deref for ObjectRef {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.mem.bytes()
    }
}

impl AsRef<[u8]> for ObjectRef {
    fn as_ref(&self) -> &[u8] {
        self.mem.bytes()
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        if !self.released {
            self.store.finish_or_defer(Deferred::Release {
                index: self.index,
                generation: self.generation,
                id: self.id,
            });
        }
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRef")
            .field("store", &self.store.name())
            .field("id", &self.id)
            .field("len", &self.mem.bytes().len())
            .field("addr", &self.mem.as_ptr())
            .finish()
    }
}

/// The writable buffer of an object being created: `&mut [u8]` through `DerefMut`, or
/// `&mut [T]` through [`as_mut_slice_of`](ObjectBuf::as_mut_slice_of). Nobody else sees the
/// object until [`seal`](ObjectBuf::seal); dropping the buffer unsealed aborts it, without
/// waiting long for the store's lock (as a view's drop). Its initial contents are unspecified
/// (whatever an earlier object left there).
pub struct ObjectBuf {
    pub(super) store: Store,
    pub(super) mem: SharedBytes,
    pub(super) id: ObjectId,
    pub(super) index: usize,
    pub(super) generation: u32,
    pub(super) done: bool,
}

impl ObjectBuf {
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The buffer viewed as a mutable slice of `T`.
    ///
    /// # Errors
    ///
    /// As [`ObjectRef::as_slice_of`].
    pub fn as_mut_slice_of<T: Pod>(&mut self) -> io::Result<&mut [T]> {
        let what = format!("object {}", self.id);
        let bytes = self.bytes_mut();
        let (len, addr) = (bytes.len(), bytes.as_ptr());
        cast_slice_mut(bytes).map_err(|e| cast_error::<T>(e, len, addr, &what))
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // A buffer's memory is always writable (made so in `create_object`).
        self.mem.bytes_mut().unwrap_or_default()
    }

    /// Makes the object immutable and visible to [`Store::get`], waking waiters.
    ///
    /// # Errors
    ///
    /// When the lock cannot be taken, or the table no longer records this object as being
    /// created by this process (corrupted or overwritten by a peer).
    #[doc(alias = "plasma_seal")]
    pub fn seal(mut self) -> io::Result<()> {
        self.done = true;
        let store = self.store.clone();
        let locked = store.lock()?;
        locked.seal(self.index, self.generation, self.id)?;
        let header = locked.header;
        drop(locked);
        if header.seal_waiters.load(SeqCst) != 0 {
            futex::wake_all(&header.seal_seq);
        }
        Ok(())
    }

    /// Gives the object up unsealed and frees its space (what dropping the buffer does).
    ///
    /// # Errors
    ///
    /// As [`seal`](ObjectBuf::seal).
    pub fn abort(mut self) -> io::Result<()> {
        self.done = true;
        self.store
            .lock()?
            .abort(self.index, self.generation, self.id)
    }
}

impl Deref for ObjectBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.mem.bytes()
    }
}

impl DerefMut for ObjectBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
}

impl Drop for ObjectBuf {
    fn drop(&mut self) {
        if !self.done {
            self.store.finish_or_defer(Deferred::Abort {
                index: self.index,
                generation: self.generation,
                id: self.id,
            });
        }
    }
}

impl fmt::Debug for ObjectBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBuf")
            .field("store", &self.store.name())
            .field("id", &self.id)
            .field("len", &self.mem.bytes().len())
            .finish()
    }
}

/// The error for a failed `cast_slice`, naming the type and the object.
fn cast_error<T>(e: CastError, len: usize, addr: *const u8, what: &str) -> io::Error {
    let ty = std::any::type_name::<T>();
    let size = std::mem::size_of::<T>();
    let align = std::mem::align_of::<T>();
    let why = match e {
        CastError::Size => format!("its {len} bytes are not a whole number of {size}-byte {ty}"),
        CastError::Misaligned => {
            format!("its address {addr:p} is not aligned to {align} bytes for {ty}")
        }
    };
    invalid_input(format_args!("view {what} as [{ty}]: {why}"))
}
