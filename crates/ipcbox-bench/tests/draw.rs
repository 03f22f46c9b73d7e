//! `--svg`, `--html` and the advice section, from a real run: every bar of the picture is a
//! number of the JSON (and drawn to its log scale), the picture renders (with rsvg-convert
//! from Debian's librsvg2-bin, installed here when missing), and every figure the advice
//! cites is the JSON's.

mod util;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use util::ipcbox_bench;

/// Files unique to this test, removed on drop.
struct Files(Vec<PathBuf>);

impl Files {
    fn new(names: &[&str]) -> Files {
        Files(
            names
                .iter()
                .map(|n| {
                    Path::new(env!("CARGO_TARGET_TMPDIR"))
                        .join(format!("ipcbox-bench-draw-{}-{n}", std::process::id()))
                })
                .collect(),
        )
    }

    fn arg(&self, i: usize) -> &str {
        self.0[i].to_str().expect("a UTF-8 path")
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The attributes of every `<name …>` element of `xml` whose attributes contain `marker`.
fn elements(xml: &str, name: &str, marker: &str) -> Vec<HashMap<String, String>> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let tag = &rest[start + open.len()..];
        let end = tag.find('>').expect("a closed tag");
        let body = &tag[..end];
        rest = &tag[end..];
        if !body.contains(marker) {
            continue;
        }
        let mut attrs = HashMap::new();
        let mut s = body;
        while let Some(eq) = s.find("=\"") {
            let key = s[..eq].trim().trim_end_matches('/').to_owned();
            let after = &s[eq + 2..];
            let close = after.find('"').expect("a closed attribute");
            attrs.insert(key, after[..close].to_owned());
            s = &after[close + 1..];
        }
        out.push(attrs);
    }
    out
}

fn num(attrs: &HashMap<String, String>, key: &str) -> f64 {
    attrs[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {attrs:?}"))
}

/// The JSON's number for a bar: its row's p50/p99, msg/s or MB/s at the bar's size.
fn json_value(report: &Value, row: &str, metric: &str, size: u64) -> f64 {
    let r = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == row)
        .unwrap_or_else(|| panic!("no row {row} in the JSON"));
    let v = match metric {
        "p50_ns" | "p99_ns" => &r["latency"][metric],
        _ => r["throughput"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["message_bytes"] == size)
            .map(|t| &t[metric])
            .unwrap_or_else(|| panic!("{row} has no throughput at {size}")),
    };
    v.as_f64().unwrap_or_else(|| panic!("{row} {metric}: {v}"))
}

