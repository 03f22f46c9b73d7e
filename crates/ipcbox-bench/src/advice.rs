//! The advice section: the tutorials' question, "which mechanism should I use?", answered from
//! the rows just measured, each answer citing the figures it rests on.
//!
//! Only ipcbox rows are recommended (they are what a user of ipcbox can call); raw rows and
//! other libraries are cited beside them for scale. Rows that failed or were filtered out do
//! not count, and a question none of the measured rows answers says so. The questions:
//!
//! * synchronisation only: the shortest round trip among the semaphore and mutex rows;
//! * small messages: the shortest 64-byte round trip among the rows that carry messages, and
//!   the most messages per second at the smallest size;
//! * large data: the most bytes per second at 1 MiB (or the largest size measured);
//! * many producers and consumers: the most messages per second among the rows measured
//!   with several producers and consumers, beside the kernel queues measured one to one;
//! * across hosts: the shortest TCP round trip, with UDP beside it.

use serde::Serialize;

use crate::report::{fmt_count, fmt_us, size_label, RowResult};
use crate::row::Kind;

/// Groups whose rows only synchronise (no payload).
const SYNC_GROUPS: &[&str] = &["semaphore", "mutex"];
/// Groups whose rows move no messages, or objects rather than messages.
const NOT_MESSAGES: &[&str] = &["shm value", "object store"];
/// Groups of mechanisms that reach other hosts.
const TCP_GROUP: &str = "tcp";
const UDP_GROUP: &str = "udp";
/// Groups of kernel queues, which any number of processes may send to and receive from.
const KERNEL_QUEUES: &[&str] = &["posix mq", "sysv mq"];
/// The size "large data" is judged at, when measured.
const LARGE: usize = 1 << 20;

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// The question: "synchronisation only", "small messages", ...
    pub question: &'static str,
    /// The row recommended, if any row answers the question.
    pub choice: Option<&'static str>,
    /// The answer as printed, figures included.
    pub text: String,
    /// Every figure the answer cites, as the rows have them.
    pub figures: Vec<Figure>,
}

/// A figure an answer cites.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The row.
    pub row: &'static str,
    /// Which number of the row.
    pub metric: Metric,
    /// The message size it was measured with.
    pub message_bytes: usize,
    /// The number, as in the row.
    pub value: f64,
}

/// Which number of a row a figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `latency.p50_ns`.
    P50Ns,
    /// `throughput[size].messages_per_sec`.
    MessagesPerSec,
    /// `throughput[size].megabytes_per_sec`.
    MegabytesPerSec,
}

impl Figure {
    fn of(row: &RowResult, metric: Metric, size: usize) -> Option<Figure> {
        let value = match metric {
            Metric::P50Ns => row.latency.as_ref()?.p50_ns,
            Metric::MessagesPerSec | Metric::MegabytesPerSec => {
                let t = row.throughput.iter().find(|t| t.message_bytes == size)?;
                if metric == Metric::MessagesPerSec {
                    t.messages_per_sec
                } else {
                    t.megabytes_per_sec
                }
            }
        };
        let message_bytes = match metric {
            Metric::P50Ns => row.latency.as_ref()?.message_bytes,
            _ => size,
        };
        (value.is_finite() && value > 0.0).then_some(Figure {
            row: row.name,
            metric,
            message_bytes,
            value,
        })
    }

    /// `0.171 us`, `33.5M msg/s at 64 B`, `10.3k MB/s at 1 MiB`.
    fn amount(&self) -> String {
        match self.metric {
            Metric::P50Ns => format!("{} us", fmt_us(self.value)),
            Metric::MessagesPerSec => format!(
                "{} msg/s at {}",
                fmt_count(self.value),
                size_label(self.message_bytes)
            ),
            Metric::MegabytesPerSec => format!(
                "{} MB/s at {}",
                fmt_count(self.value),
                size_label(self.message_bytes)
            ),
        }
    }

    /// `row 0.171 us`.
    fn cite(&self) -> String {
        format!("{} {}", self.row, self.amount())
    }

