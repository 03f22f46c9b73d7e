//! Named pipes (FIFOs): a pipe with a name in the file system, for unrelated processes.
//!
//! A FIFO is created once ([`Fifo::create`], [`Options`]) and then opened by any number of
//! processes, each for reading ([`open_reader`]) or writing ([`open_writer`]). Opening returns
//! the [`pipe`](crate::pipe) module's ends, which behave as an anonymous pipe's: the reader sees
//! end of file when the last writer closes, a writer with no reader left gets
//! [`io::ErrorKind::BrokenPipe`] (never a `SIGPIPE` death).
//!
//! A blocking open waits for the other side (a reader for a writer and the reverse);
//! [`OpenOptions`] opens without waiting, or waits at most a timeout. The shell takes part
//! with `echo text > path` and `cat path`.
//!
//! The process that creates the FIFO owns its name and removes it when the [`Fifo`] is dropped,
//! unless it [detaches](Fifo::detach) it. It removes only the FIFO it created: if someone has
//! put another file under the name meanwhile, that file stays. To know its FIFO for certain,
//! a creating handle keeps one descriptor open (`O_PATH`, which opens neither side).
//!
//! ```
//! use std::io::{Read, Write};
//! use ipcbox::{fifo::Fifo, CreationMode};
//!
//! # let dir = std::env::temp_dir().join(format!("ipcbox-doc-fifo-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let fifo = Fifo::create(dir.join("jobs"), CreationMode::CreateExclusive)?;
//! let path = fifo.path().to_owned();
//! let writer = std::thread::spawn(move || -> std::io::Result<()> {
//!     let mut w = ipcbox::fifo::open_writer(&path)?; // waits for the reader
//!     w.write_all(b"job 1\n")
//! });
//! let mut text = String::new();
//! fifo.open_reader()?.read_to_string(&mut text)?; // EOF when the writer closes
//! writer.join().unwrap()?;
//! assert_eq!(text, "job 1\n");
//! # drop(fifo);
//! # std::fs::remove_dir(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::error::{context, ResultExt};
use crate::mode::CreationMode;
use crate::pipe::{Reader, Writer};
use crate::signal::with_timeout;
use crate::sys;

/// A named pipe in the file system, removed on drop by the process that created it.
///
/// See the [module documentation](self).
pub struct Fifo {
    path: PathBuf,
    /// The FIFO this handle created, held open (`O_PATH`, which opens neither side); `None`
    /// when it only opened an existing one or was detached. Drop removes the name only if it
    /// still is that FIFO.
    // Holding it keeps its inode allocated: a file system that hands inode numbers out again
    // (ext4 does at once) cannot give a FIFO made after ours was removed the same (device,
    // inode), so comparing them is certain.
    owned: Option<OwnedFd>,
}

impl fmt::Debug for Fifo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fifo")
            .field("path", &self.path)
            .field("owner", &self.owned.is_some())
            .finish()
    }
}

