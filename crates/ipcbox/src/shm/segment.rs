//! Named POSIX shared-memory segments (`shm_open`), the objects in `/dev/shm`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    fallocate, fchmod, fcntl_setfl, fstat, ftruncate, linkat, open, openat, stat, statvfs,
    unlink as unlink_path, AtFlags, FallocateFlags, FileType, Mode, OFlags, CWD,
};
use rustix::io::Errno;

use crate::error::{self, ResultExt};
use crate::mode::CreationMode;
use crate::sys::mmap::Mapping;

/// Where Linux keeps POSIX shared-memory objects; glibc's `shm_open` (and so Python's
/// `multiprocessing.shared_memory` and `posix_ipc`) opens `/dev/shm/<name>`.
const SHM_DIR: &str = "/dev/shm";

/// The longest name: `NAME_MAX`, the limit on one file name in `/dev/shm`.
pub const NAME_MAX: usize = crate::name::NAME_MAX;

/// The largest segment: what one mapping can address.
pub const SIZE_MAX: usize = isize::MAX as usize;

/// How often `OpenOrCreate` retries when the name appears and vanishes under it.
const OPEN_OR_CREATE_ATTEMPTS: usize = 16;

/// A segment name checked against the rules of `shm_open`, kept without its leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name(String);

impl Name {
    fn parse(name: &str) -> io::Result<Name> {
        let slashed = crate::name::posix_name(name, "shared-memory segment", NAME_MAX)?;
        Ok(Name(slashed[1..].to_owned()))
    }

