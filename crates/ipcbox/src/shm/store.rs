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
//! * A full store is an [`io::ErrorKind::StorageFull`] error carrying a [`StoreFull`] with the
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
//! segment as [`io::ErrorKind::InvalidData`]. Metadata is only touched through atomics.
//!
//! Views of sealed objects point into a second, read-only (`PROT_READ`) mapping of the
//! segment: a reader cannot write through its view — not by type (`&[u8]`), not by the MMU.
//! Sealed bytes are never written again by ipcbox, and their space is not reused while a hold
//! is recorded. **Trust:** a process that can open the segment read-write can ignore that
//! protocol and change bytes under a view (as with every shared-memory mapping, see memmap2's
//! `Mmap`); ipcbox cannot prevent it. Keep the permissions owner-only (the default). A peer
//! that shrinks the segment (`ftruncate`) makes the next access raise `SIGBUS`, as with any
//! POSIX shared memory (see [`Segment`](super::Segment#sigbus)).
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
//! [`io::ErrorKind::TimedOut`] rather than hang; the lock is only ever held for table updates.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{invalid_input, ResultExt};
use crate::mode::CreationMode;
use crate::sync::pid_lock::{Acquired, Patience, PidLock};
use crate::sys::futex;
use crate::sys::mmap::Mapping;
use crate::sys::store::{
    cast_error, cast_slice, cast_slice_mut, process_alive, table, ObjectMem, RawEntry, RawHeader,
    StoreMaps, HOLDERS,
};
use crate::sys::sync::view;

pub use crate::sys::store::Pod;

use super::Segment;

const MAGIC: u64 = u64::from_le_bytes(*b"IPBSTORE");
const VERSION: u32 = 4;
/// Where the table starts (the header is smaller).
const TABLE_OFFSET: usize = 128;
/// Allocation granularity and alignment in the data area.
pub const ALIGN: usize = 64;
/// The most table entries a store may have.
pub const MAX_OBJECTS_LIMIT: usize = 1 << 20;
/// How the metadata lock waits: a short spin, then 20 ms sleeps (the owner's life checked after
/// each), and a live owner is waited for 10 seconds before an operation fails.
const LOCK_PATIENCE: Patience = Patience {
    spins: 8,
    slice: Duration::from_millis(20),
    limit: Duration::from_secs(10),
};
const FLAG_EVICT: u32 = 1;

const FREE: u32 = 0;
const CREATING: u32 = 1;
const SEALED: u32 = 2;
const DELETING: u32 = 3;

/// The length of an [`ObjectId`] in bytes.
pub const ID_LEN: usize = 20;

/// A 20-byte object id, as Plasma's `ObjectID` (room for a SHA-1 digest or a random id; a
/// fixed size keeps table entries fixed).
///
/// Written and parsed as 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; ID_LEN]);

impl ObjectId {
    /// The id with these bytes.
    pub const fn new(bytes: [u8; ID_LEN]) -> ObjectId {
        ObjectId(bytes)
    }

    /// An id from a number: its 8 little-endian bytes, then zeros.
    pub fn from_u64(n: u64) -> ObjectId {
        let mut bytes = [0; ID_LEN];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        ObjectId(bytes)
    }

