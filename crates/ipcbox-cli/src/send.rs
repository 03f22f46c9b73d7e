//! `ipcbox send`: messages from arguments, a file or stdin to any named mechanism.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use ipcbox::mq::{PosixQueue, SysVQueue};
use ipcbox::queue::SendError;
use ipcbox::socket::{Datagram, Endpoint, Kind, Listener, SeqPacket, SeqPacketListener, Stream};
use ipcbox::store::Store;
use ipcbox::{fifo, shm, CreationMode, Queue};

use crate::endpoint::Target;
use crate::exit::{self, usage, TimedOut};
use crate::messages::{Input, Limit};
use crate::objects::parse_duration;

/// Options of `ipcbox send`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Where to send; see Endpoints below.
    #[arg(value_name = "ENDPOINT")]
    endpoint: Target,
    /// Messages, one per argument. Without any, the input is --file or stdin: one message,
    /// or one per line with --lines.
    #[arg(value_name = "MESSAGE")]
    messages: Vec<String>,
    /// Read the input from FILE (- for stdin).
    #[arg(short, long, value_name = "FILE", conflicts_with = "messages")]
    file: Option<PathBuf>,
    /// Each line of the input is a message, without its newline.
    #[arg(short, long)]
    lines: bool,
    /// Send the messages N times over.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Wait at most DURATION (500ms, 10s, 5m; 0: do not wait) for the peer, a reader, or room
    /// for each message; then exit with status 3.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// mq: the messages' priority, 0 to 32767 (higher is received first) [default: 0].
    #[arg(long, value_name = "N")]
    priority: Option<u32>,
    /// sysv-mq: the messages' type, at least 1 [default: 1].
    #[arg(long = "type", value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    mtype: Option<i64>,
    /// shm, sysv-shm: where in the segment to write, in bytes [default: 0].
    #[arg(long, value_name = "BYTES")]
    offset: Option<usize>,
    /// unix, unix-seqpacket, tcp: listen at the endpoint and send to the first peer that
    /// connects, instead of connecting to it.
    #[arg(long)]
    listen: bool,
}

const AFTER_HELP: &str = concat!(
    "\
Examples:
  ipcbox send fifo:/tmp/f hello                      write \"hello\\n\" for `cat /tmp/f`
  ipcbox send mq:/jobs --priority 5 urgent           one message, priority 5
  tail -f log | ipcbox send --lines sysv-mq:0x1234   every line a message of type 1
  ipcbox send queue:work -f job.bin                  the file as one message
  ipcbox send unix-dgram:/run/app.sock ping pong     two datagrams
  ipcbox send --listen tcp:127.0.0.1:9000 -f big     serve the file to the first client
  ipcbox send shm:/seg --offset 64 abc               write 3 bytes at offset 64
  ipcbox send store:/objs/7 -f model.bin             put the file as object 7, sealed

Byte streams (fifo, unix, unix-abstract, tcp) get each argument or line followed by a
newline, and a file or stdin as it is. Other kinds send one message per argument or line,
or the whole input as one message. A message over the mechanism's limit fails before anything
is sent, when the messages are known up front.

",
    endpoint_syntax!()
);

/// Runs `ipcbox send`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    check_options(&args)?;
    let target = args.endpoint.clone();
    let mut input = Input::new(
        args.messages.clone(),
        args.file.clone(),
        args.lines,
        args.count,
    )?;
    send(&args, &target, &mut input).with_context(|| format!("send to {target}"))
}

/// Refuses options that do not apply to the endpoint's kind.
fn check_options(args: &Args) -> anyhow::Result<()> {
    let t = &args.endpoint;
    let given = |on: bool, name: &str, kinds: &str| {
        if on {
            usage(format!("{name} applies to {kinds} endpoints, not to {t}"))
        } else {
            Ok(())
        }
    };
    given(
        args.priority.is_some() && !matches!(t, Target::PosixMq(_)),
        "--priority",
        "mq:",
    )?;
    given(
        args.mtype.is_some() && !matches!(t, Target::SysVMq(_)),
        "--type",
        "sysv-mq:",
    )?;
    given(
        args.offset.is_some() && !matches!(t, Target::Shm(_) | Target::SysVShm(_)),
        "--offset",
        "shm: and sysv-shm:",
    )?;
    let connected = matches!(t, Target::Socket(ep) if ep.kind() != Kind::Datagram);
    given(
        args.listen && !connected,
        "--listen",
        "stream and seqpacket socket",
    )?;
    if let Some(p) = args.priority.filter(|&p| p > ipcbox::mq::PRIORITY_MAX) {
        return usage(format!(
            "--priority {p} is over the largest POSIX priority, {}",
            ipcbox::mq::PRIORITY_MAX
        ));
    }
    if matches!(t, Target::Store { .. })
        && (args.count != 1 || args.lines || args.messages.len() > 1)
    {
        return usage(format!(
            "{t} takes one object: one MESSAGE, or a whole --file or stdin, once"
        ));
    }
    Ok(())
}

