//! `ipcbox watch`: a live view of IPC objects, refreshed in place, or snapshots for scripts.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipcbox::objects::{self, Object};
use serde_json::{json, Value};

use crate::endpoint::Target;
use crate::objects::ls::{label, to_json, verdict};
use crate::objects::{parse_duration, select, Selector};
use crate::state::{self, Detail, Totals};

/// Options of `ipcbox watch`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ipcbox watch                           ipcbox's objects, refreshed every second
  ipcbox watch queue:jobs mq:/orders     these two, whether listed or not
  ipcbox watch --once --json | jq .      one snapshot for a script
  ipcbox watch --json -i 200ms -n 50     50 snapshots, one JSON document per line

Each row: the object, its STATE (a queue's messages and capacity, its peers alive and DEAD; a
store's use and objects ABANDONED by a dead creator; a message queue's depth), RATE (messages
put and taken per second between two refreshes, for ipcbox queues and channels), and IN USE
(\"no\" means nobody uses it: left behind by a crashed process; `ipcbox clean` removes it).
Queues and stores are read without attaching to them or locking them.

JSON: {\"time\": seconds since the epoch when the snapshot began, \"interval_seconds\",
\"objects\": [the `ls --json` object with \"state\" and \"rate\"], \"notes\": [...]}; objects
watched by endpoint and not listed have \"kind\", \"name\" and \"state\" only.")]
pub(crate) struct Args {
    /// Watch every IPC object, not only ipcbox's.
    #[arg(long)]
    all: bool,
    /// Print JSON, one document per refresh, one per line.
    #[arg(long)]
    json: bool,
    /// One snapshot, then exit (rates need two, so they are null).
    #[arg(long, conflicts_with = "count")]
    once: bool,
    /// Refresh N times, then exit.
    #[arg(short = 'n', long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Time between refreshes: 200ms, 1s, 5s.
    #[arg(short, long, value_name = "DURATION", default_value = "1s",
          value_parser = parse_duration)]
    interval: Duration,
    /// Only these: a name or key as `ipcbox ls` takes them (/name, 0x1234abcd, msqid:N), or
    /// an endpoint (queue:NAME, store:NAME/ID, shm:NAME, mq:/NAME, sysv-mq:KEY), which is
    /// watched even where the listing cannot see it (POSIX queues without /dev/mqueue).
    #[arg(value_name = "OBJECT")]
    objects: Vec<Watched>,
}

/// An object asked for on the command line.
#[derive(Debug, Clone)]
pub(crate) enum Watched {
    Listed(Selector),
    Direct(Target),
}

impl std::str::FromStr for Watched {
    type Err = String;

    fn from_str(s: &str) -> Result<Watched, String> {
        match s.split_once(':') {
            Some((kind, _)) if ["queue", "store", "shm", "mq", "sysv-mq"].contains(&kind) => {
                s.parse().map(Watched::Direct)
            }
            _ => s.parse().map(Watched::Listed),
        }
    }
}

/// One row of a snapshot.
struct Row {
    /// Where the rate's previous counters are kept.
    key: String,
    object: Option<Object>,
    kind: String,
    label: String,
    detail: Detail,
}

/// Runs `ipcbox watch`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let refreshes = if args.once { Some(1) } else { args.count };
    let tty = std::io::stdout().is_terminal() && !args.json;
    let mut previous: HashMap<String, (Instant, Totals)> = HashMap::new();
    let mut done = 0;
    loop {
        let began = SystemTime::now();
        let (rows, notes, unmatched) = snapshot(&args)?;
        let now = Instant::now();
        let mut rates = Vec::with_capacity(rows.len());
        let mut seen = HashMap::new();
        for row in &rows {
            let totals = row.detail.totals();
            rates.push(totals.and_then(|t| {
                let (then, old) = previous.get(&row.key)?;
                rate(*old, t, now.duration_since(*then))
            }));
            if let Some(t) = totals {
                seen.insert(row.key.clone(), (now, t));
            }
        }
        previous = seen;
        let mut out = std::io::stdout().lock();
        if args.json {
            let doc = json!({
                "time": began.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
                "interval_seconds": args.interval.as_secs_f64(),
                "objects": rows.iter().zip(&rates).map(|(r, rate)| row_json(r, *rate)).collect::<Vec<_>>(),
                "notes": notes,
            });
            writeln!(out, "{doc}")?;
        } else {
            if tty {
                // Home, then clear to the end of the screen: a refresh in place.
                write!(out, "\x1b[H\x1b[J")?;
            } else if done > 0 {
                writeln!(out)?;
            }
            write!(out, "{}", table(&rows, &rates, &args, began))?;
            for note in &notes {
                writeln!(out, "note: {note}")?;
            }
        }
        out.flush()?;
        drop(out);
        if !unmatched.is_empty() {
            let list: Vec<String> = unmatched.iter().map(ToString::to_string).collect();
            anyhow::bail!("no IPC object matches {}", list.join(", "));
        }
        done += 1;
        if refreshes.is_some_and(|n| done >= n) {
            return Ok(());
        }
        std::thread::sleep(
            args.interval
                .saturating_sub(began.elapsed().unwrap_or_default()),
        );
    }
}

