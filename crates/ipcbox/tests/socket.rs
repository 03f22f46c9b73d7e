//! Sockets across real processes: every endpoint kind, 100+ concurrent clients, stale socket
//! files, fd passing, peer credentials, the same-uid rule, accept with timeouts.

mod util;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use ipcbox::socket::{
    Datagram, Endpoint, Kind, Listener, Options, Refusal, SeqPacket, SeqPacketListener, Stream,
};
use ipcbox::Pid;
use util::ChildGuard;

const LIMIT: Duration = Duration::from_secs(60);

/// Reads the child's stdout until the line `marker` (libtest prints its own lines too).
fn wait_for_line(child: &mut ChildGuard, marker: &str) {
    let out = child.get().stdout.as_mut().expect("child stdout is piped");
    let mut lines = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "child exited before printing {marker}");
        if line.trim() == marker {
            return;
        }
    }
}

fn ep(s: &str) -> Endpoint {
    s.parse().expect("valid endpoint")
}

// ---------------------------------------------------------------------------------------------
// Endpoint strings

#[test]
fn bad_endpoint_strings_get_errors_that_quote_them() {
    for s in [
        "tcp:nohost",
        "unix:",
        "bogus:x",
        "tcp:localhost:65536",
        "udp:localhost:99999",
        "tcp:localhost:-1",
        "unix-abstract:",
        "no-colon-at-all",
    ] {
        let err = s.parse::<Endpoint>().expect_err(s);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{s}");
        assert!(err.to_string().contains(&format!("\"{s}\"")), "{err}");
    }
    let err = "tcp:localhost:65536".parse::<Endpoint>().unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");

    // A well-formed endpoint of the wrong kind is refused with the string quoted too.
    let err = Listener::bind(&ep("udp:127.0.0.1:0")).unwrap_err();
    assert!(err.to_string().contains("\"udp:127.0.0.1:0\""), "{err}");
    let err = Stream::connect(&ep("unix-seqpacket:/nonexistent/x")).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"unix-seqpacket:/nonexistent/x\""),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// One round trip per endpoint kind, the peer being another process

/// Child: connects to the endpoint in the argument and runs the client half of the exchange
/// for its kind; panics (exit status 101) on any mismatch.
#[test]
fn role_round_trip_client() {
    let Some(arg) = util::role_arg("round_trip_client") else {
        return;
    };
    let ep = ep(&arg);
    let me = std::process::id();
    match ep.kind() {
        Kind::Stream => {
            let mut s = Stream::connect(&ep).unwrap();
            s.write_all(format!("ping {me}\n").as_bytes()).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            assert_eq!(answer, format!("pong {me}\n"));
        }
        Kind::SeqPacket => {
            let s = SeqPacket::connect(&ep).unwrap();
            for m in ["a", "bb", "ccc"] {
                s.send(m.as_bytes()).unwrap();
            }
            s.send(format!("ping {me}").as_bytes()).unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("pong {me}").as_bytes());
            assert_eq!(s.recv(&mut buf).unwrap(), 0, "EOF after the server closed");
        }
        Kind::Datagram => {
            let s = Datagram::connect(&ep).unwrap();
            s.send(format!("ping {me}").as_bytes()).unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("pong {me}").as_bytes());
        }
    }
}

