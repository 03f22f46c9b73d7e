//! `ipcbox ls`: the IPC objects of this machine and the evidence of their use.

use std::time::UNIX_EPOCH;

use ipcbox::objects::{self, How, Object};
use serde_json::{json, Value};

use super::{select, short, Selector};

/// Options of `ipcbox ls`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Show every IPC object, not only ipcbox's (System V objects carry no name or header, so
    /// they show only with --all or when named).
    #[arg(long)]
    all: bool,
    /// Print JSON: {"objects": [...], "notes": [...]}.
    #[arg(long)]
    json: bool,
    /// Only these objects: a POSIX name (/name), a System V key (0x1234abcd) or id (shmid:N,
    /// semid:N, msqid:N).
    #[arg(value_name = "NAME")]
    names: Vec<Selector>,
}

/// Runs `ipcbox ls`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let listing = objects::list()?;
    let (chosen, unmatched) = select(listing.objects, &args.names, args.all);
    if args.json {
        let doc = json!({
            "objects": chosen.iter().map(to_json).collect::<Vec<_>>(),
            "notes": listing.notes,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        // Notes first: what could not be listed matters before what was.
        for note in &listing.notes {
            eprintln!("note: {note}");
        }
        print_table(&chosen);
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

fn verdict(obj: &Object) -> &'static str {
    match obj.usage.in_use() {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn label(obj: &Object) -> String {
    match (&obj.name, obj.key, obj.id) {
        (Some(name), _, _) => name.clone(),
        (None, Some(key), Some(id)) => format!("{:#010x} id {id}", key.as_raw()),
        _ => String::new(),
    }
}

fn print_table(chosen: &[Object]) {
    let rows: Vec<[String; 8]> = chosen
        .iter()
        .map(|o| {
            [
                o.kind.name().to_owned(),
                label(o),
                o.size.to_string(),
                o.uid.to_string(),
                format!("{:04o}", o.mode),
                short(o.idle()),
                o.format.map_or("-", |f| f.name()).to_owned(),
                verdict(o).to_owned(),
            ]
        })
        .collect();
    let header = [
        "KIND", "OBJECT", "SIZE", "UID", "MODE", "IDLE", "FORMAT", "IN USE",
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
    println!("{}EVIDENCE", line(&header));
    for (row, obj) in rows.iter().zip(chosen) {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        println!("{}{}", line(&cells), obj.usage.why());
    }
}

fn to_json(obj: &Object) -> Value {
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
    })
}
