//! Integration tests of `ipcbox::nats` against a real `nats-server` (installed and started by
//! the tests, see util/nats.rs): the queue's outcomes across processes, redelivery, dedup of
//! retried puts, typed publish/subscribe and request/reply, sync and async, and bad input.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipcbox::codec::Raw;
use ipcbox::nats::{AsyncClient, Client, Options, Queue, RecvError, SendError};
use ipcbox::CreationMode;
use util::nats::NatsServer;
use util::{role_arg, role_command, unique_name, watchdog, ChildGuard};

fn server() -> NatsServer {
    NatsServer::start().unwrap_or_else(|e| panic!("cannot start nats-server: {e}"))
}

/// A queue name no other test uses (stream names allow no dots).
fn queue_name(tag: &str) -> String {
    unique_name(tag).replace('.', "_")
}

/// The first line a role child printed on its piped stdout (skipping libtest's own lines);
/// the rest is drained by a thread, so the child never writes to a closed pipe.
fn read_report(child: &mut ChildGuard) -> String {
    let out = child.get().stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    let report = lines
        .by_ref()
        .map(|l| l.expect("read the child's stdout"))
        .find(|l| !l.trim().is_empty() && !l.starts_with("running "))
        .expect("the child ended without a report");
    std::thread::spawn(move || lines.for_each(drop));
    report
}

fn open<T>(url: &str, name: &str, capacity: usize) -> Queue<T> {
    let client = Client::connect(url).expect("connect");
    Options::new()
        .capacity(capacity)
        .open(&client, name)
        .expect("open queue")
}

/// Role: puts `count` messages `(producer, seq)` on the queue. Arg: `url queue producer count`.
#[test]
fn role_nats_producer() {
    let Some(arg) = role_arg("nats-producer") else {
        return;
    };
    let a: Vec<&str> = arg.split(' ').collect();
    let q: Queue<(u32, u32)> = Queue::open(a[0], a[1]).expect("open");
    let (p, n): (u32, u32) = (a[2].parse().unwrap(), a[3].parse().unwrap());
    for seq in 0..n {
        q.put(&(p, seq)).expect("put");
    }
}

#[test]
fn queue_is_fifo_per_producer_across_processes() {
    let _w = watchdog("nats fifo", Duration::from_secs(120));
    let server = server();
    let name = queue_name("fifo");
    let q: Queue<(u32, u32)> = open(server.url(), &name, 10_000);
    let (producers, per) = (3u32, 200u32);
    let children: Vec<ChildGuard> = (0..producers)
        .map(|p| {
            let arg = format!("{} {name} {p} {per}", server.url());
            ChildGuard::spawn(role_command("role_nats_producer", "nats-producer", &arg))
        })
        .collect();
    let mut next = vec![0u32; producers as usize];
    for _ in 0..producers * per {
        let (p, seq) = q.get().expect("get");
        assert_eq!(
            seq, next[p as usize],
            "producer {p}'s messages out of order"
        );
        next[p as usize] += 1;
        q.task_done().expect("task_done");
    }
    for c in children {
        c.expect_success("producer");
    }
    assert!(next.iter().all(|&n| n == per));
    assert_eq!(q.try_get().unwrap(), None);
    q.join().expect("join");
    assert_eq!(q.len().unwrap(), 0);
    q.delete().unwrap();
}

/// Role: takes one message, finishes it, exits. Arg: `url queue`.
#[test]
fn role_nats_take_one() {
    let Some(arg) = role_arg("nats-take-one") else {
        return;
    };
    let (url, name) = arg.split_once(' ').unwrap();
    let q: Queue<u32> = Queue::open(url, name).expect("open");
    q.get().expect("get");
    q.task_done().expect("task_done");
}

