//! Helpers shared by the integration tests: unique names, temporary directories, child roles
//! (the test binary re-run as another process), child guards and watchdogs.

#![allow(dead_code)]

use std::borrow::BorrowMut;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A name no other test, process or run uses: `ipcbox-test-<tag>-<pid>-<n>-<nanos>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("ipcbox-test-{tag}-{}-{n}-{nanos}", std::process::id())
}

/// Whether the POSIX shared-memory object `name` (with or without its leading `/`) exists in
/// `/dev/shm`: for asserting that nothing is left behind.
pub fn shm_exists(name: &str) -> bool {
    Path::new("/dev/shm")
        .join(name.trim_start_matches('/'))
        .exists()
}

/// A fresh directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(tag));
        std::fs::create_dir(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Aborts the whole test process if it is not dropped within `limit`: a hang fails the test
/// (with a message naming it) instead of blocking the run forever.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
}

pub fn watchdog(what: &str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let what = what.to_owned();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: {what} did not finish within {limit:?}");
            std::process::abort();
        }
    });
    Watchdog { done: Some(tx) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits until `done()` holds, checking every millisecond; panics naming `what` after `limit`.
///
/// For conditions only the mechanism under test can tell (a queue drained by other processes,
/// a queue filled by a child that then blocks), where there is nothing to wait on: it orders
/// nothing by time, it only looks again until the state is there.
pub fn poll_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

const ROLE_ENV: &str = "IPCBOX_TEST_ROLE";
const ARG_ENV: &str = "IPCBOX_TEST_ARG";

/// In a role test (a `#[test]` function that only does something when the test binary is re-run
/// as a child): `Some(arg)` when this process was started by [`role_command`] for `role`.
pub fn role_arg(role: &str) -> Option<String> {
    match std::env::var(ROLE_ENV) {
        Ok(r) if r == role => Some(std::env::var(ARG_ENV).unwrap_or_default()),
        _ => None,
    }
}

/// A command that re-runs this test binary as a child playing `role`: it runs only the test
/// function `test_fn` (named as libtest prints it, e.g. `role_reader`), which reads `arg`
/// through [`role_arg`]. The child's stdout is discarded unless the caller sets it (it would
/// carry libtest's own lines), so roles report through the mechanism under test, their exit
/// status, or a stdout the caller pipes.
pub fn role_command(test_fn: &str, role: &str, arg: &str) -> Command {
    role_command_under(&[], test_fn, role, arg)
}

/// As [`role_command`], with the test binary started by `wrapper`: a program and its arguments,
/// which end where the command to run follows (`["unshare", "--pid", "--fork"]`).
pub fn role_command_under(wrapper: &[&str], test_fn: &str, role: &str, arg: &str) -> Command {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    cmd.args([test_fn, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role)
        .env(ARG_ENV, arg)
        // libtest's own lines from the child would mix into the parent's report; a role that
        // talks through stdout sets it again (the last setting wins).
        .stdout(std::process::Stdio::null());
    cmd
}

/// Kills and reaps a child process on drop unless it was waited for, so a failing test leaves
/// no process behind.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// Spawns `cmd` (a `Command` or a `&mut Command`).
    pub fn spawn(mut cmd: impl BorrowMut<Command>) -> ChildGuard {
        ChildGuard::new(cmd.borrow_mut().spawn().expect("spawn child"))
    }

    pub fn get(&mut self) -> &mut Child {
        self.0.as_mut().expect("child still guarded")
    }

    pub fn pid(&self) -> ipcbox::Pid {
        let child = self.0.as_ref().expect("child still guarded");
        ipcbox::Pid::from_raw(child.id() as i32).expect("child pid")
    }

    /// Waits for the child (it is then no longer killed on drop).
    pub fn wait(mut self) -> ExitStatus {
        let mut child = self.0.take().expect("child still guarded");
        child.wait().expect("wait for child")
    }

    /// Waits for the child and asserts it succeeded.
    pub fn expect_success(self, what: &str) {
        let status = self.wait();
        assert!(status.success(), "{what}: child failed with {status}");
    }

    /// Kills the child (`SIGKILL`) and reaps it.
    pub fn kill(mut self) {
        let mut child = self.0.take().expect("child still guarded");
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub mod nats;
pub mod python;

/// Says that a test skips part of what it proves, and why, on the real standard error: libtest
/// captures `eprintln!` of a passing test, and a skip must show in the run's log.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {why}");
}

/// The user and group a test acts as when it needs a second user: `nobody`.
pub const OTHER_USER: u32 = 65534;

/// Runs `f` in a forked child that has given up root for user and group [`OTHER_USER`]
/// (`setgroups`, `setgid`, `setuid`) and fails the test, with `f`'s message, when `f` fails.
/// Returns `false`, after saying so, when this process is not root and cannot become another
/// user.
#[allow(unsafe_code)]
pub fn as_other_user(what: &str, f: impl FnOnce() -> Result<(), String>) -> bool {
    use std::io::{Read, Write};
    if rustix::process::geteuid().as_raw() != 0 {
        skip(&format!("{what}: acting as a second user needs root"));
        return false;
    }
    let (mut from_child, mut to_parent) = ipcbox::pipe::new().expect("pipe");
    // SAFETY: the child drops its privileges, runs `f` (ipcbox calls and allocation; glibc's
    // malloc is fork-safe) and leaves with `_exit`, never returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let run = || {
            // SAFETY: plain system calls on this process's own credentials.
            let dropped = unsafe {
                libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setgid(OTHER_USER) == 0
                    && libc::setuid(OTHER_USER) == 0
            };
            if !dropped {
                return Err(format!(
                    "become the user: {}",
                    std::io::Error::last_os_error()
                ));
            }
            f()
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err("panicked".to_owned()));
        let code = match result {
            Ok(()) => 0,
            Err(msg) => {
                let _ = to_parent.write_all(msg.as_bytes());
                1
            }
        };
        // SAFETY: ends the child at once, as intended.
        unsafe { libc::_exit(code) };
    }
    drop(to_parent);
    let mut msg = String::new();
    let _ = from_child.read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is valid for writes.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what}, as user {OTHER_USER}: {msg} (wait status {status:#x})"
    );
    true
}
