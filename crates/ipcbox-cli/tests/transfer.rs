//! `ipcbox send` and `ipcbox recv` against peers nobody here wrote: `cat` and the shell on a
//! FIFO, Python's standard `socket` module on every socket kind, `posix_ipc` and `sysv_ipc`
//! on message queues; and against the library on its own Queue, segments and store.

mod util;

use std::path::Path;
use std::process::Command;

use ipcbox::store::{ObjectId, Store};
use ipcbox::{fifo, CreationMode, Queue};
use serde_json::Value;
use util::python::{output, python};
use util::{ipcbox, ipcbox_with_input, unique, Spawned, TempDir};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the command succeeded and returns its stdout.
fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed with {}: {}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts the command failed with `code` and one line on stderr containing every one of
/// `parts`, and printed nothing on stdout.
fn fails(out: &std::process::Output, code: i32, parts: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("ipcbox: "), "{err}");
    for part in parts {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

/// The port or the address in `ipcbox …: listening on ENDPOINT`.
fn listening(line: &str) -> &str {
    line.rsplit_once("listening on ")
        .map(|(_, ep)| ep)
        .unwrap_or_else(|| panic!("not a listening line: {line}"))
}

#[test]
fn send_to_a_fifo_read_by_cat() {
    let dir = TempDir::new("fifo-cat");
    let path = dir.join("f");
    let _fifo = fifo::Fifo::create(&path, CreationMode::CreateExclusive).expect("mkfifo");
    let spec = format!("fifo:{}", path.display());

    let mut cat = Spawned::start(Command::new("cat").arg(&path));
    ok(&ipcbox(&["send", &spec, "hello", "world"]));
    assert_eq!(ok(&cat.wait_output()), "hello\nworld\n");

    // stdin is copied as it is, bytes included.
    let mut cat = Spawned::start(Command::new("cat").arg(&path));
    ok(&ipcbox_with_input(&["send", &spec], b"raw\x00\xffbytes"));
    assert_eq!(cat.wait_output().stdout, b"raw\x00\xffbytes");
}

#[test]
fn recv_from_a_fifo_written_by_the_shell() {
    let dir = TempDir::new("fifo-sh");
    let path = dir.join("f");
    let _fifo = fifo::Fifo::create(&path, CreationMode::CreateExclusive).expect("mkfifo");
    let spec = format!("fifo:{}", path.display());
    let mut sh = Spawned::start(
        Command::new("sh")
            .arg("-c")
            .arg("printf 'one\\ntwo\\nthree' > \"$1\"")
            .arg("sh")
            .arg(&path),
    );
    let out = ipcbox(&["recv", "-F", "json", &spec]);
    let lines: Vec<Value> = ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[2]["text"], "three");
    ok(&sh.wait_output());
}

#[test]
fn recv_follows_a_fifo_from_one_writer_to_the_next() {
    use std::io::BufRead;
    let dir = TempDir::new("fifo-follow");
    let path = dir.join("f");
    let _fifo = fifo::Fifo::create(&path, CreationMode::CreateExclusive).expect("mkfifo");
    let spec = format!("fifo:{}", path.display());
    let mut recv = Spawned::ipcbox(&["recv", "--follow", "-F", "lines", &spec]);
    let mut lines = std::io::BufReader::new(recv.child().stdout.take().unwrap()).lines();
    for word in ["first", "second"] {
        let status = Command::new("sh")
            .arg("-c")
            .arg("echo \"$1\" > \"$2\"")
            .args(["sh", word])
            .arg(&path)
            .status()
            .expect("run sh");
        assert!(status.success());
        assert_eq!(lines.next().expect("a line").expect("read"), word);
    }
}

