//! Async adapters for tokio (feature `tokio`, off by default).
//!
//! * Everything with a file descriptor waits on tokio's reactor: pipe and FIFO ends and stream
//!   sockets as `AsyncRead`/`AsyncWrite` ([`Async`]), message sockets, listeners and POSIX
//!   message queues ([`Async`]'s own async forms), child exits ([`exited`]), signals
//!   ([`signals`]).
//! * Connections: [`Connection`] keeps the sync API (frames, codecs, errors, descriptor
//!   passing) over every transport; [`framed`] gives tokio-util's `Framed` over a Unix stream
//!   (a `Stream` of received messages, a `Sink` of messages to send), and [`MessageCodec`] /
//!   [`FrameCodec`] put the wire format on any byte stream.
//! * The shared-memory [`Queue`] and channel ([`Sender`], [`Receiver`]) wait through their
//!   doorbells (see [the queue's docs](crate::queue#waiting-on-a-descriptor)): no thread per
//!   waiter and no CPU while idle; sync and async handles mix on one queue.
//! * Objects without a descriptor run their blocking calls on tokio's blocking thread pool
//!   ([`Blocking`], [`SysVReceiver`]): one pool thread per call in progress.
//!
//! # Cancellation
//!
//! Each async call says whether it is cancel-safe, as tokio's do. Receiving calls are: a
//! dropped `get`, `recv`, `accept` or `next()` leaves its message where it was.
//!
//! # Limitations
//!
//! * Adapters belong to the runtime and process that made them: create them after `fork`.
//! * The runtime needs I/O and time enabled (`Builder::enable_all`).
//! * [`framed`] takes a connection over a Unix stream; over a pipe, a FIFO or a TCP stream, put
//!   the codecs on the byte stream yourself (`Framed::new(Async::new(reader)?,
//!   FrameCodec::new())`). Message transports and descriptor passing have no `Framed` form:
//!   [`Connection`] covers them.
//! * An async queue or channel waiter may take a moment to see a dead peer: it checks every
//!   second, where a blocking call checks every 100 ms.

mod blocking;
mod connection;
mod frame;
mod io;
mod queue;

pub use blocking::{Blocking, SysVReceiver};
pub use connection::Connection;
pub use frame::{framed, FrameCodec, Framed, MessageCodec};
pub use io::{exited, signals, Async, Pollable};
pub use queue::{Queue, Receiver, Sender};
