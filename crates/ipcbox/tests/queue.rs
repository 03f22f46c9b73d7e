//! Integration tests of `ipcbox::queue`: the MPMC `Queue` and the one-to-one channel, across
//! real processes (fork and re-run roles), including a SIGKILL chaos test.

#![allow(unsafe_code)] // fork, waitpid, kill and an anonymous mmap for test bookkeeping

mod util;

#[path = "queue/batches.rs"]
mod batches;
#[path = "queue/chaos.rs"]
mod chaos;
#[path = "queue/deadlines.rs"]
mod deadlines;
#[path = "queue/inplace.rs"]
mod inplace;

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::SeqCst};
use std::time::{Duration, Instant};

use ipcbox::queue::{self, channel, PutManyError, RecvError, SendError, WaitPolicy};
use ipcbox::{CreationMode, Queue};
use serde::{Deserialize, Serialize};

/// Child processes forked by a test; killed and reaped on drop (also when the test fails).
struct Children(Vec<i32>);

impl Children {
    fn new() -> Children {
        Children(Vec::new())
    }

    /// Forks a child that runs `f` and exits with its return value (never returns to the
    /// test harness, never runs destructors or atexit handlers).
    fn fork(&mut self, f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `f` (queue operations, allocation: glibc's malloc is
        // fork-safe) and then `_exit`s, never returning into the multi-threaded harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: terminates this child at once, as intended.
            unsafe { libc::_exit(code) };
        }
        self.0.push(pid);
        pid
    }

    /// Waits for `pid` and returns its raw wait status.
    fn wait(&mut self, pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
        self.0.retain(|&p| p != pid);
        status
    }

