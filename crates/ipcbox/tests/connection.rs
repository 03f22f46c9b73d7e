//! Typed connections over every byte transport, across processes: one conformance suite written
//! once and run per transport (socketpair, Unix stream listener, seqpacket, Unix datagram, TCP,
//! one-way pipe), a hundred concurrent clients on one listener (Unix path and TCP), descriptors
//! attached to typed frames (a pipe end that works in the receiving process), and what UDP
//! gives and does not.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ipcbox::frame::{Connection, Readable, RecvError, Writable};
use ipcbox::pipe;
use ipcbox::socket::{Datagram, Endpoint, Listener, SeqPacket, SeqPacketListener, Stream};
use serde::{Deserialize, Serialize};

const VAR: &str = "IPCBOX_CONNECTION_TEST";
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Hello { client: u32 },
    Welcome { clients: u32 },
    Job { id: u32, data: Vec<u8> },
    Answer { id: u32, sum: u64 },
    Text(String),
}

/// The `i`-th message of the conformance stream: sizes vary, and every 50th is `big` bytes.
fn nth(i: u32, big: usize) -> Msg {
    let len = if i % 50 == 49 {
        big
    } else {
        (i as usize * 37) % 300
    };
    Msg::Job {
        id: i,
        data: (0..len).map(|k| (k as u32 ^ i) as u8).collect(),
    }
}

/// How many messages the conformance sender sends.
const COUNT: u32 = 500;

/// Kills and reaps a child on drop, so a failing test leaves no process behind.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(Some(cmd.spawn().expect("spawn child")))
    }

    fn expect_success(mut self, what: &str) {
        let status = self.0.take().expect("child").wait().expect("wait");
        assert!(status.success(), "{what}: child {status}");
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

// ---------------------------------------------------------------------------------------------
// One behaviour, several backends

/// A byte transport a typed connection runs over: how to make a connected pair, one end
/// receiving and one sending (a pipe carries one direction only).
trait Backend {
    /// The name the child role is told.
    const NAME: &'static str;
    /// The largest payload the suite sends: message transports are bounded by the socket's
    /// send buffer, streams are not.
    const BIG: usize;
    /// Whether the receiver sees the sender closing (not on an unconnected datagram socket).
    const SEES_CLOSE: bool = true;
    /// A byte stream, where a frame can be cut short (not a message transport).
    const STREAM: bool = true;
    type Rx: Readable;
    type Tx: Writable + From<OwnedFd> + Into<OwnedFd>;
    /// A connected (receiving end, sending end) pair; `dir` holds any socket file.
    fn pair(dir: &util::TempDir) -> (Self::Rx, Self::Tx);
}

struct SocketPair;
impl Backend for SocketPair {
    const NAME: &'static str = "socketpair";
    const BIG: usize = 1 << 20;
    type Rx = UnixStream;
    type Tx = UnixStream;
    fn pair(_: &util::TempDir) -> (UnixStream, UnixStream) {
        UnixStream::pair().unwrap()
    }
}

/// Both ends of a stream listener's connection: the accepted one receives.
fn listener_pair(ep: &Endpoint) -> (Stream, Stream) {
    let listener = Listener::bind(ep).unwrap();
    let client = Stream::connect(listener.local_endpoint()).unwrap();
    (listener.accept().unwrap(), client)
}

struct UnixPath;
impl Backend for UnixPath {
    const NAME: &'static str = "unix";
    const BIG: usize = 1 << 20;
    type Rx = Stream;
    type Tx = Stream;
    fn pair(dir: &util::TempDir) -> (Stream, Stream) {
        listener_pair(&Endpoint::unix(dir.join("stream.sock")))
    }
}

struct Tcp;
impl Backend for Tcp {
    const NAME: &'static str = "tcp";
    const BIG: usize = 1 << 20;
    type Rx = Stream;
    type Tx = Stream;
    fn pair(_: &util::TempDir) -> (Stream, Stream) {
        listener_pair(&"tcp:127.0.0.1:0".parse().unwrap())
    }
}

struct SeqPacketPath;
impl Backend for SeqPacketPath {
    const NAME: &'static str = "seqpacket";
    const BIG: usize = 100_000;
    const STREAM: bool = false;
    type Rx = SeqPacket;
    type Tx = SeqPacket;
    fn pair(dir: &util::TempDir) -> (SeqPacket, SeqPacket) {
        let path = dir.join("seqpacket.sock");
        let ep: Endpoint = format!("unix-seqpacket:{}", path.display())
            .parse()
            .unwrap();
        let listener = SeqPacketListener::bind(&ep).unwrap();
        let client = SeqPacket::connect(&ep).unwrap();
        (listener.accept().unwrap(), client)
    }
}

struct UnixDatagram;
impl Backend for UnixDatagram {
    const NAME: &'static str = "datagram";
    const BIG: usize = 100_000;
    const SEES_CLOSE: bool = false;
    const STREAM: bool = false;
    type Rx = Datagram;
    type Tx = Datagram;
    fn pair(dir: &util::TempDir) -> (Datagram, Datagram) {
        let path = dir.join("dgram.sock");
        let ep: Endpoint = format!("unix-dgram:{}", path.display()).parse().unwrap();
        let rx = Datagram::bind(&ep).unwrap();
        (rx, Datagram::connect(&ep).unwrap())
    }
}

struct OneWayPipe;
impl Backend for OneWayPipe {
    const NAME: &'static str = "pipe";
    const BIG: usize = 1 << 20;
    type Rx = pipe::Reader;
    type Tx = pipe::Writer;
    fn pair(_: &util::TempDir) -> (pipe::Reader, pipe::Writer) {
        pipe::new().unwrap()
    }
}

/// The child side of the conformance suite: sends `COUNT` messages on the end it was handed,
/// then exits without a goodbye (the close itself must come after every message).
fn send_all<B: Backend>() {
    let mut conn = Connection::<Msg, Msg, B::Tx>::from_env(VAR).unwrap();
    for i in 0..COUNT {
        conn.send(&nth(i, B::BIG)).unwrap();
    }
}

/// The sizes of the whole-`Vec<u8>` messages [`send_vectors`] sends (those up to the
/// backend's `BIG`): either side of the size from which a receiver takes a frame straight into
/// the message's own memory, and large ones.
const VECTOR_SIZES: [usize; 9] = [
    0,
    100,
    65_535,
    65_536,
    65_537,
    100_000,
    1 << 20,
    300,
    (1 << 20) + 3,
];

/// The `i`-th vector [`send_vectors`] sends, `len` bytes long.
fn vector(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (k * 31 + i) as u8).collect()
}

