//! `ipcbox recv`: messages from any named mechanism to stdout or a file.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use ipcbox::mq::{PosixQueue, SysVLimits, SysVQueue, TypeSelector};
use ipcbox::queue::RecvError;
use ipcbox::socket::{Datagram, Endpoint, Kind, Listener, SeqPacket, SeqPacketListener, Stream};
use ipcbox::store::Store;
use ipcbox::{fifo, shm, CreationMode, Queue};

use crate::endpoint::Target;
use crate::exit::{usage, TimedOut};
use crate::messages::{is_closed_output, Format, Meta, Sink};
use crate::objects::parse_duration;
use crate::send::{accept, show, timed_out_or, Bound};

/// Options of `ipcbox recv`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Where to receive from; see Endpoints below.
    #[arg(value_name = "ENDPOINT")]
    endpoint: Target,
    /// How to print messages [default: raw for byte streams, shm, sysv-shm and store; lines
    /// for the others].
    #[arg(short = 'F', long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Stop after N messages (lines, on a byte stream printed in another format than raw)
    /// [default: 1; a byte stream: until its end].
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "follow",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Keep receiving until interrupted, the queue is closed, or --timeout passes without a
    /// message; a listening stream socket accepts the next peer when one leaves, a FIFO waits
    /// for the next writer.
    #[arg(short, long)]
    follow: bool,
    /// Wait at most DURATION (500ms, 10s, 5m; 0: do not wait) for each message; then exit with
    /// status 3 (with --follow, 0). store: without it, an object not sealed yet is an error.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Write to FILE instead of stdout, created once something arrived.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// sysv-mq: which message: 0 the first, N the first of type N, -N the first of the lowest
    /// type up to N [default: 0].
    #[arg(long = "type", value_name = "N", allow_negative_numbers = true)]
    mtype: Option<i64>,
    /// shm, sysv-shm: where the range starts, in bytes [default: 0].
    #[arg(long, value_name = "BYTES")]
    offset: Option<usize>,
    /// shm, sysv-shm: the range's length in bytes [default: to the end of the segment].
    #[arg(long, value_name = "BYTES")]
    length: Option<usize>,
    /// unix, unix-seqpacket, tcp: connect to the endpoint and read what its listener sends,
    /// instead of listening at it.
    #[arg(long)]
    connect: bool,
}

const AFTER_HELP: &str = concat!(
    "\
Examples:
  ipcbox recv mq:/jobs                          the next message (highest priority first)
  ipcbox recv -F json -n 10 sysv-mq:0x1234      ten messages as JSON lines, with their types
  ipcbox recv --follow queue:work               drain the queue as messages come
  ipcbox recv unix:/tmp/app.sock > out          listen, read one peer to its end
  ipcbox recv -F json --follow udp:0.0.0.0:9000 datagrams and their senders, as JSON lines
  ipcbox recv --connect tcp:example.org:7000    read what a server sends
  ipcbox recv -F hex shm:/seg --offset 64 --length 16
  ipcbox recv store:/objs/7 -o model.bin        get sealed object 7 to a file

Sockets are listened at (stream, seqpacket) or bound (datagram), unless --connect; the
endpoint is printed on stderr once it listens (with the port picked for port 0), and its
socket file removed when recv ends. A closed stdout (`| head -1`) ends recv quietly.

",
    endpoint_syntax!()
);

/// How many messages to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Exactly this many; an end before them is an error.
    Count(u64),
    /// Until the end of the stream.
    UntilEnd,
    /// Until interrupted, the end, or a --timeout of silence.
    Follow,
}

/// What a wait for the next message gave.
enum Next {
    Message(Vec<u8>, Meta),
    /// Nothing within the timeout.
    Timeout,
    /// No message will come: why.
    End(String),
}

/// Runs `ipcbox recv`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    check_options(&args)?;
    let target = args.endpoint.clone();
    let stream = is_stream(&target);
    let whole = matches!(
        target,
        Target::Shm(_) | Target::SysVShm(_) | Target::Store { .. }
    );
    let format = args.format.unwrap_or(if stream || whole {
        Format::Raw
    } else {
        Format::Lines
    });
    let want = match (args.count, args.follow) {
        (Some(n), _) => Want::Count(n),
        (None, true) => Want::Follow,
        (None, false) if stream => Want::UntilEnd,
        (None, false) => Want::Count(1),
    };
    let mut sink = Sink::new(format, args.output.clone());
    match recv(&args, &target, want, &mut sink) {
        Err(e) if is_closed_output(&e) => Ok(()),
        other => other.with_context(|| format!("receive from {target}")),
    }
}

