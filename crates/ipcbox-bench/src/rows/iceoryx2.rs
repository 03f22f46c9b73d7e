//! iceoryx2 publish-subscribe (the crate, version 0.10), the zero-copy middleware ipcbox's
//! shared-memory queues are compared with, in two rows:
//!
//! * `iceoryx2 copy`: sending copies the message into a loaned sample
//!   (`loan_slice_uninit` + `write_from_slice`), receiving copies it out, as every other
//!   one-copy row does.
//! * `iceoryx2 loan` (zero-copy, throughput only): the sender loans a sample and writes the
//!   message's first and last 8 bytes in place, the receiver reads them there, as the
//!   channel's and the Queue's zero-copy rows do: msg/s is hand-overs per second.
//!
//! Two services per measurement, `ping` (parent publishes, child subscribes) and `pong` (the
//! other way), with `[u8]` slice payloads; each side makes its own node after `fork`, both
//! publishers exist before either subscriber, and both services have both ports before the
//! first message (a sample published before the subscriber connects is not delivered). The
//! publishers never drop a sample: safe overflow off, backpressure "retry until delivered".
//!
//! The setup gives iceoryx2 its best case, as its own benchmark does:
//! * The subscriber busy-polls `receive()` (iceoryx2 has no blocking receive; waiting would
//!   go through a separate event service and its wake-up, like ipcbox's parking rows).
//! * Every sample the loop can use is passed once before the clock starts, the receiver
//!   reading a byte of each page: the subscriber maps the publisher's memory afresh in every
//!   round, and at 64 MiB the first reads of a sample are 16,384 page faults.
//! * The peer's publisher, which only sends 64-byte echoes and 1-byte acks, starts with small
//!   samples (growing if ever needed) instead of reserving the job's size.
//!
//! iceoryx2 leaves a global management segment in `/dev/shm` for the next node: the row's
//! setup notes the segments there, and its teardown removes the new ones nobody maps.

use std::io;
use std::time::{Duration, Instant};

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use iceoryx2::sample::Sample;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;

use crate::row::{forked, Endpoint, Info, Kind, Link, Row, Teardown};
use crate::rows::common::unique_name;

/// The message sizes of the copying row's throughput.
const COPY_SIZES: &[usize] = &[64, 4 << 10, 1 << 20, 64 << 20];
/// The message sizes of the loan (zero-copy) row.
const LOAN_SIZES: &[usize] = &[4 << 10, 1 << 20, 64 << 20];

/// The iceoryx2 rows of group `group`: copying, and zero-copy.
pub fn rows(group: &'static str) -> Vec<Box<dyn Row>> {
    vec![
        forked(
            Info::new("iceoryx2 copy", group, Kind::Competitor).sizes(COPY_SIZES),
            Iceoryx2 { loan: false },
        ),
        forked(
            Info::new("iceoryx2 loan", group, Kind::Competitor)
                .sizes(LOAN_SIZES)
                .no_latency(),
            Iceoryx2 { loan: true },
        ),
    ]
}

/// The iceoryx2 segments in `/dev/shm` now (their names start with `iox2_`).
fn shm_files() -> std::collections::HashSet<std::path::PathBuf> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("iox2_"))
        .map(|e| e.path())
        .collect()
}

/// Removes the iceoryx2 segments that were not there `before` and that no live process maps
/// (iceoryx2 keeps a global management segment for the next node of the same configuration;
/// a bench run that made it leaves nothing behind). One that is in use, or older, is kept.
fn remove_new_unused(before: &std::collections::HashSet<std::path::PathBuf>) {
    let new: Vec<_> = shm_files()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    if new.is_empty() {
        return;
    }
    let Ok(listing) = ipcbox::objects::list() else {
        return;
    };
    for object in &listing.objects {
        if object.path.as_ref().is_some_and(|p| new.contains(p)) {
            // A segment someone maps stays; any error leaves it too (it is only tidying).
            let _ = object.remove_if_unused(Duration::ZERO);
        }
    }
}

/// The bytes at each end of a message that the loan row writes and reads in place.
const TOUCH: usize = 8;

