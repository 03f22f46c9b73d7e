//! Pi computed by 10 worker processes, the result sent back over a pipe, a FIFO or files.
//!
//! The tutorials compute pi by numerical integration of 4/(1+x²) over [0, 1], split across worker
//! processes (the shared part is `common/pi.rs`). Each worker integrates one slice and sends
//! `(slice index, partial sum)` back; the parent adds the partial sums in slice order, so the
//! result is bit-for-bit the single-process one. `pi_tcp` does the same over TCP.
//!
//! ```text
//! cargo run --example pi_workers            # all three transports
//! cargo run --example pi_workers -- fifo    # one of: pipe, fifo, files
//! ```

use std::io::{Read, Write};
use std::path::Path;

use ipcbox::process::{Child, Command};
use ipcbox::{fifo, file, pipe, CreationMode};

#[path = "common/pi.rs"]
mod pi;

use pi::{partial_sum, total, WORKERS};

/// What a worker sends: 16 bytes, below PIPE_BUF, so writes from many workers never interleave.
fn record(index: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(index as u64).to_le_bytes());
    out[8..].copy_from_slice(&partial_sum(index).to_le_bytes());
    out
}

fn parse_record(bytes: &[u8; 16]) -> Result<(usize, f64), String> {
    let index = pi::check_index(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")))?;
    Ok((
        index,
        f64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")),
    ))
}

fn read_records(mut reader: impl Read) -> Result<f64, Box<dyn std::error::Error>> {
    let mut parts = [None; WORKERS];
    for _ in 0..WORKERS {
        let mut buf = [0u8; 16];
        reader.read_exact(&mut buf)?;
        let (index, sum) = parse_record(&buf)?;
        pi::store(&mut parts, index, sum)?;
    }
    Ok(total(&parts)?)
}

fn worker(exe: &Path, transport: &str, index: usize, target: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["worker", transport, &index.to_string()])
        .arg(target);
    cmd
}

fn wait_all(children: Vec<Child>) -> Result<(), Box<dyn std::error::Error>> {
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("worker {} failed: {status}", child.pid()).into());
        }
    }
    Ok(())
}

fn over_pipe(exe: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let (reader, writer) = pipe::new()?;
    let children = (0..WORKERS)
        .map(|i| {
            worker(exe, "pipe", i, Path::new("-"))
                .stdout(writer.try_clone()?)
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    drop(writer); // the workers now hold the only writers: EOF comes when they are done
    let pi = read_records(reader)?;
    wait_all(children)?;
    Ok(pi)
}

fn over_fifo(exe: &Path, dir: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let fifo = fifo::Fifo::create(dir.join("results"), CreationMode::CreateExclusive)?;
    // Open our own writer too, so the reader never sees EOF in the gap between one worker
    // closing and the next opening.
    let reader = fifo::OpenOptions::new()
        .nonblocking(true)
        .open_reader(fifo.path())?;
    let keep_open = fifo.open_writer()?;
    reader.set_nonblocking(false)?;
    let children = (0..WORKERS)
        .map(|i| worker(exe, "fifo", i, fifo.path()).spawn())
        .collect::<Result<Vec<_>, _>>()?;
    let pi = read_records(&reader)?;
    drop(keep_open);
    wait_all(children)?;
    Ok(pi)
}

fn over_files(exe: &Path, dir: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let children = (0..WORKERS)
        .map(|i| worker(exe, "files", i, dir).spawn())
        .collect::<Result<Vec<_>, _>>()?;
    wait_all(children)?;
    let mut parts = [None; WORKERS];
    for (i, part) in parts.iter_mut().enumerate() {
        let bytes: [u8; 16] = file::read(dir.join(format!("part-{i}")))?
            .try_into()
            .map_err(|b: Vec<u8>| format!("part-{i} holds {} bytes, expected 16", b.len()))?;
        *part = Some(parse_record(&bytes)?.1);
    }
    Ok(total(&parts)?)
}

fn run_worker(
    transport: &str,
    index: &str,
    target: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let index: usize = index.parse()?;
    let rec = record(index);
    match transport {
        "pipe" => std::io::stdout().lock().write_all(&rec)?,
        "fifo" => fifo::open_writer(target)?.write_all(&rec)?,
        "files" => file::write_atomic(Path::new(target).join(format!("part-{index}")), rec)?,
        other => return Err(format!("unknown transport {other:?}").into()),
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, transport, index, target] = args.as_slice() {
        if role == "worker" {
            return run_worker(transport, index, target);
        }
    }
    let exe = std::env::current_exe()?;
    let single = pi::single_process();
    println!("single process: pi = {single:.15}");
    let dir = std::env::temp_dir().join(format!("ipcbox-pi-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    let transports: Vec<&str> = match args.first().map(String::as_str) {
        Some(t) => vec![t],
        None => vec!["pipe", "fifo", "files"],
    };
    let mut result = Ok(());
    for transport in transports {
        let pi = match transport {
            "pipe" => over_pipe(&exe),
            "fifo" => over_fifo(&exe, &dir),
            "files" => over_files(&exe, &dir),
            other => Err(format!("unknown transport {other:?}: use pipe, fifo or files").into()),
        };
        match pi {
            Ok(pi) if pi == single => {
                println!("{WORKERS} workers over {transport:5}: pi = {pi:.15} (equal)")
            }
            Ok(pi) => {
                result = Err(format!("{transport}: {pi} differs from {single}").into());
            }
            Err(e) => result = Err(format!("{transport}: {e}").into()),
        }
    }
    std::fs::remove_dir_all(&dir)?;
    result
}