impl Fifo {
    /// Creates or opens the FIFO `path` per `mode`, owner-only (`0600`).
    ///
    /// Wraps [`mkfifo(3)`](https://man7.org/linux/man-pages/man3/mkfifo.3.html). Shortcut for
    /// `Options::new().mode(mode).create(path)`; see [`Options::create`].
    ///
    /// # Errors
    ///
    /// As [`Options::create`].
    #[doc(alias = "mkfifo")]
    pub fn create(path: impl AsRef<Path>, mode: CreationMode) -> io::Result<Fifo> {
        Options::new().mode(mode).create(path)
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this handle created the FIFO and will remove it on drop.
    pub fn is_owner(&self) -> bool {
        self.owned.is_some()
    }

    /// Gives up ownership and returns the path: the FIFO stays in the file system after this
    /// call, for the caller (or anyone) to remove later.
    pub fn detach(mut self) -> PathBuf {
        self.owned = None;
        std::mem::take(&mut self.path)
    }

    /// Removes the FIFO's name now (`unlink(2)`), whether or not this handle created it.
    /// Processes that have it open keep using it.
    ///
    /// # Errors
    ///
    /// The OS error from `unlink`, naming the path.
    pub fn remove(mut self) -> io::Result<()> {
        self.owned = None;
        rustix::fs::unlink(&self.path)
            .context_with(|| format!("remove FIFO {}", self.path.display()))
    }

    /// Opens the FIFO for reading, waiting for a writer: [`open_reader`] on this path.
    ///
    /// # Errors
    ///
    /// As [`OpenOptions::open_reader`].
    pub fn open_reader(&self) -> io::Result<Reader> {
        open_reader(&self.path)
    }

    /// Opens the FIFO for writing, waiting for a reader: [`open_writer`] on this path.
    ///
    /// # Errors
    ///
    /// As [`OpenOptions::open_writer`].
    pub fn open_writer(&self) -> io::Result<Writer> {
        open_writer(&self.path)
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if let Some(ours) = &self.owned {
            // Only remove the FIFO this handle created, not a new one someone made under the
            // same name after ours was removed.
            let ours = rustix::fs::fstat(ours).map(|st| (st.st_dev, st.st_ino));
            if matches!((ours, file_id(&self.path)), (Ok(a), Ok((b, _))) if a == b) {
                let _ = rustix::fs::unlink(&self.path);
            }
        }
    }
}

/// How to create a FIFO: permissions and [`CreationMode`].
#[derive(Debug, Clone)]
pub struct Options {
    permissions: u32,
    mode: CreationMode,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Owner-only permissions (`0600`), [`CreationMode::CreateExclusive`].
    pub fn new() -> Options {
        Options {
            permissions: 0o600,
            mode: CreationMode::CreateExclusive,
        }
    }

    /// The permission bits (`0o777` at most) of a FIFO this call creates, applied exactly
    /// (the umask does not narrow them; see [Named objects](crate#named-objects)).
    pub fn permissions(&mut self, bits: u32) -> &mut Options {
        self.permissions = bits & 0o777;
        self
    }

    /// What to do when `path` exists or not.
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// Creates the FIFO `path` (`mknod(2)` with `S_IFIFO`, then `chmod(2)`), or opens an
    /// existing one, per the [`CreationMode`].
    ///
    /// The returned handle owns the name (removes it on drop) only if this call created it.
    /// Creating does not open the FIFO; use [`Fifo::open_reader`] or [`Fifo::open_writer`].
    ///
    /// # Errors
    ///
    /// Every error names the path:
    /// * [`io::ErrorKind::AlreadyExists`]: [`CreationMode::CreateExclusive`] and the path exists;
    /// * [`io::ErrorKind::NotFound`]: [`CreationMode::Open`] and there is no such path, or the
    ///   directory does not exist;
    /// * [`io::ErrorKind::InvalidInput`]: the path exists but is not a FIFO;
    /// * [`io::ErrorKind::PermissionDenied`]: the directory may not be written or searched.
    #[doc(alias = "mkfifo")]
    pub fn create(&self, path: impl AsRef<Path>) -> io::Result<Fifo> {
        let path = path.as_ref();
        let shown = path.display();
        match self.mode {
            CreationMode::CreateExclusive => self.make(path),
            CreationMode::Open => open_existing(path),
            CreationMode::OpenOrCreate => {
                // The name may come and go under us; a few rounds settle it.
                for _ in 0..8 {
                    match self.make(path) {
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        other => return other,
                    }
                    match open_existing(path) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        other => return other,
                    }
                }
                Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    format!("create or open FIFO {shown}: the path keeps appearing and vanishing"),
                ))
            }
        }
    }

    fn make(&self, path: &Path) -> io::Result<Fifo> {
        let shown = path.display();
        let mode = Mode::from_bits_truncate(self.permissions);
        rustix::fs::mknodat(CWD, path, FileType::Fifo, mode, 0)
            .context_with(|| format!("create FIFO {shown}"))?;
        // mknod applies the umask; chmod sets exactly what was asked.
        let done = set_mode_nofollow(path, mode)
            .context_with(|| format!("set permissions {:o} on FIFO {shown}", self.permissions));
        match done {
            Ok(fd) => Ok(Fifo {
                path: path.to_owned(),
                owned: Some(fd),
            }),
            Err(e) => {
                let _ = rustix::fs::unlink(path);
                Err(e)
            }
        }
    }
}

