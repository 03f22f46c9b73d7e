//! Anonymous pipes across real processes: EPIPE instead of SIGPIPE death, non-blocking reads,
//! EOF when the last writer (also one held by a child) closes, capacity, ends handed to
//! children as stdio and as other descriptors.

mod fdpass;
mod util;

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use fdpass::{spawn_reporting, ChildGuard, REPORT_FD};
use ipcbox::pipe;

const LIMIT: Duration = Duration::from_secs(60);

/// Role: with SIGPIPE back at its default (terminate), create a pipe, close the reader and
/// write. Exits 0 only if the write failed with BrokenPipe and the process lived on.
#[test]
fn role_write_without_reader() {
    if util::role_arg("write-without-reader").is_none() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler code; this child
    // process runs this one test only.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(old, libc::SIG_ERR);
    let (reader, mut writer) = pipe::new().unwrap();
    drop(reader);
    let err = writer.write(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    std::process::exit(0);
}

#[test]
fn writer_without_reader_gets_epipe_and_lives_in_a_default_sigpipe_process() {
    let _dog = util::watchdog("EPIPE child", LIMIT);
    let status = util::role_command("role_write_without_reader", "write-without-reader", "")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        None,
        "the child died of a signal: {status:?}"
    );
    assert!(status.success(), "{status:?}");
}

#[test]
fn writer_whose_reader_process_exited_gets_epipe() {
    let _dog = util::watchdog("EPIPE from a child reader", LIMIT);
    let (reader, mut writer) = pipe::new().unwrap();
    // `head -c 1` reads one byte and exits: its stdin is the only reader left.
    let child = Command::new("head")
        .args(["-c", "1"])
        .stdin(Stdio::from(reader))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writer.write_all(b"a").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"a");
    // A child another test forked while `reader` was open here may still hold a copy of it
    // (until it execs): writes then succeed, and block once the pipe is full, until that copy
    // closes too. So write until the error, which must be EPIPE, not death.
    let err = loop {
        if let Err(e) = writer.write_all(b"more") {
            break e;
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
}

#[test]
fn nonblocking_read_of_an_empty_pipe_would_block() {
    let (mut reader, mut writer) = pipe::Options::new().nonblocking(true).create().unwrap();
    let mut buf = [0u8; 8];
    let err = reader.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    writer.write_all(b"hi").unwrap();
    assert_eq!(reader.read(&mut buf).unwrap(), 2);
    drop(writer);
    // Blocking for the EOF read: a test thread spawning a child at this moment holds a copy
    // of the writer from its fork until its exec closes it (close-on-exec), and a non-blocking
    // read would see that window as WouldBlock.
    reader.set_nonblocking(false).unwrap();
    assert_eq!(reader.read(&mut buf).unwrap(), 0, "EOF, not WouldBlock");
}

#[test]
fn eof_only_after_the_writer_held_by_a_child_closes() {
    let _dog = util::watchdog("EOF after child writer", LIMIT);
    let (mut reader, writer) = pipe::new().unwrap();
    let mut child = ChildGuard::new(
        Command::new("sh")
            .args(["-c", "echo hi; read x || exit 0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(writer.try_clone().unwrap()))
            .spawn()
            .unwrap(),
    );
    drop(writer); // the child's stdout is now the only writer
    let mut line = [0u8; 3];
    reader.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"hi\n");
    reader.set_nonblocking(true).unwrap();
    let err = reader.read(&mut line).unwrap_err();
    assert_eq!(
        err.kind(),
        io::ErrorKind::WouldBlock,
        "no EOF while the child lives"
    );
    reader.set_nonblocking(false).unwrap();
    drop(child.get().stdin.take()); // `read x` sees EOF, the shell exits
    assert_eq!(reader.read(&mut line).unwrap(), 0);
    assert!(child.wait().success());
}

#[test]
fn capacity_query_resize_and_absurd_size() {
    let (reader, writer) = pipe::new().unwrap();
    assert!(reader.capacity().unwrap() >= 4096);
    let got = writer.set_capacity(1 << 20).unwrap();
    assert!(got >= 1 << 20, "{got}");
    assert_eq!(
        reader.capacity().unwrap(),
        got,
        "both ends share one buffer"
    );
    let small = reader.set_capacity(8192).unwrap();
    assert_eq!(writer.capacity().unwrap(), small);
    for absurd in [usize::MAX, 1 << 40] {
        let err = writer.set_capacity(absurd).unwrap_err();
        assert!(err.to_string().contains(&absurd.to_string()), "{err}");
    }
    assert_eq!(
        writer.capacity().unwrap(),
        small,
        "a failed resize changes nothing"
    );
}

#[test]
fn pipe_ends_as_a_childs_stdin_and_stdout() {
    let _dog = util::watchdog("pipe ends as stdio", LIMIT);
    let (to_child_r, mut to_child_w) = pipe::new().unwrap();
    let (mut from_child_r, from_child_w) = pipe::new().unwrap();
    let child = ChildGuard::new(
        Command::new("tr")
            .args(["a-z", "A-Z"])
            .stdin(to_child_r)
            .stdout(from_child_w)
            .spawn()
            .unwrap(),
    );
    to_child_w.write_all(b"hello pipe\n").unwrap();
    drop(to_child_w);
    let mut out = String::new();
    from_child_r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "HELLO PIPE\n");
    assert!(child.wait().success());
}

#[test]
fn pipe_end_as_a_childs_descriptor_3() {
    let _dog = util::watchdog("pipe end as fd 3", LIMIT);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("echo via-fd-{REPORT_FD} >&{REPORT_FD}")]);
    let (child, mut reader) = spawn_reporting(&mut cmd);
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    assert_eq!(out, "via-fd-3\n");
    assert!(child.wait().success());
}
