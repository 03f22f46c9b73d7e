//! A request/response server on a Unix socket, serving many client processes at once.
//!
//! The server listens on a socket file in a fresh temporary directory and serves each
//! connection on its own thread. Requests and responses are two serde enums sent as typed
//! frames: a client's end is a `Connection<Request, Response>` (it sends requests and
//! receives responses), the server's a `Connection<Response, Request>`, each over ipcbox's own
//! `socket::Stream`. Eight client processes (this program re-run with an argument) connect at the same time, each sends a mix of requests — arithmetic, text,
//! a prime sieve, "who am I" (answered from the socket's peer credentials) and one request the
//! server refuses — and checks every answer. When all clients are done the parent asks the
//! server to shut down; the server stops accepting, its threads finish, and the listener
//! removes its socket file, which the example checks is gone.
//!
//! ```text
//! cargo run --example unix_server            # 8 clients of 40 requests each
//! cargo run --example unix_server -- 20 100  # 20 clients of 100 requests each
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use ipcbox::frame::{Connection, RecvError};
use ipcbox::process::{Child, Command};
use ipcbox::socket::{self, Endpoint, Listener};
use serde::{Deserialize, Serialize};

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Request {
    /// The sum of two numbers.
    Add(i64, i64),
    /// The text in upper case.
    Upper(String),
    /// The primes below `below` (at most `MAX_SIEVE`).
    Primes { below: u32 },
    /// The client's own process ID, as the server sees it (`SO_PEERCRED`).
    WhoAmI,
    /// Stop the server (sent by the parent once every client is done).
    Shutdown,
}

/// What the server answers, one response per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Response {
    Sum(i64),
    Text(String),
    Primes(Vec<u32>),
    Pid(i32),
    ShuttingDown,
    /// The request was understood but refused; the connection stays usable.
    Refused(String),
}

const MAX_SIEVE: u32 = 1_000_000;

fn primes_below(n: u32) -> Vec<u32> {
    let n = n as usize;
    let mut composite = vec![false; n];
    let mut out = Vec::new();
    for i in 2..n {
        if !composite[i] {
            out.push(i as u32);
            (i * i..n).step_by(i).for_each(|j| composite[j] = true);
        }
    }
    out
}

fn answer(req: Request, peer_pid: Option<i32>) -> Response {
    match req {
        Request::Add(a, b) => a
            .checked_add(b)
            .map(Response::Sum)
            .unwrap_or_else(|| Response::Refused(format!("{a} + {b} overflows"))),
        Request::Upper(s) => Response::Text(s.to_uppercase()),
        Request::Primes { below } if below <= MAX_SIEVE => Response::Primes(primes_below(below)),
        Request::Primes { below } => Response::Refused(format!(
            "sieve up to {below} is above the limit {MAX_SIEVE}"
        )),
        Request::WhoAmI => match peer_pid {
            Some(pid) => Response::Pid(pid),
            None => Response::Refused("peer pid unknown".into()),
        },
        Request::Shutdown => Response::ShuttingDown,
    }
}

/// Serves one connection until the client closes it.
fn serve_connection(
    stream: socket::Stream,
    served: &AtomicU64,
    stop: &AtomicBool,
    endpoint: &Endpoint,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let peer = stream.peer_credentials()?.pid.map(|p| p.as_raw());
    let mut conn = Connection::<Response, Request>::new(stream)?;
    loop {
        let req = match conn.recv() {
            Ok(req) => req,
            Err(RecvError::Disconnected) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let shutdown = req == Request::Shutdown;
        conn.send(&answer(req, peer))?;
        served.fetch_add(1, Ordering::Relaxed);
        if shutdown {
            stop.store(true, Ordering::SeqCst);
            // Wake the accept loop, which then sees the flag and stops accepting.
            drop(socket::Stream::connect(endpoint)?);
        }
    }
}

/// Accepts connections until a `Shutdown` request, one thread each; returns the number of
/// requests served. The listener (and its socket file) is gone when this returns.
fn serve(listener: Listener) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let endpoint = listener.local_endpoint().clone();
    let mut handlers = Vec::new();
    loop {
        let stream = listener.accept()?;
        if stop.load(Ordering::SeqCst) {
            break; // the wake-up connection
        }
        let (served, stop, endpoint) = (served.clone(), stop.clone(), endpoint.clone());
        handlers.push(thread::spawn(move || {
            serve_connection(stream, &served, &stop, &endpoint)
        }));
    }
    drop(listener); // no new clients; removes the socket file
    for h in handlers {
        h.join().map_err(|_| "a connection thread panicked")??;
    }
    Ok(served.load(Ordering::Relaxed))
}

