//! A quick measure of the queue and the one-to-one channel between two processes: 64-byte
//! messages one way (throughput) and a ping-pong (round-trip latency). Criterion benchmarks
//! and `ipckit bench` give the careful numbers; this is a smoke check.
//!
//! Run with `cargo run --release --example queue_speed`.

#![allow(unsafe_code)] // fork; ipckit::process::fork will replace the libc call

use std::io;
use std::time::{Duration, Instant};

use ipckit::queue::{channel, Options, WaitPolicy};

const N: usize = 2_000_000;
const PINGS: usize = 100_000;
const SPIN: WaitPolicy = WaitPolicy::SpinThenPark(Duration::from_millis(1));

fn fork(f: impl FnOnce()) -> io::Result<i32> {
    // SAFETY: single-threaded program; the child exits with `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            f();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) }
        }
        pid => Ok(pid),
    }
}

fn reap(pid: i32) {
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

fn report(what: &str, n: usize, t: Duration) {
    println!(
        "{what:<44} {:>8.2} M msgs/s  {:>8.3} us/msg",
        n as f64 / t.as_secs_f64() / 1e6,
        t.as_secs_f64() * 1e6 / n as f64
    );
}

fn main() -> io::Result<()> {
    let msg = [7u8; 64];
    for (label, policy) in [("park", WaitPolicy::Park), ("spin", SPIN)] {
        let q = Options::new()
            .capacity(1024)
            .wait_policy(policy)
            .anonymous::<()>()?;
        let pid = fork(|| {
            for _ in 0..N {
                let _ = q.as_bytes().put(&msg);
            }
        })?;
        let mut buf = Vec::new();
        let t = Instant::now();
        for _ in 0..N {
            q.as_bytes().get_into(&mut buf).map_err(io::Error::from)?;
        }
        report(
            &format!("Queue 1->1 64 B throughput ({label})"),
            N,
            t.elapsed(),
        );
        reap(pid);

        let (tx, rx) = channel::Options::new()
            .capacity(1024)
            .max_message_size(64)
            .wait_policy(policy)
            .anonymous::<()>()?;
        let pid = fork(|| {
            for _ in 0..N {
                let _ = tx.send_bytes(&msg);
            }
        })?;
        let t = Instant::now();
        for _ in 0..N {
            rx.recv_bytes_into(&mut buf).map_err(io::Error::from)?;
        }
        report(
            &format!("channel 64 B throughput ({label})"),
            N,
            t.elapsed(),
        );
        reap(pid);
        drop((tx, rx));

        let (tx1, rx1) = channel::Options::new()
            .max_message_size(64)
            .wait_policy(policy)
            .anonymous::<()>()?;
        let (tx2, rx2) = channel::Options::new()
            .max_message_size(64)
            .wait_policy(policy)
            .anonymous::<()>()?;
        let pings = if label == "park" { PINGS / 20 } else { PINGS };
        let pid = fork(|| {
            let mut b = Vec::new();
            for _ in 0..pings {
                if rx1.recv_bytes_into(&mut b).is_err() || tx2.send_bytes(&b).is_err() {
                    return;
                }
            }
        })?;
        let t = Instant::now();
        for _ in 0..pings {
            tx1.send_bytes(&msg).map_err(io::Error::from)?;
            rx2.recv_bytes_into(&mut buf).map_err(io::Error::from)?;
        }
        report(
            &format!("channel 64 B round trip ({label})"),
            pings,
            t.elapsed(),
        );
        reap(pid);
    }
    Ok(())
}
