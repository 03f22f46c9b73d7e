//! The shared-memory object store across real processes: bytes handed over exactly, waiting for
//! seals, deferred deletion, full stores and eviction, dead creators and readers, and segments
//! corrupted by another process.

#![allow(unsafe_code)] // fork and a deliberate write through a read-only view, see SAFETY notes

mod util;

use std::io;
use std::process::{Child, Command};
use std::time::Duration;

use ipcbox::shm::store::{ObjectId, Options, Store, StoreFull};
use ipcbox::shm::{self, Segment};

const LIMIT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(60);

/// Byte offsets of the segment layout (see `shm::store`'s docs), for the corruption tests.
const LOCK_OFFSET: usize = 16;
const CAPACITY_OFFSET: usize = 56;
const TABLE_OFFSET: usize = 128;
const ENTRY_SIZE: usize = 192;
const E_STATE: usize = 0;
const E_OFFSET: usize = 32;
const E_ALLOC_LEN: usize = 40;
const E_SIZE: usize = 48;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A unique store name; removes `/dev/shm/<name>` on drop if a failed test left it.
struct NameGuard(String);

impl NameGuard {
    fn new(tag: &str) -> NameGuard {
        NameGuard(util::unique_name(tag))
    }

    fn path(&self) -> String {
        format!("/dev/shm/{}", self.0)
    }

