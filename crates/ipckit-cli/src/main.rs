//! The `ipckit` command: measure every IPC mechanism on this machine, inspect IPC objects.

use clap::{Parser, Subcommand};

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
    Bench,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench => Ok(()),
    }
}
