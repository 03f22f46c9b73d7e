//! Finding the IPC objects on this machine, and removing those nobody uses any more.
//!
//! Named IPC objects outlive the processes that made them: a crashed process leaves its
//! segments in `/dev/shm` and its System V objects in the kernel. [`list`] finds every object
//! of this IPC namespace with the evidence of whether it is in use, and
//! [`Object::remove_if_unused`] removes one only if a fresh look still finds no user. The
//! `ipcbox ls` and `ipcbox clean` commands are built on them. [`inspect`] reads the fill and
//! the peers of ipcbox's own queues, channels and stores without taking part in them, for
//! `ipcbox watch`.
//!
//! | kind | where | "in use" means |
//! |---|---|---|
//! | [`Kind::PosixShm`], [`Kind::PosixSemaphore`] | files in `/dev/shm` (`sem.NAME` for `sem_open`) | a live process maps it (`/proc/PID/maps`) or holds it open (`/proc/PID/fd`) |
//! | [`Kind::PosixQueue`] | files in `/dev/mqueue`; where mqueue is not mounted there, a private mount of it that nobody else sees (needs `CAP_SYS_ADMIN`, else queues are not listed and the first note says so) | a live process holds it open |
//! | [`Kind::SysVShm`] | `/proc/sysvipc/shm` | it is attached (`nattch > 0`) |
//! | [`Kind::SysVSemaphores`] | `/proc/sysvipc/sem`, `semctl(GETPID, GETNCNT, GETZCNT)` | a process waits on it, or the last `semop` on one of its semaphores was by a live process |
//! | [`Kind::SysVQueue`] | `/proc/sysvipc/msg` | the last sender or receiver is alive |
//!
//! A zombie counts as dead. ipcbox's own objects are recognised by the magic number in the
//! first bytes of their segment ([`Format`]), read without mapping it.
//!
//! # What "unused" cannot see
//!
//! The evidence is what the kernel shows, so "unused" is a strong hint, not a proof:
//!
//! - A process may have just created an object and not yet mapped, attached or used it. That is
//!   why removal takes a `min_idle` grace window: an object changed (created, resized, operated
//!   on, …) more recently than that is kept.
//! - A file in `/dev/shm` is first moved to a hidden name, then every process is inspected
//!   again, and the file is removed only if still nobody maps or holds it, otherwise renamed
//!   back. A process that opened it before the move holds an fd or a mapping by then; one that
//!   opens it after the move does not find it. Only an fd in flight inside a Unix socket message
//!   escapes this. POSIX queues cannot be renamed and are checked, then unlinked.
//! - System V objects are checked again right before `IPC_RMID`. A process that `shmat`s or
//!   `semop`s in between the two (microseconds) is not seen.
//! - A semaphore set or message queue records only the last pids that used it, not who holds
//!   its id, and a segment's creator need not stay attached: an idle one whose last users died
//!   is "unused" by design.
//! - Processes in other PID namespaces are invisible.
//! - Processes whose `/proc` entries cannot be read (another user's, when not root) make an
//!   object they could use [`Usage::Unknown`], and unknown objects are never removed.
//!   [`Listing::notes`] names those processes.
//! - Root's processes are the exception: they are assumed not to use such objects.
//! - A reused pid makes a dead process look alive: the object is kept (the safe side).

// Root's processes are unreadable to root only when they hold more capabilities, and to other
// users always: counting them as possible users would block every removal.

mod files;
mod inspect;
mod procfs;
mod sysv;

pub use inspect::{inspect, ChannelState, QueueState, State, StoreState};

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::ipc_key::IpcKey;
use crate::pid::Pid;

/// The kind of an IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// A POSIX shared-memory object (`shm_open`), a file in `/dev/shm`.
    PosixShm,
    /// A POSIX named semaphore (`sem_open`), the file `/dev/shm/sem.NAME`.
    PosixSemaphore,
    /// A POSIX message queue (`mq_open`), a file in `/dev/mqueue`.
    PosixQueue,
    /// A System V shared-memory segment (`shmget`).
    SysVShm,
    /// A System V semaphore set (`semget`).
    SysVSemaphores,
    /// A System V message queue (`msgget`).
    SysVQueue,
}

