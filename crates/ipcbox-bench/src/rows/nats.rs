//! The queue across hosts, [`ipcbox::nats`], beside what it replaces on one host: group
//! `nats`.
//!
//! * `nats queue 1-1`: two NATS queues, one each way ([`Link`]): `put` a message, the peer's
//!   `get` and `task_done`. A round trip is two puts, two gets and two acknowledgements, each
//!   a round trip to the server.
//! * `nats queue 4-4`: four producer and four consumer processes on one queue, throughput
//!   only; the row fails unless every message arrived exactly once.
//! * `nats local queue 1-1`, `nats local queue 4-4`: the shared-memory [`ipcbox::Queue`] in
//!   the same process models.
//! * `nats tcp bytes`, `nats tcp raw`: a framed TCP connection and bare TCP, what "across
//!   hosts, use sockets" costs.
//!
//! The server is `nats-server` on loopback, started for the group the way the tests start it
//! (installed with `apt-get` when missing) and stopped after, or the one `IPCBOX_NATS_URL`
//! names. It runs on every CPU the machine has, not on the bench's pinned one: it stands for a
//! third host. Without a server the NATS rows say so, and the bench does not fail for them.
//!
//! The processes talk to the server through the async API on a current-thread tokio runtime:
//! the bench forks its peers, and only a process with one thread may fork.

#[allow(dead_code, missing_docs, clippy::all)]
#[path = "../../../ipcbox/tests/util/nats.rs"]
mod server;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use ipcbox::nats::{AsyncClient, AsyncQueue, Options, RecvError};
use ipcbox::queue::WaitPolicy;
use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

use crate::cpus::Placement;
use crate::os::{self, Fork};
use crate::row::{
    Endpoint, Info, Kind, LatencyJob, Link, Row, Teardown, ThroughputJob, Unavailable,
};
use crate::rows::queue::{queue_1to1, SPIN};
use crate::rows::queue_many::QueueMany;
use crate::rows::socket::tcp_rows;

const GROUP: &str = "nats";
/// The sizes of every row of the group: a NATS message is at most the server's max payload
/// (1 MiB by default, headers included).
const SIZES: &[usize] = &[64, 4 << 10];
/// Most messages in a bench queue.
const CAPACITY: usize = 10_000;
/// The variable naming a server to use instead of starting one.
const URL_VAR: &str = "IPCBOX_NATS_URL";

/// The rows of group `nats`.
pub fn rows() -> Vec<Box<dyn Row>> {
    let info = |name, kind| Info::new(name, GROUP, kind).sizes(SIZES);
    let mut rows = vec![
        Box::new(NatsQueue {
            info: info("nats queue 1-1", Kind::Ipcbox),
            link: NatsLink::default(),
        }) as Box<dyn Row>,
        Box::new(NatsMany {
            info: info("nats queue 4-4", Kind::Ipcbox).no_latency(),
            producers: 4,
            consumers: 4,
            url: Mutex::default(),
        }),
        queue_1to1(info("nats local queue 1-1", Kind::Ipcbox)),
        Box::new(QueueMany::new(
            info("nats local queue 4-4", Kind::Ipcbox).no_latency(),
            4,
            4,
            WaitPolicy::SpinThenPark(SPIN),
        )) as Box<dyn Row>,
    ];
    rows.extend(tcp_rows(GROUP, "nats tcp bytes", "nats tcp raw", SIZES));
    rows
}

/// The server the group's rows share: started by the first setup, stopped when the last
/// teardown drops it.
static SERVER: Mutex<Weak<Server>> = Mutex::new(Weak::new());

struct Server {
    url: String,
    _running: Option<server::NatsServer>,
}

/// The server's URL and a hold on it, or why there is none.
fn acquire() -> anyhow::Result<Arc<Server>> {
    let mut shared = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return Ok(s);
    }
    let server = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Server {
            url: resolve(&url).map_err(|e| Unavailable(format!("{URL_VAR}={url}: {e}")))?,
            _running: None,
        },
        _ => {
            let running = on_every_cpu(server::NatsServer::start)
                .map_err(|e| Unavailable(format!("no NATS server: {e}")))?;
            Server {
                url: running.url().to_owned(),
                _running: Some(running),
            }
        }
    };
    let server = Arc::new(server);
    *shared = Arc::downgrade(&server);
    Ok(server)
}

/// `url` with its host resolved to an address: the client would resolve a name on a thread of
/// its own, and the bench forks only while it has one thread.
fn resolve(url: &str) -> io::Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.rsplit('@').next().unwrap_or(rest);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:4222")
    };
    let addr = with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    Ok(url.replace(host_port, &addr.to_string()))
}

