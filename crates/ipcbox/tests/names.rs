//! What every named kind does with its name (the crate docs' "Named objects"), written once and
//! run per kind:
//!
//! * The creator removes the name on drop only while the name still refers to its own object.
//!   Another process removes the name and creates a new object under it; the creator's drop
//!   must leave that object alone. On file systems that hand an inode number out again at once
//!   (ext4), a new file can get the old one's number, so file kinds are created again until
//!   that happens (or a few tries show it cannot).
//! * `Options::new()` creates exclusively, and the permissions asked for are the object's,
//!   whatever the umask.

mod util;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipcbox::fifo::{self, Fifo};
use ipcbox::mq::{self, PosixQueue, SysVQueue};
use ipcbox::queue::{self, channel};
use ipcbox::shm::{self, Array, Segment, Store, SysVSegment, TypedOptions, Value};
use ipcbox::socket::{self, Datagram, Endpoint, Listener, SeqPacketListener};
use ipcbox::store;
use ipcbox::sync::{self, Barrier, Condvar, Event, Mutex, NamedSemaphore, Semaphore, SemaphoreSet};
use ipcbox::{IpcKey, Queue};

const LIMIT: Duration = Duration::from_secs(60);

/// A kind of named object whose creator removes the name on drop.
trait Named {
    type Handle;
    /// The kind's name in messages and in the roles' argument.
    const KIND: &'static str;
    /// Whether the kind's options have a creation mode (sockets bind by a rule of their own).
    const HAS_MODE: bool = true;
    /// Whether a new object under the name may get the identity of a removed one.
    const REUSES_IDENTITY: bool = false;
    /// A name nobody uses: a shared-memory or queue name, a path in `dir`, or a System V key.
    fn fresh(dir: &Path) -> String;
    /// Creates the object through the kind's `Options::new()`, setting only the permissions
    /// (and the sizes a creation needs).
    fn create_with(name: &str, permissions: u32) -> io::Result<Self::Handle>;
    /// Creates the object exclusively, owner-only.
    fn create(name: &str) -> io::Result<Self::Handle> {
        Self::create_with(name, 0o600)
    }
    /// Drops the handle, keeping the name.
    fn detach(handle: Self::Handle);
    /// Removes the name as another process would (`shm_unlink`, `rm`, `ipcrm`).
    fn remove(name: &str) -> io::Result<()>;
    /// What the name refers to now (an inode number or a System V id); `None` when nothing.
    fn identity(name: &str) -> Option<u64>;
    /// The permission bits of the object the name refers to.
    fn permissions(name: &str) -> Option<u32>;
}

/// The first test, for kind `K`.
fn a_name_taken_over_survives_the_creators_drop<K: Named>() {
    let _dog = util::watchdog(K::KIND, LIMIT);
    let dir = Dir::new();
    let name = K::fresh(&dir.0);
    let _cleanup = Cleanup::<K>(name.clone(), std::marker::PhantomData);
    let ours = K::create(&name).unwrap_or_else(|e| panic!("{}: create {name}: {e}", K::KIND));
    assert!(K::identity(&name).is_some(), "{}: created", K::KIND);
    let arg = format!("{} {name}", K::KIND);
    let taker = util::role_command("role_take_over", "names-take-over", &arg);
    util::ChildGuard::spawn(taker).expect_success("the process taking the name over");
    let theirs = K::identity(&name).expect("the other process's object");
    drop(ours);
    assert_eq!(
        K::identity(&name),
        Some(theirs),
        "{}: the creator's drop removed the object another process put under {name}",
        K::KIND
    );
}

/// In the role: removes the name and creates a new object under it, which it leaves there.
fn take_over<K: Named>(name: &str) {
    let old = K::identity(name).expect("the creator's object");
    K::remove(name).expect("remove the creator's name");
    let mut handle = K::create(name).expect("create a new object under the name");
    if K::REUSES_IDENTITY {
        for _ in 0..50 {
            if K::identity(name) == Some(old) {
                break;
            }
            drop(handle);
            handle = K::create(name).expect("create again");
        }
    }
    K::detach(handle);
}

/// The second test, for kind `K`: in a process whose umask would narrow them, the permissions
/// asked for are the object's, and a second create of the name through `Options::new()` fails.
fn options_create_exclusively_with_exact_permissions<K: Named>() {
    let _dog = util::watchdog(K::KIND, LIMIT);
    let dir = Dir::new();
    let name = K::fresh(&dir.0);
    let _cleanup = Cleanup::<K>(name.clone(), std::marker::PhantomData);
    let arg = format!("{} {name}", K::KIND);
    let creator = util::role_command("role_create_under_umask", "names-umask", &arg);
    util::ChildGuard::spawn(creator).expect_success("the process creating under umask 077");
}

