//! Criterion benchmarks of `ipcbox::pipe` against the bare `read(2)`/`write(2)` calls on the
//! same kind of pipe: 64-byte messages written and read back in one process, and round trips
//! to an echoing child process (this bench binary re-run with `IPCBOX_BENCH_PIPE_ECHO` set,
//! the pipes as its stdin and stdout).
//!
//! `cargo bench -p ipcbox --bench pipe`. For the mechanisms side by side between two pinned
//! processes, see `ipcbox bench`.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{Child, Command, Stdio};

use criterion::Criterion;

/// When set, the binary is the echoing child instead of the benchmark.
const ECHO_ENV: &str = "IPCBOX_BENCH_PIPE_ECHO";
const SIZE: usize = 64;

fn raw_write_all(fd: BorrowedFd<'_>, mut msg: &[u8]) -> io::Result<()> {
    while !msg.is_empty() {
        let n = rustix::io::write(fd, msg)?;
        msg = &msg[n..];
    }
    Ok(())
}

/// Fills `buf`; `Ok(false)` on end of file before the first byte.
fn raw_read_exact(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, &mut buf[got..])? {
            0 if got == 0 => return Ok(false),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    Ok(true)
}

/// The child: echoes 64-byte messages from stdin to stdout until end of file.
fn echo() -> io::Result<()> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut buf = [0; SIZE];
    while raw_read_exact(stdin.as_fd(), &mut buf)? {
        raw_write_all(stdout.as_fd(), &buf)?;
    }
    Ok(())
}

fn one_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipe 64 B write+read, one process");
    let msg = [0xa5u8; SIZE];
    let mut buf = [0u8; SIZE];

    let (mut reader, mut writer) = ipcbox::pipe::new().expect("pipe");
    group.bench_function("ipcbox", |b| {
        b.iter(|| {
            writer.write_all(black_box(&msg)).expect("write");
            reader.read_exact(black_box(&mut buf)).expect("read");
        })
    });

    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    group.bench_function("raw", |b| {
        b.iter(|| {
            raw_write_all(w.as_fd(), black_box(&msg)).expect("write");
            raw_read_exact(r.as_fd(), black_box(&mut buf)).expect("read");
        })
    });
    group.finish();
}

/// Starts the echoing child; returns it with the parent's ends (to it, from it).
fn spawn_echo() -> (Child, ipcbox::pipe::Writer, ipcbox::pipe::Reader) {
    let (child_in, to_child) = ipcbox::pipe::new().expect("pipe");
    let (from_child, child_out) = ipcbox::pipe::new().expect("pipe");
    let child = Command::new(std::env::current_exe().expect("current exe"))
        .env(ECHO_ENV, "1")
        .stdin(Stdio::from(child_in))
        .stdout(Stdio::from(child_out))
        .spawn()
        .expect("start the echo child");
    (child, to_child, from_child)
}

fn two_processes(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipe 64 B round trip, two processes");
    let msg = [0xa5u8; SIZE];
    let mut buf = [0u8; SIZE];

    let (mut child, mut to_child, mut from_child) = spawn_echo();
    group.bench_function("ipcbox", |b| {
        b.iter(|| {
            to_child.write_all(black_box(&msg)).expect("write");
            from_child.read_exact(black_box(&mut buf)).expect("read");
        })
    });
    drop(to_child);
    child.wait().expect("wait for the echo child");

    let (mut child, to_child, from_child) = spawn_echo();
    group.bench_function("raw", |b| {
        b.iter(|| {
            raw_write_all(to_child.as_fd(), black_box(&msg)).expect("write");
            assert!(raw_read_exact(from_child.as_fd(), black_box(&mut buf)).expect("read"));
        })
    });
    drop(to_child);
    child.wait().expect("wait for the echo child");
    group.finish();
}

fn main() {
    if std::env::var_os(ECHO_ENV).is_some() {
        if let Err(err) = echo() {
            eprintln!("pipe bench echo child: {err}");
            std::process::exit(1);
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    one_process(&mut c);
    two_processes(&mut c);
    c.final_summary();
}
