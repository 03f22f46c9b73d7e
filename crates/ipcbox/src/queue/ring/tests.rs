//! Unit tests of the ring. A death inside a commit, or a lock kept by a dead or live process,
//! is staged by writing into the shared memory what that process would leave there.

use super::journal::LOCK_PATIENCE;
use super::*;
use crate::liveness::tests::dead_pid;

fn small() -> Ring {
    let geo = Geometry {
        cap_msgs: 4,
        cap_bytes: 1024,
        max_msg: 256,
    };
    Ring::anonymous(geo, WaitPolicy::Park).unwrap()
}

/// Leaves `side`'s lock held by a dead process, as a process killed holding it does.
fn die_holding(ring: &Ring, side: Side) {
    ring.side(side).lock.store(dead_pid(), SeqCst);
}

/// Does what a consumer killed inside a `get` commit leaves behind: the commit of the
/// first message (5 bytes) started, the journal written, and if `valid` the valid flag
/// set and only the message count applied; the consumers' lock held by the dead process.
fn die_inside_get_commit(ring: &Ring, valid: bool) {
    ring.lock(CONSUMERS).unwrap();
    {
        {
            let (_, c) = ring.both().unwrap();
            let side = ring.side(CONSUMERS);
            side.journal.pos.store(c.pos + 16, Relaxed);
            side.journal.msgs.store(c.msgs + 1, Relaxed);
            side.journal.bytes.store(c.bytes + 5, Relaxed);
            if valid {
                side.journal_valid.store(1, Relaxed);
                side.totals.msgs.store(c.msgs + 1, Relaxed);
            }
        }
    }
    die_holding(ring, CONSUMERS);
}

#[test]
fn a_commit_torn_after_its_journal_is_valid_is_rolled_forward() {
    let ring = small();
    assert!(ring.put(b"hello", Deadline::Now).unwrap());
    assert!(ring.put(b"world", Deadline::Now).unwrap());
    die_inside_get_commit(&ring, true);
    // The producers see the half-applied totals (one message fewer, its space not yet
    // free) and still work.
    assert!(ring.put(b"third", Deadline::Now).unwrap());
    let mut out = Vec::new();
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    assert_eq!(out, b"world", "the dead consumer's message is taken, once");
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    assert_eq!(out, b"third");
    assert!(!ring.get(&mut out, Deadline::Now).unwrap());
    assert_eq!(ring.recoveries(), 1);
    assert_eq!((ring.len(), ring.used_bytes()), (0, 0));
    assert!(ring.put(b"again", Deadline::Now).unwrap());
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    assert_eq!(out, b"again");
}

#[test]
fn a_lock_a_live_process_keeps_ends_timeouts_at_their_deadline() {
    let ring = small();
    // A live process (the test runner's parent) holds the producers' lock, as a stopped
    // producer would.
    let parent = std::os::unix::process::parent_id();
    ring.h().producers.lock.store(parent, SeqCst);
    // Watchdog: the lock's own patience is 10 s; giving up at the operations' deadlines
    // answers long before half of it.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let timed = ring.put(b"x", Deadline::after(std::time::Duration::from_millis(50)));
            let tried = ring.put(b"x", Deadline::Now);
            done.send((timed, tried)).unwrap();
        });
        let (timed, tried) = finished
            .recv_timeout(LOCK_PATIENCE.limit / 2)
            .expect("put waited for the live holder past its deadline");
        assert!(matches!(timed, Ok(false)), "{timed:?}");
        assert!(
            matches!(&tried, Err(SendError::Failed(e)) if e.kind() == io::ErrorKind::TimedOut
                && e.to_string().contains(&format!("held by live pid {parent}"))),
            "{tried:?}"
        );
    });
    // The consumers' side does not need that lock: an empty queue says so at once.
    let mut out = Vec::new();
    assert!(!ring.get(&mut out, Deadline::Now).unwrap());
    ring.h().producers.lock.store(0, SeqCst);
    assert!(ring.put(b"x", Deadline::Now).unwrap());
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    assert_eq!(out, b"x");
}

#[test]
fn a_commit_torn_before_its_journal_is_valid_leaves_the_old_state() {
    let ring = small();
    assert!(ring.put(b"hello", Deadline::Now).unwrap());
    die_inside_get_commit(&ring, false);
    let mut out = Vec::new();
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    assert_eq!(out, b"hello", "the message stays for the next consumer");
    assert_eq!(ring.recoveries(), 1);
    assert!(!ring.get(&mut out, Deadline::Now).unwrap());
}

