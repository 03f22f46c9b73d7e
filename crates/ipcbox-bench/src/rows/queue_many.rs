//! The [`Queue`](ipcbox::Queue) between several producer and several consumer processes: the
//! throughput of all of them together, and proof that nothing was lost or duplicated.
//!
//! Each producer puts its share of sequence-numbered messages (producer number and sequence
//! number in the first 12 bytes); each consumer marks what it got in a bitmap and reports
//! duplicates and bad messages. The bench waits for the producers to exit, then puts one
//! one-byte stop message per consumer (after everything else, so each consumer takes exactly
//! one and all data before it), times the consumers' "done", and then checks the bitmaps:
//! every message exactly once, or the row fails loudly.
//!
//! With a batch size over 1 ([`QueueMany::batched`]), producers use `put_many` and consumers
//! `get_many_into` (one flat buffer, no allocation per message) with that many messages at
//! most per call.

use std::fs::File;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use ipcbox::queue::WaitPolicy;

use crate::cpus::Placement;
use crate::os::{self, Fork};
use crate::row::{Info, LatencyJob, Row, ThroughputJob};
use crate::rows::queue::{prefault, queue_options};

/// Most bytes a batched producer puts per `put_many` call (fewer messages per call when they
/// are large: batching is for small messages).
const BATCH_BYTES: usize = 1 << 20;

/// Bytes of the header each message carries: producer number (u32) and sequence number (u64).
const HEADER: usize = 12;

/// `producers` processes putting into one queue, `consumers` processes getting from it.
#[derive(Debug)]
pub struct QueueMany {
    info: Info,
    producers: usize,
    consumers: usize,
    policy: WaitPolicy,
    batch: usize,
}

impl QueueMany {
    /// The row `info` (throughput only).
    pub fn new(info: Info, producers: usize, consumers: usize, policy: WaitPolicy) -> QueueMany {
        QueueMany {
            info,
            producers,
            consumers,
            policy,
            batch: 1,
        }
    }

    /// Producers put and consumers get up to `batch` messages per call (`put_many`,
    /// `get_many`).
    pub fn batched(mut self, batch: usize) -> QueueMany {
        self.batch = batch.max(1);
        self
    }
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

/// What a consumer reports: duplicates and bad messages it saw, then its bitmap.
struct Report {
    duplicates: u64,
    bad: u64,
    bits: Vec<u8>,
}

impl Row for QueueMany {
    fn info(&self) -> &Info {
        &self.info
    }