/// Runs `f` with this process allowed on every CPU (so that what it starts inherits that), then
/// pins it back.
fn on_every_cpu<T>(f: impl FnOnce() -> T) -> T {
    let before = sched_getaffinity(None).ok();
    let mut all = CpuSet::new();
    for cpu in 0..CpuSet::MAX_CPU {
        all.set(cpu);
    }
    let _ = sched_setaffinity(None, &all);
    let out = f();
    if let Some(set) = before {
        let _ = sched_setaffinity(None, &set);
    }
    out
}

fn setup_row(url: &Mutex<Option<String>>) -> anyhow::Result<Teardown> {
    let server = acquire()?;
    *url.lock().unwrap_or_else(|e| e.into_inner()) = Some(server.url.clone());
    Ok(Teardown::new(move || drop(server)))
}

fn url_of(url: &Mutex<Option<String>>) -> io::Result<String> {
    url.lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| io::Error::other("the NATS row was not set up"))
}

/// A fresh queue name per measurement.
fn fresh_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ipcbox-bench-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A connection and the queues `names` on it, on a runtime of the calling thread.
fn connect(url: &str, names: &[&str]) -> io::Result<(tokio::runtime::Runtime, Vec<Q>)> {
    let rt = runtime()?;
    let queues = rt.block_on(async {
        let client = AsyncClient::connect(url).await?;
        let mut queues = Vec::new();
        for name in names {
            queues.push(
                Options::new()
                    .capacity(CAPACITY)
                    .open_async(&client, name)
                    .await?,
            );
        }
        Ok::<_, io::Error>(queues)
    })?;
    Ok((rt, queues))
}

type Q = AsyncQueue<Vec<u8>>;

/// The 1-1 row: [`NatsLink`] measured by the shared loops, with the group's server.
struct NatsQueue {
    info: Info,
    link: NatsLink,
}

impl Row for NatsQueue {
    fn info(&self) -> &Info {
        &self.info
    }

    fn setup(&self) -> anyhow::Result<Teardown> {
        setup_row(&self.link.url)
    }

    fn latency(&self, cpus: &Placement, job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        crate::measure::latency(&self.link, cpus, job)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        crate::measure::throughput(&self.link, cpus, job)
    }
}

/// Two NATS queues, one each way.
#[derive(Debug, Default)]
struct NatsLink {
    url: Mutex<Option<String>>,
}

/// One end: its runtime, the queue it puts into, the one it gets from; the bench's end deletes
/// both when dropped.
struct NatsEnd {
    rt: tokio::runtime::Runtime,
    tx: Q,
    rx: Q,
    owner: bool,
}

impl Link for NatsLink {
    type Shared = (String, String, String);
    type Parent = NatsEnd;
    type Child = NatsEnd;

    fn prepare(&self, _max_message: usize) -> io::Result<Self::Shared> {
        Ok((url_of(&self.url)?, fresh_name(), fresh_name()))
    }

    fn parent(&self, (url, to_child, to_parent): Self::Shared) -> io::Result<NatsEnd> {
        let (rt, mut q) = connect(&url, &[&to_child, &to_parent])?;
        let (rx, tx) = (q.remove(1), q.remove(0));
        Ok(NatsEnd {
            rt,
            tx,
            rx,
            owner: true,
        })
    }

    fn child(&self, (url, to_child, to_parent): Self::Shared) -> io::Result<NatsEnd> {
        let (rt, mut q) = connect(&url, &[&to_parent, &to_child])?;
        let (rx, tx) = (q.remove(1), q.remove(0));
        Ok(NatsEnd {
            rt,
            tx,
            rx,
            owner: false,
        })
    }
}

impl Endpoint for NatsEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.rt
            .block_on(self.tx.put(&msg.to_vec()))
            .map_err(io::Error::from)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let msg = self.rt.block_on(self.rx.get()).map_err(io::Error::from)?;
        self.rt.block_on(self.rx.task_done())?;
        if msg.len() != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "received a message of {} bytes, expected {}",
                    msg.len(),
                    buf.len()
                ),
            ));
        }
        buf.copy_from_slice(&msg);
        Ok(())
    }
}

impl Drop for NatsEnd {
    fn drop(&mut self) {
        if self.owner {
            let _ = self.rt.block_on(self.tx.clone().delete());
            let _ = self.rt.block_on(self.rx.clone().delete());
        }
    }
}

