//! Runs the `ipcbox-bench` binary end to end (real forked peers, JSON output) and its handling
//! of bad options.

mod util;

use std::path::PathBuf;

use util::{ipcbox_bench, ipcbox_bench_env};

/// A JSON file path unique to this test, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!(
            "ipcbox-bench-test-{}-{tag}.json",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn positive(value: &serde_json::Value, what: &str) -> f64 {
    let x = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(x > 0.0 && x.is_finite(), "{what} = {x}");
    x
}

#[test]
fn bench_pipe_rows_write_json_with_positive_numbers() {
    let json = TempFile::new("pipe");
    let out = ipcbox_bench(&[
        "--quick",
        "--filter",
        "pipe",
        "--seconds",
        "1",
        "--rounds",
        "3",
        "--json",
        json.0.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // The table: both rows, with the ratio column.
    assert!(stdout.contains("vs raw"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("pipe raw ")),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("pipe ")), "{stdout}");
    assert!(
        !stdout.contains("fifo"),
        "the filter let other rows through: {stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json.0).expect("read the JSON file"))
            .expect("the JSON file parses");
    positive(&report["machine"]["cpus"], "cpus");
    assert!(report["machine"]["kernel"]
        .as_str()
        .unwrap()
        .starts_with("Linux"));
    assert!(report["machine"]["date"].as_str().unwrap().ends_with('Z'));
    let rows = report["rows"].as_array().expect("rows is an array");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pipe", "pipe raw"]);
    for row in rows {
        let name = row["name"].as_str().unwrap();
        assert!(row["error"].is_null(), "{name}: {}", row["error"]);
        let latency = &row["latency"];
        let p50 = positive(&latency["p50_ns"], "p50");
        let p99 = positive(&latency["p99_ns"], "p99");
        assert!(p99 >= p50, "{name}: p99 {p99} < p50 {p50}");
        assert_eq!(latency["rounds"].as_array().unwrap().len(), 3, "{name}");
        let sizes: Vec<u64> = row["throughput"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                positive(&t["messages_per_sec"], "messages/s");
                positive(&t["megabytes_per_sec"], "MB/s");
                t["message_bytes"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(sizes, [64, 4096, 1 << 20], "{name}");
    }
    assert_eq!(rows[0]["kind"], "ipcbox");
    assert_eq!(rows[1]["kind"], "raw");
    positive(&rows[0]["latency"]["vs_raw"], "vs raw");
    assert!(rows[1]["latency"]["vs_raw"].is_null());
}

#[test]
fn bench_socket_rows_run_and_ipc_channel_beside_them() {
    let json = TempFile::new("socket");
    let groups = [
        "socketpair",
        "unix stream",
        "unix seqpacket",
        "unix dgram",
        "tcp",
        "udp",
    ];
    let mut args = vec!["--seconds", "1", "--rounds", "1"];
    for g in groups {
        args.extend(["--filter", g]);
    }
    args.extend(["--json", json.0.to_str().unwrap()]);
    let out = ipcbox_bench(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json.0).expect("read the JSON file"))
            .expect("the JSON file parses");
    let rows = report["rows"].as_array().expect("rows is an array");
    for group in groups {
        let members: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["group"] == group).collect();
        let kinds: Vec<&str> = members
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if group == "unix stream" {
            // ipc-channel's two rows, then the two async rows and tokio's own stream.
            &[
                "ipcbox",
                "ipcbox",
                "raw",
                "competitor",
                "competitor",
                "ipcbox",
                "ipcbox",
                "competitor",
            ]
        } else {
            &["ipcbox", "ipcbox", "raw"]
        };
        assert_eq!(kinds, expected, "{group}");
        let streams = ["socketpair", "unix stream", "tcp"].contains(&group);
        for row in members {
            let name = row["name"].as_str().unwrap();
            assert!(row["error"].is_null(), "{name}: {}", row["error"]);
            positive(&row["latency"]["p50_ns"], "p50");
            let sizes: Vec<u64> = row["throughput"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    positive(&t["messages_per_sec"], "messages/s");
                    t["message_bytes"].as_u64().unwrap()
                })
                .collect();
            let want: &[u64] = if streams {
                &[64, 4096, 1 << 20]
            } else {
                &[64, 4096]
            };
            assert_eq!(sizes, want, "{name}");
        }
    }
}

#[test]
fn bench_fifo_raw_row_runs() {
    let out = ipcbox_bench(&["--filter", "fifo raw", "--seconds", "0.3", "--rounds", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("fifo raw ")),
        "{stdout}"
    );
}

/// The iceoryx2 segments in `/dev/shm`.
fn iceoryx2_segments() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("iox2_"))
        .collect()
}