    fn latency(&self, _cpus: &Placement, _job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        bail!("{} measures throughput only", self.info.name)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        ensure!(
            job.size >= HEADER,
            "{} needs messages of at least {HEADER} bytes for its sequence numbers",
            self.info.name
        );
        let per = job.count.div_ceil(self.producers).max(1);
        let total = per * self.producers;
        let queue = queue_options(job.size, self.policy)
            .anonymous::<()>()
            .context("create the queue")?;
        prefault(&queue, job.size).context("write the queue's memory once")?;
        let turn = pipe().context("pipe")?;
        let (mut ready_r, ready_w) = pipe().context("pipe")?;
        let (go_r, mut go_w) = pipe().context("pipe")?;
        // Each producer writes a byte here after its last put: the clock stops on the work,
        // not on the processes' exit (tearing down a forked copy of a large parent can take
        // milliseconds, which a round of a few large messages would count).
        let (mut put_r, put_w) = pipe().context("pipe")?;
        let mut results = Vec::new();
        for _ in 0..self.consumers {
            results.push(pipe().context("pipe")?);
        }
        let mut children = Vec::new();

        for p in 0..self.producers {
            match os::fork()? {
                Fork::Child => {
                    drop(results);
                    drop(go_w);
                    drop(put_r);
                    let mut put_w = &put_w;
                    os::run_child(|| {
                        cpus.pin_parent()?;
                        let q = queue.as_bytes();
                        let mut msg = vec![0xa5; job.size];
                        msg[..4].copy_from_slice(&(p as u32).to_le_bytes());
                        // Built before the clock starts; large messages in smaller batches.
                        let per_call = self.batch.min(per).min((BATCH_BYTES / job.size).max(1));
                        let mut batch =
                            vec![msg.clone(); if self.batch > 1 { per_call } else { 0 }];
                        prefault_in_turn(&queue, job.size, &turn, &ready_w)?;
                        wait_for_go(&go_r)?;
                        if self.batch > 1 {
                            let mut seq = 0;
                            while seq < per {
                                let n = per_call.min(per - seq);
                                for (i, m) in batch[..n].iter_mut().enumerate() {
                                    m[4..12].copy_from_slice(&((seq + i) as u64).to_le_bytes());
                                }
                                q.put_many(&batch[..n])
                                    .map_err(|e| anyhow::anyhow!("producer {p}: put_many: {e}"))?;
                                seq += n;
                            }
                        } else {
                            for seq in 0..per as u64 {
                                msg[4..12].copy_from_slice(&seq.to_le_bytes());
                                q.put(&msg)
                                    .map_err(|e| anyhow::anyhow!("producer {p}: put: {e}"))?;
                            }
                        }
                        Ok(put_w.write_all(&[1])?)
                    })
                }
                Fork::Parent(child) => children.push(child),
            }
        }
        let mut consumers = Vec::new();
        for c in 0..self.consumers {
            match os::fork()? {
                Fork::Child => {
                    drop(go_w);
                    drop(put_r);
                    let mut mine = None;
                    for (i, (r, w)) in results.into_iter().enumerate() {
                        drop(r);
                        if i == c {
                            mine = Some(w);
                        }
                    }
                    os::run_child(|| {
                        cpus.pin_child()?;
                        let mut out = mine.context("result pipe")?;
                        prefault_in_turn(&queue, job.size, &turn, &ready_w)?;
                        wait_for_go(&go_r)?;
                        let report = consume(&queue, self.producers, per, self.batch)?;
                        out.write_all(&[1])?;
                        out.write_all(&report.duplicates.to_le_bytes())?;
                        out.write_all(&report.bad.to_le_bytes())?;
                        out.write_all(&report.bits)?;
                        Ok(())
                    })
                }
                Fork::Parent(child) => consumers.push(child),
            }
        }
        drop((go_r, put_w, ready_w));
        let mut readers = Vec::new();
        for (r, w) in results {
            drop(w);
            readers.push(r);
        }

        let everyone = self.producers + self.consumers;
        (&turn.1)
            .write_all(&[1])
            .context("let the first process touch the queue")?;
        ready_r
            .read_exact(&mut vec![0; everyone])
            .context("wait for every process to touch the queue")?;
        go_w.write_all(&vec![1; everyone])
            .context("start the producers and consumers")?;
        let start = Instant::now();
        let mut put = vec![0; self.producers];
        if let Err(e) = put_r.read_exact(&mut put) {
            // A producer failed: its exit status says why.
            for (p, child) in children.into_iter().enumerate() {
                child.wait().with_context(|| format!("producer {p}"))?;
            }
            return Err(e).context("a producer ended without putting its share");
        }
        for _ in 0..self.consumers {
            queue
                .as_bytes()
                .put(&[0])
                .map_err(|e| anyhow::anyhow!("put a stop message: {e}"))?;
        }
        for (c, r) in readers.iter_mut().enumerate() {
            let mut done = [0];
            r.read_exact(&mut done)
                .with_context(|| format!("consumer {c} ended without reporting"))?;
        }
        let elapsed = start.elapsed();
        for (p, child) in children.into_iter().enumerate() {
            child.wait().with_context(|| format!("producer {p}"))?;
        }

        let mut seen = vec![0u8; total.div_ceil(8)];
        let (mut duplicates, mut bad, mut overlap) = (0, 0, 0u64);
        for (c, r) in readers.iter_mut().enumerate() {
            let report = read_report(r, seen.len())
                .with_context(|| format!("read consumer {c}'s report"))?;
            duplicates += report.duplicates;
            bad += report.bad;
            for (s, b) in seen.iter_mut().zip(&report.bits) {
                overlap += u64::from((*s & b).count_ones());
                *s |= b;
            }
        }
        for (c, child) in consumers.into_iter().enumerate() {
            child.wait().with_context(|| format!("consumer {c}"))?;
        }
        let received: u64 = seen.iter().map(|b| u64::from(b.count_ones())).sum();
        let lost = total as u64 - received;
        if lost != 0 || duplicates != 0 || overlap != 0 || bad != 0 {
            bail!(
                "{} producers x {per} messages: {lost} lost, {} delivered twice, {bad} garbled",
                self.producers,
                duplicates + overlap
            );
        }
        // The harness divides job.count by the time; we moved `total`.
        Ok(elapsed.mul_f64(job.count as f64 / total as f64))
    }
}

/// Writes the whole queue once from this process, one process at a time (`turn` passes a
/// byte from one to the next), then says so on `ready`. A forked child does not inherit the
/// page tables of a shared mapping: without this, a round's first touch of each page (16 Ki
/// pages for the 1 MiB messages' ring) would be timed in every process.
fn prefault_in_turn(
    queue: &ipcbox::Queue<()>,
    size: usize,
    turn: &(File, File),
    ready: &File,
) -> anyhow::Result<()> {
    /// Passes the turn on and reports ready even when touching failed or panicked, so the
    /// others and the parent are not left waiting for this process.
    struct PassOn<'a>(&'a File, &'a File);
    impl Drop for PassOn<'_> {
        fn drop(&mut self) {
            let _ = (&*self.0).write_all(&[1]);
            let _ = (&*self.1).write_all(&[1]);
        }
    }
    (&turn.0).read_exact(&mut [0]).context("wait for my turn")?;
    let _pass = PassOn(&turn.1, ready);
    prefault(queue, size).context("write the queue's memory once")
}

