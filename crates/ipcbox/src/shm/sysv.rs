//! System V shared-memory segments (`shmget`, `shmat`, `shmdt`, `shmctl(IPC_RMID)`).

use std::io;

use crate::error::{self, ResultExt};
use crate::mode::CreationMode;
use crate::sys;
use crate::sys::mmap::Mapping;
use crate::IpcKey;

use super::SIZE_MAX;

/// Options for creating or opening a [`SysVSegment`]: [`CreationMode`], size, permissions.
#[derive(Debug, Clone)]
pub struct SysVOptions {
    mode: CreationMode,
    size: Option<usize>,
    permissions: u32,
    read_only: bool,
}

impl Default for SysVOptions {
    fn default() -> SysVOptions {
        SysVOptions::new()
    }
}

impl SysVOptions {
    /// [`CreationMode::CreateExclusive`], no size, permissions `0o600`, read-write (the
    /// crate's [Named objects](crate#named-objects) rule).
    pub fn new() -> SysVOptions {
        SysVOptions {
            mode: CreationMode::CreateExclusive,
            size: None,
            permissions: 0o600,
            read_only: false,
        }
    }

    /// Whether to create the segment, open it, or either.
    pub fn mode(&mut self, mode: CreationMode) -> &mut SysVOptions {
        self.mode = mode;
        self
    }

    /// The size in bytes of a segment this call creates (required to create one). When an
    /// existing segment is opened, the minimum size it must have.
    pub fn size(&mut self, size: usize) -> &mut SysVOptions {
        self.size = Some(size);
        self
    }

    /// The permission bits (`0o777` at most) of a segment this call creates, `0o600` by
    /// default, set exactly (no umask applies to System V objects; see
    /// [Named objects](crate#named-objects)).
    pub fn permissions(&mut self, mode: u32) -> &mut SysVOptions {
        self.permissions = mode & 0o777;
        self
    }

    /// Attaches the segment read-only (`SHM_RDONLY`); only with [`mode`](SysVOptions::mode)
    /// [`CreationMode::Open`].
    pub fn read_only(&mut self, on: bool) -> &mut SysVOptions {
        self.read_only = on;
        self
    }

    /// Creates or opens the segment with `key` (`shmget`) and attaches it (`shmat`).
    ///
    /// A new segment is zero-filled and has its full size from the start; the kernel reserves
    /// no memory for it, so a system short of memory shows up when pages are first touched.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] for a size of 0, a missing size when creating,
    ///   `read_only` with a creating mode, [`IpcKey::PRIVATE`] with [`CreationMode::Open`],
    ///   a size above `/proc/sys/kernel/shmmax` (`EINVAL`);
    /// * [`io::ErrorKind::AlreadyExists`] for `CreateExclusive` on an existing key;
    /// * [`io::ErrorKind::NotFound`] for `Open` on a missing key;
    /// * [`io::ErrorKind::StorageFull`] when `shmall` or `shmmni` is exhausted (`ENOSPC`);
    /// * [`io::ErrorKind::InvalidData`] when an existing segment is smaller than
    ///   [`size`](SysVOptions::size);
    /// * [`io::ErrorKind::PermissionDenied`] when its permissions do not allow us.
    ///
    /// Each message names the key and the size.
    #[doc(alias = "shmget")]
    #[doc(alias = "shmat")]
    pub fn open(&self, key: IpcKey) -> io::Result<SysVSegment> {
        if self.read_only && self.mode != CreationMode::Open {
            return Err(error::invalid_input(format_args!(
                "System V segment {key}: a read-only handle can only open, not create (set \
                 the mode to CreationMode::Open)"
            )));
        }
        let need_size = || {
            let size = self.size.ok_or_else(|| {
                error::invalid_input(format_args!("create System V segment {key}: no size given"))
            })?;
            if size == 0 || size > SIZE_MAX {
                return Err(error::invalid_input(format_args!(
                    "create System V segment {key}: size {size} is not between 1 and \
                     {SIZE_MAX}"
                )));
            }
            Ok(size)
        };
        if self.mode == CreationMode::Open && key == IpcKey::PRIVATE {
            return Err(error::invalid_input(
                "open System V segment: IPC_PRIVATE names no existing segment",
            ));
        }
        let size = match self.mode {
            CreationMode::Open => 0,
            _ => need_size()?,
        };
        let (seg, _) = self
            .mode
            .create_or_open(|| self.create(key, size), || self.open_existing(key))?;
        Ok(seg)
    }

    fn create(&self, key: IpcKey, size: usize) -> io::Result<SysVSegment> {
        let what = || format!("create System V segment {key} of {size} bytes");
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | self.permissions as i32;
        let id = sys::shm::shmget(key.as_raw(), size, flags).context_with(what)?;
        // From here the segment is ours: remove it again if attaching fails.
        let map = match Mapping::shmat(id, size, true) {
            Ok(map) => map,
            Err(e) => {
                let _ = sys::shm::shm_remove(id);
                return Err(error::context(e, what()));
            }
        };
        Ok(SysVSegment {
            key,
            id,
            map,
            owner: true,
            writable: true,
        })
    }

    fn open_existing(&self, key: IpcKey) -> io::Result<SysVSegment> {
        let what = || format!("open System V segment {key}");
        let id = sys::shm::shmget(key.as_raw(), 0, 0).context_with(what)?;
        SysVSegment::attach(key, id, self.size, !self.read_only)
    }
}

