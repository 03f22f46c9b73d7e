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

#![allow(unsafe_code)] // fork; ipckit::process::fork will replace the libc call

use std::io;

use ipckit::Queue;

/// Forks a child that runs `f` and exits with its result.
fn spawn(f: impl FnOnce() -> io::Result<()>) -> io::Result<i32> {
    // SAFETY: this program is single-threaded, so the child may do anything; it exits with
    // `_exit` and never returns into main.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match f() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("child failed: {e}");
                    1
                }
            };
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(pid),
    }
}

fn wait(pid: i32) -> io::Result<()> {
    let mut status = 0;
    // SAFETY: waits for our own child with a valid status pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(io::Error::last_os_error());
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "child {pid} failed: status {status:#x}"
        )))
    }
}

fn main() -> io::Result<()> {
    let q: Queue<Option<String>> = Queue::new(3)?;

    let producer = spawn(|| {
        for i in 0..10 {
            let item = format!("item {i}");
            println!("producer: put {item}");
            q.put(Some(item))?;
        }
        q.put(None)?; // the sentinel: no more items
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
