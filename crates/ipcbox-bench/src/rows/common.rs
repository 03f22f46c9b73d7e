//! Endpoints and helpers shared by rows: a byte stream through `Read`/`Write` (how a user
//! calls ipcbox) and the same stream on bare `read`/`write` system calls (the raw rows).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::io::Errno;

use crate::row::Endpoint;

/// A two-way byte stream made of a reading and a writing half, used as a user would:
/// `write_all` and `read_exact`.
#[derive(Debug)]
pub struct IoStream<R, W> {
    rx: R,
    tx: W,
}

impl<R: Read, W: Write> IoStream<R, W> {
    /// Receives from `rx`, sends on `tx`.
    pub fn new(rx: R, tx: W) -> Self {
        IoStream { rx, tx }
    }
}

impl<R: Read, W: Write> Endpoint for IoStream<R, W> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.write_all(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.rx.read_exact(buf)
    }
}

/// A two-way byte stream on bare file descriptors: `read(2)` and `write(2)` in a loop until the
/// whole message has moved, nothing else.
#[derive(Debug)]
pub struct FdStream {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl FdStream {
    /// Receives from `rx`, sends on `tx`.
    pub fn new(rx: OwnedFd, tx: OwnedFd) -> Self {
        FdStream { rx, tx }
    }
}

impl Endpoint for FdStream {
    fn send(&mut self, mut msg: &[u8]) -> io::Result<()> {
        while !msg.is_empty() {
            match rustix::io::write(self.tx.as_fd(), msg) {
                Ok(n) => msg = &msg[n..],
                Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    fn recv(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match rustix::io::read(self.rx.as_fd(), &mut *buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => buf = &mut buf[n..],
                Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}

/// A private directory (mode 0700) under the system's temporary directory, removed with its
/// contents on drop — by the process that made it only, so a forked peer that drops its copy
/// removes nothing.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    owner: u32,
}

impl TempDir {
    /// Creates `$TMPDIR/ipcbox-bench-<pid>-<n>-<tag>`.
    ///
    /// # Errors
    ///
    /// The OS error from `mkdir`, naming the path.
    pub fn new(tag: &str) -> io::Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let owner = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ipcbox-bench-{owner}-{n}-{tag}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|err| {
                io::Error::new(err.kind(), format!("create {}: {err}", path.display()))
            })?;
        Ok(TempDir { path, owner })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Spins until `ready()` holds, with the spin-loop hint, yielding the CPU now and then (a
/// loaded machine may have put the peer on this very core) and checking every few
/// milliseconds that process `peer` still runs, so a dead peer is an error, not a hang.
///
/// # Errors
///
/// `BrokenPipe` naming the peer once it has exited (or is a zombie).
#[inline]
pub fn spin_until(peer: u32, mut ready: impl FnMut() -> bool) -> io::Result<()> {
    let mut spins: u32 = 0;
    loop {
        if ready() {
            return Ok(());
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins % (1 << 14) == 0 {
            std::thread::yield_now();
            if spins % (1 << 20) == 0 && !process_alive(peer) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("the peer process {peer} has ended"),
                ));
            }
        }
    }
}

/// Whether process `pid` exists and is not a zombie (from `/proc/<pid>/stat`).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain spaces.
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
        None => true,
    }
}

/// A unique name for a named object of one measurement: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_stream_moves_messages_and_reports_eof() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let (r2, w2) = rustix::pipe::pipe().unwrap();
        let mut a = FdStream::new(r2, w);
        let mut b = FdStream::new(r, w2);
        a.send(b"hello").unwrap();
        let mut buf = [0; 5];
        b.recv(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        drop(a);
        assert_eq!(
            b.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn temp_dir_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("test").unwrap();
        let path = dir.path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(path.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