    fn assert_gone(&self) {
        assert!(
            !std::path::Path::new(&self.path()).exists(),
            "{} was left behind",
            self.path()
        );
    }
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// A child process killed and reaped on drop.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn spawn(test_fn: &str, role: &str, arg: &str) -> ChildGuard {
        ChildGuard::from(util::role_command(test_fn, role, arg))
    }

    fn from(mut cmd: Command) -> ChildGuard {
        ChildGuard(Some(cmd.spawn().expect("spawn role child")))
    }

    /// Waits for the child and asserts it succeeded.
    fn join(mut self) {
        let status = self.0.take().unwrap().wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }

    /// SIGKILLs the child and waits until it has died, without reaping it (`waitid` with
    /// `WNOWAIT`): it stays a zombie until the guard is dropped.
    fn kill_leaving_zombie(&mut self) {
        let child = self.0.as_mut().unwrap();
        child.kill().unwrap();
        // SAFETY: `siginfo_t` is plain data, valid when zeroed; waitid fills it for our child.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `info` is valid for writes.
        let ret = unsafe {
            libc::waitid(
                libc::P_PID,
                child.id(),
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(ret, 0, "waitid: {}", io::Error::last_os_error());
    }

    /// SIGKILLs the child and reaps it.
    fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn id(n: u64) -> ObjectId {
    ObjectId::from_u64(n)
}

fn put(store: &Store, key: u64, data: &[u8]) {
    let mut buf = store.create_object(id(key), data.len()).unwrap();
    buf.copy_from_slice(data);
    buf.seal().unwrap();
}

fn store_full(err: &io::Error) -> &StoreFull {
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    err.get_ref()
        .and_then(|e| e.downcast_ref::<StoreFull>())
        .expect("a StoreFull inside")
}

const DATA: u64 = 1;
const GO: u64 = 2;
const READY: u64 = 3;
const DONE: u64 = 4;
const NEVER: u64 = 99;
const BIG: usize = 8 << 20;

// ---------------------------------------------------------------------------------------------
// Handing bytes over.

/// A child creates, writes and seals a multi-MiB object; the parent, already waiting in
/// `get_timeout` (the child only starts after the parent's "go" object is sealed, and the
/// parent saw the object absent before), gets exactly those bytes.
#[test]
fn sealed_bytes_reach_another_process_exactly() {
    let _dog = util::watchdog("sealed_bytes_reach_another_process_exactly", LIMIT);
    let name = NameGuard::new("store-bytes");
    let store = Store::create(&name.0, BIG + (1 << 20)).unwrap();
    let child = ChildGuard::spawn("role_writer", "store-writer", &name.0);
    assert!(store.try_get(id(DATA)).unwrap().is_none());
    put(&store, GO, b"go");
    let view = store
        .get_timeout(id(DATA), WAIT)
        .unwrap()
        .expect("sealed in time");
    assert_eq!(view.len(), BIG);
    let expected = pattern(42, BIG);
    assert_eq!(fnv(&view), fnv(&expected));
    assert!(view[..] == expected[..], "bytes differ");
    // The typed view sees the same memory.
    let words = view.as_slice_of::<u64>().unwrap();
    assert_eq!(words[0].to_le_bytes(), expected[..8]);
    child.join();
    drop(view);
    drop(store);
    name.assert_gone();
}

#[test]
fn role_writer() {
    let Some(name) = util::role_arg("store-writer") else {
        return;
    };
    let store = Store::open(&name).unwrap();
    // Waits (on the store's own seal futex) for the parent's go.
    assert_eq!(&store.get(id(GO)).unwrap()[..], b"go");
    let mut buf = store.create_object(id(DATA), BIG).unwrap();
    buf.copy_from_slice(&pattern(42, BIG));
    buf.seal().unwrap();
}

/// `get_timeout` times out when nothing is sealed, also when an object is created and aborted.
#[test]
fn get_times_out_without_a_seal() {
    let _dog = util::watchdog("get_times_out_without_a_seal", LIMIT);
    let name = NameGuard::new("store-timeout");
    let store = Store::create(&name.0, 4096).unwrap();
    assert!(store
        .get_timeout(id(1), Duration::from_millis(50))
        .unwrap()
        .is_none());
    let buf = store.create_object(id(1), 10).unwrap();
    assert!(store
        .get_timeout(id(1), Duration::from_millis(20))
        .unwrap()
        .is_none());
    buf.abort().unwrap();
    assert!(store.try_get(id(1)).unwrap().is_none());
    assert_eq!(store.stats().unwrap().used, 0);
    // A second create of a sealed id is refused.
    put(&store, 1, b"x");
    let err = store.create_object(id(1), 5).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    drop(store);
    name.assert_gone();
}

/// A reader cannot write through its view: `&[u8]` by type (see the `compile_fail` doctest on
/// `ObjectRef`), and the MMU: a forked child writing through the view's address dies of SIGSEGV.
#[test]
fn views_are_read_only_mappings() {
    let _dog = util::watchdog("views_are_read_only_mappings", LIMIT);
    let name = NameGuard::new("store-ro");
    let store = Store::create(&name.0, 4096).unwrap();
    put(&store, 1, b"immutable");
    let view = store.try_get(id(1)).unwrap().unwrap();
    let addr = view.as_ptr() as *mut u8;
    // SAFETY: the child only performs one volatile store and `_exit`s (async-signal-safe);
    // the parent only waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: the experiment: the address is mapped PROT_READ, so this store faults and
        // the kernel kills the child before any memory changes; should it not fault, the child
        // exits with 0 and the parent's assertion fails. `_exit` is async-signal-safe.
        unsafe {
            addr.write_volatile(b'X');
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
        "child was not stopped by SIGSEGV (status {status:#x})"
    );
    assert_eq!(&view[..], b"immutable");
}

// ---------------------------------------------------------------------------------------------
// Deletion, listing, full stores, eviction.

/// Deleting an object a child holds hides it at once but keeps its space until the child
/// releases its view; then the space is reused.
#[test]
fn delete_is_deferred_while_another_process_holds_a_view() {
    let _dog = util::watchdog("delete_is_deferred_while_held", LIMIT);
    let name = NameGuard::new("store-delete");
    let mib = 1 << 20;
    let store = Store::create(&name.0, mib + 4096).unwrap();
    put(&store, DATA, &pattern(7, mib));
    let child = ChildGuard::spawn("role_holder", "store-holder", &name.0);
    drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .find(|o| o.id == id(DATA))
            .unwrap()
            .holds,
        1
    );
    store.delete(id(DATA)).unwrap();
    assert!(!store.contains(id(DATA)).unwrap());
    assert!(store.try_get(id(DATA)).unwrap().is_none());
    let stats = store.stats().unwrap();
    assert_eq!(stats.deleting, 1);
    assert!(stats.used >= mib);
    let err = store.create_object(id(5), mib).unwrap_err();
    assert!(store_full(&err).free < mib, "{err}");
    put(&store, DONE, b"done");
    child.join();
    let stats = store.stats().unwrap();
    assert_eq!((stats.deleting, stats.used), (0, 128), "{stats:?}");
    put(&store, 5, &pattern(8, mib));
    drop(store);
    name.assert_gone();
}

#[test]
fn role_holder() {
    let Some(name) = util::role_arg("store-holder") else {
        return;
    };
    let store = Store::open(&name).unwrap();
    let view = store.try_get(id(DATA)).unwrap().expect("object sealed");
    put(&store, READY, b"r");
    drop(store.get(id(DONE)).unwrap());
    // The object is deleted meanwhile; the view still reads the original bytes.
    assert!(view[..] == pattern(7, 1 << 20)[..]);
    view.release().unwrap();
}

/// `contains` and `list` in another process see exactly the sealed objects.
#[test]
fn contains_and_list_across_processes() {
    let _dog = util::watchdog("contains_and_list_across_processes", LIMIT);
    let name = NameGuard::new("store-list");
    let store = Store::create(&name.0, 1 << 16).unwrap();
    put(&store, 10, &[1; 100]);
    put(&store, 11, &[2; 3000]);
    let _unsealed = store.create_object(id(12), 50).unwrap();
    ChildGuard::spawn("role_lister", "store-lister", &name.0).join();
    drop((_unsealed, store));
    name.assert_gone();
}

#[test]
fn role_lister() {
    let Some(name) = util::role_arg("store-lister") else {
        return;
    };
    let store = Store::open(&name).unwrap();
    let mut list: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o.size))
        .collect();
    list.sort();
    assert_eq!(list, vec![(id(10), 100), (id(11), 3000)]);
    assert!(store.contains(id(10)).unwrap());
    assert!(
        !store.contains(id(12)).unwrap(),
        "unsealed objects are not contained"
    );
    assert!(!store.contains(id(13)).unwrap());
    let err = store.delete(id(12)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "{err}");
    let err = store.delete(id(13)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    let stats = store.stats().unwrap();
    assert_eq!((stats.sealed, stats.creating), (2, 1));
}