    fn lower_is_better(&self) -> bool {
        self.metric == Metric::P50Ns
    }
}

/// The figures `metric` at `size` of the rows `keep` selects, best first.
fn ranked(
    rows: &[RowResult],
    keep: impl Fn(&RowResult) -> bool,
    metric: Metric,
    size: usize,
) -> Vec<Figure> {
    let mut figures: Vec<Figure> = rows
        .iter()
        .filter(|r| r.error.is_none() && keep(r))
        .filter_map(|r| Figure::of(r, metric, size))
        .collect();
    figures.sort_by(|a, b| {
        let order = a.value.total_cmp(&b.value);
        if a.lower_is_better() {
            order
        } else {
            order.reverse()
        }
    });
    figures
}

fn ipcbox(r: &RowResult) -> bool {
    r.kind == Kind::Ipcbox
}

/// What an answer says after its choice: "(next: a, b; raw: c; other libraries: d)".
struct Context {
    parts: Vec<String>,
    figures: Vec<Figure>,
}

impl Context {
    fn new() -> Context {
        Context {
            parts: Vec::new(),
            figures: Vec::new(),
        }
    }

    /// Adds `label: figure, figure` for the figures given (nothing if there are none).
    fn add(&mut self, label: &str, figures: &[Figure]) {
        if figures.is_empty() {
            return;
        }
        let cited: Vec<String> = figures.iter().map(Figure::cite).collect();
        self.parts.push(if label.is_empty() {
            cited.join(", ")
        } else {
            format!("{label}: {}", cited.join(", "))
        });
        self.figures.extend_from_slice(figures);
    }

    fn note(&mut self, text: impl Into<String>) {
        self.parts.push(text.into());
    }

    fn text(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.parts.join("; "))
        }
    }
}

/// The answer `choice` (the best figure): "row, amount{what}{context}{tail}".
fn answer(
    question: &'static str,
    choice: Option<Figure>,
    what: &str,
    ctx: Context,
    tail: &str,
) -> Advice {
    match choice {
        Some(best) => {
            let mut figures = vec![best.clone()];
            figures.extend(ctx.figures.iter().cloned());
            Advice {
                question,
                choice: Some(best.row),
                text: format!("{}, {}{what}{}{tail}", best.row, best.amount(), ctx.text()),
                figures,
            }
        }
        None => Advice {
            question,
            choice: None,
            text: "no row of this run answers it (see --list and --filter)".to_owned(),
            figures: Vec::new(),
        },
    }
}

/// The answers, from the rows of one run.
pub fn advise(rows: &[RowResult]) -> Vec<Advice> {
    vec![
        synchronisation(rows),
        small_messages(rows),
        large_data(rows),
        many_to_many(rows),
        across_hosts(rows),
    ]
}

/// The two figures after the best.
fn next(ranked: &[Figure]) -> &[Figure] {
    &ranked[ranked.len().min(1)..ranked.len().min(3)]
}

fn in_groups(groups: &'static [&'static str]) -> impl Fn(&RowResult) -> bool {
    move |r| groups.contains(&r.group)
}

fn synchronisation(rows: &[RowResult]) -> Advice {
    let sync = in_groups(SYNC_GROUPS);
    let mine = ranked(rows, |r| ipcbox(r) && sync(r), Metric::P50Ns, 0);
    let mut ctx = Context::new();
    ctx.add("next", next(&mine));
    let raw = ranked(rows, |r| r.kind == Kind::Raw && sync(r), Metric::P50Ns, 0);
    ctx.add("raw", &raw[..raw.len().min(1)]);
    answer(
        "synchronisation only",
        mine.first().cloned(),
        " round trip",
        ctx,
        "",
    )
}

fn carries_messages(r: &RowResult) -> bool {
    !SYNC_GROUPS.contains(&r.group) && !NOT_MESSAGES.contains(&r.group)
}

