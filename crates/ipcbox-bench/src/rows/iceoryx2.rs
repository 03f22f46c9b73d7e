//! iceoryx2 publish-subscribe (the crate, version 0.10), the zero-copy middleware ipcbox's
//! shared-memory queues are compared with.
//!
//! Two services per measurement, `ping` (parent publishes, child subscribes) and `pong` (the
//! other way), with `[u8]` slice payloads of the job's size; each side makes its own node
//! after `fork` and waits until both services have their publisher and subscriber before the
//! first message (a sample published before the subscriber connects is not delivered). The
//! publishers never drop a sample: safe overflow off, backpressure "retry until delivered".
//!
//! The subscriber busy-polls `receive()`, as iceoryx2's own benchmark does: that is iceoryx2's
//! best case (it has no blocking receive; waiting would go through a separate event service
//! and its wake-up, like ipcbox's parking rows). Sending copies the message into a loaned
//! sample, receiving copies it out, as every other row does.
//!
//! iceoryx2 leaves a global management segment in `/dev/shm` for the next node: the row's
//! setup notes the segments there, and its teardown removes the new ones nobody maps.

use std::io;
use std::time::{Duration, Instant};

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;

use crate::row::{forked, Endpoint, Info, Kind, Link, Row, Teardown};
use crate::rows::common::unique_name;

/// The iceoryx2 row of group `group`.
pub fn row(group: &'static str) -> Box<dyn Row> {
    forked(
        Info::new("iceoryx2 pubsub", group, Kind::Competitor),
        Iceoryx2,
    )
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

/// How long a receiver polls without a sample before it decides the peer is gone.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Iceoryx2;

/// The two service names and the payload size, chosen before `fork`.
#[derive(Debug)]
struct Names {
    ping: String,
    pong: String,
    max_message: usize,
}

/// One side. Fields drop in order: ports, then services, then the node.
struct IceEnd {
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
        let publisher = out
            .publisher_builder()
            .initial_max_slice_len(names.max_message.max(1))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| err("create publisher", e))?;
        let subscriber = inn
            .subscriber_builder()
            .buffer_size(buffer_for(names.max_message))
            .create()
            .map_err(|e| err("create subscriber", e))?;
        // Both services complete on both sides: only then does a sample reach its subscriber.
        let start = Instant::now();
        while [&ping, &pong].iter().any(|s| {
            s.dynamic_config().number_of_publishers() < 1
                || s.dynamic_config().number_of_subscribers() < 1
        }) {
            if start.elapsed() > PATIENCE {
                return Err(err("connect", "the peer's ports did not appear"));
            }
            std::thread::yield_now();
        }
        publisher
            .update_connections()
            .map_err(|e| err("publisher update connections", e))?;
        subscriber
            .update_connections()
            .map_err(|e| err("subscriber update connections", e))?;
        Ok(IceEnd {
            publisher,
            subscriber,
            _services: [ping, pong],
            _node: node,
        })
    }
}

impl Endpoint for IceEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let sample = self
            .publisher
            .loan_slice_uninit(msg.len())
            .map_err(|e| err("loan", e))?;
        sample
            .write_from_slice(msg)
            .send()
            .map_err(|e| err("send", e))?;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut spins: u32 = 0;
        let mut since: Option<Instant> = None;
        loop {
            if let Some(sample) = self.subscriber.receive().map_err(|e| err("receive", e))? {
                let payload = sample.payload();
                if payload.len() != buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("received {} bytes, expected {}", payload.len(), buf.len()),
                    ));
                }
                buf.copy_from_slice(payload);
                return Ok(());
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
        })
    }

    fn parent(&self, names: Names) -> io::Result<IceEnd> {
        IceEnd::new(&names, false)
    }

    fn child(&self, names: Names) -> io::Result<IceEnd> {
        IceEnd::new(&names, true)
    }
}