/// A full data area and a full table are `StorageFull` errors naming the sizes.
#[test]
fn full_store_is_a_clear_error() {
    let _dog = util::watchdog("full_store_is_a_clear_error", LIMIT);
    let name = NameGuard::new("store-full");
    let store = Options::new()
        .capacity(4096)
        .max_objects(3)
        .open(&name.0)
        .unwrap();
    put(&store, 1, &[0; 3000]);
    let err = store.create_object(id(2), 2000).unwrap_err();
    let full = store_full(&err);
    assert_eq!(
        (full.requested, full.needed, full.capacity),
        (2000, 2048, 4096)
    );
    assert_eq!(
        (full.free, full.largest_free, full.table_full),
        (1088, 1088, false)
    );
    let msg = err.to_string();
    assert!(msg.contains("2000") && msg.contains("1088"), "{msg}");
    let err = store.create_object(id(3), 1 << 20).unwrap_err();
    assert_eq!(store_full(&err).requested, 1 << 20);
    put(&store, 2, &[0; 10]);
    put(&store, 3, &[0; 10]);
    let err = store.create_object(id(4), 10).unwrap_err();
    assert!(store_full(&err).table_full, "{err}");
    assert!(err.to_string().contains("table"), "{err}");
    // Deleting makes room again.
    store.delete(id(1)).unwrap();
    put(&store, 4, &[0; 2000]);
    drop(store);
    name.assert_gone();
}