fn small_messages(rows: &[RowResult]) -> Advice {
    let mine = ranked(rows, |r| ipcbox(r) && carries_messages(r), Metric::P50Ns, 0);
    let mut ctx = Context::new();
    ctx.add("next", next(&mine));
    let others = ranked(
        rows,
        |r| r.kind == Kind::Competitor && carries_messages(r),
        Metric::P50Ns,
        0,
    );
    ctx.add("other libraries", &others[..others.len().min(1)]);
    let smallest = rows
        .iter()
        .filter(|r| ipcbox(r) && carries_messages(r))
        .flat_map(|r| r.throughput.iter().map(|t| t.message_bytes))
        .min()
        .unwrap_or(0);
    let rates = ranked(
        rows,
        |r| ipcbox(r) && carries_messages(r),
        Metric::MessagesPerSec,
        smallest,
    );
    let tail = match rates.first() {
        Some(most) => {
            ctx.figures.push(most.clone());
            format!("; most per second: {}, {}", most.row, most.amount())
        }
        None => String::new(),
    };
    answer(
        "small messages",
        mine.first().cloned(),
        " round trip",
        ctx,
        &tail,
    )
}

fn large_data(rows: &[RowResult]) -> Advice {
    let sizes: Vec<usize> = rows
        .iter()
        .filter(|r| ipcbox(r) && r.error.is_none())
        .flat_map(|r| r.throughput.iter().map(|t| t.message_bytes))
        .collect();
    let size = if sizes.contains(&LARGE) {
        LARGE
    } else {
        sizes.iter().copied().max().unwrap_or(LARGE)
    };
    let mine = ranked(rows, ipcbox, Metric::MegabytesPerSec, size);
    let mut ctx = Context::new();
    if mine.first().is_some_and(|f| f.row == "store get") {
        ctx.note(
            "a read-only view handed over in place, no copy: MB/s counts the bytes handed over",
        );
    } else if mine.first().is_some_and(|f| f.row.contains("zero-copy")) {
        ctx.note("written and read in place, no copy: MB/s counts the bytes handed over");
    }
    ctx.add("next", next(&mine));
    let raw = ranked(rows, |r| r.kind == Kind::Raw, Metric::MegabytesPerSec, size);
    ctx.add("raw", &raw[..raw.len().min(1)]);
    let others = ranked(
        rows,
        |r| r.kind == Kind::Competitor,
        Metric::MegabytesPerSec,
        size,
    );
    ctx.add("other libraries", &others[..others.len().min(1)]);
    answer("large data", mine.first().cloned(), "", ctx, "")
}

fn many_to_many(rows: &[RowResult]) -> Advice {
    // Rows measured with several producers and consumers are named "N-M" with N, M > 1.
    let many = |r: &RowResult| {
        r.name.split_whitespace().any(|w| {
            w.split_once('-').is_some_and(|(a, b)| {
                a.parse::<u32>().is_ok_and(|a| a > 1) && b.parse::<u32>().is_ok_and(|b| b > 1)
            })
        })
    };
    let smallest = rows
        .iter()
        .filter(|r| ipcbox(r) && many(r))
        .flat_map(|r| r.throughput.iter().map(|t| t.message_bytes))
        .min()
        .unwrap_or(64);
    let mine = ranked(
        rows,
        |r| ipcbox(r) && many(r),
        Metric::MessagesPerSec,
        smallest,
    );
    let kernel = ranked(
        rows,
        |r| ipcbox(r) && KERNEL_QUEUES.contains(&r.group),
        Metric::MessagesPerSec,
        smallest,
    );
    let mut ctx = Context::new();
    if !mine.is_empty() {
        ctx.note("measured with several producers and consumers");
    }
    ctx.add(
        "kernel queues, which take any number of either, measured one to one",
        &kernel[..kernel.len().min(2)],
    );
    answer(
        "many producers and consumers",
        mine.first().cloned(),
        "",
        ctx,
        "",
    )
}

