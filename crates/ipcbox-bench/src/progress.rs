//! A progress bar on stderr, drawn only when stderr is a terminal (never a thread: the bench
//! must stay single-threaded to fork).

use std::io::{self, IsTerminal, Write};
use std::time::Instant;

/// Progress through a known number of steps.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    enabled: bool,
    label: String,
}

const BAR: usize = 24;

impl Progress {
    /// A bar for `total` steps, drawn if stderr is a terminal.
    pub fn new(total: usize) -> Progress {
        Progress {
            total: total.max(1),
            done: 0,
            start: Instant::now(),
            enabled: io::stderr().is_terminal(),
            label: String::new(),
        }
    }

    /// Shows what runs now.
    pub fn set(&mut self, label: String) {
        self.label = label;
        self.draw();
    }

    /// Counts one step done.
    pub fn step(&mut self) {
        self.done = (self.done + 1).min(self.total);
        self.draw();
    }

    /// Prints a line above the bar (always, terminal or not).
    pub fn println(&mut self, line: &str) {
        self.clear();
        eprintln!("{line}");
        self.draw();
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        self.clear();
        self.enabled = false;
    }

    fn clear(&self) {
        if self.enabled {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    fn draw(&self) {
        if !self.enabled {
            return;
        }
        let filled = BAR * self.done / self.total;
        let percent = 100 * self.done / self.total;
        let eta = if self.done == 0 {
            String::from("--:--")
        } else {
            let elapsed = self.start.elapsed().as_secs_f64();
            let left = elapsed * (self.total - self.done) as f64 / self.done as f64;
            format!("{}:{:02} left", left as u64 / 60, left as u64 % 60)
        };
        let label: String = self.label.chars().take(40).collect();
        let mut err = io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {percent:>3}% {eta}  {label}",
            "#".repeat(filled),
            "-".repeat(BAR - filled),
        );
        let _ = err.flush();
    }
}