/// The length a cut-short frame's header claims, and how much of its payload is written.
const TORN_CLAIM: usize = (1 << 20) + 3;
const TORN_SENT: usize = 100_000;

/// The child side of [`vectors_then_a_torn_frame`]: sends the vectors, then on a stream the
/// start of one more frame only, and exits as if killed inside it.
fn send_vectors<B: Backend>() {
    let mut conn = Connection::<Vec<u8>, Vec<u8>, B::Tx>::from_env(VAR).unwrap();
    for (i, &len) in VECTOR_SIZES.iter().enumerate() {
        if len <= B::BIG {
            conn.send(&vector(i, len)).unwrap();
        }
    }
    if B::STREAM {
        let mut frame = (TORN_CLAIM as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&[0x83, 0x80, 0x40]); // the length varint of 1 MiB + 3
        frame.resize(4 + TORN_SENT, 7);
        let fd: OwnedFd = conn.into_transport().unwrap().into();
        std::fs::File::from(fd).write_all(&frame).unwrap();
    }
}

#[test]
fn role_sender() {
    let Some(arg) = util::role_arg("connection-sender") else {
        return;
    };
    let (vectors, backend) = match arg.strip_prefix("vectors-") {
        Some(backend) => (true, backend),
        None => (false, arg.as_str()),
    };
    macro_rules! run {
        ($b:ty) => {
            if vectors {
                send_vectors::<$b>()
            } else {
                send_all::<$b>()
            }
        };
    }
    match backend {
        SocketPair::NAME => run!(SocketPair),
        UnixPath::NAME => run!(UnixPath),
        Tcp::NAME => run!(Tcp),
        SeqPacketPath::NAME => run!(SeqPacketPath),
        UnixDatagram::NAME => run!(UnixDatagram),
        OneWayPipe::NAME => run!(OneWayPipe),
        other => panic!("unknown backend {other}"),
    }
}