    /// Waits for `pid` and asserts it exited with code 0.
    fn join(&mut self, pid: i32) {
        let status = self.wait(pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {pid} failed: status {status:#x}"
        );
    }

    fn kill(&self, pid: i32) {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: as in `kill` and `wait`.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Anonymous shared memory for test bookkeeping (counters the children write), as atomics.
struct Board {
    ptr: *mut u8,
    len: usize,
}

impl Board {
    fn new(len: usize) -> Board {
        // SAFETY: a fresh anonymous shared mapping; checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap: {}",
            io::Error::last_os_error()
        );
        Board {
            ptr: ptr.cast(),
            len,
        }
    }

    fn u64(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= self.len);
        // SAFETY: in bounds (asserted), 8-aligned (page-aligned base), zero-initialised,
        // only accessed atomically, lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.ptr.add(i * 8).cast()) }
    }

    fn u8(&self, at: usize) -> &AtomicU8 {
        assert!(at < self.len);
        // SAFETY: in bounds (asserted), only accessed atomically, lives as long as `self`.
        unsafe { AtomicU8::from_ptr(self.ptr.add(at)) }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range mapped in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Item {
    producer: u32,
    seq: u32,
}

/// A tiny deterministic generator for kill timing and victims (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A named queue's segment has the size `Options::byte_capacity` documents: the byte
/// capacity, one more largest message, 16 bytes per message and a 4096-byte header.
#[test]
fn a_queue_takes_the_memory_its_options_document() {
    let align8 = |n: usize| (n + 7) & !7;
    for (capacity, bytes, max) in [
        (10, 10_000, None),
        (64, 1 << 20, Some(1000)),
        (3, 5, Some(3)),
    ] {
        let name = util::unique_name("queue-footprint");
        let mut opts = queue::Options::new();
        opts.capacity(capacity).byte_capacity(bytes);
        if let Some(max) = max {
            opts.max_message_size(max);
        }
        let q: Queue<u8> = opts.named(&name).unwrap();
        let size = std::fs::metadata(format!("/dev/shm/{name}")).unwrap().len() as usize;
        let max = max.unwrap_or(bytes);
        assert_eq!(q.max_message_size(), max);
        assert_eq!(
            size,
            4096 + align8(bytes) + align8(max) + 16 * capacity + 16,
            "capacity {capacity}, byte capacity {bytes}, max message {max}"
        );
    }
}

#[test]
fn fifo_per_producer_with_three_producers_and_two_consumers() {
    let _wd = util::watchdog("fifo_per_producer", Duration::from_secs(60));
    const N: u32 = 2000;
    let q: Queue<Item> = Queue::new(8).unwrap();
    let results: Queue<Vec<Item>> = queue::Options::new()
        .capacity(4)
        .byte_capacity(1 << 20)
        .anonymous()
        .unwrap();
    let mut kids = Children::new();
    let consumers: Vec<i32> = (0..2)
        .map(|_| {
            kids.fork(|| {
                let mut got = Vec::new();
                loop {
                    match q.get() {
                        Ok(item) => got.push(item),
                        Err(RecvError::Disconnected) => break,
                        Err(RecvError::Failed(_)) => return 2,
                    }
                }
                match results.put(&got) {
                    Ok(()) => 0,
                    Err(_) => 3,
                }
            })
        })
        .collect();
    let producers: Vec<i32> = (0..3)
        .map(|p| {
            let q = &q;
            kids.fork(move || {
                for seq in 0..N {
                    if q.put(&Item { producer: p, seq }).is_err() {
                        return 2;
                    }
                }
                0
            })
        })
        .collect();
    for pid in producers {
        kids.join(pid);
    }
    q.close().unwrap();
    let mut all = Vec::new();
    for _ in 0..2 {
        let got = results
            .get_timeout(Duration::from_secs(30))
            .unwrap()
            .expect("a consumer's results within the watchdog");
        for p in 0..3 {
            let seqs: Vec<u32> = got
                .iter()
                .filter(|i| i.producer == p)
                .map(|i| i.seq)
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "producer {p}'s messages out of order at one consumer"
            );
        }
        all.extend(got);
    }
    for pid in consumers {
        kids.join(pid);
    }
    all.sort_by_key(|i| (i.producer, i.seq));
    let expected: Vec<Item> = (0..3)
        .flat_map(|producer| (0..N).map(move |seq| Item { producer, seq }))
        .collect();
    assert_eq!(all.len(), expected.len(), "lost or duplicated messages");
    assert!(all == expected, "the set of received messages differs");
}

#[test]
fn blocked_producer_sees_dead_consumers_as_disconnected() {
    let _wd = util::watchdog("blocked_producer", Duration::from_secs(30));
    let q: Queue<u32> = Queue::new(1).unwrap();
    let mut kids = Children::new();
    let child = kids.fork(|| match q.get() {
        Ok(1) => 0,
        _ => 1,
    });
    q.put(&1).unwrap();
    kids.join(child);
    q.put(&2).unwrap();
    // The only other process that used the queue is gone: a put waiting for room is told so
    // instead of hanging (Python's multiprocessing.Queue would hang here).
    match q.put_timeout(&3, Duration::from_secs(20)) {
        Err(SendError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(q.get().unwrap(), 2);
}

#[test]
fn spin_then_park_policy_moves_messages_between_processes() {
    let _wd = util::watchdog("spin_policy", Duration::from_secs(60));
    let q: Queue<u64> = queue::Options::new()
        .capacity(4)
        .wait_policy(WaitPolicy::SpinThenPark(Duration::from_micros(20)))
        .anonymous()
        .unwrap();
    let mut kids = Children::new();
    let child = kids.fork(|| {
        for i in 0..20_000u64 {
            if q.put(&i).is_err() {
                return 1;
            }
        }
        0
    });
    for i in 0..20_000u64 {
        assert_eq!(q.get().unwrap(), i);
    }
    kids.join(child);
}

#[test]
fn full_and_empty_and_timeouts_are_not_now_in_ok() {
    let _wd = util::watchdog("full_and_empty", Duration::from_secs(30));
    let q: Queue<String> = Queue::new(2).unwrap();
    assert!(q.is_empty());
    assert_eq!(q.try_get().unwrap(), None, "empty");
    assert_eq!(q.get_timeout(Duration::from_millis(20)).unwrap(), None);
    q.put(&"a".into()).unwrap();
    assert!(q.try_put(&"b".into()).unwrap());
    assert!(q.is_full());
    assert_eq!(q.len(), 2);
    assert!(!q.try_put(&"c".into()).unwrap(), "full");
    assert!(!q
        .put_timeout(&"d".into(), Duration::from_millis(20))
        .unwrap());
    assert_eq!(q.get().unwrap(), "a");
    assert_eq!(
        q.get_timeout(Duration::from_secs(1)).unwrap().as_deref(),
        Some("b")
    );

    // The byte bound refuses a message the count bound would take.
    let b = queue::Options::new()
        .capacity(10)
        .byte_capacity(100)
        .anonymous::<()>()
        .unwrap();
    let bq = b.as_bytes();
    assert!(bq.try_put(&[1; 60]).unwrap());
    assert!(!bq.try_put(&[2; 60]).unwrap(), "full by bytes");
    assert_eq!(b.used_bytes(), 60);
    assert_eq!(bq.try_get().unwrap(), Some(vec![1; 60]));
    assert!(bq.try_put(&[2; 60]).unwrap());
}

#[test]
fn close_lets_consumers_drain_then_disconnects() {
    let _wd = util::watchdog("close", Duration::from_secs(30));
    let q: Queue<u32> = Queue::new(8).unwrap();
    let mut kids = Children::new();
    // A consumer that blocks before anything is put and expects 1, 2, then Disconnected.
    let child = kids.fork(|| {
        let a = q.get();
        let b = q.get();
        let c = q.get();
        match (a, b, c) {
            (Ok(1), Ok(2), Err(RecvError::Disconnected)) => 0,
            _ => 1,
        }
    });
    q.put(&1).unwrap();
    q.put(&2).unwrap();
    q.close().unwrap();
    assert!(q.is_closed());
    match q.put(&3) {
        Err(SendError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    match q.try_put(&4) {
        Err(SendError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    kids.join(child);
    match q.try_get() {
        Err(RecvError::Disconnected) => {}
        other => panic!("expected Disconnected after drain, got {other:?}"),
    }
}

#[test]
fn joinable_task_done_and_join() {
    let _wd = util::watchdog("joinable", Duration::from_secs(30));
    let q: Queue<u32> = Queue::new(8).unwrap();
    let err = q.task_done().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    for i in 0..3 {
        q.put(&i).unwrap();
    }
    assert!(!q.join_timeout(Duration::from_millis(20)).unwrap());
    let mut kids = Children::new();
    let child = kids.fork(|| {
        for _ in 0..3 {
            if q.get().is_err() || q.task_done().is_err() {
                return 1;
            }
        }
        0
    });
    q.join().unwrap();
    kids.join(child);
    let err = q.task_done().unwrap_err();
    assert!(err.to_string().contains("too many"), "{err}");
    assert!(q.join_timeout(Duration::ZERO).unwrap());
}

#[test]
fn role_named_producer() {
    let Some(name) = util::role_arg("named_producer") else {
        return;
    };
    let q: Queue<String> = Queue::open(&name).expect("open queue by name");
    for i in 0..100 {
        q.put(&format!("message {i}")).expect("put");
    }
}

#[test]
fn opened_by_name_from_another_process() {
    let _wd = util::watchdog("opened_by_name", Duration::from_secs(60));
    let name = util::unique_name("queue-named");
    {
        let q: Queue<String> = Queue::create(&name, 4).unwrap();
        assert!(util::shm_exists(&name));
        let mut child = util::role_command("role_named_producer", "named_producer", &name)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for i in 0..100 {
            assert_eq!(
                q.get_timeout(Duration::from_secs(20)).unwrap(),
                Some(format!("message {i}"))
            );
        }
        assert!(child.wait().unwrap().success());
        // The producer is gone and the queue empty: a waiting get says so.
        match q.get_timeout(Duration::from_secs(5)) {
            Err(RecvError::Disconnected) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    assert!(
        !util::shm_exists(&name),
        "creator left /dev/shm/{name} behind"
    );
}

#[test]
fn bad_sizes_names_and_objects_give_clear_errors() {
    let _wd = util::watchdog("bad_input", Duration::from_secs(30));
    let err = Queue::<u8>::new(0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("capacity"), "{err}");

    let missing = util::unique_name("queue-missing");
    let err = Queue::<u8>::open(&missing).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
    let err = Queue::<u8>::open("a/b").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

    // Too large a message is an error and the queue stays usable.
    let q = queue::Options::new()
        .capacity(4)
        .byte_capacity(1024)
        .max_message_size(64)
        .anonymous::<Vec<u8>>()
        .unwrap();
    match q.try_put(&vec![7; 100]) {
        Err(SendError::Failed(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("64"), "{e}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(q.is_empty());
    q.put(&vec![1, 2, 3]).unwrap();
    assert_eq!(q.get().unwrap(), vec![1, 2, 3]);

    // A message that does not decode as T is an error and is dropped; the queue goes on.
    let typed: Queue<(u64, String)> = Queue::new(4).unwrap();
    typed.as_bytes().put(&[0xff; 3]).unwrap();
    typed.put(&(5, "ok".into())).unwrap();
    match typed.get() {
        Err(RecvError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(typed.get().unwrap(), (5, "ok".into()));

    // An object that is not a queue.
    let name = util::unique_name("queue-garbage");
    let path = std::path::Path::new("/dev/shm").join(&name);
    let mut junk = vec![0x42u8; 8192];
    junk[12..16].copy_from_slice(&0x5245_4459u32.to_ne_bytes()); // "ready", wrong magic
    std::fs::write(&path, &junk).unwrap();
    let err = Queue::<u8>::open(&name).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("not an ipcbox queue"), "{err}");
}

#[test]
fn corrupted_header_is_an_error_not_a_crash() {
    let _wd = util::watchdog("corrupted", Duration::from_secs(30));
    let name = util::unique_name("queue-corrupt");
    let q: Queue<u32> = Queue::create(&name, 4).unwrap();
    q.put(&1).unwrap();
    // Overwrite the producers' position (offset 192 in layout version 6), which both sides
    // read, with nonsense.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::path::Path::new("/dev/shm").join(&name))
        .unwrap();
    let mut tail = [0u8; 8];
    f.read_exact_at(&mut tail, 192).unwrap();
    assert_ne!(tail, [0; 8], "the put moved the producers' position");
    f.write_at(&(u64::MAX - 7).to_le_bytes(), 192).unwrap();
    match q.try_get() {
        Err(RecvError::Failed(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("corrupted"), "{e}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    match q.try_put(&2) {
        Err(SendError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
        other => panic!("expected Failed, got {other:?}"),
    }
    f.write_at(&tail, 192).unwrap();
    assert_eq!(q.try_get().unwrap(), Some(1), "repaired header works again");
    drop(q);
    assert!(!util::shm_exists(&name));
}

#[test]
fn channel_with_a_huge_max_message_in_its_header_is_an_error_not_a_crash() {
    let _wd = util::watchdog("channel_corrupt", Duration::from_secs(30));
    let name = util::unique_name("chan-corrupt");
    let tx: channel::Sender<u32> = channel::Options::new().sender(&name).unwrap();
    // The maximum message size (offset 32 in layout version 3), so big that adding the slot
    // header to it overflows.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(std::path::Path::new("/dev/shm").join(&name))
        .unwrap();
    f.write_at(&(u64::MAX - 3).to_le_bytes(), 32).unwrap();
    let err = channel::Options::new()
        .mode(CreationMode::Open)
        .receiver::<u32>(&name)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("corrupted"), "{err}");
    drop(tx);
    assert!(!util::shm_exists(&name));
}

/// Every message of a parked ping-pong finds its receiver asleep (or about to sleep), so each
/// one goes through the sleeping flag and the wake-up: a missed wake-up would cost a whole
/// sleep slice (100 ms) and 5,000 of them would overrun the watchdog.
#[test]
fn channel_parked_ping_pong_never_sleeps_through_a_message() {
    let _wd = util::watchdog("channel parked ping-pong", Duration::from_secs(120));
    let options = || {
        channel::Options::new()
            .capacity(4)
            .max_message_size(16)
            .wait_policy(WaitPolicy::Park)
            .anonymous::<u32>()
            .unwrap()
    };
    let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (options(), options());
    const ROUNDS: u32 = 5_000;
    let mut kids = Children::new();
    let child = kids.fork(|| {
        for i in 0..ROUNDS {
            match ping_rx.recv() {
                Ok(got) if got == i && pong_tx.send(&i).is_ok() => {}
                _ => return 1,
            }
        }
        0
    });
    for i in 0..ROUNDS {
        ping_tx.send(&i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    kids.join(child);
}

#[test]
fn channel_keeps_order_across_fork() {
    let _wd = util::watchdog("channel_order", Duration::from_secs(60));
    for policy in [
        WaitPolicy::Park,
        WaitPolicy::SpinThenPark(Duration::from_micros(50)),
    ] {
        let (tx, rx) = channel::Options::new()
            .capacity(16)
            .max_message_size(64)
            .wait_policy(policy)
            .anonymous::<u64>()
            .unwrap();
        let mut kids = Children::new();
        let child = kids.fork(|| {
            for i in 0..50_000u64 {
                if tx.send(&i).is_err() {
                    return 1;
                }
            }
            0
        });
        drop(tx);
        for i in 0..50_000u64 {
            assert_eq!(rx.recv().unwrap(), i);
        }
        kids.join(child);
        match rx.recv_timeout(Duration::from_secs(5)) {
            Err(RecvError::Disconnected) => {}
            other => panic!("expected Disconnected once the sender exited, got {other:?}"),
        }
    }
}

#[test]
fn channel_try_and_timeout_are_not_now_in_ok() {
    let _wd = util::watchdog("channel_try", Duration::from_secs(30));
    let (tx, rx) = channel::new::<String>(2).unwrap();
    assert_eq!(tx.capacity(), 2);
    assert_eq!(rx.try_recv().unwrap(), None, "empty");
    assert_eq!(rx.recv_timeout(Duration::from_millis(20)).unwrap(), None);
    tx.send(&"a".into()).unwrap();
    assert!(tx.try_send(&"b".into()).unwrap());
    assert!(tx.is_full());
    assert!(!tx.try_send(&"c".into()).unwrap(), "full");
    assert!(!tx
        .send_timeout(&"d".into(), Duration::from_millis(20))
        .unwrap());
    match tx.try_send(&"x".repeat(2000)) {
        Err(SendError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(rx.recv().unwrap(), "a");
    assert_eq!(rx.try_recv().unwrap().as_deref(), Some("b"));
    drop(rx);
    match tx.try_send(&"e".into()) {
        Err(SendError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(
        channel::new::<u8>(0).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn channel_killed_sender_gives_disconnected() {
    let _wd = util::watchdog("channel_killed", Duration::from_secs(30));
    let (tx, rx) = channel::new::<u32>(8).unwrap();
    let mut kids = Children::new();
    let child = kids.fork(|| {
        for i in 0..100 {
            if tx.send(&i).is_err() {
                return 1;
            }
        }
        // Then hang in a full channel until killed.
        loop {
            let _ = tx.send(&u32::MAX);
        }
    });
    for i in 0..100 {
        assert_eq!(rx.recv().unwrap(), i);
    }
    kids.kill(child);
    // Not reaped yet: a zombie still counts as dead. Drain what it sent, then Disconnected.
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(v)) => assert_eq!(v, u32::MAX),
            Err(RecvError::Disconnected) => break,
            other => panic!("expected Disconnected, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    let status = kids.wait(child);
    assert!(libc::WIFSIGNALED(status));
}

#[test]
fn role_channel_sender() {
    let Some(name) = util::role_arg("channel_sender") else {
        return;
    };
    let tx = channel::Options::new()
        .mode(CreationMode::Open)
        .sender::<String>(&name)
        .expect("open channel sender");
    for i in 0..1000 {
        tx.send(&format!("m{i}")).expect("send");
    }
}

#[test]
fn named_channel_between_unrelated_processes() {
    let _wd = util::watchdog("channel_named", Duration::from_secs(60));
    let name = util::unique_name("chan-named");
    {
        let rx = channel::Options::new()
            .capacity(8)
            .receiver::<String>(&name)
            .unwrap();
        let err = channel::Options::new()
            .mode(CreationMode::Open)
            .receiver::<String>(&name)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "{err}");
        let mut child = util::role_command("role_channel_sender", "channel_sender", &name)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for i in 0..1000 {
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(20)).unwrap(),
                Some(format!("m{i}"))
            );
        }
        assert!(child.wait().unwrap().success());
        match rx.recv_timeout(Duration::from_secs(5)) {
            Err(RecvError::Disconnected) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    assert!(!util::shm_exists(&name));
}