impl Kind {
    /// A short name: `posix-shm`, `posix-sem`, `posix-mq`, `sysv-shm`, `sysv-sem`, `sysv-msg`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PosixShm => "posix-shm",
            Kind::PosixSemaphore => "posix-sem",
            Kind::PosixQueue => "posix-mq",
            Kind::SysVShm => "sysv-shm",
            Kind::SysVSemaphores => "sysv-sem",
            Kind::SysVQueue => "sysv-msg",
        }
    }

    /// Whether objects of this kind are System V objects, found by key and id.
    pub fn is_sysv(self) -> bool {
        matches!(self, Kind::SysVShm | Kind::SysVSemaphores | Kind::SysVQueue)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which ipcbox layout a segment holds, recognised by the magic number at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// A [`sync`](crate::sync) primitive's segment (mutex, semaphore, event, …): `"IPBS"`.
    Sync,
    /// A [`Queue`](crate::Queue) or [`ByteQueue`](crate::queue::ByteQueue): `"IPCBQUE"`.
    Queue,
    /// A one-to-one [`channel`](crate::queue::channel): `"IPCBCHN"`.
    Channel,
    /// A zero-copy object store: `"IPBSTORE"`.
    Store,
    /// A typed shared value or array: `"IPBT"`.
    Typed,
}

impl Format {
    /// The layout whose magic number `head` (a segment's first bytes) starts with.
    pub fn recognise(head: &[u8]) -> Option<Format> {
        let sync = 0x4950_4253_u32.to_ne_bytes();
        if head.starts_with(b"IPBSTORE") {
            Some(Format::Store)
        } else if head.starts_with(b"IPCBQUE") {
            Some(Format::Queue)
        } else if head.starts_with(b"IPCBCHN") {
            Some(Format::Channel)
        } else if head.starts_with(b"IPBT") {
            Some(Format::Typed)
        } else if head.starts_with(&sync) {
            Some(Format::Sync)
        } else {
            None
        }
    }

    /// A short name: `sync`, `queue`, `channel`, `store`, `typed`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Sync => "sync",
            Format::Queue => "queue",
            Format::Channel => "channel",
            Format::Store => "store",
            Format::Typed => "typed",
        }
    }
}

/// Whether an object is in use, and why that is the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// A live process uses it.
    InUse(String),
    /// No evidence of any user.
    Unused(String),
    /// Some possible users could not be inspected; treated as in use.
    Unknown(String),
}

impl Usage {
    /// `Some(true)` in use, `Some(false)` unused, `None` unknown.
    pub fn in_use(&self) -> Option<bool> {
        match self {
            Usage::InUse(_) => Some(true),
            Usage::Unused(_) => Some(false),
            Usage::Unknown(_) => None,
        }
    }

    /// The evidence for the verdict.
    pub fn why(&self) -> &str {
        match self {
            Usage::InUse(why) | Usage::Unused(why) | Usage::Unknown(why) => why,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self {
            Usage::InUse(_) => "in use",
            Usage::Unused(_) => "unused",
            Usage::Unknown(_) => "unknown",
        };
        write!(f, "{verdict}: {}", self.why())
    }
}

/// How a process uses a file-backed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum How {
    /// It is in the process's address space (`/proc/PID/maps`).
    Mapped,
    /// The process holds a file descriptor for it (`/proc/PID/fd`).
    Open,
}

/// A live process that maps or holds a file-backed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The process.
    pub pid: Pid,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// Mapped or open.
    pub how: How,
}

