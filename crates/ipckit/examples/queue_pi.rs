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

#![allow(unsafe_code)] // fork; ipckit::process::fork will replace the libc call

use std::io;

use ipckit::queue::RecvError;
use ipckit::Queue;

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

    let mut pids = Vec::new();
    for _ in 0..WORKERS {
        // SAFETY: this program is single-threaded, so the child may do anything; it exits
        // with `_exit` and never returns into main.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            let code = loop {
                match tasks.get() {
                    Ok((first, last)) => {
                        if results.put(partial(first, last)).is_err() {
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
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) };
        }
        pids.push(pid);
    }

    let per = STEPS / CHUNKS;
    for c in 0..CHUNKS {
        tasks.put((c * per, (c + 1) * per))?;
    }
    tasks.close()?; // workers drain the rest, then see Disconnected and exit

    let mut pi = 0.0;
    for _ in 0..CHUNKS {
        pi += results.get()?;
    }
    for pid in pids {
        let mut status = 0;
        // SAFETY: waits for our own child with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    println!(
        "pi ~ {pi:.12} by {WORKERS} workers (error {:.1e})",
        (pi - std::f64::consts::PI).abs()
    );
    Ok(())
}