/// A System V shared-memory segment, attached to this process.
///
/// Found by an [`IpcKey`], so Python's `sysv_ipc.SharedMemory(key)` and C's `shmget`/`shmat`
/// reach the same memory. The process that created it marks it for removal (`IPC_RMID`) when
/// its handle is dropped, unless it called [`detach`](SysVSegment::detach); the key is free at
/// once, and the memory lives on until every process has detached.
///
/// A System V segment's size never changes, so unlike a POSIX segment no peer can make our
/// accesses fault.
///
/// ```
/// use ipcbox::shm;
///
/// let seg = shm::SysVSegment::create(ipcbox::IpcKey::PRIVATE, 4096)?;
/// seg.write_at(0, b"hello")?;
/// let mut buf = [0; 5];
/// seg.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// See [`shmget(2)`](https://man7.org/linux/man-pages/man2/shmget.2.html),
/// [`shmop(2)`](https://man7.org/linux/man-pages/man2/shmop.2.html).
#[derive(Debug)]
pub struct SysVSegment {
    key: IpcKey,
    id: i32,
    map: Mapping,
    owner: bool,
    writable: bool,
}

impl SysVSegment {
    /// Creates a segment of `size` bytes with `key`, owner-only (`0o600`), failing if the key
    /// is taken (`shmget` with `IPC_CREAT | IPC_EXCL`, `shmat`).
    ///
    /// # Errors
    ///
    /// See [`SysVOptions::open`].
    #[doc(alias = "shmget")]
    pub fn create(key: IpcKey, size: usize) -> io::Result<SysVSegment> {
        SysVOptions::new()
            .mode(CreationMode::CreateExclusive)
            .size(size)
            .open(key)
    }

    /// Opens the existing segment with `key` read-write and attaches all of it.
    ///
    /// # Errors
    ///
    /// See [`SysVOptions::open`].
    pub fn open(key: IpcKey) -> io::Result<SysVSegment> {
        SysVOptions::new().mode(CreationMode::Open).open(key)
    }

    /// Attaches the existing segment with id `id` (as `ipcs -m` lists it, or
    /// [`SysVSegment::id`] in another process), read-write. This handle does not own it.
    ///
    /// # Errors
    ///
    /// The OS error when there is no such segment ([`io::ErrorKind::InvalidInput`], `EINVAL`)
    /// or its permissions do not allow us; the message names the id.
    pub fn open_id(id: i32) -> io::Result<SysVSegment> {
        let stat =
            sys::shm::shm_stat(id).context_with(|| format!("open System V segment id {id}"))?;
        SysVSegment::attach(IpcKey::from_raw(stat.key), id, None, true)
    }

    fn attach(key: IpcKey, id: i32, min: Option<usize>, writable: bool) -> io::Result<SysVSegment> {
        let what = || format!("open System V segment {key} (id {id})");
        let size = sys::shm::shm_stat(id).context_with(what)?.size;
        if let Some(min) = min {
            if size < min {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: it has {size} bytes, fewer than the {min} asked for",
                        what()
                    ),
                ));
            }
        }
        let map = Mapping::shmat(id, size, writable).context_with(what)?;
        // The id may have been removed and reused for another segment between the stat and
        // the attach; attached, it cannot be reused any more, so a second stat is the truth.
        // A length that is not the segment's would let accesses past its end.
        let now = sys::shm::shm_stat(id).context_with(what)?.size;
        if now != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: its size changed from {size} to {now} bytes while attaching (the id \
                     was reused)",
                    what()
                ),
            ));
        }
        Ok(SysVSegment {
            key,
            id,
            map,
            owner: false,
            writable,
        })
    }

    /// Marks the segment with `key` for removal (`shmctl(IPC_RMID)`): the key is free at
    /// once, attached processes keep the memory until they detach.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if no segment has the key,
    /// [`io::ErrorKind::PermissionDenied`] if we don't own it; the message names the key.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(key: IpcKey) -> io::Result<()> {
        let what = || format!("remove System V segment {key}");
        if key == IpcKey::PRIVATE {
            return Err(error::invalid_input(format_args!(
                "{}: IPC_PRIVATE names no segment",
                what()
            )));
        }
        let id = sys::shm::shmget(key.as_raw(), 0, 0).context_with(what)?;
        sys::shm::shm_remove(id).context_with(what)
    }

    /// The key it was created or opened with ([`IpcKey::PRIVATE`] for a private one).
    pub fn key(&self) -> IpcKey {
        self.key
    }

    /// The segment's id (`shmid`), as `ipcs -m` shows it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// How many attachments the segment has, in all processes (`shm_nattch`).
    ///
    /// # Errors
    ///
    /// The OS error from `shmctl(IPC_STAT)`.
    pub fn attached(&self) -> io::Result<u64> {
        sys::shm::shm_stat(self.id)
            .map(|s| s.attached)
            .context_with(|| format!("query {}", self.what()))
    }

    /// The permission bits (`shm_perm.mode`).
    ///
    /// # Errors
    ///
    /// The OS error from `shmctl(IPC_STAT)`.
    pub fn permissions(&self) -> io::Result<u32> {
        sys::shm::shm_stat(self.id)
            .map(|s| s.mode)
            .context_with(|| format!("query {}", self.what()))
    }

    /// Whether dropping this handle removes the segment (it created it and is not detached).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Keeps the segment after this handle is dropped: someone else will remove it.
    pub fn detach(&mut self) {
        self.owner = false;
    }

    fn what(&self) -> String {
        format!("System V segment {} (id {})", self.key, self.id)
    }
}

byte_access!(SysVSegment);

impl Drop for SysVSegment {
    fn drop(&mut self) {
        // Still attached (the mapping is dropped after this), so the id cannot have been
        // reused for another segment.
        if self.owner {
            let _ = sys::shm::shm_remove(self.id);
        }
    }
}
