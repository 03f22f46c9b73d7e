//! The in-place and one-copy forms of the queue (`put_with`, `get_with`, `get_into_slice`) and
//! the channel (`send_with`, `recv_with`, `recv_into`): across processes, large messages,
//! "not now" without calling the closure, messages too large for the buffer or the object,
//! a process killed inside the closure, and a garbage length in the shared memory.

use super::*;

/// A message of `len` bytes whose every byte depends on `seed` and its index.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn fill_pattern(seed: u8, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31) ^ seed;
    }
}

const SIZES: [usize; 5] = [0, 1, 64, 4096, 1 << 20];

#[test]
fn queue_put_with_and_get_with_carry_large_messages_between_processes() {
    let _wd = util::watchdog("queue_inplace", Duration::from_secs(60));
    let q: Queue<()> = queue::Options::new()
        .capacity(8)
        .byte_capacity(4 << 20)
        .max_message_size(1 << 20)
        .anonymous()
        .unwrap();
    let mut kids = Children::new();
    let producer = kids.fork(|| {
        for (i, &len) in SIZES.iter().chain(SIZES.iter()).enumerate() {
            let put = if i % 2 == 0 {
                q.as_bytes()
                    .put_with(len, |buf| {
                        fill_pattern(i as u8, buf);
                        buf.len()
                    })
                    .map(|n| n == len)
            } else {
                q.as_bytes().put(&pattern(i as u8, len)).map(|()| true)
            };
            if put.ok() != Some(true) {
                return 1;
            }
        }
        0
    });
    let mut buf = vec![0; 1 << 20];
    for (i, &len) in SIZES.iter().chain(SIZES.iter()).enumerate() {
        let want = pattern(i as u8, len);
        match i % 3 {
            0 => assert!(q.as_bytes().get_with(|msg| msg == want).unwrap()),
            1 => {
                let n = q.as_bytes().get_into_slice(&mut buf).unwrap();
                assert_eq!(&buf[..n], want);
            }
            _ => {
                let got = q
                    .as_bytes()
                    .get_into_slice_timeout(&mut buf, Duration::from_secs(10))
                    .unwrap();
                assert_eq!(&buf[..got.unwrap()], want);
            }
        }
    }
    kids.join(producer);
    assert!(q.is_empty());
}

#[test]
fn queue_in_place_forms_say_not_now_without_calling_the_closure() {
    let q: Queue<()> = queue::Options::new().capacity(1).anonymous().unwrap();
    let b = q.as_bytes();
    assert_eq!(
        b.try_get_with(|_| panic!("called on empty")).unwrap(),
        None::<()>
    );
    let mut buf = [0; 8];
    assert_eq!(b.try_get_into_slice(&mut buf).unwrap(), None);
    assert_eq!(
        b.get_with_timeout(Duration::from_millis(5), |_| panic!("called"))
            .unwrap(),
        None::<()>
    );
    assert_eq!(
        b.try_put_with(3, |buf| buf.copy_from_slice(b"abc"))
            .unwrap(),
        Some(())
    );
    assert_eq!(
        b.try_put_with(1, |_| panic!("called on full")).unwrap(),
        None::<()>
    );
    assert_eq!(
        b.put_with_timeout(1, Duration::from_millis(5), |_| panic!("called"))
            .unwrap(),
        None::<()>
    );
    let deadline = Instant::now() + Duration::from_millis(5);
    assert_eq!(
        b.put_with_deadline(1, deadline, |_| panic!("called"))
            .unwrap(),
        None::<()>
    );
    assert_eq!(
        b.get_with_deadline(deadline, <[u8]>::to_vec)
            .unwrap()
            .unwrap(),
        b"abc"
    );
}

