//! Named pipes across real processes: shell peers (`echo > F`, `cat F`), EOF per writer,
//! broken pipe, open with a timeout, non-blocking opens, creation modes, removal on drop,
//! errors that name the path.

mod fdpass;
mod util;

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use fdpass::ChildGuard;
use ipcbox::fifo::{self, Fifo, OpenOptions};
use ipcbox::CreationMode;

const LIMIT: Duration = Duration::from_secs(60);

fn sh(script: &str, fifo: &Fifo) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"]).arg(fifo.path());
    cmd
}

#[test]
fn shell_writer_and_shell_reader() {
    let _dog = util::watchdog("FIFO with shell peers", LIMIT);
    let dir = util::TempDir::new("fifo-shell");
    let fifo = Fifo::create(dir.join("f"), CreationMode::CreateExclusive).unwrap();

    let writer = ChildGuard::new(sh("echo ts > \"$1\"", &fifo).spawn().unwrap());
    let mut text = String::new();
    fifo.open_reader()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "ts\n");
    assert!(writer.wait().success());

    let mut reader = ChildGuard::new(
        Command::new("cat")
            .arg(fifo.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut w = fifo.open_writer().unwrap();
    w.write_all(b"from ipcbox\n").unwrap();
    drop(w);
    let mut out = String::new();
    let mut stdout = reader.get().stdout.take().unwrap();
    stdout.read_to_string(&mut out).unwrap();
    assert!(reader.wait().success());
    assert_eq!(out, "from ipcbox\n");
}

#[test]
fn eof_only_after_both_writers_close() {
    let _dog = util::watchdog("FIFO EOF per writer", LIMIT);
    let dir = util::TempDir::new("fifo-eof");
    let fifo = Fifo::create(dir.join("f"), CreationMode::CreateExclusive).unwrap();
    // Non-blocking open so that the writers below do not wait; then blocking reads.
    let mut reader = OpenOptions::new()
        .nonblocking(true)
        .open_reader(fifo.path())
        .unwrap();
    reader.set_nonblocking(false).unwrap();
    let mut w1 = fifo.open_writer().unwrap();
    w1.write_all(b"one\n").unwrap();
    // The second writer is a shell that keeps the FIFO open until its stdin closes.
    let mut w2 = ChildGuard::new(
        sh("exec 3>\"$1\"; echo two >&3; read x || exit 0", &fifo)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut got = [0u8; 8];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"one\ntwo\n");

    drop(w1);
    reader.set_nonblocking(true).unwrap();
    let err = reader.read(&mut got).unwrap_err();
    assert_eq!(
        err.kind(),
        io::ErrorKind::WouldBlock,
        "no EOF while a writer is left"
    );

    reader.set_nonblocking(false).unwrap();
    drop(w2.get().stdin.take());
    assert_eq!(
        reader.read(&mut got).unwrap(),
        0,
        "EOF after the last writer"
    );
    assert!(w2.wait().success());
}

#[test]
fn writer_gets_broken_pipe_when_the_reader_process_is_gone() {
    let _dog = util::watchdog("FIFO broken pipe", LIMIT);
    let dir = util::TempDir::new("fifo-epipe");
    let fifo = Fifo::create(dir.join("f"), CreationMode::CreateExclusive).unwrap();
    let mut reader = ChildGuard::new(
        sh("exec 3<\"$1\"; read x || exit 0", &fifo)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut w = fifo.open_writer().unwrap(); // returns once the shell has opened it
    w.write_all(b"seen by nobody\n").unwrap();
    drop(reader.get().stdin.take());
    assert!(reader.wait().success());
    let err = w.write_all(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
}

#[test]
fn open_with_timeout_times_out_and_the_fifo_still_works() {
    let _dog = util::watchdog("FIFO open timeout", LIMIT);
    let dir = util::TempDir::new("fifo-timeout");
    let fifo = Fifo::create(dir.join("f"), CreationMode::CreateExclusive).unwrap();
    let shown = fifo.path().display().to_string();

    let err = OpenOptions::new()
        .timeout(Duration::from_millis(30))
        .open_reader(fifo.path())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains(&shown), "{err}");
    assert!(err.to_string().contains("30ms"), "{err}");
    let err = OpenOptions::new()
        .timeout(Duration::from_millis(10))
        .open_writer(fifo.path())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");

    // Afterwards: a timed open that a shell peer completes, and plain blocking reads.
    let writer = ChildGuard::new(sh("echo after > \"$1\"", &fifo).spawn().unwrap());
    let mut r = OpenOptions::new()
        .timeout(Duration::from_secs(30))
        .open_reader(fifo.path())
        .unwrap();
    let mut text = String::new();
    r.read_to_string(&mut text).unwrap();
    assert_eq!(text, "after\n");
    assert!(writer.wait().success());
}

#[test]
fn nonblocking_opens() {
    let dir = util::TempDir::new("fifo-nonblock");
    let fifo = Fifo::create(dir.join("f"), CreationMode::CreateExclusive).unwrap();
    let err = OpenOptions::new()
        .nonblocking(true)
        .open_writer(fifo.path())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    assert!(
        err.to_string().contains(&fifo.path().display().to_string()),
        "{err}"
    );

    let mut reader = OpenOptions::new()
        .nonblocking(true)
        .open_reader(fifo.path())
        .unwrap();
    let mut writer = OpenOptions::new()
        .nonblocking(true)
        .open_writer(fifo.path())
        .unwrap();
    let mut buf = [0u8; 16];
    let err = reader.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    writer.write_all(b"now").unwrap();
    assert_eq!(reader.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"now");
}

#[test]
fn creation_modes_and_ownership() {
    let dir = util::TempDir::new("fifo-modes");
    let path = dir.join("f");
    let owner = Fifo::create(&path, CreationMode::CreateExclusive).unwrap();
    assert!(owner.is_owner());

    let err = Fifo::create(&path, CreationMode::CreateExclusive).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    let opened = Fifo::create(&path, CreationMode::OpenOrCreate).unwrap();
    assert!(!opened.is_owner());
    drop(opened);
    let opened = Fifo::create(&path, CreationMode::Open).unwrap();
    assert!(!opened.is_owner());
    drop(opened);
    assert!(
        path.exists(),
        "a handle that only opened the FIFO does not remove it"
    );

    drop(owner);
    assert!(!path.exists(), "the owner removes the FIFO on drop");

    let err = Fifo::create(&path, CreationMode::Open).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    let created = fifo::Options::new()
        .permissions(0o644)
        .mode(CreationMode::OpenOrCreate)
        .create(&path)
        .unwrap();
    assert!(created.is_owner());
    let detached = created.detach();
    assert_eq!(detached, path);
    assert!(path.exists(), "a detached FIFO stays");
    let again = Fifo::create(&path, CreationMode::Open).unwrap();
    again.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn open_errors_name_the_path() {
    let dir = util::TempDir::new("fifo-errors");
    let missing = dir.join("missing");
    let err = fifo::open_reader(&missing).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let regular = dir.join("regular");
    std::fs::write(&regular, b"not a fifo").unwrap();
    let err = fifo::open_writer(&regular).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains(&regular.display().to_string()),
        "{err}"
    );
}

/// Role: drop to user `nobody` (65534), then open the FIFO in the argument for reading
/// without blocking. Exits 0 only on PermissionDenied naming the path.
#[test]
fn role_open_as_nobody() {
    let Some(path) = util::role_arg("open-as-nobody") else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: setuid takes a plain integer; this child process runs this one test only.
    let rc = unsafe { libc::setuid(65534) };
    assert_eq!(rc, 0, "setuid: {}", io::Error::last_os_error());
    let err = OpenOptions::new()
        .nonblocking(true)
        .open_reader(&path)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains(&path), "{err}");
    std::process::exit(0);
}

#[test]
fn permission_denied_for_another_user_names_the_path() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to create a FIFO another user may not open");
        return;
    }
    let _dog = util::watchdog("FIFO permission denied", LIMIT);
    let dir = util::TempDir::new("fifo-perm");
    let fifo = Fifo::create(dir.join("f"), CreationMode::CreateExclusive).unwrap();
    let status = util::role_command(
        "role_open_as_nobody",
        "open-as-nobody",
        &fifo.path().display().to_string(),
    )
    .stdout(Stdio::null())
    .status()
    .unwrap();
    assert_eq!(status.signal(), None, "{status:?}");
    assert!(
        status.success(),
        "the child as nobody could open the 0600 FIFO: {status:?}"
    );
}
