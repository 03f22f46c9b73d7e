//! `ipcbox watch`: a queue's depth and a peer killed with SIGKILL show within one refresh,
//! once and live; a store's use and an object abandoned by its dead creator; a POSIX queue's
//! depth; and watching attaches to nothing.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use ipcbox::store::{ObjectId, Store};
use ipcbox::Queue;
use serde_json::Value;
use util::{ipcbox, unique, Spawned};

const ROLE_ENV: &str = "IPCBOX_WATCH_TEST_ROLE";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The one object of a snapshot or a listing named `name`.
fn object<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

/// Plays a peer in a child process (a re-run of this test binary): opens the queue (and the
/// store) its argument names, puts two messages (begins an object), says "ready", and waits
/// to be killed. Without the role variable it does nothing.
#[test]
fn peer_role() {
    let Ok(arg) = std::env::var(ROLE_ENV) else {
        return;
    };
    let mut names = arg.split(' ');
    let q: Queue<Vec<u8>> = Queue::open(names.next().expect("a queue")).expect("open queue");
    q.as_bytes().put(b"from the peer").expect("put");
    q.as_bytes().put(b"and another").expect("put");
    let store = names.next().map(|n| Store::open(n).expect("open store"));
    let _buf = store.as_ref().map(|s| {
        s.create_object(ObjectId::from_u64(5), 1000)
            .expect("create object")
    });
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// A peer process started in `peer_role`, ready.
fn peer(names: &str) -> Spawned {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "peer_role",
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE_ENV, names)
    .stdin(Stdio::piped());
    let mut child = Spawned::start(&mut cmd);
    let stdout = child.child().stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        let n = reader.read_line(&mut line).expect("read the peer's stdout");
        assert!(n > 0, "the peer ended before it was ready");
    }
    // Keep the pipe open: the peer must not die of a closed stdout.
    std::mem::forget(reader);
    child
}

fn kill(child: &mut Spawned) {
    child.child().kill().expect("SIGKILL the peer");
    child.child().wait().expect("reap the peer");
}

fn peers(state: &Value) -> (u64, u64) {
    (
        state["peers_alive"].as_u64().expect("peers_alive"),
        state["peers_dead"].as_u64().expect("peers_dead"),
    )
}

#[test]
fn watch_once_shows_a_queues_depth_and_a_killed_peer() {
    let name = format!("/{}", unique("watch-q"));
    let q: Queue<Vec<u8>> = Queue::create(&name, 8).expect("create queue");
    q.as_bytes().put(b"mine").unwrap();
    let mut child = peer(&name);

    let spec = format!("queue:{name}");
    let doc = json(&ipcbox(&["watch", "--once", "--json", &spec]));
    let state = &object(&doc, &name)["state"];
    assert_eq!(state["type"], "queue");
    assert_eq!(
        (state["messages"].as_u64(), state["capacity"].as_u64()),
        (Some(3), Some(8))
    );
    assert_eq!(peers(state), (2, 0));
    assert!(
        object(&doc, &name)["rate"].is_null(),
        "one snapshot has no rate"
    );

    kill(&mut child);
    // By name as `ls` takes it, and by endpoint: the next snapshot sees the peer dead.
    for arg in [name.as_str(), spec.as_str()] {
        let doc = json(&ipcbox(&["watch", "--once", "--json", arg]));
        let state = &object(&doc, &name)["state"];
        assert_eq!(state["messages"], 3, "{state:#}");
        assert_eq!(peers(state), (1, 1), "{state:#}");
    }
    // Watching attached nobody: the queue still has its two peers, one of them dead.
    let ipcbox::objects::State::Queue(s) = ipcbox::objects::inspect(&name).unwrap().unwrap() else {
        panic!("not a queue")
    };
    assert_eq!(s.peers.len(), 2);

    // The table says the same for people.
    let out = ipcbox(&["watch", "--once", &name]);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(table.contains("3/8 msgs"), "{table}");
    assert!(table.contains("peers 1 alive, 1 DEAD"), "{table}");
    drop(q);
}

