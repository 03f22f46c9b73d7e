//! A zero-copy object store for large immutable data, like pyarrow's Plasma: one named
//! shared-memory segment of fixed capacity holding objects that one process creates, writes and
//! seals, and any process then reads in place.
//!
//! ```
//! use std::time::Duration;
//! use ipcbox::shm::store::{ObjectId, Store};
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
//!   an [`ObjectRef`]: a read-only view (`&[u8]`, or `&[T]` for plain-old-data `T` with
//!   [`ObjectRef::as_slice_of`]) of the bytes in place, whatever their size. Each view is a
//!   *hold* recorded in the table with the holder's pid; dropping it releases the hold.
//! * [`Store::delete`] removes the object from view at once; its space is freed when the last
//!   hold is released.
//! * A full store is an [`io::ErrorKind::StorageFull`](std::io::ErrorKind::StorageFull) error carrying a [`StoreFull`] with the
//!   sizes, or — with [`Options::evict`] — evicts the least recently sealed objects nobody
//!   holds until the new one fits.
//!
//! # Layout and safety
//!
//! The segment holds a header (magic, version, geometry, the metadata lock, the seal
//! counter), a table of [`Options::max_objects`] entries (id, state, creator pid, offset,
//! length, up to 16 holder records `(pid, count)`) and the data area. Allocations are derived
//! from the table itself (first fit between the recorded allocations, 64-byte aligned), so
//! there is no free list to corrupt: every operation re-checks every offset and length it reads
//! (inside the data area, no overlap, sizes within allocations) and reports a damaged
//! segment as [`io::ErrorKind::InvalidData`](std::io::ErrorKind::InvalidData). Metadata is only touched through atomics.
//!
//! Views of sealed objects point into a second, read-only (`PROT_READ`) mapping of the
//! segment: a reader cannot write through its view — not by type (`&[u8]`), not by the MMU.
//! Sealed bytes are never written again by ipcbox, and their space is not reused while a hold
//! is recorded. **Trust:** a process that can open the segment read-write can ignore that
//! protocol and change bytes under a view (as with every shared-memory mapping, see memmap2's
//! `Mmap`); ipcbox cannot prevent it. Keep the permissions owner-only (the default). A peer
//! that shrinks the segment (`ftruncate`) makes the next access raise `SIGBUS`, as with any
//! POSIX shared memory (see [`Segment`](crate::shm::Segment#sigbus)).
//!
//! # Crashed processes
//!
//! The metadata lock is a futex word holding the owner's pid and a tag of its start time. A
//! waiter that finds the lock held after a short spin, and again after each 20 ms slice
//! without progress, checks whether the owner is dead (the pid gone, a zombie, or now another
//! process's: `pidfd_open` + `poll`, the start time from `/proc`); if so, it takes the
//! lock over and runs the *reclaim pass* below
//! before going on. Every table update is ordered so that a process killed in the middle
//! leaves a consistent table. (The lock is owned by a process, not by a thread as a
//! [`sync::Mutex`](crate::sync::Mutex) is: any thread of the owner may release it, and a
//! thread that ends holding it does not make it a dead owner's.)
//!
//! The reclaim pass frees the entries of objects whose creator died before sealing (and their
//! space), drops the holder records of dead processes and frees deleted objects left without
//! holders. It runs:
//!
//! * when a `create_object` does not fit (before reporting the store full or evicting),
//! * when the lock is taken over from a dead owner,
//! * for one object, when [`Store::delete`] finds it held, when `get` finds all its holder
//!   slots taken, and when `get` or `create_object` meet an unsealed object of the id asked for,
//! * on demand: [`Store::reclaim`].
//!
//! So a dead creator's space or a dead reader's hold never blocks anything: whatever needs the
//! space or the object reclaims it. All processes using a store must share a PID namespace.
//! Pids are reused: a dead holder's record whose pid now belongs to a live process is kept
//! until that process exits.
//!
//! A process holding the lock for longer than 10 seconds (stopped, or a peer that wrote a live
//! pid into a corrupted lock word) makes other operations fail with
//! [`io::ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut) rather than hang; the lock is only ever held for table updates.

mod handle;
mod id;
mod layout;
mod object;
mod options;
mod table;

pub use crate::sys::mmap::Pod;
pub use handle::{ObjectInfo, Stats, Store, StoreFull};
pub use id::{ObjectId, ID_LEN};
pub use layout::{ALIGN, MAX_OBJECTS_LIMIT};
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