/// A child process sends whole `Vec<u8>` messages of sizes either side of the direct-receive
/// threshold, then (on a stream) dies inside a large one: every vector arrives intact, the cut
/// frame is `Torn` naming both lengths, then the connection is closed.
fn vectors_then_a_torn_frame<B: Backend>() {
    let _w = util::watchdog(B::NAME, LIMIT);
    let dir = util::TempDir::new("conn");
    let (rx, tx) = B::pair(&dir);
    let role = format!("vectors-{}", B::NAME);
    let mut cmd = util::role_command("role_sender", "connection-sender", &role);
    Connection::<Vec<u8>, Vec<u8>, B::Tx>::new(tx)
        .unwrap()
        .pass_to_child(&mut cmd, VAR)
        .unwrap();
    let child = ChildGuard::spawn(&mut cmd);
    drop(cmd);
    let mut rx = Connection::<Vec<u8>, Vec<u8>, B::Rx>::new(rx).unwrap();
    for (i, &len) in VECTOR_SIZES.iter().enumerate() {
        if len <= B::BIG {
            let got = rx.recv().unwrap();
            assert!(
                got == vector(i, len),
                "{}: vector {i} of {len} bytes",
                B::NAME
            );
        }
    }
    child.expect_success(B::NAME);
    if B::STREAM {
        match rx.recv() {
            Err(RecvError::Torn { expected, received }) => {
                assert_eq!((expected, received), (4 + TORN_CLAIM, 4 + TORN_SENT));
            }
            other => panic!("{}: expected Torn, got {other:?}", B::NAME),
        }
    }
    if B::SEES_CLOSE {
        assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    }
}

/// A child process sends `COUNT` typed messages of varied sizes and exits: every one arrives,
/// in order and intact, and only then does the receiver see `Disconnected` (every form).
fn every_message_then_disconnected<B: Backend>() {
    let _w = util::watchdog(B::NAME, LIMIT);
    let dir = util::TempDir::new("conn");
    let (rx, tx) = B::pair(&dir);
    let mut cmd = util::role_command("role_sender", "connection-sender", B::NAME);
    Connection::<Msg, Msg, B::Tx>::new(tx)
        .unwrap()
        .pass_to_child(&mut cmd, VAR)
        .unwrap();
    let child = ChildGuard::spawn(&mut cmd);
    drop(cmd); // the child holds the only sending end now
    let mut rx = Connection::<Msg, Msg, B::Rx>::new(rx).unwrap();
    rx.set_max_frame_len(2 << 20);
    for i in 0..COUNT {
        assert_eq!(
            rx.recv().unwrap(),
            nth(i, B::BIG),
            "{}: message {i}",
            B::NAME
        );
    }
    if B::SEES_CLOSE {
        assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
        assert!(matches!(rx.try_recv(), Err(RecvError::Disconnected)));
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvError::Disconnected)
        ));
        assert!(matches!(
            rx.recv_deadline(Instant::now()),
            Err(RecvError::Disconnected)
        ));
    } else {
        // Nobody is connected to a bound datagram socket: its sender leaving is not news.
        assert!(rx
            .recv_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none());
    }
    child.expect_success(B::NAME);
}

/// Nothing sent: every form that may return early says "not now"; then a message arrives by
/// every receive form.
fn empty_timeout_then_arrival<B: Backend>() {
    let dir = util::TempDir::new("conn");
    let (rx, tx) = B::pair(&dir);
    let mut rx = Connection::<Msg, Msg, B::Rx>::new(rx).unwrap();
    let mut tx = Connection::<Msg, Msg, B::Tx>::new(tx).unwrap();
    assert!(rx.try_recv().unwrap().is_none());
    assert!(rx
        .recv_timeout(Duration::from_millis(10))
        .unwrap()
        .is_none());
    let passed = Instant::now();
    assert!(rx.recv_deadline(passed).unwrap().is_none());
    for i in 0..3 {
        tx.send(&nth(i, 0)).unwrap();
    }
    assert!(tx.try_send(&nth(3, 0)).unwrap());
    assert!(tx.send_timeout(&nth(4, 0), Duration::from_secs(5)).unwrap());
    assert!(tx
        .send_deadline(&nth(5, 0), Instant::now() + LIMIT)
        .unwrap());
    assert_eq!(rx.recv().unwrap(), nth(0, 0));
    assert_eq!(rx.try_recv().unwrap(), Some(nth(1, 0)));
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), Some(nth(2, 0)));
    assert_eq!(
        rx.recv_deadline(Instant::now() + LIMIT).unwrap(),
        Some(nth(3, 0))
    );
    assert_eq!(rx.recv().unwrap(), nth(4, 0));
    // A deadline already passed still takes a frame that is there.
    assert_eq!(rx.recv_deadline(passed).unwrap(), Some(nth(5, 0)));
    assert!(rx.try_recv().unwrap().is_none());
}

