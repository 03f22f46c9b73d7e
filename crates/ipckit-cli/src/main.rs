//! The `ipckit` command: measure every IPC mechanism on this machine, inspect IPC objects.

use clap::{Parser, Subcommand};

mod bench;

#[derive(Parser)]
#[command(
    name = "ipckit",
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
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(args),
    }
}
