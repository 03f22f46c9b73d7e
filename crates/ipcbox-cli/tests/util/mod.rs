//! Helpers shared by the CLI's integration tests.

use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// Held while a test starts a process, and while one writes a program it will run: a process
/// started while another thread still has a new program open for writing would inherit that
/// descriptor until it execs, and running the program then fails with `ETXTBSY`.
pub static SPAWN: Mutex<()> = Mutex::new(());

/// Runs `ipcbox args…`; kills it if it has not finished after two minutes.
pub fn ipcbox(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_ipcbox")).args(args))
}

/// Runs `command` with its output captured; kills it if it has not finished after two minutes.
pub fn run(command: &mut Command) -> Output {
    let child = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        command
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"))
    };
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid");
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(120)).is_err() {
            // Still unreaped (the main thread is in wait_with_output), so the pid is its own.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    });
    let out = child.wait_with_output().expect("wait for the process");
    let _ = done.send(());
    watchdog.join().expect("watchdog thread");
    assert!(
        out.status.code().is_some(),
        "{command:?} was killed: {out:?}"
    );
    out
}