/// A process ID recorded for an object: by the kernel for a System V object, in the segment
/// for an ipcbox queue, channel or store ([`inspect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPid {
    /// What the process did: `creator`, `last attach/detach`, `last semop`, `last send`,
    /// `last receive` (System V); `attached`, `sender`, `receiver`, `creator`, `holder`
    /// (ipcbox's objects).
    pub role: &'static str,
    /// The process ID.
    pub pid: Pid,
    /// Whether it names a live process now (a zombie is dead).
    pub alive: bool,
}

/// One IPC object and the evidence of its use, as [`list`] found it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Object {
    /// The kind.
    pub kind: Kind,
    /// The POSIX name (`"/name"`, as `shm_open`, `sem_open`, `mq_open` take it).
    pub name: Option<String>,
    /// The file of a POSIX object (`/dev/shm/name`, `/dev/shm/sem.name`, `/dev/mqueue/name`);
    /// `None` for a queue listed through a private mount of mqueue.
    pub path: Option<PathBuf>,
    /// The key of a System V object ([`IpcKey::PRIVATE`] also once it is marked for removal).
    pub key: Option<IpcKey>,
    /// The identifier of a System V object.
    pub id: Option<i32>,
    /// Size in bytes; for a message queue the bytes queued, for a semaphore set the number of
    /// semaphores.
    pub size: u64,
    /// The owner's user ID.
    pub uid: u32,
    /// The permission bits.
    pub mode: u32,
    /// The ipcbox layout, for segments that start with an ipcbox magic number.
    pub format: Option<Format>,
    /// The last change the kernel records: creation, resize, attach, detach, operation, send or
    /// receive, whichever it keeps for this kind.
    pub changed: SystemTime,
    /// The verdict: in use, unused, unknown.
    pub usage: Usage,
    /// Live processes that map or hold it (POSIX objects).
    pub users: Vec<User>,
    /// Process IDs the kernel recorded (System V objects).
    pub pids: Vec<RecordedPid>,
    /// The number of attachments (System V segments).
    pub attached: Option<u64>,
    /// Processes waiting in `semop` (System V semaphore sets).
    pub waiters: Option<u64>,
    inode: Option<procfs::Inode>,
    /// The System V ctime, which tells a reused id from the object listed.
    stamp: i64,
}

impl Object {
    /// Whether this looks like an object ipcbox made: it starts with an ipcbox magic number or
    /// its name contains `ipcbox`.
    pub fn is_ipcbox(&self) -> bool {
        self.format.is_some() || self.name.as_deref().is_some_and(|n| n.contains("ipcbox"))
    }

    /// How long ago [`changed`](Object::changed) was (zero if in the future).
    pub fn idle(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.changed)
            .unwrap_or(Duration::ZERO)
    }

    /// Removes the object if it is still unused and unchanged for `min_idle`, looking at the
    /// evidence afresh (not at [`usage`](Object::usage) from the listing): `unlink` for POSIX
    /// objects (after moving them out of sight, see the [module docs](self)), `IPC_RMID` for
    /// System V ones.
    ///
    /// # Errors
    ///
    /// When `/proc` cannot be read or the removal fails (for instance `PermissionDenied` for
    /// another user's object); the message names the object.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ipcbox::objects::{self, Removal};
    ///
    /// # let name = format!("/ipcbox-doc-objects-{}", std::process::id());
    /// let mut seg = ipcbox::shm::Segment::create(&name, 4096)?;
    /// seg.detach();
    /// drop(seg); // unmapped, but the name stays: abandoned
    /// let listing = objects::list()?;
    /// let obj = listing.objects.iter().find(|o| o.name.as_deref() == Some(&*name)).unwrap();
    /// assert_eq!(obj.usage.in_use(), Some(false));
    /// assert!(matches!(obj.remove_if_unused(Duration::ZERO)?, Removal::Removed(_)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove_if_unused(&self, min_idle: Duration) -> io::Result<Removal> {
        if self.kind.is_sysv() {
            sysv::remove_if_unused(self, min_idle)
        } else {
            files::remove_if_unused(self, min_idle)
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.key, self.id) {
            (Some(name), _, _) => write!(f, "{} {name}", self.kind),
            (None, Some(key), Some(id)) => write!(f, "{} {key} id {id}", self.kind),
            _ => write!(f, "{}", self.kind),
        }
    }
}

