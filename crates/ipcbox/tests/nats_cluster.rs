//! `ipcbox::nats` on a three-node cluster on loopback standing in for three hosts (routes,
//! streams with three replicas): losing a server mid-stream, and workers killed at random.
//!
//! The two tests start a cluster each and run one at a time: on a two-core machine two
//! clusters and their workers at once could stretch a live worker past the ack wait.

mod util;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use ipcbox::nats::{Client, Options, Queue, RecvError};
use util::nats::NatsServer;
use util::{role_arg, role_command, unique_name, watchdog, ChildGuard};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cluster() -> NatsServer {
    NatsServer::cluster(3).unwrap_or_else(|e| panic!("cannot start a nats-server cluster: {e}"))
}

fn queue_name(tag: &str) -> String {
    unique_name(tag).replace('.', "_")
}

/// The index of the node that leads the queue's stream.
fn stream_leader(server: &NatsServer, name: &str) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addrs: Vec<async_nats::ServerAddr> = server
            .urls()
            .split(',')
            .map(|u| u.parse().unwrap())
            .collect();
        let client = async_nats::connect(addrs).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(name).await.unwrap();
        let info = stream.info().await.unwrap();
        let leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
        let leader = leader.expect("the stream has a leader");
        server.index_of(&leader).expect("the leader is one of ours")
    })
}

