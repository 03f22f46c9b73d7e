//! Framed connections across real processes: typed round trips, end of stream, limits, torn
//! frames, garbage, timeouts in the middle of a frame, and a Python peer.

mod util;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ipcbox::frame::{
    self, Connection, Readable, RecvError, SendError, Transport, Writable, DEFAULT_MAX_FRAME_LEN,
    WIRE_MAX_FRAME_LEN,
};
use ipcbox::{pipe, socket};
use serde::{Deserialize, Serialize};

const VAR: &str = "IPCBOX_FRAME_CONN";
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Job,
    Answer,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Msg {
    kind: Kind,
    id: u32,
    flag: bool,
    text: String,
    data: Vec<f64>,
}

fn job(id: u32) -> Msg {
    Msg {
        kind: Kind::Job,
        id,
        flag: id % 2 == 0,
        text: format!("job {id}"),
        data: (0..id % 50).map(f64::from).collect(),
    }
}

/// Spawns this test binary as a child playing `arg`, holding `conn`.
fn spawn_child<T, M>(conn: Connection<M, M, T>, arg: &str) -> Child
where
    T: Transport + Into<std::os::fd::OwnedFd>,
{
    let mut cmd = util::role_command("role_child", "frame-child", arg);
    conn.pass_to_child(&mut cmd, VAR).unwrap();
    let child = cmd.spawn().unwrap();
    drop(cmd); // closes our copy of the passed end
    child
}

fn assert_success(mut child: Child, what: &str) {
    let status = child.wait().unwrap();
    assert!(status.success(), "{what}: child {status}");
}

