//! Shared memory across real processes: named POSIX segments, System V segments, file maps and
//! anonymous maps, against role children, forked children and Python peers
//! (`multiprocessing.shared_memory`, `posix_ipc`, `sysv_ipc`).

mod util;

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipcbox::shm;
use ipcbox::CreationMode;
use ipcbox::IpcKey;

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Helpers: cleanup guards, leftover checks, Python peers.

/// Removes `/dev/shm/<name>` on drop (if a test failed before its owner did), and lets the
/// test assert that nothing is left.
struct NameGuard(String);

impl NameGuard {
    fn new(tag: &str) -> NameGuard {
        NameGuard(util::unique_name(tag))
    }

    fn path(&self) -> String {
        format!("/dev/shm/{}", self.0)
    }

    fn exists(&self) -> bool {
        util::shm_exists(&self.0)
    }

    fn assert_gone(&self) {
        assert!(!self.exists(), "{} was left behind", self.path());
    }
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// A System V key nobody else is likely to use; removes any segment with it on drop.
struct KeyGuard(IpcKey);

impl KeyGuard {
    /// A key no segment has now (so that dropping the guard removes only what the test made).
    fn new() -> KeyGuard {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let mixed =
                (std::process::id().wrapping_mul(0x9e37_79b9) ^ nanos ^ (n << 24)) & 0x7fff_ffff;
            let key = IpcKey::from_raw(mixed.max(1) as i32);
            if !sysv_key_listed(key) {
                return KeyGuard(key);
            }
        }
        panic!("no unused System V key found");
    }

    fn assert_gone(&self) {
        assert!(
            !sysv_key_listed(self.0),
            "System V segment key {} was left behind",
            self.0
        );
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let _ = shm::SysVSegment::remove(self.0);
    }
}

/// Whether `ipcs -m` lists a segment with `key`.
fn sysv_key_listed(key: IpcKey) -> bool {
    let out = Command::new("ipcs")
        .arg("-m")
        .output()
        .expect("run ipcs -m");
    assert!(out.status.success(), "ipcs -m failed");
    let wanted = format!("{:#010x}", key.as_raw());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|line| line.split_whitespace().next() == Some(wanted.as_str()))
}

/// Creates a System V segment on a fresh key (retrying on the rare collision).
fn create_sysv(size: usize) -> (KeyGuard, shm::SysVSegment) {
    for _ in 0..16 {
        let key = KeyGuard::new();
        match shm::SysVSegment::create(key.0, size) {
            Ok(seg) => return (key, seg),
            // Someone else's segment: forget the guard, which would remove it on drop.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::mem::forget(key),
            Err(e) => panic!("create System V segment: {e}"),
        }
    }
    panic!("no free System V key found");
}

/// A Python peer that talks over its stdin/stdout in lines.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(mut cmd: Command) -> Peer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("python stdout"));
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from python");
        if line.is_empty() {
            panic!("python ended early: {}", self.finish_err());
        }
        line.trim_end().to_owned()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("python stdin");
        writeln!(stdin, "{line}").expect("write to python");
        stdin.flush().expect("flush to python");
    }

    fn finish_err(&mut self) -> String {
        let (status, stderr) = self.finish_err_parts();
        format!("status {status}, stderr: {stderr}")
    }

    /// Closes the peer's stdin and waits for it: its status and stderr.
    fn finish_err_parts(&mut self) -> (std::process::ExitStatus, String) {
        self.stdin.take();
        self.child.wait_with_output_ref()
    }

    /// Waits for the peer; panics with its stderr unless it succeeded and said nothing there.
    fn finish(mut self) {
        self.stdin.take();
        let (status, stderr) = self.child.wait_with_output_ref();
        assert!(
            status.success() && stderr.trim().is_empty(),
            "python: {status}, stderr: {stderr}"
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitRef for Child {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String) {
        let mut stderr = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = io::Read::read_to_string(&mut e, &mut stderr);
        }
        (self.wait().expect("wait for python"), stderr)
    }
}