/// The `i`-th message the filler child sends: a kilobyte, so that the transport fills soon.
fn filler(i: u32) -> Msg {
    Msg::Job {
        id: i,
        data: vec![i as u8; 1000],
    }
}

/// The child side of the deadline test: on a byte on stdin, sends with `send_deadline` until
/// the transport has no room ("not now"), says on stdout how many were taken, then sends the
/// end mark, waiting for the parent to read.
fn fill_then_end<B: Backend>() {
    let mut conn = Connection::<Msg, Msg, B::Tx>::from_env(VAR).unwrap();
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go).unwrap();
    let mut taken = 0;
    while conn
        .send_deadline(&filler(taken), Instant::now() + Duration::from_millis(10))
        .unwrap()
    {
        taken += 1;
    }
    println!("taken {taken}");
    conn.send(&Msg::Text("end".into())).unwrap();
}

#[test]
fn role_filler() {
    let Some(arg) = util::role_arg("connection-filler") else {
        return;
    };
    match arg.as_str() {
        SocketPair::NAME => fill_then_end::<SocketPair>(),
        UnixPath::NAME => fill_then_end::<UnixPath>(),
        Tcp::NAME => fill_then_end::<Tcp>(),
        SeqPacketPath::NAME => fill_then_end::<SeqPacketPath>(),
        UnixDatagram::NAME => fill_then_end::<UnixDatagram>(),
        OneWayPipe::NAME => fill_then_end::<OneWayPipe>(),
        other => panic!("unknown backend {other}"),
    }
}

/// Deadlines across processes: `recv_deadline` says "not now" while the child waits for its
/// go; the child's `send_deadline` fills the transport until "not now"; every message it
/// reported taken arrives, and nothing of the one refused: the end mark comes next.
fn deadlines_across_processes<B: Backend>() {
    let _w = util::watchdog(B::NAME, LIMIT);
    let dir = util::TempDir::new("conn");
    let (rx, tx) = B::pair(&dir);
    let mut cmd = util::role_command("role_filler", "connection-filler", B::NAME);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    Connection::<Msg, Msg, B::Tx>::new(tx)
        .unwrap()
        .pass_to_child(&mut cmd, VAR)
        .unwrap();
    let mut child = ChildGuard::spawn(&mut cmd);
    drop(cmd);
    let proc = child.0.as_mut().expect("child");
    let mut go = proc.stdin.take().expect("stdin");
    let said = BufReader::new(proc.stdout.take().expect("stdout"));
    let mut rx = Connection::<Msg, Msg, B::Rx>::new(rx).unwrap();
    let soon = Instant::now() + Duration::from_millis(20);
    assert!(rx.recv_deadline(soon).unwrap().is_none(), "{}", B::NAME);
    go.write_all(b"g").unwrap();
    let mut said = said.lines().map(|l| l.unwrap());
    let taken: u32 = said
        .find_map(|l| l.strip_prefix("taken ").map(|n| n.parse().unwrap()))
        .expect("the child reports how many were taken");
    assert!(taken > 0, "{}", B::NAME);
    for i in 0..taken {
        let deadline = Instant::now() + LIMIT;
        assert_eq!(
            rx.recv_deadline(deadline).unwrap(),
            Some(filler(i)),
            "{}",
            B::NAME
        );
    }
    let deadline = Instant::now() + LIMIT;
    assert_eq!(
        rx.recv_deadline(deadline).unwrap(),
        Some(Msg::Text("end".into())),
        "{}",
        B::NAME
    );
    if B::SEES_CLOSE {
        let deadline = Instant::now() + LIMIT;
        assert!(matches!(
            rx.recv_deadline(deadline),
            Err(RecvError::Disconnected)
        ));
    }
    // Read what libtest says after the role until the child exits, so it never meets a
    // closed pipe.
    said.for_each(drop);
    child.expect_success(B::NAME);
}