/// The requests client `id` sends, with the answers it expects.
fn script(id: u32, requests: u32) -> Vec<(Request, Response)> {
    (0..requests)
        .map(|i| {
            let n = i64::from(id) * 1000 + i64::from(i);
            match i % 5 {
                0 => (Request::Add(n, -7), Response::Sum(n - 7)),
                1 => {
                    let text = format!("client {id} request {i}");
                    (
                        Request::Upper(text.clone()),
                        Response::Text(text.to_uppercase()),
                    )
                }
                2 => {
                    let below = 50 + i;
                    (
                        Request::Primes { below },
                        Response::Primes(primes_below(below)),
                    )
                }
                3 => (
                    Request::WhoAmI,
                    Response::Pid(std::process::id().try_into().unwrap_or(-1)),
                ),
                _ => (
                    Request::Add(i64::MAX, n + 1),
                    Response::Refused(String::new()),
                ),
            }
        })
        .collect()
}

fn run_client(path: &str, id: &str, requests: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (id, requests): (u32, u32) = (id.parse()?, requests.parse()?);
    let stream = socket::Stream::connect(&Endpoint::unix(path))?;
    let mut conn = Connection::<Request, Response>::new(stream)?;
    for (req, want) in script(id, requests) {
        conn.send(&req)?;
        let got = conn.recv()?;
        let ok = match (&want, &got) {
            (Response::Refused(_), Response::Refused(why)) => !why.is_empty(),
            _ => got == want,
        };
        if !ok {
            return Err(format!("client {id}: {req:?} answered {got:?}, expected {want:?}").into());
        }
    }
    Ok(())
}

fn wait_all(children: Vec<Child>) -> Result<(), Box<dyn std::error::Error>> {
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("client {} failed: {status}", child.pid()).into());
        }
    }
    Ok(())
}

/// Removes the temporary directory however the example ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(dir: &Path, clients: u32, requests: u32) -> Result<(), Box<dyn std::error::Error>> {
    let path = dir.join("server.sock");
    let listener = Listener::bind(&Endpoint::unix(&path))?;
    println!("server listens on {}", listener.local_endpoint());
    let server = thread::spawn(move || serve(listener));

    let exe = std::env::current_exe()?;
    let path_arg = path.to_str().ok_or("temp dir path is not UTF-8")?;
    let children = (0..clients)
        .map(|id| {
            Command::new(&exe)
                .args(["client", path_arg, &id.to_string(), &requests.to_string()])
                .kill_on_drop(true)
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    wait_all(children)?;
    println!("{clients} clients x {requests} requests: every answer checked");

    let admin = socket::Stream::connect(&Endpoint::unix(&path))?;
    let mut conn = Connection::<Request, Response>::new(admin)?;
    conn.send(&Request::Shutdown)?;
    if conn.recv()? != Response::ShuttingDown {
        return Err("the server did not acknowledge the shutdown".into());
    }
    drop(conn);
    let served = server
        .join()
        .map_err(|_| "the server thread panicked")?
        .map_err(|e| e.to_string())?;
    let expected = u64::from(clients) * u64::from(requests) + 1;
    if served != expected {
        return Err(format!("server served {served} requests, expected {expected}").into());
    }
    if path.exists() {
        return Err(format!("socket file {} is still there", path.display()).into());
    }
    println!("server stopped after {served} requests; socket file removed");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, path, id, requests] = args.as_slice() {
        if role == "client" {
            return run_client(path, id, requests);
        }
    }
    let clients: u32 = args.first().map_or(Ok(8), |s| s.parse())?;
    let requests: u32 = args.get(1).map_or(Ok(40), |s| s.parse())?;
    let dir = TempDir(std::env::temp_dir().join(format!("ipcbox-server-{}", std::process::id())));
    std::fs::create_dir(&dir.0)?;
    run(&dir.0, clients, requests)
}
