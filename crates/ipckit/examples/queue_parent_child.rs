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

#![allow(unsafe_code)] // fork; ipckit::process::fork will replace the libc call

use std::io;

use ipckit::Queue;

fn main() -> io::Result<()> {
    let q: Queue<(i32, Option<i32>, String)> = Queue::new(1)?;

    // SAFETY: this program is single-threaded, so the child may do anything; it exits with
    // `_exit` and never returns into main.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let mut code = 0;
        for i in 0..3 {
            // Blocks while the parent has not taken the previous message.
            if let Err(e) = q.put((42 + i, None, format!("hello {i}"))) {
                eprintln!("child: {e}");
                code = 1;
            }
        }
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }

    for _ in 0..3 {
        println!("parent got {:?}", q.get()?);
    }
    let mut status = 0;
    // SAFETY: waits for our own child with a valid status pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(io::Error::last_os_error());
    }
    println!("child exited with status {status}");
    Ok(())
}
