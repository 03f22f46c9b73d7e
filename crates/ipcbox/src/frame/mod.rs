//! Typed message connections over any byte transport, and `multiprocessing.Pipe`'s analogue.
//!
//! A [`Connection`] sends and receives *frames* over a descriptor-backed transport: a Unix or
//! TCP stream socket, one end of a pipe, or one of the [`socket`](crate::socket) module's
//! types. Every transport uses the one wire format of `WIRE.md` at the repository root, which
//! a Python program speaks with `socket` and `struct` in a few lines.
//!
//! * **Typed**: [`send`](Connection::send) / [`recv`](Connection::recv) encode and decode
//!   messages with a [`Codec`]. The default, [`Postcard`], takes any `serde` type.
//!   `Connection<Msg>` sends and receives `Msg`; `Connection<Request, Response>` sends one
//!   type and receives another ([`Connection::pair`] makes both ends of such a protocol).
//! * **Bytes**: [`send_bytes`](Connection::send_bytes), [`recv_bytes`](Connection::recv_bytes)
//!   and [`recv_bytes_into`](Connection::recv_bytes_into) move raw payloads, on any connection;
//!   a [`ByteConnection`] has no message type at all.
//! * **Transports**: ipcbox's own [`socket`](crate::socket) types by default, what a
//!   [`Listener`](crate::socket::Listener) accepts; std's sockets, pipes and the other socket
//!   types by naming them (`Connection<Msg, Msg, SeqPacket>`) or by inference.
//! * **Cost**: one system call per message when it need not wait, and no allocation per
//!   message. One `read` into a reused buffer may take in several small frames.
//! * **Large frames**: a blocking receive of a frame of 64 KiB or more reads the payload
//!   straight into the caller's buffer. On a message socket each frame is one `recv`, after a
//!   `MSG_PEEK` for its size when the receive limit is 64 KiB or more (not on UDP).
//! * **Outcomes**: the `try_`, `_timeout` and `_deadline` forms report "not now" in `Ok`
//!   (`Ok(false)` from a send, `Ok(None)` from a receive); an `Err` is always a failure, as
//!   [the crate's rule](crate#outcomes) says.
//! * **Partial frames**: a frame that arrives partly before time runs out stays buffered and
//!   the next receive completes it. A send that runs out of time after part of its frame went
//!   out reports it taken and sends the rest first, so the stream never desynchronises.
//! * On a blocking message socket with a receive timeout (`SO_RCVTIMEO`), a blocking receive
//!   that outlasts it fails with [`io::ErrorKind::TimedOut`] instead of waiting on.
//! * **Limits**: the receiver refuses frames longer than
//!   [`max_frame_len`](Connection::max_frame_len) (default [`DEFAULT_MAX_FRAME_LEN`]) with an
//!   error naming both sizes. Its buffer grows only as bytes arrive: a header claiming 4 GiB
//!   costs nothing.
//!
//! [`duplex`] and [`pipe()`] are `multiprocessing.Pipe(duplex=True)` and `Pipe(duplex=False)`.
//!
//! # Handing an end to a child process
//!
//! * A spawned program (Rust or not): [`Connection::pass_to_child`] keeps the descriptor open
//!   across `exec` in that child only and names it in an environment variable;
//!   [`Connection::from_env`] in the child checks it (open, same device and inode, right kind)
//!   before owning it. A Python child takes the number before the first `:` of the variable.
//! * As the child's standard input or output: [`Connection::into_transport`], then
//!   `Stdio::from(OwnedFd::from(transport))`; the child wraps descriptor 0 or 1.
//! * Through `fork`: the child already owns its copy; close the parent's end in each process.
//!
//! Frames are never split between a parent's and a child's copy of one end: hand an end over
//! (and drop your copy), don't share it.
//!
//! ```
//! use ipcbox::frame::{self, RecvError};
//!
//! let (mut left, mut right) = frame::duplex::<(u32, String)>()?;
//! left.send(&(1, "one".to_string()))?;
//! drop(left); // closing after a send: the message still arrives, then Disconnected
//! assert_eq!(right.recv()?, (1, "one".to_string()));
//! assert!(matches!(right.recv(), Err(RecvError::Disconnected)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(doc)]
use std::io;

#[cfg(doc)]
use crate::codec::{Codec, Postcard};

mod buffer;
mod connection;
mod error;
mod fds;
mod transport;

pub use connection::{duplex, pipe, ByteConnection, Connection};
pub use error::{RecvError, SendError};
pub use fds::MAX_FDS_PER_FRAME;
pub use transport::{Framing, Readable, Transport, Writable};
/// Bytes in a frame header: the payload length as a little-endian `u32`.
pub const HEADER_LEN: usize = 4;

/// The largest payload a connection accepts unless told otherwise: 64 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 << 20;

/// The largest payload the wire format can carry: `u32::MAX` bytes.
pub const WIRE_MAX_FRAME_LEN: usize = u32::MAX as usize;
