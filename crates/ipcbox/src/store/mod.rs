//! A zero-copy object store for large immutable data, like pyarrow's Plasma.
//!
//! A store is one named shared-memory segment of fixed capacity. One process creates an
//! object, writes it and seals it; from then on any process can read it in place, without a
//! copy, whatever its size. The module is also reachable as `shm::store`.
//!
//! ```
//! use std::time::Duration;
//! use ipcbox::store::{ObjectId, Store};
//!
//! # let name = format!("ipcbox-doc-store-{}", std::process::id());
//! let store = Store::create(&name, 1 << 20)?; // 1 MiB, removed when `store` is dropped
//! let id = ObjectId::from_u64(7);
//!
//! let mut buf = store.create_object(id, 5)?; // writable, invisible to others
//! buf.copy_from_slice(b"hello");
//! buf.seal()?; // immutable and visible from now on
//!
//! let view = Store::open(&name)?.get_timeout(id, Duration::from_secs(1))?.expect("sealed");
//! assert_eq!(&view[..], b"hello"); // no copy: `view` points into the segment
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Life of an object
//!
//! * [`Store::create_object`] reserves `size` bytes and a table entry and returns an
//!   [`ObjectBuf`] (`&mut [u8]`); nobody else sees the object yet.
//! * [`ObjectBuf::seal`] makes it immutable and visible, and wakes processes waiting in
//!   [`Store::get`]. Dropping the buffer unsealed ([`ObjectBuf::abort`]) frees the space.
//! * [`Store::get`] / [`try_get`](Store::try_get) / [`get_timeout`](Store::get_timeout) return
//!   an [`ObjectRef`]: a read-only view of the bytes in place, as `&[u8]`, or as `&[T]` for
//!   plain-old-data `T` with [`ObjectRef::as_slice_of`].
//! * Each view is a *hold* recorded in the store with the holder's pid; dropping the view
//!   releases the hold.
//! * [`Store::delete`] removes the object from view at once; its space is freed when the last
//!   hold is released.
//! * A full store is an [`io::ErrorKind::StorageFull`](std::io::ErrorKind::StorageFull) error
//!   carrying a [`StoreFull`] with the sizes. With [`Options::evict`], the store evicts the
//!   least recently sealed objects nobody holds until the new one fits.
//!
//! # Guarantees
//!
//! * A view cannot write its object: it is `&[u8]` by type, and it points into a read-only
//!   (`PROT_READ`) mapping of the segment.
//! * Sealed bytes are never written again by ipcbox, and their space is not reused while a
//!   view of them lives, even after the object is deleted.
//! * Every offset, length and state read from the segment is checked before it is used. A
//!   damaged segment is an [`io::ErrorKind::InvalidData`](std::io::ErrorKind::InvalidData)
//!   error, never an access outside the segment.
//! * A process killed at any instant leaves a consistent store; what it held is reclaimed
//!   (next section).
//!
//! # Crashed processes
//!
//! The store's metadata lock records its owner. A process that finds it held checks whether
//! the owner is dead; if so, it takes the lock over and runs the *reclaim pass* before going
//! on. The lock belongs to a process, not to a thread as a [`sync::Mutex`](crate::sync::Mutex)
//! does: any thread of the owner may release it.
//!
//! The reclaim pass frees objects whose creator died before sealing them, drops the holds of
//! dead processes and frees deleted objects nobody holds any more. It runs:
//!
//! * when a `create_object` does not fit (before reporting the store full or evicting),
//! * when the lock is taken over from a dead owner,
//! * for one object, when [`Store::delete`] finds it held, when `get` finds all its holder
//!   slots taken, and when `get` or `create_object` meet an unsealed object of the id asked for,
//! * on demand: [`Store::reclaim`].
//!
//! So a dead creator's space or a dead reader's hold never blocks anything: whatever needs the
//! space or the object reclaims it.
//!
//! # Limits
//!
//! * **Trust.** A process that can open the segment read-write can ignore the protocol and
//!   change bytes under a view, as with every shared-memory mapping (see memmap2's `Mmap`).
//!   Keep the permissions owner-only (the default).
//! * A peer that shrinks the segment (`ftruncate`) makes the next access raise `SIGBUS`, as
//!   with any POSIX shared memory (see [`Segment`](crate::shm::Segment#sigbus)).
//! * At most 16 processes hold views of one object at once, and at most
//!   [`Options::max_objects`] objects exist at once.
//! * All processes using a store must share a PID namespace. A dead holder whose pid now
//!   belongs to a live process keeps its hold until that process exits.
//! * A process that holds the metadata lock for more than 10 seconds (stopped, or a corrupted
//!   lock word naming a live process) makes other operations fail with
//!   [`io::ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut) rather than hang. Dropping a
//!   view or a buffer meanwhile does not wait: what the drop would do is done at the process's
//!   next operation on the store.