    /// An id from exactly 20 bytes.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for any other length; the message names it.
    pub fn from_slice(bytes: &[u8]) -> io::Result<ObjectId> {
        <[u8; ID_LEN]>::try_from(bytes).map(ObjectId).map_err(|_| {
            invalid_input(format_args!(
                "invalid object id: {} bytes, an id has exactly {ID_LEN}",
                bytes.len()
            ))
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    fn words(&self) -> [u32; 5] {
        let mut w = [0; 5];
        for (i, chunk) in self.0.chunks_exact(4).enumerate() {
            w[i] = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        w
    }

    fn from_words(w: [u32; 5]) -> ObjectId {
        let mut bytes = [0; ID_LEN];
        for (i, word) in w.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        ObjectId(bytes)
    }

    /// Where the table search for this id starts.
    fn home(&self, entries: usize) -> usize {
        let h = self.0.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (h % entries as u64) as usize
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = io::Error;

    /// Parses 40 hex digits.
    fn from_str(s: &str) -> io::Result<ObjectId> {
        let bad = |why: &str| invalid_input(format_args!("invalid object id {s:?}: {why}"));
        if s.len() != 2 * ID_LEN {
            return Err(bad("an id is 40 hex digits"));
        }
        let mut bytes = [0; ID_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2).ok_or_else(|| bad("not ASCII"))?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| bad("not a hex digit"))?;
        }
        Ok(ObjectId(bytes))
    }
}

/// Options for creating or opening a [`Store`]: [`CreationMode`], capacity, table size,
/// permissions, eviction.
///
/// ```
/// use ipcbox::shm::store::Options;
/// use ipcbox::CreationMode;
///
/// # let name = format!("ipcbox-doc-store-opts-{}", std::process::id());
/// let store = Options::new()
///     .mode(CreationMode::OpenOrCreate)
///     .capacity(1 << 20)
///     .max_objects(64)
///     .evict(true)
///     .open(&name)?;
/// assert_eq!(store.capacity(), 1 << 20);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    mode: CreationMode,
    capacity: Option<usize>,
    max_objects: usize,
    permissions: u32,
    evict: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// [`CreationMode::CreateExclusive`], no capacity, 1024 objects, permissions `0o600`, no
    /// eviction.
    pub fn new() -> Options {
        Options {
            mode: CreationMode::CreateExclusive,
            capacity: None,
            max_objects: 1024,
            permissions: 0o600,
            evict: false,
        }
    }

    /// Whether to create the store, open it, or either.
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// The bytes of object data a store this call creates holds (required to create one;
    /// rounded up to [`ALIGN`]; an existing store keeps its own). Every object takes its size rounded up to [`ALIGN`] (at least [`ALIGN`]).
    pub fn capacity(&mut self, bytes: usize) -> &mut Options {
        self.capacity = Some(bytes);
        self
    }

    /// How many objects (sealed, being created or awaiting deletion) a store this call creates
    /// can hold at once: the size of its table, 1024 by default, at most [`MAX_OBJECTS_LIMIT`].
    pub fn max_objects(&mut self, n: usize) -> &mut Options {
        self.max_objects = n;
        self
    }

    /// The permission bits of a new store's segment, `0o600` by default.
    pub fn permissions(&mut self, mode: u32) -> &mut Options {
        self.permissions = mode;
        self
    }

    /// Whether a new store evicts sealed objects nobody holds, least recently sealed first,
    /// when an object does not fit (off by default: a full store is an error). Recorded in the
    /// store, so it applies to every process using it.
    pub fn evict(&mut self, on: bool) -> &mut Options {
        self.evict = on;
        self
    }

    /// Creates or opens the store `name` (a POSIX shared-memory segment, `/dev/shm/<name>`).
    ///
    /// # Errors
    ///
    /// As [`shm::Options::open`](super::Options::open) for the segment;
    /// [`io::ErrorKind::InvalidInput`] for a missing or zero capacity or a table size out of
    /// range; [`io::ErrorKind::InvalidData`] when an existing segment is not a valid store
    /// (the message says what is wrong).
    pub fn open(&self, name: &str) -> io::Result<Store> {
        let geo = match (self.mode, self.capacity) {
            (CreationMode::Open, _) => None,
            (_, None) | (_, Some(0)) => {
                return Err(invalid_input(format_args!(
                    "create object store {name:?}: no capacity given (or 0)"
                )))
            }
            (_, Some(cap)) => Some(Geometry::new(name, cap, self.max_objects)?),
        };
        let flags = if self.evict { FLAG_EVICT } else { 0 };
        let create = |geo: &Geometry| {
            super::Options::new()
                .mode(CreationMode::CreateExclusive)
                .permissions(self.permissions)
                .size(geo.total)
                .open_with_init(name, |seg| init(seg.mapping(), geo, flags))
        };
        let open = || super::Options::new().mode(CreationMode::Open).open(name);
        let seg = match (self.mode, &geo) {
            (CreationMode::CreateExclusive, Some(geo)) => create(geo)?,
            // An existing store keeps its own geometry, whatever this call asks for.
            (CreationMode::OpenOrCreate, Some(geo)) => {
                let mut got = None;
                for _ in 0..16 {
                    match open() {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        other => {
                            got = Some(other?);
                            break;
                        }
                    }
                    match create(geo) {
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        other => {
                            got = Some(other?);
                            break;
                        }
                    }
                }
                got.ok_or_else(|| {
                    io::Error::other(format!(
                        "open or create object store {name:?}: the name kept appearing and \
                         vanishing"
                    ))
                })?
            }
            _ => open()?,
        };
        Store::from_segment(seg)
    }
}

/// Where things are in a store segment, checked against the segment's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    entries: usize,
    data_offset: usize,
    capacity: usize,
    total: usize,
}

impl Geometry {
    fn new(name: &str, capacity: usize, entries: usize) -> io::Result<Geometry> {
        if entries == 0 || entries > MAX_OBJECTS_LIMIT {
            return Err(invalid_input(format_args!(
                "create object store {name:?}: max_objects {entries} is not in 1..={MAX_OBJECTS_LIMIT}"
            )));
        }
        let too_big = || {
            invalid_input(format_args!(
                "create object store {name:?}: capacity {capacity} is too large"
            ))
        };
        let capacity = round_up(capacity, ALIGN).ok_or_else(too_big)?;
        let data_offset = data_offset(entries).ok_or_else(too_big)?;
        let total = data_offset.checked_add(capacity).ok_or_else(too_big)?;
        if total > super::SIZE_MAX {
            return Err(too_big());
        }
        Ok(Geometry {
            entries,
            data_offset,
            capacity,
            total,
        })
    }

