//! Helpers shared by the CLI's integration tests (each test file uses some of them).

#![allow(dead_code)]

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

/// Runs `ipcbox args…` with `input` on its stdin; kills it if it has not finished after two
/// minutes.
pub fn ipcbox_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipcbox"));
    cmd.args(args).stdin(Stdio::piped());
    let child = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        cmd.env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"))
    };
    let mut guard = Spawned(Some(child));
    let mut stdin = guard.child().stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, &input);
    });
    let out = guard.wait_output();
    writer.join().expect("stdin writer");
    out
}

/// A process started by a test, killed and reaped on drop unless waited for; killed after two
/// minutes in any case (a watchdog).
pub struct Spawned(Option<std::process::Child>);

impl Spawned {
    /// Starts `command` with its stdout and stderr piped (and stdin, unless set already).
    pub fn start(command: &mut Command) -> Spawned {
        let child = {
            let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            command
                .env_remove("RUST_BACKTRACE")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {command:?}: {e}"))
        };
        let pid = child.id();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(120));
            // The pid may be reused by then only if the test reaped it long ago and ended;
            // a SIGKILL to a stranger is avoided by checking the command line first.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("ipcbox") {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        });
        Spawned(Some(child))
    }

    /// `ipcbox args…`, started.
    pub fn ipcbox(args: &[&str]) -> Spawned {
        Spawned::start(Command::new(env!("CARGO_BIN_EXE_ipcbox")).args(args))
    }

    pub fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("not waited for yet")
    }

    /// Reads stderr up to the line that contains `what`, and returns that line.
    pub fn stderr_line(&mut self, what: &str) -> String {
        use std::io::BufRead;
        let stderr = self.child().stderr.take().expect("stderr");
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read stderr");
            assert!(n > 0, "stderr ended before a line with {what:?}");
            if line.contains(what) {
                // Keep the rest readable for wait_output.
                self.child().stderr = None;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                });
                return line.trim_end().to_owned();
            }
        }
    }

    /// Waits for the process and collects what is left of its output.
    pub fn wait_output(&mut self) -> Output {
        let child = self.0.take().expect("not waited for yet");
        child.wait_with_output().expect("wait for the process")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A name unique to this test process and `tag`.
pub fn unique(tag: &str) -> String {
    format!("ipcbox-clitest-{}-{tag}", std::process::id())
}

/// A directory of its own under Cargo's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(tag));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a test directory");
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[path = "../../../ipcbox/tests/util/python.rs"]
pub mod python;
