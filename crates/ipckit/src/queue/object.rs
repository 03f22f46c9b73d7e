//! The shared memory a queue or channel lives in: a named POSIX shared-memory object
//! (`shm_open`) or an anonymous shared mapping inherited across `fork`.
//!
//! This is the seam to `shm::Segment`: everything above it only sees a [`Region`].

use std::io;
use std::time::{Duration, Instant};

use rustix::fs::{fstat, ftruncate, Mode};
use rustix::shm::OFlags;

use crate::error::{invalid_input, ResultExt};
use crate::mode::CreationMode;
use crate::sys::mmap::Mapping;
use crate::sys::queue::Region;

/// An attached queue object: its memory, and its name if this handle must remove it on drop.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) region: Region,
    pub(crate) name: Option<String>,
    /// This handle created the name and removes it on drop (unless detached).
    pub(crate) owner: bool,
}

/// How long an opener waits for a creator that is still setting an object up.
pub(crate) const SETUP_WAIT: Duration = Duration::from_secs(2);

impl Object {
    /// Fresh zeroed memory shared with children forked after this call.
    pub(crate) fn anonymous(len: usize) -> io::Result<Object> {
        let map =
            Mapping::anonymous(len).context_with(|| format!("map {len} bytes of shared memory"))?;
        Ok(Object {
            region: Region::new(map),
            name: None,
            owner: false,
        })
    }

    /// Creates (`CreateExclusive`, or `OpenOrCreate` when the name is free) or opens `name`.
    /// Returns the object and whether it was created (then the caller must initialise it and
    /// mark it ready). `len` is the size of a new object.
    pub(crate) fn named(
        name: &str,
        mode: CreationMode,
        len: usize,
        permissions: u32,
    ) -> io::Result<(Object, bool)> {
        let path = crate::name::posix_name(name, "queue", crate::name::NAME_MAX)?;
        let create = || -> io::Result<Object> {
            let fd = rustix::shm::open(
                path.as_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
                Mode::from_bits_truncate(permissions),
            )
            .context_with(|| format!("create shared-memory object {path}"))?;
            let obj = ftruncate(&fd, len as u64)
                .context_with(|| format!("size shared-memory object {path} to {len} bytes"))
                .and_then(|()| {
                    Mapping::map_fd(&fd, len, true)
                        .context_with(|| format!("map shared-memory object {path}"))
                });
            match obj {
                Ok(map) => Ok(Object {
                    region: Region::new(map),
                    name: Some(path.clone()),
                    owner: true,
                }),
                Err(e) => {
                    let _ = rustix::shm::unlink(path.as_str());
                    Err(e)
                }
            }
        };
        match mode {
            CreationMode::CreateExclusive => Ok((create()?, true)),
            CreationMode::Open => Ok((Object::open(&path)?, false)),
            CreationMode::OpenOrCreate => match create() {
                Ok(o) => Ok((o, true)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Ok((Object::open(&path)?, false))
                }
                Err(e) => Err(e),
            },
        }
    }

    fn open(path: &str) -> io::Result<Object> {
        let fd = rustix::shm::open(path, OFlags::RDWR, Mode::empty())
            .context_with(|| format!("open shared-memory object {path}"))?;
        // A creator sizes the object right after creating it; give it a moment.
        let start = Instant::now();
        let len = loop {
            let st = fstat(&fd).context_with(|| format!("stat shared-memory object {path}"))?;
            if st.st_size > 0 {
                break usize::try_from(st.st_size).map_err(|_| {
                    invalid_input(format_args!("shared-memory object {path} too large"))
                })?;
            }
            if start.elapsed() > SETUP_WAIT {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "shared-memory object {path} is empty: not a queue, or its creator died"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let map = Mapping::map_fd(&fd, len, true)
            .context_with(|| format!("map shared-memory object {path}"))?;
        Ok(Object {
            region: Region::new(map),
            name: Some(path.to_owned()),
            owner: false,
        })
    }

    /// The name, for messages ("anonymous" when there is none).
    pub(crate) fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("(anonymous)")
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        if self.owner {
            if let Some(name) = &self.name {
                let _ = rustix::shm::unlink(name.as_str());
            }
        }
    }
}

/// Waits until `ready()` holds, for at most [`SETUP_WAIT`].
pub(crate) fn wait_ready(what: &str, ready: impl Fn() -> bool) -> io::Result<()> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > SETUP_WAIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{what} was never initialised: its creator died or it is not an ipckit object"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
