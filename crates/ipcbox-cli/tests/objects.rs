//! Runs `ipcbox ls` and `ipcbox clean` against objects held by live processes and objects
//! abandoned by dead ones: POSIX segments (mapped, open, abandoned), System V segments
//! (attached or not), semaphore sets and message queues (last used by a live or a dead process).
//!
//! Other tests on the machine hold their own objects, so every `clean` here names the objects
//! it may remove; a bare `ipcbox clean` never runs in a test.

mod util;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use ipcbox::mq::SysVQueue;
use ipcbox::shm::{Segment, SysVSegment};
use ipcbox::sync::{SemOp, SemaphoreSet};
use ipcbox::IpcKey;
use serde_json::Value;
use util::ipcbox;

const ROLE_ENV: &str = "IPCBOX_OBJECTS_TEST_ROLE";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `ipcbox args…`, which must succeed, and returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = ipcbox(args);
    assert!(
        out.status.success(),
        "ipcbox {args:?} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `ipcbox ls --json args…`: the objects.
fn ls_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["ls", "--json"];
    all.extend_from_slice(args);
    let out = ok(&all);
    let doc: Value = serde_json::from_str(&out).expect("ls --json prints JSON");
    doc["objects"].as_array().expect("an objects array").clone()
}

fn by_name<'a>(objects: &'a [Value], name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["name"] == name)
}

fn by_id<'a>(objects: &'a [Value], kind: &str, id: i32) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["id"] == id)
        .unwrap_or_else(|| panic!("{kind} {id} not listed in {objects:#?}"))
}

fn unique(tag: &str) -> String {
    format!("/ipcbox-clitest-{}-{tag}", std::process::id())
}

fn shm_path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.trim_start_matches('/'))
}

/// Removes a POSIX shared-memory name on drop, whatever happened.
struct ShmGuard(String);

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(shm_path(&self.0));
    }
}

/// An abandoned segment: created, detached, unmapped; nobody holds it.
fn abandoned(tag: &str) -> (String, ShmGuard) {
    let name = unique(tag);
    let mut seg = Segment::create(&name, 4096).expect("create segment");
    seg.detach();
    drop(seg);
    (name.clone(), ShmGuard(name))
}