fn across_hosts(rows: &[RowResult]) -> Advice {
    let tcp = ranked(
        rows,
        |r| ipcbox(r) && r.group == TCP_GROUP,
        Metric::P50Ns,
        0,
    );
    let udp = ranked(
        rows,
        |r| ipcbox(r) && r.group == UDP_GROUP,
        Metric::P50Ns,
        0,
    );
    let mut ctx = Context::new();
    if let Some(best) = tcp.first() {
        let row = rows
            .iter()
            .find(|r| r.name == best.row)
            .expect("a ranked row");
        let sizes: Vec<usize> = row.throughput.iter().map(|t| t.message_bytes).collect();
        let small = sizes
            .first()
            .and_then(|&s| Figure::of(row, Metric::MessagesPerSec, s));
        let large = sizes
            .last()
            .and_then(|&s| Figure::of(row, Metric::MegabytesPerSec, s));
        let same: Vec<Figure> = small.into_iter().chain(large).collect();
        if !same.is_empty() {
            let amounts: Vec<String> = same.iter().map(Figure::amount).collect();
            ctx.note(amounts.join(", "));
            ctx.figures.extend(same);
        }
    }
    if let Some(u) = udp.first() {
        ctx.note(format!(
            "{}: UDP datagrams may be lost or reordered and carry at most 64 KiB",
            u.cite()
        ));
        ctx.figures.push(u.clone());
    }
    ctx.note("measured over loopback: a network adds its own delay");
    answer("across hosts", tcp.first().cloned(), " round trip", ctx, "")
}

