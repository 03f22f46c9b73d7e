//! Named pipes on bare system calls: `mkfifo` in a private temporary directory, `open(2)`,
//! `read(2)`, `write(2)`. The ipcbox row (`fifo.rs`) joins this group.

use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, CWD};

use crate::row::{forked, Info, Kind, Link, Row};
use crate::rows::common::{FdStream, TempDir};

/// The raw FIFO row.
pub fn rows() -> Vec<Box<dyn Row>> {
    vec![forked(Info::new("fifo raw", "fifo", Kind::Raw), FifoRaw)]
}

/// Two FIFOs, one each way, in a directory the parent removes.
#[derive(Debug)]
pub struct FifoPaths {
    /// The directory holding both FIFOs, removed when the parent drops this.
    _dir: TempDir,
    /// Parent writes, child reads.
    pub to_child: PathBuf,
    /// Child writes, parent reads.
    pub to_parent: PathBuf,
}

impl FifoPaths {
    /// A fresh directory and the two paths in it (nothing created at the paths).
    ///
    /// # Errors
    ///
    /// Creating the directory.
    pub fn new() -> io::Result<FifoPaths> {
        let dir = TempDir::new("fifo")?;
        Ok(FifoPaths {
            to_child: dir.path().join("to-child"),
            to_parent: dir.path().join("to-parent"),
            _dir: dir,
        })
    }
}

#[derive(Debug)]
struct FifoRaw;

fn open(path: &Path, flags: OFlags) -> io::Result<std::os::fd::OwnedFd> {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty())
        .map_err(|err| io::Error::new(err.kind(), format!("open {}: {err}", path.display())))
}

impl Link for FifoRaw {
    type Shared = FifoPaths;
    type Parent = FdStream;
    type Child = FdStream;

    fn prepare(&self, _max_message: usize) -> io::Result<FifoPaths> {
        let paths = FifoPaths::new()?;
        for path in [&paths.to_child, &paths.to_parent] {
            rustix::fs::mkfifoat(CWD, path, Mode::from_raw_mode(0o600)).map_err(|err| {
                io::Error::new(err.kind(), format!("mkfifo {}: {err}", path.display()))
            })?;
        }
        Ok(paths)
    }

    // Opening a FIFO blocks until the other side opens it too: both processes open
    // `to_child` first, then `to_parent`. Once both are open the names are no longer needed,
    // and the parent's `paths` removes them on return.
    fn parent(&self, paths: FifoPaths) -> io::Result<FdStream> {
        let tx = open(&paths.to_child, OFlags::WRONLY)?;
        let rx = open(&paths.to_parent, OFlags::RDONLY)?;
        Ok(FdStream::new(rx, tx))
    }

    fn child(&self, paths: FifoPaths) -> io::Result<FdStream> {
        let rx = open(&paths.to_child, OFlags::RDONLY)?;
        let tx = open(&paths.to_parent, OFlags::WRONLY)?;
        Ok(FdStream::new(rx, tx))
    }
}
