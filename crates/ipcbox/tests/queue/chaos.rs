//! SIGKILL chaos: producers and consumers of the queue (single, in-place and batch operations)
//! and both ends of a channel (copying and in-place) are killed at random while they stream
//! checksummed messages.
//! Afterwards no message was delivered twice or torn, none was lost but by a consumer killed
//! inside `get`, and the queue or channel still works.

use super::*;
use ipcbox::codec::{Codec, Postcard};

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
        // Every other message is written in place, so kills land inside `put_with` too.
        let put = if s % 2 == 0 {
            q.put(&msg).is_ok()
        } else {
            let mut bytes = Vec::new();
            Postcard.encode(&msg, &mut bytes).unwrap();
            q.as_bytes()
                .put_with(bytes.len(), |buf| buf.copy_from_slice(&bytes))
                .is_ok()
        };
        if !put {
            return 2;
        }
        committed(s).store(1, SeqCst);
    };
    let consumer = move |c: usize| {
        move || loop {
            board.u64(2 + c).store(1, SeqCst);
            // Consumer 1 reads in place, so kills land inside `get_with` too.
            let got = if c == 1 {
                q.as_bytes()
                    .get_with_timeout(Duration::from_millis(50), |bytes| {
                        Postcard
                            .decode(bytes)
                            .map_err(|e| RecvError::Failed(io::Error::other(e.to_string())))
                    })
                    .and_then(Option::transpose)
            } else {
                q.get_timeout(Duration::from_millis(50))
            };
            match got {
                Ok(Some(m)) => {
                    if !m.is_whole(TOTAL) {
                        return 3; // garbage delivered
                    }
                    seen(m.seq).fetch_add(1, SeqCst);
                    board.u64(2 + c).store(0, SeqCst);
                }
                Ok(None) => {
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
        Ok(Some(m)) if m.seq == 7 && m.check == 1 => 0,
        _ => 1,
    });
    q.put(&Chaos {
        seq: 7,
        check: 1,
        pad: vec![],
    })
    .unwrap();
    kids2.join(c);
    q.put(&Chaos {
        seq: 8,
        check: 2,
        pad: vec![1; 100],
    })
    .unwrap();
    assert_eq!(q.get().unwrap().pad.len(), 100);
    assert!(q.is_empty());
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
                    Ok(1..) => {
                        for m in &out {
                            if !m.is_whole(TOTAL) {
                                return 3; // garbage delivered
                            }
                            seen(m.seq).fetch_add(1, SeqCst);
                        }
                        board.u64(2 + c).store(0, SeqCst);
                    }
                    Ok(0) => {
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
            // Every other message is written in place, so kills land inside `send_with` too.
            let sent = if s % 2 == 0 {
                tx.send(&(s, chaos_check(s)))
            } else {
                let mut bytes = Vec::new();
                Postcard.encode(&(s, chaos_check(s)), &mut bytes).unwrap();
                tx.send_with(bytes.len(), |buf| buf.copy_from_slice(&bytes))
            };
            match sent {
                Ok(()) => break,
                Err(SendError::Disconnected) if board.u64(1).load(SeqCst) == 0 => {}
                Err(SendError::Disconnected) => return 2,
                Err(_) => return 5,
            }
        }
        committed(s).store(1, SeqCst);
    };
    let receiver = move || loop {
        board.u64(2).store(1, SeqCst);
        // Every other receive reads in place, so kills land inside `recv_with` too.
        let got = if board.u64(3).load(SeqCst) % 2 == 0 {
            rx.recv_timeout(Duration::from_millis(50))
        } else {
            rx.recv_with_timeout(Duration::from_millis(50), |bytes| {
                Postcard
                    .decode(bytes)
                    .map_err(|e| RecvError::Failed(io::Error::other(e.to_string())))
            })
            .and_then(Option::transpose)
        };
        match got {
            Ok(Some((s, check))) => {
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
            Ok(None) | Err(RecvError::Disconnected) => {
                board.u64(2).store(0, SeqCst);
                if board.u64(1).load(SeqCst) != 0 {
                    return 0;
                }
            }
            Err(RecvError::Failed(_)) => return 4,
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
    tx.send(&(1, 2)).unwrap();
    assert_eq!(rx.recv().unwrap(), (1, 2));
}