    fn path(&self) -> String {
        format!("{SHM_DIR}/{}", self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

fn check_size(name: &Name, size: usize) -> io::Result<()> {
    if size == 0 {
        return Err(error::invalid_input(format_args!(
            "shared-memory segment {name}: size 0 is not allowed"
        )));
    }
    if size > SIZE_MAX {
        return Err(error::invalid_input(format_args!(
            "shared-memory segment {name}: size {size} is larger than the limit {SIZE_MAX}"
        )));
    }
    Ok(())
}

/// Options for creating or opening a [`Segment`]: [`CreationMode`], size, permissions.
///
/// ```
/// use ipcbox::{shm, CreationMode};
///
/// # let name = format!("ipcbox-doc-options-{}", std::process::id());
/// let seg = shm::Options::new()
///     .mode(CreationMode::CreateExclusive)
///     .size(4096)
///     .permissions(0o600)
///     .open(&name)?;
/// assert_eq!(seg.len(), 4096);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    mode: CreationMode,
    size: Option<usize>,
    permissions: u32,
    read_only: bool,
    /// Whether [`size`](Options::size) is also the minimum of a segment that is opened.
    size_is_minimum: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// [`CreationMode::CreateExclusive`], no size, permissions `0o600`, read-write (the
    /// crate's [Named objects](crate#named-objects) rule).
    pub fn new() -> Options {
        Options {
            mode: CreationMode::CreateExclusive,
            size: None,
            permissions: 0o600,
            read_only: false,
            size_is_minimum: true,
        }
    }

    /// Whether to create the segment, open it, or either.
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// The size in bytes of a segment this call creates (required to create one).
    ///
    /// When an existing segment is opened, its own size counts and this is the minimum it must
    /// have: a smaller segment is an [`io::ErrorKind::InvalidData`] error.
    pub fn size(&mut self, size: usize) -> &mut Options {
        self.size = Some(size);
        self
    }

    /// The permission bits (`0o777` at most) of a segment this call creates, `0o600` (owner
    /// only) by default. They are set exactly (`fchmod`), whatever the umask.
    pub fn permissions(&mut self, mode: u32) -> &mut Options {
        self.permissions = mode & 0o777;
        self
    }

    /// The size applies only to a segment this call creates; an existing one is opened at
    /// whatever size it has (for the crate's structures, which check their own headers).
    pub(crate) fn size_only_creates(&mut self) -> &mut Options {
        self.size_is_minimum = false;
        self
    }

    /// Maps the segment read-only (`O_RDONLY`, `PROT_READ`); [`Segment::write_at`] then fails.
    /// Only with [`mode`](Options::mode) [`CreationMode::Open`]: a new segment needs a writer
    /// to exist.
    pub fn read_only(&mut self, on: bool) -> &mut Options {
        self.read_only = on;
        self
    }

    /// Creates or opens the segment `name` (`shm_open`), as the [`CreationMode`] says.
    ///
    /// `name` is what Python's `SharedMemory(name=...)` and `posix_ipc.SharedMemory` take:
    /// a leading `/` is optional, no other `/` may appear, at most [`NAME_MAX`] bytes.
    ///
    /// A new segment is built unnamed (`O_TMPFILE` in `/dev/shm`), sized, its space reserved
    /// (`fallocate`), and only then linked under its name: other processes never see it
    /// half-made, and a full `/dev/shm` is an error here, never a `SIGBUS` later.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] for an invalid name, a size of 0 or above
    ///   [`SIZE_MAX`], a missing size when creating, `read_only` with a creating mode;
    /// * [`io::ErrorKind::AlreadyExists`] for `CreateExclusive` on an existing name;
    /// * [`io::ErrorKind::NotFound`] for `Open` on a missing name;
    /// * [`io::ErrorKind::StorageFull`] when `/dev/shm` cannot hold the size;
    /// * [`io::ErrorKind::InvalidData`] when an existing segment is empty (created by a
    ///   program that has not sized it yet) or smaller than [`size`](Options::size);
    /// * [`io::ErrorKind::PermissionDenied`] when its permissions do not allow us.
    ///
    /// Each message names the segment and the size.
    #[doc(alias = "shm_open")]
    pub fn open(&self, name: &str) -> io::Result<Segment> {
        self.open_with_init(name, |_| Ok(()))
    }

    /// Like [`open`](Options::open), but a segment this call creates is first handed to `init`
    /// (while still unnamed, so no other process can see it) to write its initial contents.
    /// `init` is not called when an existing segment is opened; it may be called more than
    /// once (each time on a fresh segment) when `OpenOrCreate` races with other processes.
    ///
    /// # Errors
    ///
    /// As [`open`](Options::open), and `init`'s error (the segment is then not created).
    pub fn open_with_init(
        &self,
        name: &str,
        mut init: impl FnMut(&Segment) -> io::Result<()>,
    ) -> io::Result<Segment> {
        let name = Name::parse(name)?;
        if self.read_only && self.mode != CreationMode::Open {
            return Err(error::invalid_input(format_args!(
                "shared-memory segment {name}: a read-only handle can only open, not create \
                 (set the mode to CreationMode::Open)"
            )));
        }
        let need_size = || {
            let size = self.size.ok_or_else(|| {
                error::invalid_input(format_args!(
                    "create shared-memory segment {name}: no size given"
                ))
            })?;
            check_size(&name, size)?;
            Ok::<usize, io::Error>(size)
        };
        match self.mode {
            CreationMode::Open => self.open_existing(&name),
            CreationMode::CreateExclusive => {
                let size = need_size()?;
                match self.create(&name, size, init)? {
                    Ok(seg) => Ok(seg),
                    Err(_) => Err(error::context(
                        Errno::EXIST,
                        format_args!("create shared-memory segment {name} of {size} bytes"),
                    )),
                }
            }
            CreationMode::OpenOrCreate => {
                let size = need_size()?;
                for _ in 0..OPEN_OR_CREATE_ATTEMPTS {
                    match self.open_existing(&name) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        other => return other,
                    }
                    // Exists now: someone created it between our open and our link.
                    if let Ok(seg) = self.create(&name, size, &mut init)? {
                        return Ok(seg);
                    }
                }
                Err(io::Error::other(format!(
                    "open or create shared-memory segment {name}: the name kept appearing and \
                     vanishing ({OPEN_OR_CREATE_ATTEMPTS} attempts)"
                )))
            }
        }
    }

    /// Makes a new segment and links it as `name`; `Ok(Err(()))` if the name exists.
    fn create(
        &self,
        name: &Name,
        size: usize,
        init: impl FnOnce(&Segment) -> io::Result<()>,
    ) -> io::Result<Result<Segment, ()>> {
        let what = || format!("create shared-memory segment {name} of {size} bytes");
        let perms = Mode::from_raw_mode(self.permissions);
        let unnamed = openat(
            CWD,
            SHM_DIR,
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            perms,
        );
        let fd = match unnamed {
            Ok(fd) => fd,
            // No O_TMPFILE on this file system: create the name directly; openers may then
            // briefly see an empty segment, which they report as not initialised.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
                return self.create_named(name, size, init);
            }
            Err(e) => return Err(error::context(e, what())),
        };
        let seg = self.prepare(name, fd, size)?;
        init(&seg)?;
        let proc_path = format!("/proc/self/fd/{}", seg.link.fd.as_raw_fd());
        let linked = match linkat(CWD, &proc_path, CWD, name.path(), AtFlags::SYMLINK_FOLLOW) {
            // No /proc: name the file through its descriptor (needs Linux 6.10 or privilege).
            Err(Errno::NOENT) => linkat(&seg.link.fd, "", CWD, name.path(), AtFlags::EMPTY_PATH),
            other => other,
        };
        match linked {
            Ok(()) => {
                let mut seg = seg;
                seg.link.owner = true;
                Ok(Ok(seg))
            }
            Err(Errno::EXIST) => Ok(Err(())),
            Err(e) => Err(error::context(e, what())),
        }
    }