/// What [`Object::remove_if_unused`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Removed; why it counted as unused.
    Removed(String),
    /// Kept; why (in use, unknown, or changed within the grace window).
    Kept(String),
    /// The object listed is gone already (or its name or id now names another object).
    Gone,
}

/// Every IPC object [`list`] found, and what it could not look at.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Listing {
    /// POSIX objects (by name), then System V ones (by kind and id).
    pub objects: Vec<Object>,
    /// What could not be listed or was found another way. When `/dev/mqueue` is not an
    /// mqueue mount, the first note says how POSIX queues were listed, or that they were not.
    pub notes: Vec<String>,
}

/// Lists the IPC objects of this machine (its IPC namespace): `/dev/shm`, the POSIX queues
/// and `/proc/sysvipc`, with the evidence of use from `/proc/*/maps` and `/proc/*/fd`, the
/// liveness of recorded pids, and `semctl(GETPID/GETNCNT/GETZCNT)`.
///
/// POSIX queues are files only where mqueue is mounted, normally `/dev/mqueue`; the kernel lists
/// them nowhere else. Where it is not mounted, they are read through a private mount of mqueue
/// attached nowhere (`fsopen`, `fsmount`), which needs `CAP_SYS_ADMIN`. Without it, queues are
/// not listed, their number is unknown, and the first of [`Listing::notes`] says so.
///
/// Nothing is mapped, attached or changed; each `/dev/shm` file is opened read-only for a
/// moment to read its first 8 bytes.
///
/// # Errors
///
/// When `/proc`, `/dev/shm` or a `/proc/sysvipc` table cannot be read.
///
/// # Examples
///
/// ```
/// for obj in ipcbox::objects::list()?.objects.iter().filter(|o| o.is_ipcbox()) {
///     println!("{obj}: {}", obj.usage);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "ipcs")]
pub fn list() -> io::Result<Listing> {
    let procs = procfs::Processes::scan()?;
    let mut notes: Vec<String> = procs.uninspectable().into_iter().collect();
    let mut objects = files::scan(&procs, &mut notes)?;
    objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let mut sysv = sysv::scan()?;
    sysv.sort_by_key(|o| (o.kind, o.id));
    objects.extend(sysv);
    Ok(Listing { objects, notes })
}

/// The time `secs` seconds after the epoch (0 for "never" is the epoch itself).
fn epoch_time(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// `Some(reason to keep)` if `changed` lies within `min_idle` of now.
fn idle_since(changed: SystemTime, min_idle: Duration) -> Option<String> {
    let idle = SystemTime::now()
        .duration_since(changed)
        .unwrap_or(Duration::ZERO);
    (idle < min_idle).then(|| {
        format!(
            "changed {}s ago, within the grace window of {}s",
            idle.as_secs(),
            min_idle.as_secs_f64()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_magic() {
        assert_eq!(Format::recognise(b"IPBSTORE"), Some(Format::Store));
        assert_eq!(Format::recognise(b"IPCBQUE\x01"), Some(Format::Queue));
        assert_eq!(Format::recognise(b"IPCBCHN\x01"), Some(Format::Channel));
        assert_eq!(Format::recognise(b"IPBT\x01\0\0\0"), Some(Format::Typed));
        assert_eq!(
            Format::recognise(&0x4950_4253_u32.to_ne_bytes()),
            Some(Format::Sync)
        );
        assert_eq!(Format::recognise(b"\0\0\0\0"), None);
        assert_eq!(Format::recognise(b"IP"), None);
    }

    #[test]
    fn grace_window() {
        assert!(idle_since(SystemTime::now(), Duration::from_secs(60)).is_some());
        assert!(idle_since(SystemTime::now(), Duration::ZERO).is_none());
        assert!(idle_since(epoch_time(1), Duration::from_secs(60)).is_none());
    }
}