/// The child side of every cross-process test, chosen by the role argument.
#[test]
fn role_child() {
    let Some(arg) = util::role_arg("frame-child") else {
        return;
    };
    match arg.as_str() {
        "typed-echo" => typed_echo(Connection::<Msg>::from_env(VAR).unwrap()),
        "typed-echo-stream" => {
            typed_echo(Connection::<Msg, Msg, socket::Stream>::from_env(VAR).unwrap())
        }
        "typed-echo-seqpacket" => {
            typed_echo(Connection::<Msg, Msg, socket::SeqPacket>::from_env(VAR).unwrap())
        }
        "send-1000-socket" => send_1000(Connection::<Msg>::from_env(VAR).unwrap()),
        "send-1000-pipe" => send_1000(Connection::<Msg, Msg, pipe::Writer>::from_env(VAR).unwrap()),
        "torn-socket" => torn(Connection::<Msg>::from_env(VAR).unwrap()),
        "torn-pipe" => torn(Connection::<Msg, Msg, pipe::Writer>::from_env(VAR).unwrap()),
        "from-env-checks" => from_env_checks(),
        "huge-header" => huge_header(),
        other => match other.strip_prefix("request-reply:") {
            Some(path) => request_reply_client(path),
            None => panic!("unknown role {other}"),
        },
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Request {
    Add(u32, u32),
    Echo(String),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Reply {
    Sum(u64),
    Text(String),
}

/// A client of the request/reply test: its end sends `Request` and receives `Reply`, over
/// ipcbox's own stream socket (the default transport).
fn request_reply_client(path: &str) {
    let stream = socket::Stream::connect(&socket::Endpoint::unix(path)).unwrap();
    let mut conn = Connection::<Request, Reply>::new(stream).unwrap();
    for i in 0..100u32 {
        conn.send(&Request::Add(i, u32::MAX)).unwrap();
        assert_eq!(
            conn.recv().unwrap(),
            Reply::Sum(u64::from(i) + u64::from(u32::MAX))
        );
        conn.send(&Request::Echo(format!("é{i}"))).unwrap();
        assert_eq!(conn.recv().unwrap(), Reply::Text(format!("É{i}")));
    }
}

fn typed_echo<T: Readable + Writable>(mut conn: Connection<Msg, Msg, T>) {
    loop {
        match conn.recv() {
            Ok(mut m) => {
                assert_eq!(m.kind, Kind::Job);
                m.kind = Kind::Answer;
                m.data = vec![m.data.iter().sum()];
                conn.send(&m).unwrap();
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("child recv: {e}"),
        }
    }
}

fn send_1000<T: Writable + Into<std::os::fd::OwnedFd>>(mut conn: Connection<Msg, Msg, T>) {
    for id in 0..1000 {
        conn.send(&job(id)).unwrap();
    }
    // Exit without any goodbye: the close itself must arrive after every message.
}

fn torn<T: Writable + Into<std::os::fd::OwnedFd>>(conn: Connection<Msg, Msg, T>) {
    conn.send_bytes_then_die();
}

/// Writes a whole frame, then half of the next one, then SIGKILLs this process.
trait SendThenDie {
    fn send_bytes_then_die(self);
}

impl<T: Writable + Into<std::os::fd::OwnedFd>> SendThenDie for Connection<Msg, Msg, T> {
    fn send_bytes_then_die(mut self) {
        self.send(&job(7)).unwrap();
        let fd: std::os::fd::OwnedFd = self.into_transport().unwrap().into();
        let mut half = 1000u32.to_le_bytes().to_vec();
        half.extend_from_slice(&[0x55; 10]);
        rustix::io::write(&fd, &half).unwrap();
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL)
            .unwrap();
        unreachable!("SIGKILL returned");
    }
}

fn from_env_checks() {
    let err = Connection::<Msg>::from_env("IPCBOX_FRAME_NOT_SET").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    // The parent passed a pipe's reading end: not a socket, not a writer.
    let err = Connection::<Msg, Msg, UnixStream>::from_env(VAR).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("wrong kind"), "{err}");
    let err = Connection::<Msg, Msg, pipe::Writer>::from_env(VAR).unwrap_err();
    assert!(err.to_string().contains("not the writing end"), "{err}");
    // A failed check leaves it unclaimed: the right kind still takes it, once.
    let mut conn = Connection::<Msg, Msg, pipe::Reader>::from_env(VAR).unwrap();
    let err = Connection::<Msg, Msg, pipe::Reader>::from_env(VAR).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(conn.recv().unwrap(), job(1));
    assert!(conn.recv().unwrap_err().is_disconnected());
}

/// Receives a header claiming 4 GiB under an address-space limit far below that: any attempt
/// to allocate what the header claims aborts this process, which fails the parent's test.
fn huge_header() {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    let limit = pages * 4096 + (256 << 20);
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: rustix::process::getrlimit(rustix::process::Resource::As).maximum,
        },
    )
    .unwrap();
    let mut conn = Connection::<Msg>::from_env(VAR).unwrap();
    match conn.recv() {
        Err(RecvError::TooLarge { len, max }) => {
            assert_eq!((len, max), (u32::MAX as usize, DEFAULT_MAX_FRAME_LEN));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Even with the limit raised to what the wire allows, only arrived bytes are buffered.
    conn.set_max_frame_len(WIRE_MAX_FRAME_LEN);
    match conn.recv() {
        Err(RecvError::Torn { expected, received }) => {
            assert_eq!(expected, 4 + u32::MAX as usize);
            assert_eq!(received, 4 + 3 * 1024 * 1024);
        }
        other => panic!("expected Torn, got {other:?}"),
    }
}

fn typed_round_trip<T>(
    mut mine: Connection<Msg, Msg, T>,
    theirs: Connection<Msg, Msg, T>,
    role: &str,
) where
    T: Readable + Writable + Into<std::os::fd::OwnedFd>,
{
    let child = spawn_child(theirs, role);
    for id in 0..200 {
        let sent = job(id);
        mine.send(&sent).unwrap();
        let got = mine.recv().unwrap();
        assert_eq!(got.kind, Kind::Answer);
        assert_eq!((got.id, got.flag, &got.text), (id, sent.flag, &sent.text));
        assert_eq!(got.data, vec![sent.data.iter().sum::<f64>()]);
    }
    drop(mine);
    assert_success(child, role);
}

#[test]
fn typed_round_trip_with_a_child_process() {
    let _w = util::watchdog("typed_round_trip_with_a_child_process", LIMIT);
    let (mine, theirs) = frame::duplex::<Msg>().unwrap();
    typed_round_trip(mine, theirs, "typed-echo");
}

#[test]
fn typed_round_trip_over_socket_stream_and_seqpacket() {
    let _w = util::watchdog("typed_round_trip_over_socket types", LIMIT);
    let (a, b) = socket::Stream::pair().unwrap();
    let (a, b) = (Connection::new(a).unwrap(), Connection::new(b).unwrap());
    typed_round_trip(a, b, "typed-echo-stream");
    let (a, b) = socket::SeqPacket::pair().unwrap();
    let (a, b) = (Connection::new(a).unwrap(), Connection::new(b).unwrap());
    typed_round_trip(a, b, "typed-echo-seqpacket");
}

#[test]
fn datagram_pair_carries_one_frame_per_datagram() {
    let (a, b) = socket::Datagram::pair().unwrap();
    let mut a = Connection::<Msg, Msg, _>::new(a).unwrap();
    let mut b = Connection::<Msg, Msg, _>::new(b).unwrap();
    assert!(b.try_recv().unwrap().is_none());
    a.send(&job(1)).unwrap();
    a.send_bytes(&[5; 3000]).unwrap();
    a.send(&job(2)).unwrap();
    assert_eq!(b.recv().unwrap(), job(1));
    b.set_max_frame_len(100);
    assert!(matches!(
        b.recv_timeout(Duration::from_secs(5)),
        Err(RecvError::TooLarge {
            len: 3000,
            max: 100
        })
    ));
    b.set_max_frame_len(4000);
    assert_eq!(b.recv_bytes().unwrap(), vec![5; 3000]);
    assert_eq!(b.recv().unwrap(), job(2));
    assert!(b.recv_timeout(Duration::from_millis(10)).unwrap().is_none());
}

fn receive_1000_then_disconnected<T: Readable>(mut conn: Connection<Msg, Msg, T>, child: Child) {
    for id in 0..1000 {
        assert_eq!(conn.recv().unwrap(), job(id));
    }
    assert!(matches!(conn.recv(), Err(RecvError::Disconnected)));
    assert!(matches!(conn.try_recv(), Err(RecvError::Disconnected)));
    assert!(matches!(
        conn.recv_timeout(Duration::from_millis(1)),
        Err(RecvError::Disconnected)
    ));
    assert!(matches!(
        conn.recv_deadline(Instant::now()),
        Err(RecvError::Disconnected)
    ));
    assert_success(child, "sender");
}

#[test]
fn disconnected_after_every_message_over_a_socketpair() {
    let _w = util::watchdog("disconnected_after_every_message_over_a_socketpair", LIMIT);
    let (mine, theirs) = frame::duplex::<Msg>().unwrap();
    let child = spawn_child(theirs, "send-1000-socket");
    receive_1000_then_disconnected(mine, child);
}

#[test]
fn disconnected_after_every_message_over_a_one_way_pipe() {
    let _w = util::watchdog(
        "disconnected_after_every_message_over_a_one_way_pipe",
        LIMIT,
    );
    let (rx, tx) = frame::pipe::<Msg>().unwrap();
    let child = spawn_child(tx, "send-1000-pipe");
    receive_1000_then_disconnected(rx, child);
}

fn killed_mid_frame_is_torn<T: Readable>(mut conn: Connection<Msg, Msg, T>, mut child: Child) {
    assert_eq!(conn.recv().unwrap(), job(7));
    match conn.recv() {
        Err(e @ RecvError::Torn { .. }) => {
            assert!(matches!(
                e,
                RecvError::Torn {
                    expected: 1004,
                    received: 14
                }
            ));
            assert!(e.to_string().contains("14 of 1004 bytes"), "{e}");
        }
        other => panic!("expected Torn, got {other:?}"),
    }
    assert!(conn.recv().unwrap_err().is_disconnected());
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
}

#[test]
fn peer_killed_mid_frame_over_a_socketpair_is_an_error_not_a_hang() {
    let _w = util::watchdog("peer_killed_mid_frame socketpair", LIMIT);
    let (mine, theirs) = frame::duplex::<Msg>().unwrap();
    let child = spawn_child(theirs, "torn-socket");
    killed_mid_frame_is_torn(mine, child);
}

#[test]
fn peer_killed_mid_frame_over_a_pipe_is_an_error_not_a_hang() {
    let _w = util::watchdog("peer_killed_mid_frame pipe", LIMIT);
    let (rx, tx) = frame::pipe::<Msg>().unwrap();
    let child = spawn_child(tx, "torn-pipe");
    killed_mid_frame_is_torn(rx, child);
}

#[test]
fn four_gib_header_is_refused_without_allocating_it() {
    let _w = util::watchdog("four_gib_header_is_refused_without_allocating_it", LIMIT);
    let (a, b) = UnixStream::pair().unwrap();
    let child = spawn_child(
        Connection::<Msg, Msg, UnixStream>::new(b).unwrap(),
        "huge-header",
    );
    (&a).write_all(&u32::MAX.to_le_bytes()).unwrap();
    (&a).write_all(&vec![0u8; 3 * 1024 * 1024]).unwrap();
    drop(a);
    assert_success(child, "receiver under a 256 MiB address-space margin");
}

#[test]
fn too_large_names_both_sizes_and_leaves_the_frame_unread() {
    let (mut a, mut b) = frame::duplex::<Msg>().unwrap();
    a.send_bytes(&[1; 2000]).unwrap();
    b.set_max_frame_len(1000);
    let err = b.recv().unwrap_err();
    assert!(matches!(
        err,
        RecvError::TooLarge {
            len: 2000,
            max: 1000
        }
    ));
    let text = err.to_string();
    assert!(text.contains("2000") && text.contains("1000"), "{text}");
    let mut small = [0u8; 16];
    assert!(matches!(
        b.try_recv_bytes_into(&mut small),
        Err(RecvError::TooLarge { len: 2000, max: 16 })
    ));
    b.set_max_frame_len(100);
    assert!(matches!(
        b.recv_bytes(),
        Err(RecvError::TooLarge {
            len: 2000,
            max: 100
        })
    ));
    b.set_max_frame_len(4000);
    let mut big = [0u8; 4000];
    assert_eq!(b.recv_bytes_into(&mut big).unwrap(), 2000);
    assert!(big[..2000].iter().all(|&x| x == 1));
    // The sender refuses what its own limit forbids, and sends nothing.
    a.set_max_frame_len(10);
    let err = a.send_bytes(&[0; 11]).unwrap_err();
    assert!(
        matches!(err, SendError::TooLarge { len: 11, max: 10 }),
        "{err}"
    );
    a.send_bytes(b"fits").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"fits");
}

/// A deterministic generator for the garbage tests (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_give_errors_never_panics_or_hangs() {
    let _w = util::watchdog("random_bytes_give_errors_never_panics_or_hangs", LIMIT);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut decode, mut too_large, mut torn) = (0, 0, 0);
    for round in 0..500 {
        let (a, b) = UnixStream::pair().unwrap();
        let mut conn = Connection::<Msg, Msg, UnixStream>::new(b).unwrap();
        conn.set_max_frame_len(if round % 2 == 0 { 4096 } else { 64 });
        let len = (rng.next() % 2048) as usize;
        let mut garbage = rng.bytes(len);
        if round % 3 == 0 && len >= 4 {
            // A plausible header in front of random payload: the codec has to refuse it.
            let n = (len - 4) as u32;
            garbage[..4].copy_from_slice(&n.to_le_bytes());
        } else if round % 3 == 1 && len >= 4 {
            // A header promising two bytes more than will ever come: a torn frame.
            let n = (len - 2) as u32;
            garbage[..4].copy_from_slice(&n.to_le_bytes());
        }
        (&a).write_all(&garbage).unwrap();
        drop(a);
        for _ in 0..=len {
            match conn.recv() {
                Ok(_) => continue,
                Err(RecvError::Decode(_)) => decode += 1,
                Err(RecvError::TooLarge { .. }) => {
                    too_large += 1;
                    break;
                }
                Err(RecvError::Torn { .. }) => torn += 1,
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("unexpected error kind: {e}"),
            }
        }
    }
    assert!(decode > 50, "decode errors: {decode}");
    assert!(too_large > 50, "too large: {too_large}");
    assert!(torn > 10, "torn: {torn}");
}

