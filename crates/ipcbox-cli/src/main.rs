//! The `ipcbox` command: inspect and clean up IPC objects.

use clap::{Parser, Subcommand};

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
    /// List IPC objects (ipcbox's by default) and whether a live process uses them.
    Ls(objects::ls::Args),
    /// Remove IPC objects nobody uses (ipcbox's by default); never one in use.
    Clean(objects::clean::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ls(args) => objects::ls::run(args),
        Command::Clean(args) => objects::clean::run(args),
    }
}