/// In the role: the umask 077 would take the group's and others' bits away.
fn create_under_umask<K: Named>(name: &str) {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let handle = K::create_with(name, 0o640).expect("create");
    assert_eq!(
        K::permissions(name),
        Some(0o640),
        "{}: not the permissions asked for",
        K::KIND
    );
    if K::HAS_MODE {
        match K::create_with(name, 0o640) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{}: a second create: not AlreadyExists: {e}", K::KIND),
            Ok(_) => panic!("{}: Options::new() opened an existing name", K::KIND),
        }
    }
    drop(handle);
}

/// Removes the name at the end of a test, whatever happened.
struct Cleanup<K: Named>(String, std::marker::PhantomData<K>);

impl<K: Named> Drop for Cleanup<K> {
    fn drop(&mut self) {
        let _ = K::remove(&self.0);
    }
}

/// A fresh directory for file kinds, on the file system of the build directory: one that may
/// hand inode numbers out again (the system temp directory may be a tmpfs, which does not).
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(util::unique_name("names"));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn inode(path: impl AsRef<Path>) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

fn file_permissions(path: impl AsRef<Path>) -> Option<u32> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| m.mode() & 0o777)
}

fn shm_path(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(name.trim_start_matches('/'))
}

/// The permissions of System V object `id` in `/proc/sysvipc/<table>` (lines of `key id perms
/// ...`, the permissions in octal).
fn sysv_permissions(table: &str, id: u64) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).ok()?;
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1)?.parse::<u64>().ok()? != id {
            return None;
        }
        u32::from_str_radix(fields.get(2)?, 8)
            .ok()
            .map(|mode| mode & 0o777)
    })
}

/// A System V key no other test or run uses now.
fn fresh_key() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    util::unique_name("names-key").hash(&mut h);
    (0x6e00_0000 | (h.finish() as i32 & 0x00ff_ffff)).to_string()
}

fn key(name: &str) -> IpcKey {
    IpcKey::from_raw(name.parse().expect("a key"))
}

/// A kind in POSIX shared memory (`/dev/shm/<name>`), made by `$create(name, permissions)`.
macro_rules! shm_kind {
    ($kind:ident, $handle:ty, $create:expr) => {
        struct $kind;
        impl Named for $kind {
            type Handle = $handle;
            const KIND: &'static str = stringify!($kind);
            fn fresh(_: &Path) -> String {
                util::unique_name("names")
            }
            fn create_with(name: &str, permissions: u32) -> io::Result<$handle> {
                let create: fn(&str, u32) -> io::Result<$handle> = $create;
                create(name, permissions)
            }
            fn detach(mut handle: $handle) {
                handle.detach();
            }
            fn remove(name: &str) -> io::Result<()> {
                shm::unlink(name)
            }
            fn identity(name: &str) -> Option<u64> {
                inode(shm_path(name))
            }
            fn permissions(name: &str) -> Option<u32> {
                file_permissions(shm_path(name))
            }
        }
    };
}

shm_kind!(SegmentKind, Segment, |n, p| shm::Options::new()
    .size(4096)
    .permissions(p)
    .open(n));
shm_kind!(ValueKind, Value<u32>, |n, p| TypedOptions::new()
    .permissions(p)
    .open_value(n, 1));
shm_kind!(ArrayKind, Array<u32>, |n, p| TypedOptions::new()
    .permissions(p)
    .open_array(n, 4));
shm_kind!(MutexKind, Mutex, |n, p| sync::Options::new()
    .permissions(p)
    .open_mutex(n));
shm_kind!(SemaphoreKind, Semaphore, |n, p| sync::Options::new()
    .permissions(p)
    .open_semaphore(n, 1));
shm_kind!(EventKind, Event, |n, p| sync::Options::new()
    .permissions(p)
    .open_event(n));
shm_kind!(CondvarKind, Condvar, |n, p| sync::Options::new()
    .permissions(p)
    .open_condvar(n));
shm_kind!(BarrierKind, Barrier, |n, p| sync::Options::new()
    .permissions(p)
    .open_barrier(n, 2));
shm_kind!(QueueKind, Queue<u32>, |n, p| queue::Options::new()
    .capacity(4)
    .permissions(p)
    .named(n));
