//! Signals across real processes: a signal sent to a child reaches its handler (iterator and
//! flag), sending to a process group, timeouts around blocking calls, child-exit notification,
//! refusing signals that cannot be handled.

mod fdpass;
mod util;

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use fdpass::{next_report, report, report_writer, spawn_reporting, ChildGuard};
use ipcbox::signal::{self, ChildExits, Signal, Signals};
use ipcbox::{pipe, Pid};

const LIMIT: Duration = Duration::from_secs(60);

/// Role: collect USR1 and USR2 with `Signals`, report `R` (ready), then report each signal
/// received by its number until USR2 arrives.
#[test]
fn role_signals_iterator() {
    if util::role_arg("signals-iterator").is_none() {
        return;
    }
    let mut signals = Signals::new([Signal::USR1, Signal::USR2]).unwrap();
    let mut out = report_writer();
    report(&mut out, b'R');
    for sig in signals.forever() {
        report(&mut out, sig.as_raw() as u8);
        if sig == Signal::USR2 {
            break;
        }
    }
    std::process::exit(0);
}

/// Role: register a flag for TERM (whose default would kill the process), report `R`, wait
/// until the flag is set, then exit with code 42.
#[test]
fn role_signal_flag() {
    if util::role_arg("signal-flag").is_none() {
        return;
    }
    let term = signal::flag(Signal::TERM).unwrap();
    let mut out = report_writer();
    report(&mut out, b'R');
    // The flag alone gives no wake-up: poll it (the parent's watchdog bounds the wait).
    while !term.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_millis(1));
    }
    std::process::exit(42);
}

fn spawn_role(test_fn: &str, role: &str) -> (ChildGuard, pipe::Reader) {
    spawn_reporting(util::role_command(test_fn, role, "").stdout(Stdio::null()))
}

#[test]
fn signals_sent_to_a_child_reach_its_iterator() {
    let _dog = util::watchdog("signals to a child's iterator", LIMIT);
    let (mut child, mut reports) = spawn_role("role_signals_iterator", "signals-iterator");
    assert_eq!(next_report(&mut reports), Some(b'R'));
    let pid = Pid::from_raw(child.get().id() as i32).unwrap();
    signal::send(pid, Signal::USR1).unwrap();
    assert_eq!(next_report(&mut reports), Some(Signal::USR1.as_raw() as u8));
    signal::send(pid, Signal::USR2).unwrap();
    assert_eq!(next_report(&mut reports), Some(Signal::USR2.as_raw() as u8));
    assert!(child.wait().success());
}

#[test]
fn a_signal_sent_to_a_child_sets_its_flag() {
    let _dog = util::watchdog("signal to a child's flag", LIMIT);
    let (mut child, mut reports) = spawn_role("role_signal_flag", "signal-flag");
    assert_eq!(next_report(&mut reports), Some(b'R'));
    let pid = Pid::from_raw(child.get().id() as i32).unwrap();
    signal::send(pid, Signal::TERM).unwrap();
    let status = child.wait();
    assert_eq!(status.signal(), None, "TERM killed the child: {status:?}");
    assert_eq!(status.code(), Some(42));
}

#[test]
fn send_to_a_process_group_reaches_every_member() {
    let _dog = util::watchdog("send to a process group", LIMIT);
    let leader = ChildGuard::new(
        Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let mut leader = leader;
    let pgid = Pid::from_raw(leader.get().id() as i32).unwrap();
    let member = ChildGuard::new(
        Command::new("sleep")
            .arg("1000")
            .process_group(pgid.as_raw())
            .spawn()
            .unwrap(),
    );
    signal::send_group(pgid, Signal::TERM).unwrap();
    for status in [leader.wait(), member.wait()] {
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    }
}

#[test]
fn send_errors_name_the_target() {
    // Above the kernel's largest PID (pid_max is at most 2^22): no such process.
    let pid = Pid::from_raw(0x3fff_fff0).unwrap();
    let err = signal::send(pid, Signal::USR1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("SIGUSR1"), "{err}");
    assert!(err.to_string().contains(&pid.to_string()), "{err}");
    let err = signal::send_group(pid, Signal::TERM).unwrap_err();
    assert!(err.to_string().contains("process group"), "{err}");
}

#[test]
fn with_timeout_interrupts_a_blocking_read_and_the_pipe_still_works() {
    let _dog = util::watchdog("with_timeout around a pipe read", LIMIT);
    let (mut reader, writer) = pipe::new().unwrap();
    let mut buf = [0u8; 16];
    let err =
        signal::with_timeout(Duration::from_millis(25), || reader.read(&mut buf)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("25ms"), "{err}");

    // A child writes later; a plain blocking read (no timeout) in this same thread must not
    // be hit by a stray timeout signal.
    let mut child = ChildGuard::new(
        Command::new("sh")
            .args(["-c", "read x; printf late"])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(writer))
            .spawn()
            .unwrap(),
    );
    writeln!(child.get().stdin.take().unwrap(), "go").unwrap();
    // `read` itself, not `read_to_string`, which would hide an EINTR by retrying.
    let mut text = Vec::new();
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after the timeout: {e}"),
        }
    }
    assert_eq!(text, b"late");
    assert!(child.wait().success());
}

