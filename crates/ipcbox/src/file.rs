//! Exchanging files between processes: atomic replacement and advisory locks.
//!
//! * [`write_atomic`] replaces a file's content so that every reader sees either the old or
//!   the new content, never a mix or a truncated file, even if the writer crashes midway.
//! * [`read`] reads a whole file, with an error that names it.
//! * [`Lock`] takes advisory `flock(2)` locks, shared or exclusive, blocking, `try_` or with a
//!   timeout, and hands out a [`LockGuard`] that releases the lock on drop. The lock belongs to
//!   the open file, not to the process: it is released when the [`Lock`] is closed (and when
//!   the holder dies), and two [`Lock`]s on one path in one process exclude each other.
//!
//! ```
//! use ipcbox::file::{self, Lock};
//!
//! # let dir = std::env::temp_dir().join(format!("ipcbox-doc-file-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let state = dir.join("state.json");
//! let mut lock = Lock::open(dir.join("state.lock"))?;
//! {
//!     let _guard = lock.lock_exclusive()?;
//!     file::write_atomic(&state, b"{\"jobs\": 3}")?;
//! } // unlocked here
//! assert_eq!(file::read(&state)?, b"{\"jobs\": 3}");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::signal::with_timeout;

/// Replaces the content of `path` with `bytes`, atomically.
///
/// Writes a new file with a unique name in the same directory, `fsync(2)`s it, `rename(2)`s
/// it over `path` and `fsync`s the directory. A concurrent reader opens either the old file or
/// the new one, complete. On any error the temporary file is removed and `path` keeps its old
/// content. The new file keeps the old one's permission bits, or is owner-only (`0600`) if
/// `path` did not exist. A symbolic link at `path` is replaced, not followed.
///
/// # Errors
///
/// * The OS error of the step that failed, naming the path: no such directory, permission
///   denied, no space left.
/// * [`io::ErrorKind::InvalidInput`] if `path` has no file name.
#[doc(alias = "rename")]
pub fn write_atomic(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref();
    let what = || format!("replace {}", path.display());
    let name = path
        .file_name()
        .ok_or_else(|| invalid_input(format_args!("replace {}: no file name", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let permissions = match rustix::fs::lstat(path) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() => st.st_mode & 0o7777,
        _ => 0o600,
    };
    let (tmp_path, tmp) = create_temp(dir, name, permissions).context_with(what)?;
    let tmp = TempFile {
        path: tmp_path,
        file: Some(File::from(tmp)),
    };
    tmp.commit(path, bytes.as_ref()).context_with(what)?;
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context_with(|| format!("open directory {} to sync it", dir.display()))?;
    rustix::fs::fsync(&dir_fd).context_with(|| format!("sync directory {}", dir.display()))?;
    Ok(())
}

/// Creates `dir/.<name>.ipcbox-tmp-<pid>-<n>` exclusively with `permissions`.
fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
    permissions: u32,
) -> io::Result<(PathBuf, OwnedFd)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Keep the temporary name within NAME_MAX (255 bytes) whatever the target's length:
    // at most 100 bytes of it (not characters: one may take up to 4 bytes).
    let mut short = String::new();
    for c in name.to_string_lossy().chars().filter(|&c| c != '/') {
        if short.len() + c.len_utf8() > 100 {
            break;
        }
        short.push(c);
    }
    let mode = Mode::from_bits_truncate(permissions);
    let mut last = None;
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = OsString::from(".");
        tmp_name.push(&short);
        tmp_name.push(format!(".ipcbox-tmp-{}-{n}", std::process::id()));
        let tmp_path = dir.join(tmp_name);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        match rustix::fs::open(&tmp_path, flags, mode) {
            Ok(fd) => {
                // The umask may have narrowed the mode; set it exactly.
                if let Err(e) = rustix::fs::fchmod(&fd, mode) {
                    let _ = rustix::fs::unlink(&tmp_path);
                    return Err(context(
                        e,
                        format!("set permissions on {}", tmp_path.display()),
                    ));
                }
                return Ok((tmp_path, fd));
            }
            // Left over by a crashed process with a recycled PID: try the next name.
            Err(Errno::EXIST) => last = Some(tmp_path),
            Err(e) => return Err(context(e, format!("create {}", tmp_path.display()))),
        }
    }
    let shown = last.map(|p| p.display().to_string()).unwrap_or_default();
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("create a temporary file next to it: names like {shown} are all taken"),
    ))
}