/// Removes a System V object by id on drop (`ipcrm -m/-s/-q`), whatever happened.
struct SysVGuard(&'static str, i32);

impl Drop for SysVGuard {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm")
            .args([self.0, &self.1.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// A child process, killed and reaped on drop.
struct ChildGuard(Child, Option<ChildStdin>);

impl ChildGuard {
    fn pid(&self) -> i64 {
        i64::from(self.0.id())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        drop(self.1.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python process that maps `path` and then closes every fd on it (mapped, not open), until
/// killed. CPython's mmap keeps a dup of the fd, used only by `resize` and `size`.
fn python_mapping(path: &PathBuf) -> ChildGuard {
    let script = "import mmap, os, sys\n\
                  f = open(sys.argv[1], 'r+b')\n\
                  m = mmap.mmap(f.fileno(), 0)\n\
                  f.close()\n\
                  for fd in os.listdir('/proc/self/fd'):\n\
                  \x20   try:\n\
                  \x20       if os.readlink('/proc/self/fd/' + fd) == sys.argv[1]:\n\
                  \x20           os.close(int(fd))\n\
                  \x20   except OSError:\n\
                  \x20       pass\n\
                  print('ready', flush=True)\n\
                  sys.stdin.read()\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("python stdout");
    let guard = ChildGuard(child, stdin);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read python's ready line");
    assert_eq!(line.trim(), "ready", "python could not map {path:?}");
    guard
}

/// A `sleep` process whose stdin is `path` (open, not mapped), until killed. `spawn` returns
/// after the exec, so the fd is open by then.
fn sleep_holding(path: &PathBuf) -> ChildGuard {
    let file = File::open(path).expect("open the segment's file");
    let child = Command::new("sleep")
        .arg("600")
        .stdin(file)
        .spawn()
        .expect("run sleep");
    ChildGuard(child, None)
}

fn users(obj: &Value) -> Vec<(i64, String)> {
    obj["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["pid"].as_i64().expect("pid"),
                u["how"].as_str().expect("how").to_owned(),
            )
        })
        .collect()
}

#[test]
fn posix_segments_in_use_are_kept_abandoned_ones_removed() {
    let me = i64::from(std::process::id());
    // Mapped (and open) by this test process.
    let mine_name = unique("mine");
    let mine = Segment::create(&mine_name, 4096).expect("create segment");
    // Mapped by a Python child that closed its fd.
    let (mapped, _g1) = abandoned("mapped");
    let python = python_mapping(&shm_path(&mapped));
    // Held open by a `sleep` child, never mapped.
    let (open, _g2) = abandoned("open");
    let sleeper = sleep_holding(&shm_path(&open));
    let (left, _g3) = abandoned("left");

    let objects = ls_json(&["--all", &mine_name, &mapped, &open, &left]);
    let obj = |name: &str| by_name(&objects, name).unwrap_or_else(|| panic!("{name} not listed"));
    for (name, in_use) in [
        (&mine_name, true),
        (&mapped, true),
        (&open, true),
        (&left, false),
    ] {
        assert_eq!(obj(name)["in_use"], in_use, "{:#}", obj(name));
        assert_eq!(obj(name)["kind"], "posix-shm");
        assert_eq!(obj(name)["size"], 4096);
        assert_eq!(obj(name)["mode"], "0600");
        assert_eq!(obj(name)["ipcbox"], true);
    }
    assert!(users(obj(&mine_name)).contains(&(me, "mapped".into())));
    assert!(users(obj(&mine_name)).contains(&(me, "open".into())));
    assert_eq!(users(obj(&mapped)), vec![(python.pid(), "mapped".into())]);
    assert_eq!(users(obj(&open)), vec![(sleeper.pid(), "open".into())]);
    assert!(users(obj(&left)).is_empty());

    // The table says the same.
    let table = ok(&["ls", &mine_name, &left]);
    assert!(table.starts_with("KIND"), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not in {table}"))
            .to_owned()
    };
    assert!(row(&mine_name).contains(" yes "), "{table}");
    assert!(row(&left).contains(" no "), "{table}");

    let out = ok(&[
        "clean",
        "--older-than",
        "0",
        &mine_name,
        &mapped,
        &open,
        &left,
    ]);
    assert!(out.contains(&format!("removed posix-shm {left}")), "{out}");
    for kept in [&mine_name, &mapped, &open] {
        assert!(
            out.contains(&format!("kept posix-shm {kept}: in use")),
            "{out}"
        );
        assert!(shm_path(kept).exists(), "{kept} was removed: {out}");
    }
    assert!(!shm_path(&left).exists(), "{out}");
    assert!(out.contains("removed 1, kept 3"), "{out}");

    // Once their holders are gone, the same objects go.
    drop((python, sleeper));
    let out = ok(&["clean", "--older-than", "0", &mapped, &open]);
    assert!(out.contains("removed 2, kept 0"), "{out}");
    assert!(!shm_path(&mapped).exists() && !shm_path(&open).exists());
    drop(mine);
}

#[test]
fn dry_run_and_grace_window_remove_nothing() {
    let (name, _guard) = abandoned("grace");
    let out = ok(&["clean", "--dry-run", "--older-than", "0", &name]);
    assert!(
        out.contains(&format!("would remove posix-shm {name}")),
        "{out}"
    );
    assert!(shm_path(&name).exists(), "--dry-run removed {name}");

    // Created just now: within the default grace window of 10s.
    let out = ok(&["clean", &name]);
    assert!(out.contains(&format!("kept posix-shm {name}")), "{out}");
    assert!(out.contains("grace window"), "{out}");
    assert!(
        shm_path(&name).exists(),
        "the grace window did not keep {name}"
    );
    let out = ok(&["clean", "--older-than", "1h", &name]);
    assert!(
        out.contains("grace window") && shm_path(&name).exists(),
        "{out}"
    );

    let out = ok(&["clean", "--older-than", "0", &name]);
    assert!(out.contains(&format!("removed posix-shm {name}")), "{out}");
    assert!(!shm_path(&name).exists());
}

#[test]
fn ls_shows_ipcbox_objects_by_magic_and_others_only_with_all() {
    let pid = std::process::id();
    // No "ipcbox" in these names: the queue is recognised by its header alone.
    let queue_name = format!("/clitest-{pid}-queue");
    let _qg = ShmGuard(queue_name.clone());
    let queue = ipcbox::Queue::<u32>::create(&queue_name, 4).expect("create queue");
    let plain_name = format!("/clitest-{pid}-plain");
    let plain = Segment::create(&plain_name, 4096).expect("create segment");

    let default = ls_json(&[]);
    let q = by_name(&default, &queue_name).expect("the ipcbox queue is listed by default");
    assert_eq!(q["format"], "queue");
    assert_eq!(q["in_use"], true);
    assert!(by_name(&default, &plain_name).is_none(), "{default:#?}");
    let all = ls_json(&["--all"]);
    let p = by_name(&all, &plain_name).expect("--all lists the plain segment");
    assert_eq!(
        (p["format"].is_null(), &p["ipcbox"]),
        (true, &Value::Bool(false))
    );
    drop((queue, plain));
}

/// Plays a role in a child process (re-run of this test binary): leaves a System V object it
/// used behind and exits, printing `ID=id`. Without the role variable, it does nothing.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let id = match role.as_str() {
        "sem" => {
            let mut set = SemaphoreSet::create(IpcKey::PRIVATE, 2).expect("create set");
            set.op(&[SemOp::new(1, 1)]).expect("semop");
            set.detach();
            set.id()
        }
        "msg" => {
            let mut q = SysVQueue::create(IpcKey::PRIVATE).expect("create queue");
            q.send(b"left behind", 1).expect("msgsnd");
            q.detach();
            q.id()
        }
        other => panic!("unknown role {other}"),
    };
    println!("ID={id}");
}

/// Runs `child_role` as `role` to completion (so its process is gone) and returns the id.
fn left_by_dead_child(role: &str) -> i32 {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_role",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE_ENV, role)
        .output()
        .expect("run the child role");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "child {role} failed: {out:?}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ID=")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("child {role} printed no id: {stdout}"))
}

fn sysv_exists(table: &str, id: i32) -> bool {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).expect("read table");
    text.lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
}

