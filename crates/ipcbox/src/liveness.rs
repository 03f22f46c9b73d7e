//! Whether a process or a thread still lives: the one answer every lock, queue, store and
//! listing of ipcbox goes by.
//!
//! - A process or thread is named by its ID and, where the caller recorded it, its start time
//!   (field 22 of `/proc/<id>/stat`, clock ticks since boot), so a recycled ID does not pass
//!   for the one that died.
//! - A zombie is dead: a parent that has not reaped its killed child must still learn that
//!   the child is gone.
//! - An ID that names no process (a thread of another process, or nothing) is a dead process.
//! - Where the system cannot tell (no `/proc`, this process out of file descriptors or
//!   memory), the answer is [`Liveness::Unknown`], and callers treat it as alive: nothing is
//!   taken over or reclaimed on doubt. So callers write `!= Liveness::Dead`.
//! - All processes comparing IDs must share a PID namespace (and a time namespace, since start
//!   times are read through `/proc`).

use std::io;
use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::process::PidfdFlags;

/// What is known of a process or thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// It runs, and where a start time was given, it is the one that started then.
    Alive,
    /// It has ended (or is a zombie), or its ID now names another process or thread.
    Dead,
    /// The system could not tell; treat as alive.
    Unknown,
}

/// What `/proc/<id>/stat` says of a process or thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The start time in clock ticks since boot.
    pub(crate) start: u64,
    /// Not a zombie (nor dead).
    pub(crate) running: bool,
}

/// Reads `/proc/<id>/stat`: `Ok(None)` when there is no such entry (no such process or thread,
/// or `/proc` is not mounted), `Err` when it could not be read or parsed (out of file
/// descriptors or memory), so that a caller deciding whether an owner is dead does not take
/// the second for the first.
pub(crate) fn stat(id: u32) -> io::Result<Option<Stat>> {
    let text = match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        Ok(text) => text,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let parsed = (|| {
        // The command name in parentheses may contain anything, so parse after the last ')'.
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?;
        // After the state, field 4 (ppid) is index 0 here; starttime is field 22, index 18.
        let start = fields.nth(18)?.parse().ok()?;
        Some(Stat {
            start,
            running: !matches!(state, "Z" | "X" | "x"),
        })
    })();
    parsed.map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{id}/stat: unexpected format"),
        )
    })
}

/// The start time of process or thread `id`, if `/proc` tells it.
pub(crate) fn start_time(id: u32) -> Option<u64> {
    stat(id).ok().flatten().map(|s| s.start)
}

/// This process: its ID and its start time (0 if `/proc` does not tell).
pub(crate) fn me() -> (u32, u64) {
    let pid = std::process::id();
    (pid, start_time(pid).unwrap_or(0))
}

/// Process `pid`, if its start time passes `same` (given the start time whenever `/proc`
/// shows it; a process hidden from `/proc` cannot be told from another and passes).
pub(crate) fn process(pid: u32, same: impl FnOnce(u64) -> bool) -> Liveness {
    check(pid, PidfdFlags::empty(), same)
}

/// Thread `tid` (of any process), as [`process`].
pub(crate) fn thread(tid: u32, same: impl FnOnce(u64) -> bool) -> Liveness {
    check(tid, PidfdFlags::from_bits_retain(PIDFD_THREAD), same)
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for one thread, readable once that thread has exited.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

fn check(id: u32, flags: PidfdFlags, same: impl FnOnce(u64) -> bool) -> Liveness {
    let Some(pid) = i32::try_from(id)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Liveness::Dead;
    };
    match rustix::process::pidfd_open(pid, flags) {
        // A pidfd pins the ID while `/proc` is read: what it says is about this very process
        // or thread if the pidfd has not become readable (exited) afterwards.
        Ok(fd) => by_pidfd(id, &fd, same),
        Err(Errno::SRCH) => Liveness::Dead,
        // Without `PIDFD_THREAD` the ID of a thread that leads no process is refused (ENOENT
        // on current kernels, EINVAL on older ones): it names no process.
        Err(Errno::NOENT | Errno::INVAL) if flags.is_empty() => Liveness::Dead,
        // No pidfds (before Linux 5.3), no thread pidfds (before 6.9), or this process out of
        // file descriptors: `/proc` alone, which finds any thread by its ID.
        Err(_) => by_proc(id, same),
    }
}

fn by_pidfd(id: u32, fd: &OwnedFd, same: impl FnOnce(u64) -> bool) -> Liveness {
    let mut verdict = match stat(id) {
        Ok(Some(s)) if !s.running || !same(s.start) => return Liveness::Dead,
        Ok(Some(_)) => Liveness::Alive,
        // Hidden from `/proc` (`hidepid`): alive as far as the pidfd tells.
        Ok(None) => Liveness::Alive,
        Err(_) => Liveness::Unknown,
    };
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => {}
        Ok(_) => verdict = Liveness::Dead,
        Err(_) => verdict = Liveness::Unknown,
    }
    verdict
}

fn by_proc(id: u32, same: impl FnOnce(u64) -> bool) -> Liveness {
    match stat(id) {
        Ok(Some(s)) if s.running && same(s.start) => Liveness::Alive,
        Ok(Some(_)) => Liveness::Dead,
        Ok(None) if proc_mounted() => Liveness::Dead,
        Ok(None) | Err(_) => Liveness::Unknown,
    }
}

fn proc_mounted() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The PID of a process that has exited and been reaped.
    pub(crate) fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn this_process_lives_and_is_the_one_that_started_then() {
        let (pid, start) = me();
        assert!(start > 0);
        assert_eq!(process(pid, |s| s == start), Liveness::Alive);
        assert_eq!(process(pid, |s| s == start + 1), Liveness::Dead);
        assert_eq!(process(pid, |_| true), Liveness::Alive);
    }

    #[test]
    fn a_reaped_process_and_absurd_ids_are_dead() {
        assert_eq!(process(dead_pid(), |_| true), Liveness::Dead);
        assert_eq!(process(0, |_| true), Liveness::Dead);
        assert_eq!(process(u32::MAX, |_| true), Liveness::Dead);
        assert_eq!(thread(0, |_| true), Liveness::Dead);
    }

    #[test]
    fn a_zombie_is_dead_until_and_after_it_is_reaped() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Its exit is seen through its own pidfd, without reaping it.
        let fd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            PidfdFlags::empty(),
        )
        .unwrap();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut fds, None).unwrap();
        assert_eq!(process(pid, |_| true), Liveness::Dead);
        child.wait().unwrap();
        assert_eq!(process(pid, |_| true), Liveness::Dead);
    }

    #[test]
    fn a_thread_is_alive_while_it_runs_and_is_no_process() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            ready_tx.send(tid).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = ready_rx.recv().unwrap();
        let start = start_time(tid).expect("the thread's start time");
        assert_eq!(thread(tid, |s| s == start), Liveness::Alive);
        assert_eq!(thread(tid, |s| s != start), Liveness::Dead);
        // A thread that leads no process is not a live process.
        assert_eq!(process(tid, |_| true), Liveness::Dead);
        done_tx.send(()).unwrap();
        worker.join().unwrap();
        // The kernel reaps the thread a moment after `join` returns; it is never alive again.
        while thread(tid, |s| s == start) != Liveness::Dead {
            std::thread::yield_now();
        }
    }
}
