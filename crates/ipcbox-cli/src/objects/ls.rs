//! `ipcbox ls`: the IPC objects of this machine and the evidence of their use.

use std::io::Write;
use std::time::UNIX_EPOCH;

use ipcbox::objects::{self, How, Object};
use serde_json::{json, Value};

use super::{select, short, KindFilter, Owner, Selector};
use crate::state::{self, Detail};

/// Options of `ipcbox ls`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ipcbox ls                              ipcbox's objects, their state and users
  ipcbox ls --all --owner postgres       every object of the user postgres
  ipcbox ls --kind queue --kind store    ipcbox's queues and stores
  ipcbox ls --kind sysv-msg --json       every System V message queue, as JSON
  ipcbox ls /jobs 0x1234abcd msqid:3     these objects

STATE is what `ipcbox watch` shows: a queue's messages and capacity and its peers alive and
dead, a store's use, a message queue's depth. IN USE is the verdict of the evidence (see
`ipcbox clean --help`): an object nobody uses was left behind by a crashed process.")]
pub(crate) struct Args {
    /// Show every IPC object, not only ipcbox's (System V objects carry no name or header, so
    /// they show only with --all, --kind or when named).
    #[arg(long)]
    all: bool,
    /// Print JSON: {"objects": [...], "notes": [...]}.
    #[arg(long)]
    json: bool,
    /// Only objects of KIND (repeatable): posix-shm, posix-sem, posix-mq, sysv-shm, sysv-sem,
    /// sysv-msg, or an ipcbox layout: queue, channel, store, sync, typed. A kind named is
    /// listed whoever made the objects.
    #[arg(long, value_name = "KIND")]
    kind: Vec<KindFilter>,
    /// Only objects owned by USER (a name or a uid).
    #[arg(long, value_name = "USER")]
    owner: Option<Owner>,
    /// Only these objects: a POSIX name (/name), a System V key (0x1234abcd) or id (shmid:N,
    /// semid:N, msqid:N).
    #[arg(value_name = "NAME")]
    names: Vec<Selector>,
}

/// Runs `ipcbox ls`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let listing = objects::list()?;
    let all = args.all || !args.kind.is_empty();
    let (chosen, unmatched) = select(listing.objects, &args.names, all);
    let chosen: Vec<Object> = chosen
        .into_iter()
        .filter(|o| args.kind.is_empty() || args.kind.iter().any(|k| k.matches(o)))
        .filter(|o| args.owner.as_ref().is_none_or(|u| u.uid == o.uid))
        .collect();
    let details: Vec<Detail> = chosen.iter().map(state::of_object).collect();
    if args.json {
        let doc = json!({
            "objects": chosen.iter().zip(&details).map(|(o, d)| to_json(o, d)).collect::<Vec<_>>(),
            "notes": listing.notes,
        });
        writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        // Notes first: what could not be listed matters before what was.
        for note in &listing.notes {
            eprintln!("note: {note}");
        }
        print_table(&chosen, &details)?;
        if chosen.is_empty() && args.names.is_empty() && !args.all {
            eprintln!("note: no ipcbox objects; --all shows every IPC object");
        }
    }
    if !unmatched.is_empty() {
        let list: Vec<String> = unmatched.iter().map(ToString::to_string).collect();
        eprintln!("ipcbox ls: no IPC object matches {}", list.join(", "));
        std::process::exit(1);
    }
    Ok(())
}

pub(crate) fn verdict(obj: &Object) -> &'static str {
    match obj.usage.in_use() {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

pub(crate) fn label(obj: &Object) -> String {
    match (&obj.name, obj.key, obj.id) {
        (Some(name), _, _) => name.clone(),
        (None, Some(key), Some(id)) => format!("{:#010x} id {id}", key.as_raw()),
        _ => String::new(),
    }
}

fn print_table(chosen: &[Object], details: &[Detail]) -> std::io::Result<()> {
    let rows: Vec<[String; 9]> = chosen
        .iter()
        .zip(details)
        .map(|(o, d)| {
            [
                o.kind.name().to_owned(),
                label(o),
                o.size.to_string(),
                o.uid.to_string(),
                format!("{:04o}", o.mode),
                short(o.idle()),
                o.format.map_or("-", |f| f.name()).to_owned(),
                d.summary(),
                verdict(o).to_owned(),
            ]
        })
        .collect();
    let header = [
        "KIND", "OBJECT", "SIZE", "UID", "MODE", "IDLE", "FORMAT", "STATE", "IN USE",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(&format!("{cell:<w$}  "));
        }
        out
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}EVIDENCE", line(&header))?;
    for (row, obj) in rows.iter().zip(chosen) {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}{}", line(&cells), obj.usage.why())?;
    }
    Ok(())
}

/// An object and its state as JSON, as `ls --json` and `watch --json` print them.
pub(crate) fn to_json(obj: &Object, detail: &Detail) -> Value {
    let changed = obj
        .changed
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "kind": obj.kind.name(),
        "name": obj.name,
        "path": obj.path.as_ref().map(|p| p.display().to_string()),
        "key": obj.key.map(|k| k.as_raw()),
        "key_hex": obj.key.map(|k| format!("{:#010x}", k.as_raw())),
        "id": obj.id,
        "size": obj.size,
        "uid": obj.uid,
        "mode": format!("{:04o}", obj.mode),
        "format": obj.format.map(|f| f.name()),
        "ipcbox": obj.is_ipcbox(),
        "changed": changed,
        "idle_seconds": obj.idle().as_secs(),
        "in_use": obj.usage.in_use(),
        "why": obj.usage.why(),
        "users": obj.users.iter().map(|u| json!({
            "pid": u.pid.as_raw(),
            "command": u.command,
            "how": match u.how { How::Mapped => "mapped", How::Open => "open" },
        })).collect::<Vec<_>>(),
        "pids": obj.pids.iter().map(|p| json!({
            "role": p.role,
            "pid": p.pid.as_raw(),
            "alive": p.alive,
        })).collect::<Vec<_>>(),
        "attached": obj.attached,
        "waiters": obj.waiters,
        "state": detail.json(),
    })
}