#[test]
fn with_timeout_returns_the_result_when_the_call_finishes_in_time() {
    let _dog = util::watchdog("with_timeout in time", LIMIT);
    let (mut reader, writer) = pipe::new().unwrap();
    let child = ChildGuard::new(
        Command::new("printf")
            .arg("in time")
            .stdout(Stdio::from(writer))
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 7];
    let n = signal::with_timeout(Duration::from_secs(30), || reader.read(&mut buf)).unwrap();
    assert!(n > 0);
    assert!(b"in time".starts_with(&buf[..n]));
    assert!(child.wait().success());
    // Many short timeouts in a row: each cleans up its timer.
    for _ in 0..50 {
        let err = signal::with_timeout(Duration::from_micros(200), || {
            let mut b = [0u8; 1];
            let mut empty = pipe::new()?;
            empty.0.read(&mut b)
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}

#[test]
fn child_exit_notification_fires_when_a_child_exits() {
    let _dog = util::watchdog("child exit notification", LIMIT);
    let mut exits = ChildExits::new().unwrap();
    let mut child = ChildGuard::new(
        Command::new("sh")
            .args(["-c", "read x; exit 7"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        child.get().try_wait().unwrap().is_none(),
        "alive until its stdin closes"
    );
    drop(child.get().stdin.take());
    // Other tests' children may wake us too: reap ours after every notification.
    let status = loop {
        exits.wait().unwrap();
        if let Some(status) = child.get().try_wait().unwrap() {
            break status;
        }
    };
    assert_eq!(status.code(), Some(7));
}

#[test]
fn signals_that_cannot_be_handled_are_refused() {
    for sig in [
        Signal::KILL,
        Signal::STOP,
        Signal::SEGV,
        signal::TIMEOUT_SIGNAL,
    ] {
        let err = Signals::new([sig]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(&sig.to_string()), "{err}");
        assert!(signal::flag(sig).is_err());
    }
}

#[test]
fn pending_and_wait_timeout_in_one_process() {
    let mut signals = Signals::new([Signal::WINCH]).unwrap();
    assert!(signals.pending().is_empty());
    assert!(signals
        .wait_timeout(Duration::from_millis(5))
        .unwrap()
        .is_empty());
    // Sent to the process, the signal may be handled by any thread (libtest's main thread,
    // say), some time after `send` returns: wait for it.
    signal::send(Pid::this(), Signal::WINCH).unwrap();
    assert_eq!(
        signals.wait_timeout(Duration::from_secs(30)).unwrap(),
        vec![Signal::WINCH]
    );
    // Sent to this thread, it is handled before `raise` returns: both arrivals are in before
    // we collect, and count once.
    for _ in 0..2 {
        #[allow(unsafe_code)]
        // SAFETY: `raise` takes a signal number and touches no memory of ours; the handler
        // signal-hook installed for WINCH only sets a flag and writes to a pipe.
        let rc = unsafe { libc::raise(libc::SIGWINCH) };
        assert_eq!(rc, 0, "raise: {}", io::Error::last_os_error());
    }
    assert_eq!(signals.pending(), vec![Signal::WINCH]);
    assert!(signals.pending().is_empty(), "collected once");
}