    /// Creates the name with `O_CREAT | O_EXCL`, then sizes it (the fallback without
    /// `O_TMPFILE`).
    fn create_named(
        &self,
        name: &Name,
        size: usize,
        init: impl FnOnce(&Segment) -> io::Result<()>,
    ) -> io::Result<Result<Segment, ()>> {
        let fd = match open(
            name.path(),
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(self.permissions),
        ) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => return Ok(Err(())),
            Err(e) => {
                return Err(error::context(
                    e,
                    format_args!("create shared-memory segment {name} of {size} bytes"),
                ))
            }
        };
        // From here the name is ours: remove it again if sizing or init fails.
        let unlink_on_error = |e: io::Error| {
            let _ = unlink_path(name.path());
            e
        };
        let mut seg = self.prepare(name, fd, size).map_err(unlink_on_error)?;
        seg.link.owner = true;
        init(&seg)?;
        Ok(Ok(seg))
    }

    /// Sets the permissions, size and reserved space of a new segment's file and maps it.
    fn prepare(&self, name: &Name, fd: OwnedFd, size: usize) -> io::Result<Segment> {
        let what = || format!("create shared-memory segment {name} of {size} bytes");
        fchmod(&fd, Mode::from_raw_mode(self.permissions)).context_with(what)?;
        let len = size as u64;
        ftruncate(&fd, len).context_with(what)?;
        if let Err(e) = fallocate(&fd, FallocateFlags::empty(), 0, len) {
            let free = statvfs(SHM_DIR)
                .map(|s| format!(" ({} bytes free in {SHM_DIR})", s.f_bavail * s.f_frsize))
                .unwrap_or_default();
            // EOPNOTSUPP: a file system without fallocate; the size is set, just not reserved.
            if e != Errno::OPNOTSUPP {
                return Err(error::context(
                    e,
                    format_args!("reserve {size} bytes for shared-memory segment {name}{free}"),
                ));
            }
        }
        let map = Mapping::map_fd(&fd, size, true).context_with(what)?;
        Ok(Segment {
            link: Link {
                name: name.clone(),
                fd,
                owner: false,
            },
            map,
            writable: true,
        })
    }

    fn open_existing(&self, name: &Name) -> io::Result<Segment> {
        let what = || format!("open shared-memory segment {name}");
        let access = if self.read_only {
            OFlags::RDONLY
        } else {
            OFlags::RDWR
        };
        // O_NONBLOCK: anyone may put a FIFO under the name, and a read-only open of a FIFO
        // would wait for a writer forever; it is cleared again once the file is known to be
        // a regular one.
        let fd = open(
            name.path(),
            access | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .context_with(what)?;
        let st = fstat(&fd).context_with(what)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("open shared-memory segment {name}: not a regular file in {SHM_DIR}"),
            ));
        }
        fcntl_setfl(&fd, OFlags::empty()).context_with(what)?;
        // The object's own size, not what the caller expects: mapping beyond the end of the
        // object would turn every access there into SIGBUS.
        let size = usize::try_from(st.st_size).unwrap_or(usize::MAX);
        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "open shared-memory segment {name}: it has size 0 (not initialised: its \
                     creator has not sized it yet)"
                ),
            ));
        }
        if size > SIZE_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("open shared-memory segment {name}: its size {size} exceeds {SIZE_MAX}"),
            ));
        }
        if let Some(min) = self.size.filter(|_| self.size_is_minimum) {
            if size < min {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "open shared-memory segment {name}: it has {size} bytes, fewer than \
                         the {min} asked for"
                    ),
                ));
            }
        }
        let map = Mapping::map_fd(&fd, size, !self.read_only)
            .context_with(|| format!("map shared-memory segment {name} of {size} bytes"))?;
        Ok(Segment {
            link: Link {
                name: name.clone(),
                fd,
                owner: false,
            },
            map,
            writable: !self.read_only,
        })
    }
}