#[test]
fn bench_iceoryx2_row_runs_and_leaves_no_segment_behind() {
    // iceoryx2 keeps a global management segment for later nodes; the bench removes the ones
    // it made once nobody maps them, and keeps any that were there before.
    let before = iceoryx2_segments();
    let out = ipcbox_bench(&["--filter", "iceoryx2", "--seconds", "0.3", "--rounds", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("iceoryx2 copy ")),
        "{stdout}"
    );
    let left: Vec<_> = iceoryx2_segments().difference(&before).cloned().collect();
    assert!(left.is_empty(), "left behind in /dev/shm: {left:?}");
}

#[test]
fn bench_queue_2_2_row_delivers_every_message_once() {
    // Two producer and two consumer processes; the row fails unless every sequence number
    // arrived exactly once.
    let out = ipcbox_bench(&["--filter", "queue 2-2", "--seconds", "0.3", "--rounds", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("queue 2-2 "))
        .unwrap_or_else(|| panic!("no queue 2-2 line: {stdout}"));
    assert!(line.contains("ipcbox"), "{line}");
}

#[test]
fn bench_nats_rows_run_beside_the_local_queue_and_tcp() {
    // The bench starts its own nats-server (installing it if needed) and stops it after.
    let out = ipcbox_bench_env(
        &["--filter", "nats", "--seconds", "2", "--rounds", "1"],
        &[("IPCBOX_NATS_URL", "")],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for name in [
        "nats queue 1-1 ",
        "nats queue 4-4 ",
        "nats local queue 1-1 ",
        "nats local queue 4-4 ",
        "nats tcp bytes ",
        "nats tcp raw ",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} line: {stdout}"));
        assert!(
            !line.contains("error") && !line.contains("unavailable"),
            "{line}"
        );
    }
}

#[test]
fn bench_nats_rows_say_when_the_server_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let out = ipcbox_bench_env(
        &[
            "--filter",
            "nats queue",
            "--seconds",
            "0.3",
            "--rounds",
            "1",
        ],
        &[("IPCBOX_NATS_URL", &url)],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("nats queue 1-1 "))
        .unwrap_or_else(|| panic!("no nats queue 1-1 line: {stdout}"));
    assert!(line.contains("unavailable"), "{line}");
    assert!(
        stdout.contains(&format!("IPCBOX_NATS_URL={url}")),
        "{stdout}"
    );
}

#[test]
fn bench_lists_rows() {
    let out = ipcbox_bench(&["--list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for name in [
        "pipe ",
        "pipe raw ",
        "fifo raw ",
        "cacheline raw ",
        "channel spin ",
        "queue 1-1 ",
        "iceoryx2 copy ",
        "python mp.Queue ",
        "posix mq raw ",
        "sysv mq raw ",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(name)), "{stdout}");
    }
}

#[test]
fn bad_options_give_clear_errors() {
    let out = ipcbox_bench(&["--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--no-such-option"),
        "{}",
        text(&out.stderr)
    );

    let out = ipcbox_bench(&["--seconds", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("soon"), "{}", text(&out.stderr));

    let out = ipcbox_bench(&["--rounds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--rounds"),
        "{}",
        text(&out.stderr)
    );

    let out = ipcbox_bench(&["--filter", "carrier pigeon"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("carrier pigeon") && stderr.contains("pipe raw"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn unwritable_json_path_is_an_error_naming_it() {
    let out = ipcbox_bench(&[
        "--filter",
        "pipe raw",
        "--seconds",
        "0.2",
        "--rounds",
        "1",
        "--json",
        "/nonexistent-dir-ipcbox/out.json",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/nonexistent-dir-ipcbox/out.json"),
        "{stderr}"
    );
}
