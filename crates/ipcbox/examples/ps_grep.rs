//! `ps aux | grep <word>` as an API: a two-stage [`Pipeline`] whose output is captured and
//! whose every stage reports its own exit status (bash's `PIPESTATUS`).
//!
//! Run with `cargo run --example ps_grep [word]` (default word: `ps_grep`, which finds this
//! very program — and, as in the shell, the `grep` itself).

use std::io;

use ipcbox::process::{Command, Pipeline};

fn main() -> io::Result<()> {
    let word = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ps_grep".to_owned());

    let mut ps = Command::new("ps");
    ps.arg("aux");
    let mut grep = Command::new("grep");
    grep.arg(&word);
    let out = Pipeline::new().stage(ps).stage(grep).output()?;

    println!("$ ps aux | grep {word}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let names = ["ps aux".to_owned(), format!("grep {word}")];
    for (name, status) in names.iter().zip(&out.statuses) {
        println!("stage `{name}`: {status}");
    }
    match out.status() {
        Some(s) if s.success() => {
            println!("the pipeline found matches (status of the last stage: {s})")
        }
        Some(s) => println!("no match (grep's {s}: 1 means nothing matched)"),
        None => {}
    }
    Ok(())
}