/// Runs `script` to completion and returns its stdout; panics with its stderr on failure.
fn run_python(script: &str) -> String {
    let out = util::python::python(script).output().expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "python: {}, stderr: {stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Python interoperability.

/// Python's `multiprocessing.shared_memory` opens an ipcbox segment, reads what ipcbox wrote and
/// writes back; ipcbox reads that. Then the reverse: Python creates, ipcbox opens.
#[test]
fn python_shared_memory_and_ipcbox_exchange_bytes_both_ways() {
    let guard = NameGuard::new("shm-pyshm");
    let cmd = util::python::python(&format!(
        r#"
import sys
from multiprocessing import shared_memory, resource_tracker
seg = shared_memory.SharedMemory(name={name:?})
# CPython's resource tracker would unlink the segment when this process exits, though it only
# attached to it (README, "CPython's resource tracker"). Before 3.13 the workaround is this;
# from 3.13, SharedMemory(name=..., track=False).
resource_tracker.unregister(seg._name, "shared_memory")
print(bytes(seg.buf[0:14]).decode(), seg.size >= 4096, flush=True)
seg.buf[100:115] = b"python was here"
del seg  # release the buffer before closing
print("done", flush=True)
"#,
        name = guard.0
    ));
    let _dog = util::watchdog("python_shared_memory ipcbox->python", LIMIT);
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    seg.write_at(0, b"ipcbox to py 1").unwrap();
    let mut peer = Peer::spawn(cmd);
    assert_eq!(peer.line(), "ipcbox to py 1 True");
    assert_eq!(peer.line(), "done");
    peer.finish();
    let mut buf = [0; 15];
    seg.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"python was here");
    assert!(guard.exists(), "Python removed a segment it only opened");
    drop(seg);
    guard.assert_gone();

    // The reverse: Python creates and owns, ipcbox opens.
    let guard = NameGuard::new("shm-pyshm-rev");
    let cmd = util::python::python(&format!(
        r#"
import sys
from multiprocessing import shared_memory
seg = shared_memory.SharedMemory(name={name:?}, create=True, size=8192)
seg.buf[0:16] = b"python to ipcbox"
print("ready", flush=True)
sys.stdin.readline()
print(bytes(seg.buf[4000:4012]).decode(), flush=True)
seg.close()
seg.unlink()
"#,
        name = guard.0
    ));
    let mut peer = Peer::spawn(cmd);
    assert_eq!(peer.line(), "ready");
    let seg = shm::Segment::open(&guard.0).unwrap();
    assert!(!seg.is_owner());
    assert!(seg.len() >= 8192, "len {}", seg.len());
    let mut buf = [0; 16];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"python to ipcbox");
    seg.write_at(4000, b"ipcbox wrote").unwrap();
    peer.send("go");
    assert_eq!(peer.line(), "ipcbox wrote");
    peer.finish();
    drop(seg);
    guard.assert_gone();
}

/// Attaches to the segment `name` from Python, with `workaround` (README, "CPython's resource
/// tracker") or without, and exits; returns once Python and its resource tracker (if it
/// started one) have exited, with Python's stderr.
fn python_attaches_and_exits(name: &str, workaround: bool) -> String {
    let attach = if workaround {
        "if sys.version_info >= (3, 13):\n\
         \x20   seg = shared_memory.SharedMemory(name=NAME, track=False)\n\
         else:\n\
         \x20   seg = shared_memory.SharedMemory(name=NAME)\n\
         \x20   resource_tracker.unregister(seg._name, 'shared_memory')\n"
    } else {
        "seg = shared_memory.SharedMemory(name=NAME)\n"
    };
    let script = format!(
        "import sys\n\
         from multiprocessing import shared_memory, resource_tracker\n\
         NAME = {name:?}\n\
         {attach}\
         seg.close()\n\
         print(resource_tracker._resource_tracker._pid, flush=True)\n\
         sys.stdin.readline()\n"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]);
    let mut peer = Peer::spawn(cmd);
    // The tracker outlives Python: hold it by a pidfd while Python (its parent) is alive, so
    // that its pid cannot be reused, then wait for it to exit.
    let tracker = match peer.line().as_str() {
        "None" => None,
        pid => {
            let pid = rustix::process::Pid::from_raw(pid.parse().expect("tracker pid"))
                .expect("a tracker pid");
            Some(rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap())
        }
    };
    let (status, stderr) = peer.finish_err_parts();
    assert!(status.success(), "python: {status}, stderr: {stderr}");
    if let Some(pidfd) = tracker {
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        while rustix::event::poll(&mut fds, None).unwrap() == 0 {}
    }
    stderr
}

