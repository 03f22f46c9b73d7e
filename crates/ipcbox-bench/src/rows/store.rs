//! The object store (`ipcbox::shm::Store`) at 1 KiB, 1 MiB and 64 MiB, throughput only; each
//! row counts one operation as one "message" of the object's size, so the table's columns
//! read as:
//!
//! * `store get` — a forked process that opened the store by name gets a view of a sealed
//!   object, reads its first and last byte and drops the view (releasing its hold). msg/s is
//!   hand-overs per second, MB/s the object bytes handed over per second: with zero copy,
//!   msg/s stays flat as the size grows and MB/s grows with it.
//! * `store create+seal` — the bench creates an object, copies the payload into it, seals it
//!   and deletes it (so the next one reuses the same, already faulted-in memory). MB/s is the
//!   producer's write bandwidth.
//! * `memcpy raw` — the baseline: the same payload copied into preallocated shared memory
//!   (`MAP_SHARED`, faulted in by the warm-up), nothing else. For `store create+seal`,
//!   "vs raw" is the share of plain memcpy speed; for `store get`, how many copies a zero-copy
//!   hand-over is worth.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ipcbox::shm::{ObjectId, Store};

use crate::cpus::Placement;
use crate::measure::nanos;
use crate::os::{self, Fork};
use crate::rawsys::SharedMemory;
use crate::row::{Info, Kind, LatencyJob, Row, ThroughputJob};
use crate::rows::common::unique_name;

const GROUP: &str = "object store";
/// The object sizes the rows measure.
pub const SIZES: &[usize] = &[1 << 10, 1 << 20, 64 << 20];
/// The byte the payloads are made of.
const FILL: u8 = 0x5a;
/// Room in a store beyond its one object (alignment, rounding).
const SLACK: usize = 64 << 10;

/// The object store rows.
pub fn rows() -> Vec<Box<dyn Row>> {
    let info = |name, kind| Info::new(name, GROUP, kind).sizes(SIZES).no_latency();
    vec![
        Box::new(StoreGet(info("store get", Kind::Ipcbox))),
        Box::new(StoreCreate(info("store create+seal", Kind::Ipcbox))),
        Box::new(MemcpyRaw(info("memcpy raw", Kind::Raw))),
    ]
}

fn no_latency(info: &Info) -> anyhow::Result<Vec<u64>> {
    bail!("{} measures throughput only", info.name)
}

/// A new store holding one sealed object of `size` bytes of [`FILL`].
fn store_with_object(size: usize, id: ObjectId) -> anyhow::Result<Store> {
    let name = unique_name("ipcbox-bench-store");
    let store = Store::create(&name, size + SLACK)
        .with_context(|| format!("create object store {name} for {size} bytes"))?;
    let mut buf = store.create_object(id, size).context("create_object")?;
    buf.fill(FILL);
    buf.seal().context("seal")?;
    Ok(store)
}

/// `Store::get` in another process.
#[derive(Debug)]
struct StoreGet(Info);

impl Row for StoreGet {
    fn info(&self) -> &Info {
        &self.0
    }

    fn latency(&self, _: &Placement, _: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        no_latency(&self.0)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        let id = ObjectId::from_u64(1);
        let store = store_with_object(job.size, id)?;
        let name = store.name().to_owned();
        let (mut rx, tx) = ipcbox::pipe::new().context("pipe for the peer's time")?;
        match os::fork()? {
            Fork::Child => os::run_child(move || {
                cpus.pin_child()?;
                drop(rx);
                // The bench created the store and removes it; this process opens it by name,
                // as an unrelated reader would.
                store.detach();
                drop(store);
                let store = Store::open(&name).with_context(|| format!("open {name}"))?;
                let took = gets(&store, id, job).context("peer: get")?;
                let mut tx = tx;
                tx.write_all(&nanos(took).to_ne_bytes())
                    .context("peer: report the time")
            }),
            Fork::Parent(child) => {
                drop(tx);
                let mut bytes = [0; 8];
                let read = rx
                    .read_exact(&mut bytes)
                    .context("read the peer's time (did it fail?)");
                match read {
                    Ok(()) => {
                        child.wait()?;
                        drop(store);
                        Ok(Duration::from_nanos(u64::from_ne_bytes(bytes)))
                    }
                    Err(err) => Err(err.context(format!("(the peer {})", child.kill()))),
                }
            }
        }
    }
}

/// `job.warmup` then `job.count` timed gets of `id`, each reading the view's first and last
/// byte before dropping it.
fn gets(store: &Store, id: ObjectId, job: &ThroughputJob) -> anyhow::Result<Duration> {
    let get = || -> anyhow::Result<u8> {
        let view = store.get(id)?;
        let (first, last) = (view.first().copied(), view.last().copied());
        if first != Some(FILL) || last != Some(FILL) || view.len() != job.size {
            bail!(
                "object of {} bytes, first {first:?}, last {last:?}; expected {} bytes of {FILL}",
                view.len(),
                job.size
            );
        }
        Ok(black_box(first.unwrap_or(0)))
    };
    for _ in 0..job.warmup {
        get()?;
    }
    let start = Instant::now();
    for _ in 0..job.count {
        get()?;
    }
    Ok(start.elapsed())
}

/// `create_object`, copy, `seal`, `delete` in the bench process.
#[derive(Debug)]
struct StoreCreate(Info);

impl Row for StoreCreate {
    fn info(&self) -> &Info {
        &self.0
    }

    fn latency(&self, _: &Placement, _: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        no_latency(&self.0)
    }

    fn throughput(&self, _: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        let name = unique_name("ipcbox-bench-store");
        let store = Store::create(&name, job.size + SLACK)
            .with_context(|| format!("create object store {name} for {} bytes", job.size))?;
        let payload = vec![FILL; job.size];
        let id = ObjectId::from_u64(1);
        let once = || -> anyhow::Result<()> {
            let mut buf = store.create_object(id, job.size).context("create_object")?;
            buf.copy_from_slice(&payload);
            buf.seal().context("seal")?;
            store.delete(id).context("delete")
        };
        for _ in 0..job.warmup {
            once()?;
        }
        let start = Instant::now();
        for _ in 0..job.count {
            once()?;
        }
        Ok(start.elapsed())
    }
}

/// The payload copied into preallocated anonymous shared memory, as the row `info` (for
/// scale in another group).
pub fn memcpy_row(info: Info) -> Box<dyn Row> {
    Box::new(MemcpyRaw(info.no_latency()))
}

/// The payload copied into preallocated anonymous shared memory.
#[derive(Debug)]
struct MemcpyRaw(Info);

impl Row for MemcpyRaw {
    fn info(&self) -> &Info {
        &self.0
    }

    fn latency(&self, _: &Placement, _: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        no_latency(&self.0)
    }

    fn throughput(&self, _: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        let mem = SharedMemory::new(job.size).context("map shared memory")?;
        let payload = vec![FILL; job.size];
        let once = || {
            mem.write(0, black_box(&payload));
            black_box(&mem);
        };
        for _ in 0..job.warmup.max(1) {
            once();
        }
        let start = Instant::now();
        for _ in 0..job.count {
            once();
        }
        Ok(start.elapsed())
    }
}
