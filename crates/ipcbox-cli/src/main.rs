//! The `ipcbox` command: inspect and clean up IPC objects, and run the bench.

use clap::{Parser, Subcommand};

mod bench;
mod objects;

#[derive(Parser)]
#[command(
    name = "ipcbox",
    version,
    about = "Inter-process communication toolkit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure latency and throughput of every mechanism between two processes.
    ///
    /// Runs the ipcbox-bench program with ARGS: the one the IPCBOX_BENCH environment variable
    /// names, else the one beside this ipcbox, else the first on PATH.
    #[command(disable_help_flag = true)]
    Bench(bench::Args),
    /// List IPC objects (ipcbox's by default) and whether a live process uses them.
    Ls(objects::ls::Args),
    /// Remove IPC objects nobody uses (ipcbox's by default); never one in use.
    Clean(objects::clean::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Ls(args) => objects::ls::run(args),
        Command::Clean(args) => objects::clean::run(args),
    }
}