/// A payload that is not a `Msg` is a decode error that consumes only its own frame; a frame
/// over the receiver's limit is refused naming both sizes and stays unread until the limit
/// is raised; raw and typed frames mix.
fn bad_frames_leave_the_connection_usable<B: Backend>() {
    let dir = util::TempDir::new("conn");
    let (rx, tx) = B::pair(&dir);
    let mut rx = Connection::<Msg, Msg, B::Rx>::new(rx).unwrap();
    let mut tx = Connection::<Msg, Msg, B::Tx>::new(tx).unwrap();
    tx.send_bytes(&[0xff; 7]).unwrap(); // variant 255 of a 5-variant enum
    tx.send(&Msg::Text("after garbage".into())).unwrap();
    tx.send_bytes(&[1; 1000]).unwrap();
    tx.send(&Msg::Text("after big".into())).unwrap();
    tx.send_bytes(b"").unwrap();
    assert!(matches!(rx.recv(), Err(RecvError::Decode(_))));
    assert_eq!(rx.recv().unwrap(), Msg::Text("after garbage".into()));
    rx.set_max_frame_len(100);
    match rx.recv() {
        Err(
            e @ RecvError::TooLarge {
                len: 1000,
                max: 100,
            },
        ) => {
            assert!(e.to_string().contains("1000") && e.to_string().contains("100"));
        }
        other => panic!("{}: expected TooLarge, got {other:?}", B::NAME),
    }
    rx.set_max_frame_len(1000);
    assert_eq!(rx.recv_bytes().unwrap(), vec![1; 1000]);
    assert_eq!(rx.recv().unwrap(), Msg::Text("after big".into()));
    assert_eq!(rx.recv_bytes().unwrap(), b"");
}

macro_rules! conformance {
    ($($module:ident: $backend:ty,)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn every_message_arrives_in_order_then_disconnected() {
                every_message_then_disconnected::<$backend>();
            }

            #[test]
            fn empty_and_timeout_then_every_receive_form() {
                empty_timeout_then_arrival::<$backend>();
            }

            #[test]
            fn deadlines_say_not_now_across_processes() {
                deadlines_across_processes::<$backend>();
            }

            #[test]
            fn bad_frames_leave_the_connection_usable() {
                super::bad_frames_leave_the_connection_usable::<$backend>();
            }

            #[test]
            fn byte_vectors_of_every_size_then_a_torn_frame() {
                vectors_then_a_torn_frame::<$backend>();
            }
        }
    )*};
}

conformance! {
    socketpair: SocketPair,
    unix_stream: UnixPath,
    tcp: Tcp,
    seqpacket: SeqPacketPath,
    unix_datagram: UnixDatagram,
    one_way_pipe: OneWayPipe,
}

// ---------------------------------------------------------------------------------------------
// A hundred concurrent clients on one listener

const PROCESSES: u32 = 4;
const THREADS: u32 = 25;
const CLIENTS: u32 = PROCESSES * THREADS;
const JOBS: u32 = 20;

