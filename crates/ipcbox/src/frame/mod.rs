//! Typed message connections over any byte transport, and `multiprocessing.Pipe`'s analogue.
//!
//! A [`Connection`] sends and receives *frames* over a descriptor-backed transport (a Unix or
//! TCP stream socket, one end of a pipe; the socket module's types slot in the same way).
//! Every transport uses the one wire format described in `WIRE.md` at the repository root: a
//! 4-byte little-endian payload length, then the payload. A Python program with `socket` and
//! `struct` speaks it in a few lines.
//!
//! * **Typed**: [`send`](Connection::send) / [`recv`](Connection::recv) encode and decode
//!   messages with a [`Codec`]; the default, [`Postcard`], takes any `serde` type.
//! * **Bytes**: [`send_bytes`](Connection::send_bytes), [`recv_bytes`](Connection::recv_bytes),
//!   [`recv_bytes_into`](Connection::recv_bytes_into) move raw payloads: one system call per
//!   message (a frame up to 1 KiB is copied into one buffer for `send`/`write`, a larger one
//!   goes out with `sendmsg`/`writev` of header and payload), and small frames arrive with one `read` into a reused buffer (which may take in
//!   several frames at once), with no allocation per message. A blocking receive of a large
//!   frame (64 KiB and up) reads the payload straight into the caller's buffer. On a message
//!   socket each frame is one `recv` when the receive limit is under 64 KiB (or on UDP); under
//!   a larger limit a `MSG_PEEK` learns its size first.
//! * On a blocking message socket with a receive timeout (`SO_RCVTIMEO`), a blocking receive
//!   that outlasts it fails with [`io::ErrorKind::TimedOut`] instead of waiting on.
//! * Every blocking operation has `try_` and `_timeout` forms. A frame that arrives partly
//!   before a timeout stays buffered and is completed by the next call: timeouts never
//!   desynchronise the stream.
//! * The receiver refuses frames longer than [`max_frame_len`](Connection::max_frame_len)
//!   (default [`DEFAULT_MAX_FRAME_LEN`]) with an error naming both sizes, and grows its buffer
//!   only as bytes actually arrive: a header claiming 4 GiB costs nothing.
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

pub use connection::{duplex, pipe, Connection};
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use fds::MAX_FDS_PER_FRAME;
pub use transport::{Framing, Readable, Transport, Writable};
/// Bytes in a frame header: the payload length as a little-endian `u32`.
pub const HEADER_LEN: usize = 4;

/// The largest payload a connection accepts unless told otherwise: 64 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 << 20;

/// The largest payload the wire format can carry: `u32::MAX` bytes.
pub const WIRE_MAX_FRAME_LEN: usize = u32::MAX as usize;