/// A temporary file removed on drop unless renamed into place.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn commit(mut self, target: &Path, bytes: &[u8]) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(invalid_input("temporary file already used"));
        };
        let tmp = self.path.display();
        file.write_all(bytes)
            .context_with(|| format!("write {} bytes to {tmp}", bytes.len()))?;
        rustix::fs::fsync(&file).context_with(|| format!("sync {tmp}"))?;
        drop(file);
        rustix::fs::rename(&self.path, target).context_with(|| format!("rename {tmp} over it"))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

/// Reads the whole file `path`.
///
/// Wraps [`std::fs::read`], with an error that names the path.
///
/// # Errors
///
/// The OS error (not found, permission denied…), naming the path.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).context_with(|| format!("read {}", path.display()))
}

/// An open file on which advisory locks are taken with `flock(2)`.
///
/// A lock belongs to this open file: it is released when the guard is dropped, when the
/// `Lock` is closed, or when the process dies, and it is not inherited by `exec`'d programs
/// (the file is close-on-exec). Advisory means it only excludes other processes that lock the
/// same file; it does not stop anyone from reading or writing it. It interoperates with
/// `flock(1)` and Python's `fcntl.flock`, not with `fcntl(2)` record locks.
///
/// The locking methods take `&mut self`, so a `Lock` has at most one guard at a time; open one
/// `Lock` per thread that locks.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: Option<PathBuf>,
}

/// Holds a lock taken through a [`Lock`]; dropping it unlocks (`flock(LOCK_UN)`).
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a mut Lock,
    exclusive: bool,
}

impl Lock {
    /// Opens (creating if needed, owner-only `0600`) the file `path` for reading and writing,
    /// to lock it.
    ///
    /// # Errors
    ///
    /// The OS error, naming the path.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Lock> {
        let path = path.as_ref();
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .context_with(|| format!("open lock file {}", path.display()))?;
        Ok(Lock {
            file: File::from(fd),
            path: Some(path.to_owned()),
        })
    }

    /// Locks an already open file (any access mode).
    pub fn new(file: File) -> Lock {
        Lock { file, path: None }
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Gives the file back (closing it would release any lock, but no guard can be alive).
    pub fn into_inner(self) -> File {
        self.file
    }

    /// Takes a shared lock, waiting while another holds an exclusive one (`LOCK_SH`).
    ///
    /// # Errors
    ///
    /// The OS error, naming the file (`ENOLCK`, `EBADF`).
    pub fn lock_shared(&mut self) -> io::Result<LockGuard<'_>> {
        // Waiting for ever, the lock is always taken in the end.
        self.flock(false, Deadline::Forever)?;
        Ok(self.guard(false))
    }

    /// Takes an exclusive lock, waiting while another holds any (`LOCK_EX`).
    ///
    /// # Errors
    ///
    /// As [`lock_shared`](Lock::lock_shared).
    pub fn lock_exclusive(&mut self) -> io::Result<LockGuard<'_>> {
        self.flock(true, Deadline::Forever)?;
        Ok(self.guard(true))
    }

    /// Takes a shared lock if no one holds an exclusive one; `Ok(None)` otherwise
    /// (`LOCK_SH | LOCK_NB`).
    ///
    /// # Errors
    ///
    /// As [`lock_shared`](Lock::lock_shared).
    pub fn try_lock_shared(&mut self) -> io::Result<Option<LockGuard<'_>>> {
        self.lock_until(false, Deadline::Now)
    }

    /// Takes an exclusive lock if no one holds any; `Ok(None)` otherwise (`LOCK_EX | LOCK_NB`).
    ///
    /// # Errors
    ///
    /// As [`lock_shared`](Lock::lock_shared).
    pub fn try_lock_exclusive(&mut self) -> io::Result<Option<LockGuard<'_>>> {
        self.lock_until(true, Deadline::Now)
    }

    /// As [`lock_shared`](Lock::lock_shared), waiting at most `timeout`; `Ok(None)` when the
    /// lock was not free in time. Built on [`crate::signal::with_timeout`].
    ///
    /// # Errors
    ///
    /// As [`lock_shared`](Lock::lock_shared), and those of [`crate::signal::with_timeout`].
    pub fn lock_shared_timeout(&mut self, timeout: Duration) -> io::Result<Option<LockGuard<'_>>> {
        self.lock_until(false, Deadline::after(timeout))
    }

    /// As [`lock_exclusive`](Lock::lock_exclusive), waiting at most `timeout`; `Ok(None)` when
    /// the lock was not free in time.
    ///
    /// # Errors
    ///
    /// As [`lock_shared_timeout`](Lock::lock_shared_timeout).
    pub fn lock_exclusive_timeout(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<LockGuard<'_>>> {
        self.lock_until(true, Deadline::after(timeout))
    }

    fn describe(&self, exclusive: bool) -> String {
        let kind = if exclusive { "exclusive" } else { "shared" };
        match &self.path {
            Some(p) => format!("take {kind} lock on {}", p.display()),
            None => format!(
                "take {kind} lock on file descriptor {:?}",
                self.file.as_fd()
            ),
        }
    }

    fn guard(&mut self, exclusive: bool) -> LockGuard<'_> {
        LockGuard {
            lock: self,
            exclusive,
        }
    }

    fn lock_until(
        &mut self,
        exclusive: bool,
        deadline: Deadline,
    ) -> io::Result<Option<LockGuard<'_>>> {
        Ok(self
            .flock(exclusive, deadline)?
            .then(|| self.guard(exclusive)))
    }

    /// Takes the lock by `deadline`: `Ok(false)` when it was not free in time.
    fn flock(&self, exclusive: bool, deadline: Deadline) -> io::Result<bool> {
        let fd = self.file.as_fd();
        let flock = |op| rustix::fs::flock(fd, op).map_err(io::Error::from);
        let (op, now) = if exclusive {
            (
                FlockOperation::LockExclusive,
                FlockOperation::NonBlockingLockExclusive,
            )
        } else {
            (
                FlockOperation::LockShared,
                FlockOperation::NonBlockingLockShared,
            )
        };
        let result = match deadline {
            Deadline::Now => match flock(now) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                other => other.map(|()| true),
            },
            Deadline::At(_) => {
                let left = deadline.remaining().unwrap_or_default();
                match with_timeout(left, || flock(op)) {
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
                    other => other.map(|()| true),
                }
            }
            // A handler installed without SA_RESTART interrupts the wait: wait on.
            Deadline::Forever => loop {
                match flock(op) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other.map(|()| true),
                }
            },
        };
        result.map_err(|e| context(e, self.describe(exclusive)))
    }
}