/// CPython's resource tracker unlinks every segment a Python process attached to by name when
/// that process exits (in every version, unless told not to): an ipcbox-created segment is
/// gone once a Python attacher exits. With the README's workaround it survives.
#[test]
fn a_python_attacher_unlinks_the_segment_at_exit_unless_it_opts_out() {
    let _dog = util::watchdog("python resource tracker", LIMIT);
    let guard = NameGuard::new("shm-tracker");
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    seg.write_at(0, b"still here").unwrap();

    let stderr = python_attaches_and_exits(&guard.0, true);
    assert!(
        guard.exists(),
        "the segment is gone despite the workaround: {stderr}"
    );
    let mut buf = [0; 10];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");

    let stderr = python_attaches_and_exits(&guard.0, false);
    assert!(
        !guard.exists(),
        "the trap is gone: Python no longer unlinks what it only attached to ({stderr})"
    );
    assert!(stderr.contains("leaked shared_memory"), "{stderr}");
    // The name is gone; our mapping is still valid.
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

/// `posix_ipc.SharedMemory` and ipcbox, both ways, with the `/name` form of the name.
#[test]
fn posix_ipc_and_ipcbox_exchange_bytes_both_ways() {
    let guard = NameGuard::new("shm-posixipc");
    let slash_name = format!("/{}", guard.0);
    let cmd = util::python::python(&format!(
        r#"
import mmap, posix_ipc
mem = posix_ipc.SharedMemory({name:?})
size = mem.size
m = mmap.mmap(mem.fd, size)
mem.close_fd()
print(m[0:13].decode(), size, flush=True)
m[200:211] = b"posix_ipc!!"
m.close()
"#,
        name = slash_name
    ));
    let _dog = util::watchdog("posix_ipc exchange", LIMIT);
    let seg = shm::Segment::create(&slash_name, 10_000).unwrap();
    assert_eq!(seg.name(), slash_name);
    seg.write_at(0, b"from ipcbox!!").unwrap();
    let mut peer = Peer::spawn(cmd);
    assert_eq!(peer.line(), "from ipcbox!! 10000");
    peer.finish();
    let mut buf = [0; 11];
    seg.read_at(200, &mut buf).unwrap();
    assert_eq!(&buf, b"posix_ipc!!");
    drop(seg);
    guard.assert_gone();

    let guard = NameGuard::new("shm-posixipc-rev");
    let slash_name = format!("/{}", guard.0);
    let cmd = util::python::python(&format!(
        r#"
import mmap, sys, posix_ipc
mem = posix_ipc.SharedMemory({name:?}, posix_ipc.O_CREX, mode=0o600, size=5000)
m = mmap.mmap(mem.fd, mem.size)
mem.close_fd()
m[0:9] = b"posix_ipc"
print("ready", flush=True)
sys.stdin.readline()
print(m[4990:5000].decode(), flush=True)
m.close()
mem.unlink()
"#,
        name = slash_name
    ));
    let mut peer = Peer::spawn(cmd);
    assert_eq!(peer.line(), "ready");
    // Without the leading slash: the same object.
    let seg = shm::Segment::open(&guard.0).unwrap();
    assert_eq!(seg.len(), 5000);
    let mut buf = [0; 9];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"posix_ipc");
    seg.write_at(4990, b"0123456789").unwrap();
    let err = seg.write_at(4991, b"0123456789").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    peer.send("go");
    assert_eq!(peer.line(), "0123456789");
    peer.finish();
    drop(seg);
    guard.assert_gone();
}

