//! The Python rows: `multiprocessing`'s Queue, Pipe and Value, ipcbox's Python package (the
//! drop-in replacements) and faster_fifo, each run by a `python` subprocess that measures the
//! same loops between two processes of its own and prints its times as JSON
//! (`python_peer.py`).
//!
//! Three groups, each with a `raw` row, the floor of Python doing the same through bare calls:
//!
//! * `python queue`: queues at 64 B, 4 KiB and 1 MiB; `raw` is a Unix socket pair with the
//!   WIRE.md framing written in plain Python (no queue semantics).
//! * `python connection`: `Pipe()` round trips and throughput, `raw` as above.
//! * `python value`: two processes incrementing one shared value under its lock; `raw`
//!   increments shared memory without a lock.
//!
//! The standard library rows run under the `python3` on `PATH`. ipcbox's rows need the
//! package built into the virtualenv of `crates/ipcbox-py/tests/venv.sh` (done on first use,
//! a couple of minutes), and faster_fifo's rows need faster_fifo pip-installed into it; a row
//! that cannot have its interpreter fails with the reason. Python's start-up is not timed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

use crate::cpus::Placement;
use crate::row::{Info, Kind, LatencyJob, Row, Teardown, ThroughputJob};

const SCRIPT: &str = include_str!("python_peer.py");

/// What a row's interpreter must be able to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The standard library: `python3`.
    Stdlib,
    /// The ipcbox package: the package's virtualenv.
    Ipcbox,
    /// faster_fifo, installed into that virtualenv.
    FasterFifo,
}

/// The Python rows, three groups.
pub fn rows() -> Vec<Box<dyn Row>> {
    use Kind::{Competitor, Ipcbox, Raw};
    use Needs::{FasterFifo, Stdlib};
    const Q: &str = "python queue";
    const C: &str = "python connection";
    const V: &str = "python value";
    let row = |name, group, kind, what: &'static str, imp: &'static str, needs| {
        Box::new(PythonRow {
            info: Info::new(name, group, kind),
            what,
            imp,
            needs,
        })
    };
    let mut rows: Vec<Box<PythonRow>> = vec![
        row("python queue raw", Q, Raw, "connection", "raw", Stdlib),
        row("python mp.Queue", Q, Competitor, "queue", "mp", Stdlib),
        row(
            "python ipcbox.Queue",
            Q,
            Ipcbox,
            "queue",
            "ipcbox",
            Needs::Ipcbox,
        ),
        row(
            "python ipcbox.Queue bytes",
            Q,
            Ipcbox,
            "queue",
            "ipcbox_bytes",
            Needs::Ipcbox,
        ),
        row(
            "python ipcbox put_many",
            Q,
            Ipcbox,
            "queue",
            "ipcbox_many",
            Needs::Ipcbox,
        ),
        row(
            "python faster_fifo",
            Q,
            Competitor,
            "queue",
            "faster_fifo",
            FasterFifo,
        ),
        row(
            "python faster_fifo bytes",
            Q,
            Competitor,
            "queue",
            "faster_fifo_bytes",
            FasterFifo,
        ),
        row(
            "python faster_fifo put_many",
            Q,
            Competitor,
            "queue",
            "faster_fifo_many",
            FasterFifo,
        ),
        row("python connection raw", C, Raw, "connection", "raw", Stdlib),
        row(
            "python mp.Connection",
            C,
            Competitor,
            "connection",
            "mp",
            Stdlib,
        ),
        row(
            "python ipcbox.Connection",
            C,
            Ipcbox,
            "connection",
            "ipcbox",
            Needs::Ipcbox,
        ),
        row("python value raw", V, Raw, "value", "raw", Stdlib),
        row("python mp.Value", V, Competitor, "value", "mp", Stdlib),
        row(
            "python ipcbox.Value",
            V,
            Ipcbox,
            "value",
            "ipcbox",
            Needs::Ipcbox,
        ),
    ];
    for r in &mut rows {
        if r.imp.ends_with("_many") {
            r.info = r.info.clone().no_latency();
        }
        if r.what == "value" {
            r.info = r.info.clone().sizes(&[]);
        }
    }
    rows.into_iter().map(|r| r as Box<dyn Row>).collect()
}

#[derive(Debug)]
struct PythonRow {
    info: Info,
    /// `queue`, `connection` or `value`.
    what: &'static str,
    /// Which implementation the script runs.
    imp: &'static str,
    needs: Needs,
}

/// The virtualenv's interpreter, built once per bench run (or why it could not be).
fn package_python() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../ipcbox-py/tests/venv.sh");
            let out = Command::new("bash")
                .arg(script)
                .output()
                .map_err(|e| format!("cannot run {script}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "building the ipcbox Python package ({script}) failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .clone()
}

/// The virtualenv's interpreter with faster_fifo installed (or why it could not be).
fn faster_fifo_python() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let python = package_python()?;
            let reqs = concat!(env!("CARGO_MANIFEST_DIR"), "/python-requirements.txt");
            let out = Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["-r", reqs])
                .output()
                .map_err(|e| format!("cannot run pip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "pip could not install faster_fifo ({reqs}): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(python)
        })
        .clone()
}

impl PythonRow {
    fn python(&self) -> anyhow::Result<PathBuf> {
        match self.needs {
            Needs::Stdlib => Ok(PathBuf::from("python3")),
            Needs::Ipcbox => package_python().map_err(|e| anyhow!(e)),
            Needs::FasterFifo => faster_fifo_python().map_err(|e| anyhow!(e)),
        }
    }

    fn run(
        &self,
        mode: &str,
        size: usize,
        warmup: usize,
        count: usize,
        cpus: &Placement,
    ) -> anyhow::Result<Output> {
        let python = self.python()?;
        let out = Command::new(&python)
            .arg("-c")
            .arg(SCRIPT)
            .args([self.what, self.imp, mode])
            .args([size, warmup, count].map(|n| n.to_string()))
            .arg(cpu_arg(cpus.parent))
            .arg(cpu_arg(cpus.child))
            .output()
            .with_context(|| format!("run {}", python.display()))?;
        if !out.status.success() {
            bail!(
                "{} {}: {}",
                python.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let parsed: Output = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "parse the Python peer's output {:?}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        if !parsed.ok {
            bail!("the Python peer failed, echoed the wrong message or lost an increment");
        }
        Ok(parsed)
    }
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

impl Row for PythonRow {
    fn info(&self) -> &Info {
        &self.info
    }

    fn setup(&self) -> anyhow::Result<Teardown> {
        // Builds the interpreter before the group's clock-sensitive rounds start.
        self.python()?;
        Ok(Teardown::none())
    }

    fn latency(&self, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        let out = self.run("latency", job.size, job.warmup, job.count, cpus)?;
        if out.samples.len() != job.count {
            bail!(
                "the Python peer reported {} round trips, expected {}",
                out.samples.len(),
                job.count
            );
        }
        Ok(out.samples)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        let out = self.run("throughput", job.size, job.warmup, job.count, cpus)?;
        Ok(Duration::from_nanos(out.elapsed_ns))
    }
}