#[test]
fn a_decode_error_consumes_only_its_frame() {
    let (mut a, mut b) = frame::duplex::<Msg>().unwrap();
    a.send_bytes(&[7, 7, 7]).unwrap(); // variant index 7 does not exist
    a.send(&job(3)).unwrap();
    let err = b.recv().unwrap_err();
    assert!(matches!(err, RecvError::Decode(_)), "{err}");
    assert_eq!(b.recv().unwrap(), job(3));
}

/// A partial frame before a timeout stays buffered; the rest completes it.
fn timeout_in_the_middle_of_a_frame<T: Readable>(
    raw: &mut dyn Write,
    conn: &mut Connection<Msg, Msg, T>,
) {
    assert!(conn.try_recv().unwrap().is_none());
    assert!(conn
        .recv_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    let payload = postcard_of(&job(42));
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let (first, rest) = frame.split_at(frame.len() / 2);
    raw.write_all(&first[..2]).unwrap(); // half a header
    assert!(conn.try_recv().unwrap().is_none());
    raw.write_all(&first[2..]).unwrap(); // the header and part of the payload
    assert!(conn
        .recv_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    assert!(conn.try_recv().unwrap().is_none());
    let soon = Instant::now() + Duration::from_millis(20);
    assert!(conn.recv_deadline(soon).unwrap().is_none());
    assert_eq!(conn.buffered_len(), first.len());
    raw.write_all(rest).unwrap();
    raw.write_all(&frame).unwrap(); // and a whole second one
    assert_eq!(
        conn.recv_timeout(Duration::from_secs(30)).unwrap(),
        Some(job(42))
    );
    assert_eq!(conn.try_recv().unwrap(), Some(job(42)));
    assert!(conn.try_recv().unwrap().is_none());
}

fn postcard_of(m: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    ipcbox::codec::Codec::encode(&mut ipcbox::codec::Postcard, m, &mut out).unwrap();
    out
}

#[test]
fn timeout_mid_frame_keeps_the_stream_whole_on_a_socket() {
    let _w = util::watchdog("timeout_mid_frame socket", LIMIT);
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::<Msg, Msg, UnixStream>::new(b).unwrap();
    timeout_in_the_middle_of_a_frame(&mut &a, &mut conn);
}

#[test]
fn timeout_mid_frame_keeps_the_stream_whole_on_a_pipe() {
    let _w = util::watchdog("timeout_mid_frame pipe", LIMIT);
    let (r, mut w) = pipe::new().unwrap();
    let mut conn = Connection::<Msg, Msg, _>::new(r).unwrap();
    timeout_in_the_middle_of_a_frame(&mut w, &mut conn);
}

/// `try_send` until the transport is full, some frames cut by the full buffer: the receiver
/// still gets every frame whole and in order, and none of a frame refused with `Ok(false)`.
fn try_send_fills_then_everything_arrives<R, W>(
    mut tx: Connection<Msg, Msg, W>,
    mut rx: Connection<Msg, Msg, R>,
) where
    R: Readable,
    W: Writable + Send + 'static,
{
    let big = |id| Msg {
        data: vec![id as f64; 5000],
        ..job(id)
    };
    let mut sent = 0;
    while tx.try_send(&big(sent)).unwrap() {
        sent += 1;
    }
    assert!(sent > 0);
    // Nobody reads: every later attempt is "not now" too, and takes nothing of its message.
    assert!(!tx
        .send_timeout(&big(sent), Duration::from_millis(10))
        .unwrap());
    let soon = Instant::now() + Duration::from_millis(10);
    assert!(!tx.send_deadline(&big(sent), soon).unwrap());
    assert!(!tx.try_send_bytes(&[1; 100]).unwrap());
    assert!(!tx.try_send(&big(sent)).unwrap());
    let sender = std::thread::spawn(move || {
        tx.flush().unwrap();
        tx.send(&job(9999)).unwrap();
    });
    for id in 0..sent {
        assert_eq!(rx.recv().unwrap(), big(id));
    }
    assert_eq!(rx.recv().unwrap(), job(9999));
    sender.join().unwrap();
    assert!(rx.recv().unwrap_err().is_disconnected());
}

#[test]
fn try_send_full_never_corrupts_a_socket_stream() {
    let _w = util::watchdog("try_send_full socket", LIMIT);
    let (a, b) = frame::duplex::<Msg>().unwrap();
    try_send_fills_then_everything_arrives(a, b);
}

#[test]
fn try_send_full_never_corrupts_a_pipe_stream() {
    let _w = util::watchdog("try_send_full pipe", LIMIT);
    let (rx, tx) = frame::pipe::<Msg>().unwrap();
    try_send_fills_then_everything_arrives(tx, rx);
}

#[test]
fn flush_timeout_bounds_the_wait_for_a_peer_that_does_not_read() {
    let _w = util::watchdog("flush_timeout", LIMIT);
    let (mut rx, mut tx) = frame::pipe::<Msg>().unwrap();
    let capacity = tx.transport().set_capacity(4096).unwrap();
    // Larger than the pipe: a try_send puts out what fits and keeps the rest pending.
    let payload = vec![0x5A; 3 * capacity + 11];
    assert!(
        tx.try_send_bytes(&payload).unwrap(),
        "taken, partly pending"
    );
    assert!(tx.pending_len() > 0);
    assert!(!tx.flush_timeout(Duration::from_millis(20)).unwrap());
    assert!(!tx.try_flush().unwrap());
    assert!(tx.pending_len() > 0, "what could not be sent stays pending");
    let reader = std::thread::spawn(move || rx.recv_bytes().unwrap());
    assert!(tx.flush_timeout(LIMIT).unwrap());
    assert_eq!(tx.pending_len(), 0);
    assert_eq!(reader.join().unwrap(), payload);
}

#[test]
fn send_to_a_closed_peer_is_disconnected() {
    let _w = util::watchdog("send_to_a_closed_peer", LIMIT);
    // A child another test forks at this moment may hold a copy of the dropped end until it
    // execs: sends succeed (and then block on a full buffer) until that copy closes too.
    let (mut a, b) = frame::duplex::<Msg>().unwrap();
    drop(b);
    let err = loop {
        if let Err(e) = a.send(&job(1)) {
            break e;
        }
    };
    assert!(err.is_disconnected(), "{err}");
    let (rx, mut tx) = frame::pipe::<Msg>().unwrap();
    drop(rx);
    let err = loop {
        if let Err(e) = tx.send_bytes(b"x") {
            break e;
        }
    };
    assert!(err.is_disconnected(), "{err}");
    assert!(matches!(tx.try_send(&job(1)), Err(SendError::Disconnected)));
    assert!(matches!(
        tx.send_deadline(&job(1), Instant::now()),
        Err(SendError::Disconnected)
    ));
}

#[test]
fn from_env_checks_the_descriptor_before_owning_it() {
    let _w = util::watchdog("from_env_checks", LIMIT);
    let (rx, mut tx) = frame::pipe::<Msg>().unwrap();
    let child = spawn_child(rx, "from-env-checks");
    tx.send(&job(1)).unwrap();
    drop(tx);
    assert_success(child, "from_env checks");
}

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/frame_peer.py");

fn python_peer(conn: Connection<String>, mode: &str) -> Child {
    let mut cmd = Command::new("python3");
    cmd.arg(PEER).arg(mode);
    conn.pass_to_child(&mut cmd, VAR).unwrap();
    let child = cmd.spawn().expect("run python3");
    drop(cmd);
    child
}

#[test]
fn python_peer_speaks_the_wire_format_both_ways() {
    let _w = util::watchdog("python_peer_speaks_the_wire_format_both_ways", LIMIT);
    let (mut mine, theirs) = frame::duplex::<String>().unwrap();
    let child = python_peer(theirs, "echo");
    let payloads: Vec<Vec<u8>> = vec![
        vec![],
        b"a".to_vec(),
        (0..64).collect(),
        (0..200_000u32).map(|i| (i % 251) as u8).collect(),
    ];
    let mut buf = vec![0u8; 300_000];
    for p in &payloads {
        mine.send_bytes(p).unwrap();
        let n = mine.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(&buf[..3], b"py:");
        assert_eq!(&buf[3..n], &p[..]);
    }
    mine.send_bytes(b"quit").unwrap();
    for i in 0..3u32 {
        assert_eq!(mine.recv_bytes().unwrap(), i.to_le_bytes());
    }
    assert_eq!(mine.recv().unwrap(), "hello from python");
    assert!(matches!(mine.recv(), Err(RecvError::Disconnected)));
    assert_success(child, "python echo peer");
}

#[test]
fn python_peer_killed_mid_frame_is_torn() {
    let _w = util::watchdog("python_peer_killed_mid_frame_is_torn", LIMIT);
    let (mut mine, theirs) = frame::duplex::<String>().unwrap();
    let mut child = python_peer(theirs, "torn");
    assert!(matches!(
        mine.recv(),
        Err(RecvError::Torn {
            expected: 1004,
            received: 14
        })
    ));
    assert!(mine.recv().unwrap_err().is_disconnected());
    child.wait().unwrap();
}

/// What a listener accepts is a connection's default transport, and each end names the type
/// it sends and the type it receives: no combined enum, no wrapping the socket twice.
#[test]
fn request_reply_over_an_ipcbox_listener_across_processes() {
    let _w = util::watchdog("request_reply_over_an_ipcbox_listener", LIMIT);
    let dir = util::TempDir::new("frame-reqrep");
    let path = dir.join("server.sock");
    let listener = socket::Listener::bind(&socket::Endpoint::unix(&path)).unwrap();
    let arg = format!("request-reply:{}", path.display());
    let mut child = util::ChildGuard::spawn(util::role_command("role_child", "frame-child", &arg));
    let mut server = Connection::<Reply, Request>::new(listener.accept().unwrap()).unwrap();
    let mut served = 0;
    loop {
        let reply = match server.recv() {
            Ok(Request::Add(a, b)) => Reply::Sum(u64::from(a) + u64::from(b)),
            Ok(Request::Echo(text)) => Reply::Text(text.to_uppercase()),
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("server: {e}"),
        };
        server.send(&reply).unwrap();
        served += 1;
    }
    assert_eq!(served, 200);
    assert!(child.get().wait().unwrap().success(), "the client failed");
}

/// Bytes without a message type, and std's sockets converted into ipcbox's.
#[test]
fn byte_connections_and_std_sockets() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut a = frame::ByteConnection::new(socket::Stream::from(a)).unwrap();
    let mut b = Connection::<Msg>::new(b.into()).unwrap();
    a.send(&b"raw".to_vec()).unwrap();
    b.send_bytes(b"back").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    assert_eq!(a.recv().unwrap(), b"back");
    // Raw payloads are the frame's bytes as they are: a Msg sent typed is its postcard bytes.
    b.send(&job(1)).unwrap();
    let mut expected = Vec::new();
    ipcbox::codec::Codec::encode(&mut ipcbox::codec::Postcard, &job(1), &mut expected).unwrap();
    assert_eq!(a.recv().unwrap(), expected);
}

/// A live seqpacket peer that sends a message whose header lies: the error says what is wrong
/// with the message, not that the peer closed, and the connection goes on.
#[test]
fn a_malformed_message_from_a_live_seqpacket_peer_is_not_an_end() {
    let _w = util::watchdog("a_malformed_message_from_a_live_seqpacket_peer", LIMIT);
    let (a, b) = socket::SeqPacket::pair().unwrap();
    let mut mine = Connection::<String, String, socket::SeqPacket>::new(a).unwrap();
    let theirs = Connection::<String, String, socket::SeqPacket>::new(b).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(
        r#"
import os, socket, struct
s = socket.socket(fileno=int(os.environ["IPCBOX_FRAME_CONN"].split(":")[0]))
s.send(struct.pack("<I", 9) + b"x")          # a header announcing 9 bytes, and 1
s.send(struct.pack("<I", 3) + b"ok")      # a good frame: the postcard string "ok"
assert s.recv(64) == struct.pack("<I", 5) + b"done"  # still connected until then
"#,
    );
    theirs.pass_to_child(&mut cmd, VAR).unwrap();
    let child = util::ChildGuard::spawn(&mut cmd);
    drop(cmd);
    let err = mine.recv().unwrap_err();
    assert!(
        matches!(
            err,
            RecvError::LengthMismatch {
                expected: 13,
                received: 5
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "a message of 5 bytes carries a frame header announcing 13 bytes (header included); \
         it was dropped"
    );
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidData
    );
    assert_eq!(mine.recv().unwrap(), "ok");
    mine.send(&"done".to_string()).unwrap();
    child.expect_success("python seqpacket peer");
}

#[test]
fn a_pipe_end_handed_back_after_try_send_blocks_again() {
    use rustix::fs::{fcntl_getfl, OFlags};
    let (mut rx, mut tx) = frame::pipe::<Msg>().unwrap();
    assert!(tx.try_send(&job(3)).unwrap());
    assert!(fcntl_getfl(tx.transport())
        .unwrap()
        .contains(OFlags::NONBLOCK));
    let writer = tx.into_transport().unwrap();
    assert!(
        !fcntl_getfl(&writer).unwrap().contains(OFlags::NONBLOCK),
        "a child given this end would get EAGAIN from its blocking writes"
    );
    assert_eq!(rx.recv().unwrap(), job(3));
}

#[test]
fn connection_hands_its_transport_back() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut conn = Connection::<Msg, Msg, UnixStream>::new(a).unwrap();
    conn.send(&job(5)).unwrap();
    let a = conn.into_transport().unwrap();
    (&a).write_all(&[2, 0, 0, 0, b'h', b'i']).unwrap();
    let mut b = Connection::<Msg, Msg, UnixStream>::new(b).unwrap();
    assert_eq!(b.recv().unwrap(), job(5));
    assert_eq!(b.recv_bytes().unwrap(), b"hi");
    // Buffered input would be lost with the transport: refused.
    let (c, d) = UnixStream::pair().unwrap();
    (&c).write_all(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let mut d = Connection::<Msg, Msg, UnixStream>::new(d).unwrap();
    assert_eq!(d.recv_bytes().unwrap(), b"");
    let err = d.into_transport().unwrap_err();
    assert!(err.to_string().contains("4 received bytes"), "{err}");
}

#[test]
fn connection_over_tcp() {
    let _w = util::watchdog("connection_over_tcp", LIMIT);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut client = Connection::<Msg, Msg, _>::new(client).unwrap();
    let mut server = Connection::<Msg, Msg, _>::new(server).unwrap();
    client.send(&job(11)).unwrap();
    assert_eq!(server.recv().unwrap(), job(11));
    server.send_bytes(&[0; 100_000]).unwrap();
    assert_eq!(client.recv_bytes().unwrap().len(), 100_000);
    drop(server);
    assert!(client.recv().unwrap_err().is_disconnected());
}