#[test]
fn live_watch_reflects_a_change_within_one_refresh() {
    let name = format!("/{}", unique("watch-live"));
    let q: Queue<Vec<u8>> = Queue::create(&name, 16).expect("create queue");
    let mut child = peer(&name);
    let mut watch = Spawned::ipcbox(&["watch", "--json", "--interval", "50ms", &name]);
    let mut lines = BufReader::new(watch.child().stdout.take().expect("stdout")).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("a snapshot").expect("read a snapshot");
        serde_json::from_str(&line).expect("a JSON snapshot")
    };
    let first = next();
    assert_eq!(object(&first, &name)["state"]["messages"], 2);

    q.as_bytes().put(b"one more").unwrap();
    kill(&mut child);
    let changed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Snapshots begun before the change may still be in the pipe; the first one begun after
    // it shows the change, and so do all later ones.
    let mut after = 0;
    while after < 2 {
        let doc = next();
        if doc["time"].as_f64().expect("time") <= changed {
            continue;
        }
        after += 1;
        let obj = object(&doc, &name);
        assert_eq!(obj["state"]["messages"], 3, "{obj:#}");
        assert_eq!(peers(&obj["state"]), (1, 1), "{obj:#}");
        // From the second snapshot on, a rate.
        let rate = obj["rate"]["put_per_sec"].as_f64();
        assert!(rate.is_some_and(|r| r >= 0.0), "{obj:#}");
    }
    drop(watch);
    drop(q);
}

#[test]
fn a_store_and_an_object_abandoned_by_its_dead_creator() {
    let queue = format!("/{}", unique("watch-sq"));
    let store_name = format!("/{}", unique("watch-store"));
    let _q: Queue<Vec<u8>> = Queue::create(&queue, 4).expect("create queue");
    let store = Store::create(&store_name, 1 << 16).expect("create store");
    let mut buf = store.create_object(ObjectId::from_u64(1), 100).unwrap();
    buf.fill(3);
    buf.seal().unwrap();
    let mut child = peer(&format!("{queue} {store_name}"));
    kill(&mut child);

    let doc = json(&ipcbox(&["watch", "--once", "--json", &store_name]));
    let state = &object(&doc, &store_name)["state"];
    assert_eq!(state["type"], "store");
    assert_eq!(
        (
            state["sealed"].as_u64(),
            state["creating"].as_u64(),
            state["abandoned"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{state:#}"
    );
    assert_eq!(state["capacity"], 1 << 16);
    assert_eq!(state["used"], 128 + 1024);

    // `ls` shows the same state.
    let doc = json(&ipcbox(&["ls", "--json", &store_name]));
    assert_eq!(object(&doc, &store_name)["state"]["abandoned"], 1);
    let table = text(&ipcbox(&["ls", &store_name]).stdout);
    assert!(table.contains("ABANDONED"), "{table}");
}

#[test]
fn a_posix_queue_watched_by_endpoint() {
    // An endpoint is watched whether or not the listing can see it (POSIX queues are listed
    // only where mqueue is mounted or this process may mount it privately).
    let name = format!("/{}", unique("watch-pmq"));
    let pq = ipcbox::mq::PosixQueue::create(
        &name,
        ipcbox::mq::Attributes {
            max_messages: 5,
            max_message_size: 32,
        },
    )
    .expect("create");
    pq.send(b"x", 0).unwrap();
    let doc = json(&ipcbox(&[
        "watch",
        "--once",
        "--json",
        &format!("mq:{name}"),
    ]));
    let state = &doc["objects"][0]["state"];
    assert_eq!(
        (state["messages"].as_u64(), state["capacity"].as_u64()),
        (Some(1), Some(5)),
        "{doc:#}"
    );
}

#[test]
fn bad_watch_options() {
    let out = ipcbox(&["watch", "--once", "--interval", "fast"]);
    assert_eq!(out.status.code(), Some(2));
    let missing = format!("/{}", unique("nothing"));
    let out = ipcbox(&["watch", "--once", &missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!("no IPC object matches {missing}")),
        "{out:?}"
    );
}
