//! `objects::list` and `Object::remove_if_unused` when the world changes between the listing
//! and the removal: a process maps or opens the object (it is kept, under its own name), the
//! object is replaced or vanishes, or it changed within the grace window.

mod util;

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use ipcbox::objects::{self, Kind, Object, Removal};
use ipcbox::shm::{Segment, SysVSegment};
use ipcbox::IpcKey;

const LIMIT: Duration = Duration::from_secs(60);

/// Removes a POSIX shared-memory name on drop.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = ipcbox::shm::unlink(&self.0);
    }
}

/// Kills and reaps a child on drop.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An abandoned segment (created, detached, unmapped) and its file.
fn abandoned(tag: &str) -> (String, PathBuf, Unlink) {
    let name = format!("/{}", util::unique_name(tag));
    let mut seg = Segment::create(&name, 4096).expect("create segment");
    seg.detach();
    drop(seg);
    let path = PathBuf::from(format!("/dev/shm{name}"));
    (name.clone(), path, Unlink(name))
}

fn listed(pred: impl Fn(&Object) -> bool) -> Object {
    objects::list()
        .expect("list objects")
        .objects
        .into_iter()
        .find(pred)
        .expect("the object is listed")
}

fn inode(path: &PathBuf) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

#[test]
fn object_used_after_listing_is_kept_under_its_name() {
    let _w = util::watchdog("object_used_after_listing_is_kept_under_its_name", LIMIT);
    let (name, path, _g) = abandoned("objects-late");
    let obj = listed(|o| o.name.as_deref() == Some(&name));
    assert_eq!(obj.kind, Kind::PosixShm);
    assert_eq!(obj.usage.in_use(), Some(false), "{obj:?}");
    assert!(obj.is_ipcbox());
    let ino = inode(&path);

    // A user maps it after the listing: the fresh look sees it; the name is restored.
    let user = Segment::open(&name).expect("open segment");
    match obj
        .remove_if_unused(Duration::ZERO)
        .expect("remove_if_unused")
    {
        Removal::Kept(why) => assert!(why.contains("mapped by"), "{why}"),
        other => panic!("an object mapped by this process was not kept: {other:?}"),
    }
    assert_eq!(
        inode(&path),
        ino,
        "the name no longer leads to the same object"
    );
    user.write_at(0, b"still here").expect("write");
    drop(user);

    // Another process holds it open (a `sleep` whose stdin is the file).
    let sleeper = Reap(
        Command::new("sleep")
            .arg("60")
            .stdin(File::open(&path).expect("open file"))
            .spawn()
            .expect("run sleep"),
    );
    match obj
        .remove_if_unused(Duration::ZERO)
        .expect("remove_if_unused")
    {
        // The command name is the test's until the child has exec'd `sleep`, so only the pid
        // is certain here.
        Removal::Kept(why) => assert!(
            why.contains(&format!("open in {} (", sleeper.0.id())),
            "{why}"
        ),
        other => panic!("an object open in a child was not kept: {other:?}"),
    }
    assert_eq!(inode(&path), ino);
    drop(sleeper);

    match obj
        .remove_if_unused(Duration::ZERO)
        .expect("remove_if_unused")
    {
        Removal::Removed(why) => assert!(why.contains("no live process"), "{why}"),
        other => panic!("an unused object was not removed: {other:?}"),
    }
    assert!(!path.exists());
    assert_eq!(
        obj.remove_if_unused(Duration::ZERO).expect("again"),
        Removal::Gone
    );
}

#[test]
fn grace_window_replaced_and_vanished_objects_are_left_alone() {
    let _w = util::watchdog("grace_window_replaced_and_vanished", LIMIT);
    let (name, path, _g) = abandoned("objects-grace");
    let obj = listed(|o| o.name.as_deref() == Some(&name));
    match obj
        .remove_if_unused(Duration::from_secs(3600))
        .expect("remove")
    {
        Removal::Kept(why) => assert!(why.contains("grace window"), "{why}"),
        other => panic!("a fresh object was not kept: {other:?}"),
    }
    assert!(path.exists());

    // Replaced by a new object of the same name: the listed one is gone, the new one stays.
    ipcbox::shm::unlink(&name).expect("unlink");
    let mut seg = Segment::create(&name, 4096).expect("create again");
    seg.detach();
    drop(seg);
    assert_eq!(
        obj.remove_if_unused(Duration::ZERO).expect("remove"),
        Removal::Gone
    );
    assert!(path.exists(), "the replacement was removed");

    ipcbox::shm::unlink(&name).expect("unlink");
    assert_eq!(
        obj.remove_if_unused(Duration::ZERO).expect("remove"),
        Removal::Gone
    );
}

