//! The tutorials' `multiprocessing.Value` producer/consumer, done without missed updates.
//!
//! In the Python original the producer writes `shared_value.value = i` and sleeps 1 s while
//! the consumer reads every 2 s: the consumer misses updates (and may read one twice). Here a
//! pair of semaphores hands the value back and forth — `empty` says "you may write", `full`
//! says "there is a new value" — so the consumer sees every update exactly once, however fast
//! either side runs.
//!
//! The example runs itself three times: the parent creates the shared objects and starts a
//! producer and a consumer process (this same program with an argument), then checks that
//! the consumer's sum equals the producer's.
//!
//! ```text
//! cargo run --example value_producer_consumer
//! ```

use std::io;
use std::process::Command;

use ipcbox::shm::{Array, Value};
use ipcbox::sync::Semaphore;

const ITEMS: u64 = 10_000;

/// Indexes into the results array.
const PRODUCED_SUM: usize = 0;
const CONSUMED_SUM: usize = 1;
const CONSUMED_COUNT: usize = 2;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("producer") => producer(&args[2]),
        Some("consumer") => consumer(&args[2]),
        _ => parent(),
    }
}

fn parent() -> io::Result<()> {
    let base = format!("ipcbox-example-value-{}", std::process::id());
    // The creator removes these names again when they are dropped.
    let _value = Value::create(&format!("{base}-value"), 0u64)?;
    let results = Array::<u64>::create(&format!("{base}-results"), 3)?;
    let _empty = Semaphore::create(&format!("{base}-empty"), 1)?;
    let _full = Semaphore::create(&format!("{base}-full"), 0)?;

    let exe = std::env::current_exe()?;
    let mut consumer = Command::new(&exe).args(["consumer", &base]).spawn()?;
    let producer = Command::new(&exe).args(["producer", &base]).spawn();
    let status = match producer.and_then(|mut p| p.wait()) {
        Ok(status) if status.success() => consumer.wait()?,
        other => {
            // The consumer would wait for the next value forever.
            let _ = consumer.kill();
            let _ = consumer.wait();
            return Err(io::Error::other(format!("producer failed: {other:?}")));
        }
    };
    if !status.success() {
        return Err(io::Error::other(format!("consumer failed: {status}")));
    }

    let produced = results.get(PRODUCED_SUM)?;
    let consumed = results.get(CONSUMED_SUM)?;
    let count = results.get(CONSUMED_COUNT)?;
    println!("producer sum {produced}, consumer sum {consumed}, {count} of {ITEMS} values seen");
    assert_eq!(count, ITEMS, "the consumer missed or repeated updates");
    assert_eq!(
        consumed, produced,
        "the consumer's sum differs from the producer's"
    );
    println!("every update was seen exactly once");
    Ok(())
}

fn producer(base: &str) -> io::Result<()> {
    let value = Value::<u64>::open(&format!("{base}-value"))?;
    let results = Array::<u64>::open(&format!("{base}-results"))?;
    let empty = Semaphore::open(&format!("{base}-empty"))?;
    let full = Semaphore::open(&format!("{base}-full"))?;
    let mut sum = 0;
    for i in 1..=ITEMS {
        let item = i * 7 % 1000;
        empty.acquire()?; // the consumer has taken the previous value
        value.set(item);
        full.release()?; // a new value is there
        sum += item;
        if i <= 3 || i == ITEMS {
            println!("producer: wrote item {i}: {item}");
        }
    }
    results.set(PRODUCED_SUM, sum)?;
    Ok(())
}

fn consumer(base: &str) -> io::Result<()> {
    let value = Value::<u64>::open(&format!("{base}-value"))?;
    let results = Array::<u64>::open(&format!("{base}-results"))?;
    let empty = Semaphore::open(&format!("{base}-empty"))?;
    let full = Semaphore::open(&format!("{base}-full"))?;
    let (mut sum, mut count) = (0, 0);
    while count < ITEMS {
        full.acquire()?; // wait for a new value
        let item = value.get();
        empty.release()?; // the producer may overwrite it now
        sum += item;
        count += 1;
        if count <= 3 || count == ITEMS {
            println!("consumer: read item {count}: {item}");
        }
    }
    results.set(CONSUMED_SUM, sum)?;
    results.set(CONSUMED_COUNT, count)?;
    Ok(())
}