/// With eviction on, the least recently sealed object nobody holds makes room; held objects
/// (here: held by another process) are never evicted.
#[test]
fn eviction_takes_oldest_unheld_objects() {
    let _dog = util::watchdog("eviction_takes_oldest_unheld_objects", LIMIT);
    let name = NameGuard::new("store-evict");
    let store = Options::new()
        .capacity(4096)
        .evict(true)
        .open(&name.0)
        .unwrap();
    put(&store, DATA, &[1; 1000]); // held by the child below
    put(&store, 20, &[2; 1000]);
    let child = ChildGuard::spawn("role_holder_evict", "store-holder-evict", &name.0);
    drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
    put(&store, 21, &[3; 1000]);
    // 4096 = DATA 1024 + 20 1024 + READY 64 + 21 1024 + 960 free: 2000 bytes need evictions.
    put(&store, 22, &[4; 2000]);
    assert!(
        store.contains(id(DATA)).unwrap(),
        "a held object was evicted"
    );
    assert!(
        !store.contains(id(20)).unwrap(),
        "the oldest unheld object stayed"
    );
    assert!(store.contains(id(22)).unwrap());
    // Nothing else can go: DATA is held and everything else is needed.
    let err = store.create_object(id(23), 4000).unwrap_err();
    store_full(&err);
    assert!(store.contains(id(DATA)).unwrap());
    put(&store, DONE, b"d");
    child.join();
    drop(store);
    name.assert_gone();
}

#[test]
fn role_holder_evict() {
    let Some(name) = util::role_arg("store-holder-evict") else {
        return;
    };
    let store = Store::open(&name).unwrap();
    let view = store.try_get(id(DATA)).unwrap().expect("sealed");
    put(&store, READY, b"r");
    drop(store.get(id(DONE)).unwrap());
    assert_eq!(&view[..], &[1; 1000][..]);
}

// ---------------------------------------------------------------------------------------------
// Dead processes.

/// A creator SIGKILLed with an unsealed object: the object never becomes visible and its
/// space is reclaimed as soon as a create needs it (or on `reclaim`).
#[test]
fn creator_killed_mid_create_is_reclaimed() {
    let _dog = util::watchdog("creator_killed_mid_create_is_reclaimed", LIMIT);
    let name = NameGuard::new("store-dead-creator");
    let mib = 1 << 20;
    let store = Store::create(&name.0, mib + 4096).unwrap();
    let child = ChildGuard::spawn("role_dying_creator", "store-dying-creator", &name.0);
    drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
    let stats = store.stats().unwrap();
    assert_eq!(stats.creating, 1);
    child.kill();
    assert!(store.try_get(id(DATA)).unwrap().is_none());
    assert_eq!(
        store.stats().unwrap().creating,
        0,
        "get reclaimed the orphan"
    );
    // Once more, reclaimed by a create that needs the space.
    store.delete(id(READY)).unwrap();
    let child = ChildGuard::spawn("role_dying_creator", "store-dying-creator", &name.0);
    drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
    child.kill();
    put(&store, 7, &pattern(1, mib));
    assert_eq!(store.stats().unwrap().creating, 0);
    drop(store);
    name.assert_gone();
}

#[test]
fn role_dying_creator() {
    let Some(name) = util::role_arg("store-dying-creator") else {
        return;
    };
    let store = Store::open(&name).unwrap();
    let mut buf = store.create_object(id(DATA), 1 << 20).unwrap();
    buf[..4].copy_from_slice(b"half");
    put(&store, READY, b"r");
    // Sleep on the store's futex until killed.
    let _ = store.get(id(NEVER));
    unreachable!("NEVER is never sealed");
}

/// A reader SIGKILLed holding a view: its hold is dropped when the object is deleted (or by
/// `reclaim`), so the space is freed at once.
#[test]
fn reader_killed_holding_a_view_loses_its_hold() {
    let _dog = util::watchdog("reader_killed_holding_a_view", LIMIT);
    let name = NameGuard::new("store-dead-reader");
    let store = Store::create(&name.0, 1 << 16).unwrap();
    put(&store, DATA, &[5; 5000]);
    let mut child = ChildGuard::spawn("role_dying_reader", "store-dying-reader", &name.0);
    drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
    let holds = |s: &Store| {
        s.list()
            .unwrap()
            .iter()
            .find(|o| o.id == id(DATA))
            .unwrap()
            .holds
    };
    assert_eq!(holds(&store), 1);
    // Killed but not reaped yet: a zombie holds nothing either.
    child.kill_leaving_zombie();
    assert_eq!(holds(&store), 1, "the record stays until something looks");
    assert_eq!(store.reclaim().unwrap(), 0);
    assert_eq!(holds(&store), 0, "reclaim dropped the zombie reader's hold");
    drop(child); // reaps it
                 // And with delete: a second dying reader.
    store.delete(id(READY)).unwrap();
    let child = ChildGuard::spawn("role_dying_reader", "store-dying-reader", &name.0);
    drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
    child.kill();
    store.delete(id(DATA)).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.deleting, stats.sealed), (0, 1), "{stats:?}");
    drop(store);
    name.assert_gone();
}