/// `sysv_ipc.SharedMemory` and an ipcbox System V segment, by key, both ways.
#[test]
fn sysv_ipc_and_ipcbox_exchange_bytes_both_ways() {
    let cmd_for = |script: String| util::python::python(&script);
    let (key, seg) = create_sysv(4096);
    let cmd = cmd_for(format!(
        r#"
import sysv_ipc
mem = sysv_ipc.SharedMemory({key})
print(mem.read(12, 0).decode(), mem.size, mem.id, flush=True)
mem.write(b"sysv_ipc wrote", 300)
mem.detach()
"#,
        key = key.0.as_raw()
    ));
    let _dog = util::watchdog("sysv_ipc exchange", LIMIT);
    seg.write_at(0, b"ipcbox sysv!").unwrap();
    let mut peer = Peer::spawn(cmd);
    assert_eq!(
        peer.line(),
        format!("ipcbox sysv! {} {}", seg.len(), seg.id())
    );
    peer.finish();
    let mut buf = [0; 14];
    seg.read_at(300, &mut buf).unwrap();
    assert_eq!(&buf, b"sysv_ipc wrote");
    assert_eq!(seg.permissions().unwrap(), 0o600);
    drop(seg);
    key.assert_gone();

    // Python creates and removes; ipcbox opens by key.
    let key = KeyGuard::new();
    let cmd = cmd_for(format!(
        r#"
import sys, sysv_ipc
mem = sysv_ipc.SharedMemory({key}, sysv_ipc.IPC_CREX, mode=0o600, size=6000)
mem.write(b"python sysv", 0)
print("ready", flush=True)
sys.stdin.readline()
print(mem.read(6, 5990).decode(), flush=True)
mem.detach()
mem.remove()
"#,
        key = key.0.as_raw()
    ));
    let mut peer = Peer::spawn(cmd);
    assert_eq!(peer.line(), "ready");
    let seg = shm::SysVSegment::open(key.0).unwrap();
    assert!(!seg.is_owner());
    assert!(seg.len() >= 6000, "len {}", seg.len());
    let mut buf = [0; 11];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"python sysv");
    seg.write_at(5990, b"ipcbox").unwrap();
    peer.send("go");
    assert_eq!(peer.line(), "ipcbox");
    peer.finish();
    drop(seg);
    key.assert_gone();
}

/// ipcbox's `ftok` gives the key Python's `sysv_ipc.ftok` gives for the same file and id.
#[test]
fn ftok_agrees_with_sysv_ipc() {
    let dir = util::TempDir::new("shm-ftok");
    let path = dir.join("keyfile");
    std::fs::write(&path, b"k").unwrap();
    let ours = IpcKey::ftok(&path, b'K').unwrap();
    let theirs = run_python(&format!(
        "import sysv_ipc; print(sysv_ipc.ftok({:?}, {}, silence_warning=True))",
        path.to_str().unwrap(),
        b'K'
    ));
    assert_eq!(theirs, ours.as_raw().to_string());
}

// ---------------------------------------------------------------------------------------------
// ipcbox processes: role children and fork.

/// A role child sees the parent's writes in a named segment, and the parent sees the child's.
#[test]
fn role_child_shares_a_named_segment() {
    let _dog = util::watchdog("role_child_shares_a_named_segment", LIMIT);
    let guard = NameGuard::new("shm-role");
    let seg = shm::Segment::create(&guard.0, 3 * 4096).unwrap();
    seg.write_at(5000, b"parent says hi").unwrap();
    let status = util::role_command("role_segment_child", "segment-child", &guard.0)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "child: {status}");
    let mut buf = [0; 13];
    seg.read_at(9000, &mut buf).unwrap();
    assert_eq!(&buf, b"child replied");
    assert!(guard.exists(), "the child (an opener) removed the segment");
    drop(seg);
    guard.assert_gone();
}

#[test]
fn role_segment_child() {
    let Some(name) = util::role_arg("segment-child") else {
        return;
    };
    let seg = shm::Segment::open(&name).unwrap();
    assert_eq!(seg.len(), 3 * 4096);
    let mut buf = [0; 14];
    seg.read_at(5000, &mut buf).unwrap();
    assert_eq!(&buf, b"parent says hi");
    seg.write_at(9000, b"child replied").unwrap();
}

/// A process that opens the name as soon as it appears never sees a half-made segment: the
/// size and the creator's initial contents are there from the first moment.
#[test]
fn openers_never_see_a_half_made_segment() {
    let _dog = util::watchdog("openers_never_see_a_half_made_segment", LIMIT);
    let guard = NameGuard::new("shm-halfmade");
    let mut child = util::role_command("role_segment_watcher", "segment-watcher", &guard.0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim_end() != "watching" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "watcher ended early");
    }
    let size = 1 << 20;
    let seg = shm::Options::new()
        .mode(CreationMode::CreateExclusive)
        .size(size)
        .open_with_init(&guard.0, |seg| {
            for offset in (0..size).step_by(4096) {
                seg.write_at(offset, &[0xab; 4096])?;
            }
            seg.write_at(0, b"READY")
        })
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "watcher: {status}");
    drop(seg);
    guard.assert_gone();
}

