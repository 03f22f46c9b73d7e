//! A large array handed from one process to another through the object store, without copying:
//! the parent writes 64 MiB of `f64` into a store object and seals it; a child process (this
//! program run again with `child <store>`) gets a read-only view of the same memory, sums it,
//! and hands the sum back as a small object of its own.
//!
//! ```text
//! cargo run --release --example store_large_array
//! ```

use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

use ipcbox::shm::store::{ObjectId, Store};

const LEN: usize = 8 << 20; // 8 Mi f64 = 64 MiB
const ARRAY: ObjectId = ObjectId::new(*b"large-array-of-f64!!");
const SUM: ObjectId = ObjectId::new(*b"sum-from-the-child!!");
const WAIT: Duration = Duration::from_secs(60);

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => child(args.get(2).map(String::as_str).unwrap_or_default()),
        _ => parent(),
    }
}

fn parent() -> io::Result<()> {
    let name = format!("ipcbox-example-store-{}", std::process::id());
    let bytes = LEN * size_of::<f64>();
    let store = Store::create(&name, bytes + 4096)?; // removed again when `store` is dropped

    let start = Instant::now();
    let mut buf = store.create_object(ARRAY, bytes)?;
    for (i, x) in buf.as_mut_slice_of::<f64>()?.iter_mut().enumerate() {
        *x = i as f64;
    }
    buf.seal()?;
    println!(
        "parent: wrote and sealed {} MiB in {:?}",
        bytes >> 20,
        start.elapsed()
    );

    let status = Command::new(std::env::current_exe()?)
        .args(["child", &name])
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("child failed: {status}")));
    }

    let sum = store
        .get_timeout(SUM, WAIT)?
        .ok_or_else(|| io::Error::other("the child sealed no sum"))?;
    let sum = sum.as_slice_of::<f64>()?[0];
    let expected = (LEN as f64) * (LEN as f64 - 1.0) / 2.0;
    println!("parent: the child's sum is {sum}, expected {expected}");
    if sum != expected {
        return Err(io::Error::other("wrong sum"));
    }
    Ok(())
}

fn child(name: &str) -> io::Result<()> {
    let store = Store::open(name)?;
    let start = Instant::now();
    let view = store
        .get_timeout(ARRAY, WAIT)?
        .ok_or_else(|| io::Error::other("no array in the store"))?;
    let array: &[f64] = view.as_slice_of()?; // the parent's memory, read-only, no copy
    println!(
        "child: got a view of {} f64 at {:p} in {:?}",
        array.len(),
        array.as_ptr(),
        start.elapsed()
    );
    let sum: f64 = array.iter().sum();
    println!("child: summed them in {:?}", start.elapsed());
    drop(view); // releases the hold

    let mut out = store.create_object(SUM, size_of::<f64>())?;
    out.as_mut_slice_of::<f64>()?[0] = sum;
    out.seal()
}