#[test]
fn role_dying_reader() {
    let Some(name) = util::role_arg("store-dying-reader") else {
        return;
    };
    let store = Store::open(&name).unwrap();
    let _view = store.try_get(id(DATA)).unwrap().expect("sealed");
    put(&store, READY, b"r");
    let _ = store.get(id(NEVER));
    unreachable!("NEVER is never sealed");
}

/// A process that died holding the metadata lock (simulated: a child writes its pid into the
/// lock word through a raw segment and exits) does not wedge the store: the next operation
/// takes the lock over.
#[test]
fn lock_of_a_dead_process_is_taken_over() {
    let _dog = util::watchdog("lock_of_a_dead_process_is_taken_over", LIMIT);
    let name = NameGuard::new("store-dead-lock");
    let store = Store::create(&name.0, 4096).unwrap();
    put(&store, 1, b"one");
    ChildGuard::spawn("role_lock_and_die", "store-lock-and-die", &name.0).join();
    let raw = Segment::open(&name.0).unwrap();
    let mut word = [0; 4];
    raw.read_at(LOCK_OFFSET, &mut word).unwrap();
    assert_ne!(u32::from_ne_bytes(word), 0, "the child left the lock held");
    assert_eq!(&store.try_get(id(1)).unwrap().unwrap()[..], b"one");
    put(&store, 2, b"two");
    drop((raw, store));
    name.assert_gone();
}

#[test]
fn role_lock_and_die() {
    let Some(name) = util::role_arg("store-lock-and-die") else {
        return;
    };
    let raw = Segment::open(&name).unwrap();
    raw.write_at(LOCK_OFFSET, &std::process::id().to_ne_bytes())
        .unwrap();
}

/// How long the lock's holder keeps it before the test lets it go: far less than the lock's
/// 10 s patience, so a drop that waits for the lock is still waiting then.
const HOLD: Duration = Duration::from_secs(5);

/// Dropping a view or an unsealed buffer while a live process holds the store's lock returns
/// without waiting for it; the hold is released, and the buffer's space freed, at this
/// process's next operation on the store.
#[test]
fn drops_do_not_wait_for_a_live_lock_holder() {
    use std::io::BufRead;
    let _dog = util::watchdog("drops_do_not_wait_for_a_live_lock_holder", LIMIT);
    let name = NameGuard::new("store-drop-held");
    let store = Store::create(&name.0, 4096).unwrap();
    put(&store, 1, b"one");
    let view = store.try_get(id(1)).unwrap().expect("sealed");
    let buf = store.create_object(id(2), 64).unwrap();
    let mut cmd = util::role_command("role_hold_lock", "store-hold-lock", &name.0);
    cmd.stdout(std::process::Stdio::piped());
    let mut holder = ChildGuard::from(cmd);
    let out = holder.0.as_mut().unwrap().stdout.take().unwrap();
    let holding = std::io::BufReader::new(out)
        .lines()
        .any(|l| l.is_ok_and(|l| l == "holding"));
    assert!(holding, "the holder took the lock");

    // The holder is let go after HOLD, unless both drops have returned by then.
    let (dropped, dropped_rx) = std::sync::mpsc::channel::<()>();
    let letting_go = std::thread::spawn(move || {
        let let_go_first = dropped_rx.recv_timeout(HOLD).is_err();
        holder.kill();
        let_go_first
    });
    drop(view);
    drop(buf);
    let _ = dropped.send(());
    assert!(
        !letting_go.join().unwrap(),
        "a drop waited for the live process holding the store's lock"
    );

    // The holder is dead now: the next operation takes the lock over and does what the drops
    // left.
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].holds, 0, "the view's hold is released");
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.creating, stats.used),
        (0, 64),
        "the buffer is freed: {stats:?}"
    );
    drop(store);
    name.assert_gone();
}