#[test]
fn sysv_segment_attached_after_listing_is_kept() {
    let _w = util::watchdog("sysv_segment_attached_after_listing_is_kept", LIMIT);
    let mut seg = SysVSegment::create(IpcKey::PRIVATE, 4096).expect("create segment");
    seg.detach();
    let id = seg.id();
    drop(seg);
    struct Rm(i32);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = Command::new("ipcrm")
                .args(["-m", &self.0.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _g = Rm(id);
    let obj = listed(|o| o.kind == Kind::SysVShm && o.id == Some(id));
    assert_eq!((obj.attached, obj.usage.in_use()), (Some(0), Some(false)));

    let user = SysVSegment::open_id(id).expect("attach");
    match obj
        .remove_if_unused(Duration::ZERO)
        .expect("remove_if_unused")
    {
        Removal::Kept(why) => assert!(why.contains("1 attachment"), "{why}"),
        other => panic!("an attached segment was not kept: {other:?}"),
    }
    user.write_at(0, b"mine").expect("write");
    drop(user);
    assert!(matches!(
        obj.remove_if_unused(Duration::ZERO)
            .expect("remove_if_unused"),
        Removal::Removed(_)
    ));
    assert!(
        SysVSegment::open_id(id).is_err(),
        "segment {id} still exists"
    );
}

/// The child of `inspect_sees_a_killed_peer_dead`: attaches to the queue and begins an object
/// in the store named by its argument, says so, and waits to be killed.
#[test]
fn role_inspected_peer() {
    let Some(arg) = util::role_arg("inspected-peer") else {
        return;
    };
    let (queue, store) = arg.split_once(' ').expect("two names");
    let q: ipcbox::Queue<u32> = ipcbox::Queue::open(queue).expect("open queue");
    q.put(&1).expect("put");
    let store = ipcbox::store::Store::open(store).expect("open store");
    let buf = store
        .create_object(ipcbox::store::ObjectId::from_u64(9), 100)
        .expect("create object");
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop((buf, q));
}

#[test]
fn inspect_sees_a_killed_peer_dead() {
    use ipcbox::objects::State;
    use std::io::BufRead;
    use std::process::Stdio;

    let _w = util::watchdog("inspect_sees_a_killed_peer_dead", LIMIT);
    let queue = format!("/{}", util::unique_name("inspect-q"));
    let store = format!("/{}", util::unique_name("inspect-s"));
    let q: ipcbox::Queue<u32> = ipcbox::Queue::create(&queue, 4).expect("create queue");
    let _s = ipcbox::store::Store::create(&store, 4096).expect("create store");
    let mut child = util::role_command(
        "role_inspected_peer",
        "inspected-peer",
        &format!("{queue} {store}"),
    );
    child.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = util::ChildGuard::spawn(child);
    let pid = child.pid();
    // libtest prints its own lines first; the child's comes when it is ready.
    let mut out = std::io::BufReader::new(child.get().stdout.take().expect("stdout"));
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        let n = out.read_line(&mut line).expect("read from the child");
        assert!(n > 0, "the child ended before it was ready");
    }

    let queue_state = || match objects::inspect(&queue).expect("inspect queue") {
        Some(State::Queue(s)) => s,
        other => panic!("not a queue: {other:?}"),
    };
    let store_state = || match objects::inspect(&store).expect("inspect store") {
        Some(State::Store(s)) => s,
        other => panic!("not a store: {other:?}"),
    };
    let s = queue_state();
    assert_eq!((s.messages, s.capacity), (1, 4));
    let alive = |peers: &[objects::RecordedPid]| -> Vec<(i32, bool)> {
        let mut v: Vec<_> = peers.iter().map(|p| (p.pid.as_raw(), p.alive)).collect();
        v.sort_unstable();
        v
    };
    let mut both = vec![(ipcbox::Pid::this().as_raw(), true), (pid.as_raw(), true)];
    both.sort_unstable();
    assert_eq!(alive(&s.peers), both);
    let st = store_state();
    assert_eq!((st.creating, st.abandoned), (1, 0));

    child.kill();
    let s = queue_state();
    assert_eq!(s.messages, 1, "the dead peer's message stays");
    let mut after = vec![(ipcbox::Pid::this().as_raw(), true), (pid.as_raw(), false)];
    after.sort_unstable();
    assert_eq!(alive(&s.peers), after);
    let st = store_state();
    assert_eq!((st.creating, st.abandoned), (1, 1));
    assert_eq!(
        st.peers
            .iter()
            .map(|p| (p.role, p.pid, p.alive))
            .collect::<Vec<_>>(),
        [("creator", pid, false)]
    );
    drop(q);
}