#[test]
fn role_segment_watcher() {
    let Some(name) = util::role_arg("segment-watcher") else {
        return;
    };
    println!("watching");
    let seg = loop {
        match shm::Segment::open(&name) {
            Ok(seg) => break seg,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => panic!("opened a half-made segment: {e}"),
        }
    };
    assert_eq!(seg.len(), 1 << 20);
    let mut marker = [0; 5];
    seg.read_at(0, &mut marker).unwrap();
    assert_eq!(&marker, b"READY");
    let mut last = [0; 1];
    seg.read_at((1 << 20) - 1, &mut last).unwrap();
    assert_eq!(last[0], 0xab);
}

/// A role child maps the same file and sees the parent's writes; the parent sees the child's,
/// and after a flush the bytes are in the file.
#[test]
fn role_child_shares_a_file_map() {
    let _dog = util::watchdog("role_child_shares_a_file_map", LIMIT);
    let dir = util::TempDir::new("shm-filemap");
    let path = dir.join("test.share");
    let map = shm::FileMap::create(&path, 8192).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    map.write_at(0, b"file map parent").unwrap();
    let status = util::role_command(
        "role_file_map_child",
        "file-map-child",
        path.to_str().unwrap(),
    )
    .stdout(Stdio::null())
    .status()
    .unwrap();
    assert!(status.success(), "child: {status}");
    let mut buf = [0; 10];
    map.read_at(8182, &mut buf).unwrap();
    assert_eq!(&buf, b"child file");
    map.flush().unwrap();
    map.flush_async().unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[..15], b"file map parent");
    assert_eq!(&on_disk[8182..], b"child file");
    drop(map);
    // Creating again never shrinks the file, and the data survive.
    let again = shm::FileMap::create(&path, 100).unwrap();
    assert_eq!(again.len(), 100);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
    let ro = shm::FileMap::open_read_only(&path).unwrap();
    assert_eq!(ro.len(), 8192);
    let mut buf = [0; 15];
    ro.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"file map parent");
    let err = ro.write_at(0, b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("test.share"), "{err}");

    // A window at a page offset sees the same bytes as the whole map.
    let window = shm::FileMap::open_range(&path, 4096, 4096).unwrap();
    let mut buf = [0; 10];
    window.read_at(4086, &mut buf).unwrap();
    assert_eq!(&buf, b"child file");
    window.write_at(0, b"window").unwrap();
    let mut buf = [0; 6];
    ro.read_at(4096, &mut buf).unwrap();
    assert_eq!(&buf, b"window");
    let err = shm::FileMap::open_range(&path, 100, 10).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = shm::FileMap::open_range(&path, 4096, 4097).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("8192"), "{err}");
}

#[test]
fn role_file_map_child() {
    let Some(path) = util::role_arg("file-map-child") else {
        return;
    };
    let map = shm::FileMap::open(&path).unwrap();
    assert_eq!(map.len(), 8192);
    let mut buf = [0; 15];
    map.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"file map parent");
    map.write_at(8182, b"child file").unwrap();
}