/// Takes the store's lock (its PID in the lock word) and keeps it until killed.
#[test]
fn role_hold_lock() {
    let Some(name) = util::role_arg("store-hold-lock") else {
        return;
    };
    let raw = Segment::open(&name).unwrap();
    raw.write_at(LOCK_OFFSET, &std::process::id().to_ne_bytes())
        .unwrap();
    println!("holding");
    loop {
        std::thread::park();
    }
}

// ---------------------------------------------------------------------------------------------
// Corruption by another process.

/// Every operation of `store` returns an error (never panics or crashes).
fn assert_all_fail(store: &Store, what: &str) {
    let results: Vec<(&str, io::Result<()>)> = vec![
        ("create", store.create_object(id(100), 10).map(drop)),
        ("try_get", store.try_get(id(1)).map(drop)),
        (
            "get_timeout",
            store.get_timeout(id(1), Duration::from_millis(1)).map(drop),
        ),
        ("contains", store.contains(id(1)).map(drop)),
        ("list", store.list().map(drop)),
        ("stats", store.stats().map(drop)),
        ("delete", store.delete(id(1))),
        ("reclaim", store.reclaim().map(drop)),
    ];
    for (op, r) in results {
        assert!(r.is_err(), "{what}: {op} succeeded on a corrupted store");
    }
}

/// A child overwrites the header with random bytes: every operation and every new `open`
/// fails cleanly, and a view held before stays readable (its mapping is ours).
#[test]
fn random_header_bytes_give_errors() {
    let _dog = util::watchdog("random_header_bytes_give_errors", LIMIT);
    for seed in 1..=8u64 {
        let name = NameGuard::new("store-random-header");
        let store = Store::create(&name.0, 1 << 16).unwrap();
        put(&store, 1, &[9; 1000]);
        let view = store.try_get(id(1)).unwrap().unwrap();
        ChildGuard::spawn(
            "role_corrupter",
            "store-corrupter",
            &format!("{}:header:{seed}", name.0),
        )
        .join();
        assert_all_fail(&store, &format!("seed {seed}"));
        let err = Store::open(&name.0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert_eq!(&view[..], &[9; 1000][..]);
        drop((view, store));
        name.assert_gone();
    }
}

/// A child overwrites the object table with random bytes (header intact): operations that
/// read the table fail, none crashes.
#[test]
fn random_table_bytes_give_errors() {
    let _dog = util::watchdog("random_table_bytes_give_errors", LIMIT);
    for seed in 1..=8u64 {
        let name = NameGuard::new("store-random-table");
        let store = Options::new()
            .capacity(1 << 16)
            .max_objects(16)
            .open(&name.0)
            .unwrap();
        put(&store, 1, &[9; 1000]);
        ChildGuard::spawn(
            "role_corrupter",
            "store-corrupter",
            &format!("{}:table:{seed}", name.0),
        )
        .join();
        for r in [
            store.create_object(id(100), 10).map(drop),
            store.list().map(drop),
            store.stats().map(drop),
            store.reclaim().map(drop),
        ] {
            assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidData);
        }
        // Lookups may fail or find nothing, but never crash.
        let _ = store.try_get(id(1));
        let _ = store.contains(id(1));
        let _ = store.delete(id(1));
        drop(store);
        name.assert_gone();
    }
}

#[test]
fn role_corrupter() {
    let Some(arg) = util::role_arg("store-corrupter") else {
        return;
    };
    let mut parts = arg.split(':');
    let (name, part, seed) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    let raw = Segment::open(name).unwrap();
    let (start, len) = match part {
        "header" => (0, TABLE_OFFSET),
        _ => (TABLE_OFFSET, 16 * ENTRY_SIZE),
    };
    raw.write_at(start, &pattern(seed, len)).unwrap();
}

