//! The Rust side of the Python package's interoperability tests: each command opens an object
//! a Python test created, by name, and uses it through the library's API.
//!
//! ```text
//! ipcbox-py-peer queue-put-bytes NAME N     puts b"rust N" ... as raw messages
//! ipcbox-py-peer queue-put-typed NAME N     puts (i, "item i") as Queue<(u32, String)>
//! ipcbox-py-peer queue-get-typed NAME N     gets N (u32, String) and prints them
//! ipcbox-py-peer queue-put-block NAME N     puts N Blocks messages (see `Blocks`), message i
//!                                           holding the first i of each sample array
//! ipcbox-py-peer queue-get-block NAME N     gets N Blocks messages and prints them, one line
//!                                           each: n;f32 bits in hex;u16s;i128s
//! ipcbox-py-peer value-set NAME V           sets a shm::Value<i64>
//! ipcbox-py-peer value-get NAME             prints it
//! ipcbox-py-peer sem-release NAME N         releases an ipcbox semaphore N times
//! ipcbox-py-peer store-put NAME ID TEXT     puts TEXT as object ID (a number)
//! ipcbox-py-peer store-get NAME ID          prints object ID as text
//! ```

use std::io;
use std::time::Duration;

use ipcbox::codec::Block;
use ipcbox::shm::Value;
use ipcbox::store::{ObjectId, Store};
use ipcbox::sync::Semaphore;
use ipcbox::Queue;

const WAIT: Duration = Duration::from_secs(60);

/// A typed message holding arrays of numbers as blocks (WIRE.md, "Blocks").
type Blocks = (u32, Block<f32>, Block<u16>, Block<i128>);

// Edge values: -0.0, the largest f32, the smallest subnormal, infinity, NaN; u16 and i128
// extremes.
const F32S: [f32; 6] = [
    1.5,
    -0.0,
    f32::MAX,
    f32::from_bits(1),
    f32::INFINITY,
    f32::NAN,
];
const U16S: [u16; 4] = [0, 1, 300, u16::MAX];
const I128S: [i128; 4] = [i128::MIN, -1, 0, i128::MAX];

fn first<T: Copy>(values: &[T], n: u32) -> Vec<T> {
    values.iter().copied().take(n as usize).collect()
}

fn joined<T>(values: &[T], f: impl Fn(&T) -> String) -> String {
    values.iter().map(f).collect::<Vec<_>>().join(",")
}

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
        "queue-put-block" => {
            let q: Queue<Blocks> = Queue::open(&name)?;
            for i in 0..arg::<u32>(args, 2, "count")? {
                let msg = (
                    i,
                    Block(first(&F32S, i)),
                    Block(first(&U16S, i)),
                    Block(first(&I128S, i)),
                );
                q.put(&msg)?;
            }
        }
        "queue-get-block" => {
            let q: Queue<Blocks> = Queue::open(&name)?;
            for _ in 0..arg::<u32>(args, 2, "count")? {
                let (n, f, u, i) = q
                    .get_timeout(WAIT)?
                    .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no message"))?;
                let f = joined(&f, |x| format!("{:08x}", x.to_bits()));
                let u = joined(&u, u16::to_string);
                let i = joined(&i, i128::to_string);
                println!("{n};{f};{u};{i}");
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