shm_kind!(ChannelKind, channel::Sender<u32>, |n, p| {
    channel::Options::new().permissions(p).sender(n)
});

struct StoreKind;
impl Named for StoreKind {
    type Handle = Store;
    const KIND: &'static str = "StoreKind";
    fn fresh(_: &Path) -> String {
        util::unique_name("names")
    }
    fn create_with(name: &str, permissions: u32) -> io::Result<Store> {
        store::Options::new()
            .capacity(4096)
            .permissions(permissions)
            .open(name)
    }
    fn detach(handle: Store) {
        handle.detach();
    }
    fn remove(name: &str) -> io::Result<()> {
        shm::unlink(name)
    }
    fn identity(name: &str) -> Option<u64> {
        inode(shm_path(name))
    }
    fn permissions(name: &str) -> Option<u32> {
        file_permissions(shm_path(name))
    }
}

struct NamedSemaphoreKind;
impl Named for NamedSemaphoreKind {
    type Handle = NamedSemaphore;
    const KIND: &'static str = "NamedSemaphoreKind";
    fn fresh(_: &Path) -> String {
        format!("/{}", util::unique_name("names"))
    }
    fn create_with(name: &str, permissions: u32) -> io::Result<NamedSemaphore> {
        sync::Options::new()
            .permissions(permissions)
            .open_named_semaphore(name, 1)
    }
    fn detach(mut handle: NamedSemaphore) {
        handle.detach();
    }
    fn remove(name: &str) -> io::Result<()> {
        NamedSemaphore::unlink(name)
    }
    fn identity(name: &str) -> Option<u64> {
        inode(shm_path(&format!("sem.{}", name.trim_start_matches('/'))))
    }
    fn permissions(name: &str) -> Option<u32> {
        file_permissions(shm_path(&format!("sem.{}", name.trim_start_matches('/'))))
    }
}

struct PosixQueueKind;
impl Named for PosixQueueKind {
    type Handle = PosixQueue;
    const KIND: &'static str = "PosixQueueKind";
    fn fresh(_: &Path) -> String {
        format!("/{}", util::unique_name("names"))
    }
    fn create_with(name: &str, permissions: u32) -> io::Result<PosixQueue> {
        mq::Options::new()
            .capacity(1)
            .max_message_size(16)
            .permissions(permissions)
            .open(name)
    }
    fn detach(mut handle: PosixQueue) {
        handle.detach();
    }
    fn remove(name: &str) -> io::Result<()> {
        PosixQueue::unlink(name)
    }
    // /dev/mqueue need not be mounted: the queue's own descriptor tells.
    fn identity(name: &str) -> Option<u64> {
        let q = PosixQueue::open(name).ok()?;
        rustix::fs::fstat(q.as_fd()).ok().map(|st| st.st_ino)
    }
    fn permissions(name: &str) -> Option<u32> {
        let q = PosixQueue::open(name).ok()?;
        rustix::fs::fstat(q.as_fd())
            .ok()
            .map(|st| st.st_mode & 0o777)
    }
}

/// A System V kind, listed in `/proc/sysvipc/$table`: `$create(key, permissions)` creates it,
/// `$remove(key)` removes it.
macro_rules! sysv_kind {
    ($kind:ident, $handle:ty, $table:literal, $create:expr, $remove:expr) => {
        struct $kind;
        impl Named for $kind {
            type Handle = $handle;
            const KIND: &'static str = stringify!($kind);
            fn fresh(_: &Path) -> String {
                fresh_key()
            }
            fn create_with(name: &str, permissions: u32) -> io::Result<$handle> {
                let create: fn(IpcKey, u32) -> io::Result<$handle> = $create;
                create(key(name), permissions)
            }
            fn detach(mut handle: $handle) {
                handle.detach();
            }
            fn remove(name: &str) -> io::Result<()> {
                let remove: fn(IpcKey) -> io::Result<()> = $remove;
                remove(key(name))
            }
            fn identity(name: &str) -> Option<u64> {
                <$handle>::open(key(name)).ok().map(|h| h.id() as u64)
            }
            fn permissions(name: &str) -> Option<u32> {
                sysv_permissions($table, Self::identity(name)?)
            }
        }
    };
}

