//! The two-process loops every [`Link`] row shares: the peer runs in a forked child pinned to
//! its own CPU and does nothing but its half of the loop. [`run`] is the fork around them, for
//! rows with loops of their own.

use std::io;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cpus::Placement;
use crate::os::{self, Fork};
use crate::row::{Endpoint, LatencyJob, Link, ThroughputJob};

/// The byte the bench's messages are filled with.
const FILL: u8 = 0xa5;
/// The peer's acknowledgement after a batch of throughput messages.
const ACK: [u8; 1] = [0x06];

/// Runs `job` over `link`: the parent sends each message and waits for its echo.
///
/// # Errors
///
/// Setting up the link, any send or receive, a wrong echo, or a peer that fails.
pub fn latency<L: Link>(link: &L, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
    run(
        link,
        cpus,
        job.size,
        |end| echo(end, job).context("peer: echo"),
        |end| ping(end, job),
    )
}

/// Runs `job` over `link`: the parent sends, the child receives and acknowledges.
///
/// # Errors
///
/// As [`latency`].
pub fn throughput<L: Link>(
    link: &L,
    cpus: &Placement,
    job: &ThroughputJob,
) -> anyhow::Result<Duration> {
    run(
        link,
        cpus,
        job.size,
        |end| sink(end, job).context("peer: receive"),
        |end| source(end, job),
    )
}

/// Sets `link` up for messages of up to `size` bytes and forks the peer, pinned to its CPU,
/// which runs `peer` on its end; the bench runs `bench` on its own end, then reaps the peer.
///
/// # Errors
///
/// Setting up the link, opening an end, `bench`'s error, or a peer that fails.
pub fn run<L: Link, T>(
    link: &L,
    cpus: &Placement,
    size: usize,
    peer: impl FnOnce(&mut L::Child) -> anyhow::Result<()>,
    bench: impl FnOnce(&mut L::Parent) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let shared = link.prepare(size).context("set up")?;
    match os::fork()? {
        Fork::Child => os::run_child(|| {
            cpus.pin_child()?;
            let mut end = link.child(shared).context("peer: open its end")?;
            peer(&mut end)
        }),
        Fork::Parent(child) => {
            let result = link
                .parent(shared)
                .context("open the bench's end")
                .and_then(|mut end| bench(&mut end));
            finish(child, result)
        }
    }
}

/// Reaps the peer; on an error kills it first and says how it ended, since a dead peer is the
/// usual reason for the parent's error.
fn finish<T>(child: os::Child, result: anyhow::Result<T>) -> anyhow::Result<T> {
    match result {
        Ok(value) => {
            child.wait()?;
            Ok(value)
        }
        Err(err) => {
            let how = child.kill();
            Err(err.context(format!("(the peer {how})")))
        }
    }
}

/// How long a timed batch of round trips lasts at least (unless it reaches [`MAX_BATCH`]).
///
/// A clock read costs about as much as a shared-memory round trip: reading the clock after
/// every round trip of a one-line ping-pong doubled its time on the machine this was written on
/// (about 150 ns to 300 ns, though the read alone takes 50 ns), which hid most of what the
/// fast rows cost behind the clock's cost. Fast round trips are therefore timed in batches,
/// each long enough that one clock read is lost in it, and each round trip of a batch is
/// given the batch's mean. Round trips of 10 us or more are timed one by one.
pub const BATCH: Duration = Duration::from_micros(10);
/// The most round trips in one timed batch.
pub const MAX_BATCH: usize = 64;

/// Round trips per timed batch for round trips that take `mean` each (see [`BATCH`]).
fn batch_len(mean: Duration) -> usize {
    let mean = nanos(mean).max(1);
    usize::try_from(nanos(BATCH).div_ceil(mean))
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH)
}

fn ping<E: Endpoint>(end: &mut E, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
    let msg = vec![FILL; job.size];
    let mut buf = vec![0; job.size];
    let mut round_trip = || -> anyhow::Result<()> {
        end.send(&msg).context("send")?;
        end.recv(&mut buf).context("receive the echo")
    };
    // The first round trip sets the link up; the rest of the warm-up says how long one takes.
    if job.warmup > 0 {
        round_trip()?;
    }
    let start = Instant::now();
    for _ in 1..job.warmup {
        round_trip()?;
    }
    let batch = match u32::try_from(job.warmup.saturating_sub(1)) {
        Ok(n) if n > 0 => batch_len(start.elapsed() / n),
        _ => 1,
    };
    let mut samples = Vec::with_capacity(job.count);
    while samples.len() < job.count {
        let n = batch.min(job.count - samples.len());
        let start = Instant::now();
        for _ in 0..n {
            round_trip()?;
        }
        let mean = nanos(start.elapsed()) / n as u64;
        samples.extend(std::iter::repeat_n(mean, n));
    }
    if job.count + job.warmup > 0 && buf != msg {
        bail!("the peer's echo differs from the message sent");
    }
    Ok(samples)
}

fn echo<E: Endpoint>(end: &mut E, job: &LatencyJob) -> io::Result<()> {
    let mut buf = vec![0; job.size];
    for _ in 0..job.warmup + job.count {
        end.recv(&mut buf)?;
        end.send(&buf)?;
    }
    Ok(())
}

// The throughput loops send the same message every time and never read what they receive
// but the ack: `send_again` and `recv_unread` let a typed row keep its own message on both
// sides, as its users do, instead of copying the loop's bytes in and out of it.
fn source<E: Endpoint>(end: &mut E, job: &ThroughputJob) -> anyhow::Result<Duration> {
    let msg = vec![FILL; job.size];
    let mut ack = [0; 1];
    for _ in 0..job.warmup {
        end.send_again(&msg).context("send")?;
    }
    end.recv(&mut ack).context("receive the warm-up ack")?;
    let start = Instant::now();
    for _ in 0..job.count {
        end.send_again(&msg).context("send")?;
    }
    end.recv(&mut ack).context("receive the ack")?;
    let elapsed = start.elapsed();
    if ack != ACK {
        bail!(
            "the peer's ack is {:#04x}, expected {:#04x}",
            ack[0],
            ACK[0]
        );
    }
    Ok(elapsed)
}

fn sink<E: Endpoint>(end: &mut E, job: &ThroughputJob) -> io::Result<()> {
    let mut buf = vec![0; job.size];
    for _ in 0..job.warmup {
        end.recv_unread(&mut buf)?;
    }
    end.send(&ACK)?;
    for _ in 0..job.count {
        end.recv_unread(&mut buf)?;
    }
    end.send(&ACK)
}

/// Nanoseconds in `d`, saturating (a round trip never lasts 584 years).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_last_at_least_the_batch_time_within_bounds() {
        assert_eq!(batch_len(Duration::from_nanos(150)), MAX_BATCH);
        assert_eq!(batch_len(Duration::from_nanos(500)), 20);
        assert_eq!(batch_len(Duration::from_nanos(3_000)), 4);
        assert_eq!(batch_len(Duration::from_micros(10)), 1);
        assert_eq!(batch_len(Duration::from_millis(1)), 1);
        assert_eq!(batch_len(Duration::ZERO), MAX_BATCH);
    }
}