#[test]
fn full_and_empty_with_timeouts() {
    let _w = watchdog("nats full/empty", Duration::from_secs(60));
    let server = server();
    let name = queue_name("full");
    let q: Queue<u32> = open(server.url(), &name, 2);
    assert_eq!(q.capacity(), 2);
    // Empty: "not now" as a value, after the timeout.
    assert_eq!(q.try_get().unwrap(), None);
    let start = Instant::now();
    assert_eq!(q.get_timeout(Duration::from_millis(200)).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        q.get_deadline(Instant::now() + Duration::from_millis(50))
            .unwrap(),
        None
    );
    // Full: the server refuses the third message (discard "new").
    assert!(q.try_put(&1).unwrap());
    assert!(q.put_timeout(&2, Duration::from_secs(5)).unwrap());
    assert!(!q.try_put(&3).unwrap());
    let start = Instant::now();
    assert!(!q.put_timeout(&3, Duration::from_millis(200)).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(!q.put_deadline(&3, Instant::now()).unwrap());
    assert_eq!(q.len().unwrap(), 2);
    // Another process makes room; the blocked put goes through.
    let child = ChildGuard::spawn(role_command(
        "role_nats_take_one",
        "nats-take-one",
        &format!("{} {name}", server.url()),
    ));
    assert!(q.put_timeout(&3, Duration::from_secs(30)).unwrap());
    child.expect_success("taker");
    // A message taken but not finished still counts against the capacity.
    assert_eq!(q.get().unwrap(), 2);
    assert!(!q.try_put(&4).unwrap());
    q.task_done().unwrap();
    assert!(q.try_put(&4).unwrap());
    assert_eq!(q.get().unwrap(), 3);
    assert_eq!(q.get().unwrap(), 4);
    q.task_done().unwrap();
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains(&name), "{err}");

    // Full by bytes: the byte capacity bounds the queue and its largest message.
    let client = Client::connect(server.url()).unwrap();
    let by_bytes: Queue<Vec<u8>> = Options::new()
        .byte_capacity(3000)
        .open(&client, &queue_name("bytes"))
        .unwrap();
    assert!(by_bytes.try_put(&vec![1; 1000]).unwrap());
    assert!(!by_bytes.try_put(&vec![2; 2500]).unwrap());
    let Err(SendError::Failed(err)) = by_bytes.try_put(&vec![3; 4000]) else {
        panic!("a message over the byte capacity was not refused")
    };
    assert!(err.to_string().contains(by_bytes.name()), "{err}");
    assert_eq!(by_bytes.get().unwrap(), vec![1; 1000]);
    by_bytes.task_done().unwrap();
    assert!(by_bytes.try_put(&vec![2; 2500]).unwrap());
}