/// Does what a producer killed inside a `put_many` commit leaves behind: `msgs` staged,
/// the journal written and, if `valid`, its valid flag set (but nothing applied); the
/// producers' lock held by the dead process.
fn die_inside_put_many_commit(ring: &Ring, msgs: &[&[u8]], valid: bool) {
    ring.lock(PRODUCERS).unwrap();
    {
        {
            let (mut p, c) = ring.both().unwrap();
            for m in msgs {
                let mut off = ring.offset(p.pos);
                assert!(ring
                    .stage_put(&mut p, &mut off, &c, m.len() as u64, |at| ring
                        .r()
                        .write(at, m))
                    .unwrap());
            }
            let side = ring.side(PRODUCERS);
            side.journal.pos.store(p.pos, Relaxed);
            side.journal.msgs.store(p.msgs, Relaxed);
            side.journal.bytes.store(p.bytes, Relaxed);
            if valid {
                side.journal_valid.store(1, Relaxed);
            }
        }
    }
    die_holding(ring, PRODUCERS);
}

#[test]
fn a_batch_commit_is_all_or_nothing_when_its_producer_dies() {
    let mut out = Vec::new();
    for valid in [false, true] {
        let ring = small();
        assert!(ring.put(b"first", Deadline::Now).unwrap());
        die_inside_put_many_commit(&ring, &[b"a", b"bb", b"ccc"], valid);
        // Consumers do not wait for the dead producer's lock while there is something to
        // take: they see what was committed before it.
        let mut ends = Vec::new();
        out.clear();
        assert!(ring
            .get_many(10, &mut out, &mut ends, Deadline::Now)
            .unwrap());
        assert_eq!(out, b"first");
        // Finding nothing else, a try_ get rolls a valid journal forward: the dead producer's
        // batch was committed, and is there whole; an invalid one is nothing.
        out.clear();
        ends.clear();
        let got = ring
            .get_many(10, &mut out, &mut ends, Deadline::Now)
            .unwrap();
        assert_eq!(got, valid, "journal valid: {valid}");
        assert_eq!(out, if valid { &b"abbccc"[..] } else { b"" });
        assert_eq!(ring.recoveries(), u64::from(valid));
        // The next producer repairs the producers' side if nobody did.
        assert_eq!(ring.put_many(&[b"x"], Deadline::Now).unwrap(), 1);
        out.clear();
        ends.clear();
        assert!(ring
            .get_many(10, &mut out, &mut ends, Deadline::Now)
            .unwrap());
        assert_eq!(out, b"x", "journal valid: {valid}");
        assert_eq!(ends.len(), 1);
        assert_eq!(ring.recoveries(), 1);
        assert_eq!((ring.len(), ring.used_bytes()), (0, 0));
    }
}

#[test]
fn a_sleeping_consumer_takes_a_dead_producers_committed_message_not_disconnected() {
    let ring = small();
    // Another process attached once and is dead now: a sleeper that hears nothing for a
    // slice is told the queue is disconnected, if nothing is left to take.
    ring.lock(PRODUCERS).unwrap();
    assert!(ring.peers().attach(u64::from(dead_pid()), 1));
    ring.h().attached_ever.fetch_add(1, Relaxed);
    ring.unlock(PRODUCERS, false);
    std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut out = Vec::new();
            ring.get(&mut out, Deadline::Forever).map(|_| out)
        });
        // Wait until the consumer sleeps (its waiter bit set under the producers' lock).
        while ring.h().not_empty.load(SeqCst) & 1 == 0 {
            std::thread::yield_now();
        }
        // A producer killed after its commit, before it could look for sleepers to wake.
        ring.lock(PRODUCERS).unwrap();
        let (mut p, c) = ring.both().unwrap();
        let mut off = ring.offset(p.pos);
        let words = b"last words";
        assert!(ring
            .stage_put(&mut p, &mut off, &c, words.len() as u64, |at| ring
                .r()
                .write(at, words))
            .unwrap());
        ring.commit(PRODUCERS, p);
        die_holding(&ring, PRODUCERS);
        let got = consumer.join().unwrap();
        assert!(
            matches!(got, Ok(ref m) if m == b"last words"),
            "a committed message is taken before the queue counts as disconnected: {got:?}"
        );
    });
}

