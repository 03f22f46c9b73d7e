//! What every named kind does with its name, written once and run per kind: the creator
//! removes the name on drop only while the name still refers to its own object.
//!
//! Another process removes the name and creates a new object under it; the creator's drop
//! must leave that object alone. On file systems that hand an inode number out again at once
//! (ext4), a new file can get the old one's number, so file kinds are created again until that
//! happens (or a few tries show it cannot).

mod util;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipcbox::fifo::Fifo;
use ipcbox::mq::{self, PosixQueue, SysVQueue};
use ipcbox::queue::channel;
use ipcbox::shm::{self, Array, Segment, Store, SysVSegment, Value};
use ipcbox::socket::{Datagram, Endpoint, Listener, SeqPacketListener};
use ipcbox::sync::{Barrier, Condvar, Event, Mutex, NamedSemaphore, Semaphore, SemaphoreSet};
use ipcbox::{CreationMode, IpcKey, Queue};

const LIMIT: Duration = Duration::from_secs(60);

/// A kind of named object whose creator removes the name on drop.
trait Named {
    type Handle;
    /// The kind's name in messages and in the role's argument.
    const KIND: &'static str;
    /// A name nobody uses: a shared-memory or queue name, a path in `dir`, or a System V key.
    fn fresh(dir: &Path) -> String;
    /// Creates the object exclusively.
    fn create(name: &str) -> io::Result<Self::Handle>;
    /// Drops the handle, keeping the name.
    fn detach(handle: Self::Handle);
    /// Removes the name as another process would (`shm_unlink`, `rm`, `ipcrm`).
    fn remove(name: &str) -> io::Result<()>;
    /// What the name refers to now (an inode number or a System V id); `None` when nothing.
    fn identity(name: &str) -> Option<u64>;
    /// Whether a new object under the name may get the identity of a removed one.
    const REUSES_IDENTITY: bool = false;
}

/// The test, for kind `K`.
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