fn wait_for_go(go: &File) -> io::Result<()> {
    let mut byte = [0];
    (&*go).read_exact(&mut byte)
}

/// Gets messages (up to `batch` per call) until a one-byte stop message, marking each
/// (producer, sequence) seen.
fn consume(
    queue: &ipcbox::Queue<()>,
    producers: usize,
    per: usize,
    batch: usize,
) -> anyhow::Result<Report> {
    let q = queue.as_bytes();
    let mut report = Report {
        duplicates: 0,
        bad: 0,
        bits: vec![0u8; (producers * per).div_ceil(8)],
    };
    if batch > 1 {
        let (mut buf, mut ends) = (Vec::new(), Vec::with_capacity(batch));
        loop {
            buf.clear();
            ends.clear();
            q.get_many_into(batch, &mut buf, &mut ends)
                .map_err(|e| anyhow::anyhow!("consumer: get_many_into: {e}"))?;
            let mut from = 0;
            for &end in &ends {
                if end - from == 1 {
                    return Ok(report);
                }
                mark(&mut report, &buf[from..end], producers, per)?;
                from = end;
            }
        }
    }
    let mut buf = Vec::new();
    loop {
        q.get_into(&mut buf)
            .map_err(|e| anyhow::anyhow!("consumer: get: {e}"))?;
        if buf.len() == 1 {
            return Ok(report);
        }
        mark(&mut report, &buf, producers, per)?;
    }
}

/// Marks the message `buf` seen in `report`, counting it bad or a duplicate.
fn mark(report: &mut Report, buf: &[u8], producers: usize, per: usize) -> anyhow::Result<()> {
    let (Some(p), Some(seq)) = (buf.get(..4), buf.get(4..HEADER)) else {
        report.bad += 1;
        return Ok(());
    };
    let p = u32::from_le_bytes(p.try_into()?) as usize;
    let seq = u64::from_le_bytes(seq.try_into()?) as usize;
    if p >= producers || seq >= per {
        report.bad += 1;
        return Ok(());
    }
    let i = p * per + seq;
    let (byte, bit) = (i / 8, 1u8 << (i % 8));
    if report.bits[byte] & bit != 0 {
        report.duplicates += 1;
    }
    report.bits[byte] |= bit;
    Ok(())
}

fn read_report(r: &mut File, len: usize) -> io::Result<Report> {
    let mut word = [0u8; 8];
    r.read_exact(&mut word)?;
    let duplicates = u64::from_le_bytes(word);
    r.read_exact(&mut word)?;
    let bad = u64::from_le_bytes(word);
    let mut bits = vec![0u8; len];
    r.read_exact(&mut bits)?;
    Ok(Report {
        duplicates,
        bad,
        bits,
    })
}
