//! The segment a primitive lives in: named (a POSIX shared-memory [`shm::Segment`]) or anonymous
//! (inherited across `fork`), with a validated header in front of the state.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::layout::sync::Header;
use crate::mode::CreationMode;
use crate::name::{posix_name, NAME_MAX};
use crate::shm::{self, Link};
use crate::sys::mmap::Mapping;
use crate::sys::mmap::{view, SharedState};

/// Size of [`Header`]; the state starts here (8-byte aligned, since mappings are page aligned).
pub(crate) const STATE_OFFSET: usize = 16;
const MAGIC: u32 = 0x4950_4253; // "IPBS"
/// The version of the header and state layouts this code writes and reads.
// 2: the mutex is ipcbox's own lock (two `u32`s naming the owner thread), not glibc's.
const VERSION: u32 = 3;

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
    map: Mapping,
    /// The named segment, which removes the name on drop if this handle created it (unless
    /// detached).
    link: Option<Link>,
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
            map,
            link: None,
            name: None,
        })
    }

    /// A named primitive: the [`shm::Segment`] `/dev/shm/<name>`, created or opened as `mode`
    /// says. A new segment is initialised by `init` and its header published before its name
    /// appears; an existing one must hold a primitive of `kind` with `state_size` bytes.
    pub(crate) fn named(
        name: &str,
        mode: CreationMode,
        permissions: u32,
        kind: Kind,
        state_size: usize,
        mut init: impl FnMut(&Mapping) -> io::Result<()>,
    ) -> io::Result<Region> {
        let shm_name = posix_name(name, kind.name(), NAME_MAX)?;
        let size = STATE_OFFSET + state_size;
        let seg = shm::Options::new()
            .mode(mode)
            .size(size)
            .permissions(permissions)
            .size_only_creates()
            .open_with_init(&shm_name, |seg| {
                init(seg.mapping())
                    .context_with(|| format!("create shared {} {shm_name}", kind.name()))?;
                publish(seg.mapping(), kind, size);
                Ok(())
            })?;
        let (link, map) = seg.into_parts();
        if !link.is_owner() {
            validate(&map, kind, size)
                .map_err(|e| context(e, format_args!("open shared {} {shm_name}", kind.name())))?;
        }
        Ok(Region {
            map,
            link: Some(link),
            name: Some(shm_name),
        })
    }

    /// The primitive's state.
    pub(crate) fn state<T: SharedState>(&self) -> &T {
        // The mapping was sized for `T` after the header when it was created or opened.
        view(&self.map, STATE_OFFSET).expect("segment sized for its state when mapped")
    }

    /// The shared-memory name ("/name"), if the primitive is named.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Keeps the name after this handle is dropped.
    pub(crate) fn detach(&mut self) {
        if let Some(link) = &mut self.link {
            link.detach();
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

/// Checks the header of a segment that another process created: an ipcbox primitive of
/// `kind`, `size` bytes in all.
fn validate(map: &Mapping, kind: Kind, size: usize) -> io::Result<()> {
    let len = map.len();
    if len != size {
        return Err(invalid_input(format_args!(
            "segment has {len} bytes, a {} needs {size}",
            kind.name()
        )));
    }
    let header: &Header = view(map, 0).ok_or_else(|| invalid_input("segment too small"))?;
    // A creator without O_TMPFILE names the segment before it publishes the header; give it
    // a moment.
    let deadline = Deadline::after(Duration::from_secs(2));
    while header.magic.load(Ordering::Acquire) == 0 && !deadline.has_passed() {
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
        return Err(invalid_input(format_args!(
            "not an ipcbox primitive (magic {magic:#x}, version {version}; expected \
             {MAGIC:#x}, {VERSION})"
        )));
    }
    if found_kind != kind as u32 || found_size as usize != size {
        return Err(invalid_input(format_args!(
            "segment holds primitive kind {found_kind} of {found_size} bytes, expected kind {} \
             of {size} bytes",
            kind as u32
        )));
    }
    Ok(())
}