/// `producers` processes putting into one NATS queue, `consumers` processes taking from it.
struct NatsMany {
    info: Info,
    producers: usize,
    consumers: usize,
    url: Mutex<Option<String>>,
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

fn wait_for_go(go: &File) -> io::Result<()> {
    let mut byte = [0];
    (&*go).read_exact(&mut byte)
}

impl Row for NatsMany {
    fn info(&self) -> &Info {
        &self.info
    }

    fn setup(&self) -> anyhow::Result<Teardown> {
        setup_row(&self.url)
    }

    fn latency(&self, _cpus: &Placement, _job: &LatencyJob) -> anyhow::Result<Vec<u64>> {
        bail!("{} measures throughput only", self.info.name)
    }

    fn throughput(&self, cpus: &Placement, job: &ThroughputJob) -> anyhow::Result<Duration> {
        ensure!(
            job.size >= 8,
            "{} needs 8-byte messages at least",
            self.info.name
        );
        let url = url_of(&self.url)?;
        let name = fresh_name();
        let per = job.count.div_ceil(self.producers).max(1);
        let total = per * self.producers;
        let (go_r, mut go_w) = pipe()?;
        let mut reports = Vec::new();
        let mut children = Vec::new();
        // Every child before the bench's own runtime: only a one-thread process may fork.
        for p in 0..self.producers + self.consumers {
            let (r, w) = pipe()?;
            match os::fork()? {
                Fork::Child => {
                    drop(r);
                    drop(go_w);
                    os::run_child(|| {
                        let producer = p < self.producers;
                        if producer {
                            cpus.pin_parent()?;
                        } else {
                            cpus.pin_child()?;
                        }
                        let (rt, q) = connect(&url, &[&name])?;
                        wait_for_go(&go_r)?;
                        let mut out = w;
                        if producer {
                            let mut msg = vec![0xa5; job.size];
                            for seq in 0..per {
                                let i = (p * per + seq) as u64;
                                msg[..8].copy_from_slice(&i.to_le_bytes());
                                rt.block_on(q[0].put(&msg))
                                    .map_err(|e| anyhow::anyhow!("producer {p}: put: {e}"))?;
                            }
                            return Ok(());
                        }
                        let (mut count, mut sum) = (0u64, 0u64);
                        loop {
                            match rt.block_on(q[0].get()) {
                                Ok(msg) => {
                                    let head = msg.get(..8).context("a short message")?;
                                    sum = sum.wrapping_add(u64::from_le_bytes(head.try_into()?));
                                    count += 1;
                                    rt.block_on(q[0].task_done())?;
                                }
                                Err(RecvError::Disconnected) => break,
                                Err(e) => bail!("consumer: get: {e}"),
                            }
                        }
                        out.write_all(&count.to_le_bytes())?;
                        out.write_all(&sum.to_le_bytes())?;
                        Ok(())
                    })
                }
                Fork::Parent(child) => {
                    drop(w);
                    children.push(child);
                    reports.push(r);
                }
            }
        }
        drop(go_r);
        let (rt, q) = connect(&url, &[&name]).context("open the queue")?;
        go_w.write_all(&vec![1; children.len()])
            .context("start the producers and consumers")?;
        let start = Instant::now();
        let mut consumers = children.split_off(self.producers);
        for (p, child) in children.into_iter().enumerate() {
            child.wait().with_context(|| format!("producer {p}"))?;
        }
        // A failed consumer leaves messages nobody acknowledges, so a plain join could wait
        // for ever: join in slices and look at the consumers between them.
        while !rt
            .block_on(q[0].join_timeout(Duration::from_millis(100)))
            .context("join")?
        {
            for (c, child) in consumers.iter_mut().enumerate() {
                if let Some(how) = child.failed()? {
                    bail!("consumer {c} {how} before every message was taken");
                }
            }
        }
        let elapsed = start.elapsed();
        rt.block_on(q[0].close()).context("close")?;
        let (mut count, mut sum) = (0u64, 0u64);
        for (c, r) in reports.iter_mut().skip(self.producers).enumerate() {
            let mut word = [0u8; 8];
            r.read_exact(&mut word)
                .with_context(|| format!("consumer {c} ended without reporting"))?;
            count += u64::from_le_bytes(word);
            r.read_exact(&mut word)?;
            sum = sum.wrapping_add(u64::from_le_bytes(word));
        }
        for (c, child) in consumers.into_iter().enumerate() {
            child.wait().with_context(|| format!("consumer {c}"))?;
        }
        let _ = rt.block_on(q[0].clone().delete());
        let n = total as u64;
        let want = n * n.saturating_sub(1) / 2;
        if count != n || sum != want {
            bail!("{total} messages put, {count} taken (index sum {sum}, expected {want})");
        }
        Ok(elapsed.mul_f64(job.count as f64 / total as f64))
    }
}
