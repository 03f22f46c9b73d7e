//! The store handle and what its methods report.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::id::ObjectId;
use super::layout::{round_up, Geometry, RawHeader, ALIGN, CREATING, SEALED, TABLE_OFFSET};
use super::object::{ObjectBuf, ObjectRef};
use super::options::Options;
use super::table::{corrupt, Locked};
use crate::deadline::Deadline;
use crate::error::ResultExt;
use crate::mode::CreationMode;
use crate::pid_lock::{Acquired, Patience, PidLock};
use crate::shm::Segment;
use crate::sys::futex;
use crate::sys::mmap::view;
use crate::sys::mmap::{slice, Mapping, SharedBytes};

/// How the metadata lock waits: a short spin, then 20 ms sleeps (the owner's life checked after
/// each), and a live owner is waited for 10 seconds before an operation fails.
const LOCK_PATIENCE: Patience = Patience {
    spins: 8,
    slice: Duration::from_millis(20),
    limit: Duration::from_secs(10),
};

/// How a `Drop` waits for the lock before it leaves its work for later: a live owner is waited
/// for 50 ms, not 10 s.
// The lock is held for microseconds at a time, so a drop that finds it held almost always gets
// it within this; past it, the owner is stopped or hung, and the drop must not hang with it.
const DROP_PATIENCE: Patience = Patience {
    spins: 8,
    slice: Duration::from_millis(5),
    limit: Duration::from_millis(50),
};

/// What a view's or a buffer's `Drop` could not do at once, because a live process held the
/// lock: done at this process's next operation on the store.
#[derive(Debug, Clone, Copy)]
pub(super) enum Deferred {
    /// Release a view's hold.
    Release {
        index: usize,
        generation: u32,
        id: ObjectId,
    },
    /// Give up an unsealed buffer's object.
    Abort {
        index: usize,
        generation: u32,
        id: ObjectId,
    },
}

impl Deferred {
    fn apply(self, locked: &Locked<'_>) -> io::Result<()> {
        match self {
            Deferred::Release {
                index,
                generation,
                id,
            } => locked.release(index, generation, id),
            Deferred::Abort {
                index,
                generation,
                id,
            } => locked.abort(index, generation, id),
        }
    }
}

/// The error inside an [`io::ErrorKind::StorageFull`] error from
/// [`Store::create_object`]: the object does not fit (get it with
/// `err.get_ref().and_then(|e| e.downcast_ref::<StoreFull>())`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFull {
    /// The object's size as asked for.
    pub requested: usize,
    /// Bytes the object would take (rounded up to [`ALIGN`]).
    pub needed: usize,
    /// Free bytes in the data area, in all gaps together.
    pub free: usize,
    /// The largest gap.
    pub largest_free: usize,
    /// The data area's size.
    pub capacity: usize,
    /// Whether the table had no free entry (rather than the data area no room).
    pub table_full: bool,
}

impl fmt::Display for StoreFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.table_full {
            write!(
                f,
                "object store full: no free table entry for an object of {} bytes",
                self.requested
            )
        } else {
            write!(
                f,
                "object store full: an object of {} bytes needs {} contiguous bytes; {} of {} \
                 bytes are free, the largest gap has {}",
                self.requested, self.needed, self.free, self.capacity, self.largest_free
            )
        }
    }
}

impl std::error::Error for StoreFull {}

/// A sealed object as [`Store::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its id.
    pub id: ObjectId,
    /// Its size in bytes.
    pub size: usize,
    /// Views held on it, in all processes.
    pub holds: u64,
}

/// A snapshot of a store's use, from [`Store::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// The data area's size in bytes.
    pub capacity: usize,
    /// Bytes taken by allocations (sealed, being created, awaiting deletion).
    pub used: usize,
    /// The largest free gap.
    pub largest_free: usize,
    /// Sealed objects.
    pub sealed: usize,
    /// Objects being created.
    pub creating: usize,
    /// Deleted objects still held.
    pub deleting: usize,
    /// The table's size.
    pub max_objects: usize,
}

/// The two mappings of one store segment: read-write for metadata and objects being created,
/// read-only (`PROT_READ`) for the views of sealed objects.
#[derive(Debug)]
pub(super) struct StoreMaps {
    pub(super) rw: Arc<Mapping>,
    pub(super) ro: Arc<Mapping>,
}