/// A named POSIX shared-memory segment, mapped into this process.
///
/// The segment is a file in `/dev/shm`, so Python's `multiprocessing.shared_memory.
/// SharedMemory(name=...)`, `posix_ipc.SharedMemory("/name")` and C's `shm_open` open the same
/// object. The process that created the name removes it when its `Segment` is dropped, unless
/// it called [`detach`](Segment::detach); other handles (and existing mappings in other
/// processes) stay valid after the name is gone.
///
/// A Python `SharedMemory` that only attached still unlinks the name when its process exits,
/// unless it opts out (`track=False` from Python 3.13, `resource_tracker.unregister` before):
/// see [the module docs](super#pythons-sharedmemory-and-its-resource-tracker).
///
/// Bytes are copied in and out with the bounds-checked [`read_at`](Segment::read_at) and
/// [`write_at`](Segment::write_at). Other processes may change the memory at any time, so
/// what is read is untrusted input.
///
/// # Creation and initialisation
///
/// A new segment is built unnamed (`O_TMPFILE` in `/dev/shm`), sized, its space reserved and
/// its contents initialised ([`Options::open_with_init`]) before it is linked under its name in
/// one step, so other processes never see a half-made segment.
///
/// On file systems without `O_TMPFILE`, ipcbox falls back to `O_CREAT | O_EXCL` and sizes the
/// object afterwards. An opener that comes in between finds size 0 and gets an
/// [`io::ErrorKind::InvalidData`] error ("not initialised"), as it does for objects that other
/// programs created but have not sized yet. It may retry; ipcbox does not wait by itself.
///
/// # `SIGBUS`
///
/// A segment's size is fixed when it is created, and ipcbox maps exactly the size the object
/// has when it is opened. But any process with write permission may still shrink the object
/// (`ftruncate`) while it is mapped. Touching the part that was cut off then raises `SIGBUS`,
/// in `read_at` and `write_at` too.
///
/// ipcbox cannot prevent that: the kernel offers no way to pin a size. Keep the permissions
/// tight (owner only is the default) and don't truncate live segments.
///
/// ```
/// use ipcbox::shm;
///
/// # let name = format!("ipcbox-doc-segment-{}", std::process::id());
/// let seg = shm::Segment::create(&name, 1024)?;
/// seg.write_at(0, b"hello")?;
///
/// let other = shm::Segment::open(&name)?; // e.g. in another process
/// let mut buf = [0; 5];
/// other.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// See [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html).
#[derive(Debug)]
pub struct Segment {
    link: Link,
    map: Mapping,
    writable: bool,
}

/// A segment's name and file without its mapping: what removes the name on drop. The crate's
/// structures in shared memory (`sync`, `queue`) keep one beside their own view of the mapping.
#[derive(Debug)]
pub(crate) struct Link {
    name: Name,
    fd: OwnedFd,
    owner: bool,
}

impl Link {
    /// The name in its POSIX form, with the leading `/`.
    pub(crate) fn name(&self) -> String {
        self.name.to_string()
    }

    /// Whether dropping this removes the name (it created it and is not detached).
    pub(crate) fn is_owner(&self) -> bool {
        self.owner
    }

    /// Keeps the name after this is dropped.
    pub(crate) fn detach(&mut self) {
        self.owner = false;
    }

