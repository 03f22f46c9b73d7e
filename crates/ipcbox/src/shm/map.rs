//! File-backed shared maps (`mmap` of a regular file) and anonymous shared maps.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{fallocate, fcntl_setfl, fstat, FallocateFlags, FileType, OFlags};
use rustix::io::Errno;

use crate::error::{self, ResultExt};
use crate::sys::mmap::Mapping;

use super::SIZE_MAX;

/// A regular file mapped shared (`mmap` with `MAP_SHARED`): every process that maps the file
/// sees the same bytes, and they end up in the file.
///
/// This is the tutorials' `mmap` of `test.share`. Unlike a [`Segment`](super::Segment) the file
/// is ordinary data: dropping the map never removes it.
///
/// # `SIGBUS`
///
/// The mapping covers the file's length when it was opened. If any process shrinks the file
/// while it is mapped, touching the part cut off raises `SIGBUS` (in `read_at` and `write_at`
/// too); keep such files away from programs that truncate them.
///
/// ```
/// use ipcbox::shm;
///
/// # let dir = std::env::temp_dir().join(format!("ipcbox-doc-filemap-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("test.share");
/// let map = shm::FileMap::create(&path, 4096)?;
/// map.write_at(0, b"shared")?;
/// map.flush()?;
/// assert_eq!(&std::fs::read(&path)?[..6], b"shared");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct FileMap {
    path: PathBuf,
    file: File,
    map: Mapping,
    writable: bool,
}