/// The advice section as printed after the table.
pub fn text(advice: &[Advice]) -> String {
    let mut out = String::from(
        "\nWhich mechanism, on this machine (the best ipcbox row of this run for each job; \
         compare within one run only):\n",
    );
    for a in advice {
        out.push_str(&format!("  {}: {}\n", a.question, a.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Latency, Throughput};

    /// A row with a p50 in ns (if any) and (size, msg/s) pairs; MB/s follows from them.
    fn row(
        name: &'static str,
        group: &'static str,
        kind: Kind,
        p50: Option<f64>,
        rates: &[(usize, f64)],
    ) -> RowResult {
        RowResult {
            name,
            group,
            kind,
            latency: p50.map(|p| Latency {
                message_bytes: 64,
                p50_ns: p,
                p99_ns: p * 2.0,
                vs_raw: None,
                rounds: Vec::new(),
            }),
            throughput: rates
                .iter()
                .map(|&(size, rate)| Throughput {
                    message_bytes: size,
                    messages_per_sec: rate,
                    megabytes_per_sec: rate * size as f64 / 1e6,
                    vs_raw: None,
                    rounds: Vec::new(),
                })
                .collect(),
            error: None,
            unavailable: None,
        }
    }

    fn fixed() -> Vec<RowResult> {
        use Kind::*;
        const M: usize = 1 << 20;
        vec![
            row(
                "pipe",
                "pipe",
                Ipcbox,
                Some(39_000.0),
                &[(64, 1.0e6), (M, 830.0)],
            ),
            row(
                "pipe raw",
                "pipe",
                Raw,
                Some(39_100.0),
                &[(64, 0.9e6), (M, 900.0)],
            ),
            row(
                "socketpair",
                "socketpair",
                Ipcbox,
                Some(27_600.0),
                &[(64, 1.0e6), (M, 5435.0)],
            ),
            row(
                "tcp",
                "tcp",
                Ipcbox,
                Some(37_800.0),
                &[(64, 132_000.0), (M, 1658.0)],
            ),
            row(
                "tcp bytes",
                "tcp",
                Ipcbox,
                Some(37_200.0),
                &[(64, 167_000.0), (M, 2733.0)],
            ),
            row(
                "udp bytes",
                "udp",
                Ipcbox,
                Some(33_700.0),
                &[(64, 166_000.0)],
            ),
            row("mutex hand-off", "mutex", Ipcbox, Some(504.0), &[]),
            row("pthread mutex raw", "mutex", Raw, Some(1440.0), &[]),
            row("semaphore ping-pong", "semaphore", Ipcbox, Some(85.0), &[]),
            row("sem_t raw", "semaphore", Raw, Some(30_100.0), &[]),
            row("named semaphore", "semaphore", Ipcbox, Some(102.0), &[]),
            row("store get", "object store", Ipcbox, None, &[(M, 2.16e6)]),
            row("memcpy raw", "object store", Raw, None, &[(M, 43_500.0)]),
            row(
                "channel spin",
                "queue",
                Ipcbox,
                Some(171.0),
                &[(64, 24.6e6), (M, 9849.0)],
            ),
            row(
                "queue 1-1",
                "queue",
                Ipcbox,
                Some(360.0),
                &[(64, 16.5e6), (M, 1684.0)],
            ),
            row("queue 1-1 batch", "queue", Ipcbox, None, &[(64, 33.5e6)]),
            row(
                "queue 2-2",
                "queue",
                Ipcbox,
                None,
                &[(64, 11.8e6), (M, 542.0)],
            ),
            row(
                "iceoryx2 pubsub",
                "queue",
                Competitor,
                Some(965.0),
                &[(64, 2.94e6), (M, 13_700.0)],
            ),
            row(
                "posix mq",
                "posix mq",
                Ipcbox,
                Some(32_300.0),
                &[(64, 1.19e6)],
            ),
            row(
                "sysv mq",
                "sysv mq",
                Ipcbox,
                Some(30_600.0),
                &[(64, 937_000.0)],
            ),
        ]
    }

    #[test]
    fn answers_from_a_fixed_set_of_results() {
        let advice = advise(&fixed());
        let lines: Vec<String> = advice
            .iter()
            .map(|a| format!("{}: {}", a.question, a.text))
            .collect();
        assert_eq!(
            lines,
            [
                "synchronisation only: semaphore ping-pong, 0.085 us round trip (next: named \
                 semaphore 0.102 us, mutex hand-off 0.504 us; raw: pthread mutex raw 1.44 us)",
                "small messages: channel spin, 0.171 us round trip (next: queue 1-1 0.360 us, \
                 socketpair 27.6 us; other libraries: iceoryx2 pubsub 0.965 us); most per \
                 second: queue 1-1 batch, 33.5M msg/s at 64 B",
                "large data: store get, 2.26M MB/s at 1 MiB (a read-only view handed over in \
                 place, no copy: MB/s counts the bytes handed over; next: channel spin 10.3k \
                 MB/s at 1 MiB, socketpair 5699 MB/s at 1 MiB; raw: memcpy raw 45.6k MB/s at \
                 1 MiB; other libraries: iceoryx2 pubsub 14.4k MB/s at 1 MiB)",
                "many producers and consumers: queue 2-2, 11.8M msg/s at 64 B (measured with \
                 several producers and consumers; kernel queues, which take any number of \
                 either, measured one to one: posix mq 1.19M msg/s at 64 B, sysv mq 937k \
                 msg/s at 64 B)",
                "across hosts: tcp bytes, 37.2 us round trip (167k msg/s at 64 B, 2866 MB/s at \
                 1 MiB; udp bytes 33.7 us: UDP datagrams may be lost or reordered and carry \
                 at most 64 KiB; measured over loopback: a network adds its own delay)",
            ]
        );
        // Every figure cited is a number of the row it names.
        let rows = fixed();
        for a in &advice {
            for f in &a.figures {
                let r = rows.iter().find(|r| r.name == f.row).unwrap();
                assert_eq!(Figure::of(r, f.metric, f.message_bytes).as_ref(), Some(f));
            }
        }
        assert_eq!(advice[0].choice, Some("semaphore ping-pong"));
    }

    #[test]
    fn failed_and_missing_rows_do_not_count() {
        let mut rows = fixed();
        for r in rows.iter_mut().filter(|r| r.name == "semaphore ping-pong") {
            r.error = Some("it broke".into());
        }
        rows.retain(|r| r.group != "tcp");
        let advice = advise(&rows);
        assert_eq!(advice[0].choice, Some("named semaphore"));
        assert_eq!(advice[4].choice, None);
        assert!(
            advice[4].text.contains("no row of this run"),
            "{}",
            advice[4].text
        );
        let printed = text(&advice);
        assert!(printed.contains("  across hosts: no row"), "{printed}");
    }
}
