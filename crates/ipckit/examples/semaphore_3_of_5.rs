//! The tutorials' `Semaphore(3)` with 5 processes: at most 3 are inside at any moment.
//!
//! Five worker processes (this same program, started with an argument) each wait on one
//! shared [`Semaphore`] created with 3 permits, stay inside a little while, and leave. A shared
//! array counts who is inside and the most that ever were; the parent checks that this never
//! went above 3. A worker that dies inside would keep its permit (a futex semaphore has no
//! undo); see `sync::SemaphoreSet` with `SEM_UNDO` for that.
//!
//! ```text
//! cargo run --example semaphore_3_of_5
//! ```

use std::io;
use std::process::Command;
use std::time::Duration;

use ipckit::shm::Array;
use ipckit::sync::Semaphore;

const WORKERS: usize = 5;
const PERMITS: u32 = 3;

/// Indexes into the shared counters.
const INSIDE: usize = 0;
const MAX_INSIDE: usize = 1;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1), args.get(2)) {
        (Some(base), Some(id)) => worker(base, id),
        _ => parent(),
    }
}

fn parent() -> io::Result<()> {
    let base = format!("ipckit-example-sem-{}", std::process::id());
    let _sem = Semaphore::create(&format!("{base}-sem"), PERMITS)?;
    let counters = Array::<u32>::create(&format!("{base}-counters"), 2)?;

    let exe = std::env::current_exe()?;
    let children = (0..WORKERS)
        .map(|i| Command::new(&exe).args([&base, &i.to_string()]).spawn())
        .collect::<io::Result<Vec<_>>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!("worker failed: {status}")));
        }
    }

    let max = counters.get(MAX_INSIDE)?;
    println!("at most {max} of {WORKERS} workers were inside at once (limit {PERMITS})");
    assert!(max <= PERMITS, "{max} workers were inside at once");
    assert_eq!(counters.get(INSIDE)?, 0);
    Ok(())
}

fn worker(base: &str, id: &str) -> io::Result<()> {
    let sem = Semaphore::open(&format!("{base}-sem"))?;
    let counters = Array::<u32>::open(&format!("{base}-counters"))?;
    println!("worker {id}: waiting");
    sem.acquire()?;
    let inside = counters.fetch_add(INSIDE, 1)? + 1;
    // Record the largest number seen inside (a compare-and-swap loop: an atomic maximum).
    let mut max = counters.get(MAX_INSIDE)?;
    while inside > max {
        match counters.compare_exchange(MAX_INSIDE, max, inside)? {
            Ok(_) => break,
            Err(actual) => max = actual,
        }
    }
    println!("worker {id}: inside ({inside} inside now)");
    if inside > PERMITS {
        return Err(io::Error::other(format!("{inside} workers inside at once")));
    }
    // Only to make the overlap visible when run by hand; the semaphore does the ordering.
    std::thread::sleep(Duration::from_millis(200));
    counters.fetch_sub(INSIDE, 1)?;
    println!("worker {id}: leaving");
    sem.release()?;
    Ok(())
}