/// Python's stdlib `socket` writing `data` to `kind` `addr`.
fn python_writes(kind: &str, addr: &str, data: &str) -> String {
    let script = r#"
import socket, sys
kind, addr, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
def hp(a):
    h, p = a.rsplit(':', 1)
    return h.strip('[]'), int(p)
if kind == 'unix':
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(addr); s.sendall(data)
elif kind == 'tcp':
    s = socket.create_connection(hp(addr)); s.sendall(data)
elif kind == 'seqpacket':
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(addr)
    for part in data.split(b','):
        s.send(part)
elif kind == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
    s.sendto(data, hp(addr)); print(s.getsockname()[1])
elif kind == 'abstract-dgram':
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(data, '\0' + addr)
s.close()
"#;
    output(python(script).args([kind, addr, data]))
}

#[test]
fn recv_from_sockets_written_by_python() {
    let dir = TempDir::new("sockets");
    // A Unix stream socket: one peer, read to its end.
    let path = dir.join("s.sock");
    let spec = format!("unix:{}", path.display());
    let mut recv = Spawned::ipcbox(&["recv", &spec]);
    recv.stderr_line("listening on");
    python_writes("unix", path.to_str().unwrap(), "from python\n");
    assert_eq!(ok(&recv.wait_output()), "from python\n");
    assert!(!path.exists(), "the socket file was left behind");

    // TCP on a port the kernel picks, two lines.
    let mut recv = Spawned::ipcbox(&["recv", "-F", "lines", "-n", "2", "tcp:127.0.0.1:0"]);
    let line = recv.stderr_line("listening on");
    let ep = listening(&line)
        .strip_prefix("tcp:")
        .expect("a tcp endpoint")
        .to_owned();
    python_writes("tcp", &ep, "a\nb\nc\n");
    assert_eq!(ok(&recv.wait_output()), "a\nb\n");

    // Seqpacket: message boundaries kept.
    let path = dir.join("p.sock");
    let spec = format!("unix-seqpacket:{}", path.display());
    let mut recv = Spawned::ipcbox(&["recv", "-n", "3", &spec]);
    recv.stderr_line("listening on");
    python_writes("seqpacket", path.to_str().unwrap(), "one,two,three");
    assert_eq!(ok(&recv.wait_output()), "one\ntwo\nthree\n");

    // UDP, with the sender in the JSON.
    let mut recv = Spawned::ipcbox(&["recv", "-F", "json", "udp:127.0.0.1:0"]);
    let line = recv.stderr_line("listening on");
    let ep = listening(&line)
        .strip_prefix("udp:")
        .expect("a udp endpoint")
        .to_owned();
    let port = python_writes("udp", &ep, "datagram");
    let got: Value = serde_json::from_str(ok(&recv.wait_output()).trim()).expect("JSON");
    assert_eq!(got["text"], "datagram");
    assert_eq!(got["len"], 8);
    assert_eq!(got["from"], format!("udp:127.0.0.1:{port}"));

    // An abstract datagram socket.
    let name = unique("abstract");
    let spec = format!("unix-abstract-dgram:{name}");
    let mut recv = Spawned::ipcbox(&["recv", "-F", "hex", &spec]);
    recv.stderr_line("listening on");
    python_writes("abstract-dgram", &name, "\u{1}AB");
    assert_eq!(ok(&recv.wait_output()), "014142\n");
}

#[test]
fn send_to_a_python_listener_and_serve_a_python_client() {
    let dir = TempDir::new("send-sockets");
    let path = dir.join("py.sock");
    let server = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print('ready', flush=True)
c, _ = s.accept()
data = b''
while True:
    b = c.recv(65536)
    if not b:
        break
    data += b
os.unlink(sys.argv[1])
sys.stdout.write(data.decode()); sys.stdout.flush()
"#;
    let mut py = Spawned::start(python(server).arg(&path));
    {
        use std::io::BufRead;
        let stdout = py.child().stdout.as_mut().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("python's ready line");
        assert_eq!(line.trim(), "ready");
    }
    let spec = format!("unix:{}", path.display());
    ok(&ipcbox_with_input(&["send", "--lines", &spec], b"x\ny\n"));
    assert_eq!(ok(&py.wait_output()), "x\ny\n");

    // `send --listen`: the first client gets the message.
    let mut send = Spawned::ipcbox(&["send", "--listen", "tcp:127.0.0.1:0", "served"]);
    let line = send.stderr_line("listening on");
    let ep = listening(&line).strip_prefix("tcp:").unwrap().to_owned();
    let client = r#"
import socket, sys
h, p = sys.argv[1].rsplit(':', 1)
s = socket.create_connection((h, int(p)))
data = b''
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode(), end='')
"#;
    assert_eq!(output(python(client).arg(&ep)), "served");
    ok(&send.wait_output());
}