#[test]
fn queue_message_over_the_buffer_stays_and_over_the_limit_names_the_store() {
    let q: Queue<()> = queue::Options::new()
        .byte_capacity(4096)
        .max_message_size(100)
        .anonymous()
        .unwrap();
    let b = q.as_bytes();
    b.put(&[7; 10]).unwrap();
    let mut small = [0; 4];
    match b.try_get_into_slice(&mut small) {
        Err(RecvError::Failed(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains("10 bytes") && e.to_string().contains("4 bytes"),
                "{e}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let mut buf = [0; 10];
    assert_eq!(
        b.try_get_into_slice(&mut buf).unwrap(),
        Some(10),
        "the message stayed"
    );
    for err in [
        b.put_with(101, |_| ()).unwrap_err(),
        b.put(&[0; 101]).unwrap_err(),
    ] {
        let SendError::Failed(e) = err else {
            panic!("expected Failed, got {err:?}")
        };
        let text = e.to_string();
        assert!(
            text.contains("101 bytes") && text.contains("100 bytes"),
            "{text}"
        );
        assert!(text.contains("store"), "{text}");
    }
}

#[test]
fn queue_panic_inside_the_closures_commits_nothing_and_takes_nothing() {
    let q: Queue<()> = queue::Options::new().capacity(4).anonymous().unwrap();
    let b = q.as_bytes();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.put_with(8, |buf| {
            buf.fill(1);
            panic!("fill fails")
        })
    }));
    assert!(panicked.is_err());
    assert!(q.is_empty(), "a panicking fill committed its message");
    b.put(b"kept").unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.get_with(|_| -> () { panic!("read fails") })
    }));
    assert!(panicked.is_err());
    assert_eq!(
        b.try_get().unwrap().unwrap(),
        b"kept",
        "the message stayed, the lock is free"
    );
}

/// A producer killed inside `put_with` commits nothing; a consumer killed inside `get_with`
/// leaves its message to the next consumer. Both locks are taken over afterwards.
#[test]
fn queue_killed_inside_put_with_or_get_with_commits_nothing() {
    let _wd = util::watchdog("queue_inplace_kill", Duration::from_secs(60));
    let board = Board::new(64);
    let q: Queue<()> = queue::Options::new().capacity(4).anonymous().unwrap();
    let mut kids = Children::new();
    let stuck = |step: u64| {
        board.u64(0).store(step, SeqCst);
        loop {
            std::hint::spin_loop();
        }
    };
    let producer = kids.fork(|| {
        let _ = q.as_bytes().put_with(1000, |buf| {
            buf.fill(9);
            stuck(1)
        });
        1
    });
    util::poll_until(
        "the producer inside put_with",
        Duration::from_secs(20),
        || board.u64(0).load(SeqCst) == 1,
    );
    kids.kill(producer);
    kids.wait(producer);
    assert_eq!(
        q.as_bytes().try_get().unwrap(),
        None,
        "a killed fill committed"
    );
    q.as_bytes().put(b"first").unwrap();
    q.as_bytes().put(b"second").unwrap();
    let consumer = kids.fork(|| {
        let _ = q.as_bytes().get_with(|_| stuck(2));
        1
    });
    util::poll_until(
        "the consumer inside get_with",
        Duration::from_secs(20),
        || board.u64(0).load(SeqCst) == 2,
    );
    kids.kill(consumer);
    kids.wait(consumer);
    assert_eq!(
        q.as_bytes().get().unwrap(),
        b"first",
        "the killed read took its message"
    );
    assert_eq!(q.as_bytes().get().unwrap(), b"second");
    assert!(q.recoveries() >= 2, "both locks were taken over");
}

