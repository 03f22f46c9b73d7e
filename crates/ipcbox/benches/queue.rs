//! Criterion benchmarks of the shared-memory queues' own cost, one thread putting and getting
//! 64-byte messages (no second core, so no cache line moves: what is left is the path through
//! the code, its locks and its commits): `ByteQueue` `put` + `get_into`, the same in batches of
//! 64 (`put_many` + `get_many`), the one-to-one channel's `send_bytes` + `recv_bytes_into`, and
//! for scale the standard library's in-process `sync_channel` of `Vec<u8>` (which needs no
//! shared memory, no crash safety and no process check).
//!
//! Between processes the queues are measured by `ipcbox bench` (rows "queue 1-1", "queue 2-2",
//! "channel spin").
//!
//! `cargo bench -p ipcbox --bench queue`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipcbox::queue::{channel, Options};

const MSG: [u8; 64] = [0xa5; 64];
const BATCH: usize = 64;

fn queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_64B");
    group.throughput(Throughput::Elements(1));
    let q = Options::new()
        .capacity(1024)
        .max_message_size(64)
        .anonymous::<()>()
        .expect("create the bench queue");
    let bytes = q.as_bytes();
    let mut buf = Vec::with_capacity(64);
    group.bench_function(BenchmarkId::new("Queue", "put+get"), |b| {
        b.iter(|| {
            bytes.put(black_box(&MSG)).unwrap();
            bytes.get_into(&mut buf).unwrap();
            black_box(&buf);
        })
    });

    let (tx, rx) = channel::Options::new()
        .capacity(1024)
        .max_message_size(64)
        .anonymous::<()>()
        .expect("create the bench channel");
    group.bench_function(BenchmarkId::new("channel", "send+recv"), |b| {
        b.iter(|| {
            tx.send_bytes(black_box(&MSG)).unwrap();
            rx.recv_bytes_into(&mut buf).unwrap();
            black_box(&buf);
        })
    });

    let (stx, srx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1024);
    group.bench_function(BenchmarkId::new("std sync_channel", "send+recv"), |b| {
        b.iter(|| {
            stx.send(black_box(MSG.to_vec())).unwrap();
            black_box(srx.recv().unwrap());
        })
    });
    group.finish();

    let mut group = c.benchmark_group("queue_64B_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    let msgs = [&MSG[..]; BATCH];
    let mut out = Vec::with_capacity(BATCH);
    group.bench_function(BenchmarkId::new("Queue", "put_many+get_many"), |b| {
        b.iter(|| {
            bytes.put_many(black_box(&msgs)).unwrap();
            let n = bytes.get_many(BATCH, &mut out).unwrap();
            assert_eq!(n, BATCH);
            out.clear();
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    queue(&mut c);
    c.final_summary();
}