#[test]
fn posix_queues_with_posix_ipc() {
    let name = format!("/{}", unique("pmq"));
    let made = python(
        "import posix_ipc, sys\n\
         posix_ipc.MessageQueue(sys.argv[1], posix_ipc.O_CREX, max_messages=4, max_message_size=64)",
    )
    .arg(&name)
    .status()
    .expect("python");
    assert!(made.success());
    struct Unlink(String);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = ipcbox::mq::PosixQueue::unlink(&self.0);
        }
    }
    let _unlink = Unlink(name.clone());
    let spec = format!("mq:{name}");

    ok(&ipcbox(&["send", "--priority", "7", &spec, "urgent"]));
    ok(&ipcbox(&["send", &spec, "plain"]));
    let got = output(
        python(
            "import posix_ipc, sys\n\
         q = posix_ipc.MessageQueue(sys.argv[1])\n\
         for _ in range(2):\n\
         \x20   m, p = q.receive(); print(m.decode(), p)",
        )
        .arg(&name),
    );
    assert_eq!(got, "urgent 7\nplain 0");

    // Over the queue's 64-byte limit: one line, nothing sent.
    let long = "x".repeat(65);
    let out = ipcbox(&["send", &spec, "fits", &long]);
    fails(
        &out,
        1,
        &[&spec, "65 bytes", "64 bytes", "0 message(s) sent"],
    );

    output(
        python(
            "import posix_ipc, sys\n\
         q = posix_ipc.MessageQueue(sys.argv[1])\n\
         assert q.current_messages == 0, q.current_messages\n\
         q.send(b'low', priority=1); q.send(b'high', priority=9)",
        )
        .arg(&name),
    );
    let out = ok(&ipcbox(&["recv", "-F", "json", "-n", "2", &spec]));
    let got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got[0]["text"], "high");
    assert_eq!(got[0]["priority"], 9);
    assert_eq!(got[1]["priority"], 1);

    // Empty: a timeout is status 3.
    let out = ipcbox(&["recv", "--timeout", "100ms", &spec]);
    fails(&out, 3, &["nothing came within 100ms"]);
}

#[test]
fn system_v_queues_with_sysv_ipc() {
    let key = 0x6900_0000 | (std::process::id() & 0xFFFFF) as i32;
    let made = python(
        "import sysv_ipc, sys\n\
         sysv_ipc.MessageQueue(int(sys.argv[1]), sysv_ipc.IPC_CREX)",
    )
    .arg(key.to_string())
    .status()
    .expect("python");
    assert!(made.success());
    struct Remove(i32);
    impl Drop for Remove {
        fn drop(&mut self) {
            if let Ok(q) = ipcbox::mq::SysVQueue::open(ipcbox::IpcKey::from_raw(self.0)) {
                let _ = q.remove();
            }
        }
    }
    let _remove = Remove(key);
    let spec = format!("sysv-mq:{key:#x}");

    ok(&ipcbox(&["send", "--type", "5", &spec, "five"]));
    let got = output(
        python(
            "import sysv_ipc, sys\n\
         q = sysv_ipc.MessageQueue(int(sys.argv[1]))\n\
         m, t = q.receive(type=5); print(m.decode(), t)",
        )
        .arg(key.to_string()),
    );
    assert_eq!(got, "five 5");

    output(
        python(
            "import sysv_ipc, sys\n\
         q = sysv_ipc.MessageQueue(int(sys.argv[1]))\n\
         q.send(b'two', type=2); q.send(b'one', type=1); q.send(b'nine', type=9)",
        )
        .arg(key.to_string()),
    );
    // The lowest type up to 3 first, then type 9 exactly.
    let out = ok(&ipcbox(&[
        "recv",
        "-F",
        "json",
        "-n",
        "2",
        "--type=-3",
        &spec,
    ]));
    let got: Vec<(String, i64)> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["text"].as_str().unwrap().to_owned(),
                v["type"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("one".to_owned(), 1), ("two".to_owned(), 2)]);
    assert_eq!(ok(&ipcbox(&["recv", "--type", "9", &spec])), "nine\n");
}

