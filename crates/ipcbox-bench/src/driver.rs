//! The driver: measures the rows of a group side by side, one [`Measurement`] at a time (the
//! latency, then the throughput at each size), with the same steps for every measurement.
//!
//! A measurement starts with a pilot per row, growing batches until one lasts long enough to
//! time (which also warms the path up), that sizes the row's rounds to the plan. Then the rows
//! take turns round by round, the order rotating each round so that no row always runs right
//! after another; each round's count is rescaled to keep to the plan when the machine is busier
//! than during the pilot. A row's result is its median round.

use std::time::Duration;

use crate::cpus::Placement;
use crate::progress::Progress;
use crate::report::{self, Latency, LatencyRound, RowResult, Throughput, ThroughputRound};
use crate::row::{Info, LatencyJob, Row, ThroughputJob};
use crate::{measure, stats, union_of_sizes, Plan, LATENCY_SIZE};

/// Measures the rows of one group: the latency of those that have one, then the throughput at
/// each size some row of the group takes; each row's setup runs before and its teardown after.
pub fn run_group(
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
    let mut teardowns = Vec::new();
    for r in &mut running {
        progress.set(format!("{}: set up", r.result.name));
        match r.row.setup() {
            Ok(teardown) => teardowns.push(teardown),
            Err(err) => match err.downcast_ref::<crate::row::Unavailable>() {
                Some(why) => {
                    progress.println(&format!("ipcbox-bench: {}: {why}", r.result.name));
                    r.result.unavailable = Some(why.to_string());
                }
                None => r.fail("set up", err, progress),
            },
        }
    }
    measure(&LatencyOf, &mut running, plan, cpus, progress);
    for size in union_of_sizes(rows) {
        measure(
            &ThroughputAt(size, plan.quick),
            &mut running,
            plan,
            cpus,
            progress,
        );
    }
    progress.set("tear down".to_owned());
    for teardown in teardowns {
        teardown.run();
    }
    running.into_iter().map(|r| r.result).collect()
}

/// One row's state while its group runs: its results, or the error that stopped it.
struct Running<'a> {
    row: &'a dyn Row,
    result: RowResult,
}

impl Running<'_> {
    fn ok(&self) -> bool {
        self.result.error.is_none() && self.result.unavailable.is_none()
    }

    fn fail(&mut self, what: &str, err: anyhow::Error, progress: &mut Progress) {
        let text = format!("{what}: {err:#}");
        progress.println(&format!("ipcbox-bench: {}: {text}", self.result.name));
        self.result.error = Some(text);
    }
}

/// How many items (round trips, messages) a round makes: `warmup` untimed, then `count` timed.
#[derive(Debug, Clone, Copy)]
struct Counts {
    warmup: usize,
    count: usize,
}

/// What the driver measures in one pass over a group: how a round runs, how it is sized and
/// what is kept of it.
trait Measurement {
    /// What a row's round returns.
    type Outcome;
    /// What is kept of a round.
    type Round;
    /// The fewest items a round makes.
    const MIN_COUNT: usize;
    /// The most items a round makes.
    const MAX_COUNT: usize;
    /// The pilot stops growing at this many items, however short its batch.
    const PILOT_MAX: usize;

    /// The fewest items a round of this measurement makes.
    fn min_count(&self) -> usize {
        Self::MIN_COUNT
    }

    /// Names the measurement in the progress line: "latency", "64 B throughput".
    fn label(&self) -> String;

    /// Names the measurement in a row's error: "latency", "throughput, 64 B".
    fn failure(&self) -> String;

    /// Whether `info`'s row takes part.
    fn takes(&self, info: &Info) -> bool;

    /// The time planned for one round of `info`'s row.
    fn round_time(&self, plan: &Plan, info: &Info) -> Duration;

    /// The first pilot batch.
    fn pilot_start(&self) -> Counts;

    /// The warm-up of a round of `count` items.
    fn warmup(&self, count: usize) -> usize;

    /// Runs one round of `row`.
    fn run(&self, row: &dyn Row, counts: Counts, cpus: &Placement)
        -> anyhow::Result<Self::Outcome>;

    /// The timed items of a round of `counts` that gave `outcome`, and the seconds they took.
    fn timed(&self, outcome: &Self::Outcome, counts: Counts) -> (usize, f64);