/// Role: waits in `get` on an empty queue and exits 0 if it gets `Disconnected`. Arg: `url
/// queue`.
#[test]
fn role_nats_wait_for_close() {
    let Some(arg) = role_arg("nats-wait-close") else {
        return;
    };
    let (url, name) = arg.split_once(' ').unwrap();
    let q: Queue<u32> = Queue::open(url, name).expect("open");
    println!("waiting");
    std::io::stdout().flush().unwrap();
    match q.get() {
        Err(RecvError::Disconnected) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[test]
fn close_drains_then_disconnects_and_wakes_waiters() {
    let _w = watchdog("nats close", Duration::from_secs(60));
    let server = server();
    let name = queue_name("close");
    let q: Queue<u32> = open(server.url(), &name, 10);
    let mut cmd = role_command(
        "role_nats_wait_for_close",
        "nats-wait-close",
        &format!("{} {name}", server.url()),
    );
    cmd.stdout(Stdio::piped());
    let mut waiter = ChildGuard::spawn(cmd);
    // The child says when it is about to wait; its `get` may start a little later, and it gets
    // `Disconnected` either way.
    assert_eq!(read_report(&mut waiter), "waiting");
    q.close().unwrap();
    waiter.expect_success("waiter");

    // Puts fail once closed; what was left is still drained, including from other handles.
    let name = queue_name("close2");
    let q: Queue<u32> = open(server.url(), &name, 10);
    q.put(&1).unwrap();
    q.put(&2).unwrap();
    let other: Queue<u32> = Queue::open(server.url(), &name).unwrap();
    assert!(!other.is_closed().unwrap());
    q.close().unwrap();
    q.close().unwrap(); // idempotent
    assert!(other.is_closed().unwrap());
    assert!(matches!(other.put(&3), Err(SendError::Disconnected)));
    assert!(matches!(other.try_put(&3), Err(SendError::Disconnected)));
    assert_eq!(other.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    // Another handle's unfinished message may still come back: not disconnected yet.
    assert_eq!(q.try_get().unwrap(), None);
    other.task_done().unwrap();
    assert!(matches!(q.try_get(), Err(RecvError::Disconnected)));
    q.task_done().unwrap();
    assert!(matches!(other.get(), Err(RecvError::Disconnected)));
    q.join().unwrap();
}

/// Role: takes and finishes messages until the queue is closed. Arg: `url queue`.
#[test]
fn role_nats_worker() {
    let Some(arg) = role_arg("nats-worker") else {
        return;
    };
    let (url, name) = arg.split_once(' ').unwrap();
    let q: Queue<u32> = Queue::open(url, name).expect("open");
    loop {
        match q.get() {
            Ok(_) => q.task_done().expect("task_done"),
            Err(RecvError::Disconnected) => return,
            Err(e) => panic!("worker: {e}"),
        }
    }
}

#[test]
fn join_waits_for_every_task_done_across_processes() {
    let _w = watchdog("nats join", Duration::from_secs(120));
    let server = server();
    let name = queue_name("join");
    let q: Queue<u32> = open(server.url(), &name, 1000);
    // Unfinished work keeps join waiting, here and in other handles.
    q.put(&0).unwrap();
    assert_eq!(q.get().unwrap(), 0);
    assert_eq!(q.unfinished(), 1);
    assert!(!q.join_timeout(Duration::from_millis(100)).unwrap());
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::from_secs(10)).unwrap());

    for i in 0..300 {
        q.put(&i).unwrap();
    }
    let workers: Vec<ChildGuard> = (0..3)
        .map(|_| {
            let arg = format!("{} {name}", server.url());
            ChildGuard::spawn(role_command("role_nats_worker", "nats-worker", &arg))
        })
        .collect();
    q.join().unwrap();
    assert_eq!(q.len().unwrap(), 0);
    q.close().unwrap();
    for w in workers {
        w.expect_success("worker");
    }
}

/// Role: connects, says `ready`, waits for a line on stdin, then opens (or creates) the queue
/// and takes and finishes one message. Arg: `url queue`.
#[test]
fn role_nats_open_at_once() {
    let Some(arg) = role_arg("nats-open-at-once") else {
        return;
    };
    let (url, name) = arg.split_once(' ').unwrap();
    let client = Client::connect(url).expect("connect");
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("wait for go");
    let q: Queue<u32> = Options::new().open(&client, name).expect("open");
    q.get().expect("get");
    q.task_done().expect("task_done");
}

#[test]
fn a_queue_created_by_many_processes_at_once_delivers() {
    // A consumer created while the server was still setting up the new stream (by a process
    // that found the stream listed) never delivered: every worker waited for ever.
    let _w = watchdog("nats open at once", Duration::from_secs(240));
    let server = server();
    const ROUNDS: usize = 12;
    const OPENERS: usize = 6;
    for round in 0..ROUNDS {
        let name = queue_name(&format!("at-once-{round}"));
        let mut children: Vec<ChildGuard> = (0..OPENERS)
            .map(|_| {
                let arg = format!("{} {name}", server.url());
                let mut cmd = role_command("role_nats_open_at_once", "nats-open-at-once", &arg);
                cmd.stdout(Stdio::piped()).stdin(Stdio::piped());
                ChildGuard::spawn(cmd)
            })
            .collect();
        for c in &mut children {
            assert_eq!(read_report(c), "ready");
        }
        // Release them together: they race to create the stream and its consumer.
        for c in &mut children {
            let stdin = c.get().stdin.as_mut().expect("piped stdin");
            stdin.write_all(b"go\n").expect("release an opener");
        }
        let client = Client::connect(server.url()).unwrap();
        let q: Queue<u32> = Options::new().open(&client, &name).unwrap();
        for i in 0..OPENERS as u32 {
            q.put(&i).unwrap();
        }
        for c in children {
            c.expect_success("opener");
        }
        q.join().unwrap();
        q.delete().unwrap();
    }
}

/// Role: takes one message, reports it on stdout and waits to be killed. Arg: `url queue`.
#[test]
fn role_nats_take_and_hang() {
    let Some(arg) = role_arg("nats-take-hang") else {
        return;
    };
    let (url, name) = arg.split_once(' ').unwrap();
    let q: Queue<u32> = Queue::open(url, name).expect("open");
    let v = q.get().expect("get");
    println!("took {v}");
    std::io::stdout().flush().unwrap();
    let mut buf = [0u8; 1];
    let _ = std::io::stdin().read(&mut buf); // until killed (stdin never ends)
}

#[test]
fn message_of_a_killed_worker_is_delivered_again() {
    let _w = watchdog("nats redelivery", Duration::from_secs(60));
    let server = server();
    let name = queue_name("redeliver");
    let client = Client::connect(server.url()).unwrap();
    let q: Queue<u32> = Options::new()
        .capacity(10)
        .ack_wait(Duration::from_secs(1))
        .open(&client, &name)
        .unwrap();
    q.put(&7).unwrap();
    let mut cmd = role_command(
        "role_nats_take_and_hang",
        "nats-take-hang",
        &format!("{} {name}", server.url()),
    );
    cmd.stdout(Stdio::piped()).stdin(Stdio::piped());
    let mut child = ChildGuard::spawn(cmd);
    assert_eq!(read_report(&mut child), "took 7");
    assert_eq!(
        q.try_get().unwrap(),
        None,
        "delivered to one worker at a time"
    );
    child.kill();
    // Back after the ack wait, to the next get.
    assert_eq!(q.get_timeout(Duration::from_secs(20)).unwrap(), Some(7));
    q.task_done().unwrap();
    q.join().unwrap();
}

#[test]
fn create_open_and_names() {
    let server = server();
    let name = queue_name("modes");
    let err = Queue::<u32>::open(server.url(), &name).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains(&name) && err.to_string().contains(server.url()),
        "{err}"
    );
    let q = Queue::<u32>::create(server.url(), &name, 5).unwrap();
    let err = Queue::<u32>::create(server.url(), &name, 5).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    let again = Queue::<u32>::open(server.url(), &name).unwrap();
    assert_eq!(again.capacity(), 5);
    let client = Client::connect(server.url()).unwrap();
    let same: Queue<u32> = Options::new()
        .mode(CreationMode::OpenOrCreate)
        .capacity(99)
        .open(&client, &name)
        .unwrap();
    assert_eq!(same.capacity(), 5, "opening keeps the existing capacity");
    q.delete().unwrap();
    assert!(Queue::<u32>::open(server.url(), &name).is_err());
    for bad in ["", "a.b", "a b", "x*", &"n".repeat(65)] {
        let err = Options::new().open::<u32>(&client, bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("bad NATS queue name"), "{err}");
    }
}

