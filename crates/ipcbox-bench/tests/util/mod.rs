//! Helpers shared by the bench's integration tests.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `ipcbox-bench args…`; kills it if it has not finished after two minutes.
pub fn ipcbox_bench(args: &[&str]) -> Output {
    ipcbox_bench_env(args, &[])
}

/// [`ipcbox_bench`] with the environment variables `env` set.
pub fn ipcbox_bench_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ipcbox-bench"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the ipcbox-bench binary");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid");
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(120)).is_err() {
            // Still unreaped (the main thread is in wait_with_output), so the pid is its own.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    });
    let out = child
        .wait_with_output()
        .expect("wait for the ipcbox-bench binary");
    let _ = done.send(());
    watchdog.join().expect("watchdog thread");
    assert!(
        out.status.code().is_some(),
        "ipcbox-bench {args:?} was killed: {out:?}"
    );
    out
}
