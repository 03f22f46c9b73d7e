//! Message queues across real processes: POSIX priorities and timeouts, System V type selection
//! exactly as msgrcv(2) documents it, messages outliving their sender, `posix_ipc` and
//! `sysv_ipc` peers in both directions, bad input, and nothing left behind.

mod util;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipcbox::mq::{
    self, Attributes, PosixQueue, Received, SysVOptions, SysVQueue, SysVReceived, TypeSelector,
};
use ipcbox::{CreationMode, IpcKey, Pid};
use util::ChildGuard;

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Helpers

fn role(test_fn: &str, role: &str, arg: &str) -> ChildGuard {
    ChildGuard::spawn(util::role_command(test_fn, role, arg).stdout(Stdio::null()))
}

fn posix_name(tag: &str) -> String {
    format!("/{}", util::unique_name(tag))
}

/// Unlinks a POSIX queue name on drop, whatever happened in the test.
struct PosixCleanup(String);

impl Drop for PosixCleanup {
    fn drop(&mut self) {
        let _ = PosixQueue::unlink(&self.0);
    }
}

/// The queue `name` no longer exists: opening it is `NotFound`, and it is not in /dev/mqueue
/// (when that is mounted).
fn assert_posix_gone(name: &str) {
    let err = PosixQueue::open(name).expect_err("queue should be gone");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    let file = std::path::Path::new("/dev/mqueue").join(name.trim_start_matches('/'));
    assert!(!file.exists(), "{} is left behind", file.display());
}

/// A key no other test or run uses (CreateExclusive would report a collision).
fn fresh_key(tag: &str) -> IpcKey {
    let mut h = DefaultHasher::new();
    util::unique_name(tag).hash(&mut h);
    IpcKey::from_raw(0x6b00_0000 | (h.finish() as i32 & 0x00ff_ffff))
}

/// Removes the System V queue of a key on drop, whatever happened in the test.
struct SysVCleanup(IpcKey);

impl Drop for SysVCleanup {
    fn drop(&mut self) {
        if let Ok(q) = SysVQueue::open(self.0) {
            let _ = q.remove();
        }
    }
}

fn ipcs_lists(key: IpcKey) -> bool {
    let out = Command::new("ipcs")
        .arg("-q")
        .output()
        .expect("run ipcs -q");
    assert!(out.status.success(), "ipcs -q failed");
    let wanted = format!("{:#010x}", key.as_raw());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(wanted.as_str()))
}

/// The queue of `key` no longer exists: opening it is `NotFound` and `ipcs -q` does not list it.
fn assert_sysv_gone(key: IpcKey) {
    let err = SysVQueue::open(key).expect_err("queue should be gone");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(!ipcs_lists(key), "ipcs -q still lists {key}");
}

fn posix_recv_all(q: &PosixQueue) -> Vec<(String, u32)> {
    let mut buf = vec![0u8; q.max_message_size()];
    let mut out = Vec::new();
    while let Some(got) = q.try_recv(&mut buf).expect("try_recv") {
        out.push((
            String::from_utf8_lossy(&buf[..got.len]).into_owned(),
            got.priority,
        ));
    }
    out
}

fn sysv_recv(q: &SysVQueue, sel: TypeSelector) -> (i64, String) {
    let mut buf = [0u8; 256];
    let got = q.recv(&mut buf, sel).expect("recv");
    (
        got.mtype,
        String::from_utf8_lossy(&buf[..got.len]).into_owned(),
    )
}

fn sysv_try_recv(q: &SysVQueue, sel: TypeSelector) -> Option<(i64, String)> {
    let mut buf = [0u8; 256];
    q.try_recv(&mut buf, sel).expect("try_recv").map(|got| {
        (
            got.mtype,
            String::from_utf8_lossy(&buf[..got.len]).into_owned(),
        )
    })
}

/// Whether this process may exceed the kernel's soft IPC limits (`CAP_SYS_RESOURCE` in
/// `CapEff`); root inside a container may lack it.
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff in /proc/self/status");
    let eff = u64::from_str_radix(eff.trim(), 16).unwrap();
    eff & (1 << CAP_SYS_RESOURCE) != 0
}

