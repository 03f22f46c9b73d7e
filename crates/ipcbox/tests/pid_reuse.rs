//! A dead lock owner whose PID the kernel hands out again, to a thread of another process:
//! the queue's side locks and the store's lock are taken over at once, not waited for as if
//! the owner lived.
//!
//! PIDs and thread IDs share one number space, so a dead owner's PID most often comes back as
//! some thread's ID. The test forces that in a PID namespace of its own (`unshare --pid`, which
//! needs root), where it steers the next ID through `/proc/sys/kernel/ns_last_pid` and nothing
//! else takes IDs.

mod util;

use std::sync::mpsc;
use std::time::Duration;

use ipcbox::shm::store::{ObjectId, Store};
use ipcbox::shm::Segment;
use ipcbox::Queue;

const LIMIT: Duration = Duration::from_secs(120);

/// LAYOUT.md: the queue's producers side starts at 64 with its lock word; the store's
/// metadata lock is at 16.
const QUEUE_PRODUCERS_LOCK: usize = 64;
const STORE_LOCK: usize = 16;

/// What the namespace is made with: a new PID namespace whose first process is the role, and
/// a `/proc` of that namespace, so that IDs read there are the namespace's.
const UNSHARE: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

#[test]
fn a_dead_owners_pid_reborn_as_a_thread_is_taken_over_at_once() {
    let _dog = util::watchdog("a_dead_owners_pid_reborn_as_a_thread", LIMIT);
    // Without the privilege to make a namespace (not root, or a container that forbids it) the
    // test cannot steer IDs: it says so and skips.
    let probe = std::process::Command::new(UNSHARE[0])
        .args(&UNSHARE[1..])
        .arg("true")
        .stderr(std::process::Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            util::skip(&format!(
                "cannot make a PID namespace with `{}` ({}): {}",
                UNSHARE.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            util::skip(&format!("cannot run `{}`: {e}", UNSHARE[0]));
            return;
        }
    }
    let cmd = util::role_command_under(
        UNSHARE,
        "role_namespace_init",
        "pid-reuse-init",
        &util::unique_name("pid-reuse"),
    );
    util::ChildGuard::spawn(cmd).expect_success("the namespace's first process");
}

/// PID 1 of the new namespace: creates a queue and a store, has a child die holding their
/// locks, makes a thread of its own take the child's PID, and uses both objects.
#[test]
fn role_namespace_init() {
    let Some(base) = util::role_arg("pid-reuse-init") else {
        return;
    };
    assert_eq!(
        std::process::id(),
        1,
        "the role runs as PID 1 of its namespace"
    );
    let qname = format!("{base}-queue");
    let sname = format!("{base}-store");
    let queue: Queue<u32> = Queue::create(&qname, 8).unwrap();
    let store = Store::create(&sname, 4096).unwrap();

    // A child takes both locks and dies; reaping it frees its PID.
    let dying = util::role_command("role_lock_and_die", "pid-reuse-die", &base);
    let dying = util::ChildGuard::spawn(dying);
    let dead = dying.pid().as_raw() as u32;
    dying.expect_success("the dying owner");
    let word = |name: &str, at: usize| {
        let mut w = [0; 4];
        Segment::open(name).unwrap().read_at(at, &mut w).unwrap();
        u32::from_ne_bytes(w)
    };
    assert_eq!(word(&qname, QUEUE_PRODUCERS_LOCK) & 0x3f_ffff, dead);
    assert_eq!(word(&sname, STORE_LOCK) & 0x3f_ffff, dead);

    // The next ID the namespace hands out is the dead owner's: a new thread of this process
    // gets it.
    std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", dead - 1))
        .expect("write ns_last_pid (root in a namespace of our own)");
    let (tid_tx, tid_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .unwrap();
        let _ = end_rx.recv();
    });
    let tid = tid_rx.recv().unwrap();
    assert_eq!(tid, dead, "the new thread did not get the dead owner's ID");
    // The ID now names a live thread that leads no process: `/proc` shows it, `pidfd_open`
    // refuses it.
    assert!(std::path::Path::new(&format!("/proc/{dead}/stat")).exists());
    let pid = rustix::process::Pid::from_raw(dead as i32).unwrap();
    let refused = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty());
    assert!(refused.is_err(), "pidfd_open of thread {dead} succeeded");

    // Both locks are taken over from the dead owner at once. Taking the thread for the owner
    // would wait 10 s for it, then fail with TimedOut.
    queue
        .put(&7)
        .expect("put with the producers' lock of a dead owner");
    assert_eq!(queue.recoveries(), 1, "the producers' side was repaired");
    assert_eq!(queue.get().unwrap(), 7);
    let mut buf = store
        .create_object(ObjectId::from_u64(1), 3)
        .expect("store lock");
    buf.copy_from_slice(b"one");
    buf.seal().unwrap();
    assert_eq!(
        &store.try_get(ObjectId::from_u64(1)).unwrap().unwrap()[..],
        b"one"
    );
    assert_eq!(word(&qname, QUEUE_PRODUCERS_LOCK), 0);
    assert_eq!(word(&sname, STORE_LOCK), 0);

    end_tx.send(()).unwrap();
    thread.join().unwrap();
}

/// Takes the queue's producers' lock and the store's lock, as their owner would (its PID and
/// the tag of its start time, LAYOUT.md "Lock words"), and exits holding them.
#[test]
fn role_lock_and_die() {
    let Some(base) = util::role_arg("pid-reuse-die") else {
        return;
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_ascii_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let word = std::process::id() | ((start % 511) as u32 + 1) << 22;
    for (name, at) in [
        (format!("{base}-queue"), QUEUE_PRODUCERS_LOCK),
        (format!("{base}-store"), STORE_LOCK),
    ] {
        Segment::open(&name)
            .unwrap()
            .write_at(at, &word.to_ne_bytes())
            .unwrap();
    }
}
