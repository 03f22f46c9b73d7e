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

#[test]
fn pi_by_ten_workers_over_tcp_equals_the_single_process_result() {
    let out = run("pi_tcp", &[]);
    let line = out
        .lines()
        .find(|l| l.contains("over tcp"))
        .unwrap_or_else(|| panic!("no tcp line in:\n{out}"));
    assert!(line.ends_with("(equal)"), "{line}");
}

#[test]
fn unix_server_answers_concurrent_clients_and_removes_its_socket() {
    let out = run("unix_server", &["12", "30"]);
    for shown in [
        "12 clients x 30 requests: every answer checked",
        "server stopped after 361 requests; socket file removed",
    ] {
        assert!(out.contains(shown), "{shown:?} missing from:\n{out}");
    }
}

#[test]
fn value_producer_consumer_sees_every_update_once() {
    let out = run("value_producer_consumer", &[]);
    assert!(out.contains("every update was seen exactly once"), "{out}");
}

#[test]
fn semaphore_admits_at_most_three_of_five() {
    let out = run("semaphore_3_of_5", &[]);
    assert!(
        out.contains("at most 3 of 5 workers were inside at once"),
        "{out}"
    );
}

#[test]
fn large_array_through_the_object_store_sums_exactly() {
    let out = run("store_large_array", &[]);
    let line = out
        .lines()
        .find(|l| l.contains("the child's sum is"))
        .unwrap_or_else(|| panic!("no sum line in:\n{out}"));
    let numbers: Vec<&str> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert_eq!(numbers[0], numbers[1], "{line}");
}

#[test]
fn queue_examples_run_to_completion() {
    let out = run("queue_producer_consumer", &[]);
    assert!(out.contains("consumer: got item 9"), "{out}");
    let out = run("queue_parent_child", &[]);
    assert!(out.contains("child exited with exit code 0"), "{out}");
    let out = run("queue_pi", &[]);
    assert!(out.contains("by 10 workers"), "{out}");
}
