//! The queue's batch operations: order, exactly-once delivery to batch and single
//! consumers, partial fits, closing, and a panic inside `put_many`.

use super::*;

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
            Ok(0) => {}
            Ok(n) => {
                assert_eq!(n, out.len());
                assert!(out.windows(2).all(|w| w[0] < w[1]), "batch out of order");
                for &s in &out {
                    board.u8(s as usize).fetch_add(1, SeqCst);
                }
                mine += n as u64;
            }
            Err(RecvError::Disconnected) => break,
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
    assert_eq!(q.try_get_many(8, &mut out).unwrap(), 0, "empty");
    assert_eq!(
        q.get_many_timeout(8, &mut out, Duration::from_millis(20))
            .unwrap(),
        0
    );
    assert!(out.is_empty());
    assert_eq!(q.get_many(0, &mut out).unwrap(), 0, "max 0 takes nothing");
    assert_eq!(q.try_put_many(&[]).unwrap(), 0);
    // Only a prefix fits.
    let all: Vec<u32> = (0..10).collect();
    assert_eq!(q.try_put_many(&all).unwrap(), 4);
    assert!(q.is_full());
    assert_eq!(q.try_put_many(&all[4..]).unwrap(), 0, "full");
    assert_eq!(
        q.put_many_timeout(&all[4..], Duration::from_millis(20))
            .unwrap(),
        0
    );
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
        Err(PutManyError {
            sent: 2,
            error: SendError::Failed(e),
        }) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
        other => panic!("expected Failed with 2 sent, got {other:?}"),
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
        Err(PutManyError {
            sent: 4,
            error: SendError::Disconnected,
        }) => 0,
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
        Err(PutManyError {
            sent: 0,
            error: SendError::Disconnected,
        }) => {}
        other => panic!("expected Disconnected with 0 sent, got {other:?}"),
    }
    match q.try_put_many(&[7]) {
        Err(PutManyError {
            sent: 0,
            error: SendError::Disconnected,
        }) => {}
        other => panic!("expected Disconnected with 0 sent, got {other:?}"),
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
        Err(RecvError::Disconnected) => {}
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
        Ok(true) => 0,
        _ => 1,
    });
    kids.join(child);
    let mut buf = Vec::new();
    assert!(bytes.try_get_into(&mut buf).unwrap());
    assert_eq!(
        buf, b"from the child",
        "the panicked batch committed nothing"
    );
    assert!(!bytes.try_get_into(&mut buf).unwrap(), "empty");
}

/// A batch of large messages stops once it holds 256 KiB, so the producers get room back
/// sooner; the rest comes with the next batch, in order.
#[test]
fn a_batch_stops_after_256_kib() {
    let q: Queue<()> = queue::Options::new()
        .capacity(16)
        .byte_capacity(1 << 20)
        .anonymous()
        .unwrap();
    let b = q.as_bytes();
    let msgs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100 << 10]).collect();
    b.put_many(&msgs).unwrap();
    let (mut buf, mut ends) = (Vec::new(), Vec::new());
    assert_eq!(
        b.get_many_into(10, &mut buf, &mut ends).unwrap(),
        3,
        "100 KiB x 3 > 256 KiB"
    );
    assert_eq!(ends, [100 << 10, 200 << 10, 300 << 10]);
    assert!(buf
        .chunks(100 << 10)
        .zip(0u8..)
        .all(|(m, i)| m.iter().all(|&x| x == i)));
    let mut out = Vec::new();
    assert_eq!(b.try_get_many(10, &mut out).unwrap(), 1);
    assert_eq!(out, [vec![3u8; 100 << 10]]);
    assert_eq!(b.try_get_many(10, &mut out).unwrap(), 0, "empty");
}
