//! Across hosts: the [`Queue`] and typed messages on [NATS](https://nats.io) (feature `nats`).
//!
//! The local [`crate::Queue`] lives in one machine's shared memory. This module gives its API
//! to processes on many machines, on a proven engine rather than a home-made broker:
//! `nats-server` with JetStream (Debian's package `nats-server`), through the official tokio
//! client `async-nats`. It also carries typed messages, publish/subscribe and request/reply,
//! with the codecs of local connections.
//!
//! Each type has two faces. The async one ([`AsyncClient`], [`AsyncQueue`],
//! [`AsyncSubscriber`], [`AsyncResponder`]) runs on the caller's tokio runtime. The blocking
//! one ([`Client`], [`Queue`], [`Subscriber`], [`Responder`]) runs it on a private runtime of
//! one thread per [`Client`]; its methods must not be called from async code.
//!
//! # The queue
//!
//! A queue is a JetStream stream named after it, with one durable pull consumer that every
//! handle shares (competing consumers):
//!
//! | local [`crate::Queue`] | NATS [`Queue`] |
//! |---|---|
//! | capacity (`maxsize`): `put` waits, `try_put` gives `Ok(false)` | the stream's `max_msgs` with discard policy "new": the server refuses the message, `put` looks again after a pause (1 to 50 ms) |
//! | byte capacity | the stream's `max_bytes`, same way |
//! | `get` takes a message | a pull of one message; it stays on the server, hidden from other consumers, until acknowledged |
//! | `task_done` | the acknowledgement (confirmed by the server), which removes the message |
//! | `join` | waits (looking every 1 to 50 ms) until the stream is empty |
//! | `len` | the consumer's pending count, from the server: `io::Result<usize>` |
//! | `close` | the stream stops taking messages (its subject is renamed), waiting gets are woken |
//! | a name in `/dev/shm`, removed by its creator | a stream on the server that outlives every handle, removed by [`Queue::delete`] |
//!
//! Messages are encoded with postcard, as in the local queue. The outcomes follow the
//! [crate's rule](crate#outcomes), with the local queue's [`SendError`] and [`RecvError`].
//!
//! # Delivery: at least once
//!
//! The local queue is at most once for a message in the hands of a consumer that dies. This
//! one is **at least once**:
//!
//! * A `put` that returned `Ok` is stored by the server (on a quorum of the replicas) and
//!   stays until a `task_done` finishes it.
//! * A message taken by a `get` and not finished within the ack wait ([`Options::ack_wait`],
//!   30 s by default) is delivered again, to the next `get`. So a worker killed before its
//!   `task_done` loses nothing; its message comes back after the ack wait.
//! * Redelivery is the only source of duplicates. A worker slower than the ack wait gets its
//!   message processed twice: choose an ack wait above the longest task.
//! * A `put` whose answer is lost (timeout, connection lost, a cluster electing a new leader)
//!   is sent again with the same message ID (`Nats-Msg-Id`), and the server stores it once
//!   (within its two-minute duplicate window). A `put` that fails after 30 s of retries may
//!   or may not have been stored.
//! * Messages of one producer are delivered in the order it put them, except that a
//!   redelivered message comes after those delivered meanwhile.
//! * `task_done` returns once the server has confirmed the acknowledgement; a message whose
//!   `task_done` returned `Ok` is never delivered again.
//!
//! What the local queue has and this one does not: no disconnection when every peer died
//! (nothing tells a server that a host is gone for good: only `close` ends a queue), and no
//! wake-up when room is made or the last task is done (`put` on a full queue and `join`
//! look again after a pause).
//!
//! # Typed messages
//!
//! [`Client::publish`] and [`Client::subscribe`] are core NATS: at most once, to whoever
//! subscribes at that moment, nothing stored. [`Client::request`] sends a request and waits
//! for one reply from a [`Responder`] ([`Client::serve`]); responders of a subject share the
//! requests. The payload of each NATS message is the codec's payload, as inside a local frame
//! (`WIRE.md`, "Over NATS"), so [`codec::Raw`](crate::codec::Raw) or a peer's own encoder
//! interoperate with clients in any language.
//!
//! # Servers
//!
//! Every constructor takes a comma-separated list of URLs (`nats://host:4222`, credentials
//! as `nats://user:password@host`, TLS as `tls://host`). With the servers of a cluster, the
//! client fails over between them, and a queue with [`Options::replicas`]`(3)` keeps working
//! when one of three servers is lost. A server needs JetStream enabled (`nats-server -js`,
//! or `jetstream {}` in its configuration).
//!
//! ```no_run
//! use ipcbox::nats::{Client, Options};
//!
//! let client = Client::connect("nats://host1.example:4222,nats://host2.example:4222,nats://host3.example:4222")?;
//! let jobs = Options::new().capacity(1000).replicas(3).open::<u64>(&client, "jobs")?;
//! jobs.put(&42)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//!
//! Every error names the servers and, where one applies, the queue, the subject and the
//! limit: an unreachable server (`ConnectionRefused`), a bad URL (`InvalidInput`), a message
//! over the server's `max_payload` (`InvalidInput`, with both sizes), a server that does not
//! answer a request within 10 s, or a queue operation within 30 s of retries (`TimedOut`).
//!
//! # Limitations
//!
//! * One round trip to the server per `put`, `get` and `task_done`, so a message costs
//!   tens of microseconds at least even on one machine, against well under one for the local
//!   queue (`ipcbox-bench` measures both).
//! * A waiting `get` asks the server again every 5 s; a `get` abandoned at its deadline just
//!   as the server hands it a message leaves that message to come back after the ack wait.
//! * Queue names are 1 to 64 ASCII letters, digits, `-` and `_` (they name the stream).

mod blocking;
mod client;
mod messages;
mod queue;

pub use blocking::Queue;
pub use client::{AsyncClient, Client};
pub use messages::{AsyncResponder, AsyncSubscriber, Request, Responder, Subscriber};
pub use queue::{AsyncQueue, Options};

pub use crate::queue::{RecvError, SendError};

use std::io;

/// A blocking form's result: its deadline never passes, so "not now" cannot occur; were it
/// to, it is a failure.
fn waited<T>(res: Result<Option<T>, RecvError>) -> Result<T, RecvError> {
    res?.ok_or_else(|| {
        RecvError::Failed(io::Error::new(
            io::ErrorKind::TimedOut,
            "a wait without a deadline gave up",
        ))
    })
}
