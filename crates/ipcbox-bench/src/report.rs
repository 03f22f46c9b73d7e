//! Results: the structures written as JSON, and the table printed on stdout.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cpus::Placement;
use crate::row::{Info, Kind};

/// Everything one `ipcbox-bench` run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The machine and the run's settings.
    pub machine: Machine,
    /// Rounds per measurement, time budget.
    pub settings: Settings,
    /// One entry per row, in table order.
    pub rows: Vec<RowResult>,
    /// Which mechanism for which job, from these rows.
    pub advice: Vec<crate::advice::Advice>,
}

/// Where the numbers come from.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// CPUs this process may use.
    pub cpus: usize,
    /// Their numbers.
    pub allowed_cpus: Vec<usize>,
    /// CPUs the bench and its peer were pinned to.
    pub placement: Placement,
    /// `uname -s -r`.
    pub kernel: String,
    /// `uname -m`.
    pub arch: String,
    /// When the run started, UTC, RFC 3339.
    pub date: String,
    /// ipcbox's version.
    pub ipcbox_version: &'static str,
}

/// How the run was made.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Total time budget in seconds.
    pub budget_seconds: f64,
    /// Rounds per measurement; rows of a group alternate round by round.
    pub rounds: usize,
    /// Size of the latency messages in bytes.
    pub latency_message_bytes: usize,
    /// Round trips shorter than this are timed in batches lasting at least this long, each
    /// round trip given its batch's mean (one clock read costs about a shared-memory round
    /// trip), microseconds.
    pub latency_batch_micros: u64,
    /// The most round trips in one timed batch.
    pub latency_max_batch: usize,
    /// Sizes of the throughput messages in bytes.
    pub throughput_message_bytes: Vec<usize>,
}

/// One row's results.
#[derive(Debug, Serialize)]
pub struct RowResult {
    /// Row name.
    pub name: &'static str,
    /// Its group.
    pub group: &'static str,
    /// Whose code.
    pub kind: Kind,
    /// Round-trip latency, if measured.
    pub latency: Option<Latency>,
    /// One entry per message size measured.
    pub throughput: Vec<Throughput>,
    /// Why the row could not be measured.
    pub error: Option<String>,
    /// Why the row was not measured though nothing failed: something it needs is not on this
    /// machine (a NATS server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

impl RowResult {
    /// An empty result for the row `info`.
    pub fn new(info: &Info) -> RowResult {
        RowResult {
            name: info.name,
            group: info.group,
            kind: info.kind,
            latency: None,
            throughput: Vec::new(),
            error: None,
            unavailable: None,
        }
    }
}

/// Round-trip latency: the median over rounds of each round's percentiles.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Message size in bytes (each way).
    pub message_bytes: usize,
    /// Median over rounds of the round's median, nanoseconds.
    pub p50_ns: f64,
    /// Median over rounds of the round's 99th percentile, nanoseconds.
    pub p99_ns: f64,
    /// `p50_ns` divided by the group's raw row's `p50_ns`.
    pub vs_raw: Option<f64>,
    /// Every round.
    pub rounds: Vec<LatencyRound>,
}

/// One latency round.
#[derive(Debug, Serialize)]
pub struct LatencyRound {
    /// Round trips recorded.
    pub round_trips: usize,
    /// Median, nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile, nanoseconds.
    pub p99_ns: u64,
    /// Fastest, nanoseconds.
    pub min_ns: u64,
    /// Slowest, nanoseconds.
    pub max_ns: u64,
    /// Mean, nanoseconds.
    pub mean_ns: f64,
}

/// One-way throughput at one message size: the median over rounds.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Message size in bytes.
    pub message_bytes: usize,
    /// Messages per second.
    pub messages_per_sec: f64,
    /// Megabytes (10^6 bytes) per second.
    pub megabytes_per_sec: f64,
    /// `messages_per_sec` divided by the group's raw row's.
    pub vs_raw: Option<f64>,
    /// Every round.
    pub rounds: Vec<ThroughputRound>,
}

/// One throughput round.
#[derive(Debug, Serialize)]
pub struct ThroughputRound {
    /// Messages timed.
    pub messages: usize,
    /// From the first send to the ack, nanoseconds.
    pub elapsed_ns: u64,
    /// `messages` per second.
    pub messages_per_sec: f64,
}