mod handle;
mod id;
mod layout;
mod object;
mod options;
mod table;

pub use crate::layout::store::{ALIGN, MAX_OBJECTS_LIMIT};
pub use crate::sys::mmap::Pod;
pub use handle::{ObjectInfo, Stats, Store, StoreFull};
pub use id::{ObjectId, ID_LEN};
pub use object::{ObjectBuf, ObjectRef};
pub use options::Options;

#[allow(dead_code)]
fn _assert_send_sync() {
    fn ok<T: Send + Sync>() {}
    ok::<Store>();
    ok::<ObjectRef>();
    ok::<ObjectBuf>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::CreationMode;

    fn name(tag: &str) -> String {
        format!("ipcbox-unit-store-{tag}-{}", std::process::id())
    }

    #[test]
    fn lifecycle_in_one_process() {
        let store = Store::create(&name("life"), 4096).unwrap();
        let id = ObjectId::from_u64(1);
        let mut buf = store.create_object(id, 100).unwrap();
        buf.fill(7);
        assert!(store.try_get(id).unwrap().is_none(), "visible before seal");
        assert!(!store.contains(id).unwrap());
        buf.seal().unwrap();
        let view = store.try_get(id).unwrap().unwrap();
        assert_eq!(&view[..], &[7; 100][..]);
        assert_eq!(store.list().unwrap()[0].holds, 1);
        store.delete(id).unwrap();
        assert!(!store.contains(id).unwrap());
        assert_eq!(store.stats().unwrap().deleting, 1);
        drop(view);
        let stats = store.stats().unwrap();
        assert_eq!((stats.used, stats.deleting), (0, 0));
    }

    #[test]
    fn open_or_create_keeps_an_existing_geometry() {
        let n = name("ooc");
        let mut opts = Options::new();
        opts.mode(CreationMode::OpenOrCreate).max_objects(4);
        let first = opts.capacity(4096).open(&n).unwrap();
        let second = opts.capacity(1 << 20).max_objects(99).open(&n).unwrap();
        assert_eq!((second.capacity(), second.max_objects()), (4096, 4));
        drop((first, second));
        let third = opts.open(&n).unwrap();
        assert_eq!((third.capacity(), third.max_objects()), (1 << 20, 99));
    }

    #[test]
    fn empty_objects() {
        let store = Store::create(&name("empty"), 4096).unwrap();
        store
            .create_object(ObjectId::from_u64(1), 0)
            .unwrap()
            .seal()
            .unwrap();
        let view = store.try_get(ObjectId::from_u64(1)).unwrap().unwrap();
        assert!(view.is_empty());
        assert!(view.as_slice_of::<f64>().unwrap().is_empty());
        assert_eq!(store.stats().unwrap().used, ALIGN);
    }

    #[test]
    fn typed_views_check_size() {
        let store = Store::create(&name("typed"), 4096).unwrap();
        let mut buf = store.create_object(ObjectId::from_u64(1), 24).unwrap();
        buf.as_mut_slice_of::<f64>()
            .unwrap()
            .copy_from_slice(&[1.0, 2.0, 3.0]);
        let e = buf.as_mut_slice_of::<u128>().unwrap_err();
        assert!(e.to_string().contains("u128"), "{e}");
        buf.seal().unwrap();
        let view = store.try_get(ObjectId::from_u64(1)).unwrap().unwrap();
        assert_eq!(view.as_slice_of::<f64>().unwrap(), &[1.0, 2.0, 3.0]);
        assert_eq!(view.as_slice_of::<[u32; 2]>().unwrap().len(), 3);
        assert!(view.as_slice_of::<u64>().is_ok());
        assert!(view.as_slice_of::<[u8; 5]>().is_err());
    }
}
