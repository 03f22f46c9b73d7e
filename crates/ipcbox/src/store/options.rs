//! How a store is created or opened.

use std::io;

use super::handle::Store;
use super::layout::{init, Geometry, FLAG_EVICT};
use crate::error::invalid_input;
use crate::mode::CreationMode;
use crate::shm;

/// Options for creating or opening a [`Store`]: [`CreationMode`], capacity, table size,
/// permissions, eviction.
///
/// ```
/// use ipcbox::store::Options;
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

    /// The bytes of object data a store this call creates holds: required to create one,
    /// rounded up to [`ALIGN`](super::ALIGN). An existing store keeps its own.
    ///
    /// Every object takes its size rounded up to [`ALIGN`](super::ALIGN), at least `ALIGN`.
    pub fn capacity(&mut self, bytes: usize) -> &mut Options {
        self.capacity = Some(bytes);
        self
    }

    /// How many objects (sealed, being created or awaiting deletion) a store this call creates
    /// can hold at once: the size of its table, 1024 by default, at most
    /// [`MAX_OBJECTS_LIMIT`](super::MAX_OBJECTS_LIMIT).
    pub fn max_objects(&mut self, n: usize) -> &mut Options {
        self.max_objects = n;
        self
    }

    /// The permission bits of a new store's segment, `0o600` by default, set exactly (see
    /// [Named objects](crate#named-objects)).
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
    /// * As [`shm::Options::open`](crate::shm::Options::open) for the segment.
    /// * [`io::ErrorKind::InvalidInput`] for a missing or zero capacity or a table size out of
    ///   range.
    /// * [`io::ErrorKind::InvalidData`] when an existing segment is not a valid store (the
    ///   message says what is wrong).
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
            shm::Options::new()
                .mode(CreationMode::CreateExclusive)
                .permissions(self.permissions)
                .size(geo.total)
                .open_with_init(name, |seg| init(seg.mapping(), geo, flags))
        };
        let open = || shm::Options::new().mode(CreationMode::Open).open(name);
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