    /// Reads and checks the geometry in `header` against a segment of `len` bytes.
    fn read(header: &RawHeader, len: usize) -> Result<Geometry, String> {
        let magic = header.magic.load(Acquire);
        let version = header.version.load(Relaxed);
        if magic != MAGIC {
            return Err(format!(
                "bad magic {magic:#018x} (expected {MAGIC:#018x}): not an ipcbox object store"
            ));
        }
        if version != VERSION {
            return Err(format!("version {version}, this ipcbox reads {VERSION}"));
        }
        let table = header.table_offset.load(Relaxed);
        let entries = header.entries.load(Relaxed);
        let data = header.data_offset.load(Relaxed);
        let capacity = header.capacity.load(Relaxed);
        let total = header.total_size.load(Relaxed);
        if table != TABLE_OFFSET as u64 {
            return Err(format!("table offset {table}, expected {TABLE_OFFSET}"));
        }
        let entries = usize::try_from(entries)
            .ok()
            .filter(|&n| n > 0 && n <= MAX_OBJECTS_LIMIT)
            .ok_or_else(|| format!("table size {entries} not in 1..={MAX_OBJECTS_LIMIT}"))?;
        let expected = data_offset(entries).unwrap_or(usize::MAX);
        if data != expected as u64 {
            return Err(format!(
                "data offset {data}, expected {expected} for {entries} entries"
            ));
        }
        let capacity = usize::try_from(capacity)
            .ok()
            .filter(|c| c % ALIGN == 0)
            .ok_or_else(|| format!("capacity {capacity} not a multiple of {ALIGN}"))?;
        let end = expected.checked_add(capacity);
        if end != Some(len) || total != len as u64 {
            return Err(format!(
                "data offset {expected} + capacity {capacity} (total recorded {total}) does not \
                 match the segment's {len} bytes"
            ));
        }
        Ok(Geometry {
            entries,
            data_offset: expected,
            capacity,
            total: len,
        })
    }
}

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|n| n / to * to)
}

fn data_offset(entries: usize) -> Option<usize> {
    let table = entries.checked_mul(size_of::<RawEntry>())?;
    round_up(TABLE_OFFSET.checked_add(table)?, rustix::param::page_size())
}