fn is_stream(t: &Target) -> bool {
    match t {
        Target::Fifo(_) => true,
        Target::Socket(ep) => ep.kind() == Kind::Stream,
        _ => false,
    }
}

/// Refuses options that do not apply to the endpoint's kind.
fn check_options(args: &Args) -> anyhow::Result<()> {
    let t = &args.endpoint;
    let not = |name: &str, kinds: &str| usage(format!("{name} applies to {kinds}, not to {t}"));
    if args.mtype.is_some() && !matches!(t, Target::SysVMq(_)) {
        return not("--type", "sysv-mq: endpoints");
    }
    let range = matches!(t, Target::Shm(_) | Target::SysVShm(_));
    if (args.offset.is_some() || args.length.is_some()) && !range {
        return not("--offset and --length", "shm: and sysv-shm: endpoints");
    }
    let connected = matches!(t, Target::Socket(ep) if ep.kind() != Kind::Datagram);
    if args.connect && !connected {
        return not("--connect", "stream and seqpacket sockets");
    }
    let whole = range || matches!(t, Target::Store { .. });
    if whole && (args.follow || args.count.is_some()) {
        return not("--follow and --count", "endpoints that carry messages");
    }
    if range && args.timeout.is_some() {
        return not("--timeout", "endpoints one waits on");
    }
    Ok(())
}

fn recv(args: &Args, target: &Target, want: Want, sink: &mut Sink) -> anyhow::Result<()> {
    let timeout = args.timeout;
    match target {
        Target::Fifo(path) => {
            let mut opts = fifo::OpenOptions::new();
            if let Some(t) = timeout {
                opts.timeout(t);
            }
            let mut lines = Lines::default();
            // With --follow, the next writer is waited for when the last one closes, as
            // `while :; do cat fifo; done` would.
            loop {
                let mut reader = match opts.open_reader(path) {
                    Ok(r) => r,
                    Err(e) if want == Want::Follow && e.kind() == std::io::ErrorKind::TimedOut => {
                        return Ok(())
                    }
                    Err(e) => return Err(timed_out_or(e, timeout, "no writer opened it")),
                };
                read_stream(&mut reader, timeout, want, sink, &mut lines)?;
                lines.end(want, sink, "the writers closed the FIFO")?;
                if want != Want::Follow {
                    return Ok(());
                }
            }
        }
        Target::Socket(ep) => socket(args, ep, want, sink),
        Target::PosixMq(name) => {
            let q = PosixQueue::open(name)?;
            let mut buf = vec![0; q.max_message_size()];
            drive(sink, want, timeout, |wait| {
                let got = match wait {
                    None => Some(q.recv(&mut buf)?),
                    Some(t) => q.recv_timeout(&mut buf, t)?,
                };
                Ok(match got {
                    Some(r) => Next::Message(
                        buf[..r.len].to_vec(),
                        Meta {
                            priority: Some(r.priority),
                            ..Meta::default()
                        },
                    ),
                    None => Next::Timeout,
                })
            })
        }
        Target::SysVMq(key) => {
            let q = SysVQueue::open(*key)?;
            let sel = match args.mtype.unwrap_or(0) {
                0 => TypeSelector::Any,
                t if t > 0 => TypeSelector::Exactly(t),
                t => TypeSelector::AtMost(t.checked_neg().unwrap_or(i64::MAX)),
            };
            let max = SysVLimits::read().map_or(1 << 16, |l| l.msgmax);
            let mut buf = vec![0; max];
            drive(sink, want, timeout, |wait| {
                let got = match wait {
                    None => Some(q.recv(&mut buf, sel)?),
                    Some(t) => q.recv_timeout(&mut buf, sel, t)?,
                };
                Ok(match got {
                    Some(r) => Next::Message(
                        buf[..r.len].to_vec(),
                        Meta {
                            mtype: Some(r.mtype),
                            ..Meta::default()
                        },
                    ),
                    None => Next::Timeout,
                })
            })
        }
        Target::Queue(name) => {
            let q: Queue<Vec<u8>> = Queue::open(name)?;
            let bytes = q.as_bytes();
            let mut buf = Vec::new();
            drive(sink, want, timeout, |wait| {
                let got = match wait {
                    None => bytes.get_into(&mut buf).map(|()| true),
                    Some(t) => bytes.get_into_timeout(&mut buf, t),
                };
                Ok(match got {
                    Ok(true) => Next::Message(std::mem::take(&mut buf), Meta::default()),
                    Ok(false) => Next::Timeout,
                    Err(RecvError::Disconnected) => Next::End(
                        "the queue is closed, or every other process attached to it is gone, \
                         and it is empty"
                            .into(),
                    ),
                    Err(RecvError::Failed(e)) => return Err(e.into()),
                })
            })
        }
        Target::Shm(name) => {
            let seg = shm::Options::new()
                .mode(CreationMode::Open)
                .read_only(true)
                .open(name)?;
            let data = read_range(args, seg.len(), |at, buf| seg.read_at(at, buf))?;
            sink.message(&data, &Meta::default())
        }
        Target::SysVShm(key) => {
            let seg = shm::SysVOptions::new()
                .mode(CreationMode::Open)
                .read_only(true)
                .open(*key)?;
            let data = read_range(args, seg.len(), |at, buf| seg.read_at(at, buf))?;
            sink.message(&data, &Meta::default())
        }
        Target::Store { name, id } => {
            let store = Store::open(name)?;
            let view = match timeout {
                None => store.try_get(*id)?.ok_or_else(|| {
                    anyhow!("no sealed object {id} (--timeout waits for one to be sealed)")
                })?,
                Some(t) => store.get_timeout(*id, t)?.ok_or_else(|| {
                    TimedOut(format!("object {id} was not sealed within {}", show(t)))
                })?,
            };
            sink.message(&view, &Meta::default())
        }
    }
}