sysv_kind!(
    SysVSegmentKind,
    SysVSegment,
    "shm",
    |k, p| shm::SysVOptions::new().size(4096).permissions(p).open(k),
    SysVSegment::remove
);
sysv_kind!(
    SemaphoreSetKind,
    SemaphoreSet,
    "sem",
    |k, p| sync::Options::new().permissions(p).open_semaphore_set(k, 1),
    |k| SemaphoreSet::open(k)?.remove()
);
sysv_kind!(
    SysVQueueKind,
    SysVQueue,
    "msg",
    |k, p| mq::SysVOptions::new().permissions(p).open(k),
    |k| SysVQueue::open(k)?.remove()
);

/// A kind with a file in the file system.
macro_rules! file_kind {
    ($kind:ident, $handle:ty, $has_mode:literal, $create:expr, $detach:expr) => {
        struct $kind;
        impl Named for $kind {
            type Handle = $handle;
            const KIND: &'static str = stringify!($kind);
            const HAS_MODE: bool = $has_mode;
            const REUSES_IDENTITY: bool = true;
            fn fresh(dir: &Path) -> String {
                dir.join("obj").display().to_string()
            }
            fn create_with(name: &str, permissions: u32) -> io::Result<$handle> {
                let create: fn(&str, u32) -> io::Result<$handle> = $create;
                create(name, permissions)
            }
            fn detach(handle: $handle) {
                let detach: fn($handle) = $detach;
                detach(handle)
            }
            fn remove(name: &str) -> io::Result<()> {
                std::fs::remove_file(name)
            }
            fn identity(name: &str) -> Option<u64> {
                inode(name)
            }
            fn permissions(name: &str) -> Option<u32> {
                file_permissions(name)
            }
        }
    };
}

fn endpoint(scheme: &str, path: &str) -> io::Result<Endpoint> {
    format!("{scheme}:{path}").parse()
}

file_kind!(
    FifoKind,
    Fifo,
    true,
    |path, p| fifo::Options::new().permissions(p).create(path),
    |f| drop(f.detach())
);
file_kind!(
    ListenerKind,
    Listener,
    false,
    |path, p| socket::Options::new()
        .mode(p)
        .listen(&endpoint("unix", path)?),
    |mut l| l.detach()
);
file_kind!(
    SeqPacketListenerKind,
    SeqPacketListener,
    false,
    |path, p| socket::Options::new()
        .mode(p)
        .listen_seqpacket(&endpoint("unix-seqpacket", path)?),
    |mut l| l.detach()
);
file_kind!(
    DatagramKind,
    Datagram,
    false,
    |path, p| socket::Options::new()
        .mode(p)
        .bind_datagram(&endpoint("unix-dgram", path)?),
    |mut d| d.detach()
);

/// Both tests for every kind, and the roles, which find their kind by its name.
macro_rules! per_kind {
    ($($test:ident: $kind:ty,)*) => {
        mod taken_over {
            use super::*;
            $(
                #[test]
                fn $test() {
                    a_name_taken_over_survives_the_creators_drop::<$kind>();
                }
            )*
        }

        mod options {
            use super::*;
            $(
                #[test]
                fn $test() {
                    options_create_exclusively_with_exact_permissions::<$kind>();
                }
            )*
        }

        #[test]
        fn role_take_over() {
            let Some(arg) = util::role_arg("names-take-over") else {
                return;
            };
            let (kind, name) = arg.split_once(' ').expect("KIND NAME");
            $(
                if kind == <$kind as Named>::KIND {
                    return take_over::<$kind>(name);
                }
            )*
            panic!("unknown kind {kind}");
        }

        #[test]
        fn role_create_under_umask() {
            let Some(arg) = util::role_arg("names-umask") else {
                return;
            };
            let (kind, name) = arg.split_once(' ').expect("KIND NAME");
            $(
                if kind == <$kind as Named>::KIND {
                    return create_under_umask::<$kind>(name);
                }
            )*
            panic!("unknown kind {kind}");
        }
    };
}

per_kind! {
    segment: SegmentKind,
    sysv_segment: SysVSegmentKind,
    value: ValueKind,
    array: ArrayKind,
    store: StoreKind,
    mutex: MutexKind,
    semaphore: SemaphoreKind,
    event: EventKind,
    condvar: CondvarKind,
    barrier: BarrierKind,
    named_semaphore: NamedSemaphoreKind,
    semaphore_set: SemaphoreSetKind,
    queue: QueueKind,
    channel: ChannelKind,
    posix_queue: PosixQueueKind,
    sysv_queue: SysVQueueKind,
    fifo: FifoKind,
    listener: ListenerKind,
    seqpacket_listener: SeqPacketListenerKind,
    datagram: DatagramKind,
}