/// Targeted corruptions of the one used table entry: each is an `InvalidData` error naming
/// what is wrong, and repairing the bytes makes the store work again.
#[test]
fn targeted_corruptions_are_detected() {
    let _dog = util::watchdog("targeted_corruptions_are_detected", LIMIT);
    let name = NameGuard::new("store-targeted");
    let store = Options::new()
        .capacity(4096)
        .max_objects(8)
        .open(&name.0)
        .unwrap();
    put(&store, 1, &[3; 100]);
    let raw = Segment::open(&name.0).unwrap();
    let read_u32 = |off: usize| {
        let mut b = [0; 4];
        raw.read_at(off, &mut b).unwrap();
        u32::from_ne_bytes(b)
    };
    let entry = (0..8)
        .map(|i| TABLE_OFFSET + i * ENTRY_SIZE)
        .find(|&e| read_u32(e + E_STATE) == 2)
        .expect("one sealed entry");
    let mut saved = vec![0; ENTRY_SIZE];
    raw.read_at(entry, &mut saved).unwrap();
    let cases: [(&str, usize, u64, &str); 5] = [
        (
            "offset past the end",
            E_OFFSET,
            8192,
            "outside the data area",
        ),
        (
            "length overflowing",
            E_ALLOC_LEN,
            u64::MAX - 63,
            "outside the data area",
        ),
        ("size beyond allocation", E_SIZE, 1 << 40, "size larger"),
        ("misaligned offset", E_OFFSET, 3, "alignment"),
        ("zero length", E_ALLOC_LEN, 0, "alignment"),
    ];
    for (what, field, value, expect) in cases {
        raw.write_at(entry + field, &value.to_ne_bytes()).unwrap();
        let err = store.try_get(id(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{what}: {err}");
        assert!(err.to_string().contains(expect), "{what}: {err}");
        assert_eq!(
            store.stats().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        raw.write_at(entry, &saved).unwrap();
        assert_eq!(&store.try_get(id(1)).unwrap().unwrap()[..], &[3; 100][..]);
    }
    // An invalid state.
    raw.write_at(entry + E_STATE, &7u32.to_ne_bytes()).unwrap();
    let err = store.list().unwrap_err();
    assert!(err.to_string().contains("invalid state 7"), "{err}");
    raw.write_at(entry, &saved).unwrap();
    // Two entries claiming the same space.
    let other = (0..8)
        .map(|i| TABLE_OFFSET + i * ENTRY_SIZE)
        .find(|&e| e != entry)
        .unwrap();
    raw.write_at(other, &saved).unwrap();
    raw.write_at(other + 8, &[0xee; 20]).unwrap(); // another id
    let err = store.create_object(id(2), 10).unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    raw.write_at(other, &[0; ENTRY_SIZE]).unwrap();
    // Header geometry changed under a live handle.
    let mut cap = [0; 8];
    raw.read_at(CAPACITY_OFFSET, &mut cap).unwrap();
    raw.write_at(CAPACITY_OFFSET, &(1u64 << 50).to_ne_bytes())
        .unwrap();
    assert_eq!(
        store.contains(id(1)).unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
    raw.write_at(CAPACITY_OFFSET, &cap).unwrap();
    assert!(store.contains(id(1)).unwrap());
    drop((raw, store));
    name.assert_gone();
}

/// Opening something that is not a store, and invalid ids and options, are clear errors.
#[test]
fn invalid_input_is_rejected() {
    let name = NameGuard::new("store-invalid");
    let seg = Segment::create(&name.0, 8192).unwrap();
    let err = Store::open(&name.0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("magic"), "{err}");
    drop(seg);
    let err = Store::open(&name.0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    let err = Store::create(&name.0, 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = Options::new()
        .capacity(4096)
        .max_objects(0)
        .open(&name.0)
        .unwrap_err();
    assert!(err.to_string().contains("max_objects 0"), "{err}");
    let err = ObjectId::from_slice(b"short").unwrap_err();
    assert!(err.to_string().contains("5 bytes"), "{err}");
    let err = "zz".parse::<ObjectId>().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = Store::open("a/b").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    name.assert_gone();
    // The raw segment name helpers agree on the name the store uses.
    let store = Store::create(&name.0, 4096).unwrap();
    assert_eq!(store.name(), format!("/{}", name.0));
    store.detach();
    drop(store);
    shm::unlink(&name.0).unwrap();
    name.assert_gone();
}

// ---------------------------------------------------------------------------------------------
// Many processes at once.

/// Four processes create, seal, get, check and delete objects at the same time (and read each
/// other's): every byte read is what its creator wrote and the table stays consistent.
#[test]
fn concurrent_processes_keep_the_table_consistent() {
    let _dog = util::watchdog("concurrent_processes_keep_the_table_consistent", LIMIT);
    let name = NameGuard::new("store-concurrent");
    let store = Options::new()
        .capacity(1 << 20)
        .max_objects(64)
        .open(&name.0)
        .unwrap();
    let children: Vec<_> = (1..=4)
        .map(|k| {
            ChildGuard::spawn(
                "role_hammer",
                "store-hammer",
                &format!("{}:{k}:300", name.0),
            )
        })
        .collect();
    for child in children {
        child.join();
    }
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.creating, stats.deleting, stats.used),
        (0, 0, 0),
        "{stats:?}"
    );
    drop(store);
    name.assert_gone();
}

/// A process SIGKILLed at an arbitrary point of its work (possibly holding the lock, creating
/// an object or holding views) never wedges the store: the next operations go on, and after
/// `reclaim` nothing of it is left but objects it had sealed.
#[test]
fn process_killed_at_any_point_leaves_a_usable_store() {
    let _dog = util::watchdog("process_killed_at_any_point", LIMIT);
    let name = NameGuard::new("store-kill-any");
    let store = Options::new()
        .capacity(1 << 20)
        .max_objects(64)
        .open(&name.0)
        .unwrap();
    for round in 0..6u64 {
        let _ = store.delete(id(READY));
        let child = ChildGuard::spawn(
            "role_hammer",
            "store-hammer",
            &format!("{}:{}:0", name.0, round + 10),
        );
        drop(store.get_timeout(id(READY), WAIT).unwrap().expect("ready"));
        // Let the child run a varying number of its own operations before the kill.
        for _ in 0..round * 3 {
            let _ = store.contains(id(NEVER));
        }
        child.kill();
        store.reclaim().unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.creating, stats.deleting),
            (0, 0),
            "round {round}: {stats:?}"
        );
        for obj in store.list().unwrap() {
            assert_eq!(obj.holds, 0, "round {round}: {obj:?} still held");
        }
        put(&store, 1000 + round, &pattern(round, 5000));
        let view = store.try_get(id(1000 + round)).unwrap().unwrap();
        assert!(view[..] == pattern(round, 5000)[..]);
    }
    drop(store);
    name.assert_gone();
}

/// `name:k:iterations` (0 = until killed, announcing READY after the first round): creates,
/// fills, seals, gets, checks and deletes objects with ids `k << 32 | i`, also reading the
/// objects other hammers have sealed meanwhile.
#[test]
fn role_hammer() {
    let Some(arg) = util::role_arg("store-hammer") else {
        return;
    };
    let mut parts = arg.split(':');
    let name = parts.next().unwrap();
    let k: u64 = parts.next().unwrap().parse().unwrap();
    let rounds: u64 = parts.next().unwrap().parse().unwrap();
    let store = Store::open(name).unwrap();
    let mut i = 0u64;
    loop {
        let key = k << 32 | i;
        let len = 100 + (i as usize * 997) % 20_000;
        let data = pattern(key, len);
        let mut buf = store.create_object(id(key), len).unwrap();
        buf.copy_from_slice(&data);
        buf.seal().unwrap();
        let view = store.get_timeout(id(key), WAIT).unwrap().unwrap();
        assert!(view[..] == data[..], "object {key:#x} changed");
        // Someone else's object, if any is there: its bytes are its creator's pattern.
        let others = store.list().unwrap();
        if let Some(other) = others.iter().find(|o| o.id != id(key)) {
            if let Some(v) = store.try_get(other.id).unwrap() {
                let n = u64::from_le_bytes(other.id.as_bytes()[..8].try_into().unwrap());
                if n >> 32 != 0 {
                    assert!(v[..] == pattern(n, v.len())[..], "object {n:#x} corrupted");
                }
            }
        }
        drop(view);
        store.delete(id(key)).unwrap();
        if i == 0 && rounds == 0 {
            put(&store, READY, b"r");
        }
        i += 1;
        if rounds != 0 && i == rounds {
            return;
        }
    }
}
