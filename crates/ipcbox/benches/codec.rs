//! Criterion benchmarks of the default codec on 1 MiB of bulk data, in one process: encoding
//! into a reused buffer and decoding into a new message, beside postcard used directly (what
//! the codec did before its block paths) and a plain copy of the same bytes for scale; and a
//! 64-byte message, which the block paths must leave as fast as postcard makes it.
//!
//! `cargo bench -p ipcbox --bench codec`. Across processes, see `ipcbox bench --filter
//! socketpair` (the typed row beside the bytes row).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use ipcbox::codec::{Block, Codec, Postcard};
use serde::{Deserialize, Serialize};

const SIZE: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Image {
    id: u32,
    pixels: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Samples {
    id: u32,
    #[serde(with = "ipcbox::codec::block")]
    values: Vec<f32>,
}

fn round_trip<M: Serialize + for<'de> Deserialize<'de>>(c: &mut Criterion, group: &str, msg: &M) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(SIZE as u64));
    let mut out = Vec::with_capacity(SIZE + 16);
    g.bench_function("ipcbox encode", |b| {
        b.iter(|| {
            out.clear();
            Postcard.encode(black_box(msg), &mut out).expect("encode");
        })
    });
    g.bench_function("ipcbox decode", |b| {
        b.iter(|| {
            let m: M = Codec::<M>::decode(&mut Postcard, black_box(&out)).expect("decode");
            black_box(m)
        })
    });
    g.bench_function("postcard encode", |b| {
        b.iter(|| {
            out.clear();
            out = postcard::to_extend(black_box(msg), std::mem::take(&mut out)).expect("encode");
        })
    });
    g.bench_function("postcard decode", |b| {
        b.iter(|| black_box(postcard::from_bytes::<M>(black_box(&out)).expect("decode")))
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("1 MiB copy, for scale");
    g.throughput(Throughput::Bytes(SIZE as u64));
    let src = vec![0xa5u8; SIZE];
    let mut dst = vec![0u8; SIZE];
    g.bench_function("copy_from_slice", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src)))
    });
    g.bench_function("to_vec", |b| b.iter(|| black_box(black_box(&src).to_vec())));
    g.finish();

    round_trip(c, "Vec<u8> 1 MiB", &vec![0xa5u8; SIZE]);
    round_trip(c, "Vec<f32> 1 MiB", &vec![0.5f32; SIZE / 4]);
    round_trip(
        c,
        "struct { u32, Vec<u8> } 1 MiB",
        &Image {
            id: 7,
            pixels: vec![0xa5; SIZE],
        },
    );
    round_trip(
        c,
        "struct { u32, Vec<f32> as block } 1 MiB",
        &Samples {
            id: 7,
            values: vec![0.5; SIZE / 4],
        },
    );
    round_trip(c, "Block<u16> 1 MiB", &Block(vec![7u16; SIZE / 2]));
    // A small message, where the block paths' type checks must cost nothing.
    round_trip(c, "(u32, String) 64 B", &(7u32, "x".repeat(58)));
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    codec(&mut c);
    c.final_summary();
}