    /// Whether the name in `/dev/shm` still refers to this very object (device and inode).
    fn name_is_ours(&self) -> bool {
        match (stat(self.name.path()), fstat(&self.fd)) {
            (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Never remove a newer object that someone else created under the same name after
        // ours was unlinked.
        if self.owner && self.name_is_ours() {
            let _ = unlink_path(self.name.path());
        }
    }
}

impl Segment {
    /// Creates the segment `name` of `size` bytes, owner-only (`0o600`), failing if it exists
    /// (`shm_open` with `O_CREAT | O_EXCL`, `ftruncate`, `fallocate`, `mmap`).
    ///
    /// # Errors
    ///
    /// See [`Options::open`].
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, size: usize) -> io::Result<Segment> {
        Options::new()
            .mode(CreationMode::CreateExclusive)
            .size(size)
            .open(name)
    }

    /// Opens the existing segment `name` read-write and maps all of it (`shm_open`, `mmap`).
    ///
    /// # Errors
    ///
    /// See [`Options::open`].
    pub fn open(name: &str) -> io::Result<Segment> {
        Options::new().mode(CreationMode::Open).open(name)
    }

    /// The name in its POSIX form, with the leading `/` (`"/name"`).
    pub fn name(&self) -> String {
        self.link.name()
    }

    /// Whether dropping this handle removes the name (it created it and is not detached).
    pub fn is_owner(&self) -> bool {
        self.link.is_owner()
    }

    /// Keeps the name after this handle is dropped: someone else will [`unlink`] it.
    pub fn detach(&mut self) {
        self.link.detach();
    }

    fn what(&self) -> String {
        format!("segment {}", self.link.name)
    }

    /// The name (removed on drop if this handle owns it) and the mapping, apart.
    pub(crate) fn into_parts(self) -> (Link, Mapping) {
        (self.link, self.map)
    }
}

byte_access!(Segment);

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.link.fd.as_fd()
    }
}

/// Removes the segment `name` (`shm_unlink`): new opens fail, existing handles and mappings
/// stay valid until they are dropped.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] for an invalid name, [`io::ErrorKind::NotFound`] if there is
/// no such segment; the message names it.
#[doc(alias = "shm_unlink")]
pub fn unlink(name: &str) -> io::Result<()> {
    let name = Name::parse(name)?;
    unlink_path(name.path()).context_with(|| format!("remove shared-memory segment {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(Name::parse("/abc").unwrap().0, "abc");
        assert_eq!(Name::parse("abc").unwrap().0, "abc");
        assert_eq!(Name::parse(&"x".repeat(255)).unwrap().0.len(), 255);
        for bad in ["", "/", "a/b", "//a", ".", "/..", "a\0b", &"x".repeat(256)] {
            let err = Name::parse(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// The fallback for file systems without `O_TMPFILE`: create the name, then size it.
    #[test]
    fn fallback_creation_sizes_initialises_and_cleans_up() {
        let name = Name::parse(&format!("ipcbox-unit-fallback-{}", std::process::id())).unwrap();
        let opts = Options::new();
        let seg = opts
            .create_named(&name, 5000, |seg| seg.write_at(10, b"init"))
            .unwrap()
            .unwrap();
        assert!(seg.is_owner());
        assert_eq!(seg.len(), 5000);
        assert_eq!(stat(name.path()).unwrap().st_size, 5000);
        // A second creator sees the name taken.
        assert!(opts.create_named(&name, 5000, |_| Ok(())).unwrap().is_err());
        let other = Options::new()
            .mode(CreationMode::Open)
            .open(&name.0)
            .unwrap();
        let mut buf = [0; 4];
        other.read_at(10, &mut buf).unwrap();
        assert_eq!(&buf, b"init");
        drop((seg, other));
        assert!(stat(name.path()).is_err(), "left behind");
        // A failing init removes the name again.
        let err = opts
            .create_named(&name, 5000, |_| Err(io::Error::other("no")))
            .unwrap_err();
        assert_eq!(err.to_string(), "no");
        assert!(
            stat(name.path()).is_err(),
            "left behind after a failed init"
        );
    }

    #[test]
    fn display_has_leading_slash() {
        assert_eq!(Name::parse("abc").unwrap().to_string(), "/abc");
    }
}
