//! The tutorials' `Semaphore(3)` with 5 processes: at most 3 are inside at any moment.
//!
//! As in the Python original, the parent makes one semaphore with 3 permits and forks five
//! workers; each waits on the semaphore, stays inside a little while, and leaves. A shared
//! array counts who is inside and the most that ever were; the parent checks that this never
//! went above 3. Both live in anonymous shared memory, inherited by the forked children.
//!
//! A worker that dies inside would keep its permit (a futex semaphore has no undo); see
//! `sync::SemaphoreSet` with `SEM_UNDO` for that.
//!
//! ```text
//! cargo run --example semaphore_3_of_5
//! ```

// `fork` is unsafe; this program is single-threaded when it forks (see the SAFETY comment).
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

use ipcbox::process::{self, Fork};
use ipcbox::shm::Array;
use ipcbox::sync::Semaphore;

const WORKERS: usize = 5;
const PERMITS: u32 = 3;

/// Indexes into the shared counters.
const INSIDE: usize = 0;
const MAX_INSIDE: usize = 1;

fn main() -> io::Result<()> {
    let sem = Semaphore::anonymous(PERMITS)?;
    let counters = Array::<u32>::anonymous(&[0, 0])?;

    let mut children = Vec::new();
    for id in 0..WORKERS {
        // SAFETY: this example runs on one thread only, so the child may run any code; it
        // ends with `exit_immediately`, never returning into `main`.
        match unsafe { process::fork() }? {
            Fork::Child => {
                let code = match worker(id, &sem, &counters) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("worker {id}: {e}");
                        1
                    }
                };
                process::exit_immediately(code);
            }
            Fork::Parent(child) => children.push(child),
        }
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!("a worker failed: {status:?}")));
        }
    }

    let max = counters.get(MAX_INSIDE)?;
    println!("at most {max} of {WORKERS} workers were inside at once (limit {PERMITS})");
    assert!(max <= PERMITS, "{max} workers were inside at once");
    assert_eq!(counters.get(INSIDE)?, 0);
    Ok(())
}

fn worker(id: usize, sem: &Semaphore, counters: &Array<u32>) -> io::Result<()> {
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
    // Only to make the overlap visible; the semaphore does the ordering.
    std::thread::sleep(Duration::from_millis(200));
    counters.fetch_sub(INSIDE, 1)?;
    println!("worker {id}: leaving");
    sem.release()
}