fn init(map: &Mapping, geo: &Geometry, flags: u32) -> io::Result<()> {
    let header: &RawHeader =
        view(map, 0).ok_or_else(|| io::Error::other("store segment too small for its header"))?;
    // A fresh segment is zeroed: every entry is FREE already.
    header.version.store(VERSION, Relaxed);
    header.flags.store(flags, Relaxed);
    header.table_offset.store(TABLE_OFFSET as u64, Relaxed);
    header.entries.store(geo.entries as u64, Relaxed);
    header.data_offset.store(geo.data_offset as u64, Relaxed);
    header.capacity.store(geo.capacity as u64, Relaxed);
    header.total_size.store(geo.total as u64, Relaxed);
    header.magic.store(MAGIC, Release);
    Ok(())
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

/// A table entry as read (and checked) under the lock.
#[derive(Debug, Clone, Copy)]
struct Snap {
    state: u32,
    creator: u32,
    id: ObjectId,
    generation: u32,
    offset: usize,
    alloc_len: usize,
    size: usize,
    sealed_at: u64,
}

/// What [`Locked::scan`] found.
struct Scan {
    live: Vec<(usize, Snap)>,
    found: Option<(usize, Snap)>,
    slot: Option<usize>,
}

struct Inner {
    seg: Segment,
    maps: Arc<StoreMaps>,
    geo: Geometry,
    name: String,
    detached: std::sync::atomic::AtomicBool,
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

/// A zero-copy object store in a named shared-memory segment; see the [module docs](self).
///
/// The handle is `Send` and `Sync`; views ([`ObjectRef`]) and buffers ([`ObjectBuf`]) keep the
/// segment mapped after the handle is dropped. The process that created the store removes its
/// name when the last of its handles, views and buffers is gone, unless
/// [`detach`](Store::detach)ed.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
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

    fn from_segment(seg: Segment) -> io::Result<Store> {
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
                maps: Arc::new(StoreMaps { rw, ro }),
                geo,
                name,
                detached: Default::default(),
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
    /// ([`shm::unlink`](super::unlink)).
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
        self.get_until(id, Some(None))?
            .ok_or_else(|| io::Error::other("object store: wait for a seal ended without it"))
    }

    /// A read-only view of the sealed object `id`, or `None` if there is none now.
    ///
    /// # Errors
    ///
    /// As [`get`](Store::get).
    pub fn try_get(&self, id: ObjectId) -> io::Result<Option<ObjectRef>> {
        self.get_until(id, None)
    }

    /// A read-only view of the sealed object `id`, waiting at most `timeout` for it to be
    /// sealed; `None` on timeout. The wait sleeps on a futex that every seal bumps.
    ///
    /// # Errors
    ///
    /// As [`get`](Store::get).
    pub fn get_timeout(&self, id: ObjectId, timeout: Duration) -> io::Result<Option<ObjectRef>> {
        let deadline = Instant::now().checked_add(timeout);
        self.get_until(id, Some(deadline))
    }

    /// `wait`: `None` = don't wait, `Some(None)` = forever, `Some(Some(t))` = until `t`.
    fn get_until(
        &self,
        id: ObjectId,
        wait: Option<Option<Instant>>,
    ) -> io::Result<Option<ObjectRef>> {
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
            let left = match wait {
                None => return Ok(None),
                Some(None) => None,
                Some(Some(at)) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
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

    fn mem(&self, offset: usize, len: usize, writable: bool) -> io::Result<ObjectMem> {
        let start = self.inner.geo.data_offset + offset;
        ObjectMem::new(self.inner.maps.clone(), start, len, writable).ok_or_else(|| {
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
    fn lock(&self) -> io::Result<Locked<'_>> {
        let header = self.header();
        // The geometry was checked against the mapping when the store was opened.
        let entries = table(&self.inner.maps.rw, TABLE_OFFSET, self.inner.geo.entries)
            .ok_or_else(|| corrupt(self.name(), "the table does not fit the segment"))?;
        let me = std::process::id();
        let recovered = PidLock::new(&header.lock)
            .lock(LOCK_PATIENCE, &|| format!("object store {}", self.name()))?
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
        Ok(locked)
    }
}

fn corrupt(name: &str, what: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("object store {name} is corrupted: {what}"),
    )
}

/// The metadata lock held by this thread; unlocks on drop.
struct Locked<'a> {
    store: &'a Store,
    header: &'a RawHeader,
    table: &'a [RawEntry],
    me: u32,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        PidLock::new(&self.header.lock).unlock();
    }
}

impl Locked<'_> {
    fn name(&self) -> &str {
        &self.store.inner.name
    }

    fn geo(&self) -> &Geometry {
        &self.store.inner.geo
    }

    fn corrupt(&self, what: impl fmt::Display) -> io::Error {
        corrupt(self.name(), what)
    }

    fn check_header(&self) -> io::Result<()> {
        match Geometry::read(self.header, self.store.inner.maps.rw.len()) {
            Ok(geo) if geo == *self.geo() => Ok(()),
            Ok(_) => Err(self.corrupt("its header's geometry changed")),
            Err(why) => Err(self.corrupt(format_args!("header: {why}"))),
        }
    }

    fn entry(&self, i: usize) -> io::Result<&RawEntry> {
        self.table
            .get(i)
            .ok_or_else(|| self.corrupt(format_args!("table entry {i} outside the table")))
    }

    /// Reads entry `i`; `None` if free. Checks the state and, for used entries, the
    /// allocation.
    fn snap(&self, i: usize) -> io::Result<Option<Snap>> {
        let e = self.entry(i)?;
        let state = e.state.load(Acquire);
        if state == FREE {
            return Ok(None);
        }
        let mut w = [0; 5];
        for (k, word) in w.iter_mut().enumerate() {
            *word = e.id[k].load(Relaxed);
        }
        let id = ObjectId::from_words(w);
        if state > DELETING {
            return Err(self.corrupt(format_args!("table entry {i} has invalid state {state}")));
        }
        let (offset, alloc_len, size) = (
            e.offset.load(Relaxed),
            e.alloc_len.load(Relaxed),
            e.size.load(Relaxed),
        );
        let cap = self.geo().capacity as u64;
        let bad = if alloc_len == 0 || alloc_len % ALIGN as u64 != 0 || offset % ALIGN as u64 != 0 {
            Some("offset or length not a positive multiple of the alignment")
        } else if offset.checked_add(alloc_len).is_none_or(|end| end > cap) {
            Some("outside the data area")
        } else if size > alloc_len {
            Some("size larger than its allocation")
        } else {
            None
        };
        if let Some(why) = bad {
            return Err(self.corrupt(format_args!(
                "table entry {i} (object {id}): allocation at {offset} of {alloc_len} bytes, \
                 size {size}, in a data area of {cap} bytes: {why}"
            )));
        }
        Ok(Some(Snap {
            state,
            creator: e.creator.load(Relaxed),
            id,
            generation: e.generation.load(Relaxed),
            // All three are at most the capacity, a usize.
            offset: offset as usize,
            alloc_len: alloc_len as usize,
            size: size as usize,
            sealed_at: e.sealed_at.load(Relaxed),
        }))
    }

    /// Every used entry, checked, allocations not overlapping.
    fn live(&self) -> io::Result<Vec<(usize, Snap)>> {
        let mut out = Vec::new();
        for (i, e) in self.table.iter().enumerate() {
            if e.state.load(Relaxed) != FREE {
                if let Some(s) = self.snap(i)? {
                    out.push((i, s));
                }
            }
        }
        Ok(out)
    }

    /// The free gaps `(offset, len)` of the data area between the allocations of `live`.
    fn gaps(&self, live: &[(usize, Snap)]) -> io::Result<Vec<(usize, usize)>> {
        let mut allocs: Vec<(usize, usize, usize)> = live
            .iter()
            .map(|(i, s)| (s.offset, s.alloc_len, *i))
            .collect();
        allocs.sort_unstable();
        let mut gaps = Vec::new();
        let mut at = 0;
        let mut prev = None;
        for (offset, len, i) in allocs {
            if offset < at {
                return Err(self.corrupt(format_args!(
                    "allocations of table entries {} and {i} overlap",
                    prev.unwrap_or(i)
                )));
            }
            if offset > at {
                gaps.push((at, offset - at));
            }
            at = offset + len;
            prev = Some(i);
        }
        if at < self.geo().capacity {
            gaps.push((at, self.geo().capacity - at));
        }
        Ok(gaps)
    }

    /// The used entry with `id` that is creating or sealed.
    fn find(&self, id: ObjectId) -> io::Result<Option<(usize, Snap)>> {
        let n = self.table.len();
        let home = id.home(n);
        let words = id.words();
        for i in (home..n).chain(0..home) {
            let e = &self.table[i];
            let state = e.state.load(Acquire);
            if state != CREATING && state != SEALED {
                continue;
            }
            if (0..5).all(|w| e.id[w].load(Relaxed) == words[w]) {
                if let Some(s) = self.snap(i)? {
                    return Ok(Some((i, s)));
                }
            }
        }
        Ok(None)
    }

    fn free(&self, i: usize) -> io::Result<()> {
        let e = self.entry(i)?;
        e.state.store(FREE, Release);
        for h in &e.holders {
            h.count.store(0, Relaxed);
            h.pid.store(0, Relaxed);
        }
        Ok(())
    }

    /// Total holds on entry `i`.
    fn holds(&self, i: usize) -> u64 {
        self.entry(i).map_or(0, |e| {
            e.holders
                .iter()
                .filter(|h| h.pid.load(Relaxed) != 0)
                .map(|h| u64::from(h.count.load(Relaxed)))
                .sum()
        })
    }

    /// Drops the holder records of dead processes from entry `i`; `true` if holds remain.
    fn reap_holders(&self, i: usize, alive: &mut HashMap<u32, bool>) -> io::Result<bool> {
        let e = self.entry(i)?;
        let mut held = false;
        for h in &e.holders {
            let (pid, count) = (h.pid.load(Relaxed), h.count.load(Relaxed));
            if pid == 0 || count == 0 {
                continue;
            }
            let live = *alive
                .entry(pid)
                .or_insert_with(|| pid == self.me || process_alive(pid));
            if live {
                held = true;
            } else {
                h.count.store(0, Relaxed);
                h.pid.store(0, Relaxed);
            }
        }
        Ok(held)
    }

    /// The reclaim pass; returns how many entries it freed.
    fn reclaim(&self) -> io::Result<usize> {
        let mut alive = HashMap::new();
        let mut freed = 0;
        for (i, s) in self.live()? {
            let dead_creator = s.state == CREATING
                && !*alive
                    .entry(s.creator)
                    .or_insert_with(|| s.creator == self.me || process_alive(s.creator));
            let held = self.reap_holders(i, &mut alive)?;
            if dead_creator || (s.state == DELETING && !held) {
                self.free(i)?;
                freed += 1;
            }
        }
        Ok(freed)
    }

    /// Frees entry `i` if its object is being created by a dead process; `true` if it did.
    fn reclaim_if_orphan(&self, i: usize, s: &Snap) -> io::Result<bool> {
        if s.state == CREATING && s.creator != self.me && !process_alive(s.creator) {
            self.free(i)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// One pass over the table from `id`'s home entry: every used entry (checked), the
    /// creating or sealed entry with `id`, and the first free entry.
    fn scan(&self, id: ObjectId, home: usize) -> io::Result<Scan> {
        let n = self.table.len();
        let (mut live, mut found, mut slot) = (Vec::new(), None, None);
        for i in (home..n).chain(0..home) {
            if self.table[i].state.load(Acquire) == FREE {
                slot = slot.or(Some(i));
            } else if let Some(s) = self.snap(i)? {
                if s.id == id && (s.state == CREATING || s.state == SEALED) {
                    found = Some((i, s));
                }
                live.push((i, s));
            }
        }
        Ok(Scan { live, found, slot })
    }

    fn create(&self, id: ObjectId, size: usize, needed: usize) -> io::Result<(usize, u32, usize)> {
        let home = id.home(self.table.len());
        let evict = self.header.flags.load(Relaxed) & FLAG_EVICT != 0;
        let mut reclaimed = false;
        loop {
            let Scan { live, found, slot } = self.scan(id, home)?;
            if let Some((i, s)) = found {
                if self.reclaim_if_orphan(i, &s)? {
                    continue;
                }
                let what = if s.state == SEALED {
                    "sealed"
                } else {
                    "being created"
                };
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("object store {}: object {id} exists ({what})", self.name()),
                ));
            }
            let gaps = self.gaps(&live)?;
            let gap = gaps.iter().find(|g| g.1 >= needed);
            if let (Some(i), Some(&(offset, _))) = (slot, gap) {
                let e = self.entry(i)?;
                // Everything first, the state last: a creator killed in between leaves a
                // free entry.
                for (w, word) in id.words().iter().enumerate() {
                    e.id[w].store(*word, Relaxed);
                }
                let generation = e.generation.load(Relaxed).wrapping_add(1);
                e.generation.store(generation, Relaxed);
                e.creator.store(self.me, Relaxed);
                e.offset.store(offset as u64, Relaxed);
                e.alloc_len.store(needed as u64, Relaxed);
                e.size.store(size as u64, Relaxed);
                e.sealed_at.store(0, Relaxed);
                for h in &e.holders {
                    h.count.store(0, Relaxed);
                    h.pid.store(0, Relaxed);
                }
                e.state.store(CREATING, Release);
                return Ok((i, generation, offset));
            }
            if !reclaimed {
                reclaimed = true;
                if self.reclaim()? > 0 {
                    continue;
                }
            }
            if evict {
                let mut alive = HashMap::new();
                let mut victim: Option<(usize, u64)> = None;
                for (i, s) in &live {
                    if s.state == SEALED
                        && victim.is_none_or(|v| s.sealed_at < v.1)
                        && !self.reap_holders(*i, &mut alive)?
                    {
                        victim = Some((*i, s.sealed_at));
                    }
                }
                if let Some((i, _)) = victim {
                    self.free(i)?;
                    continue;
                }
            }
            let full = StoreFull {
                requested: size,
                needed,
                free: gaps.iter().map(|g| g.1).sum(),
                largest_free: gaps.iter().map(|g| g.1).max().unwrap_or(0),
                capacity: self.geo().capacity,
                table_full: slot.is_none(),
            };
            return Err(io::Error::new(io::ErrorKind::StorageFull, full));
        }
    }

    /// Checks that entry `index` still holds the object this process is creating.
    fn own_creating(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<&RawEntry> {
        let e = self.entry(index)?;
        let same = self.snap(index)?.is_some_and(|s| {
            s.state == CREATING && s.generation == generation && s.id == id && s.creator == self.me
        });
        if !same {
            return Err(self.corrupt(format_args!(
                "object {id} (table entry {index}) is no longer the one this process is creating"
            )));
        }
        Ok(e)
    }

    fn seal(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<()> {
        let e = self.own_creating(index, generation, id)?;
        let clock = self.header.clock.fetch_add(1, Relaxed).wrapping_add(1);
        e.sealed_at.store(clock, Relaxed);
        e.state.store(SEALED, Release);
        self.header.seal_seq.fetch_add(1, SeqCst);
        Ok(())
    }

    fn abort(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<()> {
        self.own_creating(index, generation, id)?;
        self.free(index)
    }

    /// Finds the sealed object `id` and records a hold by this process.
    fn hold(&self, id: ObjectId) -> io::Result<Option<(usize, Snap)>> {
        let Some((i, s)) = self.find(id)? else {
            return Ok(None);
        };
        if s.state != SEALED {
            self.reclaim_if_orphan(i, &s)?;
            return Ok(None);
        }
        let e = self.entry(i)?;
        for attempt in 0..2 {
            if let Some(h) = e.holders.iter().find(|h| h.pid.load(Relaxed) == self.me) {
                let count = h.count.load(Relaxed);
                if count == u32::MAX {
                    break;
                }
                h.count.store(count + 1, Relaxed);
                return Ok(Some((i, s)));
            }
            if let Some(h) = e
                .holders
                .iter()
                .find(|h| h.pid.load(Relaxed) == 0 || h.count.load(Relaxed) == 0)
            {
                // Count first: a record with a pid and count 0 is free, so a process killed
                // in between leaves nothing held.
                h.count.store(0, Relaxed);
                h.pid.store(self.me, Relaxed);
                h.count.store(1, Relaxed);
                return Ok(Some((i, s)));
            }
            if attempt == 0 {
                self.reap_holders(i, &mut HashMap::new())?;
            }
        }
        Err(io::Error::other(format!(
            "object store {}: object {id} is held by {HOLDERS} live processes already",
            self.name()
        )))
    }

    fn release(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<()> {
        let Some(s) = self.snap(index)? else {
            return Err(self.corrupt(format_args!("held object {id} vanished from the table")));
        };
        if s.generation != generation || s.id != id || (s.state != SEALED && s.state != DELETING) {
            return Err(self.corrupt(format_args!(
                "held object {id} (table entry {index}) was replaced"
            )));
        }
        let e = self.entry(index)?;
        if let Some(h) = e.holders.iter().find(|h| h.pid.load(Relaxed) == self.me) {
            let count = h.count.load(Relaxed).saturating_sub(1);
            h.count.store(count, Relaxed);
            if count == 0 {
                h.pid.store(0, Relaxed);
            }
        }
        if s.state == DELETING && !self.reap_holders(index, &mut HashMap::new())? {
            self.free(index)?;
        }
        Ok(())
    }

    fn delete(&self, id: ObjectId) -> io::Result<()> {
        let not_found = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("object store {}: no sealed object {id}", self.name()),
            )
        };
        let Some((i, s)) = self.find(id)? else {
            return Err(not_found());
        };
        if s.state == CREATING {
            if self.reclaim_if_orphan(i, &s)? {
                return Err(not_found());
            }
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "object store {}: object {id} is still being created (by pid {})",
                    self.name(),
                    s.creator
                ),
            ));
        }
        if self.reap_holders(i, &mut HashMap::new())? {
            self.entry(i)?.state.store(DELETING, Release);
        } else {
            self.free(i)?;
        }
        Ok(())
    }
}