fn assert_invalid(err: &io::Error, needles: &[&str]) {
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    for n in needles {
        assert!(text.contains(n), "{text:?} should mention {n:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Roles (each does something only when the test binary is re-run as that child)

/// Opens the POSIX queue named by the argument and sends a mix of priorities.
#[test]
fn role_posix_send_mix() {
    let Some(name) = util::role_arg("posix_send_mix") else {
        return;
    };
    let q = PosixQueue::open(&name).unwrap();
    for (msg, prio) in POSIX_MIX {
        q.send(msg.as_bytes(), *prio).unwrap();
    }
}

const POSIX_MIX: &[(&str, u32)] = &[("a", 3), ("b", 0), ("c", 7), ("d", 3), ("e", 1), ("f", 7)];

/// `name prio text`: opens the POSIX queue and sends one message (blocking).
#[test]
fn role_posix_send_one() {
    let Some(arg) = util::role_arg("posix_send_one") else {
        return;
    };
    let mut parts = arg.splitn(3, ' ');
    let (name, prio, text) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let q = PosixQueue::open(name).unwrap();
    q.send(text.as_bytes(), prio.parse().unwrap()).unwrap();
}

/// Opens the System V queue of the key and sends the type mix.
#[test]
fn role_sysv_send_mix() {
    let Some(key) = util::role_arg("sysv_send_mix") else {
        return;
    };
    let q = SysVQueue::open(IpcKey::from_raw(key.parse().unwrap())).unwrap();
    for (t, text) in SYSV_MIX {
        q.send(text.as_bytes(), *t).unwrap();
    }
}

const SYSV_MIX: &[(i64, &str)] = &[
    (5, "a"),
    (2, "b"),
    (7, "c"),
    (2, "d"),
    (1, "e"),
    (5, "f"),
    (3, "g"),
    (1, "h"),
    (9, "i"),
];

/// `key type text`: opens the System V queue and sends one message (blocking).
#[test]
fn role_sysv_send_one() {
    let Some(arg) = util::role_arg("sysv_send_one") else {
        return;
    };
    let mut parts = arg.splitn(3, ' ');
    let (key, t, text) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let q = SysVQueue::open(IpcKey::from_raw(key.parse().unwrap())).unwrap();
    q.send(text.as_bytes(), t.parse().unwrap()).unwrap();
}

/// `key len`: receives the first message (blocking) and checks its length.
#[test]
fn role_sysv_recv_one() {
    let Some(arg) = util::role_arg("sysv_recv_one") else {
        return;
    };
    let (key, len) = arg.split_once(' ').unwrap();
    let q = SysVQueue::open(IpcKey::from_raw(key.parse().unwrap())).unwrap();
    let mut buf = [0u8; 64];
    let got = q.recv(&mut buf, TypeSelector::Any).unwrap();
    assert_eq!(got.len, len.parse::<usize>().unwrap());
}

/// Creates the queue of the key, sends three messages, detaches and exits.
#[test]
fn role_sysv_create_and_leave() {
    let Some(key) = util::role_arg("sysv_create_and_leave") else {
        return;
    };
    let mut q = SysVQueue::create(IpcKey::from_raw(key.parse().unwrap())).unwrap();
    q.detach();
    for t in 1..=3 {
        q.send(format!("from {} #{t}", std::process::id()).as_bytes(), t)
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// POSIX queues

#[test]
fn posix_priorities_come_out_highest_first_after_the_sender_exited() {
    let _w = util::watchdog("posix priorities", LIMIT);
    let name = posix_name("mq-prio");
    let _clean = PosixCleanup(name.clone());
    let q = PosixQueue::create(
        &name,
        Attributes {
            max_messages: 8,
            max_message_size: 64,
        },
    )
    .unwrap();
    role("role_posix_send_mix", "posix_send_mix", &name).expect_success("send mix");

    // The sender has exited; its messages are still there.
    assert_eq!(q.attributes().unwrap().current_messages, POSIX_MIX.len());
    let got = posix_recv_all(&q);
    let want: Vec<(String, u32)> = [("c", 7), ("f", 7), ("a", 3), ("d", 3), ("e", 1), ("b", 0)]
        .iter()
        .map(|(m, p)| (m.to_string(), *p))
        .collect();
    assert_eq!(got, want, "highest priority first, FIFO within one");
    drop(q);
    assert_posix_gone(&name);
}

#[test]
fn posix_blocking_calls_are_woken_by_another_process() {
    let _w = util::watchdog("posix blocking", LIMIT);
    let name = posix_name("mq-block");
    let _clean = PosixCleanup(name.clone());
    let q = PosixQueue::create(
        &name,
        Attributes {
            max_messages: 1,
            max_message_size: 32,
        },
    )
    .unwrap();
    let mut buf = [0u8; 32];

    // A blocked receiver wakes when another process sends.
    let child = role(
        "role_posix_send_one",
        "posix_send_one",
        &format!("{name} 5 wake up"),
    );
    let got = q.recv(&mut buf).unwrap();
    assert_eq!(
        got,
        Received {
            len: 7,
            priority: 5
        }
    );
    assert_eq!(&buf[..got.len], b"wake up");
    child.expect_success("sender");

    // A sender blocked on the full queue (capacity 1) wakes when we receive.
    q.send(b"first", 1).unwrap();
    let child = role(
        "role_posix_send_one",
        "posix_send_one",
        &format!("{name} 2 second"),
    );
    let got = q.recv(&mut buf).unwrap();
    assert_eq!(&buf[..got.len], b"first");
    let got = q.recv(&mut buf).unwrap();
    assert_eq!((&buf[..got.len], got.priority), (&b"second"[..], 2));
    child.expect_success("blocked sender");
    drop(q);
    assert_posix_gone(&name);
}

#[test]
fn posix_try_and_timeout_forms_report_empty_and_full() {
    let _w = util::watchdog("posix try/timeout", LIMIT);
    let name = posix_name("mq-try");
    let _clean = PosixCleanup(name.clone());
    let q = PosixQueue::create(
        &name,
        Attributes {
            max_messages: 2,
            max_message_size: 16,
        },
    )
    .unwrap();
    let mut buf = [0u8; 16];
    let short = Duration::from_millis(20);

    assert_eq!(q.try_recv(&mut buf).unwrap(), None, "empty");
    assert_eq!(q.recv_timeout(&mut buf, short).unwrap(), None, "empty");
    assert!(q.try_send(b"one", 1).unwrap());
    assert!(q.send_timeout(b"two", 2, short).unwrap());
    assert!(!q.try_send(b"three", 3).unwrap(), "full");
    assert!(!q.send_timeout(b"three", 3, short).unwrap(), "full");
    assert_eq!(q.attributes().unwrap().current_messages, 2);
    assert_eq!(
        q.recv_timeout(&mut buf, short).unwrap(),
        Some(Received {
            len: 3,
            priority: 2
        })
    );
    assert!(q.try_send(b"three", 3).unwrap(), "room again");

    // A non-blocking handle on the same queue: the plain forms fail with WouldBlock.
    let nb = mq::Options::new()
        .mode(CreationMode::Open)
        .nonblocking(true)
        .open(&name)
        .unwrap();
    assert!(!nb.is_owner());
    assert!(nb.attributes().unwrap().nonblocking);
    let err = nb.send(b"four", 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert!(!nb.try_send(b"four", 0).unwrap());
    assert_eq!(posix_recv_all(&nb).len(), 2);
    let err = nb.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    nb.set_nonblocking(false).unwrap();
    assert!(!nb.attributes().unwrap().nonblocking);
    drop(nb);
    drop(q);
    assert_posix_gone(&name);
}

#[test]
fn posix_queue_fd_is_pollable() {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let _w = util::watchdog("posix poll", LIMIT);
    let name = posix_name("mq-poll");
    let _clean = PosixCleanup(name.clone());
    let q = PosixQueue::create(
        &name,
        Attributes {
            max_messages: 1,
            max_message_size: 8,
        },
    )
    .unwrap();
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(&q, PollFlags::IN | PollFlags::OUT)];
    assert_eq!(poll(&mut fds, Some(&zero)).unwrap(), 1);
    assert_eq!(fds[0].revents(), PollFlags::OUT, "empty: writable only");

    let child = role(
        "role_posix_send_one",
        "posix_send_one",
        &format!("{name} 1 ready"),
    );
    let mut fds = [PollFd::from_borrowed_fd(q.as_fd(), PollFlags::IN)];
    assert_eq!(
        poll(&mut fds, None).unwrap(),
        1,
        "readable once the child sent"
    );
    child.expect_success("sender");
    let mut fds = [PollFd::new(&q, PollFlags::IN | PollFlags::OUT)];
    poll(&mut fds, Some(&zero)).unwrap();
    assert_eq!(fds[0].revents(), PollFlags::IN, "full: readable only");
    drop(q);
    assert_posix_gone(&name);
}

#[test]
fn posix_python_peer_both_directions() {
    let _w = util::watchdog("posix python peer", LIMIT);
    let ours = posix_name("mq-py");
    let theirs = posix_name("mq-py-made");
    let _clean = (PosixCleanup(ours.clone()), PosixCleanup(theirs.clone()));
    let q = PosixQueue::create(
        &ours,
        Attributes {
            max_messages: 8,
            max_message_size: 128,
        },
    )
    .unwrap();
    q.send(b"one", 1).unwrap();
    q.send(b"two", 9).unwrap();
    q.send(b"three", 5).unwrap();

    let script = r#"
import sys, posix_ipc
q = posix_ipc.MessageQueue(sys.argv[1])
got = [q.receive(10) for _ in range(3)]
assert [(m.decode(), p) for m, p in got] == [("two", 9), ("three", 5), ("one", 1)], got
q.send(b"from python low", timeout=10, priority=2)
q.send(b"from python high", timeout=10, priority=30)
q.close()
p = posix_ipc.MessageQueue(sys.argv[2], posix_ipc.O_CREX, mode=0o600,
                           max_messages=5, max_message_size=100)
p.send(b"left behind", priority=4)
p.close()
"#;
    let status = util::python::python(script)
        .args([&ours, &theirs])
        .status()
        .expect("run python3");
    assert!(status.success(), "python peer failed: {status}");

    let got = posix_recv_all(&q);
    assert_eq!(
        got,
        vec![
            ("from python high".to_owned(), 30),
            ("from python low".to_owned(), 2)
        ]
    );

    // The queue Python created (and left, its process gone) opens with its attributes.
    let p = PosixQueue::open(&theirs).unwrap();
    assert!(!p.is_owner());
    let attr = p.attributes().unwrap();
    assert_eq!((attr.max_messages, attr.max_message_size), (5, 100));
    assert_eq!(posix_recv_all(&p), vec![("left behind".to_owned(), 4)]);
    drop(p);
    PosixQueue::unlink(&theirs).unwrap();
    drop(q);
    assert_posix_gone(&ours);
    assert_posix_gone(&theirs);
}

#[test]
fn posix_bad_input_gets_clear_errors_and_the_queue_stays_usable() {
    let _w = util::watchdog("posix bad input", LIMIT);
    let name = posix_name("mq-bad");
    let _clean = PosixCleanup(name.clone());
    let q = PosixQueue::create(
        &name,
        Attributes {
            max_messages: 2,
            max_message_size: 8,
        },
    )
    .unwrap();

    let err = q.send(b"123456789", 0).unwrap_err();
    assert_invalid(&err, &[&name, "9 bytes", "8 bytes"]);
    let err = q.try_send(b"123456789", 0).unwrap_err();
    assert_invalid(&err, &["9 bytes", "8 bytes"]);
    let err = q.send(b"x", 40000).unwrap_err();
    assert_invalid(&err, &["40000", "32767"]);
    let mut small = [0u8; 4];
    let err = q.recv(&mut small).unwrap_err();
    assert_invalid(&err, &[&name, "4 bytes", "8 bytes"]);
    let err = q.try_recv(&mut small).unwrap_err();
    assert_invalid(&err, &["4 bytes", "8 bytes"]);

    // Still usable, and nothing half-sent.
    assert_eq!(q.attributes().unwrap().current_messages, 0);
    q.send(b"12345678", 0).unwrap();
    assert_eq!(posix_recv_all(&q), vec![("12345678".to_owned(), 0)]);

    let other = posix_name("mq-bad-new");
    let _clean_other = PosixCleanup(other.clone());
    let err = mq::Options::new().capacity(0).open(&other).unwrap_err();
    assert_invalid(&err, &[&other, "capacity 0"]);
    let err = mq::Options::new()
        .max_message_size(0)
        .open(&other)
        .unwrap_err();
    assert_invalid(&err, &[&other, "max message size 0"]);
    // Above the kernel's hard ceiling, which binds even root.
    let err = mq::Options::new().capacity(65537).open(&other).unwrap_err();
    assert_invalid(&err, &[&other, "capacity 65537", "msg_max"]);

    // Between msg_max and the hard ceiling only a privileged process may go.
    let limits = mq::PosixLimits::read().unwrap();
    let over = mq::Options::new()
        .capacity(limits.msg_max + 1)
        .max_message_size(8)
        .open(&other);
    if has_cap_sys_resource() {
        assert_eq!(over.unwrap().capacity(), limits.msg_max + 1);
    } else {
        let err = over.unwrap_err();
        assert_invalid(&err, &[&format!("msg_max {}", limits.msg_max)]);
    }

    let err = PosixQueue::open(&other).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&other), "{err}");
    for bad in ["/a/b", "a/b", "", "/", "/.."] {
        let err = PosixQueue::open(bad).unwrap_err();
        assert_invalid(&err, &[&format!("{bad:?}")]);
        let err = PosixQueue::unlink(bad).unwrap_err();
        assert_invalid(&err, &[&format!("{bad:?}")]);
    }
    let long = format!("/{}", "x".repeat(256));
    assert_invalid(&PosixQueue::open(&long).unwrap_err(), &["NAME_MAX"]);

    let err = PosixQueue::create(
        &name,
        Attributes {
            max_messages: 1,
            max_message_size: 1,
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    drop(q);
    assert_posix_gone(&name);
    assert_posix_gone(&other);
}

#[test]
fn posix_creator_unlinks_on_drop_unless_detached() {
    let _w = util::watchdog("posix lifecycle", LIMIT);
    let bare = util::unique_name("mq-life");
    let name = format!("/{bare}");
    let _clean = PosixCleanup(name.clone());

    // A name without its leading '/' gets one; defaults are 0600 and the kernel's sizes.
    let q = PosixQueue::create(
        &bare,
        Attributes {
            max_messages: 3,
            max_message_size: 16,
        },
    )
    .unwrap();
    assert_eq!(q.name(), name);
    assert!(q.is_owner());
    let mode = rustix::fs::fstat(&q).unwrap().st_mode & 0o777;
    assert_eq!(mode, 0o600);

    let opened = mq::Options::new()
        .mode(CreationMode::OpenOrCreate)
        .capacity(99)
        .open(&name)
        .unwrap();
    assert!(!opened.is_owner());
    assert_eq!(opened.capacity(), 3, "an existing queue keeps its size");
    drop(opened);
    let opened = mq::Options::new()
        .mode(CreationMode::Open)
        .capacity(0)
        .open(&name)
        .expect("sizes only matter when creating");
    assert!(!opened.is_owner());
    drop(opened);
    PosixQueue::open(&name).expect("an opener's drop leaves the name");
    drop(q);
    assert_posix_gone(&name);

    let defaults = mq::PosixLimits::read().unwrap();
    let mut q = mq::Options::new()
        .mode(CreationMode::OpenOrCreate)
        .open(&name)
        .unwrap();
    assert!(q.is_owner());
    assert_eq!(
        (q.capacity(), q.max_message_size()),
        (defaults.msg_default, defaults.msgsize_default)
    );
    q.send(b"kept", 0).unwrap();
    q.detach();
    drop(q);
    let q = PosixQueue::open(&name).expect("a detached queue stays");
    assert_eq!(posix_recv_all(&q), vec![("kept".to_owned(), 0)]);
    drop(q);
    PosixQueue::unlink(&name).unwrap();
    let err = PosixQueue::unlink(&name).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert_posix_gone(&name);

    // A creator whose name was unlinked and taken by a new queue leaves the new one alone.
    let attrs = Attributes {
        max_messages: 1,
        max_message_size: 4,
    };
    let old = PosixQueue::create(&name, attrs).unwrap();
    PosixQueue::unlink(&name).unwrap();
    let new = PosixQueue::create(&name, attrs).unwrap();
    new.send(b"new", 0).unwrap();
    drop(old);
    let still = PosixQueue::open(&name).expect("the new queue keeps its name");
    assert_eq!(still.attributes().unwrap().current_messages, 1);
    drop(still);
    drop(new);
    assert_posix_gone(&name);
}

// ---------------------------------------------------------------------------------------------
// System V queues

#[test]
fn sysv_type_selection_follows_msgrcv_exactly() {
    let _w = util::watchdog("sysv selection", LIMIT);
    let key = fresh_key("mq-types");
    let _clean = SysVCleanup(key);
    let q = SysVQueue::create(key).unwrap();
    let child = role(
        "role_sysv_send_mix",
        "sysv_send_mix",
        &key.as_raw().to_string(),
    );
    let sender = child.pid();
    child.expect_success("send mix");
    let st = q.stat().unwrap();
    assert_eq!(st.messages, SYSV_MIX.len() as u64);
    assert_eq!(st.last_sender, Some(sender));

    // Queue, oldest first: a5 b2 c7 d2 e1 f5 g3 h1 i9.
    use TypeSelector::*;
    let steps: &[(TypeSelector, Option<(i64, &str)>)] = &[
        (Exactly(2), Some((2, "b"))),  // first of type 2
        (Except(5), Some((7, "c"))),   // first not of type 5 (a5 is skipped)
        (AtMost(3), Some((1, "e"))),   // lowest type <= 3 is 1, its first message
        (AtMost(3), Some((1, "h"))),   // then the next of type 1
        (AtMost(4), Some((2, "d"))),   // lowest type <= 4 now is 2 (g3 is younger but higher)
        (Exactly(4), None),            // no type 4
        (AtMost(2), None),             // left: a5 f5 g3 i9
        (Any, Some((5, "a"))),         // the oldest
        (Except(3), Some((5, "f"))),   // left: f5 g3 i9
        (AtMost(100), Some((3, "g"))), // lowest overall
        (Except(9), None),             // only i9 is left
        (Exactly(9), Some((9, "i"))),
        (Any, None),
    ];
    for (i, (sel, want)) in steps.iter().enumerate() {
        let got = sysv_try_recv(&q, *sel);
        let want = want.map(|(t, s)| (t, s.to_owned()));
        assert_eq!(got, want, "step {i}: {sel:?}");
    }
    // The blocking form selects the same way.
    for (t, text) in SYSV_MIX {
        q.send(text.as_bytes(), *t).unwrap();
    }
    assert_eq!(sysv_recv(&q, AtMost(4)), (1, "e".to_owned()));
    assert_eq!(sysv_recv(&q, Except(5)), (2, "b".to_owned()));
    assert_eq!(sysv_recv(&q, Exactly(9)), (9, "i".to_owned()));
    assert_eq!(sysv_recv(&q, Any), (5, "a".to_owned()));
    drop(q);
    assert_sysv_gone(key);
}

#[test]
fn sysv_messages_outlive_their_exited_creator() {
    let _w = util::watchdog("sysv outlive", LIMIT);
    let key = fresh_key("mq-outlive");
    let _clean = SysVCleanup(key);
    let child = role(
        "role_sysv_create_and_leave",
        "sysv_create_and_leave",
        &key.as_raw().to_string(),
    );
    let pid = child.pid();
    child.expect_success("creator");

    let q = SysVQueue::open(key).expect("the queue outlives its creator");
    assert!(!q.is_owner());
    let st = q.stat().unwrap();
    assert_eq!(st.key, key);
    assert_eq!(st.messages, 3);
    assert_eq!(st.last_sender, Some(pid));
    assert_eq!(st.last_receiver, None);
    assert_eq!(st.permissions, 0o600);
    assert!(ipcs_lists(key), "ipcs -q shows the queue");
    for t in 1..=3 {
        assert_eq!(
            sysv_recv(&q, TypeSelector::Any),
            (t, format!("from {} #{t}", pid.as_raw()))
        );
    }
    assert_eq!(q.stat().unwrap().last_receiver, Some(Pid::this()));
    q.remove().unwrap();
    assert_sysv_gone(key);
}

#[test]
fn sysv_python_peer_both_directions() {
    let _w = util::watchdog("sysv python peer", LIMIT);
    let ours = fresh_key("mq-sysv-py");
    let theirs = fresh_key("mq-sysv-py-made");
    let _clean = (SysVCleanup(ours), SysVCleanup(theirs));
    let dir = util::TempDir::new("mq-ftok");
    let file = dir.join("token");
    std::fs::write(&file, b"").unwrap();

    let q = SysVQueue::create(ours).unwrap();
    q.send(b"two", 2).unwrap();
    q.send(b"one", 1).unwrap();
    q.send(b"three", 3).unwrap();
    let script = r#"
import sys, sysv_ipc
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
assert q.receive(type=3) == (b"three", 3)
assert q.receive(type=-2) == (b"one", 1)
assert q.receive() == (b"two", 2)
q.send(b"py seven", type=7)
q.send(b"py four", type=4)
p = sysv_ipc.MessageQueue(int(sys.argv[2]), sysv_ipc.IPC_CREX, mode=0o600)
p.send(b"from python", type=42)
print(sysv_ipc.ftok(sys.argv[3], 7, silence_warning=True))
"#;
    let out = util::python::output(
        util::python::python(script)
            .arg(ours.as_raw().to_string())
            .arg(theirs.as_raw().to_string())
            .arg(&file),
    );
    assert_eq!(
        sysv_recv(&q, TypeSelector::AtMost(5)),
        (4, "py four".to_owned())
    );
    assert_eq!(sysv_recv(&q, TypeSelector::Any), (7, "py seven".to_owned()));

    // The queue Python created (its process gone) opens by key.
    let p = SysVQueue::open(theirs).unwrap();
    assert_eq!(p.stat().unwrap().permissions, 0o600);
    assert_eq!(
        sysv_recv(&p, TypeSelector::Exactly(42)),
        (42, "from python".to_owned())
    );
    p.remove().unwrap();

    // Python and ipcbox derive the same key from a file.
    let py_key: i32 = out.parse().unwrap();
    assert_eq!(IpcKey::ftok(&file, 7).unwrap(), IpcKey::from_raw(py_key));
    drop(q);
    assert_sysv_gone(ours);
    assert_sysv_gone(theirs);
}

#[test]
fn sysv_try_and_timeout_forms_report_empty_and_full() {
    let _w = util::watchdog("sysv try/timeout", LIMIT);
    let key = fresh_key("mq-sysv-try");
    let _clean = SysVCleanup(key);
    let q = SysVOptions::new().max_bytes(16).open(key).unwrap();
    assert_eq!(q.stat().unwrap().max_bytes, 16);
    let mut buf = [0u8; 64];
    let short = Duration::from_millis(20);

    assert_eq!(q.try_recv(&mut buf, TypeSelector::Any).unwrap(), None);
    assert_eq!(
        q.recv_timeout(&mut buf, TypeSelector::Any, short).unwrap(),
        None
    );
    assert!(q.try_send(&[7u8; 16], 1).unwrap());
    assert!(!q.try_send(b"x", 1).unwrap(), "full");
    assert!(!q.send_timeout(b"x", 1, short).unwrap(), "full");
    let st = q.stat().unwrap();
    assert_eq!((st.messages, st.bytes), (1, 16));
    // Longer than the whole capacity: an error, not a wait forever.
    let err = q.send(&[0u8; 17], 1).unwrap_err();
    assert_invalid(&err, &["17 bytes", "16 bytes"]);

    // A sender blocked on the full queue wakes when another process receives.
    let child = role(
        "role_sysv_recv_one",
        "sysv_recv_one",
        &format!("{} 16", key.as_raw()),
    );
    q.send(b"y", 2).unwrap();
    child.expect_success("receiver");
    assert_eq!(sysv_recv(&q, TypeSelector::Any), (2, "y".to_owned()));

    // Blocked and timed receivers wake when another process sends.
    let child = role(
        "role_sysv_send_one",
        "sysv_send_one",
        &format!("{} 9 nine", key.as_raw()),
    );
    assert_eq!(
        sysv_recv(&q, TypeSelector::Exactly(9)),
        (9, "nine".to_owned())
    );
    child.expect_success("sender");
    let child = role(
        "role_sysv_send_one",
        "sysv_send_one",
        &format!("{} 8 eight", key.as_raw()),
    );
    let got = q
        .recv_timeout(&mut buf, TypeSelector::Exactly(8), LIMIT)
        .unwrap();
    assert_eq!(got, Some(SysVReceived { len: 5, mtype: 8 }));
    assert_eq!(&buf[..5], b"eight");
    child.expect_success("sender");
    drop(q);
    assert_sysv_gone(key);
}

#[test]
fn sysv_bad_input_gets_clear_errors_and_the_queue_stays_usable() {
    let _w = util::watchdog("sysv bad input", LIMIT);
    let key = fresh_key("mq-sysv-bad");
    let _clean = SysVCleanup(key);
    let q = SysVQueue::create(key).unwrap();
    let key_text = key.to_string();

    assert_invalid(&q.send(b"x", 0).unwrap_err(), &["type 0"]);
    assert_invalid(&q.try_send(b"x", -3).unwrap_err(), &["type -3"]);
    let mut buf = [0u8; 4];
    assert_invalid(
        &q.try_recv(&mut buf, TypeSelector::Exactly(0)).unwrap_err(),
        &[&key_text, "Exactly(0)"],
    );

    // A message longer than the buffer stays in the queue (E2BIG, no MSG_NOERROR).
    q.send(b"0123456789", 3).unwrap();
    let err = q.recv(&mut buf, TypeSelector::Any).unwrap_err();
    assert_invalid(&err, &[&key_text, "4 bytes", "stays in the queue"]);
    assert_eq!(q.stat().unwrap().messages, 1);
    assert_eq!(
        sysv_recv(&q, TypeSelector::Any),
        (3, "0123456789".to_owned())
    );

    // Longer than msgmax, which binds even root.
    let limits = mq::SysVLimits::read().unwrap();
    let err = q.send(&vec![0u8; limits.msgmax + 1], 1).unwrap_err();
    assert_invalid(
        &err,
        &[
            &format!("{} bytes", limits.msgmax + 1),
            "msgmax",
            &limits.msgmax.to_string(),
        ],
    );
    assert_invalid(&q.set_max_bytes(0).unwrap_err(), &["0 bytes"]);
    // Above msgmnb only with CAP_SYS_RESOURCE.
    let above = q.set_max_bytes(limits.msgmnb + 1);
    if has_cap_sys_resource() {
        above.unwrap();
        assert_eq!(q.stat().unwrap().max_bytes, limits.msgmnb as u64 + 1);
    } else {
        let err = above.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{} bytes", limits.msgmnb + 1)),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "msgmnb, the limit without CAP_SYS_RESOURCE, is {}",
                limits.msgmnb
            )),
            "{text}"
        );
    }
    let err = SysVOptions::new()
        .max_bytes(0)
        .open(fresh_key("x"))
        .unwrap_err();
    assert_invalid(&err, &["capacity 0"]);

    let missing = fresh_key("mq-sysv-missing");
    let err = SysVQueue::open(missing).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    let err = SysVQueue::create(key).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains(&key_text), "{err}");
    let err = SysVOptions::new()
        .mode(CreationMode::Open)
        .open(IpcKey::PRIVATE)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

    // Still usable after all of that.
    q.send(b"fine", 1).unwrap();
    assert_eq!(sysv_recv(&q, TypeSelector::Any), (1, "fine".to_owned()));
    assert_eq!(q.stat().unwrap().messages, 0);
    drop(q);
    assert_sysv_gone(key);
    assert_sysv_gone(missing);
}

#[test]
fn sysv_creator_removes_on_drop_unless_detached() {
    let _w = util::watchdog("sysv lifecycle", LIMIT);
    let key = fresh_key("mq-sysv-life");
    let _clean = SysVCleanup(key);
    let q = SysVOptions::new()
        .mode(CreationMode::OpenOrCreate)
        .open(key)
        .unwrap();
    assert!(q.is_owner());
    assert_eq!(q.stat().unwrap().permissions, 0o600);
    let opened = SysVOptions::new()
        .mode(CreationMode::OpenOrCreate)
        .open(key)
        .unwrap();
    assert!(!opened.is_owner());
    assert_eq!(opened.id(), q.id());
    drop(opened);
    let by_id = SysVQueue::from_id(q.id()).unwrap();
    assert_eq!(by_id.key(), key);
    drop(by_id);
    assert!(ipcs_lists(key), "openers' drops leave the queue");
    drop(q);
    assert_sysv_gone(key);

    let mut q = SysVQueue::create(key).unwrap();
    q.send(b"kept", 1).unwrap();
    q.detach();
    drop(q);
    let q = SysVQueue::open(key).expect("a detached queue stays");
    assert_eq!(sysv_recv(&q, TypeSelector::Any), (1, "kept".to_owned()));
    q.remove().unwrap();
    assert_sysv_gone(key);

    // A private queue, reached by its id, removed by its creator's drop.
    let private = SysVQueue::create(IpcKey::PRIVATE).unwrap();
    let id = private.id();
    let other = SysVQueue::from_id(id).unwrap();
    other.send(b"by id", 4).unwrap();
    assert_eq!(
        sysv_recv(&private, TypeSelector::Any),
        (4, "by id".to_owned())
    );
    drop(other);
    drop(private);
    assert!(SysVQueue::from_id(id).is_err(), "private queue removed");
}

/// A user the queue's permissions exclude is refused at open, with the key named; one they
/// admit opens it and uses it. A handle sends and receives, so it needs read and write.
#[test]
fn sysv_open_is_refused_to_a_user_the_permissions_exclude() {
    let _w = util::watchdog("sysv permissions", LIMIT);
    let (closed, open, read_only) = (
        fresh_key("mq-sysv-perm-closed"),
        fresh_key("mq-sysv-perm-open"),
        fresh_key("mq-sysv-perm-ro"),
    );
    let _clean = [
        SysVCleanup(closed),
        SysVCleanup(open),
        SysVCleanup(read_only),
    ];
    let _closed_q = SysVQueue::create(closed).unwrap(); // 0600, ours
    let open_q = SysVOptions::new().permissions(0o666).open(open).unwrap();
    let _ro_q = SysVOptions::new()
        .permissions(0o644)
        .open(read_only)
        .unwrap();
    let refused = |key: IpcKey| {
        move || {
            for mode in [CreationMode::Open, CreationMode::OpenOrCreate] {
                match SysVOptions::new().mode(mode).open(key) {
                    Ok(q) => {
                        return Err(format!("{mode:?} opened {q} regardless of its permissions"))
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::PermissionDenied
                            && e.to_string().contains(&key.to_string()) => {}
                    Err(e) => {
                        return Err(format!(
                            "{mode:?}: not a PermissionDenied naming {key}: {e}"
                        ))
                    }
                }
            }
            Ok(())
        }
    };
    if !util::as_other_user("open a 0600 System V queue", refused(closed)) {
        return;
    }
    util::as_other_user("open a 0644 System V queue", refused(read_only));
    util::as_other_user("use a 0666 System V queue", || {
        let q = SysVQueue::open(open).map_err(|e| e.to_string())?;
        q.send(b"from nobody", 5).map_err(|e| e.to_string())
    });
    assert_eq!(
        sysv_recv(&open_q, TypeSelector::Any),
        (5, "from nobody".to_owned())
    );
}

/// Waits (without sleeping) until a thread of this process sleeps in `msgrcv`: its
/// `/proc/self/task/<tid>/wchan` names `do_msgrcv`, or, where the kernel hides wchan, its state
/// is `S`.
fn wait_until_in_msgrcv(tid: i32) {
    loop {
        let wchan =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan")).unwrap_or_default();
        if wchan.contains("msgrcv") {
            return;
        }
        if wchan.is_empty() || wchan == "0" {
            let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
            // "tid (comm) S ...": the state follows the last ')'.
            let after = &stat[stat.rfind(')').unwrap() + 1..];
            if after.trim_start().starts_with('S') {
                return;
            }
        }
        std::thread::yield_now();
    }
}

#[test]
fn sysv_threads_sharing_a_handle_do_not_wait_for_each_others_buffers() {
    let _w = util::watchdog("sysv shared handle", LIMIT);
    let key = fresh_key("mq-sysv-threads");
    let _clean = SysVCleanup(key);
    let queue = SysVQueue::create(key).unwrap();
    let q = &queue;
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = s.spawn(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            sysv_recv(q, TypeSelector::Exactly(5))
        });
        // Wait until the thread sleeps (in msgrcv, holding the handle's receive buffer).
        let tid = rx.recv().unwrap();
        wait_until_in_msgrcv(tid);
        // This thread receives through the same handle meanwhile, and sends through it.
        q.send(b"six", 6).unwrap();
        assert_eq!(
            sysv_recv(q, TypeSelector::Exactly(6)),
            (6, "six".to_owned())
        );
        q.send(b"five", 5).unwrap();
        assert_eq!(waiter.join().unwrap(), (5, "five".to_owned()));
    });
    assert_eq!(queue.stat().unwrap().messages, 0);
    drop(queue);
    assert_sysv_gone(key);
}

#[test]
fn sysv_removing_a_queue_wakes_its_blocked_receiver_with_an_error() {
    let _w = util::watchdog("sysv removed while waiting", LIMIT);
    let key = fresh_key("mq-sysv-rmid");
    let _clean = SysVCleanup(key);
    let queue = SysVQueue::create(key).unwrap();
    let q = &queue;
    let err = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = s.spawn(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            let mut buf = [0u8; 8];
            q.recv(&mut buf, TypeSelector::Any)
        });
        let tid = rx.recv().unwrap();
        wait_until_in_msgrcv(tid);
        // Another process removes the queue (ipcrm, a real peer nobody here wrote).
        let status = Command::new("ipcrm")
            .args(["-q", &q.id().to_string()])
            .status()
            .expect("run ipcrm");
        assert!(status.success(), "ipcrm failed: {status}");
        waiter.join().unwrap().unwrap_err()
    });
    assert_eq!(err.raw_os_error(), None, "wrapped with context: {err}");
    let text = err.to_string();
    assert!(text.contains(&key.to_string()), "{text}");
    assert!(text.contains("removed"), "{text}");
    drop(queue);
    assert_sysv_gone(key);
}