pub(super) struct Inner {
    pub(super) seg: Segment,
    pub(super) maps: StoreMaps,
    pub(super) geo: Geometry,
    pub(super) name: String,
    pub(super) detached: std::sync::atomic::AtomicBool,
    /// Work `Drop`s left for the next operation; `has_pending` says whether there is any
    /// (changed under `pending`'s mutex, read without it).
    pub(super) pending: std::sync::Mutex<Vec<Deferred>>,
    pub(super) has_pending: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.detached.load(Relaxed) {
            self.seg.detach();
        }
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("capacity", &self.geo.capacity)
            .field("max_objects", &self.geo.entries)
            .finish()
    }
}

/// A zero-copy object store in a named shared-memory segment; see the [module docs](super).
///
/// The handle is `Send` and `Sync`; views ([`ObjectRef`]) and buffers ([`ObjectBuf`]) keep the
/// segment mapped after the handle is dropped. The process that created the store removes its
/// name when the last of its handles, views and buffers is gone, unless
/// [`detach`](Store::detach)ed.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) inner: Arc<Inner>,
}

impl Store {
    /// Creates the store `name` (`shm_open` with `O_CREAT | O_EXCL`, `fallocate`, `mmap`) with
    /// `capacity` bytes of object data and the default table (1024 objects), failing if the
    /// name exists.
    ///
    /// # Errors
    ///
    /// See [`Options::open`].
    pub fn create(name: &str, capacity: usize) -> io::Result<Store> {
        Options::new().capacity(capacity).open(name)
    }

    /// Opens the existing store `name` (`shm_open`, `mmap` twice: read-write for the table,
    /// read-only for views) and checks its header. Every process using a store needs
    /// read-write access to it: getting a view records a hold in the table.
    ///
    /// # Errors
    ///
    /// See [`Options::open`].
    pub fn open(name: &str) -> io::Result<Store> {
        Options::new().mode(CreationMode::Open).open(name)
    }

