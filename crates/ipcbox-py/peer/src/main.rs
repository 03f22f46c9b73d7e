//! The Rust side of the Python package's interoperability tests: each command opens an object
//! a Python test created, by name, and uses it through the library's API.
//!
//! ```text
//! ipcbox-py-peer queue-put-bytes NAME N     puts b"rust N" ... as raw messages
//! ipcbox-py-peer queue-put-typed NAME N     puts (i, "item i") as Queue<(u32, String)>
//! ipcbox-py-peer queue-get-typed NAME N     gets N (u32, String) and prints them
//! ipcbox-py-peer value-set NAME V           sets a shm::Value<i64>
//! ipcbox-py-peer value-get NAME             prints it
//! ipcbox-py-peer sem-release NAME N         releases an ipcbox semaphore N times
//! ipcbox-py-peer store-put NAME ID TEXT     puts TEXT as object ID (a number)
//! ipcbox-py-peer store-get NAME ID          prints object ID as text
//! ```

use std::io;
use std::time::Duration;

use ipcbox::shm::Value;
use ipcbox::store::{ObjectId, Store};
use ipcbox::sync::Semaphore;
use ipcbox::Queue;

const WAIT: Duration = Duration::from_secs(60);

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> io::Result<T> {
    args.get(i).and_then(|a| a.parse().ok()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("missing or bad {what}"),
        )
    })
}

fn run(args: &[String]) -> io::Result<()> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let name: String = arg(args, 1, "name")?;
    match cmd {
        "queue-put-bytes" => {
            let q: Queue<Vec<u8>> = Queue::open(&name)?;
            for i in 0..arg::<u32>(args, 2, "count")? {
                q.as_bytes().put(format!("rust {i}").as_bytes())?;
            }
        }
        "queue-put-typed" => {
            let q: Queue<(u32, String)> = Queue::open(&name)?;
            for i in 0..arg::<u32>(args, 2, "count")? {
                q.put(&(i, format!("item {i}")))?;
            }
        }
        "queue-get-typed" => {
            let q: Queue<(u32, String)> = Queue::open(&name)?;
            for _ in 0..arg::<u32>(args, 2, "count")? {
                let (n, s) = q
                    .get_timeout(WAIT)?
                    .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no message"))?;
                println!("{n} {s}");
            }
        }
        "value-set" => Value::<i64>::open(&name)?.set(arg(args, 2, "value")?),
        "value-get" => println!("{}", Value::<i64>::open(&name)?.get()),
        "sem-release" => Semaphore::open(&name)?.release_n(arg(args, 2, "count")?)?,
        "store-put" => {
            let store = Store::open(&name)?;
            let text: String = arg(args, 3, "text")?;
            let mut buf =
                store.create_object(ObjectId::from_u64(arg(args, 2, "id")?), text.len())?;
            buf.copy_from_slice(text.as_bytes());
            buf.seal()?;
        }
        "store-get" => {
            let store = Store::open(&name)?;
            let view = store
                .get_timeout(ObjectId::from_u64(arg(args, 2, "id")?), WAIT)?
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no object"))?;
            println!("{}", String::from_utf8_lossy(&view));
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown command {other:?}"),
            ))
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("ipcbox-py-peer: {e}");
        std::process::exit(1);
    }
}
