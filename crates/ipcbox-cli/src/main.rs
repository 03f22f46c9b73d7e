//! The `ipcbox` command: send and receive on any IPC mechanism, watch and list IPC objects,
//! clean up after crashed processes, and run the bench.

use clap::{CommandFactory, Parser, Subcommand};

#[macro_use]
mod endpoint;
mod bench;
mod exit;
mod messages;
mod objects;
mod recv;
mod send;
mod shell;
mod state;
mod watch;

#[derive(Parser)]
#[command(
    name = "ipcbox",
    version,
    about = "Inter-process communication toolkit: send, receive, watch and clean up IPC objects",
    after_help = AFTER_HELP,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = concat!(
    "\
Examples:
  ipcbox send mq:/jobs hello           send a message to a POSIX message queue
  ipcbox recv --follow queue:work      print an ipcbox Queue's messages as they come
  ipcbox watch                         ipcbox's objects: fill, peers, rates, leftovers
  ipcbox ls --json --kind sysv-msg     every System V queue, as JSON
  ipcbox clean --dry-run               what the crashed processes left, and would go
  ipcbox bench --quick --svg b.svg     measure every mechanism, draw the results

",
    endpoint_syntax!(),
    "\n\n",
    "\
Exit status:
  0    done
  1    failed: the object does not exist, the peer went away, an OS error, ...
  2    bad usage: unknown option, endpoint syntax, value out of range, options that do
       not apply to the endpoint
  3    timed out: --timeout passed before the messages asked for came (or had room)
  128+N  ended by signal N (130 for Ctrl-C), after removing the socket files it bound
Errors are one line on stderr, naming the object and the cause. A command that fails
creates and removes nothing.",
);

#[derive(Subcommand)]
enum Command {
    /// Send messages (arguments, a file, stdin) to a queue, socket, FIFO, segment or store.
    Send(send::Args),
    /// Receive messages from a queue, socket, FIFO, segment or store to stdout or a file.
    Recv(recv::Args),
    /// Show ipcbox's objects live: queue depth, peers alive, messages per second, stores.
    Watch(watch::Args),
    /// List IPC objects (ipcbox's by default), their state, and whether a live process uses
    /// them.
    Ls(objects::ls::Args),
    /// Remove IPC objects nobody uses (ipcbox's by default); never one in use.
    Clean(objects::clean::Args),
    /// Measure latency and throughput of every mechanism between two processes.
    ///
    /// Runs the ipcbox-bench program with ARGS: the one the IPCBOX_BENCH environment variable
    /// names, else the one beside this ipcbox, else the first on PATH.
    #[command(disable_help_flag = true)]
    Bench(bench::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(shell::CompletionArgs),
    /// Write the man pages, generated from this command's definition.
    Man(shell::ManArgs),
}

fn main() {
    let code = match Cli::try_parse() {
        Ok(cli) => match run(cli) {
            Ok(()) => exit::OK,
            Err(err) => exit::report(&err),
        },
        Err(err) => exit::clap_error(&err),
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Send(args) => send::run(args),
        Command::Recv(args) => recv::run(args),
        Command::Watch(args) => exit::done_if_stdout_closed(watch::run(args)),
        Command::Ls(args) => exit::done_if_stdout_closed(objects::ls::run(args)),
        Command::Clean(args) => objects::clean::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Completions(args) => shell::completions(args, Cli::command()),
        Command::Man(args) => shell::man(args, Cli::command()),
    }
}
