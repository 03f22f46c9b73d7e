//! Criterion benchmarks of `ipcbox::shm::store`: `get` (+ release) of a sealed object of 1 KiB,
//! 1 MiB and 64 MiB — a view in place, so its cost must not grow with the size — and
//! `create_object` + write + `seal` (+ `delete`) of the same sizes next to a plain `memcpy` of
//! the bytes into memory that is already mapped.
//!
//! `cargo bench -p ipcbox --bench store`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipcbox::shm::store::{ObjectId, Store};

const SIZES: [(usize, &str); 3] = [(1 << 10, "1KiB"), (1 << 20, "1MiB"), (64 << 20, "64MiB")];

fn store(tag: &str, capacity: usize) -> Store {
    let name = format!("ipcbox-bench-store-{tag}-{}", std::process::id());
    Store::create(&name, capacity).expect("create the bench store")
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_get");
    for (size, label) in SIZES {
        let store = store("get", size + 4096);
        let id = ObjectId::from_u64(1);
        let mut buf = store.create_object(id, size).unwrap();
        buf.fill(1);
        buf.seal().unwrap();
        group.bench_function(BenchmarkId::new("get+release", label), |b| {
            b.iter(|| {
                let view = store.try_get(black_box(id)).unwrap().unwrap();
                black_box(view.as_ptr());
            })
        });
    }
    group.finish();
}

fn put(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_put");
    for (size, label) in SIZES {
        if size >= 64 << 20 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Bytes(size as u64));
        let data = vec![7u8; size];
        let store = store("put", size + 4096);
        let id = ObjectId::from_u64(2);
        group.bench_function(BenchmarkId::new("create+write+seal+delete", label), |b| {
            b.iter(|| {
                let mut buf = store.create_object(id, size).unwrap();
                buf.copy_from_slice(black_box(&data));
                buf.seal().unwrap();
                store.delete(id).unwrap();
            })
        });
        let mut dst = vec![0u8; size];
        group.bench_function(BenchmarkId::new("memcpy", label), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&data));
                black_box(&mut dst);
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    get(&mut c);
    put(&mut c);
    c.final_summary();
}