#[test]
fn bad_input_gets_errors_naming_the_server_and_the_limit() {
    // An unreachable server: a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let err = Client::connect(&url).unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
    assert!(Queue::<u32>::open(&url, "q").is_err());
    // Bad URLs.
    for bad in ["http://127.0.0.1:4222", "nats://", "nats://host:notaport"] {
        let err = Client::connect(bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
    // Messages over the server's max payload (1 MiB by default).
    let server = server();
    let client = Client::connect(server.url()).unwrap();
    assert_eq!(client.max_payload(), 1 << 20);
    let q: Queue<Vec<u8>> = Options::new().open(&client, &queue_name("big")).unwrap();
    let big = vec![7u8; 2 << 20];
    let Err(SendError::Failed(err)) = q.put(&big) else {
        panic!("a 2 MiB put went through")
    };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(
        text.contains("max payload of 1048576 bytes") && text.contains(server.url()),
        "{text}"
    );
    let Err(SendError::Failed(err)) = client.publish("big", &big) else {
        panic!("published")
    };
    assert!(err.to_string().contains("1048576"), "{err}");
    // The connection stays usable, and a message just under the limit goes through.
    let fits = vec![1u8; q.max_message_size() - 8];
    q.put(&fits).unwrap();
    assert_eq!(q.get().unwrap(), fits);
    q.task_done().unwrap();
    // A message of the wrong type is an error, dropped; the queue stays usable.
    let as_text: Queue<String> = Queue::open(server.url(), q.name()).unwrap();
    as_text.put(&"not bytes \u{ff}".to_string()).unwrap();
    q.put(&vec![1, 2]).unwrap();
    let wrong: Queue<u64> = Queue::open(server.url(), q.name()).unwrap();
    let Err(RecvError::Failed(err)) = wrong.get() else {
        panic!("decoded a string as u64")
    };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert_eq!(q.get().unwrap(), vec![1, 2]);
}

/// A TCP proxy to the server that, once armed, forwards the first publish of a queue message
/// and then cuts the connection before the server's acknowledgement comes back: the client
/// cannot know whether the message was stored, and must retry.
struct CuttingProxy {
    port: u16,
    armed: Arc<AtomicBool>,
    cuts: Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    fn start(server_port: u16) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, c) = (armed.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    return;
                };
                let (a, c) = (a.clone(), c.clone());
                let (c_read, u_write) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (u_read, c_write) = (upstream, client);
                // Server to client: plain copy (ends when either side is shut).
                let down = std::thread::spawn(move || pump(u_read, c_write, None));
                // Client to server: after forwarding a queue publish while armed, cut both.
                pump(c_read, u_write, Some((a, c)));
                let _ = down.join();
            }
        });
        CuttingProxy { port, armed, cuts }
    }
}

