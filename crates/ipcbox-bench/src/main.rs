//! `ipcbox bench`: latency and throughput of each mechanism between two real processes.
//!
//! The bench process pins itself to one CPU and forks a peer pinned to another for every
//! measurement. Rows of a group (an ipcbox row and its raw baseline) are measured in
//! alternating rounds, so a noisy moment hits all of them; each number reported is the median
//! over the rounds.
//!
//! Layout: [`row`] defines what a row is, [`rows`] lists them by mechanism, [`measure`] has the
//! shared two-process loops, [`os`], [`rawsys`] and [`rawsync`] the only unsafe code (`fork`; shared memory, bare message-queue calls and glibc's mutex and semaphore for the raw rows), [`report`] the table and
//! JSON.

mod cpus;
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
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use cpus::Placement;
use progress::Progress;
use report::{
    Latency, LatencyRound, Machine, Report, RowResult, Settings, Throughput, ThroughputRound,
};
use row::{Info, LatencyJob, Row, ThroughputJob};

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

/// Options of `ipcbox bench`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "ipcbox-bench",
    version,
    about = "Measure latency and throughput of every mechanism between two processes"
)]
pub struct Args {
    /// Run for about 20 s in all instead of about 60 s.
    #[arg(long)]
    quick: bool,

    /// Also write every number (each round, the machine, the settings) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

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

/// Runs `ipcbox bench`.
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
    };

    // Open the JSON file first: a bad path should fail now, not after the whole run.
    let json = match &args.json {
        Some(path) => Some((
            path,
            std::fs::File::create(path)
                .with_context(|| format!("create the JSON file {}", path.display()))?,
        )),
        None => None,
    };
    os::ignore_sigpipe().context("ignore SIGPIPE")?;
    let allowed = cpus::allowed_cpus().context("query the CPUs this process may use")?;
    let placement = Placement::choose(args.same_cpu).context("choose CPUs")?;
    placement.pin_parent()?;
    let machine = Machine::describe(allowed, placement);

    let iceoryx2_before = rows::iceoryx2::shm_files();
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
        results.extend(run_group(group_rows, &plan, &placement, &mut progress));
        start += len;
    }
    progress.finish();
    rows::iceoryx2::remove_new_unused(&iceoryx2_before);

    report::compare_with_raw(&mut results);
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
    };
    print!("{}", report::table(&report));
    if let Some((path, mut file)) = json {
        let text = serde_json::to_string_pretty(&report).context("encode the results as JSON")?;
        file.write_all((text + "\n").as_bytes())
            .with_context(|| format!("write the JSON results to {}", path.display()))?;
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

fn matches(row: &dyn Row, filters: &[String]) -> bool {
    let info = row.info();
    filters.is_empty()
        || filters.iter().any(|f| {
            let f = f.to_lowercase();
            info.name.to_lowercase().contains(&f) || info.group.to_lowercase().contains(&f)
        })
}

/// One row's state while its group runs: its results, or the error that stopped it.
struct Running<'a> {
    row: &'a dyn Row,
    result: RowResult,
}

impl Running<'_> {
    fn ok(&self) -> bool {
        self.result.error.is_none()
    }

    fn fail(&mut self, what: &str, err: anyhow::Error, progress: &mut Progress) {
        let text = format!("{what}: {err:#}");
        progress.println(&format!("ipcbox bench: {}: {text}", self.result.name));
        self.result.error = Some(text);
    }
}

/// Measures the rows of one group, alternating between them round by round (the order turns
/// each round, so no row always runs right after another).
fn run_group(
    rows: &[&dyn Row],
    plan: &Plan,
    cpus: &Placement,
    progress: &mut Progress,
) -> Vec<RowResult> {
    let mut running: Vec<Running<'_>> = rows
        .iter()
        .map(|&row| Running {
            row,
            result: RowResult::new(row.info()),
        })
        .collect();

    latency(&mut running, plan, cpus, progress);
    for size in union_of_sizes(rows) {
        throughput_at(&mut running, size, plan, cpus, progress);
    }
    running.into_iter().map(|r| r.result).collect()
}

