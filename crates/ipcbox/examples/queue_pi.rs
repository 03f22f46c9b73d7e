//! Pi by 10 worker processes over queues: the parent puts 100 chunks of the midpoint rule for
//! 4/(1+x^2) on [0, 1] into a task queue, workers put partial sums into a result queue.
//!
//! Python:
//! ```python
//! tasks, results = Queue(), Queue()
//! workers = [Process(target=work, args=(tasks, results)) for _ in range(10)]
//! ```
//!
//! Run with `cargo run --release --example queue_pi`.

#![allow(unsafe_code)] // process::fork is unsafe: see the SAFETY comment at its call

use std::io;

use ipcbox::process::{self, Fork};
use ipcbox::queue::RecvError;
use ipcbox::Queue;

const WORKERS: usize = 10;
const CHUNKS: u64 = 100;
const STEPS: u64 = 10_000_000;

fn partial(first: u64, last: u64) -> f64 {
    let h = 1.0 / STEPS as f64;
    (first..last)
        .map(|i| {
            let x = (i as f64 + 0.5) * h;
            4.0 / (1.0 + x * x)
        })
        .sum::<f64>()
        * h
}

fn main() -> io::Result<()> {
    let tasks: Queue<(u64, u64)> = Queue::new(CHUNKS as usize)?;
    let results: Queue<f64> = Queue::new(CHUNKS as usize)?;

    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        // SAFETY: this program is single-threaded when it forks, so the child may run any
        // code; it leaves with `exit_immediately` and never returns into main.
        match unsafe { process::fork()? } {
            Fork::Child => {
                let code = loop {
                    match tasks.get() {
                        Ok((first, last)) => {
                            if results.put(&partial(first, last)).is_err() {
                                break 1;
                            }
                        }
                        Err(RecvError::Disconnected) => break 0, // closed and drained
                        Err(RecvError::Failed(e)) => {
                            eprintln!("worker: {e}");
                            break 1;
                        }
                    }
                };
                process::exit_immediately(code)
            }
            Fork::Parent(child) => workers.push(child),
        }
    }

    let per = STEPS / CHUNKS;
    for c in 0..CHUNKS {
        tasks.put(&(c * per, (c + 1) * per))?;
    }
    tasks.close()?; // workers drain the rest, then see Disconnected and exit

    let mut pi = 0.0;
    for _ in 0..CHUNKS {
        pi += results.get()?;
    }
    for mut worker in workers {
        let status = worker.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "worker {} failed: {status}",
                worker.pid()
            )));
        }
    }
    let error = (pi - std::f64::consts::PI).abs();
    println!("pi ~ {pi:.12} by {WORKERS} workers (error {error:.1e})");
    // The midpoint rule with 10^7 steps is exact to about 1e-15; summed in another order
    // the chunks may differ in the last bits, never by 1e-9.
    if error > 1e-9 {
        return Err(io::Error::other(format!("pi is off by {error:e}")));
    }
    Ok(())
}