/// A record header whose length a peer scribbled over is an error for `get_with` and
/// `get_into_slice`, and the closure is not called.
#[test]
fn queue_garbage_record_length_is_an_error_for_the_in_place_forms() {
    use std::os::unix::fs::FileExt;
    let name = util::unique_name("queue-inplace-garbage");
    let q: Queue<()> = Queue::create(&name, 4).unwrap();
    q.as_bytes().put(&[1; 16]).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::path::Path::new("/dev/shm").join(&name))
        .unwrap();
    // The first record's header word, at the ring's start (offset 4096): tag 0xA5, length.
    let mut word = [0; 8];
    f.read_exact_at(&mut word, 4096).unwrap();
    assert_eq!(u64::from_le_bytes(word), 0xA5 << 56 | 16);
    for garbage in [
        0xA5 << 56 | 1 << 40,
        0xA5 << 56 | 0xFFFF_FFFF,
        0x17 << 56 | 16,
    ] {
        f.write_at(&u64::to_le_bytes(garbage), 4096).unwrap();
        match q.as_bytes().try_get_with(|_| panic!("called on garbage")) {
            Err(RecvError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
            other => panic!("expected Failed, got {other:?}"),
        }
        let mut buf = vec![0; 1 << 20];
        match q.as_bytes().try_get_into_slice(&mut buf) {
            Err(RecvError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
    f.write_at(&word, 4096).unwrap();
    assert_eq!(q.as_bytes().try_get_with(<[u8]>::len).unwrap(), Some(16));
    drop(q);
    assert!(!util::shm_exists(&name));
}

#[test]
fn channel_send_with_and_recv_with_carry_large_messages_between_processes() {
    let _wd = util::watchdog("channel_inplace", Duration::from_secs(60));
    let (tx, rx) = channel::Options::new()
        .capacity(4)
        .max_message_size(1 << 20)
        .anonymous::<()>()
        .unwrap();
    let mut kids = Children::new();
    let sender = kids.fork(|| {
        for (i, &len) in SIZES.iter().chain(SIZES.iter()).enumerate() {
            let sent = if i % 2 == 0 {
                tx.send_with(len, |buf| {
                    fill_pattern(i as u8, buf);
                    buf.len()
                })
                .map(|n| n == len)
            } else {
                tx.send_bytes(&pattern(i as u8, len)).map(|()| true)
            };
            if sent.ok() != Some(true) {
                return 1;
            }
        }
        0
    });
    let mut buf = vec![0; 1 << 20];
    for (i, &len) in SIZES.iter().chain(SIZES.iter()).enumerate() {
        let want = pattern(i as u8, len);
        match i % 3 {
            0 => assert!(rx.recv_with(|msg| msg == want).unwrap()),
            1 => {
                let n = rx.recv_into(&mut buf).unwrap();
                assert_eq!(&buf[..n], want);
            }
            _ => {
                let got = rx
                    .recv_into_timeout(&mut buf, Duration::from_secs(10))
                    .unwrap();
                assert_eq!(&buf[..got.unwrap()], want);
            }
        }
    }
    kids.join(sender);
    assert!(rx.is_empty());
}

#[test]
fn channel_in_place_forms_say_not_now_and_name_the_limits() {
    let (tx, rx) = channel::Options::new()
        .capacity(1)
        .max_message_size(100)
        .anonymous::<()>()
        .unwrap();
    assert_eq!(
        rx.try_recv_with(|_| panic!("called on empty")).unwrap(),
        None::<()>
    );
    let mut buf = [0; 4];
    assert_eq!(rx.try_recv_into(&mut buf).unwrap(), None);
    assert_eq!(
        rx.recv_with_timeout(Duration::from_millis(5), |_| panic!("called"))
            .unwrap(),
        None::<()>
    );
    assert_eq!(tx.try_send_with(10, |b| b.fill(3)).unwrap(), Some(()));
    assert_eq!(
        tx.try_send_with(1, |_| panic!("called on full")).unwrap(),
        None::<()>
    );
    let deadline = Instant::now() + Duration::from_millis(5);
    assert_eq!(
        tx.send_with_deadline(1, deadline, |_| panic!("called"))
            .unwrap(),
        None::<()>
    );
    assert_eq!(
        tx.send_with_timeout(1, Duration::from_millis(5), |_| panic!("called"))
            .unwrap(),
        None::<()>
    );
    match rx.try_recv_into(&mut buf) {
        Err(RecvError::Failed(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains("10 bytes") && e.to_string().contains("4 bytes"),
                "{e}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let mut buf = [0; 10];
    assert_eq!(
        rx.recv_into_deadline(&mut buf, deadline).unwrap(),
        Some(10),
        "it stayed"
    );
    assert_eq!(buf, [3; 10]);
    let SendError::Failed(e) = tx.send_with(101, |_| ()).unwrap_err() else {
        panic!("expected Failed")
    };
    let text = e.to_string();
    assert!(
        text.contains("101 bytes") && text.contains("100 bytes") && text.contains("store"),
        "{text}"
    );
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tx.send_with(5, |_| -> () { panic!("fill fails") })
    }));
    assert!(panicked.is_err());
    assert_eq!(
        rx.try_recv_with(<[u8]>::to_vec).unwrap(),
        None,
        "a panicking fill sent"
    );
    tx.send_bytes(b"hello").unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.recv_with(|_| -> () { panic!("read fails") })
    }));
    assert!(panicked.is_err());
    assert_eq!(
        rx.try_recv_with(<[u8]>::to_vec).unwrap().unwrap(),
        b"hello",
        "it stayed"
    );
}