/// An anonymous shared map is shared with a forked child: the child's write is seen by the
/// parent (a private map would not be).
#[test]
#[allow(unsafe_code)] // fork: the child only copies bytes and calls _exit
fn anonymous_map_is_shared_with_forked_child() {
    let _dog = util::watchdog("anonymous_map_is_shared_with_forked_child", LIMIT);
    let map = shm::AnonymousMap::new(4096).unwrap();
    map.write_at(0, b"before fork").unwrap();
    // SAFETY: the child only does async-signal-safe work (copies bytes within memory mapped
    // before the fork, which allocates nothing) and leaves with _exit, so the other threads of
    // the test binary, absent in the child, cannot be waited for.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let mut buf = [0u8; 11];
        let ok = map.read_at(0, &mut buf).is_ok()
            && &buf == b"before fork"
            && map.write_at(2048, b"from the child").is_ok();
        // SAFETY: _exit is async-signal-safe and ends the child without running destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid place for the kernel to write.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    let mut buf = [0; 14];
    map.read_at(2048, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");
}

// ---------------------------------------------------------------------------------------------
// Lifecycle, names, sizes, permissions.

#[test]
fn create_exclusive_on_an_existing_name_fails_naming_it() {
    let guard = NameGuard::new("shm-excl");
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    let err = shm::Segment::create(&guard.0, 4096).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains(&guard.0), "{err}");
    assert!(err.to_string().contains("4096"), "{err}");
    // The failed attempt did not disturb the owner's segment.
    assert!(guard.exists());
    drop(seg);
    guard.assert_gone();
}

#[test]
fn open_of_a_missing_name_fails_naming_it() {
    let guard = NameGuard::new("shm-missing");
    let err = shm::Segment::open(&guard.0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&guard.0), "{err}");
    let err = shm::unlink(&guard.0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&guard.0), "{err}");
    guard.assert_gone();

    let key = KeyGuard::new();
    let err = shm::SysVSegment::open(key.0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{:#010x}", key.0.as_raw())),
        "{err}"
    );
}

