//! The results as a picture: an SVG written by hand (no plotting library), one panel of
//! horizontal bars on a log scale for the latency and one for the throughput at each message
//! size, ipcbox's rows beside the raw rows and the other libraries; and an HTML page holding
//! it, the advice and the table.
//!
//! Every bar carries its row, metric, message size and value as `data-` attributes, written
//! from the same numbers as the JSON, so a reader (or a test) can check the picture against
//! the data.

use std::fmt::Write as _;

use crate::advice::Advice;
use crate::report::{fmt_count, fmt_us, size_label, Report, RowResult};
use crate::row::Kind;

/// The picture's width, and where the bars start and end.
const WIDTH: f64 = 1000.0;
const LABEL_W: f64 = 250.0;
const PLOT_W: f64 = 620.0;
/// A bar's height and the space between bars and between groups.
const BAR: f64 = 13.0;
const STEP: f64 = 17.0;
const GROUP_GAP: f64 = 6.0;
/// Sizes from this on are drawn in MB/s, smaller ones in messages/s.
const BYTES_FROM: usize = 64 << 10;

/// What one panel draws.
struct Panel<'a> {
    title: String,
    /// The JSON name of the number, for `data-metric`.
    metric: &'static str,
    /// The message size, for `data-size`.
    size: usize,
    /// The row, its value, and (latency) its p99.
    bars: Vec<(&'a RowResult, f64, Option<f64>)>,
    /// How a value is labelled.
    label: fn(f64) -> String,
}

fn kind_class(kind: Kind) -> &'static str {
    match kind {
        Kind::Ipcbox => "ipcbox",
        Kind::Raw => "raw",
        Kind::Competitor => "other",
    }
}

/// `&` `<` `>` `"` escaped for XML and HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The decades `[lo, hi]` (powers of ten) that hold every value.
fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (mut lo, mut hi) = (i32::MAX, i32::MIN);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v.log10().floor() as i32);
        hi = hi.max(v.log10().ceil() as i32);
    }
    if lo > hi {
        return (0, 1);
    }
    (lo, hi.max(lo + 1))
}

/// A value's bar length on the scale `[lo, hi]` decades: at least a sliver for the smallest.
pub fn bar_width(value: f64, lo: i32, hi: i32) -> f64 {
    let span = f64::from(hi - lo);
    let w = PLOT_W * (value.log10() - f64::from(lo)) / span;
    w.clamp(1.0, PLOT_W)
}