/// `rsvg-convert`, installed from Debian's librsvg2-bin if this machine has none.
fn rsvg_convert() -> Command {
    let found = Command::new("sh")
        .args(["-c", "command -v rsvg-convert"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let install = || {
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y"])
                .args(["--no-install-recommends", "librsvg2-bin"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .expect("run apt-get to install librsvg2-bin (no rsvg-convert here)")
        };
        if !install().success() {
            let updated = Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=300", "update"])
                .status()
                .expect("run apt-get update");
            assert!(updated.success(), "apt-get update failed");
            assert!(install().success(), "apt-get install librsvg2-bin failed");
        }
    }
    Command::new("rsvg-convert")
}

#[test]
fn the_picture_is_the_json_and_renders() {
    let files = Files::new(&["r.json", "r.svg", "r.html", "r.png"]);
    let out = ipcbox_bench(&[
        "--filter",
        "pipe",
        "--filter",
        "semaphore ping",
        "--filter",
        "store get",
        "--filter",
        "memcpy",
        "--seconds",
        "1.5",
        "--rounds",
        "3",
        "--json",
        files.arg(0),
        "--svg",
        files.arg(1),
        "--html",
        files.arg(2),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&files.0[0]).expect("the JSON")).expect("JSON");
    let svg = std::fs::read_to_string(&files.0[1]).expect("the SVG");

    // Every bar is a number of the JSON, drawn to its panel's log scale.
    let panels = elements(&svg, "g", "class=\"panel\"");
    let bars = elements(&svg, "rect", "class=\"bar ");
    assert!(!bars.is_empty(), "{svg}");
    let mut drawn = Vec::new();
    for bar in &bars {
        let (row, metric) = (&bar["data-row"], bar["data-metric"].as_str());
        let size: u64 = bar["data-size"].parse().unwrap();
        let value = num(bar, "data-value");
        assert_eq!(value, json_value(&report, row, metric, size), "{bar:?}");
        let panel = panels
            .iter()
            .find(|p| p["data-metric"] == metric && p["data-size"] == bar["data-size"])
            .expect("the bar's panel");
        let (lo, hi) = (num(panel, "data-log-min"), num(panel, "data-log-max"));
        let full = num(panel, "data-width");
        let want = (full * (value.log10() - lo) / (hi - lo)).clamp(1.0, full);
        assert!((num(bar, "width") - want).abs() < 0.01, "{bar:?} vs {want}");
        assert!(
            lo <= value.log10() && value.log10() <= hi,
            "{bar:?} off the scale"
        );
        drawn.push((row.clone(), metric.to_owned(), size));
    }
    // … and every number of the JSON has its bar: latency, msg/s below 64 KiB, MB/s above.
    let mut expected = Vec::new();
    for r in report["rows"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap().to_owned();
        assert!(r["error"].is_null(), "{r}");
        if let Some(bytes) = r["latency"]["message_bytes"].as_u64() {
            expected.push((name.clone(), "p50_ns".to_owned(), bytes));
        }
        for t in r["throughput"].as_array().unwrap() {
            let size = t["message_bytes"].as_u64().unwrap();
            let metric = if size >= 64 << 10 {
                "megabytes_per_sec"
            } else {
                "messages_per_sec"
            };
            expected.push((name.clone(), metric.to_owned(), size));
        }
    }
    drawn.sort();
    expected.sort();
    assert_eq!(drawn, expected);
    for tick in elements(&svg, "line", "class=\"p99\"") {
        let v = num(&tick, "data-value");
        assert_eq!(v, json_value(&report, &tick["data-row"], "p99_ns", 0));
    }

    // It renders, at the size it says.
    let render = rsvg_convert()
        .arg(&files.0[1])
        .arg("-o")
        .arg(&files.0[3])
        .output()
        .expect("run rsvg-convert");
    assert!(render.status.success(), "{render:?}");
    let png = std::fs::read(&files.0[3]).expect("the PNG");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be32 = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    let svg_attrs = &elements(&svg, "svg", "xmlns")[0];
    assert_eq!(f64::from(be32(16)), num(svg_attrs, "width"));
    assert_eq!(f64::from(be32(20)), num(svg_attrs, "height"));

    // The advice: printed after the table, in the JSON, every figure the JSON's.
    assert!(
        stdout.contains("Which mechanism, on this machine"),
        "{stdout}"
    );
    let advice = report["advice"].as_array().expect("advice in the JSON");
    let questions: Vec<&str> = advice
        .iter()
        .map(|a| a["question"].as_str().unwrap())
        .collect();
    assert_eq!(
        questions,
        [
            "synchronisation only",
            "small messages",
            "large data",
            "many producers and consumers",
            "across hosts"
        ]
    );
    for a in advice {
        let line = format!(
            "  {}: {}",
            a["question"].as_str().unwrap(),
            a["text"].as_str().unwrap()
        );
        assert!(stdout.contains(&line), "{line} not printed:\n{stdout}");
        for f in a["figures"].as_array().unwrap() {
            let metric = match f["metric"].as_str().unwrap() {
                "p50_ns" => "p50_ns",
                "messages_per_sec" => "messages_per_sec",
                m => {
                    assert_eq!(m, "megabytes_per_sec");
                    m
                }
            };
            let size = f["message_bytes"].as_u64().unwrap();
            let row = f["row"].as_str().unwrap();
            assert_eq!(
                f["value"].as_f64().unwrap(),
                json_value(&report, row, metric, size)
            );
        }
    }
    assert_eq!(advice[0]["choice"], "semaphore ping-pong");
    assert_eq!(advice[2]["choice"], "store get");
    assert!(
        advice[4]["choice"].is_null(),
        "no TCP row ran: {}",
        advice[4]
    );

    // The page holds the picture, the advice and the table.
    let html = std::fs::read_to_string(&files.0[2]).expect("the HTML");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(elements(&html, "rect", "class=\"bar ").len(), bars.len());
    assert!(
        html.contains("synchronisation only") && html.contains("pipe raw"),
        "{html}"
    );
}

#[test]
fn an_unwritable_picture_path_fails_before_the_run() {
    let out = ipcbox_bench(&[
        "--filter",
        "pipe raw",
        "--svg",
        "/nonexistent-dir-ipcbox/p.svg",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent-dir-ipcbox/p.svg"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "it ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
