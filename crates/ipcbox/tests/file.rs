//! File exchange across real processes: atomic replacement seen by a concurrent reader,
//! exclusive and shared `flock` locks between processes, errors that leave the old content.

mod fdpass;
mod util;

use std::io::{self, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fdpass::{next_report, report, report_writer, spawn_reporting, ChildGuard};
use ipcbox::file::{self, Lock};
use ipcbox::pipe;

const LIMIT: Duration = Duration::from_secs(120);
const SIZE: usize = 64 * 1024;
const END: &[u8] = b"END";

fn content(byte: u8) -> Vec<u8> {
    vec![byte; SIZE]
}

fn spawn_role(test_fn: &str, role: &str, path: &Path, stdin: Stdio) -> (ChildGuard, pipe::Reader) {
    let mut cmd = util::role_command(test_fn, role, &path.display().to_string());
    spawn_reporting(cmd.stdout(Stdio::null()).stdin(stdin))
}

/// Role: read the file in the argument over and over until it says END. Every read must be
/// all `a`, all `b` or END. Reports `R` after the first read, then exits 0, or 1 on a mix.
#[test]
fn role_atomic_reader() {
    let Some(path) = util::role_arg("atomic-reader") else {
        return;
    };
    let mut out = report_writer();
    let (a, b) = (content(b'a'), content(b'b'));
    let mut first = true;
    loop {
        let got = file::read(&path).unwrap();
        if got == END {
            std::process::exit(0);
        }
        if got != a && got != b {
            eprintln!("mixed content: {} bytes", got.len());
            std::process::exit(1);
        }
        if first {
            report(&mut out, b'R');
            first = false;
        }
    }
}

#[test]
fn atomic_replace_is_seen_whole_by_a_concurrent_reader() {
    let _dog = util::watchdog("atomic replace", LIMIT);
    let dir = util::TempDir::new("file-atomic");
    let path = dir.join("data");
    file::write_atomic(&path, content(b'a')).unwrap();
    let (child, mut reports) =
        spawn_role("role_atomic_reader", "atomic-reader", &path, Stdio::null());
    assert_eq!(next_report(&mut reports), Some(b'R'));
    for i in 0..40 {
        let byte = if i % 2 == 0 { b'b' } else { b'a' };
        file::write_atomic(&path, content(byte)).unwrap();
    }
    file::write_atomic(&path, END).unwrap();
    let status = child.wait();
    assert!(status.success(), "the reader saw a mixed file: {status:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("data")],
        "no temporary file left"
    );
}

#[test]
fn failed_replace_leaves_the_old_content_and_no_temporary_file() {
    let dir = util::TempDir::new("file-failed");
    let target = dir.join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), b"old").unwrap();
    let err = file::write_atomic(&target, b"new").unwrap_err();
    assert!(
        err.to_string().contains(&target.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"old");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, vec![std::ffi::OsString::from("target")]);
}

/// Role: while the parent holds an exclusive lock on the file in the argument: `try_` fails
/// (`B`), a timed lock times out (`T`), then a blocking lock succeeds once released (`A`).
#[test]
fn role_lock_contender() {
    let Some(path) = util::role_arg("lock-contender") else {
        return;
    };
    let mut out = report_writer();
    let mut lock = Lock::open(&path).unwrap();
    report(
        &mut out,
        if lock.try_lock_exclusive().unwrap().is_none() {
            b'B'
        } else {
            b'F'
        },
    );
    let timed = match lock.lock_exclusive_timeout(Duration::from_millis(20)) {
        Ok(None) => b'T',
        _ => b'X',
    };
    report(&mut out, timed);
    let guard = lock.lock_exclusive().unwrap();
    assert!(guard.is_exclusive());
    report(&mut out, b'A');
    std::process::exit(0);
}

#[test]
fn exclusive_lock_excludes_another_process_until_released() {
    let _dog = util::watchdog("exclusive lock across processes", LIMIT);
    let dir = util::TempDir::new("file-lock-ex");
    let path = dir.join("lock");
    let mut lock = Lock::open(&path).unwrap();
    let guard = lock.lock_exclusive().unwrap();
    let (child, mut reports) = spawn_role(
        "role_lock_contender",
        "lock-contender",
        &path,
        Stdio::null(),
    );
    assert_eq!(
        next_report(&mut reports),
        Some(b'B'),
        "try_lock must fail while held"
    );
    assert_eq!(
        next_report(&mut reports),
        Some(b'T'),
        "the timed lock must time out"
    );
    reports.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let err = reports.read(&mut b).unwrap_err();
    assert_eq!(
        err.kind(),
        io::ErrorKind::WouldBlock,
        "acquired while still held"
    );
    reports.set_nonblocking(false).unwrap();
    drop(guard);
    assert_eq!(next_report(&mut reports), Some(b'A'));
    assert!(child.wait().success());
}

/// Role: take a shared lock with `try_` (`S` if it succeeded, `N` if not), hold it until
/// stdin closes.
#[test]
fn role_shared_holder() {
    let Some(path) = util::role_arg("shared-holder") else {
        return;
    };
    let mut out = report_writer();
    let mut lock = Lock::open(&path).unwrap();
    let guard = lock.try_lock_shared().unwrap();
    report(&mut out, if guard.is_some() { b'S' } else { b'N' });
    let _ = io::stdin().read_to_end(&mut Vec::new());
    drop(guard);
    std::process::exit(0);
}

#[test]
fn shared_locks_coexist_and_exclude_an_exclusive_one() {
    let _dog = util::watchdog("shared locks across processes", LIMIT);
    let dir = util::TempDir::new("file-lock-sh");
    let path = dir.join("lock");
    let mut mine = Lock::open(&path).unwrap();
    let mut other = Lock::open(&path).unwrap();
    let shared = mine.lock_shared().unwrap();
    let (mut child, mut reports) =
        spawn_role("role_shared_holder", "shared-holder", &path, Stdio::piped());
    assert_eq!(
        next_report(&mut reports),
        Some(b'S'),
        "a second shared lock must coexist"
    );
    assert!(other.try_lock_exclusive().unwrap().is_none());
    drop(child.get().stdin.take());
    assert!(child.wait().success());
    assert!(
        other.try_lock_exclusive().unwrap().is_none(),
        "still held shared by us"
    );
    drop(shared);
    assert!(other.try_lock_exclusive().unwrap().is_some());
}