/// `0.01`, `1`, `100`, `10k`, `1M`: a power of ten for an axis.
fn decade_label(d: i32, micros: bool) -> String {
    let v = 10f64.powi(d);
    if micros {
        let us = v / 1000.0;
        if us >= 1.0 {
            format!("{us:.0}")
        } else {
            format!("{us}")
        }
    } else if v >= 1e9 {
        format!("{:.0}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

fn panels<'a>(rows: &'a [RowResult], sizes: &[usize]) -> Vec<Panel<'a>> {
    let mut out = Vec::new();
    let latency: Vec<_> = rows
        .iter()
        .filter(|r| r.error.is_none())
        .filter_map(|r| r.latency.as_ref().map(|l| (r, l.p50_ns, Some(l.p99_ns))))
        .collect();
    if !latency.is_empty() {
        let bytes = rows
            .iter()
            .find_map(|r| r.latency.as_ref().map(|l| l.message_bytes))
            .unwrap_or(64);
        out.push(Panel {
            title: format!(
                "Round-trip latency, {} each way: p50 (bar) and p99 (tick), microseconds, log \
                 scale; shorter is better",
                size_label(bytes)
            ),
            metric: "p50_ns",
            size: bytes,
            bars: latency,
            label: |ns| format!("{} us", fmt_us(ns)),
        });
    }
    for &size in sizes {
        let bytes = size >= BYTES_FROM;
        let bars: Vec<_> = rows
            .iter()
            .filter(|r| r.error.is_none())
            .filter_map(|r| {
                let t = r.throughput.iter().find(|t| t.message_bytes == size)?;
                let v = if bytes {
                    t.megabytes_per_sec
                } else {
                    t.messages_per_sec
                };
                Some((r, v, None))
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        out.push(Panel {
            title: format!(
                "Throughput, one way, {} messages: {}, log scale; longer is better",
                size_label(size),
                if bytes {
                    "megabytes (10^6 bytes) per second"
                } else {
                    "messages per second"
                }
            ),
            metric: if bytes {
                "megabytes_per_sec"
            } else {
                "messages_per_sec"
            },
            size,
            bars,
            label: if bytes {
                |v| format!("{} MB/s", fmt_count(v))
            } else {
                |v| format!("{} msg/s", fmt_count(v))
            },
        });
    }
    out
}

/// The SVG picture of `report`.
pub fn svg(report: &Report) -> String {
    let panels = panels(&report.rows, &report.settings.throughput_message_bytes);
    let mut body = String::new();
    let mut y = 64.0;
    for p in &panels {
        y = panel(&mut body, p, y) + 24.0;
    }
    let height = y.ceil();
    let m = &report.machine;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">
<style>
.ipcbox {{ fill: #2f6fb3; }} .raw {{ fill: #9a9a9a; }} .other {{ fill: #e08a2c; }}
.grid {{ stroke: #dddddd; stroke-width: 1; }} .p99 {{ stroke: #222222; stroke-width: 1.5; }}
.title {{ font-size: 13px; font-weight: bold; }} .axis {{ fill: #666666; font-size: 10px; }}
</style>
<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>
<text class="title" x="10" y="20">{}</text>
<text x="10" y="38">{}</text>
<rect class="ipcbox" x="10" y="46" width="12" height="10"/><text x="26" y="55">ipcbox</text>
<rect class="raw" x="80" y="46" width="12" height="10"/><text x="96" y="55">raw system calls (baseline)</text>
<rect class="other" x="260" y="46" width="12" height="10"/><text x="276" y="55">other libraries</text>
"##,
        esc(&format!(
            "ipcbox-bench: {}, {}, {} CPUs, {}",
            m.kernel, m.arch, m.cpus, m.date
        )),
        esc(&format!(
            "median of {} rounds; bars in the order of the table, grouped by mechanism; compare within one run",
            report.settings.rounds
        )),
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// Draws `p` from `top`; returns where it ends.
fn panel(out: &mut String, p: &Panel, top: f64) -> f64 {
    let (lo, hi) = decades(
        p.bars
            .iter()
            .flat_map(|(_, v, p99)| std::iter::once(*v).chain(*p99)),
    );
    let micros = p.metric == "p50_ns";
    let x0 = LABEL_W;
    let _ = writeln!(
        out,
        r#"<g class="panel" data-metric="{}" data-size="{}" data-log-min="{lo}" data-log-max="{hi}" data-x="{x0}" data-width="{PLOT_W}">"#,
        p.metric, p.size
    );
    let _ = writeln!(
        out,
        r#"<text class="title" x="10" y="{}">{}</text>"#,
        top + 14.0,
        esc(&p.title)
    );
    let plot_top = top + 24.0;
    let mut y = plot_top + 12.0;
    let mut group = None;
    let mut lines = String::new();
    for (row, value, p99) in &p.bars {
        if group.is_some() && group != Some(row.group) {
            y += GROUP_GAP;
        }
        group = Some(row.group);
        let w = bar_width(*value, lo, hi);
        let _ = writeln!(
            lines,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y + BAR - 3.0,
            esc(row.name)
        );
        let _ = writeln!(
            lines,
            r#"<rect class="bar {}" x="{x0}" y="{y}" width="{w:.3}" height="{BAR}" data-row="{}" data-group="{}" data-kind="{}" data-metric="{}" data-size="{}" data-value="{value}"><title>{}: {}</title></rect>"#,
            kind_class(row.kind),
            esc(row.name),
            esc(row.group),
            kind_class(row.kind),
            p.metric,
            p.size,
            esc(row.name),
            esc(&(p.label)(*value)),
        );
        let mut end = x0 + w;
        if let Some(p99) = p99 {
            let x = x0 + bar_width(*p99, lo, hi);
            let _ = writeln!(
                lines,
                r#"<line class="p99" x1="{x:.3}" x2="{x:.3}" y1="{}" y2="{}" data-row="{}" data-metric="p99_ns" data-value="{p99}"/>"#,
                y - 2.0,
                y + BAR + 2.0,
                esc(row.name)
            );
            end = end.max(x);
        }
        let _ = writeln!(
            lines,
            r#"<text x="{}" y="{}">{}</text>"#,
            end + 5.0,
            y + BAR - 3.0,
            esc(&(p.label)(*value))
        );
        y += STEP;
    }
    let bottom = y;
    // Grid lines and labels at each decade, under the bars.
    for d in lo..=hi {
        let x = x0 + PLOT_W * f64::from(d - lo) / f64::from(hi - lo);
        let _ = writeln!(
            out,
            r#"<line class="grid" x1="{x:.3}" x2="{x:.3}" y1="{plot_top}" y2="{bottom}"/><text class="axis" x="{x:.3}" y="{}" text-anchor="middle">{}</text>"#,
            plot_top + 8.0,
            decade_label(d, micros)
        );
    }
    out.push_str(&lines);
    out.push_str("</g>\n");
    bottom
}

/// An HTML page: the picture, the advice and the table.
pub fn html(report: &Report, table: &str, advice: &[Advice]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>ipcbox-bench</title>\n<style>\nbody { font-family: sans-serif; margin: 2em; }\n\
         pre { font-size: 12px; }\n</style>\n</head>\n<body>\n<h1>ipcbox-bench</h1>\n\
         <h2>Which mechanism, on this machine</h2>\n<ul>\n",
    );
    for a in advice {
        let _ = writeln!(out, "<li><b>{}</b>: {}</li>", esc(a.question), esc(&a.text));
    }
    out.push_str("</ul>\n<h2>Latency and throughput</h2>\n");
    let svg = svg(report);
    // The SVG inline, without its XML declaration.
    out.push_str(svg.split_once("?>\n").map_or(svg.as_str(), |(_, s)| s));
    let _ = write!(
        out,
        "<h2>Every number</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        esc(table)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_labels() {
        assert_eq!(decades([0.5, 120.0].into_iter()), (-1, 3));
        assert_eq!(decades([100.0].into_iter()), (2, 3));
        assert_eq!(decades(std::iter::empty()), (0, 1));
        assert_eq!(bar_width(1000.0, 0, 4), PLOT_W * 0.75);
        assert_eq!(bar_width(1.0, 0, 4), 1.0);
        assert_eq!(decade_label(2, true), "0.1");
        assert_eq!(decade_label(5, true), "100");
        assert_eq!(decade_label(6, false), "1M");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
