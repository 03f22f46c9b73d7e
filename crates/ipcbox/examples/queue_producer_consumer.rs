//! The tutorials' producer/consumer over `Queue(maxsize)`: a producer process puts numbered
//! items and a `None` sentinel, a consumer process gets them until the sentinel.
//!
//! Python:
//! ```python
//! q = multiprocessing.Queue(maxsize=3)
//! Process(target=producer, args=(q,)).start(); Process(target=consumer, args=(q,)).start()
//! ```
//!
//! Run with `cargo run --example queue_producer_consumer`.

#![allow(unsafe_code)] // process::fork is unsafe: see the SAFETY comment at its call

use std::io;

use ipcbox::process::{self, Child, Fork};
use ipcbox::Queue;

/// Forks a child that runs `f` and leaves with exit code 0 if it succeeded, 1 if not.
fn spawn(f: impl FnOnce() -> io::Result<()>) -> io::Result<Child> {
    // SAFETY: this program is single-threaded when it forks, so the child may run any code;
    // it leaves with `exit_immediately` and never returns into main.
    match unsafe { process::fork()? } {
        Fork::Child => process::exit_immediately(match f() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("child failed: {e}");
                1
            }
        }),
        Fork::Parent(child) => Ok(child),
    }
}

fn wait(mut child: Child) -> io::Result<()> {
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "child {} failed: {status}",
            child.pid()
        )))
    }
}

fn main() -> io::Result<()> {
    let q: Queue<Option<String>> = Queue::new(3)?;

    let producer = spawn(|| {
        for i in 0..10 {
            let item = format!("item {i}");
            println!("producer: put {item}");
            q.put(&Some(item))?;
        }
        q.put(&None)?; // the sentinel: no more items
        Ok(())
    })?;

    let consumer = spawn(|| {
        while let Some(item) = q.get()? {
            println!("consumer: got {item}");
        }
        println!("consumer: done");
        Ok(())
    })?;

    wait(producer)?;
    wait(consumer)?;
    Ok(())
}
