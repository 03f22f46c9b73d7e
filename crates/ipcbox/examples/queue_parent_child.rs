//! A queue of capacity 1 between a parent and a forked child: the child puts a few values,
//! each `put` blocking until the parent has taken the previous one.
//!
//! Python:
//! ```python
//! def f(q): q.put([42, None, 'hello'])
//! q = Queue(1); p = Process(target=f, args=(q,)); p.start(); print(q.get()); p.join()
//! ```
//!
//! Run with `cargo run --example queue_parent_child`.

#![allow(unsafe_code)] // process::fork is unsafe: see the SAFETY comment at its call

use std::io;

use ipcbox::process::{self, Fork};
use ipcbox::Queue;

fn main() -> io::Result<()> {
    let q: Queue<(i32, Option<i32>, String)> = Queue::new(1)?;

    // SAFETY: this program is single-threaded when it forks, so the child may run any code;
    // it leaves with `exit_immediately` and never returns into main.
    let mut child = match unsafe { process::fork()? } {
        Fork::Child => {
            let mut code = 0;
            for i in 0..3 {
                // Blocks while the parent has not taken the previous message.
                if let Err(e) = q.put(&(42 + i, None, format!("hello {i}"))) {
                    eprintln!("child: {e}");
                    code = 1;
                }
            }
            process::exit_immediately(code)
        }
        Fork::Parent(child) => child,
    };

    for _ in 0..3 {
        println!("parent got {:?}", q.get()?);
    }
    let status = child.wait()?;
    println!("child exited with {status}");
    if !status.success() {
        return Err(io::Error::other(format!("the child failed: {status}")));
    }
    Ok(())
}
