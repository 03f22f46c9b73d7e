//! `ipcbox bench`: runs the benchmark, which is a program of its own, `ipcbox-bench` (the
//! crate `crates/ipcbox-bench`), so that this binary links none of the libraries the bench
//! compares ipcbox with.
//!
//! The program is the one the `IPCBOX_BENCH` environment variable names, else the
//! `ipcbox-bench` beside this executable (where `cargo build` puts both), else the first one on
//! `PATH`. It replaces this process (`exec`), so its output and exit status are the command's.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The environment variable naming the bench program, which overrides the search.
const BENCH_ENV: &str = "IPCBOX_BENCH";
/// The bench program's file name.
const BENCH: &str = "ipcbox-bench";

/// Arguments of `ipcbox bench`, all handed to `ipcbox-bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Options of ipcbox-bench, passed on as they are (`ipcbox bench --help` shows them).
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<OsString>,
}

/// Runs `ipcbox bench`: execs the bench program with the arguments.
///
/// # Errors
///
/// No bench program found (the message says how to get one), or the `exec` failing.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let (program, named) = find()?;
    let err = ipcbox::process::Command::new(&program)
        .args(&args.args)
        .exec();
    let by = if named {
        format!(" (named by {BENCH_ENV})")
    } else {
        String::new()
    };
    Err(err).with_context(|| format!("run the bench program {}{by}", program.display()))
}

/// The bench program, and whether `IPCBOX_BENCH` named it.
fn find() -> anyhow::Result<(PathBuf, bool)> {
    if let Some(named) = std::env::var_os(BENCH_ENV).filter(|p| !p.is_empty()) {
        return Ok((PathBuf::from(named), true));
    }
    let here = std::env::current_exe().context("find the ipcbox executable's directory")?;
    let dir = here.parent().unwrap_or(Path::new("/"));
    let beside = dir.join(BENCH);
    if is_executable(&beside) {
        return Ok((beside, false));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(BENCH))
            .find(|p| is_executable(p))
    });
    if let Some(program) = on_path {
        return Ok((program, false));
    }
    bail!(
        "the bench is a program of its own, {BENCH}, and there is none beside this ipcbox (in \
         {}) or on PATH. From a clone of ipcbox, run it with\n\
         \n    cargo run --release -p {BENCH} -- ARGS\n\
         \nor install it beside ipcbox with\n\
         \n    cargo install --path crates/{BENCH}\n\
         \n(`cargo build --release` builds both into target/release; {BENCH_ENV}=PATH names the \
         program to run)",
        dir.display()
    )
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