type Trigger = (Arc<AtomicBool>, Arc<std::sync::atomic::AtomicUsize>);

fn pump(mut from: TcpStream, mut to: TcpStream, cut: Option<Trigger>) {
    const NEEDLE: &[u8] = b"PUB ipcbox.queue.";
    let mut buf = vec![0u8; 64 * 1024];
    // The end of the previous chunk, so that a command split between two reads is seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((armed, cuts)) = &cut {
            tail.extend_from_slice(&buf[..n]);
            let seen = tail.windows(NEEDLE.len()).any(|w| w == NEEDLE);
            let keep = tail.len().saturating_sub(NEEDLE.len());
            tail.drain(..keep);
            if seen && armed.swap(false, Ordering::SeqCst) {
                // Counted first: once the client sees the cut it may retry and return from
                // `put` before this thread runs again.
                cuts.fetch_add(1, Ordering::SeqCst);
                // The client's side is cut before the server has the publish, so no
                // acknowledgement can reach the client; the server still gets the publish,
                // ahead of the shutdown on the same socket.
                let _ = from.shutdown(std::net::Shutdown::Both);
                let _ = to.write_all(&buf[..n]);
                let _ = to.flush();
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_put_retried_after_a_lost_acknowledgement_is_stored_once() {
    let _w = watchdog("nats dedup", Duration::from_secs(120));
    let server = server();
    let server_port: u16 = server.url().rsplit(':').next().unwrap().parse().unwrap();
    let proxy = CuttingProxy::start(server_port);
    let name = queue_name("dedup");
    let direct: Queue<u32> = open(server.url(), &name, 100);
    let via_proxy = format!("nats://127.0.0.1:{}", proxy.port);
    let client = Client::connect(&via_proxy).unwrap();
    let q: Queue<u32> = Options::new().open(&client, &name).unwrap();
    q.put(&1).unwrap();
    proxy.armed.store(true, Ordering::SeqCst);
    q.put(&2).unwrap(); // its first attempt is stored, its acknowledgement lost
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut the connection"
    );
    q.put(&3).unwrap();
    let mut got = Vec::new();
    while let Some(v) = direct.try_get().unwrap() {
        direct.task_done().unwrap();
        got.push(v);
    }
    assert_eq!(got, [1, 2, 3], "the retried put is stored once");
}

/// Role: serves `add` requests and echoes publications until it gets `stop`. Arg: `url
/// prefix`.
#[test]
fn role_nats_service() {
    let Some(arg) = role_arg("nats-service") else {
        return;
    };
    let (url, prefix) = arg.split_once(' ').unwrap();
    let client = Client::connect(url).expect("connect");
    let mut adds = client
        .serve::<(i64, i64)>(&format!("{prefix}.add"))
        .unwrap();
    let mut raw = client
        .serve_with::<Vec<u8>, _>(&format!("{prefix}.raw"), Raw)
        .unwrap();
    let mut notes = client
        .subscribe::<String>(&format!("{prefix}.notes.*"))
        .unwrap();
    client
        .publish(&format!("{prefix}.ready"), &"ready".to_string())
        .unwrap();
    loop {
        if let Some(req) = adds.recv_timeout(Duration::from_millis(10)).unwrap() {
            let (a, b) = req.message;
            adds.reply(&req, &(a + b)).unwrap();
        }
        if let Some(req) = raw.try_recv().unwrap() {
            let mut rev = req.message.clone();
            rev.reverse();
            raw.reply(&req, &rev).unwrap();
        }
        match notes.try_recv() {
            Ok(Some(note)) if note == "stop" => return,
            Ok(Some(note)) => {
                client
                    .publish(&format!("{prefix}.echo"), &note.to_uppercase())
                    .unwrap();
            }
            Ok(None) => {}
            Err(e) => panic!("service: {e}"),
        }
    }
}

#[test]
fn typed_pubsub_and_request_reply_sync_and_async_across_processes() {
    let _w = watchdog("nats messages", Duration::from_secs(60));
    let server = server();
    let prefix = queue_name("svc");
    let client = Client::connect(server.url()).unwrap();
    let mut ready = client
        .subscribe::<String>(&format!("{prefix}.ready"))
        .unwrap();
    let mut echo = client
        .subscribe::<String>(&format!("{prefix}.echo"))
        .unwrap();
    let child = ChildGuard::spawn(role_command(
        "role_nats_service",
        "nats-service",
        &format!("{} {prefix}", server.url()),
    ));
    assert_eq!(ready.recv().unwrap(), "ready");

    // Blocking: request/reply and publish/subscribe, typed with postcard.
    let sum: i64 = client
        .request(&format!("{prefix}.add"), &(40i64, 2i64))
        .unwrap();
    assert_eq!(sum, 42);
    client
        .publish(&format!("{prefix}.notes.a"), &"hello".to_string())
        .unwrap();
    assert_eq!(
        echo.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some("HELLO".into())
    );
    assert_eq!(echo.try_recv().unwrap(), None);
    // Another codec: raw bytes, as a foreign peer would send them.
    let rev: Option<Vec<u8>> = client
        .request_with(&format!("{prefix}.raw"), &b"abc".to_vec(), &mut Raw, None)
        .unwrap();
    assert_eq!(rev.as_deref(), Some(&b"cba"[..]));
    // No responder: an error naming the subject and the server, not a timeout.
    let Err(RecvError::Failed(err)) = client.request::<u8, u8>(&format!("{prefix}.none"), &1)
    else {
        panic!("a request nobody serves got a reply")
    };
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains(server.url()), "{err}");

    // Async: the same through the caller's own runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = AsyncClient::connect(server.url()).await.unwrap();
        let mut echo = a
            .subscribe::<String>(&format!("{prefix}.echo"))
            .await
            .unwrap();
        let sum: i64 = a
            .request(&format!("{prefix}.add"), &(1i64, 2i64))
            .await
            .unwrap();
        assert_eq!(sum, 3);
        let none: Option<i64> = a
            .request_timeout(
                &format!("{prefix}.add"),
                &(5i64, 5i64),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(none, Some(10));
        a.publish(&format!("{prefix}.notes.b"), &"async".to_string())
            .await
            .unwrap();
        assert_eq!(echo.recv().await.unwrap(), "ASYNC");
        // A message that does not decode is an error; the subscription stays usable.
        let mut nums = a.subscribe::<u8>(&format!("{prefix}.nums")).await.unwrap();
        a.publish(&format!("{prefix}.nums"), &"not a u8".to_string())
            .await
            .unwrap();
        a.publish(&format!("{prefix}.nums"), &9u8).await.unwrap();
        assert!(matches!(nums.recv().await, Err(RecvError::Failed(_))));
        assert_eq!(nums.recv().await.unwrap(), 9);
        assert_eq!(
            nums.recv_timeout(Duration::from_millis(20)).await.unwrap(),
            None
        );
    });
    client
        .publish(&format!("{prefix}.notes.z"), &"stop".to_string())
        .unwrap();
    child.expect_success("service");
}