/// Sets `mode` on the FIFO at `path` and returns it open with `O_PATH`, without following a
/// symbolic link someone may have put in its place.
// A plain `chmod` would change the link's target. The FIFO is pinned by an `O_PATH |
// O_NOFOLLOW` descriptor, which opens neither of its sides (that would wake a waiting peer),
// and changed through `/proc/self/fd`, as glibc's `fchmodat(AT_SYMLINK_NOFOLLOW)` does;
// without `/proc`, through the path.
fn set_mode_nofollow(path: &Path, mode: Mode) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::Fifo {
        return Err(not_a_fifo(path, kind));
    }
    match rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(), mode) {
        Err(Errno::NOENT) => rustix::fs::chmod(path, mode)?,
        other => other?,
    }
    Ok(fd)
}

fn open_existing(path: &Path) -> io::Result<Fifo> {
    let shown = path.display();
    let (_, kind) = file_id(path).context_with(|| format!("open FIFO {shown}"))?;
    if kind != FileType::Fifo {
        return Err(not_a_fifo(path, kind));
    }
    Ok(Fifo {
        path: path.to_owned(),
        owned: None,
    })
}

fn not_a_fifo(path: &Path, kind: FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a FIFO (it is a {kind:?})", path.display()),
    )
}

/// `((device, inode), type)` of the file at `path` (following symbolic links).
fn file_id(path: &Path) -> io::Result<((u64, u64), FileType)> {
    let st = rustix::fs::stat(path)?;
    Ok(((st.st_dev, st.st_ino), FileType::from_raw_mode(st.st_mode)))
}

/// Opens the FIFO `path` for reading, waiting until a writer opens it.
///
/// Wraps [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html) with `O_RDONLY |
/// O_CLOEXEC`. See [`OpenOptions`] for non-blocking opens and timeouts.
///
/// # Errors
///
/// As [`OpenOptions::open_reader`].
pub fn open_reader(path: impl AsRef<Path>) -> io::Result<Reader> {
    OpenOptions::new().open_reader(path)
}

/// Opens the FIFO `path` for writing, waiting until a reader opens it.
///
/// Wraps [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html) with `O_WRONLY |
/// O_CLOEXEC`. See [`OpenOptions`] for non-blocking opens and timeouts.
///
/// # Errors
///
/// As [`OpenOptions::open_writer`].
pub fn open_writer(path: impl AsRef<Path>) -> io::Result<Writer> {
    OpenOptions::new().open_writer(path)
}

/// How to open a FIFO: blocking, non-blocking, or blocking with a timeout.
///
/// ```
/// use std::time::Duration;
/// use ipcbox::{fifo, CreationMode};
///
/// # let path = std::env::temp_dir().join(format!("ipcbox-doc-open-{}", std::process::id()));
/// let fifo = fifo::Fifo::create(&path, CreationMode::CreateExclusive)?;
/// // Nobody writes yet: a non-blocking reader opens at once.
/// let reader = fifo::OpenOptions::new().nonblocking(true).open_reader(fifo.path())?;
/// // Nobody else reads either, but `reader` is there, so a writer opens at once.
/// let writer = fifo::OpenOptions::new()
///     .timeout(Duration::from_secs(5))
///     .open_writer(fifo.path())?;
/// # drop((reader, writer));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    nonblocking: bool,
    timeout: Option<Duration>,
}

impl OpenOptions {
    /// Blocking, no timeout: the open waits for the other side as long as it takes.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Opens with `O_NONBLOCK`; the end stays non-blocking.
    ///
    /// A reader opens at once even with no writer; it then reads end of file (`Ok(0)`) while
    /// no writer has the FIFO open, and [`io::ErrorKind::WouldBlock`] while a writer has it
    /// open but nothing is buffered. A writer with no reader fails with
    /// [`io::ErrorKind::NotConnected`] (`ENXIO`).
    /// The [`timeout`](OpenOptions::timeout) does not apply: nothing waits.
    pub fn nonblocking(&mut self, on: bool) -> &mut OpenOptions {
        self.nonblocking = on;
        self
    }

