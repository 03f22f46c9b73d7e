//! Exit statuses, the errors that choose them, and leaving cleanly on SIGINT or SIGTERM.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, Once};

use ipcbox::signal::{Signal, Signals};

// The statuses are documented in `ipcbox --help` (main.rs).

/// Done.
pub(crate) const OK: i32 = 0;
/// Failed.
pub(crate) const FAILED: i32 = 1;
/// Bad usage.
pub(crate) const USAGE: i32 = 2;
/// Timed out.
pub(crate) const TIMED_OUT: i32 = 3;

/// An error that ends the command with [`TIMED_OUT`].
#[derive(Debug)]
pub(crate) struct TimedOut(pub(crate) String);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimedOut {}

/// An error that ends the command with [`USAGE`]: options that do not go together, found
/// after parsing.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `Err(Usage(..))` with this message.
pub(crate) fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(Usage(msg.into()).into())
}

/// `Ok` when `r` failed only because stdout was closed (`ipcbox ls | head -3`): the reader has
/// what it wanted. For commands whose only writes go to stdout.
pub(crate) fn done_if_stdout_closed(r: anyhow::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if crate::messages::is_closed_output(&e) => Ok(()),
        other => other,
    }
}

/// The status for `err`, after printing it on one line.
pub(crate) fn report(err: &anyhow::Error) -> i32 {
    // The context chain on one line. The library's errors carry their OS error both in their
    // message and as their source: a cause already said is not said again.
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string().replace('\n', " ");
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    eprintln!("ipcbox: {text}");
    if err.downcast_ref::<TimedOut>().is_some() {
        TIMED_OUT
    } else if err.downcast_ref::<Usage>().is_some() {
        USAGE
    } else {
        FAILED
    }
}

/// The status for a command-line error from clap, after printing it: help and version go to
/// stdout as they are, anything else as one line.
pub(crate) fn clap_error(err: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            USAGE
        } else {
            OK
        };
    }
    // The first paragraph says what is wrong; the rest is the usage line and tips.
    let text = err.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = first.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    eprintln!("ipcbox: {line} (see --help)");
    USAGE
}

/// Files this process made that must not outlive it (socket files it bound), removed when a
/// signal ends it.
static MADE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes `path` if SIGINT, SIGTERM or SIGHUP ends the process before [`forget`]; the
/// object's own drop removes it on every other way out.
pub(crate) fn remove_on_signal(path: PathBuf) {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        let Ok(mut signals) = Signals::new([Signal::INT, Signal::TERM, Signal::HUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                for path in MADE.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                    let _ = std::fs::remove_file(path);
                }
                std::process::exit(128 + sig.as_raw());
            }
        });
    });
    MADE.lock().unwrap_or_else(|e| e.into_inner()).push(path);
}

/// Stops watching `path`: its owner removed it.
pub(crate) fn forget(path: &std::path::Path) {
    MADE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}
