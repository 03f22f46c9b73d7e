//! Handing a pipe end to a child process as a file descriptor other than 0, 1 or 2, and
//! taking it up in the child: how role children report back, since their stdout belongs to
//! libtest.

#![allow(dead_code)]
#![allow(unsafe_code)] // pre_exec and from_raw_fd are unsafe by nature

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use ipcbox::pipe;

/// The descriptor number children get their report pipe on.
pub const REPORT_FD: RawFd = 3;

/// Makes `fd` the child's descriptor `target` (`dup2` between fork and exec; `dup2` clears
/// close-on-exec on the copy). The caller keeps `fd` open until `spawn` returns.
pub fn pass_fd(cmd: &mut Command, fd: &impl AsRawFd, target: RawFd) {
    let raw = fd.as_raw_fd();
    // SAFETY: the closure only calls dup2 and fcntl, which are async-signal-safe, and touches
    // no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if raw == target {
                // dup2 onto itself keeps close-on-exec: clear it by hand.
                if libc::fcntl(raw, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, target) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Spawns `cmd` with a new pipe's writer as its [`REPORT_FD`] and returns the guarded child and
/// the pipe's reader (which sees EOF once the child and everything it started have exited).
pub fn spawn_reporting(cmd: &mut Command) -> (ChildGuard, pipe::Reader) {
    let (reader, writer) = pipe::new().expect("report pipe");
    pass_fd(cmd, &writer, REPORT_FD);
    let child = ChildGuard::spawn(cmd);
    drop(writer);
    (child, reader)
}

/// In a role child: the pipe writer the parent passed as [`REPORT_FD`].
pub fn report_writer() -> pipe::Writer {
    // SAFETY: the parent put an open pipe writer on REPORT_FD for this child (pass_fd) and
    // nothing else in this process owns that descriptor.
    pipe::Writer::from(unsafe { OwnedFd::from_raw_fd(REPORT_FD) })
}

/// Writes one report byte (children report steps as single letters).
pub fn report(w: &mut pipe::Writer, byte: u8) {
    w.write_all(&[byte]).expect("write report byte");
}

/// Reads one report byte; `None` at end of file (the child exited without reporting).
pub fn next_report(r: &mut pipe::Reader) -> Option<u8> {
    let mut b = [0u8; 1];
    match r.read(&mut b) {
        Ok(1) => Some(b[0]),
        Ok(_) => None,
        Err(e) => panic!("read report: {e}"),
    }
}

pub use crate::util::ChildGuard;