    /// A blocking open waits at most `timeout` for the other side, then fails with
    /// [`io::ErrorKind::TimedOut`]. Built on [`with_timeout`].
    pub fn timeout(&mut self, timeout: Duration) -> &mut OpenOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Opens the FIFO `path` for reading (`open(2)`, `O_RDONLY | O_CLOEXEC`).
    ///
    /// # Errors
    ///
    /// Every error names the path: [`io::ErrorKind::NotFound`],
    /// [`io::ErrorKind::PermissionDenied`], [`io::ErrorKind::InvalidInput`] when the path is
    /// not a FIFO, [`io::ErrorKind::TimedOut`] when no writer came within the timeout.
    pub fn open_reader(&self, path: impl AsRef<Path>) -> io::Result<Reader> {
        Ok(Reader::from(self.open(path.as_ref(), OFlags::RDONLY)?))
    }

    /// Opens the FIFO `path` for writing (`open(2)`, `O_WRONLY | O_CLOEXEC`).
    ///
    /// # Errors
    ///
    /// As [`open_reader`](OpenOptions::open_reader), and [`io::ErrorKind::NotConnected`] for a
    /// non-blocking open while no process has the FIFO open for reading.
    pub fn open_writer(&self, path: impl AsRef<Path>) -> io::Result<Writer> {
        // A write with no reader must fail with EPIPE, not kill the process.
        sys::signal::ignore_sigpipe_if_default()?;
        Ok(Writer::from(self.open(path.as_ref(), OFlags::WRONLY)?))
    }

    fn open(&self, path: &Path, access: OFlags) -> io::Result<OwnedFd> {
        let side = if access == OFlags::RDONLY {
            "reading"
        } else {
            "writing"
        };
        let what = || format!("open FIFO {} for {side}", path.display());
        // Refuse anything but a FIFO before opening: opening a device could have effects.
        let (_, kind) = file_id(path).context_with(what)?;
        if kind != FileType::Fifo {
            return Err(not_a_fifo(path, kind));
        }
        let mut flags = access | OFlags::CLOEXEC;
        if self.nonblocking {
            flags |= OFlags::NONBLOCK;
        }
        let open = || rustix::fs::open(path, flags, Mode::empty()).map_err(io::Error::from);
        let result = match self.timeout {
            Some(timeout) if !self.nonblocking => with_timeout(timeout, open),
            // A handler installed without SA_RESTART interrupts the wait: wait on, as
            // std::fs::File::open does.
            _ => loop {
                match open() {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            },
        };
        result.map_err(|e| {
            if e.raw_os_error() == Some(Errno::NXIO.raw_os_error()) {
                context(
                    io::Error::new(
                        io::ErrorKind::NotConnected,
                        "no process has it open for reading (ENXIO)",
                    ),
                    what(),
                )
            } else {
                context(e, what())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("ipcbox-unit-fifo-{tag}-{}-{n}", std::process::id()))
    }

    #[test]
    fn permissions_are_exact_and_drop_removes() {
        let path = temp_path("perm");
        let fifo = Options::new().permissions(0o644).create(&path).unwrap();
        let st = rustix::fs::stat(&path).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o644);
        assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::Fifo);
        assert!(fifo.is_owner());
        drop(fifo);
        assert!(!path.exists());
    }

    #[test]
    fn setting_the_mode_never_follows_a_link_put_in_the_fifos_place() {
        let target = temp_path("victim");
        let link = temp_path("link");
        std::fs::write(&target, b"x").unwrap();
        rustix::fs::chmod(&target, Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let result = set_mode_nofollow(&link, Mode::from_bits_truncate(0o666));
        let after = rustix::fs::stat(&target).unwrap().st_mode & 0o7777;
        std::fs::remove_file(&link).unwrap();
        std::fs::remove_file(&target).unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert_eq!(after, 0o600, "the link's target was changed");
    }

    #[test]
    fn open_on_a_regular_file_names_the_path() {
        let path = temp_path("regular");
        std::fs::write(&path, b"x").unwrap();
        let err = Fifo::create(&path, CreationMode::Open).unwrap_err();
        let err2 = Fifo::create(&path, CreationMode::OpenOrCreate).unwrap_err();
        let err3 = open_reader(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        for e in [err, err2, err3] {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            assert!(e.to_string().contains("not a FIFO"), "{e}");
        }
    }

    #[test]
    fn nonblocking_writer_without_reader_is_not_connected() {
        let path = temp_path("nxio");
        let fifo = Fifo::create(&path, CreationMode::CreateExclusive).unwrap();
        let err = OpenOptions::new()
            .nonblocking(true)
            .open_writer(fifo.path())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