/// Messages in and out per second between two readings of a queue's counters.
fn rate(old: Totals, new: Totals, dt: Duration) -> Option<(f64, f64)> {
    let secs = dt.as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    let diff = |a: u64, b: u64| -> Option<f64> {
        if new.wraps32 {
            Some(f64::from((b as u32).wrapping_sub(a as u32)))
        } else {
            b.checked_sub(a).map(|d| d as f64)
        }
    };
    Some((
        diff(old.sent, new.sent)? / secs,
        diff(old.received, new.received)? / secs,
    ))
}

fn snapshot(args: &Args) -> anyhow::Result<(Vec<Row>, Vec<String>, Vec<Selector>)> {
    let listing = objects::list()?;
    let selectors: Vec<Selector> = args
        .objects
        .iter()
        .filter_map(|w| match w {
            Watched::Listed(s) => Some(s.clone()),
            Watched::Direct(_) => None,
        })
        .collect();
    let direct: Vec<&Target> = args
        .objects
        .iter()
        .filter_map(|w| match w {
            Watched::Direct(t) => Some(t),
            Watched::Listed(_) => None,
        })
        .collect();
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    if !selectors.is_empty() || direct.is_empty() {
        let (chosen, missing) = select(listing.objects.clone(), &selectors, args.all);
        unmatched = missing;
        rows.extend(chosen.into_iter().map(|o| Row {
            key: o.to_string(),
            kind: o.kind.name().to_owned(),
            label: label(&o),
            detail: state::of_object(&o),
            object: Some(o),
        }));
    }
    for t in direct {
        rows.push(direct_row(t, &listing.objects));
    }
    Ok((rows, listing.notes, unmatched))
}

/// The row of an endpoint, with its listing entry where there is one.
fn direct_row(t: &Target, listed: &[Object]) -> Row {
    let bare = |n: &str| format!("/{}", n.trim_start_matches('/'));
    let (kind, name, detail) = match t {
        Target::Queue(n) | Target::Shm(n) | Target::Store { name: n, .. } => {
            ("posix-shm", bare(n), state::of_segment(n))
        }
        Target::PosixMq(n) => ("posix-mq", bare(n), state::of_posix_mq(n)),
        Target::SysVMq(k) => (
            "sysv-msg",
            format!("{:#010x}", k.as_raw()),
            state::of_sysv_mq(*k),
        ),
        _ => ("?", t.to_string(), Detail::None),
    };
    let object = listed
        .iter()
        .find(|o| {
            o.kind.name() == kind
                && (o.name.as_deref() == Some(name.as_str())
                    || o.key
                        .is_some_and(|k| format!("{:#010x}", k.as_raw()) == name))
        })
        .cloned();
    Row {
        key: t.to_string(),
        kind: kind.to_owned(),
        label: object.as_ref().map_or(name, label),
        detail,
        object,
    }
}

fn row_json(row: &Row, rate: Option<(f64, f64)>) -> Value {
    let mut v = match &row.object {
        Some(o) => to_json(o, &row.detail),
        None => json!({"kind": row.kind, "name": row.label, "state": row.detail.json()}),
    };
    v["rate"] = match rate {
        Some((put, got)) => json!({"put_per_sec": put, "got_per_sec": got}),
        None => Value::Null,
    };
    v
}

fn table(rows: &[Row], rates: &[Option<(f64, f64)>], args: &Args, began: SystemTime) -> String {
    let header = ["KIND", "OBJECT", "STATE", "RATE put/got per s", "IN USE"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .zip(rates)
        .map(|(r, rate)| {
            [
                r.kind.clone(),
                match r.object.as_ref().and_then(|o| o.format) {
                    Some(f) => format!("{} ({})", r.label, f.name()),
                    None => r.label.clone(),
                },
                r.detail.summary(),
                rate.map_or("-".into(), |(p, g)| format!("{} / {}", count(p), count(g))),
                r.object.as_ref().map_or("?".into(), |o| {
                    if o.usage.in_use() == Some(false) {
                        "no: LEFT BEHIND".to_owned()
                    } else {
                        verdict(o).to_owned()
                    }
                }),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let secs = began.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut out = format!(
        "ipcbox watch: {} object(s) at {:02}:{:02}:{:02} UTC, every {} (Ctrl-C stops)\n",
        rows.len(),
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        crate::send::show(args.interval)
    );
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (c, w) in cells.iter().zip(widths) {
            s.push_str(&format!("{c:<w$}  "));
        }
        s.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(&header));
    for row in &cells {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        out.push_str(&line(&refs));
    }
    if rows.is_empty() {
        out.push_str("(no objects; --all watches every IPC object)\n");
    }
    out
}

/// A rate with a k/M suffix.
fn count(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_between_two_readings() {
        let t = |sent, received, wraps32| Totals {
            sent,
            received,
            wraps32,
        };
        let r = rate(t(10, 5, false), t(30, 15, false), Duration::from_secs(2)).unwrap();
        assert_eq!(r, (10.0, 5.0));
        let r = rate(
            t(u64::from(u32::MAX), 0, true),
            t(4, 0, true),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(r, (5.0, 0.0));
        // A queue made anew under the same name counts from zero: no rate.
        assert_eq!(
            rate(t(10, 5, false), t(1, 0, false), Duration::from_secs(1)),
            None
        );
        assert_eq!(count(1_500_000.0), "1.5M");
        assert_eq!(count(45_000.0), "45k");
    }
}
