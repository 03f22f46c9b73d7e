//! `ipcbox-bench`: latency and throughput of each mechanism between two real processes. The
//! `ipcbox` command runs it as `ipcbox bench`.
//!
//! The bench process pins itself to one CPU and forks a peer pinned to another for every
//! measurement. Rows of a group (an ipcbox row and its raw baseline) are measured in
//! alternating rounds, so a noisy moment hits all of them; each number reported is the median
//! over the rounds.
//!
//! Layout: [`row`] defines what a row is, [`rows`] lists them by mechanism, [`driver`] measures
//! a group's rows side by side, [`measure`] has the shared two-process loops, [`os`] the peer
//! processes (`fork` through ipcbox), [`rawsys`] and [`rawsync`] the raw rows' unsafe code
//! (shared memory, bare message-queue calls, glibc's mutex and semaphore), [`report`] the table
//! and JSON, [`advice`] the answers to "which mechanism?", [`draw`] the SVG and HTML.

mod advice;
mod cpus;
mod draw;
mod driver;
mod measure;
mod os;
mod progress;
mod rawsync;
mod rawsys;
mod report;
mod row;
mod rows;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use cpus::Placement;
use progress::Progress;
use report::{Machine, Report, Settings};
use row::{Info, Row};

/// Size of the latency messages.
const LATENCY_SIZE: usize = 64;
/// Share of a row's time spent on latency when it also measures throughput (the rest is split
/// evenly over its throughput sizes).
const LATENCY_SHARE: f64 = 0.4;
/// Measuring budgets, in seconds, chosen so that the whole run of every row, set-up included,
/// takes about 20 s with `--quick` and about a minute without.
const QUICK_BUDGET: f64 = 15.0;
const FULL_BUDGET: f64 = 52.0;
/// Share of the time budget planned for the rounds; pilots, forks and set-up take the rest.
const ROUNDS_SHARE: f64 = 0.85;

/// Options of `ipcbox-bench`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "ipcbox-bench",
    version,
    about = "Measure latency and throughput of every mechanism between two processes",
    after_help = "\
Examples:
  ipcbox-bench --quick                      every row, about 20 s, the table and the advice
  ipcbox-bench --json r.json --svg r.svg    also every number as JSON, and a picture
  ipcbox-bench --filter queue --html q.html the queue rows, as an HTML page
  ipcbox-bench --list                       the rows, their groups and kinds

The advice after the table names, for each job (synchronisation only, small messages, large
data, many producers and consumers, across hosts), the best ipcbox row of this run and the
figures it rests on."
)]
pub struct Args {
    /// Run for about 20 s in all instead of about 60 s.
    #[arg(long)]
    quick: bool,

    /// Also write every number (each round, the machine, the settings) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Also draw latency and throughput per row as an SVG picture in FILE (log scales, ipcbox
    /// beside the raw rows and other libraries).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// Also write an HTML page to FILE: the picture, the advice and the table.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// Run only the rows whose name or group contains SUBSTR (case-insensitive; repeat the
    /// option to select more).
    #[arg(long, value_name = "SUBSTR")]
    filter: Vec<String>,

    /// Time budget for the measuring rounds, shared by the selected rows [default: 52, 15 with
    /// --quick]; forking the peers and setting up adds several seconds to a full run.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    seconds: Option<f64>,

    /// Rounds per measurement; the rows of a group take turns round by round and the median
    /// round is reported [default: 15, 7 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rounds: Option<u32>,

    /// Pin the peer to the bench's own CPU instead of another one (a wake-up then costs a
    /// context switch instead of an inter-processor interrupt).
    #[arg(long)]
    same_cpu: bool,

    /// List the rows (name, group, kind) and exit.
    #[arg(long)]
    list: bool,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        Ok(_) => Err(format!("{text} is not between 0 and 86400 seconds")),
        Err(err) => Err(format!("{text:?} is not a number of seconds: {err}")),
    }
}

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Time for each row, all its measurements together.
    per_row: Duration,
    rounds: usize,
    /// A `--quick` run: sizes over a row's [`Info::quick_max_message`] are skipped.
    quick: bool,
}

impl Plan {
    /// Time for one latency round of `info`'s row.
    fn latency_round(&self, info: &Info) -> Duration {
        let share = if info.throughput_sizes().is_empty() {
            1.0
        } else {
            LATENCY_SHARE
        };
        self.per_row.mul_f64(share) / self.rounds as u32
    }

    /// Time for one throughput round of `info`'s row at one of its sizes.
    fn throughput_round(&self, info: &Info) -> Duration {
        let sizes = info.throughput_sizes().len().max(1);
        let share = if info.latency {
            1.0 - LATENCY_SHARE
        } else {
            1.0
        };
        self.per_row.mul_f64(share) / (sizes * self.rounds) as u32
    }

    /// Steps of the progress bar for `info`'s row: a pilot and the rounds per measurement.
    fn steps(&self, info: &Info) -> usize {
        (usize::from(info.latency) + info.throughput_sizes().len()) * (1 + self.rounds)
    }
}

fn main() -> anyhow::Result<()> {
    run(clap::Parser::parse())
}