#[test]
fn sysv_segment_attached_is_kept_detached_is_removed() {
    let attached = SysVSegment::create(IpcKey::PRIVATE, 8192).expect("create segment");
    let _g1 = SysVGuard("-m", attached.id());
    let mut seg = SysVSegment::create(IpcKey::PRIVATE, 4096).expect("create segment");
    seg.detach();
    let left = seg.id();
    drop(seg);
    let _g2 = SysVGuard("-m", left);

    let (a, l) = (format!("shmid:{}", attached.id()), format!("shmid:{left}"));
    let objects = ls_json(&[&a, &l]);
    let obj = by_id(&objects, "sysv-shm", attached.id());
    assert_eq!(
        (&obj["in_use"], &obj["attached"]),
        (&Value::Bool(true), &Value::from(1))
    );
    assert_eq!(obj["size"], 8192);
    let obj = by_id(&objects, "sysv-shm", left);
    assert_eq!(
        (&obj["in_use"], &obj["attached"]),
        (&Value::Bool(false), &Value::from(0))
    );
    // The creator (this process) is recorded and alive.
    let me = i64::from(std::process::id());
    assert!(obj["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .any(|p| p["role"] == "creator" && p["pid"] == me && p["alive"] == true));

    let out = ok(&["clean", "--older-than", "0", &a, &l]);
    assert!(
        out.contains(&format!(
            "kept sysv-shm IPC_PRIVATE id {}: in use: 1 attachment",
            attached.id()
        )),
        "{out}"
    );
    assert!(out.contains("removed 1, kept 1"), "{out}");
    assert!(sysv_exists("shm", attached.id()), "{out}");
    assert!(!sysv_exists("shm", left), "{out}");
    attached
        .write_at(0, b"still usable")
        .expect("write after clean");
}

#[test]
fn sysv_semaphores_kept_while_their_last_user_lives() {
    let live = SemaphoreSet::create(IpcKey::PRIVATE, 1).expect("create set");
    let _g1 = SysVGuard("-s", live.id());
    live.op(&[SemOp::new(0, 1)]).expect("semop");
    let dead = left_by_dead_child("sem");
    let _g2 = SysVGuard("-s", dead);

    let (l, d) = (format!("semid:{}", live.id()), format!("semid:{dead}"));
    let objects = ls_json(&[&l, &d]);
    let obj = by_id(&objects, "sysv-sem", live.id());
    assert_eq!(obj["in_use"], true, "{obj:#}");
    assert_eq!(obj["pids"][0]["alive"], true, "{obj:#}");
    assert_eq!(obj["size"], 1);
    let obj = by_id(&objects, "sysv-sem", dead);
    assert_eq!(obj["in_use"], false, "{obj:#}");
    assert_eq!(obj["pids"][0]["role"], "last semop");
    assert_eq!(obj["pids"][0]["alive"], false, "{obj:#}");
    assert_eq!(obj["waiters"], 0);

    let out = ok(&["clean", "--dry-run", "--older-than", "0", &l, &d]);
    assert!(out.contains("would remove 1, kept 1"), "{out}");
    assert!(sysv_exists("sem", dead), "--dry-run removed it: {out}");
    let out = ok(&["clean", "--older-than", "0", &l, &d]);
    assert!(
        out.contains(&format!("removed sysv-sem IPC_PRIVATE id {dead}")),
        "{out}"
    );
    assert!(out.contains("removed 1, kept 1"), "{out}");
    assert!(
        sysv_exists("sem", live.id()) && !sysv_exists("sem", dead),
        "{out}"
    );
    assert_eq!(live.get(0).expect("semctl after clean"), 1);
}

#[test]
fn sysv_queues_kept_while_their_last_user_lives() {
    let live = SysVQueue::create(IpcKey::PRIVATE).expect("create queue");
    let _g1 = SysVGuard("-q", live.id());
    live.send(b"mine", 7).expect("msgsnd");
    let dead = left_by_dead_child("msg");
    let _g2 = SysVGuard("-q", dead);

    let (l, d) = (format!("msqid:{}", live.id()), format!("msqid:{dead}"));
    let objects = ls_json(&[&l, &d]);
    let obj = by_id(&objects, "sysv-msg", live.id());
    assert_eq!(obj["in_use"], true, "{obj:#}");
    assert_eq!(obj["size"], 4);
    let obj = by_id(&objects, "sysv-msg", dead);
    assert_eq!(obj["in_use"], false, "{obj:#}");
    assert_eq!(obj["pids"][0]["role"], "last send");
    assert_eq!(obj["pids"][0]["alive"], false);

    let out = ok(&["clean", "--older-than", "0", &l, &d]);
    assert!(out.contains("removed 1, kept 1"), "{out}");
    assert!(
        sysv_exists("msg", live.id()) && !sysv_exists("msg", dead),
        "{out}"
    );
    let mut buf = [0u8; 16];
    let got = live
        .try_recv(&mut buf, ipcbox::mq::TypeSelector::Any)
        .expect("msgrcv after clean");
    assert_eq!(got, Some(ipcbox::mq::SysVReceived { len: 4, mtype: 7 }));
}

#[test]
fn bad_options_give_clear_errors() {
    let out = ipcbox(&["clean", "--older-than", "5y", "/x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid duration \"5y\"") && err.contains("30s"),
        "{err}"
    );

    let out = ipcbox(&["clean", "--everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--everything"), "{out:?}");

    let out = ipcbox(&["ls", "0xzz"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid System V key \"0xzz\""),
        "{out:?}"
    );

    let missing = unique("missing");
    for cmd in ["ls", "clean"] {
        let out = ipcbox(&[cmd, &missing]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            text(&out.stderr).contains(&format!("no IPC object matches {missing}")),
            "{out:?}"
        );
    }
}

#[test]
fn ls_shows_state_and_filters_by_kind_and_owner() {
    let name = unique("state-q");
    let q: ipcbox::Queue<u32> = ipcbox::Queue::create(&name, 8).expect("create queue");
    q.put(&1).unwrap();
    q.put(&2).unwrap();
    let me = rustix::process::geteuid().as_raw().to_string();
    let objects = ls_json(&["--kind", "queue", "--owner", &me]);
    assert!(
        objects.iter().all(|o| o["format"] == "queue"),
        "{objects:#?}"
    );
    let state = &by_name(&objects, &name).expect("listed")["state"];
    assert_eq!(state["type"], "queue");
    assert_eq!(
        (state["messages"].as_u64(), state["capacity"].as_u64()),
        (Some(2), Some(8))
    );
    assert_eq!(
        (state["peers_alive"].as_u64(), state["peers_dead"].as_u64()),
        (Some(1), Some(0))
    );
    let other = (rustix::process::geteuid().as_raw() + 4242).to_string();
    assert!(ls_json(&["--owner", &other, &name]).is_empty());
    let table = ok(&["ls", &name]);
    assert!(
        table.contains("STATE") && table.contains("2/8 msgs"),
        "{table}"
    );

    // A System V queue: its depth, listed by --kind though not ipcbox's.
    let mut mq = SysVQueue::create(IpcKey::PRIVATE).expect("create queue");
    mq.detach();
    let _g = SysVGuard("-q", mq.id());
    mq.send(b"12345", 1).unwrap();
    mq.send(b"678", 2).unwrap();
    let objects = ls_json(&["--kind", "sysv-msg"]);
    let state = &by_id(&objects, "sysv-msg", mq.id())["state"];
    assert_eq!(
        (state["messages"].as_u64(), state["bytes"].as_u64()),
        (Some(2), Some(8))
    );
    assert!(objects.iter().all(|o| o["kind"] == "sysv-msg"));

    for (args, why) in [
        (["ls", "--kind", "pipes"], "unknown kind \"pipes\""),
        (
            ["ls", "--owner", "no-such-user-anywhere"],
            "no user \"no-such-user-anywhere\"",
        ),
    ] {
        let out = ipcbox(&args);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(text(&out.stderr).contains(why), "{out:?}");
    }
}

// --- POSIX queues where /dev/mqueue is not mounted --------------------------------------------

/// Removes a POSIX queue name on drop, whatever happened.
struct MqGuard(String);

impl Drop for MqGuard {
    fn drop(&mut self) {
        let _ = ipcbox::mq::PosixQueue::unlink(&self.0);
    }
}

/// Runs `ipcbox args…` in a mount namespace of its own where `/dev/mqueue` is not mounted
/// (`unshare`, then `umount` if it is), as `uid` if given, with stderr and stdout in one stream
/// so that the first line is the first thing a person sees.
fn ipcbox_without_mqueue_mount(args: &[&str], uid: Option<u32>) -> (bool, String) {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("umount -l /dev/mqueue 2>/dev/null; exec \"$@\" 2>&1")
        .arg("sh");
    if let Some(uid) = uid {
        cmd.arg("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups");
    }
    cmd.arg(env!("CARGO_BIN_EXE_ipcbox")).args(args);
    let out = util::run(&mut cmd);
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn posix_queues_are_listed_and_cleaned_without_a_dev_mqueue_mount() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: hiding /dev/mqueue in a mount namespace needs root");
        return;
    }
    use ipcbox::mq::{Attributes, PosixQueue};
    let size = Attributes {
        max_messages: 2,
        max_message_size: 16,
    };
    let live_name = unique("mq-live");
    let live = PosixQueue::create(&live_name, size).expect("create queue");
    live.send(b"kept", 1).expect("mq_send");
    let _g1 = MqGuard(live_name.clone());
    let left_name = unique("mq-left");
    let mut left = PosixQueue::create(&left_name, size).expect("create queue");
    left.detach();
    drop(left);
    let _g2 = MqGuard(left_name.clone());

    let (ok, out) = ipcbox_without_mqueue_mount(&["ls", "--all"], None);
    assert!(ok, "{out}");
    assert!(
        out.starts_with(
            "note: POSIX message queues: /dev/mqueue is not an mqueue mount; the queues are \
             listed through a private mount"
        ),
        "{out}"
    );
    let row = |name: &str| out.lines().find(|l| l.contains(name)).map(str::to_owned);
    let live_row = row(&live_name).unwrap_or_else(|| panic!("{live_name} not listed:\n{out}"));
    assert!(
        live_row.starts_with("posix-mq") && live_row.contains(" yes "),
        "{live_row}"
    );
    assert!(
        live_row.contains(&format!("open in {}", std::process::id())),
        "{live_row}"
    );
    let left_row = row(&left_name).unwrap_or_else(|| panic!("{left_name} not listed:\n{out}"));
    assert!(left_row.contains(" no "), "{left_row}");

    let (ok, out) = ipcbox_without_mqueue_mount(
        &["clean", "--older-than", "0", &left_name, &live_name],
        None,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("removed posix-mq {left_name}: unused")),
        "{out}"
    );
    assert!(
        out.contains(&format!("kept posix-mq {live_name}: in use")),
        "{out}"
    );
    let gone = PosixQueue::open(&left_name).expect_err("the abandoned queue is removed");
    assert_eq!(gone.kind(), std::io::ErrorKind::NotFound, "{gone}");
    let mut buf = [0u8; 16];
    assert_eq!(live.recv(&mut buf).expect("mq_receive").len, 4);
}

#[test]
fn without_privileges_the_first_line_says_queues_are_not_listed() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: running as another user in a mount namespace needs root");
        return;
    }
    use ipcbox::mq::{Attributes, PosixQueue};
    let name = unique("mq-unseen");
    let size = Attributes {
        max_messages: 2,
        max_message_size: 16,
    };
    let q = PosixQueue::create(&name, size).expect("create queue");
    let _g = MqGuard(name.clone());
    // nobody: no CAP_SYS_ADMIN, so no private mount either.
    let (ok, out) = ipcbox_without_mqueue_mount(&["ls", "--all"], Some(65534));
    assert!(ok, "{out}");
    assert!(
        out.starts_with(
            "note: POSIX message queues: not listed, how many there are is unknown: \
             /dev/mqueue is not an mqueue mount"
        ),
        "{out}"
    );
    assert!(!out.contains(&name), "{out}");
    drop(q);
}