fn send(args: &Args, target: &Target, input: &mut Input) -> anyhow::Result<()> {
    let timeout = args.timeout;
    match target {
        Target::Fifo(path) => {
            let mut opts = fifo::OpenOptions::new();
            if let Some(t) = timeout {
                opts.timeout(t);
            }
            let mut writer = opts
                .open_writer(path)
                .map_err(|e| timed_out_or(e, timeout, "no reader opened it"))?;
            input.copy_to(&mut writer)?;
        }
        Target::Socket(ep) => socket(args, ep, input)?,
        Target::PosixMq(name) => {
            let q = PosixQueue::open(name)?;
            let prio = args.priority.unwrap_or(0);
            let limit = Limit::new(q.max_message_size(), "the queue's message size");
            let mut sent = 0;
            input.each(Some(&limit), |msg| {
                let done = match timeout {
                    None => q.send(msg, prio).map(|()| true)?,
                    Some(t) => q.send_timeout(msg, prio, t)?,
                };
                waited(done, timeout, &mut sent, "the queue stayed full")
            })?;
        }
        Target::SysVMq(key) => {
            let q = SysVQueue::open(*key)?;
            let mtype = args.mtype.unwrap_or(1);
            let max = q.stat()?.max_bytes;
            let msgmax = ipcbox::mq::SysVLimits::read().map_or(max, |l| l.msgmax as u64);
            let limit = Limit::new(
                max.min(msgmax) as usize,
                "the largest message (msgmax, or the queue's byte capacity)",
            );
            let mut sent = 0;
            input.each(Some(&limit), |msg| {
                let done = match timeout {
                    None => q.send(msg, mtype).map(|()| true)?,
                    Some(t) => q.send_timeout(msg, mtype, t)?,
                };
                waited(done, timeout, &mut sent, "the queue stayed full")
            })?;
        }
        Target::Queue(name) => {
            let q: Queue<Vec<u8>> = Queue::open(name)?;
            let limit = Limit::new(q.max_message_size(), "the queue's largest message");
            let bytes = q.as_bytes();
            let mut sent = 0;
            input.each(Some(&limit), |msg| {
                let done = match timeout {
                    None => bytes.put(msg).map(|()| true),
                    Some(t) => bytes.put_timeout(msg, t),
                }
                .map_err(queue_error)?;
                waited(done, timeout, &mut sent, "the queue stayed full")
            })?;
        }
        Target::Shm(name) => {
            let seg = shm::Options::new().mode(CreationMode::Open).open(name)?;
            write_range(input, args.offset.unwrap_or(0), seg.len(), |at, data| {
                seg.write_at(at, data)
            })?;
        }
        Target::SysVShm(key) => {
            let seg = shm::SysVOptions::new()
                .mode(CreationMode::Open)
                .open(*key)?;
            write_range(input, args.offset.unwrap_or(0), seg.len(), |at, data| {
                seg.write_at(at, data)
            })?;
        }
        Target::Store { name, id } => {
            let store = Store::open(name)?;
            let limit = Limit::new(store.capacity(), "the store's capacity");
            input.each(Some(&limit), |data| {
                let mut buf = store.create_object(*id, data.len())?;
                buf.copy_from_slice(data);
                buf.seal()?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Counts a message sent, or fails with [`TimedOut`] when `done` says the wait ran out.
fn waited(done: bool, timeout: Option<Duration>, sent: &mut u64, why: &str) -> anyhow::Result<()> {
    if done {
        *sent += 1;
        return Ok(());
    }
    let t = timeout.map_or(String::new(), |t| format!(" for {}", show(t)));
    Err(TimedOut(format!("{why}{t}; {sent} message(s) sent")).into())
}

/// A wait that ended: [`TimedOut`] if the error is a timeout, else the error itself.
pub(crate) fn timed_out_or(
    err: std::io::Error,
    timeout: Option<Duration>,
    why: &str,
) -> anyhow::Error {
    match (err.kind(), timeout) {
        (std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock, Some(t)) => {
            TimedOut(format!("{why} within {}", show(t))).into()
        }
        _ => err.into(),
    }
}

/// `1.5s`, `200ms`.
pub(crate) fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn queue_error(e: SendError) -> anyhow::Error {
    match e {
        SendError::Disconnected => {
            anyhow::anyhow!("the queue is closed, or every other process attached to it is gone")
        }
        SendError::Failed(e) => e.into(),
    }
}

/// Writes the input's bytes one after another from `offset` in a segment of `len` bytes,
/// after checking that all of them fit.
fn write_range(
    input: &mut Input,
    offset: usize,
    len: usize,
    write: impl Fn(usize, &[u8]) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut data = Vec::new();
    input.each(None, |msg| {
        data.extend_from_slice(msg);
        Ok(())
    })?;
    if offset.checked_add(data.len()).is_none_or(|end| end > len) {
        bail!(
            "{} bytes at offset {offset} do not fit the segment of {len} bytes; nothing written",
            data.len()
        );
    }
    write(offset, &data)?;
    Ok(())
}

fn socket(args: &Args, ep: &Endpoint, input: &mut Input) -> anyhow::Result<()> {
    let timeout = args.timeout;
    match ep.kind() {
        Kind::Stream => {
            let stream = if args.listen {
                let listener = Listener::bind(ep)?;
                let _bound = Bound::new(ep);
                eprintln!("ipcbox send: listening on {}", listener.local_endpoint());
                accept(
                    timeout,
                    || listener.accept(),
                    |t| listener.accept_timeout(t),
                )?
            } else {
                match timeout {
                    None => Stream::connect(ep)?,
                    Some(t) => Stream::connect_timeout(ep, t)
                        .map_err(|e| timed_out_or(e, timeout, "no connection"))?,
                }
            };
            stream.set_write_timeout(timeout.filter(|t| !t.is_zero()))?;
            let mut out = &stream;
            input
                .copy_to(&mut out)
                .map_err(|e| stream_timeout(e, timeout))?;
            out.flush()?;
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        Kind::SeqPacket => {
            let sock = if args.listen {
                let listener = SeqPacketListener::bind(ep)?;
                let _bound = Bound::new(ep);
                eprintln!("ipcbox send: listening on {}", listener.local_endpoint());
                accept(
                    timeout,
                    || listener.accept(),
                    |t| listener.accept_timeout(t),
                )?
            } else {
                match timeout {
                    None => SeqPacket::connect(ep)?,
                    Some(t) => SeqPacket::connect_timeout(ep, t)
                        .map_err(|e| timed_out_or(e, timeout, "no connection"))?,
                }
            };
            let mut sent = 0;
            input.each(None, |msg| {
                let done = match timeout {
                    None => sock.send(msg).map(|()| true)?,
                    Some(t) => sock.send_timeout(msg, t)?,
                };
                waited(done, timeout, &mut sent, "the peer took nothing")
            })?;
        }
        Kind::Datagram => {
            let sock = Datagram::connect(ep)?;
            let mut sent = 0;
            input.each(None, |msg| {
                let done = match timeout {
                    None => sock.send(msg).map(|()| true)?,
                    Some(t) => sock.send_timeout(msg, t)?,
                };
                waited(
                    done,
                    timeout,
                    &mut sent,
                    "the receiver's buffer stayed full",
                )
            })?;
        }
    }
    Ok(())
}

/// A write that timed out on a stream socket (its write timeout) is [`TimedOut`].
fn stream_timeout(e: anyhow::Error, timeout: Option<Duration>) -> anyhow::Error {
    match e.downcast::<std::io::Error>() {
        Ok(io) => timed_out_or(io, timeout, "the peer stopped reading"),
        Err(e) => e,
    }
}

/// Accepts one connection, waiting at most `timeout`.
pub(crate) fn accept<C>(
    timeout: Option<Duration>,
    forever: impl FnOnce() -> std::io::Result<C>,
    within: impl FnOnce(Duration) -> std::io::Result<Option<C>>,
) -> anyhow::Result<C> {
    match timeout {
        None => Ok(forever()?),
        Some(t) => within(t)?
            .ok_or_else(|| TimedOut(format!("no peer connected within {}", show(t))).into()),
    }
}

/// While it lives, the socket file of `ep` (if it has one) is removed should a signal end the
/// process; the listener's own drop removes it otherwise.
pub(crate) struct Bound(Option<PathBuf>);

impl Bound {
    pub(crate) fn new(ep: &Endpoint) -> Bound {
        let path = ep.path().map(PathBuf::from);
        if let Some(p) = &path {
            exit::remove_on_signal(p.clone());
        }
        Bound(path)
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            exit::forget(p);
        }
    }
}
