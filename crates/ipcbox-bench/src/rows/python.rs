//! Python's `multiprocessing.Queue`, the tool ipcbox's Queue replaces: a `python3` subprocess
//! (standard library only) runs the same loops between two processes of its own and prints
//! its times as JSON.
//!
//! Latency: round trips through two queues (the peer gets from one and puts into the other).
//! Throughput: the parent puts the messages, the peer gets them and acknowledges through the
//! second queue. Both processes are pinned to the bench's CPUs, and the messages are `bytes`
//! objects of the job's size; Python's start-up is not timed.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::cpus::Placement;
use crate::row::{Info, Kind, LatencyJob, Row, ThroughputJob};

/// The Python side: `python3 -c SCRIPT MODE SIZE WARMUP COUNT PARENT_CPU CHILD_CPU`.
const SCRIPT: &str = r#"
import json, multiprocessing as mp, os, sys, time

mode = sys.argv[1]
size, warmup, count, pcpu, ccpu = (int(a) for a in sys.argv[2:7])

def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})

def echo(q_in, q_out, n):
    pin(ccpu)
    for _ in range(n):
        q_out.put(q_in.get())

def sink(q_in, q_out, warm, n):
    pin(ccpu)
    for _ in range(warm):
        q_in.get()
    q_out.put(b"\x06")
    for _ in range(n):
        q_in.get()
    q_out.put(b"\x06")

ctx = mp.get_context("fork")
pin(pcpu)
a, b = ctx.Queue(), ctx.Queue()
msg = b"\xa5" * size
clock = time.perf_counter_ns
if mode == "latency":
    p = ctx.Process(target=echo, args=(a, b, warmup + count))
    p.start()
    for _ in range(warmup):
        a.put(msg)
        b.get()
    samples = []
    reply = msg
    t = clock()
    for _ in range(count):
        a.put(msg)
        reply = b.get()
        now = clock()
        samples.append(now - t)
        t = now
    p.join()
    print(json.dumps({"ok": reply == msg and p.exitcode == 0, "samples": samples}))
else:
    p = ctx.Process(target=sink, args=(a, b, warmup, count))
    p.start()
    for _ in range(warmup):
        a.put(msg)
    b.get()
    t = clock()
    for _ in range(count):
        a.put(msg)
    ack = b.get()
    elapsed = clock() - t
    p.join()
    print(json.dumps({"ok": ack == b"\x06" and p.exitcode == 0, "elapsed_ns": elapsed}))
"#;

/// The Python row of group `group`.
pub fn row(group: &'static str) -> Box<dyn Row> {
    Box::new(PythonQueue {
        info: Info::new("python mp.Queue", group, Kind::Competitor).sizes(&[64]),
    })
}

#[derive(Debug)]
struct PythonQueue {
    info: Info,
}

#[derive(Debug, Deserialize)]
struct Output {
    ok: bool,
    #[serde(default)]
    samples: Vec<u64>,
    #[serde(default)]
    elapsed_ns: u64,
}

fn cpu_arg(cpu: Option<usize>) -> String {
    cpu.map_or("-1".to_owned(), |c| c.to_string())
}

fn run(
    mode: &str,
    size: usize,
    warmup: usize,
    count: usize,
    cpus: &Placement,
) -> anyhow::Result<Output> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(mode)
        .args([size, warmup, count].map(|n| n.to_string()))
        .arg(cpu_arg(cpus.parent))
        .arg(cpu_arg(cpus.child))
        .output()
        .context("run python3 (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "python3 {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let parsed: Output = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "parse python3's output {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    if !parsed.ok {
        bail!("python3's peer failed or echoed the wrong message");
    }
    Ok(parsed)
}

impl Row for PythonQueue {
    fn info(&self) -> &Info {
        &self.info
    }

    fn latency(&self, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        let out = run("latency", job.size, job.warmup, job.count, cpus)?;
        if out.samples.len() != job.count {
            bail!(
                "python3 reported {} round trips, expected {}",
                out.samples.len(),
                job.count
            );
        }
        Ok(out.samples)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        let out = run("throughput", job.size, job.warmup, job.count, cpus)?;
        Ok(Duration::from_nanos(out.elapsed_ns))
    }
}