impl AsFd for Lock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl LockGuard<'_> {
    /// Whether this is an exclusive lock (else shared).
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.lock.file
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // Unlocking an flock we hold cannot fail; closing the file would release it anyway.
        let _ = rustix::fs::flock(&self.lock.file, FlockOperation::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_permissions_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("ipcbox-unit-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        write_atomic(&path, b"one").unwrap();
        let st = rustix::fs::stat(&path).unwrap();
        assert_eq!(st.st_mode & 0o777, 0o600);
        rustix::fs::chmod(&path, Mode::from_bits_truncate(0o640)).unwrap();
        write_atomic(&path, b"two").unwrap();
        let st = rustix::fs::stat(&path).unwrap();
        assert_eq!(st.st_mode & 0o777, 0o640);
        assert_eq!(read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, vec![OsString::from("f")]);
    }

    #[test]
    fn replace_works_for_the_longest_multibyte_name() {
        let dir =
            std::env::temp_dir().join(format!("ipcbox-unit-file-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 85 three-byte characters: 255 bytes, the longest name a file may have.
        let path = dir.join("\u{20ac}".repeat(85));
        let result = write_atomic(&path, b"long");
        let content = read(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        result.unwrap();
        assert_eq!(content.unwrap(), b"long");
    }

    #[test]
    fn replace_in_missing_directory_names_the_path() {
        let err = write_atomic("/nonexistent-ipcbox-dir/x", b"1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains("/nonexistent-ipcbox-dir/x"),
            "{err}"
        );
        let err = read("/nonexistent-ipcbox-dir/x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-ipcbox-dir/x"),
            "{err}"
        );
    }

    #[test]
    fn two_locks_on_one_path_exclude_each_other_and_time_out() {
        let path = std::env::temp_dir().join(format!("ipcbox-unit-lock-{}", std::process::id()));
        let mut a = Lock::open(&path).unwrap();
        let mut b = Lock::open(&path).unwrap();
        let guard = a.lock_exclusive().unwrap();
        assert!(b.try_lock_shared().unwrap().is_none());
        assert!(b
            .lock_shared_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none());
        drop(guard);
        assert!(b.try_lock_exclusive().unwrap().is_some());
        std::fs::remove_file(&path).unwrap();
    }
}