fn shm_inode(name: &str) -> Option<u64> {
    inode(Path::new("/dev/shm").join(name.trim_start_matches('/')))
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

/// A kind in POSIX shared memory (`/dev/shm/<name>`).
macro_rules! shm_kind {
    ($kind:ident, $handle:ty, $create:expr) => {
        struct $kind;
        impl Named for $kind {
            type Handle = $handle;
            const KIND: &'static str = stringify!($kind);
            fn fresh(_: &Path) -> String {
                util::unique_name("names")
            }
            fn create(name: &str) -> io::Result<$handle> {
                let create: fn(&str) -> io::Result<$handle> = $create;
                create(name)
            }
            fn detach(mut handle: $handle) {
                handle.detach();
            }
            fn remove(name: &str) -> io::Result<()> {
                shm::unlink(name)
            }
            fn identity(name: &str) -> Option<u64> {
                shm_inode(name)
            }
        }
    };
}

shm_kind!(SegmentKind, Segment, |n| Segment::create(n, 4096));
shm_kind!(ValueKind, Value<u32>, |n| Value::create(n, 1));
shm_kind!(ArrayKind, Array<u32>, |n| Array::create(n, 4));
shm_kind!(MutexKind, Mutex, Mutex::create);
shm_kind!(SemaphoreKind, Semaphore, |n| Semaphore::create(n, 1));
shm_kind!(EventKind, Event, Event::create);
shm_kind!(CondvarKind, Condvar, Condvar::create);
shm_kind!(BarrierKind, Barrier, |n| Barrier::create(n, 2));
shm_kind!(QueueKind, Queue<u32>, |n| Queue::create(n, 4));
shm_kind!(ChannelKind, channel::Sender<u32>, |n| {
    channel::Options::new().sender(n)
});

struct StoreKind;
impl Named for StoreKind {
    type Handle = Store;
    const KIND: &'static str = "StoreKind";
    fn fresh(_: &Path) -> String {
        util::unique_name("names")
    }
    fn create(name: &str) -> io::Result<Store> {
        Store::create(name, 4096)
    }
    fn detach(handle: Store) {
        handle.detach();
    }
    fn remove(name: &str) -> io::Result<()> {
        shm::unlink(name)
    }
    fn identity(name: &str) -> Option<u64> {
        shm_inode(name)
    }
}

struct NamedSemaphoreKind;
impl Named for NamedSemaphoreKind {
    type Handle = NamedSemaphore;
    const KIND: &'static str = "NamedSemaphoreKind";
    fn fresh(_: &Path) -> String {
        format!("/{}", util::unique_name("names"))
    }
    fn create(name: &str) -> io::Result<NamedSemaphore> {
        NamedSemaphore::create(name, 1)
    }
    fn detach(mut handle: NamedSemaphore) {
        handle.detach();
    }
    fn remove(name: &str) -> io::Result<()> {
        NamedSemaphore::unlink(name)
    }
    fn identity(name: &str) -> Option<u64> {
        shm_inode(&format!("sem.{}", name.trim_start_matches('/')))
    }
}

struct PosixQueueKind;
impl Named for PosixQueueKind {
    type Handle = PosixQueue;
    const KIND: &'static str = "PosixQueueKind";
    fn fresh(_: &Path) -> String {
        format!("/{}", util::unique_name("names"))
    }
    fn create(name: &str) -> io::Result<PosixQueue> {
        mq::Options::new()
            .capacity(1)
            .max_message_size(16)
            .open(name)
    }
    fn detach(mut handle: PosixQueue) {
        handle.detach();
    }
    fn remove(name: &str) -> io::Result<()> {
        PosixQueue::unlink(name)
    }
    // /dev/mqueue need not be mounted: the queue's own descriptor tells its inode.
    fn identity(name: &str) -> Option<u64> {
        let q = PosixQueue::open(name).ok()?;
        rustix::fs::fstat(q.as_fd()).ok().map(|st| st.st_ino)
    }
}

/// A System V kind: `$open(key)` finds the object, `$remove` removes it, by key.
macro_rules! sysv_kind {
    ($kind:ident, $handle:ty, $create:expr, $remove:expr) => {
        struct $kind;
        impl Named for $kind {
            type Handle = $handle;
            const KIND: &'static str = stringify!($kind);
            fn fresh(_: &Path) -> String {
                fresh_key()
            }
            fn create(name: &str) -> io::Result<$handle> {
                let create: fn(IpcKey) -> io::Result<$handle> = $create;
                create(key(name))
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
        }
    };
}

sysv_kind!(
    SysVSegmentKind,
    SysVSegment,
    |k| SysVSegment::create(k, 4096),
    SysVSegment::remove
);
sysv_kind!(
    SemaphoreSetKind,
    SemaphoreSet,
    |k| SemaphoreSet::create(k, 1),
    |k| SemaphoreSet::open(k)?.remove()
);
sysv_kind!(SysVQueueKind, SysVQueue, SysVQueue::create, |k| {
    SysVQueue::open(k)?.remove()
});

/// A kind with a file in the file system.
macro_rules! file_kind {
    ($kind:ident, $handle:ty, $create:expr, $detach:expr) => {
        struct $kind;
        impl Named for $kind {
            type Handle = $handle;
            const KIND: &'static str = stringify!($kind);
            const REUSES_IDENTITY: bool = true;
            fn fresh(dir: &Path) -> String {
                dir.join("obj").display().to_string()
            }
            fn create(name: &str) -> io::Result<$handle> {
                let create: fn(&str) -> io::Result<$handle> = $create;
                create(name)
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
        }
    };
}

fn endpoint(scheme: &str, path: &str) -> io::Result<Endpoint> {
    format!("{scheme}:{path}").parse()
}

file_kind!(
    FifoKind,
    Fifo,
    |p| Fifo::create(p, CreationMode::CreateExclusive),
    |f| drop(f.detach())
);
file_kind!(
    ListenerKind,
    Listener,
    |p| Listener::bind(&endpoint("unix", p)?),
    |mut l| l.detach()
);
file_kind!(
    SeqPacketListenerKind,
    SeqPacketListener,
    |p| SeqPacketListener::bind(&endpoint("unix-seqpacket", p)?),
    |mut l| l.detach()
);
file_kind!(
    DatagramKind,
    Datagram,
    |p| Datagram::bind(&endpoint("unix-dgram", p)?),
    |mut d| d.detach()
);

/// One test per kind, and the role that takes a name over, by kind.
macro_rules! per_kind {
    ($($test:ident: $kind:ty,)*) => {
        $(
            #[test]
            fn $test() {
                a_name_taken_over_survives_the_creators_drop::<$kind>();
            }
        )*

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
