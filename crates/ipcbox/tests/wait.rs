//! Integration tests of `ipcbox::wait`: one wait over queues, channel ends, connections,
//! message queues and children, woken by other processes.

mod util;

use std::io::Write;
use std::time::Duration;

use ipcbox::mq::{Attributes, PosixQueue};
use ipcbox::queue::{channel, Interest, RecvError};
use ipcbox::wait::{Fd, Waitable};
use ipcbox::{Queue, Signal};
use util::{ipcbox_role_command, role_arg, unique_name, watchdog};

const LIMIT: Duration = Duration::from_secs(30);

fn wait(objects: &[&dyn Waitable]) -> Vec<usize> {
    ipcbox::wait(objects, Some(LIMIT)).expect("wait")
}

/// Child: plays the script named by its argument against the objects named after it, one
/// step per "go" message from the parent.
#[test]
fn role_waker() {
    let Some(arg) = role_arg("waker") else { return };
    let base = arg.as_str();
    let go: Queue<u32> = Queue::open(&format!("{base}-go")).unwrap();
    let q: Queue<u32> = Queue::open(&format!("{base}-q")).unwrap();
    let tx: channel::Sender<u32> = channel::Options::new()
        .mode(ipcbox::CreationMode::Open)
        .sender(&format!("{base}-ch"))
        .unwrap();
    let mq = PosixQueue::open(&format!("/{base}-mq")).unwrap();
    assert_eq!(go.get().unwrap(), 1);
    q.put(&7).unwrap();
    assert_eq!(go.get().unwrap(), 2);
    tx.send(&8).unwrap();
    assert_eq!(go.get().unwrap(), 3);
    mq.send(b"nine", 0).unwrap();
    assert_eq!(go.get().unwrap(), 4);
    std::process::exit(5);
}

#[test]
fn wait_wakes_for_each_kind_of_object_another_process_makes_ready() {
    let _dog = watchdog("wait across processes", LIMIT);
    let base = unique_name("wait");
    let go: Queue<u32> = Queue::create(&format!("{base}-go"), 8).unwrap();
    let q: Queue<u32> = Queue::create(&format!("{base}-q"), 8).unwrap();
    let rx: channel::Receiver<u32> = channel::Options::new()
        .capacity(4)
        .max_message_size(64)
        .receiver(&format!("{base}-ch"))
        .unwrap();
    let mq = PosixQueue::create(
        &format!("/{base}-mq"),
        Attributes {
            max_messages: 4,
            max_message_size: 64,
        },
    )
    .unwrap();
    let mut child = ipcbox_role_command("role_waker", "waker", &base)
        .spawn()
        .unwrap();
    let all: [&dyn Waitable; 4] = [&q, &rx, &mq, &child];

    assert_eq!(
        ipcbox::wait(&all, Some(Duration::from_millis(50))).unwrap(),
        Vec::<usize>::new(),
        "nothing is ready yet"
    );
    go.put(&1).unwrap();
    assert_eq!(wait(&all), [0]);
    assert_eq!(q.try_get().unwrap(), Some(7));
    go.put(&2).unwrap();
    assert_eq!(wait(&all), [1]);
    assert_eq!(rx.try_recv().unwrap(), Some(8));
    go.put(&3).unwrap();
    assert_eq!(wait(&all), [2]);
    let mut buf = [0u8; 64];
    assert_eq!(mq.try_recv(&mut buf).unwrap().map(|r| r.len), Some(4));
    go.put(&4).unwrap();
    // The child's exit also leaves the channel's sender gone and the queue abandoned: all
    // three report ready, and each operation then says why.
    let ready = wait(&all);
    assert!(ready.contains(&3), "child exit not seen: {ready:?}");
    assert_eq!(child.wait().unwrap().code(), Some(5));
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    PosixQueue::unlink(&format!("/{base}-mq")).unwrap();
    drop(mq);
}

/// Child: attaches to the queue, says so, and waits to be killed.
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
fn wait_reports_a_queue_whose_peers_died_and_get_says_disconnected() {
    let _dog = watchdog("dead peer", LIMIT);
    let name = unique_name("wait-dead");
    let q: Queue<u32> = Queue::create(&name, 4).unwrap();
    let mut child = ipcbox_role_command("role_attached", "attached", &name)
        .spawn()
        .unwrap();
    assert_eq!(wait(&[&q]), [0]);
    assert_eq!(q.try_get().unwrap(), Some(1));
    assert!(!q.is_abandoned(Interest::Get));
    ipcbox::signal::send(child.pid(), Signal::KILL).unwrap();
    child.wait().unwrap();
    assert_eq!(wait(&[&q]), [0]);
    assert!(q.is_abandoned(Interest::Get));
    assert!(matches!(q.get(), Err(RecvError::Disconnected)));
}

