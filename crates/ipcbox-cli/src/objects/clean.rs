//! `ipcbox clean`: remove IPC objects nobody uses, never one in use.

use std::time::Duration;

use ipcbox::objects::{self, Removal, Usage};

use super::{parse_duration, select, short, Selector};

/// Options of `ipcbox clean`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ipcbox clean --dry-run                 what would go, and why the rest stays
  ipcbox clean                           remove ipcbox's objects nobody uses
  ipcbox clean --all --older-than 1h     every IPC object unused and unchanged for an hour
  ipcbox clean /jobs 0x1234abcd          only these, if unused

An object is removed only if nothing uses it: no live process maps or holds open a /dev/shm or
/dev/mqueue object; a System V segment has no attachments; no process waits on a System V
semaphore set and the last process to operate on each of its semaphores is gone; the last sender
and receiver of a System V queue are gone. The evidence is gathered again right before each
removal (a /dev/shm file is first moved aside, so no new user can open it meanwhile, and put back
if a user shows up). Objects changed within --older-than (10s by default) are kept: a process may
have just created one and not yet mapped it.")]
pub(crate) struct Args {
    /// Print what would be removed and what kept; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Consider every IPC object, not only ipcbox's.
    #[arg(long)]
    all: bool,
    /// Keep objects changed (created, resized, operated on) within DURATION: 500ms, 30s, 5m,
    /// 2h, 1d, or 0 to drop the grace window.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    older_than: Duration,
    /// Only these objects: a POSIX name (/name), a System V key (0x1234abcd) or id (shmid:N,
    /// semid:N, msqid:N).
    #[arg(value_name = "NAME")]
    names: Vec<Selector>,
}

/// Runs `ipcbox clean`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let listing = objects::list()?;
    let (chosen, unmatched) = select(listing.objects, &args.names, args.all);
    for note in &listing.notes {
        eprintln!("note: {note}");
    }
    let (mut removed, mut kept, mut failed) = (0, 0, 0);
    for obj in &chosen {
        let outcome = match &obj.usage {
            Usage::Unused(why) if args.dry_run => {
                if obj.idle() < args.older_than {
                    Removal::Kept(format!(
                        "changed {} ago, within the grace window of {}",
                        short(obj.idle()),
                        short(args.older_than)
                    ))
                } else {
                    Removal::Removed(why.clone())
                }
            }
            Usage::Unused(_) => match obj.remove_if_unused(args.older_than) {
                Ok(outcome) => outcome,
                Err(e) => {
                    failed += 1;
                    eprintln!("failed {obj}: {e}");
                    continue;
                }
            },
            other => Removal::Kept(other.to_string()),
        };
        match outcome {
            Removal::Removed(why) => {
                removed += 1;
                let verb = if args.dry_run {
                    "would remove"
                } else {
                    "removed"
                };
                println!("{verb} {obj}: unused: {why}");
            }
            Removal::Kept(why) => {
                kept += 1;
                println!("kept {obj}: {why}");
            }
            Removal::Gone => println!("gone {obj}: removed or replaced by someone else meanwhile"),
        }
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!("{verb} {removed}, kept {kept}");
    if !unmatched.is_empty() {
        let list: Vec<String> = unmatched.iter().map(ToString::to_string).collect();
        eprintln!("ipcbox clean: no IPC object matches {}", list.join(", "));
        std::process::exit(1);
    }
    if failed > 0 {
        eprintln!("ipcbox clean: {failed} object(s) could not be removed");
        std::process::exit(1);
    }
    Ok(())
}