/// Binds `ep`, runs a child client against the endpoint the server reports, answers it.
fn round_trip_with_child(ep: &Endpoint) {
    let _w = util::watchdog(&format!("round trip over {ep}"), LIMIT);
    match ep.kind() {
        Kind::Stream => {
            let listener = Listener::bind(ep).unwrap();
            let local = listener.local_endpoint().clone();
            let child = ChildGuard::spawn(&mut util::role_command(
                "role_round_trip_client",
                "round_trip_client",
                &local.to_string(),
            ));
            let mut conn = listener.accept().unwrap();
            let mut request = String::new();
            conn.read_to_string(&mut request).unwrap();
            assert_eq!(request, format!("ping {}\n", child.pid()));
            conn.write_all(format!("pong {}\n", child.pid()).as_bytes())
                .unwrap();
            drop(conn);
            child.expect_success(&format!("stream client over {local}"));
        }
        Kind::SeqPacket => {
            let listener = SeqPacketListener::bind(ep).unwrap();
            let child = ChildGuard::spawn(&mut util::role_command(
                "role_round_trip_client",
                "round_trip_client",
                &listener.local_endpoint().to_string(),
            ));
            let conn = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            // Message boundaries are kept: three sends are three receives.
            for m in ["a", "bb", "ccc"] {
                let n = conn.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], m.as_bytes());
            }
            let n = conn.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("ping {}", child.pid()).as_bytes());
            conn.send(format!("pong {}", child.pid()).as_bytes())
                .unwrap();
            drop(conn);
            child.expect_success(&format!("seqpacket client over {ep}"));
        }
        Kind::Datagram => {
            let server = Datagram::bind(ep).unwrap();
            let local = server.local_endpoint().unwrap().expect("bound socket");
            let child = ChildGuard::spawn(&mut util::role_command(
                "role_round_trip_client",
                "round_trip_client",
                &local.to_string(),
            ));
            let mut buf = [0u8; 64];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("ping {}", child.pid()).as_bytes());
            let from = from.expect("the client is bound, so it can be answered");
            server
                .send_to(format!("pong {}", child.pid()).as_bytes(), &from)
                .unwrap();
            child.expect_success(&format!("datagram client over {local}"));
        }
    }
}

#[test]
fn tcp_port_zero_reports_the_port_and_a_child_connects() {
    let listener = Listener::bind(&ep("tcp:127.0.0.1:0")).unwrap();
    let port = listener.local_endpoint().port().expect("tcp endpoint");
    assert_ne!(port, 0, "the kernel picked a port");
    assert_eq!(
        listener.local_endpoint().to_string(),
        format!("tcp:127.0.0.1:{port}")
    );
    drop(listener);
    round_trip_with_child(&ep("tcp:127.0.0.1:0"));
    round_trip_with_child(&ep("tcp:localhost:0"));
}

#[test]
fn accepted_and_connected_tcp_streams_have_nodelay() {
    let listener = Listener::bind(&ep("tcp:127.0.0.1:0")).unwrap();
    let client = Stream::connect(listener.local_endpoint()).unwrap();
    let server = listener.accept().unwrap();
    assert!(client.nodelay().unwrap());
    assert!(server.nodelay().unwrap());
}

