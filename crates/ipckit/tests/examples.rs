//! The examples run to completion and show what they claim (they check themselves and exit
//! non-zero when the result is wrong). `cargo test` builds them next to the test binaries.

mod util;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn example(name: &str) -> Command {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let path: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .expect("target directory layout");
    assert!(
        path.exists(),
        "example binary {} is missing: run the tests with `cargo test` (which builds examples)",
        path.display()
    );
    Command::new(path)
}

fn run(name: &str, args: &[&str]) -> String {
    let _dog = util::watchdog(name, Duration::from_secs(120));
    let out = example(name).args(args).output().expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn pi_by_ten_workers_equals_the_single_process_result_over_every_transport() {
    let out = run("pi_workers", &[]);
    for transport in ["pipe", "fifo", "files"] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("over {transport}")))
            .unwrap_or_else(|| panic!("no {transport} line in:\n{out}"));
        assert!(line.ends_with("(equal)"), "{line}");
    }
}

#[test]
fn ps_grep_pipeline_finds_its_own_grep() {
    let out = run("ps_grep", &[]);
    assert!(out.contains("grep"), "{out}");
}

#[test]
fn zombie_is_reaped_and_orphan_adopted() {
    let out = run("zombie_orphan", &[]);
    for shown in [
        "state = Z",
        "exists afterwards: false",
        "the subreaper reaped",
        "nothing left to reap: []",
    ] {
        assert!(out.contains(shown), "{shown:?} missing from:\n{out}");
    }
}
