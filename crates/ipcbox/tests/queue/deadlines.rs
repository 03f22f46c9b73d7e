//! The `_deadline` forms of the queue and the channel: waiting for another process until an
//! instant, and "not now" in `Ok` once it has passed.

use super::*;

/// An instant far enough away that reaching it means the test hangs (the watchdog's job).
fn far() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(20)
}

#[test]
fn queue_deadline_forms_wait_for_another_process_until_their_instant() {
    let _wd = util::watchdog("queue_deadline", Duration::from_secs(60));
    let q: Queue<u32> = Queue::new(1).unwrap();
    let b: Queue<()> = Queue::new(1).unwrap();
    let bq = b.as_bytes();
    // Not now, before another process attached (else an empty queue with no live peer is
    // disconnected): the deadline passes.
    assert_eq!(q.get_deadline(soon()).unwrap(), None, "empty");
    assert_eq!(q.get_deadline(Instant::now()).unwrap(), None, "passed");
    assert!(q.put_deadline(&1, soon()).unwrap());
    assert!(!q.put_deadline(&2, soon()).unwrap(), "full");
    assert_eq!(q.get().unwrap(), 1);
    let mut buf = Vec::new();
    assert!(!bq.get_into_deadline(&mut buf, soon()).unwrap(), "empty");
    assert_eq!(bq.get_deadline(Instant::now()).unwrap(), None, "passed");

    // The parent's reply goes on a queue of its own: on `q` the child's get could take its own
    // 11 before the parent does.
    let replies: Queue<u32> = Queue::new(1).unwrap();
    let mut kids = Children::new();
    // The child puts 10, then 11, which waits for the parent to take 10 (capacity 1), then
    // waits for the parent's 12; the parent waits for each byte message.
    let child = kids.fork(|| {
        let typed = (
            q.put_deadline(&10, far()),
            q.put_deadline(&11, far()),
            replies.get_deadline(far()),
        );
        let bytes = (
            bq.put_deadline(b"first", far()),
            bq.put_deadline(b"second", far()),
        );
        match (typed, bytes) {
            ((Ok(true), Ok(true), Ok(Some(12))), (Ok(true), Ok(true))) => 0,
            _ => 1,
        }
    });
    assert_eq!(q.get_deadline(far()).unwrap(), Some(10));
    assert_eq!(q.get_deadline(far()).unwrap(), Some(11));
    assert!(replies.put_deadline(&12, far()).unwrap());
    assert!(bq.get_into_deadline(&mut buf, far()).unwrap());
    assert_eq!(buf, b"first");
    assert_eq!(
        bq.get_deadline(far()).unwrap().as_deref(),
        Some(&b"second"[..])
    );
    kids.join(child);
}

#[test]
fn channel_deadline_forms_wait_for_another_process_until_their_instant() {
    let _wd = util::watchdog("channel_deadline", Duration::from_secs(60));
    let (tx, rx) = channel::new::<u32>(1).unwrap();
    let (btx, brx) = channel::Options::new()
        .capacity(1)
        .max_message_size(16)
        .anonymous::<()>()
        .unwrap();
    // The parent receives: not now while the sender has not sent.
    assert_eq!(rx.recv_deadline(soon()).unwrap(), None, "empty");
    assert_eq!(rx.recv_deadline(Instant::now()).unwrap(), None, "passed");
    let mut buf = Vec::new();
    assert!(!brx.recv_bytes_into_deadline(&mut buf, soon()).unwrap());

    let mut kids = Children::new();
    // The child sends 1, then 2, which waits for the parent to take 1 (one slot); then two
    // byte messages the same way.
    let child = kids.fork(|| {
        let sent = [
            tx.send_deadline(&1, far()),
            tx.send_deadline(&2, far()),
            btx.send_bytes_deadline(b"first", far()),
            btx.send_bytes_deadline(b"second", far()),
        ];
        i32::from(!sent.iter().all(|s| matches!(s, Ok(true))))
    });
    assert_eq!(rx.recv_deadline(far()).unwrap(), Some(1));
    assert_eq!(rx.recv_deadline(far()).unwrap(), Some(2));
    for want in [&b"first"[..], b"second"] {
        assert!(brx.recv_bytes_into_deadline(&mut buf, far()).unwrap());
        assert_eq!(buf, want);
    }
    kids.join(child);

    // A sender finds the channel full until its deadline.
    let (tx, rx) = channel::new::<u32>(1).unwrap();
    assert!(tx.send_deadline(&1, soon()).unwrap());
    assert!(!tx.send_deadline(&2, soon()).unwrap(), "full");
    assert!(!tx.send_deadline(&2, Instant::now()).unwrap(), "passed");
    assert_eq!(rx.recv().unwrap(), 1);
}