#[test]
fn a_queue_fed_by_the_library_drained_by_recv() {
    let name = format!("/{}", unique("queue"));
    let q: Queue<Vec<u8>> = ipcbox::queue::Options::new()
        .capacity(16)
        .byte_capacity(4096)
        .max_message_size(100)
        .named(&name)
        .expect("create queue");
    for msg in [&b"first"[..], b"second", b"\xff\x00"] {
        q.as_bytes().put(msg).expect("put");
    }
    let spec = format!("queue:{name}");
    assert_eq!(ok(&ipcbox(&["recv", "-n", "2", &spec])), "first\nsecond\n");
    assert_eq!(ok(&ipcbox(&["recv", "-F", "hex", &spec])), "ff00\n");

    // The other way: `send` puts, the library gets.
    ok(&ipcbox_with_input(&["send", "--lines", &spec], b"a\nbb\n"));
    assert_eq!(q.as_bytes().get().unwrap(), b"a");
    assert_eq!(q.as_bytes().get().unwrap(), b"bb");

    // Over the 100-byte message limit: one line, the queue unchanged.
    let long = "y".repeat(101);
    fails(
        &ipcbox(&["send", &spec, &long]),
        1,
        &[&spec, "101 bytes", "100 bytes"],
    );
    assert_eq!(q.len(), 0);

    // Empty: status 3 after the timeout; --follow drains until the queue is closed.
    fails(
        &ipcbox(&["recv", "--timeout", "50ms", &spec]),
        3,
        &["nothing came within 50ms", "0 of 1"],
    );
    q.as_bytes().put(b"last").unwrap();
    q.close().unwrap();
    assert_eq!(ok(&ipcbox(&["recv", "--follow", &spec])), "last\n");
    fails(&ipcbox(&["recv", &spec]), 1, &["closed"]);
}