#[test]
fn wait_sees_a_frame_already_buffered_in_a_connection() {
    let _dog = watchdog("buffered frame", LIMIT);
    let (a, mut b) = ipcbox::frame::duplex::<u32>().unwrap();
    let mut a = a;
    a.send(&1).unwrap();
    a.send(&2).unwrap();
    assert_eq!(wait(&[&b]), [0]);
    assert_eq!(b.recv().unwrap(), 1);
    // The second frame came with the first read: the socket is empty, the frame buffered.
    assert_eq!(wait(&[&b]), [0]);
    assert_eq!(b.try_recv().unwrap(), Some(2));
    assert_eq!(
        ipcbox::wait(&[&b], Some(Duration::from_millis(20))).unwrap(),
        Vec::<usize>::new()
    );
    drop(a);
    assert_eq!(wait(&[&b]), [0], "the peer's close is ready too");
}

#[test]
fn wait_on_a_raw_descriptor_beside_an_empty_queue() {
    let _dog = watchdog("raw fd", LIMIT);
    let (r, mut w) = ipcbox::pipe::new().unwrap();
    let fd = Fd(std::os::fd::AsFd::as_fd(&r));
    let q: Queue<u32> = Queue::new(1).unwrap();
    assert_eq!(
        ipcbox::wait(&[&q, &fd], Some(Duration::ZERO)).unwrap(),
        Vec::<usize>::new()
    );
    w.write_all(b"x").unwrap();
    assert_eq!(wait(&[&q, &fd]), [1]);
    q.put(&1).unwrap();
    assert!(!q.arm(Interest::Put).unwrap(), "a full queue has no room");
    assert!(q.arm(Interest::Get).unwrap(), "and a message");
}

#[test]
fn wait_refuses_an_empty_list() {
    let err = ipcbox::wait(&[], None).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("empty list"), "{err}");
}

/// The abstract name a doorbell descriptor is bound to (LAYOUT.md, "Doorbells").
fn bell_name(fd: std::os::fd::BorrowedFd<'_>) -> String {
    let addr = rustix::net::getsockname(fd).unwrap();
    let unix = rustix::net::SocketAddrUnix::try_from(addr).unwrap();
    String::from_utf8(unix.abstract_name().unwrap().to_vec()).unwrap()
}

#[test]
#[allow(unsafe_code)]
fn an_inherited_queue_gets_a_doorbell_of_its_own_after_fork() {
    use ipcbox::process::Fork;
    use std::os::fd::AsFd;
    let _dog = watchdog("fork", LIMIT);
    let q: Queue<u32> = Queue::new(4).unwrap();
    let back: Queue<u32> = Queue::new(4).unwrap();
    let parents = format!("ipcbox.bell.{:08x}", std::process::id());
    assert!(bell_name(q.as_fd()).starts_with(&parents));
    // SAFETY: the child only uses the queues, then leaves with `exit_immediately`.
    match unsafe { ipcbox::process::fork() }.unwrap() {
        Fork::Child => {
            let ok = std::panic::catch_unwind(|| {
                assert!(!q.arm(Interest::Get).unwrap());
                let mine = format!("ipcbox.bell.{:08x}", std::process::id());
                assert!(
                    bell_name(q.as_fd()).starts_with(&mine),
                    "same number, own socket"
                );
                back.put(&0).unwrap();
                assert_eq!(wait(&[&q]), [0]);
                let v = q.try_get().unwrap().unwrap();
                back.put(&(v + 1)).unwrap();
            })
            .is_ok();
            ipcbox::process::exit_immediately(if ok { 0 } else { 1 });
        }
        Fork::Parent(mut child) => {
            assert_eq!(back.get().unwrap(), 0);
            q.put(&41).unwrap();
            assert_eq!(back.get().unwrap(), 42);
            assert!(child.wait().unwrap().success());
            assert!(
                bell_name(q.as_fd()).starts_with(&parents),
                "the parent's is untouched"
            );
        }
    }
}