/// Child: `THREADS` client threads, each with its own typed connection to the listener. Each
/// says hello, waits for the welcome (which the server sends only once all `CLIENTS` are
/// connected at the same time), then sends `JOBS` jobs and checks every answer.
#[test]
fn role_clients() {
    let Some(arg) = util::role_arg("connection-clients") else {
        return;
    };
    let (ep, process) = arg.rsplit_once(' ').unwrap();
    let ep: Endpoint = ep.parse().unwrap();
    let process: u32 = process.parse().unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let ep = ep.clone();
            thread::spawn(move || {
                let client = process * THREADS + t;
                let mut conn =
                    Connection::<Msg, Msg, Stream>::new(Stream::connect(&ep).unwrap()).unwrap();
                conn.send(&Msg::Hello { client }).unwrap();
                assert_eq!(conn.recv().unwrap(), Msg::Welcome { clients: CLIENTS });
                for j in 0..JOBS {
                    let id = client * 1000 + j;
                    let data: Vec<u8> = (0..j * 10).map(|k| (k + client) as u8).collect();
                    let sum = data.iter().map(|&b| u64::from(b)).sum();
                    conn.send(&Msg::Job { id, data }).unwrap();
                    assert_eq!(conn.recv().unwrap(), Msg::Answer { id, sum });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

/// Serves one client: hello, wait until every client is connected, welcome, then answer jobs
/// until the client closes. Returns (client number, jobs answered).
fn serve(stream: Stream, everyone: &Barrier) -> (u32, u32) {
    let mut conn = Connection::<Msg, Msg, Stream>::new(stream).unwrap();
    let Msg::Hello { client } = conn.recv().unwrap() else {
        panic!("expected a hello");
    };
    everyone.wait();
    conn.send(&Msg::Welcome { clients: CLIENTS }).unwrap();
    let mut answered = 0;
    loop {
        match conn.recv() {
            Ok(Msg::Job { id, data }) => {
                let sum = data.iter().map(|&b| u64::from(b)).sum();
                conn.send(&Msg::Answer { id, sum }).unwrap();
                answered += 1;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(RecvError::Disconnected) => return (client, answered),
            Err(e) => panic!("client {client}: {e}"),
        }
    }
}

fn hundred_concurrent_clients(ep: &Endpoint) {
    let _w = util::watchdog("hundred concurrent clients", LIMIT);
    let listener = Listener::bind(ep).unwrap();
    let ep = listener.local_endpoint().to_string();
    let children: Vec<ChildGuard> = (0..PROCESSES)
        .map(|p| {
            ChildGuard::spawn(&mut util::role_command(
                "role_clients",
                "connection-clients",
                &format!("{ep} {p}"),
            ))
        })
        .collect();
    let everyone = Arc::new(Barrier::new(CLIENTS as usize));
    let servers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let stream = listener.accept().unwrap();
            let everyone = everyone.clone();
            thread::spawn(move || serve(stream, &everyone))
        })
        .collect();
    let mut seen: Vec<u32> = servers
        .into_iter()
        .map(|s| {
            let (client, answered) = s.join().expect("server thread");
            assert_eq!(answered, JOBS, "client {client}");
            client
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..CLIENTS).collect::<Vec<_>>());
    for c in children {
        c.expect_success("client process");
    }
}

#[test]
fn a_hundred_concurrent_clients_on_a_unix_listener_all_get_their_answers() {
    let dir = util::TempDir::new("conn100");
    let path = dir.join("server.sock");
    hundred_concurrent_clients(&Endpoint::unix(&path));
    assert!(!path.exists(), "the listener removes its socket file");
}

#[test]
fn a_hundred_concurrent_clients_on_a_tcp_listener_all_get_their_answers() {
    hundred_concurrent_clients(&"tcp:127.0.0.1:0".parse().unwrap());
}

// ---------------------------------------------------------------------------------------------
// Descriptors beside typed frames

/// Child: asks the server for a pipe, receives its writing end attached to a typed frame
/// (`recv_with_fds`), sends a typed message into the pipe, and reports over the socket.
fn pipe_receiver<T: Readable + Writable>(transport: T) {
    let mut conn = Connection::<Msg, Msg, T>::new(transport).unwrap();
    conn.send(&Msg::Text("send me a pipe".into())).unwrap();
    let (msg, mut fds) = conn.recv_with_fds().unwrap();
    assert_eq!((msg, fds.len()), (Msg::Text("here is a pipe".into()), 1));
    let writer = pipe::Writer::from(fds.pop().unwrap());
    let mut through_pipe = Connection::<Msg, Msg, pipe::Writer>::new(writer).unwrap();
    through_pipe
        .send(&Msg::Text(format!("written by {}", std::process::id())))
        .unwrap();
    drop(through_pipe);
    conn.send(&Msg::Text("done".into())).unwrap();
}

#[test]
fn role_pipe_receiver() {
    let Some(arg) = util::role_arg("connection-pipe-receiver") else {
        return;
    };
    let ep: Endpoint = arg.parse().unwrap();
    if ep.to_string().starts_with("unix-seqpacket:") {
        pipe_receiver(SeqPacket::connect(&ep).unwrap());
    } else {
        pipe_receiver(Stream::connect(&ep).unwrap());
    }
}

/// The server side: answers the child's request with a pipe's writing end attached, then
/// reads the child's typed message from the pipe.
fn pass_a_pipe<T: Readable + Writable>(transport: T, pid: u32) {
    let mut conn = Connection::<Msg, Msg, T>::new(transport).unwrap();
    assert_eq!(conn.recv().unwrap(), Msg::Text("send me a pipe".into()));
    let (reader, writer) = pipe::new().unwrap();
    conn.send_with_fds(&Msg::Text("here is a pipe".into()), &[writer.as_fd()])
        .unwrap();
    drop(writer); // the child holds the only writer: after its message comes Disconnected
    let mut from_pipe = Connection::<Msg, Msg, pipe::Reader>::new(reader).unwrap();
    assert_eq!(
        from_pipe.recv().unwrap(),
        Msg::Text(format!("written by {pid}"))
    );
    assert!(from_pipe.recv().unwrap_err().is_disconnected());
    assert_eq!(conn.recv().unwrap(), Msg::Text("done".into()));
    assert!(conn.recv().unwrap_err().is_disconnected());
}

#[test]
fn a_pipe_end_passed_with_a_typed_frame_works_in_the_receiving_process() {
    let _w = util::watchdog("typed fd passing", LIMIT);
    let dir = util::TempDir::new("connfd");
    let stream_ep = Endpoint::unix(dir.join("fd.sock"));
    let seqpacket_ep: Endpoint = format!("unix-seqpacket:{}", dir.join("fdseq.sock").display())
        .parse()
        .unwrap();
    for ep in [stream_ep, seqpacket_ep] {
        let spawn = |ep: &Endpoint| {
            ChildGuard::spawn(&mut util::role_command(
                "role_pipe_receiver",
                "connection-pipe-receiver",
                &ep.to_string(),
            ))
        };
        if ep.to_string().starts_with("unix-seqpacket:") {
            let listener = SeqPacketListener::bind(&ep).unwrap();
            let child = spawn(&ep);
            let pid = child.0.as_ref().unwrap().id();
            pass_a_pipe(listener.accept().unwrap(), pid);
            child.expect_success("pipe receiver (seqpacket)");
        } else {
            let listener = Listener::bind(&ep).unwrap();
            let child = spawn(&ep);
            let pid = child.0.as_ref().unwrap().id();
            pass_a_pipe(listener.accept().unwrap(), pid);
            child.expect_success("pipe receiver (stream)");
        }
    }
}

/// Frames with and without descriptors, sent back to back so that any read ahead would cross
/// their boundaries: each frame comes with exactly its own descriptors, which work.
fn descriptors_stay_with_their_frames<T: Readable + Writable + Send>(a: T, b: T, big: usize) {
    let _w = util::watchdog("descriptors_stay_with_their_frames", LIMIT);
    let mut a = Connection::<Msg, Msg, T>::new(a).unwrap();
    let mut b = Connection::<Msg, Msg, T>::new(b).unwrap();
    let pipes: Vec<_> = (0..3).map(|_| pipe::new().unwrap()).collect();
    let (a, counts) = thread::scope(|scope| {
        // A big frame does not fit the socket buffer: send while the receiver receives.
        let sender = scope.spawn(|| {
            a.send(&nth(0, 0)).unwrap();
            a.send_with_fds(&nth(1, 0), &[pipes[0].1.as_fd(), pipes[1].1.as_fd()])
                .unwrap();
            a.send(&nth(2, 0)).unwrap();
            a.send_with_fds(&nth(49, big), &[pipes[2].1.as_fd()])
                .unwrap();
            a.send_with_fds(&nth(4, 0), &[]).unwrap();
            a
        });
        let counts: Vec<(Msg, usize)> = (0..5)
            .map(|_| {
                let (m, fds) = b.recv_with_fds_timeout(LIMIT).unwrap().expect("in time");
                for (i, fd) in fds.iter().enumerate() {
                    // Each received descriptor is a working writer of the pipe sent in its place.
                    let mut w = Connection::<Msg, Msg, pipe::Writer>::new(pipe::Writer::from(
                        fd.try_clone().unwrap(),
                    ))
                    .unwrap();
                    w.send(&Msg::Text(format!("{i}"))).unwrap();
                }
                (m, fds.len())
            })
            .collect();
        (sender.join().expect("sender thread"), counts)
    });
    let want = [(0, 0), (1, 2), (2, 0), (49, 1), (4, 0)];
    for ((m, n), (i, k)) in counts.iter().zip(want) {
        assert_eq!((m, *n), (&nth(i, if i == 49 { big } else { 0 }), k));
    }
    for (p, text) in pipes.into_iter().zip(["0", "1", "0"]) {
        let mut r = Connection::<Msg, Msg, pipe::Reader>::new(p.0).unwrap();
        assert_eq!(r.recv().unwrap(), Msg::Text(text.into()));
    }
    assert!(b.try_recv_with_fds().unwrap().is_none());
    drop(a);
    assert!(b.recv_with_fds().unwrap_err().is_disconnected());
}

#[test]
fn descriptors_stay_with_their_frames_on_a_stream() {
    let (a, b) = Stream::pair().unwrap();
    descriptors_stay_with_their_frames(a, b, 1 << 20);
}

#[test]
fn descriptors_stay_with_their_frames_on_seqpacket() {
    let (a, b) = SeqPacket::pair().unwrap();
    descriptors_stay_with_their_frames(a, b, 100_000);
}

#[test]
fn descriptors_need_a_unix_socket() {
    let (mut rx, mut tx) = ipcbox::frame::pipe::<Msg>().unwrap();
    let err = tx.send_with_fds(&nth(0, 0), &[rx.as_fd()]).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    tx.send(&nth(0, 0)).unwrap();
    let err = rx.recv_with_fds().unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(rx.recv().unwrap(), nth(0, 0));
}

// ---------------------------------------------------------------------------------------------
// UDP: one frame per datagram, bounded by the datagram size, no end of stream

/// Two UDP sockets on 127.0.0.1 connected to each other.
fn udp_pair() -> (Datagram, Datagram) {
    let any: Endpoint = "udp:127.0.0.1:0".parse().unwrap();
    let a = Datagram::bind(&any).unwrap();
    let b = Datagram::bind(&any).unwrap();
    let ep = |d: &Datagram| d.local_endpoint().unwrap().expect("bound");
    a.connect_to(&ep(&b)).unwrap();
    b.connect_to(&ep(&a)).unwrap();
    (a, b)
}

/// The largest UDP payload over IPv4 (65535 − 20 IP − 8 UDP), less the frame header.
const UDP_MAX_FRAME: usize = 65_507 - 4;

#[test]
fn udp_carries_typed_frames_up_to_the_datagram_size() {
    let (a, b) = udp_pair();
    let mut a = Connection::<Msg, Msg, Datagram>::new(a).unwrap();
    let mut b = Connection::<Msg, Msg, Datagram>::new(b).unwrap();
    a.send(&Msg::Hello { client: 1 }).unwrap();
    assert_eq!(b.recv().unwrap(), Msg::Hello { client: 1 });
    a.send_bytes(&[3; UDP_MAX_FRAME]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), vec![3; UDP_MAX_FRAME]);
    // One byte more does not fit a datagram: the send fails, nothing is sent.
    let err = a.send_bytes(&[3; UDP_MAX_FRAME + 1]).unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("message too long"),
        "{err}"
    );
    assert!(b.try_recv().unwrap().is_none());
    b.send(&Msg::Text("back".into())).unwrap();
    assert_eq!(a.recv().unwrap(), Msg::Text("back".into()));
}

#[test]
fn udp_peer_closing_is_not_an_end_of_stream() {
    let (a, b) = udp_pair();
    let mut a = Connection::<Msg, Msg, Datagram>::new(a).unwrap();
    let b_ep = b.local_endpoint().unwrap().unwrap();
    // An empty datagram (which a foreign sender may send) is malformed, not the end.
    b.send(b"").unwrap();
    match a.recv_timeout(LIMIT) {
        Err(
            e @ RecvError::LengthMismatch {
                expected: 4,
                received: 0,
            },
        ) => assert_eq!(
            e.to_string(),
            "a message of 0 bytes is too short for a frame header; it was dropped"
        ),
        other => panic!("expected a length mismatch, got {other:?}"),
    }
    b.send(&[1, 0, 0, 0, 42]).unwrap();
    assert_eq!(a.recv_bytes().unwrap(), [42]);
    drop(b);
    // Nobody listens on b's port any more: the kernel's ICMP "port unreachable" comes back as
    // a refused connection on a later call, never as Disconnected.
    a.send(&Msg::Text("into the void".into())).unwrap();
    match a.recv_timeout(Duration::from_secs(5)) {
        Err(RecvError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        }
        other => panic!("expected ECONNREFUSED from {b_ep}, got {other:?}"),
    }
}