/// Takes messages from `next` to `sink` as `want` says.
fn drive(
    sink: &mut Sink,
    want: Want,
    timeout: Option<Duration>,
    mut next: impl FnMut(Option<Duration>) -> anyhow::Result<Next>,
) -> anyhow::Result<()> {
    let mut got = 0;
    loop {
        if let Want::Count(n) = want {
            if got >= n {
                return Ok(());
            }
        }
        match next(timeout)? {
            Next::Message(data, meta) => {
                sink.message(&data, &meta)?;
                got += 1;
            }
            Next::Timeout if want == Want::Follow => return Ok(()),
            Next::Timeout => {
                return Err(TimedOut(format!(
                    "nothing came within {}{}",
                    show(timeout.unwrap_or_default()),
                    of(got, want)
                ))
                .into())
            }
            Next::End(why) => {
                return match want {
                    Want::Count(_) => Err(anyhow!("{why}{}", of(got, want))),
                    Want::UntilEnd | Want::Follow => Ok(()),
                }
            }
        }
    }
}

/// "; 2 of 5 messages received" for a count.
fn of(got: u64, want: Want) -> String {
    match want {
        Want::Count(n) => format!("; {got} of {n} message(s) received"),
        _ => format!("; {got} message(s) received"),
    }
}

/// Lines split from a byte stream printed in another format than raw.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    got: u64,
}

impl Lines {
    /// Prints the complete lines of `data`; `Ok(true)` once `want` has its count.
    fn feed(&mut self, data: &[u8], want: Want, sink: &mut Sink) -> anyhow::Result<bool> {
        self.partial.extend_from_slice(data);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).take(i).collect();
            sink.message(&line, &Meta::default())?;
            self.got += 1;
            if want == Want::Count(self.got) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// At the end of a stream: prints an unterminated last line, and fails if a count was
    /// not reached.
    fn end(&mut self, want: Want, sink: &mut Sink, why: &str) -> anyhow::Result<()> {
        if sink.format() == Format::Raw {
            return Ok(());
        }
        if !self.partial.is_empty() && want != Want::Count(self.got) {
            sink.message(&std::mem::take(&mut self.partial), &Meta::default())?;
            self.got += 1;
        }
        match want {
            Want::Count(n) if self.got < n => Err(anyhow!("{why}{}", of(self.got, want))),
            _ => Ok(()),
        }
    }
}

/// Reads a byte stream to its end (or `want`'s count of lines), raw or as lines. Returns
/// early, with `Ok`, when the count is reached.
fn read_stream(
    reader: &mut (impl Read + AsFd),
    timeout: Option<Duration>,
    want: Want,
    sink: &mut Sink,
    lines: &mut Lines,
) -> anyhow::Result<()> {
    let mut buf = vec![0; 64 << 10];
    let mut total = 0u64;
    loop {
        if let Some(t) = timeout {
            if !readable(reader.as_fd(), t)? {
                if want == Want::Follow {
                    return Ok(());
                }
                return Err(TimedOut(format!(
                    "nothing came within {}; {total} byte(s) received",
                    show(t)
                ))
                .into());
            }
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        total += n as u64;
        if sink.format() == Format::Raw {
            sink.bytes(&buf[..n])?;
        } else if lines.feed(&buf[..n], want, sink)? {
            return Ok(());
        }
    }
}

/// Whether `fd` has something to read (or its end) within `timeout`.
fn readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> anyhow::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    }
}