#[test]
fn losing_one_of_three_servers_loses_no_acknowledged_message() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let _w = watchdog("nats server loss", Duration::from_secs(300));
    let mut server = cluster();
    let name = queue_name("loss");
    let client = Client::connect(&server.urls()).unwrap();
    let q: Queue<u32> = Options::new()
        .capacity(100_000)
        .replicas(3)
        .ack_wait(Duration::from_secs(10))
        .open(&client, &name)
        .unwrap();
    let total = 3000u32;
    let acked = Arc::new(AtomicUsize::new(0));
    // A producer on one connection, a consumer on another, each preferring another node.
    let producer = {
        let urls = server.urls_from(1);
        let (name, acked) = (name.clone(), acked.clone());
        std::thread::spawn(move || {
            let q: Queue<u32> = Queue::open(&urls, &name).unwrap();
            for i in 0..total {
                q.put(&i).unwrap_or_else(|e| panic!("put {i}: {e}"));
                acked.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let consumer = {
        let urls = server.urls_from(2);
        let name = name.clone();
        std::thread::spawn(move || {
            let q: Queue<u32> = Queue::open(&urls, &name).unwrap();
            let mut seen = vec![0u32; total as usize];
            let mut distinct = 0;
            while distinct < total {
                let v = q.get().unwrap_or_else(|e| panic!("get: {e}"));
                if seen[v as usize] == 0 {
                    distinct += 1;
                }
                seen[v as usize] += 1;
                q.task_done()
                    .unwrap_or_else(|e| panic!("task_done {v}: {e}"));
            }
            seen
        })
    };
    // Mid-stream, kill the node that leads the stream, so the cluster must elect another.
    util::poll_until("a third of the puts", Duration::from_secs(120), || {
        acked.load(Ordering::SeqCst) >= total as usize / 3
    });
    let leader = stream_leader(&server, &name);
    server.kill(leader);
    producer.join().expect("every put was acknowledged");
    let seen = consumer.join().expect("the consumer got every message");
    assert!(seen.iter().all(|&n| n >= 1));
    let dups: u32 = seen.iter().map(|&n| n - 1).sum();
    // Only messages in flight at the loss can come twice (their acknowledgement was lost).
    assert!(dups <= 10, "{dups} duplicates");
    // The queue keeps working on the two servers left.
    q.put(&total).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), Some(total));
    q.task_done().unwrap();
    q.join().unwrap();
    assert_eq!(q.len().unwrap(), 0);
}

/// Role: a worker of the chaos test. For each message: `G seq` on stdout, `task_done`, then
/// `D seq`; exits when the queue is closed. Arg: `urls queue`.
#[test]
fn role_nats_chaos_worker() {
    let Some(arg) = role_arg("nats-chaos-worker") else {
        return;
    };
    let (urls, name) = arg.split_once(' ').unwrap();
    let q: Queue<u32> = Queue::open(urls, name).expect("open");
    let mut out = std::io::stdout().lock();
    loop {
        match q.get() {
            // Each line is one write(2) of a few bytes into a pipe: atomic, and in the pipe
            // even if the worker is killed right after.
            Ok(seq) => {
                writeln!(out, "G {seq}").unwrap();
                out.flush().unwrap();
                q.task_done().expect("task_done");
                writeln!(out, "D {seq}").unwrap();
                out.flush().unwrap();
            }
            Err(RecvError::Disconnected) => return,
            Err(e) => panic!("worker: {e}"),
        }
    }
}

/// What one worker process reported, in order.
#[derive(Default)]
struct Report {
    events: Vec<(char, u32)>,
    killed: bool,
}

/// A small deterministic generator (xorshift), seeded from the clock and printed, so a failing
/// run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn chaos_workers_killed_at_random_across_the_cluster() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let _w = watchdog("nats chaos", Duration::from_secs(600));
    const MESSAGES: u32 = 10_000;
    const WORKERS: usize = 4;
    const MIN_KILLS: usize = 50;
    // A kill after every this many deliveries gives about 70 kills over the run.
    const KILL_EVERY: usize = 140;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("chaos seed {seed}");
    let mut rng = Rng(seed);

    let server = cluster();
    let name = queue_name("chaos");
    let client = Client::connect(&server.urls()).unwrap();
    let q: Queue<u32> = Options::new()
        .capacity(1000)
        .replicas(3)
        // Long enough that no live worker overruns it even on a loaded machine: a message
        // comes back only from a killed worker.
        .ack_wait(Duration::from_secs(10))
        .open(&client, &name)
        .unwrap();

    // Two producers, 5,000 sequence numbers each, through different nodes; every put must be
    // acknowledged.
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let (urls, name) = (server.urls_from(p as usize), name.clone());
            std::thread::spawn(move || {
                let q: Queue<u32> = Queue::open(&urls, &name).unwrap();
                for seq in (p..MESSAGES).step_by(2) {
                    q.put(&seq).unwrap_or_else(|e| panic!("put {seq}: {e}"));
                }
            })
        })
        .collect();

    // Workers report through their stdout; a reader thread per worker forwards the lines.
    let (tx, rx) = mpsc::channel::<(usize, Option<(char, u32)>)>();
    let mut reports: Vec<Report> = Vec::new();
    let mut live: HashMap<usize, ChildGuard> = HashMap::new();
    let spawn = |id: usize, live: &mut HashMap<usize, ChildGuard>| {
        let arg = format!("{} {name}", server.urls_from(id % 3));
        let mut cmd = role_command("role_nats_chaos_worker", "nats-chaos-worker", &arg);
        cmd.stdout(Stdio::piped());
        let mut child = ChildGuard::spawn(cmd);
        let out = child.get().stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                let (Some(kind), Some(seq)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let (Some(kind), Ok(seq)) = (kind.chars().next(), seq.parse()) else {
                    continue;
                };
                if kind == 'G' || kind == 'D' {
                    let _ = tx.send((id, Some((kind, seq))));
                }
            }
            let _ = tx.send((id, None)); // end of its output
        });
        live.insert(id, child);
    };
    for id in 0..WORKERS {
        reports.push(Report::default());
        spawn(id, &mut live);
    }

    // The checker joins the queue once the producers are done: then every message has been
    // finished by someone, and closing the queue lets the workers exit.
    let joiner = {
        let q = q.clone();
        std::thread::spawn(move || {
            for p in producers {
                p.join().expect("every put was acknowledged");
            }
            q.join().expect("join");
            q.close().expect("close");
        })
    };

    let mut kills = 0;
    let mut since_kill = 0;
    let mut ended = 0;
    while ended < reports.len() {
        let (id, event) = rx.recv().expect("reports");
        match event {
            None => {
                ended += 1;
                if let Some(child) = live.remove(&id) {
                    child.expect_success("chaos worker");
                }
            }
            Some(e) => {
                reports[id].events.push(e);
                if e.0 == 'G' {
                    since_kill += 1;
                }
            }
        }
        if since_kill >= KILL_EVERY && !joiner.is_finished() && !live.is_empty() {
            since_kill = 0;
            let ids: Vec<usize> = live.keys().copied().collect();
            let victim = ids[rng.next(ids.len())];
            live.remove(&victim).unwrap().kill();
            reports[victim].killed = true;
            kills += 1;
            let id = reports.len();
            reports.push(Report::default());
            spawn(id, &mut live);
        }
    }
    joiner.join().expect("join and close");

    // The checker's count. For each message: the deliveries workers reported (G), and which
    // were finished (D follows, or the worker was killed after its G without a D).
    let mut finished: BTreeMap<u32, u32> = BTreeMap::new();
    let mut pending_of_killed: BTreeMap<u32, u32> = BTreeMap::new();
    let mut deliveries: BTreeMap<u32, u32> = BTreeMap::new();
    for r in &reports {
        for (i, &(kind, seq)) in r.events.iter().enumerate() {
            match kind {
                'G' => {
                    *deliveries.entry(seq).or_default() += 1;
                    let next = r.events.get(i + 1);
                    match next {
                        Some(&('D', s)) if s == seq => {}
                        None if r.killed => *pending_of_killed.entry(seq).or_default() += 1,
                        other => panic!("worker reported G {seq} then {other:?}"),
                    }
                }
                _ => *finished.entry(seq).or_default() += 1,
            }
        }
    }
    assert!(kills >= MIN_KILLS, "only {kills} kills");
    let mut redelivered = 0;
    for seq in 0..MESSAGES {
        let got = deliveries.get(&seq).copied().unwrap_or(0);
        let done = finished.get(&seq).copied().unwrap_or(0);
        let cut = pending_of_killed.get(&seq).copied().unwrap_or(0);
        assert!(
            got >= 1,
            "message {seq} was put, acknowledged and never delivered"
        );
        assert!(
            done <= 1,
            "message {seq} was processed to task_done {done} times"
        );
        // Without a reported D, the one killed worker whose task_done reached the server
        // finished it: the queue is empty, so someone did, and no one else reported it.
        assert!(done == 1 || cut >= 1, "message {seq} was never finished");
        // So every delivery but the finished one went to a worker killed before its D: the
        // documented redeliveries (each G is followed by its D or is a killed worker's last).
        redelivered += got - 1;
    }
    let cut_total: u32 = pending_of_killed.values().sum();
    assert!(
        cut_total as usize <= kills,
        "{cut_total} cut deliveries for {kills} kills"
    );
    println!("{kills} kills, {redelivered} redeliveries, all {MESSAGES} messages finished once");
    assert_eq!(q.len().unwrap(), 0);
    assert!(q.is_closed().unwrap());
}