#[test]
fn segments_and_the_store() {
    let name = format!("/{}", unique("seg"));
    let seg = ipcbox::shm::Segment::create(&name, 64).expect("segment");
    seg.write_at(0, b"0123456789").unwrap();
    let spec = format!("shm:{name}");
    let out = ipcbox(&["recv", "-F", "hex", "--offset", "2", "--length", "3", &spec]);
    assert_eq!(ok(&out), "323334\n");
    ok(&ipcbox(&["send", "--offset", "60", &spec, "abcd"]));
    let mut buf = [0; 4];
    seg.read_at(60, &mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    // Past the end: nothing written.
    fails(
        &ipcbox(&["send", "--offset", "62", &spec, "zzzz"]),
        1,
        &["4 bytes at offset 62", "64 bytes", "nothing written"],
    );
    seg.read_at(60, &mut buf).unwrap();
    assert_eq!(&buf, b"abcd");

    let dir = TempDir::new("store");
    let store_name = format!("/{}", unique("store"));
    let store = Store::create(&store_name, 1 << 16).expect("store");
    let input = dir.join("in.bin");
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&input, &data).unwrap();
    let spec = format!("store:{store_name}/7");
    ok(&ipcbox(&["send", &spec, "-f", input.to_str().unwrap()]));
    assert_eq!(
        &store.try_get(ObjectId::from_u64(7)).unwrap().unwrap()[..],
        &data[..]
    );
    let output_file = dir.join("out.bin");
    ok(&ipcbox(&[
        "recv",
        &spec,
        "-o",
        output_file.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&output_file).unwrap(), data);
    // Sealed already: no second object under the id.
    fails(&ipcbox(&["send", &spec, "again"]), 1, &[&spec, "exists"]);

    // Not sealed: an error at once, or status 3 after --timeout; no output file either way.
    let missing = format!("store:{store_name}/8");
    let never = dir.join("never.bin");
    let never_arg = never.to_str().unwrap();
    fails(
        &ipcbox(&["recv", &missing, "-o", never_arg]),
        1,
        &["no sealed object"],
    );
    fails(
        &ipcbox(&["recv", "--timeout", "50ms", &missing, "-o", never_arg]),
        3,
        &["not sealed within 50ms"],
    );
    assert!(!never.exists());
}

/// The files of `dir`, and those of `/dev/shm` named after `tag`: what a failed command of
/// this test could have made.
fn files(dir: &Path, tag: &str) -> Vec<std::path::PathBuf> {
    let mut all: Vec<_> = [Path::new("/dev/shm"), dir]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.starts_with(dir) || p.to_string_lossy().contains(tag))
        .collect();
    all.sort();
    all
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let missing = unique("missing");
    let before = files(&dir.0, &missing);
    for (args, code, parts) in [
        (
            vec!["send", "bogus:x", "hi"],
            2,
            vec!["unknown kind \"bogus\"", "bogus:x"],
        ),
        (
            vec!["recv", "tcp:nohost"],
            2,
            vec!["\"tcp:nohost\"", "host:port"],
        ),
        (vec!["send", "sysv-mq:0", "x"], 2, vec!["IPC_PRIVATE"]),
        (
            vec!["send", "--priority", "3", "queue:q", "x"],
            2,
            vec!["--priority", "mq:"],
        ),
        (vec!["recv", "--offset", "3", "mq:/q"], 2, vec!["--offset"]),
        (
            vec!["send", "--timeout", "soon", "mq:/q", "x"],
            2,
            vec!["invalid duration \"soon\""],
        ),
        (vec!["recv", "--count", "0", "mq:/q"], 2, vec!["0"]),
    ] {
        fails(&ipcbox(&args), code, &parts);
    }
    let queue = format!("queue:{missing}");
    fails(
        &ipcbox(&["send", &queue, "x"]),
        1,
        &[&queue, "No such file"],
    );
    fails(&ipcbox(&["recv", &queue]), 1, &[&queue, "No such file"]);
    let mq = format!("mq:/{missing}");
    fails(&ipcbox(&["recv", &mq]), 1, &[&mq, "No such file"]);
    let store = format!("store:{missing}/1");
    fails(&ipcbox(&["recv", &store]), 1, &[&missing, "No such file"]);
    let fifo = format!("fifo:{}", dir.join("nofifo").display());
    fails(
        &ipcbox(&["send", &fifo, "x"]),
        1,
        &["nofifo", "No such file"],
    );

    // A regular file where a socket would go is left alone.
    let plain = dir.join("plain");
    std::fs::write(&plain, b"keep me").unwrap();
    let spec = format!("unix:{}", plain.display());
    let out = ipcbox(&["recv", &spec]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("plain"), "{out:?}");
    assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
    std::fs::remove_file(&plain).unwrap();

    assert_eq!(files(&dir.0, &missing), before);
}

#[test]
fn an_interrupted_listener_removes_its_socket_file() {
    let dir = TempDir::new("sigint");
    let path = dir.join("s.sock");
    let spec = format!("unix:{}", path.display());
    let mut recv = Spawned::ipcbox(&["recv", "--follow", &spec]);
    recv.stderr_line("listening on");
    assert!(path.exists());
    let pid = rustix::process::Pid::from_raw(recv.child().id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = recv.wait_output();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(!path.exists(), "the socket file was left behind");
}