#[test]
fn unix_path_round_trip_and_file_removed_on_drop() {
    let dir = util::TempDir::new("sock-path");
    let path = dir.join("s.sock");
    round_trip_with_child(&Endpoint::unix(&path));
    assert!(!path.exists(), "the listener removed its socket file");

    let path = dir.join("sp.sock");
    round_trip_with_child(&ep(&format!("unix-seqpacket:{}", path.display())));
    assert!(!path.exists());

    let path = dir.join("d.sock");
    round_trip_with_child(&ep(&format!("unix-dgram:{}", path.display())));
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn abstract_round_trips() {
    let name = util::unique_name("abs");
    round_trip_with_child(&ep(&format!("unix-abstract:{name}")));
    round_trip_with_child(&ep(&format!("unix-abstract-seqpacket:{name}")));
    round_trip_with_child(&ep(&format!("unix-abstract-dgram:{name}")));
}

#[test]
fn udp_round_trip() {
    round_trip_with_child(&ep("udp:127.0.0.1:0"));
}

// ---------------------------------------------------------------------------------------------
// Many concurrent clients

const CLIENT_PROCESSES: usize = 4;
const CLIENTS_PER_PROCESS: usize = 30;

/// Child: `CLIENTS_PER_PROCESS` threads connect at once, and each checks it got its own answer.
#[test]
fn role_many_clients() {
    let Some(arg) = util::role_arg("many_clients") else {
        return;
    };
    let ep = ep(&arg);
    let barrier = Arc::new(Barrier::new(CLIENTS_PER_PROCESS));
    let threads: Vec<_> = (0..CLIENTS_PER_PROCESS)
        .map(|i| {
            let ep = ep.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut s = Stream::connect(&ep).unwrap();
                // Everyone is connected before anyone asks.
                barrier.wait();
                let question = format!("client {}-{i}\n", std::process::id());
                s.write_all(question.as_bytes()).unwrap();
                let mut answer = String::new();
                BufReader::new(&s).read_line(&mut answer).unwrap();
                assert_eq!(answer, format!("answer to {question}"));
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

fn serve_many(ep: &Endpoint) {
    let _w = util::watchdog("100+ concurrent clients", LIMIT);
    let listener = Listener::bind(ep).unwrap();
    let local = listener.local_endpoint().to_string();
    let children: Vec<ChildGuard> = (0..CLIENT_PROCESSES)
        .map(|_| {
            ChildGuard::spawn(&mut util::role_command(
                "role_many_clients",
                "many_clients",
                &local,
            ))
        })
        .collect();
    let total = CLIENT_PROCESSES * CLIENTS_PER_PROCESS;
    let answered = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..total {
            let conn = listener.accept().unwrap();
            let answered = &answered;
            scope.spawn(move || {
                let mut line = String::new();
                BufReader::new(&conn).read_line(&mut line).unwrap();
                (&conn)
                    .write_all(format!("answer to {line}").as_bytes())
                    .unwrap();
                answered.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(answered.load(Ordering::Relaxed), total);
    for c in children {
        c.expect_success("client process");
    }
}

#[test]
fn a_hundred_and_twenty_concurrent_unix_clients_get_their_answers() {
    let dir = util::TempDir::new("sock-many");
    serve_many(&Endpoint::unix(dir.join("many.sock")));
}

#[test]
fn a_hundred_and_twenty_concurrent_tcp_clients_get_their_answers() {
    serve_many(&ep("tcp:127.0.0.1:0"));
}

// ---------------------------------------------------------------------------------------------
// Socket files: stale, live, not a socket

/// Child: listens on the endpoint, says so, and waits to be killed.
#[test]
fn role_listen_forever() {
    let Some(arg) = util::role_arg("listen_forever") else {
        return;
    };
    let listener = Listener::bind(&ep(&arg)).unwrap();
    println!("ipcbox-ready");
    io::stdout().flush().unwrap();
    loop {
        drop(listener.accept().unwrap());
    }
}

#[test]
fn stale_socket_file_of_a_killed_listener_is_replaced_and_a_live_one_is_not() {
    let _w = util::watchdog("stale socket file", LIMIT);
    let dir = util::TempDir::new("sock-stale");
    let path = dir.join("stale.sock");
    let ep = Endpoint::unix(&path);

    let mut child = ChildGuard::spawn(
        util::role_command("role_listen_forever", "listen_forever", &ep.to_string())
            .stdout(Stdio::piped()),
    );
    wait_for_line(&mut child, "ipcbox-ready");

    // A live listener's path: AddrInUse, naming the path, and its file is left alone.
    let err = Listener::bind(&ep).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    Stream::connect(&ep).expect("the live listener still answers");

    // SIGKILL: the listener cannot remove its file.
    child.kill();
    assert!(path.exists(), "the dead listener left its file behind");
    assert_eq!(
        Stream::connect(&ep).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );

    // Policy: a socket file nobody listens on is removed and the bind goes ahead.
    let listener = Listener::bind(&ep).unwrap();
    let client = Stream::connect(&ep).unwrap();
    let server = listener.accept().unwrap();
    (&client).write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    (&server).read_exact(&mut b).unwrap();
    drop(listener);
    assert!(!path.exists(), "the new listener removed its file on drop");
}

#[test]
fn a_path_that_is_not_a_socket_is_never_removed() {
    let dir = util::TempDir::new("sock-notsock");
    let path = dir.join("plain-file");
    std::fs::write(&path, b"precious").unwrap();
    let err = Listener::bind(&Endpoint::unix(&path)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn drop_leaves_a_replaced_socket_file_alone_and_detach_keeps_it() {
    let dir = util::TempDir::new("sock-replaced");
    let path = dir.join("r.sock");
    let first = Listener::bind(&Endpoint::unix(&path)).unwrap();
    // Someone else removes the file and puts their own there.
    std::fs::remove_file(&path).unwrap();
    let second = Listener::bind(&Endpoint::unix(&path)).unwrap();
    drop(first);
    assert!(
        path.exists(),
        "the first listener left the second's file alone"
    );
    Stream::connect(&Endpoint::unix(&path)).expect("the second listener answers");
    let mut second = second;
    second.detach();
    drop(second);
    assert!(path.exists(), "a detached listener keeps its file");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn socket_files_are_owner_only_by_default() {
    use std::os::unix::fs::PermissionsExt;
    let dir = util::TempDir::new("sock-mode");
    let path = dir.join("m.sock");
    let l = Listener::bind(&Endpoint::unix(&path)).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(l);
    let l = Options::new()
        .mode(0o666)
        .listen(&Endpoint::unix(&path))
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    drop(l);
}

#[test]
fn abstract_name_in_use_is_addr_in_use() {
    let name = format!("unix-abstract:{}", util::unique_name("abs-inuse"));
    let _l = Listener::bind(&ep(&name)).unwrap();
    let err = Listener::bind(&ep(&name)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&name), "{err}");
}

/// Out of descriptors, every constructor's error names the endpoint it was given.
#[test]
fn out_of_descriptors_errors_name_the_endpoint() {
    let _dog = util::watchdog("out of descriptors", LIMIT);
    let dir = util::TempDir::new("sock-emfile");
    let cmd = util::role_command(
        "role_out_of_descriptors",
        "out_of_descriptors",
        &dir.path().display().to_string(),
    );
    ChildGuard::spawn(cmd).expect_success("constructors out of descriptors");
}

#[test]
fn role_out_of_descriptors() {
    let Some(dir) = util::role_arg("out_of_descriptors") else {
        return;
    };
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let old = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(64),
            maximum: old.maximum,
        },
    )
    .unwrap();
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("open /dev/null: {e}"),
        }
    }
    let at = |scheme: &str, file: &str| ep(&format!("{scheme}:{dir}/{file}"));
    let results: Vec<(Endpoint, io::Result<()>)> = vec![
        (at("unix", "l"), Listener::bind(&at("unix", "l")).map(drop)),
        (
            at("unix-seqpacket", "s"),
            SeqPacketListener::bind(&at("unix-seqpacket", "s")).map(drop),
        ),
        (
            ep("tcp:127.0.0.1:0"),
            Listener::bind(&ep("tcp:127.0.0.1:0")).map(drop),
        ),
        (
            at("unix-dgram", "d"),
            Datagram::bind(&at("unix-dgram", "d")).map(drop),
        ),
        (
            ep("udp:127.0.0.1:0"),
            Datagram::bind(&ep("udp:127.0.0.1:0")).map(drop),
        ),
        (at("unix", "c"), Stream::connect(&at("unix", "c")).map(drop)),
        (
            ep("tcp:127.0.0.1:9"),
            Stream::connect(&ep("tcp:127.0.0.1:9")).map(drop),
        ),
        (
            at("unix-dgram", "c"),
            Datagram::connect(&at("unix-dgram", "c")).map(drop),
        ),
    ];
    drop(held);
    for (ep, result) in results {
        let err = result.expect_err("no descriptor left");
        let text = err.to_string();
        assert!(text.contains(&format!("\"{ep}\"")), "{ep}: {text}");
        assert!(text.contains("Too many open files"), "{ep}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// fd passing

/// Child: receives a pipe's writing end over the socket and writes into it.
#[test]
fn role_write_into_received_pipe() {
    let Some(arg) = util::role_arg("write_into_received_pipe") else {
        return;
    };
    let s = Stream::connect(&ep(&arg)).unwrap();
    let mut buf = [0u8; 16];
    let (n, mut fds) = s.recv_fds(&mut buf, 4).unwrap();
    assert_eq!(&buf[..n], b"pipe");
    assert_eq!(fds.len(), 1);
    let mut w = ipcbox::pipe::Writer::from(fds.pop().unwrap());
    writeln!(w, "written by process {}", std::process::id()).unwrap();
}

#[test]
fn a_pipe_end_passed_over_a_unix_socket_works_in_the_receiving_process() {
    let _w = util::watchdog("fd passing", LIMIT);
    let ep = ep(&format!("unix-abstract:{}", util::unique_name("fdpass")));
    let listener = Listener::bind(&ep).unwrap();
    let child = ChildGuard::spawn(&mut util::role_command(
        "role_write_into_received_pipe",
        "write_into_received_pipe",
        &ep.to_string(),
    ));
    let conn = listener.accept().unwrap();
    let (mut reader, writer) = ipcbox::pipe::new().unwrap();
    conn.send_fds(b"pipe", &[writer.as_fd()]).unwrap();
    drop(writer); // the child holds the only writer now: EOF comes when it exits
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    assert_eq!(text, format!("written by process {}\n", child.pid()));
    child.expect_success("fd receiver");
}

#[test]
fn too_many_descriptors_is_an_error_and_the_socket_stays_usable() {
    let (a, b) = SeqPacket::pair().unwrap();
    let (r, w) = ipcbox::pipe::new().unwrap();
    a.send_fds(b"three", &[r.as_fd(), w.as_fd(), r.as_fd()])
        .unwrap();
    let mut buf = [0u8; 16];
    let err = b.recv_fds(&mut buf, 1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("truncated"), "{err}");

    // A message longer than the buffer: an error naming both sizes, then the next one arrives.
    a.send(&[7u8; 100]).unwrap();
    a.send(b"next").unwrap();
    let err = b.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("100 bytes"), "{err}");
    assert!(err.to_string().contains("16-byte"), "{err}");
    assert_eq!(b.peek_len().unwrap(), 4);
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"next");
}

// ---------------------------------------------------------------------------------------------
// Peer credentials and the same-uid rule

/// Child: connects, checks the server's credentials name its parent, waits for the server to
/// close.
#[test]
fn role_credentials_client() {
    let Some(arg) = util::role_arg("credentials_client") else {
        return;
    };
    let s = Stream::connect(&ep(&arg)).unwrap();
    let cred = s.peer_credentials().unwrap();
    assert_eq!(cred.pid, Pid::parent());
    let mut rest = Vec::new();
    (&s).read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bye");
}

#[test]
fn peer_credentials_show_the_childs_pid_uid_gid() {
    let _w = util::watchdog("peer credentials", LIMIT);
    let ep = ep(&format!("unix-abstract:{}", util::unique_name("cred")));
    let listener = Listener::bind(&ep).unwrap();
    let child = ChildGuard::spawn(&mut util::role_command(
        "role_credentials_client",
        "credentials_client",
        &ep.to_string(),
    ));
    let conn = listener.accept().unwrap();
    let cred = conn.peer_credentials().unwrap();
    assert_eq!(cred.pid.map(Pid::as_raw), Some(child.pid().as_raw()));
    assert_eq!(cred.uid, rustix::process::geteuid().as_raw());
    assert_eq!(cred.gid, rustix::process::getegid().as_raw());
    (&conn).write_all(b"bye").unwrap();
    drop(conn);
    child.expect_success("credentials client");

    // A socket pair's peer is this very process.
    let (a, _b) = Stream::pair().unwrap();
    assert_eq!(a.peer_credentials().unwrap().pid, Some(Pid::this()));
}

/// Child: connects and expects the server to close the connection without a word (refused),
/// or, with arg suffix "|accepted", to answer "welcome".
#[test]
fn role_uid_client() {
    let Some(arg) = util::role_arg("uid_client") else {
        return;
    };
    let (endpoint, expect) = arg.split_once('|').unwrap();
    let s = Stream::connect(&ep(endpoint)).unwrap();
    let mut got = Vec::new();
    match (&s).read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read: {e}"),
    }
    let want: &[u8] = if expect == "accepted" {
        b"welcome"
    } else {
        b""
    };
    assert_eq!(got, want);
}

const NOBODY: u32 = 65534;

#[test]
fn same_uid_only_refuses_a_peer_of_another_uid_and_accepts_our_own() {
    let _w = util::watchdog("same-uid-only", LIMIT);
    let ep = ep(&format!("unix-abstract:{}", util::unique_name("uid")));
    let mut listener = Options::new().same_uid_only(true).listen(&ep).unwrap();
    let refusals: Arc<Mutex<Vec<Refusal>>> = Arc::default();
    let log = refusals.clone();
    listener.on_refused(move |r| log.lock().unwrap().push(r.clone()));

    let root = rustix::process::geteuid().is_root();
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let conn = listener.accept().unwrap();
            (&conn).write_all(b"welcome").unwrap();
            conn.peer_credentials().unwrap()
        });
        if root {
            // The other user's peer: refused (closed at once), counted, reported.
            let other = ChildGuard::spawn(
                util::role_command("role_uid_client", "uid_client", &format!("{ep}|refused"))
                    .uid(NOBODY)
                    .gid(NOBODY),
            );
            let other_pid = other.pid();
            other.expect_success("peer of another uid");
            let log = refusals.lock().unwrap();
            assert_eq!(log.len(), 1, "{log:?}");
            let c = log[0].credentials.expect("credentials of the refused peer");
            assert_eq!(c.uid, NOBODY);
            assert_eq!(c.pid.map(Pid::as_raw), Some(other_pid.as_raw()));
            assert!(log[0].reason.contains("65534"), "{}", log[0].reason);
        } else {
            println!("skipped the other-uid peer: not root, cannot run a process as uid {NOBODY}");
        }
        let same = ChildGuard::spawn(&mut util::role_command(
            "role_uid_client",
            "uid_client",
            &format!("{ep}|accepted"),
        ));
        let same_pid = same.pid();
        same.expect_success("peer of the same uid");
        let cred = server.join().expect("server thread");
        assert_eq!(cred.pid.map(Pid::as_raw), Some(same_pid.as_raw()));
    });
    assert_eq!(listener.refused(), u64::from(root));
}

/// Child: connecting to an owner-only socket file of another user is refused by the kernel.
#[test]
fn role_connect_denied() {
    let Some(arg) = util::role_arg("connect_denied") else {
        return;
    };
    let err = Stream::connect(&ep(&arg)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn another_user_cannot_connect_to_an_owner_only_socket_file() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: not root, cannot run a process as uid {NOBODY}");
        return;
    }
    let _w = util::watchdog("owner-only socket file", LIMIT);
    let dir = util::TempDir::new("sock-perm");
    let ep = Endpoint::unix(dir.join("p.sock"));
    let listener = Listener::bind(&ep).unwrap();
    ChildGuard::spawn(
        util::role_command("role_connect_denied", "connect_denied", &ep.to_string())
            .uid(NOBODY)
            .gid(NOBODY),
    )
    .expect_success("peer of another uid");
    assert!(listener.try_accept().unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Accept: blocking, timeout, non-blocking

#[test]
fn accept_timeout_times_out_and_try_accept_returns_at_once() {
    let _w = util::watchdog("accept timeouts", LIMIT);
    let ep = ep(&format!("unix-abstract:{}", util::unique_name("acc")));
    let listener = Listener::bind(&ep).unwrap();
    assert!(listener.try_accept().unwrap().is_none());
    assert!(listener
        .accept_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());

    // A Unix connect completes once it is queued: try_accept finds it without waiting.
    let _client = Stream::connect(&ep).unwrap();
    assert!(listener.try_accept().unwrap().is_some());
    let _client = Stream::connect(&ep).unwrap();
    assert!(listener
        .accept_timeout(Duration::from_secs(30))
        .unwrap()
        .is_some());
}

#[test]
fn seqpacket_and_datagram_timeouts_and_try() {
    let (a, b) = SeqPacket::pair().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.try_recv(&mut buf).unwrap(), None);
    assert_eq!(
        b.recv_timeout(&mut buf, Duration::from_millis(10)).unwrap(),
        None
    );
    assert!(a.try_send(b"hi").unwrap());
    assert_eq!(b.recv_timeout(&mut buf, LIMIT).unwrap(), Some(2));

    let (a, b) = Datagram::pair().unwrap();
    assert_eq!(b.try_recv(&mut buf).unwrap(), None);
    a.send(b"dgram").unwrap();
    assert_eq!(b.try_recv(&mut buf).unwrap(), Some(5));
    // Fill the peer's queue: try_send says so instead of blocking.
    let mut sent = 0;
    while a.try_send(&[0u8; 1024]).unwrap() {
        sent += 1;
        assert!(sent < 1_000_000, "the queue never filled");
    }
    assert!(!a
        .send_timeout(&[0u8; 1024], Duration::from_millis(10))
        .unwrap());

    let (s, t) = Stream::pair().unwrap();
    assert_eq!(t.try_read(&mut buf).unwrap(), None);
    (&s).write_all(b"abc").unwrap();
    assert_eq!(t.read_timeout(&mut buf, LIMIT).unwrap(), Some(3));
    drop(s);
    assert_eq!(t.try_read(&mut buf).unwrap(), Some(0), "EOF");
}

#[test]
fn writing_to_a_closed_peer_is_broken_pipe_not_a_signal() {
    let _w = util::watchdog("write to a closed peer", LIMIT);
    let (a, b) = Stream::pair().unwrap();
    drop(b);
    // A child another test forks at this moment may hold a copy of `b` until it execs:
    // writes succeed (then block on a full buffer) until that copy closes too.
    let err = loop {
        if let Err(e) = (&a).write_all(b"x") {
            break e;
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
}

#[test]
fn connect_to_nothing_names_the_endpoint() {
    let dir = util::TempDir::new("sock-none");
    let ep = Endpoint::unix(dir.join("absent.sock"));
    let err = Stream::connect(&ep).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains(&ep.to_string()), "{err}");
    let err = Stream::connect_timeout(&ep, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn peer_credentials_without_a_unix_peer_are_an_error() {
    // The kernel reports pid 0 and uid/gid -1 for a socket with no Unix peer: that is "no
    // credentials", never a process.
    let udp = Datagram::bind(&ep("udp:127.0.0.1:0")).unwrap();
    let err = udp.peer_credentials().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    let listener = Listener::bind(&ep("tcp:127.0.0.1:0")).unwrap();
    let tcp = Stream::connect(listener.local_endpoint()).unwrap();
    let err = tcp.peer_credentials().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    // A Unix pair has them.
    let (a, _b) = Stream::pair().unwrap();
    assert_eq!(a.peer_credentials().unwrap().pid, Some(Pid::this()));
}

#[test]
fn connect_timeout_goes_on_after_a_signal_interrupts_it() {
    use std::os::unix::thread::JoinHandleExt;
    let _w = util::watchdog("connect timeout through a signal", LIMIT);
    // A handler installed with SA_RESTART (nothing else in this binary uses USR2): a connect
    // with a timeout (SO_SNDTIMEO) is interrupted with EINTR all the same.
    let handled = ipcbox::signal::flag(ipcbox::Signal::USR2).unwrap();
    let ep = ep(&format!("unix-abstract:{}", util::unique_name("eintr")));
    let listener = Options::new().backlog(0).listen(&ep).unwrap();
    let mut queued = Vec::new();
    while let Ok(s) = Stream::connect_timeout(&ep, Duration::from_millis(20)) {
        queued.push(s);
        assert!(queued.len() < 1000, "the listen queue never filled");
    }
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let target = ep.clone();
    let connecting = std::thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        Stream::connect_timeout(&target, LIMIT)
    });
    let tid = tid_rx.recv().unwrap();
    // Until the thread sleeps: after sending its id it only computes until connect waits for
    // room in the listen queue, where the kernel shows it in state S.
    let stat = format!("/proc/self/task/{tid}/stat");
    let sleeping = || {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        text.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'))
    };
    while !sleeping() {
        std::thread::yield_now();
    }
    #[allow(unsafe_code)]
    // SAFETY: the thread is alive (joined below) and USR2's handler only sets a flag.
    let rc = unsafe { libc::pthread_kill(connecting.as_pthread_t(), libc::SIGUSR2) };
    assert_eq!(rc, 0);
    while !handled.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // Room in the queue: the connect, restarted after the signal, completes.
    let first = listener.try_accept().unwrap();
    assert!(first.is_some());
    let client = connecting.join().unwrap();
    assert!(client.is_ok(), "{:?}", client.err());
}

#[test]
fn connect_timeout_gives_up_on_a_full_listen_queue() {
    let _w = util::watchdog("connect timeout", LIMIT);
    let ep = ep(&format!("unix-abstract:{}", util::unique_name("full")));
    let listener = Options::new().backlog(0).listen(&ep).unwrap();
    // Nobody accepts: fill the queue until a connect has to wait.
    let mut queued = Vec::new();
    let err = loop {
        match Stream::connect_timeout(&ep, Duration::from_millis(20)) {
            Ok(s) => queued.push(s),
            Err(e) => break e,
        }
        assert!(queued.len() < 1000, "the listen queue never filled");
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains(&ep.to_string()), "{err}");
    // The queued ones are still there to accept.
    assert!(listener.try_accept().unwrap().is_some());
}