    /// What is kept of a round of `counts` that gave `outcome`.
    fn round(&self, outcome: Self::Outcome, counts: Counts) -> Self::Round;

    /// Records the result of a row's `rounds` (at least one) in `result`.
    fn record(&self, result: &mut RowResult, rounds: Vec<Self::Round>);
}

/// Runs `what` for the rows of a group that take it: a pilot per row, then the rounds.
fn measure<M: Measurement>(
    what: &M,
    running: &mut [Running<'_>],
    plan: &Plan,
    cpus: &Placement,
    progress: &mut Progress,
) {
    let mut jobs = Vec::new();
    for r in running.iter_mut() {
        let mut job = None;
        if what.takes(r.row.info()) {
            if r.ok() {
                progress.set(format!("{}: {} pilot", r.result.name, what.label()));
                let per_round = what.round_time(plan, r.row.info());
                match pilot(what, r.row, per_round, cpus) {
                    Ok(j) => job = Some(j),
                    Err(err) => r.fail(&what.failure(), err, progress),
                }
            }
            progress.step();
        }
        jobs.push(job);
    }
    let mut rounds: Vec<Vec<M::Round>> = running.iter().map(|_| Vec::new()).collect();
    for round in 0..plan.rounds {
        for i in turn_order(running.len(), round) {
            let r = &mut running[i];
            if !what.takes(r.row.info()) {
                continue;
            }
            if let (true, Some(job)) = (r.ok(), jobs[i]) {
                progress.set(format!(
                    "{}: {} round {}/{}",
                    r.result.name,
                    what.label(),
                    round + 1,
                    plan.rounds
                ));
                match what.run(r.row, job, cpus) {
                    Ok(outcome) => {
                        // The timed part, not the wall time: a row run by a subprocess (the
                        // Python rows) spends far longer starting than the plan's round time,
                        // and rescaling by that would shrink its count round after round
                        // until fixed costs were all it measured.
                        let took = Duration::from_secs_f64(what.timed(&outcome, job).1);
                        rounds[i].push(what.round(outcome, job));
                        let target = what.round_time(plan, r.row.info());
                        let count = rescale(job.count, target, took).max(what.min_count());
                        jobs[i] = Some(Counts { count, ..job });
                    }
                    Err(err) => r.fail(&what.failure(), err, progress),
                }
            }
            progress.step();
        }
    }
    for (r, rounds) in running.iter_mut().zip(rounds) {
        if r.ok() && !rounds.is_empty() {
            what.record(&mut r.result, rounds);
        }
    }
}

/// Finds how many items take about `per_round`: runs growing batches until one lasts long
/// enough to time (which also warms the path up).
fn pilot<M: Measurement>(
    what: &M,
    row: &dyn Row,
    per_round: Duration,
    cpus: &Placement,
) -> anyhow::Result<Counts> {
    let per_round = per_round.as_secs_f64();
    let target = (per_round / 4.0).clamp(0.001, 0.05);
    let start = what.pilot_start();
    let mut count = start.count;
    loop {
        let batch = Counts { count, ..start };
        let outcome = what.run(row, batch, cpus)?;
        let (items, elapsed) = what.timed(&outcome, batch);
        let elapsed = elapsed.max(1e-9);
        if elapsed >= target || count >= M::PILOT_MAX {
            let rate = items.max(1) as f64 / elapsed;
            let count = (per_round * rate).clamp(what.min_count() as f64, M::MAX_COUNT as f64);
            let count = count as usize;
            return Ok(Counts {
                warmup: what.warmup(count),
                count,
            });
        }
        count = (count as f64 * (target / elapsed).clamp(2.0, 100.0)) as usize;
    }
}

/// Round-trip latency with [`LATENCY_SIZE`]-byte messages.
struct LatencyOf;

impl Measurement for LatencyOf {
    type Outcome = Vec<u64>;
    type Round = LatencyRound;
    const MIN_COUNT: usize = 20;
    const MAX_COUNT: usize = 10_000_000;
    const PILOT_MAX: usize = 10_000_000;

    fn label(&self) -> String {
        "latency".to_owned()
    }

    fn failure(&self) -> String {
        "latency".to_owned()
    }

    fn takes(&self, info: &Info) -> bool {
        info.latency
    }

    fn round_time(&self, plan: &Plan, info: &Info) -> Duration {
        plan.latency_round(info)
    }

    fn pilot_start(&self) -> Counts {
        Counts {
            warmup: 10,
            count: 50,
        }
    }

    fn warmup(&self, count: usize) -> usize {
        (count / 20).clamp(10, 1000)
    }

    fn run(&self, row: &dyn Row, counts: Counts, cpus: &Placement) -> anyhow::Result<Vec<u64>> {
        let job = LatencyJob {
            size: LATENCY_SIZE,
            warmup: counts.warmup,
            count: counts.count,
        };
        row.latency(cpus, &job)
    }

    fn timed(&self, samples: &Vec<u64>, _: Counts) -> (usize, f64) {
        (samples.len(), samples.iter().sum::<u64>() as f64 / 1e9)
    }

    fn round(&self, mut samples: Vec<u64>, _: Counts) -> LatencyRound {
        let s = stats::summarize(&mut samples);
        LatencyRound {
            round_trips: samples.len(),
            p50_ns: s.p50,
            p99_ns: s.p99,
            min_ns: s.min,
            max_ns: s.max,
            mean_ns: s.mean,
        }
    }

    fn record(&self, result: &mut RowResult, rounds: Vec<LatencyRound>) {
        let p50s: Vec<f64> = rounds.iter().map(|x| x.p50_ns as f64).collect();
        let p99s: Vec<f64> = rounds.iter().map(|x| x.p99_ns as f64).collect();
        result.latency = Some(Latency {
            message_bytes: LATENCY_SIZE,
            p50_ns: stats::median(&p50s),
            p99_ns: stats::median(&p99s),
            vs_raw: None,
            rounds,
        });
    }
}

/// Bytes sent before a throughput round's clock starts, at least (in at most 1000 messages,
/// the cap of every warm-up): every round sets its link up afresh, and a shared-memory ring
/// (8 MiB at most in the bench's rows) is fresh memory whose pages fault in on first touch;
/// timing that lap made a 1 MiB row measure page faults (5 to 11 messages a round, about a
/// quarter of the steady rate).
const WARM_BYTES: usize = 8 << 20;

/// Bytes a throughput round times, at least (in 2 to [`MIN_BURST`] messages): a round of
/// two 1 MiB messages lasts a tenth of a millisecond, so one preemption by another process
/// on the shared machine decided its rate (rounds of one row at 1 MiB ranged from 0.1 to
/// 17 GB/s in one run, and a slow round halves the next one's count).
const MIN_TIMED_BYTES: usize = 16 << 20;
/// The most messages [`MIN_TIMED_BYTES`] asks of a round.
const MIN_BURST: usize = 64;

/// One-way throughput with messages of this many bytes; in a `--quick` run (true) only for
/// rows whose [`Info::quick_max_message`] allows the size.
struct ThroughputAt(usize, bool);

impl Measurement for ThroughputAt {
    type Outcome = Duration;
    type Round = ThroughputRound;
    const MIN_COUNT: usize = 2;
    const MAX_COUNT: usize = 1_000_000_000;
    const PILOT_MAX: usize = 100_000_000;

    fn min_count(&self) -> usize {
        MIN_TIMED_BYTES
            .div_ceil(self.0.max(1))
            .clamp(Self::MIN_COUNT, MIN_BURST)
    }

    fn label(&self) -> String {
        format!("{} throughput", report::size_label(self.0))
    }

    fn failure(&self) -> String {
        format!("throughput, {}", report::size_label(self.0))
    }

    fn takes(&self, info: &Info) -> bool {
        info.takes(self.0) && (!self.1 || self.0 <= info.quick_max_message)
    }

    fn round_time(&self, plan: &Plan, info: &Info) -> Duration {
        plan.throughput_round(info)
    }

    fn pilot_start(&self) -> Counts {
        Counts {
            warmup: 1,
            count: ((64 << 10) / self.0).clamp(2, 1024),
        }
    }

    fn warmup(&self, count: usize) -> usize {
        (count / 20)
            .clamp(1, 1000)
            .max(WARM_BYTES.div_ceil(self.0).min(1000))
    }

    fn run(&self, row: &dyn Row, counts: Counts, cpus: &Placement) -> anyhow::Result<Duration> {
        let job = ThroughputJob {
            size: self.0,
            warmup: counts.warmup,
            count: counts.count,
        };
        row.throughput(cpus, &job)
    }

    fn timed(&self, elapsed: &Duration, counts: Counts) -> (usize, f64) {
        (counts.count, elapsed.as_secs_f64().max(1e-6))
    }

    fn round(&self, elapsed: Duration, counts: Counts) -> ThroughputRound {
        ThroughputRound {
            messages: counts.count,
            elapsed_ns: measure::nanos(elapsed),
            messages_per_sec: counts.count as f64 / elapsed.as_secs_f64().max(1e-9),
        }
    }

    fn record(&self, result: &mut RowResult, rounds: Vec<ThroughputRound>) {
        let rates: Vec<f64> = rounds.iter().map(|x| x.messages_per_sec).collect();
        let rate = stats::median(&rates);
        result.throughput.push(Throughput {
            message_bytes: self.0,
            messages_per_sec: rate,
            megabytes_per_sec: rate * self.0 as f64 / 1e6,
            vs_raw: None,
            rounds,
        });
    }
}

/// The count that makes a round of `count` items that lasted `took` last `target` instead
/// (within a factor of two per round, so one slow round cannot swing it far): keeps the run
/// near its time budget when the machine is busier than during the pilot.
fn rescale(count: usize, target: Duration, took: Duration) -> usize {
    let factor = (target.as_secs_f64() / took.as_secs_f64().max(1e-9)).clamp(0.5, 2.0);
    (count as f64 * factor) as usize
}

/// The order of `n` rows in round `round`: rotated by one each round.
fn turn_order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n.max(1))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use anyhow::bail;

    use super::*;
    use crate::row::{Kind, Teardown};

    /// A row that measures nothing real and logs what the driver asks of it.
    struct Logged {
        info: Info,
        log: Rc<RefCell<Vec<String>>>,
        setup_fails: bool,
    }

    impl Logged {
        fn note(&self, what: &str) {
            self.log
                .borrow_mut()
                .push(format!("{} {what}", self.info.name));
        }
    }

    impl Row for Logged {
        fn info(&self) -> &Info {
            &self.info
        }

        fn setup(&self) -> anyhow::Result<Teardown> {
            self.note("setup");
            if self.setup_fails {
                bail!("no room");
            }
            let (log, name) = (self.log.clone(), self.info.name);
            Ok(Teardown::new(move || {
                log.borrow_mut().push(format!("{name} teardown"));
            }))
        }

        fn latency(&self, _: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
            self.note("latency");
            Ok(vec![100; job.count])
        }

        fn throughput(&self, _: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
            self.note("throughput");
            Ok(Duration::from_micros(job.count as u64))
        }
    }

    #[test]
    fn setup_and_teardown_bracket_the_group() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let row = |name, setup_fails| Logged {
            info: Info::new(name, "group", Kind::Raw).sizes(&[64]),
            log: log.clone(),
            setup_fails,
        };
        let (a, b) = (row("a", false), row("b", true));
        let plan = Plan {
            per_row: Duration::from_millis(2),
            rounds: 2,
            quick: false,
        };
        let results = run_group(
            &[&a, &b],
            &plan,
            &Placement::default(),
            &mut Progress::new(1),
        );
        let log = log.borrow();
        assert_eq!(log[..2], ["a setup", "b setup"]);
        assert_eq!(log.last().map(String::as_str), Some("a teardown"));
        assert!(log[2..log.len() - 1]
            .iter()
            .all(|l| l == "a latency" || l == "a throughput"));
        assert!(log.iter().any(|l| l == "a throughput"), "{log:?}");
        assert!(results[0].error.is_none() && results[0].latency.is_some());
        assert_eq!(results[0].throughput.len(), 1);
        assert_eq!(results[1].error.as_deref(), Some("set up: no room"));
        assert!(results[1].latency.is_none() && results[1].throughput.is_empty());
    }

    #[test]
    fn a_quick_run_skips_sizes_over_a_rows_quick_limit() {
        let info = Info::new("ring", "group", Kind::Raw)
            .sizes(&[64, 64 << 20])
            .quick_max_message(1 << 20);
        assert!(ThroughputAt(64, true).takes(&info));
        assert!(!ThroughputAt(64 << 20, true).takes(&info));
        assert!(ThroughputAt(64 << 20, false).takes(&info));
    }

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
}