/// Runs `ipcbox-bench`.
///
/// # Errors
///
/// Bad options, no matching row, a failed row (after printing the others), or writing the JSON.
pub fn run(args: Args) -> anyhow::Result<()> {
    let all = rows::all();
    let selected: Vec<&dyn Row> = all
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| matches(*r, &args.filter))
        .collect();
    if args.list {
        for row in &selected {
            let info = row.info();
            println!("{:<20} {:<12} {}", info.name, info.group, info.kind.label());
        }
        return Ok(());
    }
    if selected.is_empty() {
        let names: Vec<_> = all.iter().map(|r| r.info().name).collect();
        bail!(
            "no benchmark row matches --filter {}; the rows are: {}",
            args.filter.join(", --filter "),
            names.join(", ")
        );
    }

    let budget = args.seconds.unwrap_or(if args.quick {
        QUICK_BUDGET
    } else {
        FULL_BUDGET
    });
    let rounds = args
        .rounds
        .map_or(if args.quick { 7 } else { 15 }, |r| r as usize);
    let plan = Plan {
        per_row: Duration::from_secs_f64(ROUNDS_SHARE * budget / selected.len() as f64),
        rounds,
        quick: args.quick,
    };

    // Open the output files first: a bad path should fail now, not after the whole run.
    let json = create(args.json.as_ref(), "JSON")?;
    let svg = create(args.svg.as_ref(), "SVG")?;
    let html = create(args.html.as_ref(), "HTML")?;
    os::ignore_sigpipe().context("ignore SIGPIPE")?;
    let allowed = cpus::allowed_cpus().context("query the CPUs this process may use")?;
    let placement = Placement::choose(args.same_cpu).context("choose CPUs")?;
    placement.pin_parent()?;
    let machine = Machine::describe(allowed, placement);

    let steps = selected.iter().map(|r| plan.steps(r.info())).sum();
    let mut progress = Progress::new(steps);
    let mut results = Vec::new();
    let mut start = 0;
    while start < selected.len() {
        let group = selected[start].info().group;
        let len = selected[start..]
            .iter()
            .take_while(|r| r.info().group == group)
            .count();
        let group_rows = &selected[start..start + len];
        results.extend(driver::run_group(
            group_rows,
            &plan,
            &placement,
            &mut progress,
        ));
        start += len;
    }
    progress.finish();

    report::compare_with_raw(&mut results);
    let advice = advice::advise(&results);
    let report = Report {
        machine,
        settings: Settings {
            budget_seconds: budget,
            rounds,
            latency_message_bytes: LATENCY_SIZE,
            latency_batch_micros: u64::try_from(measure::BATCH.as_micros()).unwrap_or(u64::MAX),
            latency_max_batch: measure::MAX_BATCH,
            throughput_message_bytes: union_of_sizes(&selected),
        },
        rows: results,
        advice,
    };
    let table = report::table(&report);
    print!("{table}{}", advice::text(&report.advice));
    if let Some((path, mut file)) = json {
        let text = serde_json::to_string_pretty(&report).context("encode the results as JSON")?;
        file.write_all((text + "\n").as_bytes())
            .with_context(|| format!("write the JSON results to {}", path.display()))?;
    }
    if let Some((path, mut file)) = svg {
        file.write_all(draw::svg(&report).as_bytes())
            .with_context(|| format!("write the picture to {}", path.display()))?;
    }
    if let Some((path, mut file)) = html {
        file.write_all(draw::html(&report, &table, &report.advice).as_bytes())
            .with_context(|| format!("write the HTML page to {}", path.display()))?;
    }
    let failed: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.name)
        .collect();
    if !failed.is_empty() {
        bail!("{} row(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// Creates the output file `path` (if asked for) of the kind `what`.
fn create<'p>(
    path: Option<&'p PathBuf>,
    what: &str,
) -> anyhow::Result<Option<(&'p PathBuf, std::fs::File)>> {
    path.map(|path| {
        std::fs::File::create(path)
            .map(|f| (path, f))
            .with_context(|| format!("create the {what} file {}", path.display()))
    })
    .transpose()
}

fn matches(row: &dyn Row, filters: &[String]) -> bool {
    let info = row.info();
    filters.is_empty()
        || filters.iter().any(|f| {
            let f = f.to_lowercase();
            info.name.to_lowercase().contains(&f) || info.group.to_lowercase().contains(&f)
        })
}

/// Every throughput size of `rows`, in increasing order.
fn union_of_sizes(rows: &[&dyn Row]) -> Vec<usize> {
    let mut sizes: Vec<usize> = rows
        .iter()
        .flat_map(|r| r.info().throughput_sizes())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::LatencyJob;

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert!(parse_seconds("0").unwrap_err().contains("between"));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn filter_matches_name_or_group_case_insensitively() {
        let all = rows::all();
        let names = |f: &[&str]| -> Vec<&str> {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            all.iter()
                .filter(|r| matches(r.as_ref(), &f))
                .map(|r| r.info().name)
                .collect()
        };
        assert_eq!(names(&["PIPE"]), ["pipe", "pipe raw"]);
        let raw = names(&["raw"]);
        assert!(
            raw.len() >= 2 && raw.iter().all(|n| n.ends_with(" raw")),
            "{raw:?}"
        );
        assert_eq!(names(&["UDP"]), ["udp", "udp bytes", "udp raw"]);
        assert_eq!(names(&[]).len(), all.len());
        assert!(names(&["no such row"]).is_empty());
    }

    #[test]
    fn fork_needs_a_single_threaded_process() {
        // The unit-test binary usually runs tests on several threads: then fork must refuse
        // cleanly; on a single thread the row must measure.
        let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
        let all = rows::all();
        let row = all.iter().find(|r| r.info().name == "pipe raw").unwrap();
        let job = LatencyJob {
            size: 64,
            warmup: 1,
            count: 3,
        };
        match row.latency(&Placement::default(), &job) {
            Ok(samples) => assert_eq!((threads, samples.len()), (1, 3)),
            Err(err) => {
                assert!(threads > 1, "{err:#}");
                assert!(format!("{err:#}").contains("threads"), "{err:#}");
            }
        }
    }
}
