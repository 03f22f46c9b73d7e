//! The shared memory a queue or channel lives in: a named POSIX shared-memory object
//! (`shm_open`) or an anonymous shared mapping inherited across `fork`.
//!
//! This is the seam to `shm::Segment`: everything above it only sees a [`Region`] with a header
//! of type `H`.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::error::ResultExt;
use crate::mode::CreationMode;
use crate::shm::{self, Link};
use crate::sys::mmap::{Mapping, Region, SharedState};

/// An attached queue object: its memory, and its name if it has one.
pub(crate) struct Object<H> {
    pub(crate) region: Region<H>,
    pub(crate) name: Option<String>,
    /// The named segment, which removes the name on drop if this handle created it (unless
    /// detached).
    link: Option<Link>,
}

impl<H> fmt::Debug for Object<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("region", &self.region)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The region of `map`, or `InvalidData` when it is too small for the header `H`.
fn region<H: SharedState>(map: Mapping, label: &str) -> io::Result<Region<H>> {
    let len = map.len();
    Region::new(map).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{label} is {len} bytes, too small for its header"),
        )
    })
}

/// How long an opener waits for a creator that is still setting an object up.
pub(crate) const SETUP_WAIT: Duration = Duration::from_secs(2);

impl<H: SharedState> Object<H> {
    /// Fresh zeroed memory shared with children forked after this call.
    pub(crate) fn anonymous(len: usize) -> io::Result<Object<H>> {
        let map =
            Mapping::anonymous(len).context_with(|| format!("map {len} bytes of shared memory"))?;
        Ok(Object {
            region: region(map, "(anonymous)")?,
            name: None,
            link: None,
        })
    }

    /// Creates or opens the shared-memory segment `name` ([`shm::Options`]). Returns the
    /// object and whether it was created (then the caller must initialise it and mark it
    /// ready). `len` is the size of a new object; an existing one keeps its own.
    pub(crate) fn named(
        name: &str,
        mode: CreationMode,
        len: usize,
        permissions: u32,
    ) -> io::Result<(Object<H>, bool)> {
        let mut opts = shm::Options::new();
        opts.mode(mode).permissions(permissions).size_only_creates();
        if mode != CreationMode::Open {
            opts.size(len);
        }
        let seg = opts.open(name)?;
        let created = seg.is_owner();
        let (link, map) = seg.into_parts();
        let name = link.name();
        Ok((
            Object {
                region: region(map, &name)?,
                name: Some(name),
                link: Some(link),
            },
            created,
        ))
    }

    /// Keeps the name after this handle is dropped.
    pub(crate) fn detach(&mut self) {
        if let Some(link) = &mut self.link {
            link.detach();
        }
    }

    /// The name, for messages ("anonymous" when there is none).
    pub(crate) fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("(anonymous)")
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
                    "{what} was never initialised: its creator died or it is not an ipcbox object"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