#[test]
fn bad_sizes_fail_clearly_at_creation() {
    let guard = NameGuard::new("shm-size");
    let err = shm::Segment::create(&guard.0, 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("size 0"), "{err}");
    assert!(err.to_string().contains(&guard.0), "{err}");

    let too_big = shm::SIZE_MAX + 1;
    let err = shm::Segment::create(&guard.0, too_big).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&too_big.to_string()), "{err}");

    // Far beyond what /dev/shm holds: refused when created, not a SIGBUS when written.
    let absurd = 1usize << 50;
    let err = shm::Segment::create(&guard.0, absurd).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    assert!(err.to_string().contains(&absurd.to_string()), "{err}");
    assert!(err.to_string().contains(&guard.0), "{err}");
    guard.assert_gone();

    let err = shm::Options::new()
        .mode(CreationMode::OpenOrCreate)
        .open(&guard.0)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("no size"), "{err}");

    let key = KeyGuard::new();
    let err = shm::SysVSegment::create(key.0, 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = shm::SysVSegment::create(key.0, absurd).unwrap_err();
    assert!(err.to_string().contains(&absurd.to_string()), "{err}");
    key.assert_gone();

    let err = shm::AnonymousMap::new(0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

#[test]
fn invalid_names_fail_clearly() {
    let long = "x".repeat(shm::NAME_MAX + 1);
    for bad in ["", "/", "a/b", "/a/b", "//a", ".", "..", long.as_str()] {
        let err = shm::Segment::create(bad, 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        let err = shm::Segment::open(bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    // The longest allowed name works, with or without the leading slash.
    let guard = NameGuard(format!(
        "{}{}",
        util::unique_name("shm-long"),
        "y".repeat(shm::NAME_MAX)
    ));
    let name = &guard.0[..shm::NAME_MAX];
    let guard = NameGuard(name.to_owned());
    let seg = shm::Segment::create(&format!("/{name}"), 4096).unwrap();
    assert_eq!(seg.name(), format!("/{name}"));
    drop(seg);
    guard.assert_gone();
}

#[test]
fn permissions_are_owner_only_by_default() {
    let guard = NameGuard::new("shm-perm");
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    let mode = std::fs::metadata(guard.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(seg);
    guard.assert_gone();

    let guard = NameGuard::new("shm-perm-explicit");
    let seg = shm::Options::new()
        .mode(CreationMode::CreateExclusive)
        .size(4096)
        .permissions(0o644)
        .open(&guard.0)
        .unwrap();
    let mode = std::fs::metadata(guard.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "set exactly, whatever the umask");
    drop(seg);
    guard.assert_gone();
}

#[test]
fn creator_unlinks_on_drop_and_detached_segments_stay() {
    let guard = NameGuard::new("shm-life");
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    assert!(seg.is_owner());
    let opener = shm::Segment::open(&guard.0).unwrap();
    drop(opener);
    assert!(guard.exists(), "an opener removed the name");
    drop(seg);
    guard.assert_gone();

    let mut seg = shm::Segment::create(&guard.0, 4096).unwrap();
    seg.write_at(0, b"kept").unwrap();
    seg.detach();
    drop(seg);
    assert!(guard.exists(), "a detached segment was removed");
    let seg = shm::Segment::open(&guard.0).unwrap();
    let mut buf = [0; 4];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"kept");
    shm::unlink(&guard.0).unwrap();
    guard.assert_gone();
    // The handle outlives the name.
    seg.write_at(0, b"still").unwrap();

    // A creator never removes a newer object that took its name after someone unlinked it.
    let first = shm::Segment::create(&guard.0, 4096).unwrap();
    shm::unlink(&guard.0).unwrap();
    let second = shm::Segment::create(&guard.0, 4096).unwrap();
    drop(first);
    assert!(guard.exists(), "the old owner removed the new segment");
    drop(second);
    guard.assert_gone();

    // System V: the creator removes on drop, a detached one stays until removed.
    let (key, seg) = create_sysv(4096);
    assert_eq!(seg.attached().unwrap(), 1);
    let other = shm::SysVSegment::open(key.0).unwrap();
    assert_eq!(seg.attached().unwrap(), 2);
    drop(other);
    assert!(sysv_key_listed(key.0));
    drop(seg);
    key.assert_gone();
    let (key, mut seg) = create_sysv(4096);
    seg.detach();
    drop(seg);
    assert!(
        sysv_key_listed(key.0),
        "a detached System V segment was removed"
    );
    shm::SysVSegment::remove(key.0).unwrap();
    key.assert_gone();
}

#[test]
fn open_or_create_has_exactly_one_creator() {
    let _dog = util::watchdog("open_or_create_has_exactly_one_creator", LIMIT);
    let guard = NameGuard::new("shm-race");
    let barrier = std::sync::Barrier::new(4);
    let segs: Vec<shm::Segment> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (name, barrier) = (&guard.0, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    shm::Options::new()
                        .mode(CreationMode::OpenOrCreate)
                        .size(4096)
                        .open_with_init(name, |seg| seg.write_at(0, &[1 + i as u8]))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(segs.iter().filter(|s| s.is_owner()).count(), 1);
    // Everyone sees the creator's initialisation, never a zero byte.
    let mut first = [0; 1];
    segs[0].read_at(0, &mut first).unwrap();
    assert_ne!(first[0], 0);
    for seg in &segs {
        let mut b = [0; 1];
        seg.read_at(0, &mut b).unwrap();
        assert_eq!(b, first);
        assert_eq!(seg.len(), 4096);
    }
    drop(segs);
    guard.assert_gone();

    // A failing init leaves nothing behind.
    let err = shm::Options::new()
        .mode(CreationMode::CreateExclusive)
        .size(4096)
        .open_with_init(&guard.0, |_| Err(io::Error::other("init refused")))
        .unwrap_err();
    assert!(err.to_string().contains("init refused"), "{err}");
    guard.assert_gone();

    // System V OpenOrCreate: one creator too.
    let key = KeyGuard::new();
    let a = shm::SysVOptions::new()
        .mode(CreationMode::OpenOrCreate)
        .size(4096)
        .open(key.0)
        .unwrap();
    let b = shm::SysVOptions::new()
        .mode(CreationMode::OpenOrCreate)
        .size(4096)
        .open(key.0)
        .unwrap();
    assert!(a.is_owner() && !b.is_owner());
    assert_eq!(a.id(), b.id());
    drop((a, b));
    key.assert_gone();
}

/// A segment someone truncated (or never sized) is mapped only as far as it really goes, so we
/// get errors, never SIGBUS.
#[test]
fn truncated_and_unsized_segments_are_errors_not_sigbus() {
    let guard = NameGuard::new("shm-trunc");
    let mut seg = shm::Segment::create(&guard.0, 3 * 4096).unwrap();
    seg.detach();
    drop(seg);
    // Another process shrinks it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(guard.path())
        .unwrap()
        .set_len(100)
        .unwrap();
    let err = shm::Options::new()
        .mode(CreationMode::Open)
        .size(3 * 4096)
        .open(&guard.0)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("100") && text.contains("12288") && text.contains(&guard.0),
        "{text}"
    );
    let seg = shm::Segment::open(&guard.0).unwrap();
    assert_eq!(seg.len(), 100);
    let mut buf = [0; 100];
    seg.read_at(0, &mut buf).unwrap();
    let err = seg.read_at(50, &mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("offset 50") && text.contains("100 bytes"),
        "{text}"
    );
    drop(seg);

    // Size 0: a creator that has not sized it yet.
    std::fs::OpenOptions::new()
        .write(true)
        .open(guard.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = shm::Segment::open(&guard.0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("not initialised"), "{err}");
    shm::unlink(&guard.0).unwrap();
    guard.assert_gone();
}

#[test]
fn read_only_handles_refuse_writes() {
    let guard = NameGuard::new("shm-ro");
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    seg.write_at(0, b"ro").unwrap();
    let ro = shm::Options::new()
        .mode(CreationMode::Open)
        .read_only(true)
        .open(&guard.0)
        .unwrap();
    let mut buf = [0; 2];
    ro.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"ro");
    let err = ro.write_at(0, b"no").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains(&guard.0), "{err}");
    let err = shm::Options::new()
        .read_only(true)
        .mode(CreationMode::OpenOrCreate)
        .size(4096)
        .open(&guard.0)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    // Options start at CreateExclusive: a read-only open says which mode it needs.
    let err = shm::Options::new()
        .read_only(true)
        .open(&guard.0)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("CreationMode::Open"), "{err}");
    drop((ro, seg));
    guard.assert_gone();

    let (key, seg) = create_sysv(4096);
    seg.write_at(10, b"sysv ro").unwrap();
    let ro = shm::SysVOptions::new()
        .mode(CreationMode::Open)
        .read_only(true)
        .open(key.0)
        .unwrap();
    let mut buf = [0; 7];
    ro.read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"sysv ro");
    assert_eq!(
        ro.write_at(0, b"x").unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    drop((ro, seg));
    key.assert_gone();
}

#[test]
fn out_of_bounds_accesses_name_offset_length_and_size() {
    let guard = NameGuard::new("shm-bounds");
    let seg = shm::Segment::create(&guard.0, 4096).unwrap();
    seg.write_at(4090, b"123456").unwrap();
    for (offset, len) in [(4091, 6), (4097, 0), (usize::MAX, 2)] {
        let err = seg.write_at(offset, &vec![0; len]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("offset {offset}"))
                && text.contains(&format!("{len} bytes"))
                && text.contains("4096")
                && text.contains(&guard.0),
            "{text}"
        );
    }
    let mut empty = [];
    seg.read_at(4096, &mut empty).unwrap();
    drop(seg);
    guard.assert_gone();
}

/// Runs `open` on a thread and fails if it has not returned within `LIMIT`; on a hang it opens
/// the FIFO `fifo` for writing, which releases a reader blocked in `open`, before failing.
fn open_must_not_block<T: Send + 'static>(
    fifo: &str,
    open: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Error {
    let (tx, rx) = std::sync::mpsc::channel();
    let opener = std::thread::spawn(move || {
        let _ = tx.send(open().err());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Some(err)) => {
            opener.join().unwrap();
            err
        }
        Ok(None) => panic!("opening the FIFO {fifo} succeeded"),
        Err(_) => {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
            panic!("a read-only open of the FIFO {fifo} blocked");
        }
    }
}

/// A FIFO where a segment or file map is expected (anyone may create one in `/dev/shm`) is an
/// error, even for a read-only open, which on a FIFO would wait for a writer forever.
#[test]
fn a_fifo_under_the_name_is_an_error_not_a_hang() {
    let guard = NameGuard::new("shm-fifo");
    let status = Command::new("mkfifo")
        .arg(guard.path())
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", guard.path());
    for read_only in [true, false] {
        let name = guard.0.clone();
        let err = open_must_not_block(&guard.path(), move || {
            shm::Options::new()
                .mode(CreationMode::Open)
                .read_only(read_only)
                .open(&name)
        });
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    let dir = util::TempDir::new("shm-fifo-map");
    let path = dir.join("fifo");
    let status = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
    let fifo = path.display().to_string();
    let err = open_must_not_block(&fifo, move || shm::FileMap::open_read_only(&path));
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}
