//! Pi computed by 10 worker processes that connect back to their parent over TCP and send
//! their partial sums as typed messages (the tutorials' socket version).
//!
//! The parent listens on `tcp:127.0.0.1:0` (the kernel picks a free port), starts 10 copies of
//! this program as workers with the port on their command line, and accepts one connection per
//! worker. Each worker sends one typed message `(slice index, partial sum)` through a
//! `frame::Connection` over a `socket::Stream` and exits; the parent receives it, then sees
//! the worker's close as `Disconnected`. The partial sums are added in slice order, so the
//! result equals the single-process one bit for bit (the integration is in `common/pi.rs`,
//! shared with `pi_workers`).
//!
//! ```text
//! cargo run --example pi_tcp
//! ```

use std::time::Duration;

use ipcbox::frame::{Connection, RecvError};
use ipcbox::process::{Child, Command};
use ipcbox::socket::{self, Endpoint, Listener};

#[path = "common/pi.rs"]
mod pi;

use pi::WORKERS;

/// What a worker sends: its slice index and the partial sum of that slice.
type Partial = (u32, f64);

/// How long the parent waits for a worker to connect before giving up.
const ACCEPT_LIMIT: Duration = Duration::from_secs(60);

fn run_worker(endpoint: &str, index: &str) -> Result<(), Box<dyn std::error::Error>> {
    let index: usize = index.parse()?;
    let ep: Endpoint = endpoint.parse()?;
    let mut conn = Connection::<Partial>::new(socket::Stream::connect(&ep)?)?;
    conn.send(&(u32::try_from(index)?, pi::partial_sum(index)))?;
    Ok(()) // dropping the connection closes it: the parent sees Disconnected after the message
}

fn wait_all(children: Vec<Child>) -> Result<(), Box<dyn std::error::Error>> {
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("worker {} failed: {status}", child.pid()).into());
        }
    }
    Ok(())
}

fn over_tcp() -> Result<f64, Box<dyn std::error::Error>> {
    let listener = Listener::bind(&"tcp:127.0.0.1:0".parse()?)?;
    let endpoint = listener.local_endpoint().to_string();
    println!("parent listens on {endpoint}");
    let exe = std::env::current_exe()?;
    let children = (0..WORKERS)
        .map(|i| {
            Command::new(&exe)
                .args(["worker", &endpoint, &i.to_string()])
                .kill_on_drop(true) // an early error leaves no worker behind
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut parts = [None; WORKERS];
    for _ in 0..WORKERS {
        let stream = listener
            .accept_timeout(ACCEPT_LIMIT)?
            .ok_or("a worker did not connect within a minute")?;
        let mut conn = Connection::<Partial>::new(stream)?;
        let (index, sum) = conn.recv()?;
        pi::store(&mut parts, pi::check_index(index.into())?, sum)?;
        match conn.recv() {
            Err(RecvError::Disconnected) => {}
            Ok(extra) => {
                return Err(format!("worker {index} sent a second message {extra:?}").into())
            }
            Err(e) => return Err(format!("worker {index}: {e}").into()),
        }
    }
    wait_all(children)?;
    Ok(pi::total(&parts)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, endpoint, index] = args.as_slice() {
        if role == "worker" {
            return run_worker(endpoint, index);
        }
    }
    let single = pi::single_process();
    println!("single process: pi = {single:.15}");
    let pi = over_tcp()?;
    if pi != single {
        return Err(format!("tcp: {pi} differs from {single}").into());
    }
    println!("{WORKERS} workers over tcp  : pi = {pi:.15} (equal)");
    Ok(())
}