/// A read-only view of a sealed object, in place in the shared segment: `&[u8]` through
/// `Deref` (from a `PROT_READ` mapping), or `&[T]` through [`as_slice_of`](ObjectRef::as_slice_of).
///
/// The view is a hold recorded in the store: the object's space is not reused while it lives,
/// even if the object is deleted. Dropping it releases the hold ([`release`](ObjectRef::release)
/// reports errors instead). A hold belongs to the process (its pid): a child forked while the
/// parent holds a view does not hold it.
///
/// The bytes cannot be written through a view, by type:
///
/// ```compile_fail
/// # fn f(view: ipcbox::shm::ObjectRef) {
/// view[0] = 1; // error: cannot assign to data in dereference of `ObjectRef`
/// # }
/// ```
///
/// nor through its address: the view points into a `PROT_READ` mapping, so a write faults.
pub struct ObjectRef {
    store: Store,
    mem: ObjectMem,
    id: ObjectId,
    index: usize,
    generation: u32,
    released: bool,
}

impl ObjectRef {
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The object's bytes viewed as a slice of `T` (e.g. `f64`): no copy.
    ///
    /// Objects start at multiples of [`ALIGN`] (64) bytes in a page-aligned data area, so
    /// any primitive type is aligned.
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
            if let Ok(locked) = self.store.lock() {
                let _ = locked.release(self.index, self.generation, self.id);
            }
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
/// object until [`seal`](ObjectBuf::seal); dropping the buffer unsealed aborts it. Its initial
/// contents are unspecified (whatever an earlier object left there).
pub struct ObjectBuf {
    store: Store,
    mem: ObjectMem,
    id: ObjectId,
    index: usize,
    generation: u32,
    done: bool,
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
            if let Ok(locked) = self.store.lock() {
                let _ = locked.abort(self.index, self.generation, self.id);
            }
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

    fn name(tag: &str) -> String {
        format!("ipcbox-unit-store-{tag}-{}", std::process::id())
    }

    #[test]
    fn ids_parse_and_print() {
        let id = ObjectId::from_u64(0x0102);
        let s = id.to_string();
        assert_eq!(s.len(), 40);
        assert!(s.starts_with("0201"));
        assert_eq!(s.parse::<ObjectId>().unwrap(), id);
        for bad in ["", "12", &"g".repeat(40), &"0".repeat(41)] {
            let e = bad.parse::<ObjectId>().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        let e = ObjectId::from_slice(&[1; 19]).unwrap_err();
        assert!(e.to_string().contains("19 bytes"), "{e}");
        assert_eq!(
            ObjectId::from_slice(&[1; 20]).unwrap(),
            ObjectId::new([1; 20])
        );
        assert_eq!(ObjectId::from_words(id.words()), id);
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

    #[test]
    fn geometry_is_checked() {
        assert!(Geometry::new("x", 100, 0).is_err());
        assert!(Geometry::new("x", usize::MAX, 10).is_err());
        let g = Geometry::new("x", 100, 10).unwrap();
        assert_eq!(g.capacity, 128);
        assert_eq!(g.data_offset % rustix::param::page_size(), 0);
    }
}