    pub(super) fn from_segment(seg: Segment) -> io::Result<Store> {
        let name = seg.name();
        let len = seg.len();
        let header: &RawHeader = view(seg.mapping(), 0).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("object store {name}: segment of {len} bytes too small for a header"),
            )
        })?;
        let geo = Geometry::read(header, len).map_err(|why| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("object store {name}: {why}"),
            )
        })?;
        let what = || format!("map object store {name} of {len} bytes");
        let rw = Mapping::map_fd(&seg, len, true).context_with(what)?;
        let ro = Mapping::map_fd(&seg, len, false).context_with(what)?;
        Ok(Store {
            inner: Arc::new(Inner {
                seg,
                maps: StoreMaps {
                    rw: Arc::new(rw),
                    ro: Arc::new(ro),
                },
                geo,
                name,
                detached: Default::default(),
                pending: Default::default(),
                has_pending: Default::default(),
            }),
        })
    }

    /// The store's name, `"/name"`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The data area's size in bytes.
    pub fn capacity(&self) -> usize {
        self.inner.geo.capacity
    }

    /// The table's size: how many objects can exist at once.
    pub fn max_objects(&self) -> usize {
        self.inner.geo.entries
    }

    /// Keeps the name after this process's handles are dropped: someone else will remove it
    /// ([`shm::unlink`](crate::shm::unlink)).
    pub fn detach(&self) {
        self.inner.detached.store(true, Relaxed);
    }

    /// Reserves `size` bytes (0 is allowed) for a new object `id` and returns its writable
    /// buffer.
    ///
    /// When the object does not fit, dead processes' objects and holds are reclaimed first;
    /// then, if the store evicts, sealed objects nobody holds are evicted (least recently
    /// sealed first) until it fits.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::AlreadyExists`] when an object `id` is sealed or being created;
    /// * [`io::ErrorKind::StorageFull`] with a [`StoreFull`] inside when it does not fit;
    /// * [`io::ErrorKind::InvalidData`] when the segment is corrupted;
    /// * [`io::ErrorKind::TimedOut`] when the metadata lock stays held (see the module docs).
    #[doc(alias = "plasma_create")]
    pub fn create_object(&self, id: ObjectId, size: usize) -> io::Result<ObjectBuf> {
        let needed = round_up(size.max(1), ALIGN).unwrap_or(usize::MAX);
        let locked = self.lock()?;
        let (index, generation, offset) = locked.create(id, size, needed)?;
        drop(locked);
        let mem = self.mem(offset, size, true)?;
        Ok(ObjectBuf {
            store: self.clone(),
            mem,
            id,
            index,
            generation,
            done: false,
        })
    }

    /// A read-only view of the sealed object `id`, waiting until it is sealed (`FUTEX_WAIT`
    /// on the store's seal counter). Costs the same whatever the object's size: no copy.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] when the segment is corrupted, [`io::ErrorKind::Other`]
    /// when all holder slots of the object are taken by live processes.
    pub fn get(&self, id: ObjectId) -> io::Result<ObjectRef> {
        // Without a deadline the wait ends only with the object (or an error).
        self.get_until(id, Deadline::Forever)?
            .ok_or_else(|| io::Error::other("object store: wait for a seal ended without it"))
    }

    /// A read-only view of the sealed object `id`, or `None` if there is none now.
    ///
    /// # Errors
    ///
    /// As [`get`](Store::get).
    pub fn try_get(&self, id: ObjectId) -> io::Result<Option<ObjectRef>> {
        self.get_until(id, Deadline::Now)
    }

    /// A read-only view of the sealed object `id`, waiting at most `timeout` for it to be
    /// sealed; `None` on timeout. The wait sleeps on a futex that every seal bumps.
    ///
    /// # Errors
    ///
    /// As [`get`](Store::get).
    pub fn get_timeout(&self, id: ObjectId, timeout: Duration) -> io::Result<Option<ObjectRef>> {
        self.get_until(id, Deadline::after(timeout))
    }

    /// The sealed object `id`, waiting for its seal until `deadline`; `None` if it has not come.
    fn get_until(&self, id: ObjectId, deadline: Deadline) -> io::Result<Option<ObjectRef>> {
        loop {
            let locked = self.lock()?;
            if let Some((index, snap)) = locked.hold(id)? {
                drop(locked);
                let mem = self.mem(snap.offset, snap.size, false)?;
                return Ok(Some(ObjectRef {
                    store: self.clone(),
                    mem,
                    id,
                    index,
                    generation: snap.generation,
                    released: false,
                }));
            }
            let header = locked.header;
            let seq = header.seal_seq.load(SeqCst);
            drop(locked);
            let left = deadline.remaining();
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(None);
            }
            header.seal_waiters.fetch_add(1, SeqCst);
            let woken = futex::wait(&header.seal_seq, seq, left);
            header.seal_waiters.fetch_sub(1, SeqCst);
            woken.context_with(|| format!("wait for object {id} in store {}", self.name()))?;
        }
    }

    /// Deletes the sealed object `id`: it is no longer visible at once, and its space is freed
    /// now if nobody holds it, or when the last hold is released (holds of dead processes are
    /// dropped first).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] when there is no sealed object `id`,
    /// [`io::ErrorKind::ResourceBusy`] when it is still being created,
    /// [`io::ErrorKind::InvalidData`] when the segment is corrupted.
    pub fn delete(&self, id: ObjectId) -> io::Result<()> {
        self.lock()?.delete(id)
    }

    /// Whether a sealed object `id` exists.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] when the segment is corrupted.
    pub fn contains(&self, id: ObjectId) -> io::Result<bool> {
        let locked = self.lock()?;
        Ok(matches!(locked.find(id)?, Some((_, s)) if s.state == SEALED))
    }

    /// The sealed objects, in table order.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] when the segment is corrupted.
    pub fn list(&self) -> io::Result<Vec<ObjectInfo>> {
        let locked = self.lock()?;
        let mut out = Vec::new();
        for (i, snap) in locked.live()? {
            if snap.state == SEALED {
                out.push(ObjectInfo {
                    id: snap.id,
                    size: snap.size,
                    holds: locked.holds(i),
                });
            }
        }
        Ok(out)
    }

    /// How the store is used now.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] when the segment is corrupted.
    pub fn stats(&self) -> io::Result<Stats> {
        let locked = self.lock()?;
        let live = locked.live()?;
        let mut stats = Stats {
            capacity: self.capacity(),
            max_objects: self.max_objects(),
            ..Stats::default()
        };
        for (_, s) in &live {
            stats.used += s.alloc_len;
            match s.state {
                CREATING => stats.creating += 1,
                SEALED => stats.sealed += 1,
                _ => stats.deleting += 1,
            }
        }
        stats.largest_free = locked.gaps(&live)?.iter().map(|g| g.1).max().unwrap_or(0);
        Ok(stats)
    }

    /// Runs the reclaim pass now (see the module docs): frees objects whose creator died
    /// unsealed and deleted objects left unheld, and drops dead processes' holds. Returns the
    /// number of objects freed.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] when the segment is corrupted.
    pub fn reclaim(&self) -> io::Result<usize> {
        self.lock()?.reclaim()
    }

    /// The bytes of the object at `offset` of the data area, through the read-write mapping
    /// if `writable`, else through the read-only one.
    fn mem(&self, offset: usize, len: usize, writable: bool) -> io::Result<SharedBytes> {
        let start = self.inner.geo.data_offset + offset;
        // Slices of these bytes are sound because the store's protocol keeps everyone else off
        // them: `offset` is an allocation recorded in the table under the lock; a writable view
        // is made only for the object this handle is creating (nobody sees it before it is
        // sealed, and an allocation is never handed out twice), a read-only one only for a
        // sealed object this process holds (sealed bytes are never written again, and the
        // space is not reused while a holder record exists).
        let map = if writable {
            &self.inner.maps.rw
        } else {
            &self.inner.maps.ro
        };
        SharedBytes::new(map.clone(), start, len, writable).ok_or_else(|| {
            corrupt(
                &self.inner.name,
                format_args!("object at {offset} of {len} bytes outside the segment"),
            )
        })
    }

    fn header(&self) -> &RawHeader {
        // The mapping is as long as the segment, which holds at least the table (checked
        // when opened), so the header fits; `view` checks again.
        view(&self.inner.maps.rw, 0).unwrap_or_else(|| unreachable!("header checked at open"))
    }

    /// Takes the metadata lock (see the module docs), reclaiming after a dead owner.
    pub(super) fn lock(&self) -> io::Result<Locked<'_>> {
        self.lock_with(LOCK_PATIENCE)
    }

    /// Does `work` now if the lock can be had within [`DROP_PATIENCE`], else leaves it for
    /// this process's next operation on the store: for `Drop`s, which must not wait long.
    /// Other errors (a corrupted store) are dropped, as a `Drop` can report nothing.
    pub(super) fn finish_or_defer(&self, work: Deferred) {
        match self.lock_with(DROP_PATIENCE) {
            Ok(locked) => {
                let _ = work.apply(&locked);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let mut pending = self
                    .inner
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                pending.push(work);
                self.inner.has_pending.store(true, Relaxed);
            }
            Err(_) => {}
        }
    }

    /// Does what `Drop`s left, under the lock.
    fn finish_deferred(&self, locked: &Locked<'_>) {
        if !self.inner.has_pending.load(Relaxed) {
            return;
        }
        let work = {
            let mut pending = self
                .inner
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.inner.has_pending.store(false, Relaxed);
            std::mem::take(&mut *pending)
        };
        for w in work {
            let _ = w.apply(locked);
        }
    }

    fn lock_with(&self, patience: Patience) -> io::Result<Locked<'_>> {
        // The lock is a futex word holding the owner's pid and a tag of its start time. A
        // waiter that finds it held after a short spin, and again after each slice without
        // progress, checks whether the owner is dead: its pid gone, a zombie, or now another
        // process's (`pidfd_open` + `poll`, the start time from `/proc`). Taking it over from a
        // dead owner reports `OwnerDied`, and the reclaim pass runs before anything else.
        let header = self.header();
        // The geometry was checked against the mapping when the store was opened.
        let entries = slice(&self.inner.maps.rw, TABLE_OFFSET, self.inner.geo.entries)
            .ok_or_else(|| corrupt(self.name(), "the table does not fit the segment"))?;
        let me = std::process::id();
        let recovered = PidLock::new(&header.lock)
            .lock(patience, &|| format!("object store {}", self.name()))?
            == Acquired::OwnerDied;
        let locked = Locked {
            store: self,
            header,
            table: entries,
            me,
        };
        locked.check_header()?;
        if recovered {
            locked.reclaim()?;
        }
        self.finish_deferred(&locked);
        Ok(locked)
    }
}