#[test]
fn huge_totals_in_the_header_are_errors_not_overflows() {
    const TOP: u64 = !7;
    // (fields overwritten, put fails, get fails): each side checks what it reads. A
    // producer judges room on its last view of the consumers first, so a consumers'
    // total it has not read again yet cannot fail its put.
    use std::mem::offset_of;
    const P_POS: usize = offset_of!(RawQueueHeader, producers.totals.pos);
    const P_BYTES: usize = offset_of!(RawQueueHeader, producers.totals.bytes);
    const C_POS: usize = offset_of!(RawQueueHeader, consumers.totals.pos);
    const C_MSGS: usize = offset_of!(RawQueueHeader, consumers.totals.msgs);
    type Case = (&'static [(usize, u64)], bool, bool);
    let cases: [Case; 5] = [
        (&[(P_POS, TOP), (C_POS, TOP)], true, true),
        (&[(P_BYTES, u64::MAX)], true, false),
        (&[(P_POS, 1 << 40)], true, true),
        (&[(C_MSGS, u64::MAX)], false, true),
        (&[(C_POS, 4096)], false, true),
    ];
    for (fields, put_fails, get_fails) in cases {
        let ring = small();
        for &(field, value) in fields {
            let word: &AtomicU64 = ring.r().at(field).unwrap();
            word.store(value, Relaxed);
        }
        let mut out = Vec::new();
        let put = ring.put(b"x", Deadline::Now);
        assert_eq!(
            matches!(put, Err(SendError::Failed(ref e)) if e.kind() == io::ErrorKind::InvalidData),
            put_fails,
            "put with {fields:?}: {put:?}"
        );
        let get = ring.get(&mut out, Deadline::Now);
        assert_eq!(
            matches!(get, Err(RecvError::Failed(ref e)) if e.kind() == io::ErrorKind::InvalidData),
            get_fails,
            "get with {fields:?}: {get:?}"
        );
        assert!(ring.task_done().is_err(), "task_done with {fields:?}");
        // Filling the queue makes a producer read the consumers' totals afresh: then
        // every corruption shows.
        let fill: Result<Vec<bool>, SendError> =
            (0..8).map(|_| ring.put(b"x", Deadline::Now)).collect();
        assert!(
            matches!(fill, Err(SendError::Failed(_))),
            "filling with {fields:?}: {fill:?}"
        );
    }
    let ring = small();
    assert!(ring.put(b"x", Deadline::Now).unwrap());
    ring.h().done.store(u64::MAX, Relaxed);
    let err = ring.task_done().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

#[test]
fn too_many_task_done_is_an_error_and_join_sees_all_done() {
    let ring = small();
    assert!(ring.put(b"a", Deadline::Now).unwrap());
    assert!(ring.put(b"b", Deadline::Now).unwrap());
    let mut out = Vec::new();
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    ring.task_done().unwrap();
    let err = ring.task_done().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(!ring.all_done());
    assert!(ring.get(&mut out, Deadline::Now).unwrap());
    ring.task_done().unwrap();
    assert!(ring.all_done());
    assert!(ring.join(Deadline::Now).unwrap());
}

#[test]
fn opening_ignores_an_absurd_geometry() {
    let geo = Geometry {
        cap_msgs: u64::MAX,
        cap_bytes: u64::MAX,
        max_msg: u64::MAX,
    };
    let name = format!("ipcbox-ring-open-absurd-{}", std::process::id());
    let err = Ring::named(&name, CreationMode::Open, geo, 0o600, WaitPolicy::Park).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[test]
fn wrap_around_keeps_records_whole() {
    let ring = small();
    let mut out = Vec::new();
    for round in 0..200u32 {
        let len = (round as usize * 37) % 250 + 1;
        let msg: Vec<u8> = (0..len).map(|i| (i as u32 + round) as u8).collect();
        assert!(ring.put(&msg, Deadline::Now).unwrap());
        if round % 3 == 0 {
            assert!(ring.put(&msg, Deadline::Now).unwrap());
            assert!(ring.get(&mut out, Deadline::Now).unwrap());
            assert_eq!(out, msg);
        }
        assert!(ring.get(&mut out, Deadline::Now).unwrap());
        assert_eq!(out, msg);
    }
}