impl Machine {
    /// Describes this machine now.
    pub fn describe(allowed_cpus: Vec<usize>, placement: Placement) -> Machine {
        let uname = rustix::system::uname();
        Machine {
            cpus: allowed_cpus.len(),
            allowed_cpus,
            placement,
            kernel: format!(
                "{} {}",
                uname.sysname().to_string_lossy(),
                uname.release().to_string_lossy()
            ),
            arch: uname.machine().to_string_lossy().into_owned(),
            date: rfc3339(SystemTime::now()),
            ipcbox_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Fills the `vs_raw` ratios: each row against the raw row of its group.
pub fn compare_with_raw(rows: &mut [RowResult]) {
    // A group may have several raw rows (a latency floor and a throughput floor): each number
    // is compared with the first raw row of the group that has that number.
    let raw_p50 = |rows: &[RowResult], group: &str| {
        rows.iter()
            .filter(|r| r.group == group && r.kind == Kind::Raw)
            .find_map(|r| r.latency.as_ref().map(|l| l.p50_ns))
    };
    let raw_rate = |rows: &[RowResult], group: &str, size: usize| {
        rows.iter()
            .filter(|r| r.group == group && r.kind == Kind::Raw)
            .find_map(|r| {
                r.throughput
                    .iter()
                    .find(|t| t.message_bytes == size)
                    .map(|t| t.messages_per_sec)
            })
    };
    for i in 0..rows.len() {
        if rows[i].kind == Kind::Raw {
            continue;
        }
        let group = rows[i].group;
        if let Some(base) = raw_p50(rows, group) {
            if let Some(lat) = rows[i].latency.as_mut() {
                lat.vs_raw = ratio(lat.p50_ns, base);
            }
        }
        let bases: Vec<Option<f64>> = rows[i]
            .throughput
            .iter()
            .map(|t| raw_rate(rows, group, t.message_bytes))
            .collect();
        for (t, base) in rows[i].throughput.iter_mut().zip(bases) {
            if let Some(base) = base {
                t.vs_raw = ratio(t.messages_per_sec, base);
            }
        }
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The table printed on stdout.
pub fn table(report: &Report) -> String {
    let m = &report.machine;
    let s = &report.settings;
    let mut out = String::new();
    let place = match (m.placement.parent, m.placement.child) {
        (Some(p), Some(c)) if p == c => format!("bench and peer both on CPU {p}"),
        (Some(p), Some(c)) => format!("bench on CPU {p}, peer on CPU {c}"),
        _ => String::from("not pinned"),
    };
    let _ = writeln!(
        out,
        "ipcbox-bench — {}, {}, {} CPU{} ({place}), {}; median of {} rounds",
        m.kernel,
        m.arch,
        m.cpus,
        if m.cpus == 1 { "" } else { "s" },
        m.date,
        s.rounds,
    );
    let _ = writeln!(
        out,
        "latency: round trip of {} each way, timed in batches of at least {} us (at most {} round trips) so the clock's cost stays out of it, p99 over batches; throughput: one way, MB = 10^6 bytes; vs raw = p50 / raw p50\n",
        size_label(s.latency_message_bytes),
        s.latency_batch_micros,
        s.latency_max_batch,
    );
    let mut header = vec![
        "row".to_owned(),
        "kind".to_owned(),
        "p50 us".to_owned(),
        "p99 us".to_owned(),
        "vs raw".to_owned(),
    ];
    for &size in &s.throughput_message_bytes {
        header.push(format!("{} msg/s", size_label(size)));
        header.push(format!("{} MB/s", size_label(size)));
    }
    let mut cells = vec![header];
    let mut errors = Vec::new();
    for row in &report.rows {
        let mut line = vec![row.name.to_owned(), row.kind.label().to_owned()];
        match &row.latency {
            Some(l) => {
                line.push(fmt_us(l.p50_ns));
                line.push(fmt_us(l.p99_ns));
                line.push(l.vs_raw.map_or("-".to_owned(), |r| format!("{r:.2}")));
            }
            None if row.error.is_some() => line.extend(["error".into(), "".into(), "".into()]),
            None if row.unavailable.is_some() => {
                line.extend(["unavailable".into(), "".into(), "".into()])
            }
            None => line.extend(["-".into(), "-".into(), "-".into()]),
        }
        for &size in &s.throughput_message_bytes {
            match row.throughput.iter().find(|t| t.message_bytes == size) {
                Some(t) => {
                    line.push(fmt_count(t.messages_per_sec));
                    line.push(fmt_count(t.megabytes_per_sec));
                }
                None => line.extend(["-".into(), "-".into()]),
            }
        }
        cells.push(line);
        if let Some(err) = &row.error {
            errors.push(format!("error in {}: {err}", row.name));
        }
        if let Some(why) = &row.unavailable {
            errors.push(format!("{} not measured: {why}", row.name));
        }
    }
    let columns = cells[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut previous_group = None;
    for (i, line) in cells.iter().enumerate() {
        let group = i.checked_sub(1).map(|r| report.rows[r].group);
        if i > 1 && group != previous_group {
            out.push('\n');
        }
        previous_group = group;
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let w = widths[c];
            if c < 2 {
                let _ = write!(text, "{cell:<w$}  ");
            } else {
                let _ = write!(text, "{cell:>w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    for err in errors {
        let _ = writeln!(out, "\n{err}");
    }
    out
}

/// `64 B`, `4 KiB`, `1 MiB`.
pub fn size_label(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024 && value % 1024 == 0 && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

/// Nanoseconds as microseconds with three significant digits.
pub fn fmt_us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else if us >= 1.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.3}")
    }
}

/// A count or rate with three significant digits and a k/M/G suffix.
pub fn fmt_count(x: f64) -> String {
    let (value, suffix) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e4 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if value >= 100.0 || (suffix.is_empty() && value >= 1000.0) {
        format!("{value:.0}{suffix}")
    } else if value >= 10.0 {
        format!("{value:.1}{suffix}")
    } else {
        format!("{value:.2}{suffix}")
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn labels_and_numbers() {
        assert_eq!(size_label(64), "64 B");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(1000), "1000 B");
        assert_eq!(fmt_us(61_234.0), "61.2");
        assert_eq!(fmt_us(110.0), "0.110");
        assert_eq!(fmt_count(1_234_567.0), "1.23M");
        assert_eq!(fmt_count(45_600.0), "45.6k");
        assert_eq!(fmt_count(2_345.0), "2345");
        assert_eq!(fmt_count(3.5), "3.50");
    }

    fn row(name: &'static str, kind: Kind, p50: f64, rate: f64) -> RowResult {
        RowResult {
            name,
            group: "g",
            kind,
            latency: Some(Latency {
                message_bytes: 64,
                p50_ns: p50,
                p99_ns: p50,
                vs_raw: None,
                rounds: Vec::new(),
            }),
            throughput: vec![Throughput {
                message_bytes: 64,
                messages_per_sec: rate,
                megabytes_per_sec: rate * 64.0 / 1e6,
                vs_raw: None,
                rounds: Vec::new(),
            }],
            error: None,
            unavailable: None,
        }
    }

    #[test]
    fn ratios_against_the_groups_raw_row() {
        let mut rows = vec![
            row("api", Kind::Ipcbox, 110.0, 50.0),
            row("raw", Kind::Raw, 100.0, 100.0),
        ];
        compare_with_raw(&mut rows);
        let api = &rows[0];
        assert_eq!(api.latency.as_ref().unwrap().vs_raw, Some(1.1));
        assert_eq!(api.throughput[0].vs_raw, Some(0.5));
        assert_eq!(rows[1].latency.as_ref().unwrap().vs_raw, None);
    }

    #[test]
    fn each_number_against_the_first_raw_row_that_has_it() {
        let mut floor = row("floor", Kind::Raw, 100.0, 0.0);
        floor.throughput.clear();
        let mut rows = vec![
            floor,
            row("ring", Kind::Raw, 1000.0, 200.0),
            row("api", Kind::Ipcbox, 110.0, 50.0),
        ];
        compare_with_raw(&mut rows);
        let api = &rows[2];
        assert_eq!(api.latency.as_ref().unwrap().vs_raw, Some(1.1));
        assert_eq!(api.throughput[0].vs_raw, Some(0.25));
    }
}
