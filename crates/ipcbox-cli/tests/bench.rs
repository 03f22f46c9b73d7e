//! Runs `ipcbox bench`, which hands its arguments to the `ipcbox-bench` program: here a shell
//! script standing in for it (which prints its arguments one per line and exits with status
//! 3) shows where the program is looked for and what it is given, and the real one, when it
//! has been built beside `ipcbox`, lists its rows.

mod util;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use util::{ipcbox, run, SPAWN};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory of its own under Cargo's temporary directory for tests, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ipcbox-cli-bench-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a test directory");
        TempDir(path)
    }

    /// Writes the stand-in bench program as `name` in this directory.
    fn fake_bench(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        let _writing = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::write(&path, "#!/bin/sh\nprintf '%s\\n' \"$@\"\nexit 3\n")
            .expect("write the stand-in bench");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the stand-in bench executable");
        path
    }

    /// A copy of the `ipcbox` binary in this directory (a hard link where possible), so that
    /// the program beside it is whatever the test puts there.
    fn ipcbox(&self) -> PathBuf {
        let path = self.0.join("ipcbox");
        let built = env!("CARGO_BIN_EXE_ipcbox");
        if std::fs::hard_link(built, &path).is_err() {
            let _writing = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            std::fs::copy(built, &path).expect("copy the ipcbox binary");
        }
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `program bench args…` with `IPCBOX_BENCH` set to `bench` (or unset) and `PATH` set to `path`.
fn bench_via(
    program: &Path,
    bench: Option<&Path>,
    path: &OsStr,
    args: &[&str],
) -> std::process::Output {
    let mut command = Command::new(program);
    command.arg("bench").args(args).env("PATH", path);
    match bench {
        Some(bench) => command.env("IPCBOX_BENCH", bench),
        None => command.env_remove("IPCBOX_BENCH"),
    };
    run(&mut command)
}

/// Arguments that `ipcbox` itself would take for its own: options, `--help`, spaces.
const ARGS: &[&str] = &["--quick", "--filter", "unix stream", "--help", "-x", "--"];

fn assert_ran_the_stand_in(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines, ARGS, "{}", text(&out.stderr));
}

#[test]
fn bench_passes_every_argument_and_the_exit_status_through() {
    let dir = TempDir::new("named");
    let fake = dir.fake_bench("stand-in");
    let out = bench_via(
        Path::new(env!("CARGO_BIN_EXE_ipcbox")),
        Some(&fake),
        OsStr::new("/usr/bin:/bin"),
        ARGS,
    );
    assert_ran_the_stand_in(&out);
}

#[test]
fn bench_runs_the_program_beside_ipcbox_then_the_one_on_path() {
    let beside = TempDir::new("beside");
    let ipcbox = beside.ipcbox();
    beside.fake_bench("ipcbox-bench");
    let out = bench_via(&ipcbox, None, OsStr::new("/usr/bin:/bin"), ARGS);
    assert_ran_the_stand_in(&out);

    let alone = TempDir::new("alone");
    let ipcbox = alone.ipcbox();
    let on_path = TempDir::new("path");
    on_path.fake_bench("ipcbox-bench");
    let path = std::env::join_paths([Path::new("/nonexistent-ipcbox-dir"), &on_path.0]).unwrap();
    let out = bench_via(&ipcbox, None, &path, ARGS);
    assert_ran_the_stand_in(&out);
}

#[test]
fn bench_without_the_bench_program_says_how_to_get_it() {
    let alone = TempDir::new("missing");
    let ipcbox = alone.ipcbox();
    let out = bench_via(
        &ipcbox,
        None,
        OsStr::new("/nonexistent-ipcbox-dir"),
        &["--list"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for needle in [
        "ipcbox-bench",
        "cargo run --release -p ipcbox-bench -- ARGS",
        "cargo install --path crates/ipcbox-bench",
        "IPCBOX_BENCH",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = bench_via(
        &ipcbox,
        Some(&alone.0.join("no-such-bench")),
        OsStr::new("/usr/bin:/bin"),
        &["--list"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-bench") && stderr.contains("IPCBOX_BENCH"),
        "{stderr}"
    );
}

#[test]
fn bench_lists_the_rows_of_the_real_bench_program() {
    // Cargo builds ipcbox-bench beside ipcbox when both crates are built (`cargo build
    // --workspace`, `cargo test -p ipcbox-cli -p ipcbox-bench`); testing this crate alone
    // leaves it out, and then there is nothing to compare with.
    let beside = Path::new(env!("CARGO_BIN_EXE_ipcbox")).with_file_name("ipcbox-bench");
    if !beside.exists() {
        eprintln!("skipped: {} is not built", beside.display());
        return;
    }
    let direct = run(Command::new(&beside).arg("--list"));
    assert!(direct.status.success(), "{}", text(&direct.stderr));
    let out = ipcbox(&["bench", "--list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&direct.stdout));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("pipe raw ")),
        "{}",
        text(&out.stdout)
    );
}