/// A sender killed inside `send_with` publishes nothing; a receiver killed inside `recv_with`
/// leaves the message to the next owner of the receiving end.
#[test]
fn channel_killed_inside_send_with_or_recv_with_commits_nothing() {
    let _wd = util::watchdog("channel_inplace_kill", Duration::from_secs(60));
    let board = Board::new(64);
    let (tx, rx) = channel::Options::new()
        .capacity(4)
        .max_message_size(1000)
        .anonymous::<()>()
        .unwrap();
    let mut kids = Children::new();
    let stuck = |step: u64| {
        board.u64(0).store(step, SeqCst);
        loop {
            std::hint::spin_loop();
        }
    };
    let sender = kids.fork(|| {
        let _ = tx.send_with(1000, |buf| {
            buf.fill(9);
            stuck(1)
        });
        1
    });
    util::poll_until(
        "the sender inside send_with",
        Duration::from_secs(20),
        || board.u64(0).load(SeqCst) == 1,
    );
    kids.kill(sender);
    kids.wait(sender);
    assert_eq!(
        rx.try_recv_with(<[u8]>::len).unwrap(),
        None,
        "a killed fill was sent"
    );
    tx.send_bytes(b"first").unwrap();
    tx.send_bytes(b"second").unwrap();
    let receiver = kids.fork(|| {
        let _ = rx.recv_with(|_| stuck(2));
        1
    });
    util::poll_until(
        "the receiver inside recv_with",
        Duration::from_secs(20),
        || board.u64(0).load(SeqCst) == 2,
    );
    kids.kill(receiver);
    kids.wait(receiver);
    assert_eq!(
        rx.recv_with(<[u8]>::to_vec).unwrap(),
        b"first",
        "the killed read took it"
    );
    assert_eq!(rx.recv_with(<[u8]>::to_vec).unwrap(), b"second");
}

/// A slot length a peer scribbled over is an error for `recv_with` and `recv_into`, and the
/// closure is not called.
#[test]
fn channel_garbage_slot_length_is_an_error_for_the_in_place_forms() {
    use std::os::unix::fs::FileExt;
    let name = util::unique_name("chan-inplace-garbage");
    let tx: channel::Sender<()> = channel::Options::new()
        .max_message_size(64)
        .sender(&name)
        .unwrap();
    let rx: channel::Receiver<()> = channel::Options::new()
        .mode(CreationMode::Open)
        .receiver(&name)
        .unwrap();
    tx.send_bytes(&[1; 16]).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::path::Path::new("/dev/shm").join(&name))
        .unwrap();
    // Slot 0's length, at the first slot (offset 448).
    let mut len = [0; 4];
    f.read_exact_at(&mut len, 448).unwrap();
    assert_eq!(u32::from_le_bytes(len), 16);
    for garbage in [65u32, 1 << 20, u32::MAX] {
        f.write_at(&garbage.to_le_bytes(), 448).unwrap();
        match rx.try_recv_with(|_| panic!("called on garbage")) {
            Err(RecvError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
            other => panic!("expected Failed, got {other:?}"),
        }
        let mut buf = vec![0; 1 << 20];
        match rx.try_recv_into(&mut buf) {
            Err(RecvError::Failed(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
    f.write_at(&len, 448).unwrap();
    assert_eq!(rx.try_recv_with(<[u8]>::len).unwrap(), Some(16));
    drop((tx, rx));
    assert!(!util::shm_exists(&name));
}