/// Measures the latency of the rows of a group that have one: a short pilot per row (warm-up,
/// and the round trip's rough cost), then the rounds.
fn latency(running: &mut [Running<'_>], plan: &Plan, cpus: &Placement, progress: &mut Progress) {
    let takes = |r: &Running<'_>| r.row.info().latency;
    let mut jobs = Vec::new();
    for r in running.iter_mut() {
        if !takes(r) {
            jobs.push(None);
            continue;
        }
        progress.set(format!("{}: latency pilot", r.result.name));
        let per_round = plan.latency_round(r.row.info());
        match pilot_latency(r.row, per_round, cpus) {
            Ok(job) => jobs.push(Some(job)),
            Err(err) => {
                r.fail("latency", err, progress);
                jobs.push(None);
            }
        }
        progress.step();
    }
    let mut latency_rounds: Vec<Vec<LatencyRound>> = running.iter().map(|_| Vec::new()).collect();
    for round in 0..plan.rounds {
        for i in turn_order(running.len(), round) {
            let r = &mut running[i];
            if !takes(r) {
                continue;
            }
            if let (true, Some(job)) = (r.ok(), jobs[i]) {
                progress.set(format!(
                    "{}: latency round {}/{}",
                    r.result.name,
                    round + 1,
                    plan.rounds
                ));
                let started = Instant::now();
                match r.row.latency(cpus, &job) {
                    Ok(mut samples) => {
                        let target = plan.latency_round(r.row.info());
                        let count = rescale(job.count, target, started.elapsed()).max(20);
                        jobs[i] = Some(LatencyJob { count, ..job });
                        let s = stats::summarize(&mut samples);
                        latency_rounds[i].push(LatencyRound {
                            round_trips: samples.len(),
                            p50_ns: s.p50,
                            p99_ns: s.p99,
                            min_ns: s.min,
                            max_ns: s.max,
                            mean_ns: s.mean,
                        });
                    }
                    Err(err) => r.fail("latency", err, progress),
                }
            }
            progress.step();
        }
    }
    for (r, rounds) in running.iter_mut().zip(latency_rounds) {
        if r.ok() && !rounds.is_empty() {
            let p50s: Vec<f64> = rounds.iter().map(|x| x.p50_ns as f64).collect();
            let p99s: Vec<f64> = rounds.iter().map(|x| x.p99_ns as f64).collect();
            r.result.latency = Some(Latency {
                message_bytes: LATENCY_SIZE,
                p50_ns: stats::median(&p50s),
                p99_ns: stats::median(&p99s),
                vs_raw: None,
                rounds,
            });
        }
    }
}

/// Measures throughput with `size`-byte messages for the rows of a group that carry them.
fn throughput_at(
    running: &mut [Running<'_>],
    size: usize,
    plan: &Plan,
    cpus: &Placement,
    progress: &mut Progress,
) {
    let takes = |r: &Running<'_>| r.row.info().takes(size);
    let mut jobs = Vec::new();
    for r in running.iter_mut() {
        let mut job = None;
        if takes(r) {
            if r.ok() {
                progress.set(format!(
                    "{}: {} throughput pilot",
                    r.result.name,
                    report::size_label(size)
                ));
                let per_round = plan.throughput_round(r.row.info()).as_secs_f64();
                match pilot_throughput(r.row, size, per_round, cpus) {
                    Ok(j) => job = Some(j),
                    Err(err) => r.fail(
                        &format!("throughput, {}", report::size_label(size)),
                        err,
                        progress,
                    ),
                }
            }
            progress.step();
        }
        jobs.push(job);
    }
    let mut rounds: Vec<Vec<ThroughputRound>> = running.iter().map(|_| Vec::new()).collect();
    for round in 0..plan.rounds {
        for i in turn_order(running.len(), round) {
            let r = &mut running[i];
            if !takes(r) {
                continue;
            }
            if let (true, Some(job)) = (r.ok(), jobs[i]) {
                progress.set(format!(
                    "{}: {} throughput round {}/{}",
                    r.result.name,
                    report::size_label(size),
                    round + 1,
                    plan.rounds
                ));
                let started = Instant::now();
                match r.row.throughput(cpus, &job) {
                    Ok(elapsed) => {
                        rounds[i].push(ThroughputRound {
                            messages: job.count,
                            elapsed_ns: measure::nanos(elapsed),
                            messages_per_sec: job.count as f64 / elapsed.as_secs_f64().max(1e-9),
                        });
                        let target = plan.throughput_round(r.row.info());
                        let count = rescale(job.count, target, started.elapsed()).max(2);
                        jobs[i] = Some(ThroughputJob { count, ..job });
                    }
                    Err(err) => r.fail(
                        &format!("throughput, {}", report::size_label(size)),
                        err,
                        progress,
                    ),
                }
            }
            progress.step();
        }
    }
    for (r, rounds) in running.iter_mut().zip(rounds) {
        if r.ok() && !rounds.is_empty() {
            let rates: Vec<f64> = rounds.iter().map(|x| x.messages_per_sec).collect();
            let rate = stats::median(&rates);
            r.result.throughput.push(Throughput {
                message_bytes: size,
                messages_per_sec: rate,
                megabytes_per_sec: rate * size as f64 / 1e6,
                vs_raw: None,
                rounds,
            });
        }
    }
}

/// Finds how many round trips take about `per_round`: runs growing batches until one lasts
/// long enough to time (which also warms the path up).
fn pilot_latency(
    row: &dyn Row,
    per_round: Duration,
    cpus: &Placement,
) -> anyhow::Result<LatencyJob> {
    let target = (per_round.as_secs_f64() / 4.0).clamp(0.001, 0.05);
    let mut count = 50;
    loop {
        let job = LatencyJob {
            size: LATENCY_SIZE,
            warmup: 10,
            count,
        };
        let samples = row.latency(cpus, &job)?;
        let elapsed = samples.iter().sum::<u64>() as f64 / 1e9;
        if elapsed >= target || count >= 10_000_000 {
            let mean = elapsed.max(1e-9) / samples.len().max(1) as f64;
            let count = (per_round.as_secs_f64() / mean).clamp(20.0, 1e7) as usize;
            return Ok(LatencyJob {
                size: LATENCY_SIZE,
                warmup: (count / 20).clamp(10, 1000),
                count,
            });
        }
        count = (count as f64 * (target / elapsed.max(1e-9)).clamp(2.0, 100.0)) as usize;
    }
}

/// Bytes sent before a throughput round's clock starts, at least (in at most 1000 messages,
/// the cap of every warm-up): every round sets its link up afresh, and a shared-memory ring
/// (8 MiB at most in the bench's rows) is fresh memory whose pages fault in on first touch;
/// timing that lap made a 1 MiB row measure page faults (5 to 11 messages a round, about a
/// quarter of the steady rate).
const WARM_BYTES: usize = 8 << 20;

/// Finds how many `size`-byte messages take about `per_round` seconds: runs growing batches
/// until one lasts long enough to time (which also warms the path up).
fn pilot_throughput(
    row: &dyn Row,
    size: usize,
    per_round: f64,
    cpus: &Placement,
) -> anyhow::Result<ThroughputJob> {
    let target = (per_round / 4.0).clamp(0.001, 0.05);
    let mut count = ((64 << 10) / size).clamp(2, 1024);
    loop {
        let job = ThroughputJob {
            size,
            warmup: 1,
            count,
        };
        let elapsed = row.throughput(cpus, &job)?.as_secs_f64().max(1e-6);
        let rate = count as f64 / elapsed;
        if elapsed >= target || count >= 100_000_000 {
            let count = (per_round * rate).clamp(2.0, 1e9) as usize;
            return Ok(ThroughputJob {
                size,
                warmup: (count / 20)
                    .clamp(1, 1000)
                    .max(WARM_BYTES.div_ceil(size).min(1000)),
                count,
            });
        }
        count = (count as f64 * (target / elapsed).clamp(2.0, 100.0)) as usize;
    }
}

/// The count that makes a round of `count` items that lasted `took` last `target` instead
/// (within a factor of two per round, so one slow round cannot swing it far): keeps the run
/// near its time budget when the machine is busier than during the pilot.
fn rescale(count: usize, target: Duration, took: Duration) -> usize {
    let factor = (target.as_secs_f64() / took.as_secs_f64().max(1e-9)).clamp(0.5, 2.0);
    (count as f64 * factor) as usize
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

/// The order of `n` rows in round `round`: rotated by one each round.
fn turn_order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_time_budget_gently() {
        let ms = Duration::from_millis;
        assert_eq!(rescale(1000, ms(100), ms(100)), 1000);
        assert_eq!(rescale(1000, ms(100), ms(125)), 800);
        assert_eq!(rescale(1000, ms(100), ms(1000)), 500);
        assert_eq!(rescale(1000, ms(100), ms(1)), 2000);
    }

    #[test]
    fn rows_take_turns() {
        let orders: Vec<Vec<usize>> = (0..3).map(|r| turn_order(2, r).collect()).collect();
        assert_eq!(orders, [vec![0, 1], vec![1, 0], vec![0, 1]]);
        assert_eq!(turn_order(1, 5).collect::<Vec<_>>(), [0]);
    }

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
