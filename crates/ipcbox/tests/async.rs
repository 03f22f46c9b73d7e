//! Integration tests of `ipcbox::tokio`: the async queue, channel and connection across real
//! processes on both runtime flavours, idle waiters, cancellation, the descriptor adapters.

mod util;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ipcbox::frame::RecvError as FrameRecvError;
use ipcbox::queue::{channel, RecvError};
use ipcbox::{CreationMode, Queue, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::{ipcbox_role_command, role_arg, unique_name, watchdog, ChildGuard, TempDir};

const LIMIT: Duration = Duration::from_secs(60);
const N: u32 = 2000;

/// Runs the test body on a current-thread and on a multi-thread runtime.
fn on_both_runtimes<F: Future<Output = ()>>(body: impl Fn() -> F) {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(body());
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    multi.block_on(body());
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Child: puts (tag, i) for i in 0..N into the named queue, async (tag 1) or sync (tag 0).
#[test]
fn role_producer() {
    let Some(arg) = role_arg("producer") else {
        return;
    };
    let (tag, name) = arg.split_once(':').unwrap();
    let tag: u32 = tag.parse().unwrap();
    let q: Queue<(u32, u32)> = Queue::open(name).unwrap();
    if tag == 0 {
        for i in 0..N {
            q.put(&(tag, i)).unwrap();
        }
    } else {
        current_thread().block_on(async {
            let q = ipcbox::tokio::Queue::new(q).unwrap();
            for i in 0..N {
                q.put(&(tag, i)).await.unwrap();
            }
        });
    }
}

#[test]
fn sync_and_async_producers_and_consumers_mix_on_one_queue() {
    let _dog = watchdog("mixed queue", LIMIT);
    on_both_runtimes(|| async {
        let name = unique_name("async-mix");
        // A small queue, so producers wait for room as often as consumers for messages.
        let q: Queue<(u32, u32)> = Queue::create(&name, 4).unwrap();
        let sync_q: Queue<(u32, u32)> = Queue::open(&name).unwrap();
        let producers: Vec<ChildGuard> = (0..2)
            .map(|tag| {
                ChildGuard::spawn(util::role_command(
                    "role_producer",
                    "producer",
                    &format!("{tag}:{name}"),
                ))
            })
            .collect();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sync_got = got.clone();
        let sync_consumer = std::thread::spawn(move || loop {
            match sync_q.get() {
                Ok(m) => sync_got.lock().unwrap().push(m),
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("sync get: {e}"),
            }
        });
        let q = Arc::new(ipcbox::tokio::Queue::new(q).unwrap());
        let async_q = q.clone();
        let async_got = got.clone();
        let async_consumer = tokio::spawn(async move {
            let mut last = [None::<u32>; 2];
            loop {
                match async_q.get().await {
                    Ok((tag, i)) => {
                        // One producer's messages reach one consumer in order.
                        let prev = last[tag as usize].replace(i);
                        assert!(prev < Some(i), "{tag}: {i} after {prev:?}");
                        async_got.lock().unwrap().push((tag, i));
                    }
                    Err(RecvError::Disconnected) => break,
                    Err(e) => panic!("async get: {e}"),
                }
            }
        });
        for p in producers {
            let status = tokio::task::spawn_blocking(move || p.wait()).await.unwrap();
            assert!(status.success(), "producer failed: {status}");
        }
        q.get_ref().close().unwrap();
        async_consumer.await.unwrap();
        sync_consumer.join().unwrap();
        let got = got.lock().unwrap();
        let distinct: HashSet<_> = got.iter().copied().collect();
        assert_eq!(got.len(), 2 * N as usize, "every message once");
        assert_eq!(distinct.len(), 2 * N as usize, "no duplicates");
    });
}

/// Child: sends 0..N through the named channel with an async sender, then drops it.
#[test]
fn role_channel_sender() {
    let Some(name) = role_arg("channel_sender") else {
        return;
    };
    let tx: channel::Sender<u32> = channel::Options::new()
        .mode(CreationMode::Open)
        .sender(&name)
        .unwrap();
    current_thread().block_on(async {
        let mut tx = ipcbox::tokio::Sender::new(tx).unwrap();
        for i in 0..N {
            tx.send(&i).await.unwrap();
        }
    });
}

#[test]
fn channel_async_ends_across_processes() {
    let _dog = watchdog("async channel", LIMIT);
    on_both_runtimes(|| async {
        let name = unique_name("async-chan");
        let rx: channel::Receiver<u32> = channel::Options::new()
            .capacity(2)
            .max_message_size(16)
            .receiver(&name)
            .unwrap();
        let child = ChildGuard::spawn(util::role_command(
            "role_channel_sender",
            "channel_sender",
            &name,
        ));
        let mut rx = ipcbox::tokio::Receiver::new(rx).unwrap();
        for i in 0..N {
            assert_eq!(rx.recv().await.unwrap(), i);
        }
        assert!(matches!(rx.recv().await, Err(RecvError::Disconnected)));
        child.expect_success("channel sender");
    });
}

/// Child: 1,000 tasks wait on 1,000 idle queues; measures its own CPU time and threads over
/// two seconds of idleness, then wakes every task. Exits 0 if the bounds held.
#[test]
fn role_idle() {
    if role_arg("idle").is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let threads_before = threads();
        let queues: Vec<Arc<ipcbox::tokio::Queue<u32>>> = (0..1000)
            .map(|_| {
                let q = ipcbox::queue::Options::new()
                    .capacity(4)
                    .byte_capacity(4096)
                    .anonymous()
                    .unwrap();
                Arc::new(ipcbox::tokio::Queue::new(q).unwrap())
            })
            .collect();
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = queues
            .iter()
            .map(|q| {
                let (q, waiting) = (q.clone(), waiting.clone());
                tokio::spawn(async move {
                    waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    q.get().await.unwrap()
                })
            })
            .collect();
        while waiting.load(std::sync::atomic::Ordering::SeqCst) < 1000
            || !queues.iter().all(|q| q.get_ref().doorbell_registered())
        {
            tokio::task::yield_now().await;
        }
        let cpu_before = cpu_time();
        // The idleness being measured, not an ordering.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = cpu_time() - cpu_before;
        let extra_threads = threads() - threads_before;
        eprintln!("1000 idle waiters: {cpu:?} of CPU in 2 s, {extra_threads} extra threads");
        for q in &queues {
            q.put(&7).await.unwrap();
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert!(
            cpu < Duration::from_millis(200),
            "idle waiters used {cpu:?}"
        );
        assert!(extra_threads <= 8, "{extra_threads} extra threads");
    });
}

/// This process's user and system CPU time (`getrusage(RUSAGE_SELF)`).
#[allow(unsafe_code)]
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn a_thousand_idle_async_waiters_use_no_cpu_and_no_threads() {
    let _dog = watchdog("idle waiters", LIMIT);
    // In a process of its own, so that no other test's work counts.
    util::ChildGuard::spawn(util::role_command("role_idle", "idle", "")).expect_success("idle");
}

#[test]
fn dropped_get_futures_lose_nothing() {
    let _dog = watchdog("cancellation", LIMIT);
    current_thread().block_on(async {
        let name = unique_name("async-cancel");
        let q: Queue<(u32, u32)> = Queue::create(&name, 1).unwrap();
        let q = ipcbox::tokio::Queue::new(q).unwrap();
        // At least one cancelled wait before anything is there.
        assert!(tokio::time::timeout(Duration::from_millis(1), q.get())
            .await
            .is_err());
        let producer = ChildGuard::spawn(util::role_command(
            "role_producer",
            "producer",
            &format!("0:{name}"),
        ));
        let (mut next, mut cancelled) = (0u32, 0u32);
        while next < N {
            match tokio::time::timeout(Duration::from_micros(100), q.get()).await {
                Ok(Ok(m)) => {
                    assert_eq!(m, (0, next), "every message once, in order");
                    next += 1;
                }
                Ok(Err(e)) => panic!("get: {e}"),
                Err(_) => cancelled += 1,
            }
        }
        eprintln!("{N} messages, {cancelled} get futures dropped while waiting");
        producer.expect_success("producer");
        assert_eq!(q.get_ref().try_get().unwrap(), None);
    });
}

/// Child: attaches to the queue, puts one message and waits to be killed.
#[test]
fn role_attached() {
    let Some(name) = role_arg("attached") else {
        return;
    };
    let q: Queue<u32> = Queue::open(&name).unwrap();
    q.put(&1).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn an_async_get_sees_its_peers_die_as_disconnected() {
    let _dog = watchdog("async dead peer", LIMIT);
    on_both_runtimes(|| async {
        let name = unique_name("async-dead");
        let q = ipcbox::tokio::Queue::new(Queue::<u32>::create(&name, 4).unwrap()).unwrap();
        let child = ipcbox_role_command("role_attached", "attached", &name)
            .spawn()
            .unwrap();
        assert_eq!(q.get().await.unwrap(), 1);
        ipcbox::signal::send(child.pid(), Signal::KILL).unwrap();
        let mut child = child;
        ipcbox::tokio::exited(&mut child).await.unwrap();
        assert!(matches!(q.get().await, Err(RecvError::Disconnected)));
    });
}

/// Child: echoes every u64 it receives on the inherited connection plus one, until the
/// parent closes it.
#[test]
fn role_echo() {
    if role_arg("echo").is_none() {
        return;
    }
    let mut conn: ipcbox::Connection<u64> =
        ipcbox::Connection::from_env("IPCBOX_TEST_CONN").unwrap();
    loop {
        match conn.recv() {
            Ok(n) => conn.send(&(n + 1)).unwrap(),
            Err(e) if e.is_disconnected() => break,
            Err(e) => panic!("echo: {e}"),
        }
    }
}

/// A child echoing on the other end of a new connection, and this end.
fn echo_child() -> (ChildGuard, ipcbox::Connection<u64>) {
    let (mine, theirs) = ipcbox::frame::duplex::<u64>().unwrap();
    let mut cmd = util::role_command("role_echo", "echo", "");
    theirs.pass_to_child(&mut cmd, "IPCBOX_TEST_CONN").unwrap();
    (ChildGuard::spawn(cmd), mine)
}

#[test]
fn async_connections_talk_to_a_sync_one_in_another_process() {
    let _dog = watchdog("async connection", LIMIT);
    on_both_runtimes(|| async {
        // The sync API's shape.
        let (child, mine) = echo_child();
        let mut conn = ipcbox::tokio::Connection::new(mine).unwrap();
        for n in 0..100u64 {
            conn.send(&n).await.unwrap();
            assert_eq!(conn.recv().await.unwrap(), n + 1);
        }
        drop(conn);
        child.expect_success("echo");
        // tokio-util's Stream and Sink.
        let (child, mine) = echo_child();
        let mut conn = ipcbox::tokio::framed(mine).unwrap();
        for n in 0..100u64 {
            conn.send(n).await.unwrap();
            assert_eq!(conn.next().await.unwrap().unwrap(), n + 1);
        }
        drop(conn);
        child.expect_success("echo");
    });
}

/// Child: sends 0..N on the inherited pipe, then exits.
#[test]
fn role_pipe_writer() {
    if role_arg("pipe_writer").is_none() {
        return;
    }
    let mut conn: ipcbox::Connection<u32, u32, ipcbox::pipe::Writer> =
        ipcbox::Connection::from_env("IPCBOX_TEST_PIPE").unwrap();
    for i in 0..N {
        conn.send(&i).unwrap();
    }
}

#[test]
fn an_async_connection_reads_a_pipe_another_process_writes() {
    let _dog = watchdog("async pipe connection", LIMIT);
    on_both_runtimes(|| async {
        let (r, w) = ipcbox::frame::pipe::<u32>().unwrap();
        let mut cmd = util::role_command("role_pipe_writer", "pipe_writer", "");
        w.pass_to_child(&mut cmd, "IPCBOX_TEST_PIPE").unwrap();
        let child = ChildGuard::spawn(cmd);
        let mut r = ipcbox::tokio::Connection::new(r).unwrap();
        for i in 0..N {
            assert_eq!(r.recv().await.unwrap(), i);
        }
        assert!(matches!(r.recv().await, Err(FrameRecvError::Disconnected)));
        child.expect_success("pipe writer");
    });
}

#[test]
fn async_connections_pass_descriptors_and_keep_message_boundaries() {
    let _dog = watchdog("fds and seqpacket", LIMIT);
    current_thread().block_on(async {
        let (a, b) = ipcbox::socket::SeqPacket::pair().unwrap();
        let mut a = ipcbox::tokio::Connection::new(
            ipcbox::Connection::<String, String, _>::new(a).unwrap(),
        )
        .unwrap();
        let mut b = ipcbox::tokio::Connection::new(
            ipcbox::Connection::<String, String, _>::new(b).unwrap(),
        )
        .unwrap();
        let (pr, mut pw) = ipcbox::pipe::new().unwrap();
        a.send_with_fds(&"a pipe".to_owned(), &[std::os::fd::AsFd::as_fd(&pr)])
            .await
            .unwrap();
        a.send_bytes(b"").await.unwrap();
        let (msg, fds) = b.recv_with_fds().await.unwrap();
        assert_eq!((msg.as_str(), fds.len()), ("a pipe", 1));
        assert_eq!(b.recv_bytes().await.unwrap(), b"");
        std::io::Write::write_all(&mut pw, b"x").unwrap();
        let mut got = [0u8; 1];
        let mut passed = std::fs::File::from(fds.into_iter().next().unwrap());
        std::io::Read::read_exact(&mut passed, &mut got).unwrap();
        assert_eq!(&got, b"x");
    });
}

#[test]
fn an_async_send_returns_once_its_whole_frame_is_in_the_transport() {
    let _dog = watchdog("large frame", LIMIT);
    current_thread().block_on(async {
        // Far more than a socket buffer: the transport takes it in parts.
        let big = vec![7u8; 4 << 20];
        let (a, b) = ipcbox::frame::duplex::<()>().unwrap();
        let mut a = ipcbox::tokio::Connection::new(a).unwrap();
        let mut b = ipcbox::tokio::Connection::new(b).unwrap();
        let (sent, got) = tokio::join!(a.send_bytes(&big), b.recv_bytes());
        sent.unwrap();
        assert_eq!(got.unwrap().len(), big.len());
        // Nothing left pending: the receiver then gets the next frame, not the rest of this.
        assert_eq!(a.get_ref().pending_len(), 0);
        a.send_bytes(b"next").await.unwrap();
        assert_eq!(b.recv_bytes().await.unwrap(), b"next");
    });
}

#[test]
fn bad_frames_give_the_sync_apis_errors() {
    let _dog = watchdog("bad frames", LIMIT);
    current_thread().block_on(async {
        // Over the limit: refused, named with both sizes; the frame stays unread.
        let (mut a, b) = ipcbox::frame::duplex::<Vec<u8>>().unwrap();
        let mut b = ipcbox::tokio::Connection::new(b).unwrap();
        b.get_mut().set_max_frame_len(8);
        a.send_bytes(&[0; 9]).unwrap();
        match b.recv_bytes().await {
            Err(FrameRecvError::TooLarge { len: 9, max: 8 }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        b.get_mut().set_max_frame_len(64);
        assert_eq!(b.recv_bytes().await.unwrap(), [0; 9]);
        // A peer gone in the middle of a frame: torn, with what arrived; then Disconnected.
        let mut raw = a.into_transport().unwrap();
        std::io::Write::write_all(&mut raw, &[10, 0, 0, 0, 1, 2]).unwrap();
        drop(raw);
        match b.recv_bytes().await {
            Err(FrameRecvError::Torn {
                expected: 14,
                received: 6,
            }) => {}
            other => panic!("expected Torn, got {other:?}"),
        }
        assert!(matches!(
            b.recv_bytes().await,
            Err(FrameRecvError::Disconnected)
        ));
        // An undecodable frame is consumed and reported; the next one is received.
        let (mut a, b) = ipcbox::frame::duplex::<u64>().unwrap();
        let mut b = ipcbox::tokio::Connection::new(b).unwrap();
        a.send_bytes(&[0xFF; 12]).unwrap();
        a.send(&5).unwrap();
        assert!(matches!(b.recv().await, Err(FrameRecvError::Decode(_))));
        assert_eq!(b.recv().await.unwrap(), 5);

        // The same through the tokio-util codecs.
        let (mut a, b) = ipcbox::frame::duplex::<Vec<u8>>().unwrap();
        let mut b = ipcbox::tokio::framed(b).unwrap();
        b.codec_mut().set_max_frame_len(8);
        a.send_bytes(&[0; 9]).unwrap();
        match b.next().await {
            Some(Err(FrameRecvError::TooLarge { len: 9, max: 8 })) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let (a, b) = ipcbox::frame::duplex::<u64>().unwrap();
        let mut b = ipcbox::tokio::framed(b).unwrap();
        let mut raw = a.into_transport().unwrap();
        std::io::Write::write_all(&mut raw, &[10, 0, 0, 0, 1, 2]).unwrap();
        drop(raw);
        match b.next().await {
            Some(Err(FrameRecvError::Torn {
                expected: 14,
                received: 6,
            })) => {}
            other => panic!("expected Torn, got {other:?}"),
        }
        // A clean close between frames ends the stream.
        let (mut a, b) = ipcbox::frame::duplex::<u64>().unwrap();
        let mut b = ipcbox::tokio::framed(b).unwrap();
        a.send(&5).unwrap();
        drop(a);
        assert_eq!(b.next().await.unwrap().unwrap(), 5);
        assert!(b.next().await.is_none());
        let (mut a, b) = ipcbox::frame::duplex::<u64>().unwrap();
        let mut b = ipcbox::tokio::framed(b).unwrap();
        a.send_bytes(&[0xFF; 12]).unwrap();
        assert!(matches!(
            b.next().await,
            Some(Err(FrameRecvError::Decode(_)))
        ));
    });
}

#[test]
fn pipes_fifos_children_and_signals_on_the_reactor() {
    let _dog = watchdog("descriptor adapters", LIMIT);
    current_thread().block_on(async {
        // A FIFO written here and read by `cat`, whose stdout pipe is read here.
        let dir = TempDir::new("async-fifo");
        let path = dir.join("f");
        let _fifo = ipcbox::fifo::Fifo::create(&path, CreationMode::CreateExclusive).unwrap();
        let mut cat = ipcbox::process::Command::new("cat")
            .arg(&path)
            .stdout(ipcbox::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = cat.stdout.take().unwrap();
        let writer = tokio::task::spawn_blocking(move || ipcbox::fifo::open_writer(path))
            .await
            .unwrap()
            .unwrap();
        let mut writer = ipcbox::tokio::Async::new(writer).unwrap();
        writer.write_all(b"through the fifo").await.unwrap();
        drop(writer);
        let mut out = ipcbox::tokio::Async::new(out).unwrap();
        let mut text = String::new();
        out.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "through the fifo");
        assert!(ipcbox::tokio::exited(&mut cat).await.unwrap().success());

        // A child's exit code through its pidfd.
        let mut child = ipcbox::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        assert_eq!(
            ipcbox::tokio::exited(&mut child).await.unwrap().code(),
            Some(3)
        );

        // A signal another process sends.
        let mut signals = ipcbox::signal::Signals::new([Signal::USR1]).unwrap();
        let mut killer = ipcbox::process::Command::new("sh")
            .args(["-c", "kill -USR1 $PPID"])
            .spawn()
            .unwrap();
        assert_eq!(
            ipcbox::tokio::signals(&mut signals).await.unwrap(),
            [Signal::USR1]
        );
        killer.wait().unwrap();
    });
}

/// Child: sends "hello" on the named POSIX message queue and on a stream socket.
#[test]
fn role_messenger() {
    let Some(base) = role_arg("messenger") else {
        return;
    };
    let mq = ipcbox::mq::PosixQueue::open(&format!("/{base}")).unwrap();
    mq.send(b"hello", 3).unwrap();
    let ep = ipcbox::socket::Endpoint::unix_abstract(base);
    let mut s = ipcbox::socket::Stream::connect(&ep).unwrap();
    std::io::Write::write_all(&mut s, b"hello").unwrap();
}

#[test]
fn message_queues_listeners_and_sockets_on_the_reactor() {
    let _dog = watchdog("mq and sockets", LIMIT);
    on_both_runtimes(|| async {
        let base = unique_name("async-mq");
        let mq = ipcbox::mq::PosixQueue::create(
            &format!("/{base}"),
            ipcbox::mq::Attributes {
                max_messages: 4,
                max_message_size: 64,
            },
        )
        .unwrap();
        let listener =
            ipcbox::socket::Listener::bind(&ipcbox::socket::Endpoint::unix_abstract(&base))
                .unwrap();
        let listener = ipcbox::tokio::Async::new(listener).unwrap();
        let mq = ipcbox::tokio::Async::new(mq).unwrap();
        let child = ChildGuard::spawn(util::role_command("role_messenger", "messenger", &base));
        let mut buf = [0u8; 64];
        let got = mq.recv(&mut buf).await.unwrap();
        assert_eq!((got.len, got.priority), (5, 3));
        assert_eq!(&buf[..5], b"hello");
        let stream = listener.accept().await.unwrap();
        let mut stream = ipcbox::tokio::Async::new(stream).unwrap();
        let mut text = Vec::new();
        stream.read_to_end(&mut text).await.unwrap();
        assert_eq!(text, b"hello");
        child.expect_success("messenger");
        ipcbox::mq::PosixQueue::unlink(&format!("/{base}")).unwrap();

        // Message sockets: one message per send.
        let (a, b) = ipcbox::socket::SeqPacket::pair().unwrap();
        let (a, b) = (
            ipcbox::tokio::Async::new(a).unwrap(),
            ipcbox::tokio::Async::new(b).unwrap(),
        );
        a.send(b"one").await.unwrap();
        a.send(b"two").await.unwrap();
        assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
    });
}

#[test]
fn a_system_v_receive_dropped_on_the_pool_keeps_its_message() {
    let _dog = watchdog("blocking pool", LIMIT);
    current_thread().block_on(async {
        let q = ipcbox::mq::SysVQueue::create(ipcbox::IpcKey::PRIVATE).unwrap();
        let r = ipcbox::tokio::SysVReceiver::new(q);
        let any = ipcbox::mq::TypeSelector::Any;
        // The receive keeps waiting on the pool after its future is dropped.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), r.recv(64, any))
                .await
                .is_err()
        );
        r.get_ref().send(b"kept", 1).unwrap();
        assert_eq!(r.recv(64, any).await.unwrap(), (b"kept".to_vec(), 1));
        r.get_ref().send(b"next", 2).unwrap();
        assert_eq!(r.recv(64, any).await.unwrap(), (b"next".to_vec(), 2));
    });
}