/// How long a receiver polls without a sample before it decides the peer is gone.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Iceoryx2 {
    /// Zero-copy: messages are written and read in place (see the module docs).
    loan: bool,
}

/// The two service names and the payload size, chosen before `fork`.
#[derive(Debug)]
struct Names {
    ping: String,
    pong: String,
    max_message: usize,
    loan: bool,
}

/// One side. Fields drop in order: ports, then services, then the node.
struct IceEnd {
    loan: bool,
    publisher: Publisher<ipc::Service, [u8], ()>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    _services: [PubSub<ipc::Service, [u8], ()>; 2],
    _node: Node<ipc::Service>,
}

impl std::fmt::Debug for IceEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IceEnd")
    }
}

fn err(what: &str, e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {what}: {e:?}"))
}

/// Samples a subscriber buffers: many small ones, about 8 MiB of large ones.
fn buffer_for(max_message: usize) -> usize {
    ((8 << 20) / max_message.max(1)).clamp(4, 1024)
}

/// Waits until `count` is at least 1 for both services.
fn wait_for(
    services: &[&PubSub<ipc::Service, [u8], ()>; 2],
    count: impl Fn(&PubSub<ipc::Service, [u8], ()>) -> usize,
) -> io::Result<()> {
    let start = Instant::now();
    while services.iter().any(|s| count(s) < 1) {
        if start.elapsed() > PATIENCE {
            return Err(err("connect", "the peer's ports did not appear"));
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// The largest samples each way: the job's size from the bench to the peer; back, at most
/// the latency measurement's 64-byte echo (a throughput job's peer only acknowledges with one
/// byte), so the peer's publisher does not reserve samples of the job's size it never sends.
fn slice_lens(max_message: usize) -> (usize, usize) {
    (max_message.max(1), max_message.clamp(1, 64))
}

fn open(
    node: &Node<ipc::Service>,
    name: &str,
    max_message: usize,
) -> io::Result<PubSub<ipc::Service, [u8], ()>> {
    let service_name: ServiceName = name
        .try_into()
        .map_err(|e| err(&format!("service name {name}"), e))?;
    let buffer = buffer_for(max_message);
    node.service_builder(&service_name)
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(buffer)
        .subscriber_max_borrowed_samples(2)
        .history_size(0)
        .max_publishers(1)
        .max_subscribers(1)
        .max_nodes(2)
        .open_or_create()
        .map_err(|e| err(&format!("open or create service {name}"), e))
}

impl IceEnd {
    fn new(names: &Names, child: bool) -> io::Result<IceEnd> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(|e| err("create node", e))?;
        let ping = open(&node, &names.ping, names.max_message)?;
        let pong = open(&node, &names.pong, names.max_message)?;
        let (out, inn) = if child {
            (&pong, &ping)
        } else {
            (&ping, &pong)
        };
        let (ping_len, pong_len) = slice_lens(names.max_message);
        let publisher = out
            .publisher_builder()
            .initial_max_slice_len(if child { pong_len } else { ping_len })
            .allocation_strategy(AllocationStrategy::PowerOfTwo)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| err("create publisher", e))?;
        // Both publishers before either subscriber: with safe overflow off, iceoryx2 0.10 may
        // never connect a subscriber made before its publisher (a row hung in one round of
        // several; iceoryx2 issue 1697).
        let services = [&ping, &pong];
        wait_for(&services, |s| s.dynamic_config().number_of_publishers())?;
        let subscriber = inn
            .subscriber_builder()
            .buffer_size(buffer_for(names.max_message))
            .create()
            .map_err(|e| err("create subscriber", e))?;
        // Both services complete on both sides: only then does a sample reach its subscriber.
        wait_for(&services, |s| s.dynamic_config().number_of_subscribers())?;
        publisher
            .update_connections()
            .map_err(|e| err("publisher update connections", e))?;
        subscriber
            .update_connections()
            .map_err(|e| err("subscriber update connections", e))?;
        let mut end = IceEnd {
            loan: names.loan,
            publisher,
            subscriber,
            _services: [ping, pong],
            _node: node,
        };
        let (out_len, in_len) = if child {
            (pong_len, ping_len)
        } else {
            (ping_len, pong_len)
        };
        end.prefault(buffer_for(names.max_message), out_len, in_len)?;
        Ok(end)
    }

    /// Passes `n` samples each way before the first message, `out_len` bytes out and
    /// `in_len` bytes in, the receiver reading a byte of every page of each: the subscriber
    /// maps the publisher's memory afresh in every round, and each first read of a page is
    /// a page fault (at 64 MiB, 16,384 of them a sample). The samples in flight together
    /// are distinct, so the ones the loop will use are touched here instead of in the loop.
    fn prefault(&mut self, n: usize, out_len: usize, in_len: usize) -> io::Result<()> {
        let zeros = vec![0u8; out_len];
        let loan = std::mem::replace(&mut self.loan, false);
        for _ in 0..n {
            self.send(&zeros)?;
        }
        self.loan = loan;
        let mut sum = 0u8;
        for _ in 0..n {
            let sample = self.wait_sample()?;
            if sample.payload().len() != in_len {
                return Err(err("prefault", "a sample of the wrong length"));
            }
            for page in sample.payload().chunks(4096) {
                sum = sum.wrapping_add(page[0]);
            }
        }
        std::hint::black_box(sum);
        Ok(())
    }
}

impl IceEnd {
    /// The next sample, busy-polling for it.
    fn wait_sample(&mut self) -> io::Result<Sample<ipc::Service, [u8], ()>> {
        let mut spins: u32 = 0;
        let mut since: Option<Instant> = None;
        loop {
            if let Some(sample) = self.subscriber.receive().map_err(|e| err("receive", e))? {
                return Ok(sample);
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % (1 << 14) == 0 {
                std::thread::yield_now();
                let since = *since.get_or_insert_with(Instant::now);
                if since.elapsed() > PATIENCE {
                    return Err(err("receive", "no sample for 20 s: the peer is gone"));
                }
            }
        }
    }
}

impl Endpoint for IceEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut sample = self
            .publisher
            .loan_slice_uninit(msg.len())
            .map_err(|e| err("loan", e))?;
        if !self.loan {
            return sample
                .write_from_slice(msg)
                .send()
                .map(drop)
                .map_err(|e| err("send", e));
        }
        let n = msg.len().min(TOUCH);
        let payload = sample.payload_mut();
        let tail = payload.len() - n;
        for (place, &byte) in payload[..n].iter_mut().zip(&msg[..n]) {
            place.write(byte);
        }
        for (place, &byte) in payload[tail..].iter_mut().zip(&msg[msg.len() - n..]) {
            place.write(byte);
        }
        #[allow(unsafe_code)]
        // SAFETY: the payload lies in a shared-memory segment iceoryx2 zeroes when it creates
        // it, and every later write to it is of initialised bytes: every byte is initialised,
        // though only the first and last `TOUCH` are this message's.
        let sample = unsafe { sample.assume_init() };
        sample.send().map(drop).map_err(|e| err("send", e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let sample = self.wait_sample()?;
        let payload = sample.payload();
        if payload.len() != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("received {} bytes, expected {}", payload.len(), buf.len()),
            ));
        }
        if self.loan {
            let n = buf.len().min(TOUCH);
            let tail = buf.len() - n;
            buf[..n].copy_from_slice(&payload[..n]);
            buf[tail..].copy_from_slice(&payload[tail..]);
        } else {
            buf.copy_from_slice(payload);
        }
        Ok(())
    }
}

impl Link for Iceoryx2 {
    type Shared = Names;
    type Parent = IceEnd;
    type Child = IceEnd;

    fn setup(&self) -> io::Result<Teardown> {
        let before = shm_files();
        Ok(Teardown::new(move || remove_new_unused(&before)))
    }

    fn prepare(&self, max_message: usize) -> io::Result<Names> {
        let base = unique_name("ipcbox-bench");
        Ok(Names {
            ping: format!("{base}/ping"),
            pong: format!("{base}/pong"),
            max_message,
            loan: self.loan,
        })
    }

    fn parent(&self, names: Names) -> io::Result<IceEnd> {
        IceEnd::new(&names, false)
    }

    fn child(&self, names: Names) -> io::Result<IceEnd> {
        IceEnd::new(&names, true)
    }
}