#[test]
fn async_queue_has_the_same_outcomes() {
    let _w = watchdog("nats async queue", Duration::from_secs(60));
    let server = server();
    let name = queue_name("async");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = AsyncClient::connect(server.url()).await.unwrap();
        let q = Options::new()
            .capacity(1)
            .open_async::<String>(&client, &name)
            .await
            .unwrap();
        assert_eq!(q.try_get().await.unwrap(), None);
        assert!(q.try_put(&"a".to_string()).await.unwrap());
        assert!(!q
            .put_timeout(&"b".to_string(), Duration::from_millis(50))
            .await
            .unwrap());
        // A getter on another task, a putter waiting for room.
        let getter = q.clone();
        let got = tokio::spawn(async move {
            let v = getter.get().await.unwrap();
            getter.task_done().await.unwrap();
            v
        });
        q.put(&"b".to_string()).await.unwrap();
        assert_eq!(got.await.unwrap(), "a");
        assert_eq!(
            q.get_timeout(Duration::from_secs(10)).await.unwrap(),
            Some("b".into())
        );
        q.task_done().await.unwrap();
        q.join().await.unwrap();
        q.close().await.unwrap();
        assert!(matches!(q.get().await, Err(RecvError::Disconnected)));
        q.delete().await.unwrap();
    });
}
