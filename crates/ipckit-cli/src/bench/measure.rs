//! The two-process loops every [`Link`] row shares: the peer runs in a forked child pinned to
//! its own CPU and does nothing but its half of the loop.

use std::io;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::bench::cpus::Placement;
use crate::bench::os::{self, Fork};
use crate::bench::row::{Endpoint, LatencyJob, Link, ThroughputJob};

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
    let shared = link.prepare(job.size).context("set up")?;
    match os::fork()? {
        Fork::Child => os::run_child(|| {
            cpus.pin_child()?;
            let mut end = link.child(shared).context("peer: open its end")?;
            echo(&mut end, job).context("peer: echo")
        }),
        Fork::Parent(child) => {
            let result = link
                .parent(shared)
                .context("open the bench's end")
                .and_then(|mut end| ping(&mut end, job));
            finish(child, result)
        }
    }
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
    let shared = link.prepare(job.size).context("set up")?;
    match os::fork()? {
        Fork::Child => os::run_child(|| {
            cpus.pin_child()?;
            let mut end = link.child(shared).context("peer: open its end")?;
            sink(&mut end, job).context("peer: receive")
        }),
        Fork::Parent(child) => {
            let result = link
                .parent(shared)
                .context("open the bench's end")
                .and_then(|mut end| source(&mut end, job));
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

fn ping<E: Endpoint>(end: &mut E, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
    let msg = vec![FILL; job.size];
    let mut buf = vec![0; job.size];
    for _ in 0..job.warmup {
        end.send(&msg).context("send")?;
        end.recv(&mut buf).context("receive the echo")?;
    }
    let mut samples = Vec::with_capacity(job.count);
    let mut start = Instant::now();
    for _ in 0..job.count {
        end.send(&msg).context("send")?;
        end.recv(&mut buf).context("receive the echo")?;
        let now = Instant::now();
        samples.push(nanos(now - start));
        start = now;
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

fn source<E: Endpoint>(end: &mut E, job: &ThroughputJob) -> anyhow::Result<Duration> {
    let msg = vec![FILL; job.size];
    let mut ack = [0; 1];
    for _ in 0..job.warmup {
        end.send(&msg).context("send")?;
    }
    end.recv(&mut ack).context("receive the warm-up ack")?;
    let start = Instant::now();
    for _ in 0..job.count {
        end.send(&msg).context("send")?;
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
        end.recv(&mut buf)?;
    }
    end.send(&ACK)?;
    for _ in 0..job.count {
        end.recv(&mut buf)?;
    }
    end.send(&ACK)
}

/// Nanoseconds in `d`, saturating (a round trip never lasts 584 years).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
