//! A NATS server for the tests of `ipcbox::nats` and for the bench's NATS rows (which compile
//! this file too): Debian's `nats-server`, installed with `apt-get` when missing, started on
//! loopback with random client ports and a temporary storage directory, one node or a cluster
//! of three that stands in for three hosts.
//!
//! Nothing is left running: the servers are killed and their directory removed on drop (so on
//! a panic too), and each server gets `SIGKILL` from the kernel when the thread that started it
//! ends (`PR_SET_PDEATHSIG`), so a test process that aborts takes its servers with it. Start a
//! server from the thread that uses it.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ipcbox::process::{Child, Command, Stdio};
use ipcbox::Signal;

/// How long a server (or a cluster) may take to become healthy.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The `nats-server` program, installed from Debian's package the first time it is asked for
/// (under a lock: several test binaries may ask at once); an error says why it is not there.
pub fn nats_server() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_or_install).clone()
}

fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(p) = find() {
        return check_version(p);
    }
    // In target/tmp for the tests; the bench has no such directory.
    let lock_dir =
        option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let lock_path = lock_dir.join("ipcbox-nats-server-install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("create {lock_path:?}: {e}"))?;
    rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("lock {lock_path:?}: {e}"))?;
    if let Some(p) = find() {
        return check_version(p);
    }
    // The package lists may be missing or stale on a fresh machine: update them once if the
    // first attempt fails.
    let install = || {
        StdCommand::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "nats-server",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let mut out = install().map_err(|e| format!("run apt-get install nats-server: {e}"))?;
    if !out.status.success() {
        let _ = StdCommand::new("apt-get").args(["update", "-qq"]).output();
        out = install().map_err(|e| format!("run apt-get install nats-server: {e}"))?;
    }
    if !out.status.success() {
        return Err(format!(
            "apt-get install nats-server failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    check_version(find().ok_or("apt-get installed nats-server but it is not on PATH")?)
}

/// JetStream needs nats-server 2.2 or later.
fn check_version(p: PathBuf) -> Result<PathBuf, String> {
    let out = StdCommand::new(&p)
        .arg("--version")
        .output()
        .map_err(|e| format!("run {p:?} --version: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let version = text.rsplit('v').next().unwrap_or("");
    let mut parts = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (2, 2) {
        return Err(format!(
            "{p:?} is {text:?}; JetStream needs nats-server 2.2 or later"
        ));
    }
    Ok(p)
}

/// One running `nats-server`.
struct Node {
    child: Option<Child>,
    dir: PathBuf,
    url: String,
    http: u16,
    name: String,
}

impl Node {
    fn spawn(exe: &Path, dir: PathBuf, name: &str, cluster: &str) -> Result<Node, String> {
        std::fs::create_dir_all(dir.join("ports")).map_err(|e| format!("create {dir:?}: {e}"))?;
        let conf = format!(
            "server_name: {name}\nlisten: 127.0.0.1:-1\nhttp: 127.0.0.1:-1\n\
             ports_file_dir: {ports:?}\njetstream {{ store_dir: {store:?} }}\n{cluster}\n",
            ports = dir.join("ports"),
            store = dir.join("js"),
        );
        let conf_path = dir.join("server.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("write {conf_path:?}: {e}"))?;
        let log = File::create(dir.join("server.log")).map_err(|e| format!("log file: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .parent_death_signal(Signal::KILL)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {exe:?}: {e}"))?;
        let ports = dir.join("ports");
        let start = Instant::now();
        // The server writes its ports file once it listens; there is nothing else to wait on.
        let text = loop {
            let file = std::fs::read_dir(&ports)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .and_then(|e| std::fs::read_to_string(e.path()).ok())
                .filter(|t| t.trim_end().ends_with('}'));
            if let Some(text) = file {
                break text;
            }
            if start.elapsed() > START_LIMIT {
                return Err(format!(
                    "nats-server {name} wrote no ports file: {}",
                    log_of(&dir)
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let url = field_port(&text, "nats")
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .ok_or_else(|| format!("no client port in {text}"))?;
        let http =
            field_port(&text, "monitoring").ok_or_else(|| format!("no http port in {text}"))?;
        Ok(Node {
            child: Some(child),
            dir,
            url,
            http,
            name: name.to_owned(),
        })
    }

    /// Whether the node answers its health check with JetStream ready (`/healthz`).
    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.http)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        let mut resp = String::new();
        s.write_all(req.as_bytes()).is_ok()
            && s.read_to_string(&mut resp).is_ok()
            && resp.starts_with("HTTP/1.")
            && resp.contains(" 200 ")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The first port of `"key":["nats://127.0.0.1:PORT"...]` in a ports file.
fn field_port(text: &str, key: &str) -> Option<u16> {
    let at = text.find(&format!("\"{key}\""))?;
    let rest = &text[at..];
    let url = rest.split('"').nth(3)?;
    url.rsplit(':').next()?.parse().ok()
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// A new directory path for a server's files, after removing those left by test processes
/// that died without their destructors (aborted by a watchdog, killed).
fn temp_dir(tag: &str) -> PathBuf {
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("ipcbox-nats-") else {
                continue;
            };
            // ipcbox-nats-<tag>-<pid>-<n>-<nanos>
            let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "ipcbox-nats-{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A free TCP port on loopback (the kernel's pick, released at once): for cluster routes,
/// which every node must know before any starts.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// One server or a cluster on loopback; killed, with its storage removed, on drop.
pub struct NatsServer {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl NatsServer {
    /// One node with JetStream.
    pub fn start() -> Result<NatsServer, String> {
        let exe = nats_server()?;
        let dir = temp_dir("single");
        let mut server = NatsServer {
            nodes: Vec::new(),
            dir: dir.clone(),
        };
        server
            .nodes
            .push(Node::spawn(&exe, dir.join("n1"), "n1", "")?);
        server.wait_healthy()?;
        Ok(server)
    }

    /// `n` nodes joined by cluster routes, JetStream clustered (streams can have up to `n`
    /// replicas). Tries again with other route ports if one was taken meanwhile.
    pub fn cluster(n: usize) -> Result<NatsServer, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match NatsServer::try_cluster(n) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_cluster(n: usize) -> Result<NatsServer, String> {
        let exe = nats_server()?;
        let dir = temp_dir("cluster");
        let ports = (0..n).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
        let routes = ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut server = NatsServer {
            nodes: Vec::new(),
            dir: dir.clone(),
        };
        for (i, port) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let cluster =
                format!("cluster {{ name: ipcbox, listen: 127.0.0.1:{port}, routes: [{routes}] }}");
            server
                .nodes
                .push(Node::spawn(&exe, dir.join(&name), &name, &cluster)?);
        }
        server.wait_healthy()?;
        Ok(server)
    }

    fn wait_healthy(&self) -> Result<(), String> {
        let start = Instant::now();
        while !self.nodes.iter().all(|n| n.child.is_none() || n.healthy()) {
            if start.elapsed() > START_LIMIT {
                let logs: Vec<String> = self.nodes.iter().map(|n| log_of(&n.dir)).collect();
                return Err(format!(
                    "nats-server did not become healthy: {}",
                    logs.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The client URL of node `i` (from 0).
    pub fn url_of(&self, i: usize) -> &str {
        &self.nodes[i].url
    }

    /// The client URL of the first node.
    pub fn url(&self) -> &str {
        self.url_of(0)
    }

    /// Every node's client URL, comma-separated (what a client of the cluster is given).
    pub fn urls(&self) -> String {
        let urls: Vec<&str> = self.nodes.iter().map(|n| n.url.as_str()).collect();
        urls.join(",")
    }

    /// Every node's URL, starting with node `i`'s (a client that prefers node `i`).
    pub fn urls_from(&self, i: usize) -> String {
        let n = self.nodes.len();
        let urls: Vec<&str> = (0..n)
            .map(|k| self.nodes[(i + k) % n].url.as_str())
            .collect();
        urls.join(",")
    }

    /// The server name of node `i` (`n1`, `n2`, ...), as stream info names leaders.
    pub fn name_of(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Kills node `i` with `SIGKILL` and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