/// The range `--offset`, `--length` of a segment of `len` bytes, read.
fn read_range(
    args: &Args,
    len: usize,
    read: impl Fn(usize, &mut [u8]) -> std::io::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    let offset = args.offset.unwrap_or(0);
    let length = match args.length {
        Some(l) => l,
        None => len.checked_sub(offset).ok_or_else(|| {
            anyhow!("offset {offset} is past the end of the segment of {len} bytes")
        })?,
    };
    let mut data = vec![0; length];
    read(offset, &mut data)?;
    Ok(data)
}

/// Says where a listening socket listens (with the port the kernel picked for port 0).
fn announce(ep: &Endpoint) {
    eprintln!("ipcbox recv: listening on {ep}");
}

fn socket(args: &Args, ep: &Endpoint, want: Want, sink: &mut Sink) -> anyhow::Result<()> {
    let timeout = args.timeout;
    match ep.kind() {
        Kind::Stream if args.connect => {
            let mut stream = match timeout {
                None => Stream::connect(ep)?,
                Some(t) => Stream::connect_timeout(ep, t)
                    .map_err(|e| timed_out_or(e, timeout, "no connection"))?,
            };
            let mut lines = Lines::default();
            read_stream(&mut stream, timeout, want, sink, &mut lines)?;
            lines.end(want, sink, "the peer closed the connection")
        }
        Kind::Stream => {
            let listener = Listener::bind(ep)?;
            let _bound = Bound::new(ep);
            announce(listener.local_endpoint());
            let mut lines = Lines::default();
            loop {
                let accepted = accept(
                    timeout,
                    || listener.accept(),
                    |t| listener.accept_timeout(t),
                );
                let mut stream = match accepted {
                    Ok(s) => s,
                    // Silence ends a follow.
                    Err(e) if want == Want::Follow && e.downcast_ref::<TimedOut>().is_some() => {
                        return Ok(())
                    }
                    Err(e) => return Err(e),
                };
                read_stream(&mut stream, timeout, want, sink, &mut lines)?;
                lines.end(want, sink, "the peer closed the connection")?;
                if want != Want::Follow {
                    return Ok(());
                }
            }
        }
        Kind::SeqPacket => {
            let listener;
            let _bound;
            let sock = if args.connect {
                match timeout {
                    None => SeqPacket::connect(ep)?,
                    Some(t) => SeqPacket::connect_timeout(ep, t)
                        .map_err(|e| timed_out_or(e, timeout, "no connection"))?,
                }
            } else {
                listener = SeqPacketListener::bind(ep)?;
                _bound = Bound::new(ep);
                announce(listener.local_endpoint());
                accept(
                    timeout,
                    || listener.accept(),
                    |t| listener.accept_timeout(t),
                )?
            };
            let mut buf = vec![0; 4 << 20];
            drive(sink, want, timeout, |wait| {
                let got = match wait {
                    None => Some(sock.recv(&mut buf)?),
                    Some(t) => sock.recv_timeout(&mut buf, t)?,
                };
                Ok(match got {
                    Some(0) => Next::End("the peer closed the connection".into()),
                    Some(n) => Next::Message(buf[..n].to_vec(), Meta::default()),
                    None => Next::Timeout,
                })
            })
        }
        Kind::Datagram => {
            let sock = Datagram::bind(ep)?;
            let _bound = Bound::new(ep);
            announce(&sock.local_endpoint()?.unwrap_or_else(|| ep.clone()));
            sock.set_read_timeout(timeout.filter(|t| !t.is_zero()))?;
            if timeout.is_some_and(|t| t.is_zero()) {
                sock.set_nonblocking(true)?;
            }
            let mut buf = vec![0; 1 << 20];
            drive(sink, want, timeout, |_| match sock.recv_from(&mut buf) {
                Ok((n, from)) => Ok(Next::Message(
                    buf[..n].to_vec(),
                    Meta {
                        from: from.map(|f| f.to_string()),
                        ..Meta::default()
                    },
                )),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(Next::Timeout)
                }
                Err(e) => Err(e.into()),
            })
        }
    }
}