impl FileMap {
    /// Opens `path`, creating it owner-only (`0o600`) if missing, grows it to `size` bytes if
    /// it is shorter (reserving the space with `fallocate`, so a full disk is an error here),
    /// and maps the first `size` bytes read-write. A longer file is never shrunk: another
    /// process may have it mapped.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] for a size of 0 or above [`SIZE_MAX`].
    /// * The OS error when the file cannot be opened, grown (e.g.
    ///   [`io::ErrorKind::StorageFull`]) or mapped.
    ///
    /// The message names the path and the size.
    #[doc(alias = "mmap")]
    pub fn create(path: impl AsRef<Path>, size: usize) -> io::Result<FileMap> {
        let path = path.as_ref();
        let what = || format!("create file map {} of {size} bytes", path.display());
        if size == 0 || size > SIZE_MAX {
            return Err(error::invalid_input(format_args!(
                "{}: the size must be between 1 and {SIZE_MAX}",
                what()
            )));
        }
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false) // never shrink a file someone may have mapped
            .mode(0o600)
            .open(path)
            .context_with(what)?;
        let st = fstat(&file).context_with(what)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(error::invalid_input(format_args!(
                "{}: not a regular file",
                what()
            )));
        }
        if (st.st_size as u64) < size as u64 {
            match fallocate(&file, FallocateFlags::empty(), 0, size as u64) {
                Ok(()) => {}
                // A file system without fallocate: set the length, unreserved.
                Err(Errno::OPNOTSUPP) => file.set_len(size as u64).context_with(what)?,
                Err(e) => return Err(error::context(e, what())),
            }
        }
        let map = Mapping::map_fd(&file, size, true).context_with(what)?;
        Ok(FileMap {
            path: path.to_owned(),
            file,
            map,
            writable: true,
        })
    }

    /// Maps all of the existing file `path` read-write.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if it is missing, [`io::ErrorKind::InvalidData`] if it is
    /// empty, the OS error if it cannot be opened or mapped. The message names the path.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileMap> {
        FileMap::open_with(path.as_ref(), true)
    }

    /// Maps all of the existing file `path` read-only; [`write_at`](FileMap::write_at) fails.
    ///
    /// # Errors
    ///
    /// As [`open`](FileMap::open).
    pub fn open_read_only(path: impl AsRef<Path>) -> io::Result<FileMap> {
        FileMap::open_with(path.as_ref(), false)
    }

    /// Maps `len` bytes of the existing file `path` from `offset`, read-write (`mmap` with an
    /// offset): a window into a file too large to map whole.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when `offset` is not a multiple of the page size or
    ///   `len` is 0 or above [`SIZE_MAX`].
    /// * [`io::ErrorKind::InvalidData`] when the range reaches past the end of the file
    ///   (accesses there would raise `SIGBUS`).
    /// * The OS error when the file cannot be opened or mapped.
    ///
    /// The message names the path and the range.
    pub fn open_range(path: impl AsRef<Path>, offset: u64, len: usize) -> io::Result<FileMap> {
        let path = path.as_ref();
        let what = || format!("map {len} bytes at offset {offset} of {}", path.display());
        let page = rustix::param::page_size() as u64;
        if offset % page != 0 {
            return Err(error::invalid_input(format_args!(
                "{}: the offset must be a multiple of the page size {page}",
                what()
            )));
        }
        if len == 0 || len > SIZE_MAX {
            return Err(error::invalid_input(format_args!(
                "{}: the length must be between 1 and {SIZE_MAX}",
                what()
            )));
        }
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .context_with(what)?;
        let st = fstat(&file).context_with(what)?;
        let file_len = st.st_size as u64;
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > file_len)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the file has only {file_len} bytes", what()),
            ));
        }
        let map = Mapping::map_fd_at(&file, offset, len, true).context_with(what)?;
        Ok(FileMap {
            path: path.to_owned(),
            file,
            map,
            writable: true,
        })
    }

    fn open_with(path: &Path, writable: bool) -> io::Result<FileMap> {
        let what = || format!("open file map {}", path.display());
        // O_NONBLOCK: a read-only open of a FIFO would wait for a writer forever; cleared
        // again once the file is known to be a regular one.
        let file = File::options()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .context_with(what)?;
        let st = fstat(&file).context_with(what)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(error::invalid_input(format_args!(
                "{}: not a regular file",
                what()
            )));
        }
        fcntl_setfl(&file, OFlags::empty()).context_with(what)?;
        let size = usize::try_from(st.st_size).unwrap_or(usize::MAX);
        if size == 0 || size > SIZE_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: its size {size} is not between 1 and {SIZE_MAX}",
                    what()
                ),
            ));
        }
        let map = Mapping::map_fd(&file, size, writable)
            .context_with(|| format!("map file {} of {size} bytes", path.display()))?;
        Ok(FileMap {
            path: path.to_owned(),
            file,
            map,
            writable,
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the changed pages to the file and waits for it (`msync(MS_SYNC)`). Other
    /// processes mapping the file see the changes at once anyway; this is about the disk.
    ///
    /// # Errors
    ///
    /// The OS error from `msync` (an I/O error of the file system), naming the path.
    #[doc(alias = "msync")]
    pub fn flush(&self) -> io::Result<()> {
        self.map
            .flush(0, self.map.len(), true)
            .context_with(|| format!("flush {}", self.what()))
    }

    /// Schedules the changed pages to be written to the file and returns
    /// (`msync(MS_ASYNC)`).
    ///
    /// # Errors
    ///
    /// The OS error from `msync`, naming the path.
    pub fn flush_async(&self) -> io::Result<()> {
        self.map
            .flush(0, self.map.len(), false)
            .context_with(|| format!("flush {}", self.what()))
    }

    fn what(&self) -> String {
        format!("file map {}", self.path.display())
    }
}

byte_access!(FileMap);

impl AsFd for FileMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Anonymous shared memory (`mmap` with `MAP_SHARED | MAP_ANONYMOUS`): zero-filled, with no
/// name, shared between this process and the children it forks after making it.
///
/// A child started with `exec` (such as [`std::process::Command`]) does not get it; use a
/// [`Segment`](super::Segment) for unrelated processes.
///
/// ```
/// use ipcbox::shm;
///
/// let map = shm::AnonymousMap::new(4096)?;
/// map.write_at(100, &[1, 2, 3])?;
/// let mut buf = [0; 4];
/// map.read_at(99, &mut buf)?;
/// assert_eq!(buf, [0, 1, 2, 3]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AnonymousMap {
    map: Mapping,
    writable: bool,
}

impl AnonymousMap {
    /// Maps `size` fresh zero bytes, shared with children forked afterwards.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a size of 0 or above [`SIZE_MAX`],
    /// [`io::ErrorKind::OutOfMemory`] when the system refuses; the message names the size.
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn new(size: usize) -> io::Result<AnonymousMap> {
        let what = || format!("create anonymous shared map of {size} bytes");
        if size == 0 || size > SIZE_MAX {
            return Err(error::invalid_input(format_args!(
                "{}: the size must be between 1 and {SIZE_MAX}",
                what()
            )));
        }
        let map = Mapping::anonymous(size).context_with(what)?;
        Ok(AnonymousMap {
            map,
            writable: true,
        })
    }

    fn what(&self) -> String {
        format!("anonymous map of {} bytes", self.map.len())
    }

    /// The mapping, for the crate's structures that keep one of their own.
    pub(crate) fn into_mapping(self) -> Mapping {
        self.map
    }
}

byte_access!(AnonymousMap);
