//! The segment a primitive lives in: named (a POSIX shared-memory object) or anonymous
//! (inherited across `fork`), with a validated header in front of the state.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::fs::Mode;
use rustix::shm::OFlags;

use crate::error::{context, invalid_input, ResultExt};
use crate::mode::CreationMode;
use crate::name::{posix_name, NAME_MAX};
use crate::sys::mmap::Mapping;
use crate::sys::sync::{view, Header, SharedState};

/// Size of [`Header`]; the state starts here (8-byte aligned, since mappings are page aligned).
pub(crate) const STATE_OFFSET: usize = 16;
const MAGIC: u32 = 0x4950_4b53; // "IPKS"
const VERSION: u32 = 1;

/// Which primitive a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Mutex = 1,
    Semaphore = 2,
    Event = 3,
    Condvar = 4,
    Barrier = 5,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mutex => "mutex",
            Kind::Semaphore => "semaphore",
            Kind::Event => "event",
            Kind::Condvar => "condition variable",
            Kind::Barrier => "barrier",
        }
    }
}

/// A mapped segment holding one primitive after its header.
#[derive(Debug)]
pub(crate) struct Region {
    /// `None` only after [`Region::leak_mapping`], when nothing uses the state any more.
    map: Option<Mapping>,
    /// The shared-memory name this handle removes on drop (creator, not detached).
    unlink: Option<String>,
    name: Option<String>,
}

impl Region {
    /// Fresh anonymous shared memory for a primitive of `kind` whose state has `state_size`
    /// bytes, initialised by `init` (called with the mapping, state at [`STATE_OFFSET`]).
    pub(crate) fn anonymous(
        kind: Kind,
        state_size: usize,
        init: impl FnOnce(&Mapping) -> io::Result<()>,
    ) -> io::Result<Region> {
        let size = STATE_OFFSET + state_size;
        let map = Mapping::anonymous(size)
            .context_with(|| format!("map {size} bytes of anonymous shared memory"))?;
        init(&map)?;
        publish(&map, kind, size);
        Ok(Region {
            map: Some(map),
            unlink: None,
            name: None,
        })
    }

    /// A named primitive: `/dev/shm/<name>`, created or opened as `mode` says.
    pub(crate) fn named(
        name: &str,
        mode: CreationMode,
        permissions: u32,
        kind: Kind,
        state_size: usize,
        init: impl FnOnce(&Mapping) -> io::Result<()>,
    ) -> io::Result<Region> {
        let shm_name = posix_name(name, kind.name(), NAME_MAX)?;
        match mode {
            CreationMode::CreateExclusive => {
                Self::create(&shm_name, permissions, kind, state_size, init)
            }
            CreationMode::Open => Self::open(&shm_name, kind, state_size),
            CreationMode::OpenOrCreate => {
                match Self::create(&shm_name, permissions, kind, state_size, init) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        Self::open(&shm_name, kind, state_size)
                    }
                    r => r,
                }
            }
        }
    }

    fn create(
        shm_name: &str,
        permissions: u32,
        kind: Kind,
        state_size: usize,
        init: impl FnOnce(&Mapping) -> io::Result<()>,
    ) -> io::Result<Region> {
        let what = || format!("create shared {} {shm_name}", kind.name());
        let fd = rustix::shm::open(
            shm_name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
            Mode::from_bits_truncate(permissions),
        )
        .context_with(what)?;
        // From here on the name is ours: remove it again if initialising fails.
        let mut cleanup = UnlinkOnError(Some(shm_name));
        let size = STATE_OFFSET + state_size;
        rustix::fs::ftruncate(&fd, size as u64).context_with(what)?;
        let map = Mapping::map_fd(&fd, size, true).context_with(what)?;
        init(&map).context_with(what)?;
        publish(&map, kind, size);
        cleanup.0 = None;
        Ok(Region {
            map: Some(map),
            unlink: Some(shm_name.to_owned()),
            name: Some(shm_name.to_owned()),
        })
    }

    fn open(shm_name: &str, kind: Kind, state_size: usize) -> io::Result<Region> {
        let what = || format!("open shared {} {shm_name}", kind.name());
        let fd = rustix::shm::open(shm_name, OFlags::RDWR, Mode::empty()).context_with(what)?;
        let size = STATE_OFFSET + state_size;
        // The creator truncates, initialises, then publishes the header; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let len = rustix::fs::fstat(&fd).context_with(what)?.st_size;
            if len == size as i64 {
                break;
            }
            if len != 0 || Instant::now() > deadline {
                return Err(context(
                    invalid_input(format_args!(
                        "segment has {len} bytes, a {} needs {size}",
                        kind.name()
                    )),
                    what(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let map = Mapping::map_fd(&fd, size, true).context_with(what)?;
        let header: &Header = view(&map, 0).ok_or_else(|| invalid_input("segment too small"))?;
        while header.magic.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (magic, version) = (
            header.magic.load(Ordering::Acquire),
            header.version.load(Ordering::Relaxed),
        );
        let (found_kind, found_size) = (
            header.kind.load(Ordering::Relaxed),
            header.size.load(Ordering::Relaxed),
        );
        if magic != MAGIC || version != VERSION {
            return Err(context(
                invalid_input(format_args!(
                    "not an ipckit primitive (magic {magic:#x}, version {version}; expected \
                     {MAGIC:#x}, {VERSION})"
                )),
                what(),
            ));
        }
        if found_kind != kind as u32 || found_size as usize != size {
            return Err(context(
                invalid_input(format_args!(
                    "segment holds primitive kind {found_kind} of {found_size} bytes, expected \
                     kind {} of {size} bytes",
                    kind as u32
                )),
                what(),
            ));
        }
        Ok(Region {
            map: Some(map),
            unlink: None,
            name: Some(shm_name.to_owned()),
        })
    }

    /// The primitive's state.
    pub(crate) fn state<T: SharedState>(&self) -> &T {
        // The mapping was sized for `T` after the header when it was created or opened.
        self.map
            .as_ref()
            .and_then(|map| view(map, STATE_OFFSET))
            .expect("segment mapped and sized for its state until dropped")
    }

    /// The shared-memory name ("/name"), if the primitive is named.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Keeps the name after this handle is dropped.
    pub(crate) fn detach(&mut self) {
        self.unlink = None;
    }

    /// Never unmaps the memory (the name is still removed as usual): for a mutex a leaked
    /// guard still holds, whose address is on this thread's robust list.
    pub(crate) fn leak_mapping(&mut self) {
        std::mem::forget(self.map.take());
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(name) = self.unlink.take() {
            let _ = rustix::shm::unlink(name.as_str());
        }
    }
}

/// Removes a half-created name when creation fails.
struct UnlinkOnError<'a>(Option<&'a str>);

impl Drop for UnlinkOnError<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.0 {
            let _ = rustix::shm::unlink(name);
        }
    }
}

fn publish(map: &Mapping, kind: Kind, size: usize) {
    if let Some(header) = view::<Header>(map, 0) {
        header.version.store(VERSION, Ordering::Relaxed);
        header.kind.store(kind as u32, Ordering::Relaxed);
        header.size.store(size as u32, Ordering::Relaxed);
        header.magic.store(MAGIC, Ordering::Release);
    }
}
