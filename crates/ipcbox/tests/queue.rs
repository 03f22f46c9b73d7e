//! Integration tests of `ipcbox::queue`: the MPMC `Queue` and the one-to-one channel, across
//! real processes (fork and re-run roles), including a SIGKILL chaos test.

#![allow(unsafe_code)] // fork, waitpid, kill and an anonymous mmap for test bookkeeping

mod util;

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::SeqCst};
use std::time::{Duration, Instant};

use ipcbox::queue::{
    self, channel, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError, WaitPolicy,
};
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
                match results.put(got) {
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
                    if q.put(Item { producer: p, seq }).is_err() {
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
        let got = results.get_timeout(Duration::from_secs(30)).unwrap();
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
    q.put(1).unwrap();
    kids.join(child);
    q.put(2).unwrap();
    // The only other process that used the queue is gone: a put waiting for room is told so
    // instead of hanging (Python's multiprocessing.Queue would hang here).
    match q.put_timeout(3, Duration::from_secs(20)) {
        Err(SendTimeoutError::Disconnected(3)) => {}
        other => panic!("expected Disconnected(3), got {other:?}"),
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
            if q.put(i).is_err() {
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
fn full_and_empty_and_timeouts_hand_messages_back() {
    let _wd = util::watchdog("full_and_empty", Duration::from_secs(30));
    let q: Queue<String> = Queue::new(2).unwrap();
    assert!(q.is_empty());
    match q.try_get() {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected Empty, got {other:?}"),
    }
    match q.get_timeout(Duration::from_millis(20)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    q.put("a".into()).unwrap();
    q.try_put("b".into()).unwrap();
    assert!(q.is_full());
    assert_eq!(q.len(), 2);
    match q.try_put("c".into()) {
        Err(TrySendError::Full(m)) => assert_eq!(m, "c"),
        other => panic!("expected Full, got {other:?}"),
    }
    match q.put_timeout("d".into(), Duration::from_millis(20)) {
        Err(SendTimeoutError::Timeout(m)) => assert_eq!(m, "d"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(q.get().unwrap(), "a");
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), "b");

    // The byte bound refuses a message the count bound would take.
    let b = queue::Options::new()
        .capacity(10)
        .byte_capacity(100)
        .anonymous::<()>()
        .unwrap();
    let bq = b.as_bytes();
    bq.try_put(&[1; 60]).unwrap();
    match bq.try_put(&[2; 60]) {
        Err(TrySendError::Full(m)) => assert_eq!(m, &[2; 60][..]),
        other => panic!("expected Full by bytes, got {other:?}"),
    }
    assert_eq!(b.used_bytes(), 60);
    assert_eq!(bq.try_get().unwrap(), vec![1; 60]);
    bq.try_put(&[2; 60]).unwrap();
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
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.close().unwrap();
    assert!(q.is_closed());
    match q.put(3) {
        Err(SendError::Disconnected(m)) => assert_eq!(m, 3),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    match q.try_put(4) {
        Err(TrySendError::Disconnected(4)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    kids.join(child);
    match q.try_get() {
        Err(TryRecvError::Disconnected) => {}
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
        q.put(i).unwrap();
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
        q.put(format!("message {i}")).expect("put");
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
                format!("message {i}")
            );
        }
        assert!(child.wait().unwrap().success());
        // The producer is gone and the queue empty: a waiting get says so.
        match q.get_timeout(Duration::from_secs(5)) {
            Err(RecvTimeoutError::Disconnected) => {}
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

    // Too large a message is handed back and the queue stays usable.
    let q = queue::Options::new()
        .capacity(4)
        .byte_capacity(1024)
        .max_message_size(64)
        .anonymous::<Vec<u8>>()
        .unwrap();
    match q.try_put(vec![7; 100]) {
        Err(TrySendError::Failed(m, e)) => {
            assert_eq!(m.len(), 100);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("64"), "{e}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    q.put(vec![1, 2, 3]).unwrap();
    assert_eq!(q.get().unwrap(), vec![1, 2, 3]);

    // A message that does not decode as T is an error and is dropped; the queue goes on.
    let typed: Queue<(u64, String)> = Queue::new(4).unwrap();
    typed.as_bytes().put(&[0xff; 3]).unwrap();
    typed.put((5, "ok".into())).unwrap();
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
    q.put(1).unwrap();
    // Overwrite the producers' position (offset 192 in layout version 5), which both sides
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
        Err(TryRecvError::Failed(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("corrupted"), "{e}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    match q.try_put(2) {
        Err(TrySendError::Failed(2, e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
        other => panic!("expected Failed, got {other:?}"),
    }
    f.write_at(&tail, 192).unwrap();
    assert_eq!(q.try_get().unwrap(), 1, "repaired header works again");
    drop(q);
    assert!(!util::shm_exists(&name));
}

#[test]
fn channel_with_a_huge_max_message_in_its_header_is_an_error_not_a_crash() {
    let _wd = util::watchdog("channel_corrupt", Duration::from_secs(30));
    let name = util::unique_name("chan-corrupt");
    let tx: channel::Sender<u32> = channel::Options::new().sender(&name).unwrap();
    // The maximum message size (offset 32 in layout version 1), so big that adding the slot
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

#[derive(Serialize, Deserialize, Debug)]
struct Chaos {
    seq: u64,
    check: u64,
    pad: Vec<u8>,
}

fn chaos_check(seq: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF
}

impl Chaos {
    /// Whether this is a message some producer of a stream of `total` sent, whole: sequence
    /// number in range, checksum and padding length matching it.
    fn is_whole(&self, total: u64) -> bool {
        self.seq < total
            && self.check == chaos_check(self.seq)
            && self.pad.len() == (self.seq % 61) as usize
    }
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

/// What the killing in a chaos run did.
struct Kills {
    /// SIGKILLs delivered (children that had already exited are not counted).
    total: u64,
    /// Of those, producers (senders).
    producers: u64,
    /// Of those, consumers (receivers) killed while inside `get` (their busy word was set).
    consumers_mid_get: u64,
}

/// The chaos loop the queue's and the channel's chaos tests share.
///
/// Slots `0..producers` of `pids` are producers, the rest consumers. The board's word 0 counts
/// the stream's progress up to `total`, word 1 is the stop flag consumers watch, and word
/// `2 + c` is non-zero while consumer `c` is inside `get`. Kills a random slot `wanted` times,
/// spread over the stream, and forks its replacement with `respawn(kids, slot, kills so far)`;
/// then lets the producers finish, waits for the consumers to drain what is left
/// (`is_empty`), raises the stop flag and joins the consumers.
fn kill_randomly_then_drain(
    kids: &mut Children,
    pids: &mut [i32],
    producers: usize,
    board: &Board,
    (total, wanted, seed): (u64, u64, u64),
    mut respawn: impl FnMut(&mut Children, usize, u64) -> i32,
    is_empty: impl Fn() -> bool,
) -> Kills {
    let mut rng = Rng(seed);
    let mut kills = Kills {
        total: 0,
        producers: 0,
        consumers_mid_get: 0,
    };
    while kills.total < wanted {
        // Spread the kills over the stream: wait for some progress or a short random time.
        let target = board.u64(0).load(SeqCst) + rng.next() % (2 * total / wanted);
        let pause = Instant::now();
        while board.u64(0).load(SeqCst) < target.min(total)
            && pause.elapsed() < Duration::from_micros(200 + rng.next() % 2000)
        {
            std::hint::spin_loop();
        }
        let slot = (rng.next() % pids.len() as u64) as usize;
        let pid = pids[slot];
        kids.kill(pid);
        let status = kids.wait(pid);
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
            kills.total += 1;
            if slot < producers {
                kills.producers += 1;
            } else if board.u64(2 + slot - producers).load(SeqCst) != 0 {
                kills.consumers_mid_get += 1;
            }
        } else {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child in slot {slot} failed: status {status:#x}"
            );
        }
        pids[slot] = respawn(kids, slot, kills.total);
    }
    // Let the stream finish: producers exit when all sequence numbers are taken.
    for &pid in &pids[..producers] {
        kids.join(pid);
    }
    util::poll_until(
        "the consumers to drain the queue",
        Duration::from_secs(60),
        &is_empty,
    );
    board.u64(1).store(1, SeqCst);
    for &pid in &pids[producers..] {
        kids.join(pid);
    }
    kills
}

#[test]
fn chaos_sigkill_never_loses_duplicates_or_wedges() {
    let _wd = util::watchdog("chaos", Duration::from_secs(240));
    const TOTAL: u64 = 200_000;
    const KILLS: u64 = 600;
    const PRODUCERS: usize = 3;
    const CONSUMERS: usize = 2;
    // Board: [0] next seq, [1] stop flag, [2..2+C] consumer busy flags, then per-seq bytes:
    // committed (put returned) and seen (times a get returned it).
    let base = 8 * 16;
    let board_mem = Board::new(base + 2 * TOTAL as usize);
    let board = &board_mem;
    let committed = move |s: u64| board.u8(base + s as usize);
    let seen = move |s: u64| board.u8(base + (TOTAL + s) as usize);
    let q_mem: Queue<Chaos> = queue::Options::new()
        .capacity(64)
        .byte_capacity(4096)
        .anonymous()
        .unwrap();
    let q = &q_mem;

    let producer = move || loop {
        let s = board.u64(0).fetch_add(1, SeqCst);
        if s >= TOTAL {
            return 0;
        }
        let msg = Chaos {
            seq: s,
            check: chaos_check(s),
            pad: vec![s as u8; (s % 61) as usize],
        };
        if q.put(msg).is_err() {
            return 2;
        }
        committed(s).store(1, SeqCst);
    };
    let consumer = move |c: usize| {
        move || loop {
            board.u64(2 + c).store(1, SeqCst);
            match q.get_timeout(Duration::from_millis(50)) {
                Ok(m) => {
                    if !m.is_whole(TOTAL) {
                        return 3; // garbage delivered
                    }
                    seen(m.seq).fetch_add(1, SeqCst);
                    board.u64(2 + c).store(0, SeqCst);
                }
                Err(RecvTimeoutError::Timeout) => {
                    board.u64(2 + c).store(0, SeqCst);
                    if board.u64(1).load(SeqCst) != 0 {
                        return 0;
                    }
                }
                Err(_) => return 4,
            }
        }
    };

    let started = Instant::now();
    let mut kids = Children::new();
    // Slots: 0..PRODUCERS producers, then consumers.
    let mut pids: Vec<i32> = (0..PRODUCERS).map(|_| kids.fork(producer)).collect();
    for c in 0..CONSUMERS {
        pids.push(kids.fork(consumer(c)));
    }
    let kills = kill_randomly_then_drain(
        &mut kids,
        &mut pids,
        PRODUCERS,
        board,
        (TOTAL, KILLS, 0x1234_5678_9abc_def1),
        |kids, slot, _| {
            if slot < PRODUCERS {
                kids.fork(producer)
            } else {
                kids.fork(consumer(slot - PRODUCERS))
            }
        },
        || q.is_empty(),
    );
    let Kills {
        total: kills,
        producers: kills_of_producers,
        consumers_mid_get: consumer_kills_mid_get,
    } = kills;

    // The verdict.
    let mut lost = Vec::new();
    let (mut delivered, mut committed_n) = (0u64, 0u64);
    for s in 0..TOTAL {
        let n = seen(s).load(SeqCst);
        assert!(n <= 1, "message {s} delivered {n} times");
        delivered += u64::from(n);
        if committed(s).load(SeqCst) == 1 {
            committed_n += 1;
            if n == 0 {
                lost.push(s);
            }
        }
    }
    eprintln!(
        "chaos: {kills} SIGKILLs ({kills_of_producers} producers, {} consumers of which \
         {consumer_kills_mid_get} inside get), {TOTAL} sequence numbers, {committed_n} \
         committed, {delivered} delivered, {} committed lost with a consumer killed inside \
         get, {} lock-owner recoveries, {:?}",
        kills - kills_of_producers,
        lost.len(),
        q.recoveries(),
        started.elapsed()
    );
    assert!(kills >= 200);
    assert!(committed_n >= TOTAL - kills_of_producers);
    assert!(
        lost.len() as u64 <= consumer_kills_mid_get,
        "{} committed messages lost ({lost:?}) but only {consumer_kills_mid_get} consumers \
         were killed while inside get",
        lost.len()
    );
    // Still works, across processes.
    assert!(q.is_empty());
    let mut kids2 = Children::new();
    let c = kids2.fork(|| match q.get_timeout(Duration::from_secs(10)) {
        Ok(m) if m.seq == 7 && m.check == 1 => 0,
        _ => 1,
    });
    q.put(Chaos {
        seq: 7,
        check: 1,
        pad: vec![],
    })
    .unwrap();
    kids2.join(c);
    q.put(Chaos {
        seq: 8,
        check: 2,
        pad: vec![1; 100],
    })
    .unwrap();
    assert_eq!(q.get().unwrap().pad.len(), 100);
    assert!(q.is_empty());
}

#[test]
fn batches_keep_order_and_deliver_exactly_once_to_batch_and_single_consumers() {
    let _wd = util::watchdog("batch_order", Duration::from_secs(60));
    const N: u64 = 40_000;
    // Board: per seq, how many times a consumer got it.
    let board_mem = Board::new(N as usize);
    let board = &board_mem;
    // Small: most batches fit only in part, so put_many waits for room repeatedly.
    let q: Queue<u64> = queue::Options::new().capacity(32).anonymous().unwrap();
    let q = &q;
    let mut kids = Children::new();
    let producer = kids.fork(|| {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = 0;
        while next < N {
            let n = (1 + rng.next() % 50).min(N - next);
            let batch: Vec<u64> = (next..next + n).collect();
            if q.put_many(&batch).is_err() {
                return 1;
            }
            next += n;
        }
        // Close: the consumers drain what is left, then see Disconnected.
        if q.close().is_err() {
            return 2;
        }
        0
    });
    // Each consumer checks the order it sees (one producer: increasing) and marks the board.
    let batch_consumer = kids.fork(|| {
        let (mut out, mut last) = (Vec::new(), None);
        loop {
            out.clear();
            match q.get_many(10, &mut out) {
                Ok(n) if n == out.len() && (1..=10).contains(&n) => {}
                Err(RecvError::Disconnected) => return 0,
                _ => return 3,
            }
            for &s in &out {
                if s >= N || last.is_some_and(|l| s <= l) {
                    return 4;
                }
                last = Some(s);
                board.u8(s as usize).fetch_add(1, SeqCst);
            }
        }
    });
    let single_consumer = kids.fork(|| {
        let mut last = None;
        loop {
            match q.get() {
                Ok(s) if s < N && last.is_none_or(|l| s > l) => {
                    last = Some(s);
                    board.u8(s as usize).fetch_add(1, SeqCst);
                }
                Err(RecvError::Disconnected) => return 0,
                _ => return 5,
            }
        }
    });
    // The parent also takes with the timeout form until the producer has closed the queue.
    let (mut mine, mut out) = (0u64, Vec::new());
    loop {
        out.clear();
        match q.get_many_timeout(7, &mut out, Duration::from_millis(10)) {
            Ok(n) => {
                assert_eq!(n, out.len());
                assert!(out.windows(2).all(|w| w[0] < w[1]), "batch out of order");
                for &s in &out {
                    board.u8(s as usize).fetch_add(1, SeqCst);
                }
                mine += n as u64;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("get_many_timeout: {e}"),
        }
    }
    kids.join(producer);
    kids.join(batch_consumer);
    kids.join(single_consumer);
    for s in 0..N {
        let n = board.u8(s as usize).load(SeqCst);
        assert_eq!(n, 1, "message {s} delivered {n} times");
    }
    eprintln!("batch_order: the parent took {mine} of {N}");
}

#[test]
fn batch_partial_fit_blocks_for_room_and_try_forms_when_full_or_empty() {
    let _wd = util::watchdog("batch_partial", Duration::from_secs(30));
    let q: Queue<u32> = Queue::new(4).unwrap();
    let mut out = Vec::new();
    match q.try_get_many(8, &mut out) {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected Empty, got {other:?}"),
    }
    match q.get_many_timeout(8, &mut out, Duration::from_millis(20)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(q.get_many(0, &mut out).unwrap(), 0, "max 0 takes nothing");
    assert_eq!(q.try_put_many(&[]).unwrap(), 0);
    // Only a prefix fits.
    let all: Vec<u32> = (0..10).collect();
    assert_eq!(q.try_put_many(&all).unwrap(), 4);
    assert!(q.is_full());
    match q.try_put_many(&all[4..]) {
        Err(TrySendError::Full(0)) => {}
        other => panic!("expected Full(0), got {other:?}"),
    }
    match q.put_many_timeout(&all[4..], Duration::from_millis(20)) {
        Err(SendTimeoutError::Timeout(0)) => {}
        other => panic!("expected Timeout(0), got {other:?}"),
    }
    assert_eq!(q.try_get_many(3, &mut out).unwrap(), 3);
    assert_eq!(out, [0, 1, 2]);
    // A blocking put_many in another process puts what fits and waits for room for the rest.
    let mut kids = Children::new();
    let child = kids.fork(|| match q.put_many(&(4..20).collect::<Vec<u32>>()) {
        Ok(()) => 0,
        Err(_) => 1,
    });
    out.clear();
    while out.len() < 17 {
        q.get_many(5, &mut out).unwrap();
    }
    assert_eq!(out, (3..20).collect::<Vec<u32>>());
    kids.join(child);
    assert!(q.is_empty());

    // The byte bound stops a batch too; a message over the size limit fails it at its index.
    let b = queue::Options::new()
        .capacity(10)
        .byte_capacity(100)
        .max_message_size(50)
        .anonymous::<()>()
        .unwrap();
    let bq = b.as_bytes();
    assert_eq!(bq.try_put_many(&[[1u8; 40], [2; 40], [3; 40]]).unwrap(), 2);
    assert_eq!(b.used_bytes(), 80);
    let mut got = Vec::new();
    assert_eq!(bq.try_get_many(10, &mut got).unwrap(), 2);
    assert_eq!(got, [vec![1; 40], vec![2; 40]]);
    let msgs: [&[u8]; 3] = [&[1; 10], &[2; 10], &[3; 60]];
    match bq.put_many(&msgs) {
        Err(SendError::Failed(2, e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
        other => panic!("expected Failed(2, _), got {other:?}"),
    }
    got.clear();
    assert_eq!(
        bq.get_many_timeout(10, &mut got, Duration::from_secs(1))
            .unwrap(),
        2
    );
    assert_eq!(
        got,
        [vec![1; 10], vec![2; 10]],
        "the prefix before it was put"
    );
}

#[test]
fn close_with_batches() {
    let _wd = util::watchdog("batch_close", Duration::from_secs(30));
    let q: Queue<u32> = Queue::new(4).unwrap();
    let mut kids = Children::new();
    // A producer whose batch only partly fits, blocked for room when the queue is closed.
    let child = kids.fork(|| match q.put_many(&[1, 2, 3, 4, 5, 6]) {
        Err(SendError::Disconnected(4)) => 0,
        _ => 1,
    });
    // Synchronise on the queue itself: the child has put its first four.
    util::poll_until(
        "the child to fill the queue",
        Duration::from_secs(20),
        || q.is_full(),
    );
    q.close().unwrap();
    kids.join(child);
    match q.put_many(&[7]) {
        Err(SendError::Disconnected(0)) => {}
        other => panic!("expected Disconnected(0), got {other:?}"),
    }
    match q.try_put_many(&[7]) {
        Err(TrySendError::Disconnected(0)) => {}
        other => panic!("expected Disconnected(0), got {other:?}"),
    }
    let mut out = Vec::new();
    assert_eq!(q.get_many(3, &mut out).unwrap(), 3);
    assert_eq!(q.get_many(3, &mut out).unwrap(), 1, "drains what is left");
    assert_eq!(out, [1, 2, 3, 4]);
    match q.get_many(3, &mut out) {
        Err(RecvError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    match q.try_get_many(3, &mut out) {
        Err(TryRecvError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(out.len(), 4, "failed gets append nothing");
}

/// A message whose `AsRef` panics from its second call on: `put_many` measures it before it
/// locks, then panics while writing it under the producers' lock.
struct PanicsWhenWritten(std::cell::Cell<u32>);

impl AsRef<[u8]> for PanicsWhenWritten {
    fn as_ref(&self) -> &[u8] {
        self.0.set(self.0.get() + 1);
        assert!(self.0.get() < 2, "a caller's AsRef panics under the lock");
        b"measured"
    }
}

struct Msg<'a>(&'a [u8], Option<&'a PanicsWhenWritten>);

impl AsRef<[u8]> for Msg<'_> {
    fn as_ref(&self) -> &[u8] {
        match self.1 {
            Some(p) => p.as_ref(),
            None => self.0,
        }
    }
}

#[test]
fn a_panic_inside_put_many_unlocks_the_queue_and_commits_nothing() {
    let _wd = util::watchdog("put_many panic", Duration::from_secs(30));
    let q: Queue<()> = Queue::new(8).unwrap();
    let bytes = q.as_bytes();
    let bomb = PanicsWhenWritten(std::cell::Cell::new(0));
    let batch = [Msg(b"first", None), Msg(b"", Some(&bomb))];
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bytes.put_many(&batch)));
    assert!(caught.is_err(), "the AsRef panicked through put_many");
    assert_eq!(
        bomb.0.get(),
        2,
        "it panicked under the lock, after being measured"
    );
    // Another process puts at once (a try_ form, which fails if the lock stayed held).
    let mut kids = Children::new();
    let child = kids.fork(|| match q.as_bytes().try_put(b"from the child") {
        Ok(()) => 0,
        Err(_) => 1,
    });
    kids.join(child);
    let mut buf = Vec::new();
    bytes.try_get_into(&mut buf).unwrap();
    assert_eq!(
        buf, b"from the child",
        "the panicked batch committed nothing"
    );
    assert!(matches!(
        bytes.try_get_into(&mut buf),
        Err(TryRecvError::Empty)
    ));
}

#[test]
fn chaos_sigkill_batches() {
    let _wd = util::watchdog("chaos_batches", Duration::from_secs(240));
    const TOTAL: u64 = 100_000;
    const KILLS: u64 = 300;
    const PRODUCERS: usize = 2;
    const CONSUMERS: usize = 2;
    const MAX_BATCH: u64 = 40;
    const GET_MAX: usize = 16;
    // Board: [0] next seq, [1] stop flag, [2..2+C] consumer busy flags, then per-seq bytes:
    // committed (put_many returned), seen (times a get returned it), first of a batch.
    let base = 8 * 16;
    let board_mem = Board::new(base + 3 * TOTAL as usize);
    let board = &board_mem;
    let committed = move |s: u64| board.u8(base + s as usize);
    let seen = move |s: u64| board.u8(base + (TOTAL + s) as usize);
    let first = move |s: u64| board.u8(base + (2 * TOTAL + s) as usize);
    let q_mem: Queue<Chaos> = queue::Options::new()
        .capacity(64)
        .byte_capacity(4096)
        .anonymous()
        .unwrap();
    let q = &q_mem;

    let producer = move |p: u64| {
        move || {
            let mut rng = Rng(0x51ed_2701_f00d_0001 + p * 7919 + board.u64(0).load(SeqCst));
            loop {
                let n = 1 + rng.next() % MAX_BATCH;
                let s0 = board.u64(0).fetch_add(n, SeqCst);
                if s0 >= TOTAL {
                    return 0;
                }
                let n = n.min(TOTAL - s0);
                first(s0).store(1, SeqCst);
                let batch: Vec<Chaos> = (s0..s0 + n)
                    .map(|s| Chaos {
                        seq: s,
                        check: chaos_check(s),
                        pad: vec![s as u8; (s % 61) as usize],
                    })
                    .collect();
                if q.put_many(&batch).is_err() {
                    return 2;
                }
                for s in s0..s0 + n {
                    committed(s).store(1, SeqCst);
                }
            }
        }
    };
    let consumer = move |c: usize| {
        move || {
            let mut out = Vec::with_capacity(GET_MAX);
            loop {
                board.u64(2 + c).store(1, SeqCst);
                out.clear();
                match q.get_many_timeout(GET_MAX, &mut out, Duration::from_millis(50)) {
                    Ok(_) => {
                        for m in &out {
                            if !m.is_whole(TOTAL) {
                                return 3; // garbage delivered
                            }
                            seen(m.seq).fetch_add(1, SeqCst);
                        }
                        board.u64(2 + c).store(0, SeqCst);
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        board.u64(2 + c).store(0, SeqCst);
                        if board.u64(1).load(SeqCst) != 0 {
                            return 0;
                        }
                    }
                    Err(_) => return 4,
                }
            }
        }
    };

    let started = Instant::now();
    let mut kids = Children::new();
    let mut pids: Vec<i32> = (0..PRODUCERS as u64)
        .map(|p| kids.fork(producer(p)))
        .collect();
    for c in 0..CONSUMERS {
        pids.push(kids.fork(consumer(c)));
    }
    let kills = kill_randomly_then_drain(
        &mut kids,
        &mut pids,
        PRODUCERS,
        board,
        (TOTAL, KILLS, 0x0bad_cafe_1234_5679),
        |kids, slot, kills| {
            if slot < PRODUCERS {
                kids.fork(producer(slot as u64 + 100 * kills))
            } else {
                kids.fork(consumer(slot - PRODUCERS))
            }
        },
        || q.is_empty(),
    );
    let Kills {
        total: kills,
        producers: kills_of_producers,
        consumers_mid_get: consumer_kills_mid_get,
    } = kills;

    // The verdict. Holes: committed messages never delivered, and undelivered messages of a
    // batch followed by a delivered one of the same batch (a killed producer leaves a prefix,
    // so such a hole can only be a message a killed consumer took with it).
    let (mut delivered, mut committed_n, mut holes) = (0u64, 0u64, 0u64);
    let mut unseen_in_batch = 0u64;
    for s in 0..TOTAL {
        if first(s).load(SeqCst) == 1 {
            unseen_in_batch = 0;
        }
        let n = seen(s).load(SeqCst);
        assert!(n <= 1, "message {s} delivered {n} times");
        delivered += u64::from(n);
        let c = committed(s).load(SeqCst) == 1;
        committed_n += u64::from(c);
        if n == 0 {
            if c {
                holes += 1;
            } else {
                unseen_in_batch += 1;
            }
        } else {
            holes += unseen_in_batch;
            unseen_in_batch = 0;
        }
    }
    eprintln!(
        "chaos_batches: {kills} SIGKILLs ({kills_of_producers} producers, {} consumers of which \
         {consumer_kills_mid_get} inside get_many), {TOTAL} sequence numbers, {committed_n} \
         committed, {delivered} delivered, {holes} lost with a consumer killed inside \
         get_many, {} lock-owner recoveries, {:?}",
        kills - kills_of_producers,
        q.recoveries(),
        started.elapsed()
    );
    assert!(kills >= 100);
    assert!(committed_n >= TOTAL - kills_of_producers * MAX_BATCH);
    assert!(
        holes <= consumer_kills_mid_get * GET_MAX as u64,
        "{holes} messages lost but only {consumer_kills_mid_get} consumers were killed inside \
         get_many (at most {GET_MAX} each)"
    );
    // Still works.
    q.put_many(&[Chaos {
        seq: 1,
        check: 2,
        pad: vec![3; 50],
    }])
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(q.get_many(4, &mut out).unwrap(), 1);
    assert_eq!(out[0].pad.len(), 50);
    assert!(q.is_empty());
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
                Ok(got) if got == i && pong_tx.send(i).is_ok() => {}
                _ => return 1,
            }
        }
        0
    });
    for i in 0..ROUNDS {
        ping_tx.send(i).unwrap();
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
                if tx.send(i).is_err() {
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
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!("expected Disconnected once the sender exited, got {other:?}"),
        }
    }
}

#[test]
fn channel_try_and_timeout_hand_messages_back() {
    let _wd = util::watchdog("channel_try", Duration::from_secs(30));
    let (tx, rx) = channel::new::<String>(2).unwrap();
    assert_eq!(tx.capacity(), 2);
    match rx.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected Empty, got {other:?}"),
    }
    match rx.recv_timeout(Duration::from_millis(20)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    tx.send("a".into()).unwrap();
    tx.try_send("b".into()).unwrap();
    assert!(tx.is_full());
    match tx.try_send("c".into()) {
        Err(TrySendError::Full(m)) => assert_eq!(m, "c"),
        other => panic!("expected Full, got {other:?}"),
    }
    match tx.send_timeout("d".into(), Duration::from_millis(20)) {
        Err(SendTimeoutError::Timeout(m)) => assert_eq!(m, "d"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    match tx.try_send("x".repeat(2000)) {
        Err(TrySendError::Failed(m, e)) => {
            assert_eq!(m.len(), 2000);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(rx.recv().unwrap(), "a");
    assert_eq!(rx.try_recv().unwrap(), "b");
    drop(rx);
    match tx.try_send("e".into()) {
        Err(TrySendError::Disconnected(m)) => assert_eq!(m, "e"),
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
            if tx.send(i).is_err() {
                return 1;
            }
        }
        // Then hang in a full channel until killed.
        loop {
            let _ = tx.send(u32::MAX);
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
            Ok(v) => assert_eq!(v, u32::MAX),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("expected Disconnected, got {e:?}"),
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
        tx.send(format!("m{i}")).expect("send");
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
                format!("m{i}")
            );
        }
        assert!(child.wait().unwrap().success());
        match rx.recv_timeout(Duration::from_secs(5)) {
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    assert!(!util::shm_exists(&name));
}

#[test]
fn channel_chaos_sigkill_of_sender_and_receiver() {
    let _wd = util::watchdog("channel_chaos", Duration::from_secs(240));
    const TOTAL: u64 = 100_000;
    const KILLS: u64 = 300;
    // Board: [0] next seq, [1] stop, [2] receiver busy, [3] last seq received (+1),
    // [4] order violations, then committed and seen bytes per seq.
    let base = 8 * 8;
    let board_mem = Board::new(base + 2 * TOTAL as usize);
    let board = &board_mem;
    let committed = move |s: u64| board.u8(base + s as usize);
    let seen = move |s: u64| board.u8(base + (TOTAL + s) as usize);
    let (tx_mem, rx_mem) = channel::Options::new()
        .capacity(64)
        .max_message_size(64)
        .anonymous::<(u64, u64)>()
        .unwrap();
    let (tx, rx) = (&tx_mem, &rx_mem);
    let sender = move || loop {
        let s = board.u64(0).fetch_add(1, SeqCst);
        if s >= TOTAL {
            return 0;
        }
        // A sender blocked on a full channel for a whole 100 ms slice while the receiver is dead
        // (killed, its replacement not yet forked or not yet in `recv`: slow on a loaded
        // machine) rightly gets Disconnected, before anything was written. The replacement
        // comes, so send the same number again: the stream stays in order.
        loop {
            match tx.send((s, chaos_check(s))) {
                Ok(()) => break,
                Err(SendError::Disconnected(_)) if board.u64(1).load(SeqCst) == 0 => {}
                Err(SendError::Disconnected(_)) => return 2,
                Err(_) => return 5,
            }
        }
        committed(s).store(1, SeqCst);
    };
    let receiver = move || loop {
        board.u64(2).store(1, SeqCst);
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((s, check)) => {
                if s >= TOTAL || check != chaos_check(s) {
                    return 3;
                }
                // One sender at a time sends increasing numbers: the stream stays in order.
                if s < board.u64(3).load(SeqCst) {
                    board.u64(4).fetch_add(1, SeqCst);
                }
                board.u64(3).store(s + 1, SeqCst);
                seen(s).fetch_add(1, SeqCst);
                board.u64(2).store(0, SeqCst);
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                board.u64(2).store(0, SeqCst);
                if board.u64(1).load(SeqCst) != 0 {
                    return 0;
                }
            }
            Err(RecvTimeoutError::Failed(_)) => return 4,
        }
    };
    let started = Instant::now();
    let mut kids = Children::new();
    let mut pids = [kids.fork(sender), kids.fork(receiver)];
    let kills = kill_randomly_then_drain(
        &mut kids,
        &mut pids,
        1,
        board,
        (TOTAL, KILLS, 0x0fed_cba9_8765_4321),
        |kids, slot, _| {
            if slot == 0 {
                kids.fork(sender)
            } else {
                kids.fork(receiver)
            }
        },
        || rx.is_empty(),
    );
    let Kills {
        total: kills,
        producers: sender_kills,
        consumers_mid_get: receiver_kills_mid_recv,
    } = kills;

    let mut lost = 0u64;
    let mut delivered = 0u64;
    for s in 0..TOTAL {
        let n = seen(s).load(SeqCst);
        assert!(n <= 1, "message {s} delivered {n} times");
        delivered += u64::from(n);
        if committed(s).load(SeqCst) == 1 && n == 0 {
            lost += 1;
        }
    }
    eprintln!(
        "channel chaos: {kills} SIGKILLs ({sender_kills} senders, {} receivers of which \
         {receiver_kills_mid_recv} inside recv), {TOTAL} sequence numbers, {delivered} \
         delivered, {lost} committed lost, {:?}",
        kills - sender_kills,
        started.elapsed()
    );
    assert_eq!(board.u64(4).load(SeqCst), 0, "messages out of order");
    assert!(
        lost <= receiver_kills_mid_recv,
        "{lost} committed messages lost"
    );
    // Still works.
    tx.send((1, 2)).unwrap();
    assert_eq!(rx.recv().unwrap(), (1, 2));
}
