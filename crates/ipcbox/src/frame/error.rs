//! Why an operation on a connection failed: the public error enums, and the internal reason
//! each is built from.

use std::fmt;
use std::io;

use super::HEADER_LEN;
use crate::codec::{DecodeError, EncodeError};

#[cfg(doc)]
use super::Connection;
/// Why an internal operation stopped; mapped onto the public error enums.
pub(super) enum Fail {
    WouldBlock,
    Disconnected,
    TooLarge { len: usize, max: usize },
    Torn { expected: usize, received: usize },
    LengthMismatch { expected: usize, received: usize },
    Decode(DecodeError),
    Encode(EncodeError),
    Io(io::Error),
}

const DISCONNECTED: &str = "the peer closed the connection";

fn too_large(f: &mut fmt::Formatter<'_>, len: usize, max: usize) -> fmt::Result {
    write!(
        f,
        "frame of {len} bytes is longer than the limit of {max} bytes"
    )
}

fn torn(f: &mut fmt::Formatter<'_>, expected: usize, received: usize) -> fmt::Result {
    write!(
        f,
        "the peer closed the connection in the middle of a frame \
         ({received} of {expected} bytes received)"
    )
}

fn mismatch(f: &mut fmt::Formatter<'_>, expected: usize, received: usize) -> fmt::Result {
    if received < HEADER_LEN {
        write!(
            f,
            "a message of {received} bytes is too short for a frame header; it was dropped"
        )
    } else {
        write!(
            f,
            "a message of {received} bytes carries a frame header announcing {expected} bytes \
             (header included); it was dropped"
        )
    }
}

/// Why a [`Connection`] receive failed. Running out of time is not a failure: the `try_`,
/// `_timeout` and `_deadline` forms report it as `Ok(None)`.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// The peer closed the connection (every frame it sent before was received): the analogue
    /// of Python's `EOFError`.
    Disconnected,
    /// The next frame's payload (`len` bytes) is longer than the limit `max`. It stays unread,
    /// unless on a message transport it was also longer than the 64 KiB receive buffer: then
    /// it is dropped (see `WIRE.md`).
    TooLarge {
        /// The payload length the frame header gives.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame (killed, say): the partial
    /// frame is dropped and the next receive reports `Disconnected`.
    Torn {
        /// The bytes of the frame (header included) the receiver was waiting for.
        expected: usize,
        /// The bytes that had arrived.
        received: usize,
    },
    /// On a message transport (seqpacket, datagram): a message whose length disagrees with
    /// the frame header it starts with, or too short to hold one. The message is dropped; the
    /// connection stays as it was, and the next receive takes the next message.
    LengthMismatch {
        /// The message length the header announces (header included; 4 when there was no
        /// whole header).
        expected: usize,
        /// The message's real length.
        received: usize,
    },
    /// A whole frame arrived but its payload is not a valid message; it is consumed.
    Decode(DecodeError),
    /// An OS error.
    Io(io::Error),
}

impl RecvError {
    /// The failure behind `f`, which is not "not now" (see [`received`]).
    pub(super) fn from_fail(f: Fail) -> RecvError {
        match f {
            // Only a receive that may wait no longer stops here, and `received` takes that
            // one; keep the case total all the same.
            Fail::WouldBlock => RecvError::Io(io::ErrorKind::WouldBlock.into()),
            Fail::Disconnected => RecvError::Disconnected,
            Fail::TooLarge { len, max } => RecvError::TooLarge { len, max },
            Fail::Torn { expected, received } => RecvError::Torn { expected, received },
            Fail::LengthMismatch { expected, received } => {
                RecvError::LengthMismatch { expected, received }
            }
            Fail::Decode(e) => RecvError::Decode(e),
            Fail::Encode(e) => RecvError::Io(io::Error::new(io::ErrorKind::InvalidData, e)),
            Fail::Io(e) => RecvError::Io(e),
        }
    }

    /// `true` for `Disconnected`.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvError::Disconnected)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Disconnected => f.write_str(DISCONNECTED),
            RecvError::TooLarge { len, max } => too_large(f, *len, *max),
            RecvError::Torn { expected, received } => torn(f, *expected, *received),
            RecvError::LengthMismatch { expected, received } => mismatch(f, *expected, *received),
            RecvError::Decode(e) => e.fmt(f),
            RecvError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Decode(e) => Some(e),
            RecvError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The kind by variant: `Disconnected` and `Torn` are `UnexpectedEof`, `TooLarge`,
/// `LengthMismatch` and `Decode` are `InvalidData`, and `Io` is the OS error itself.
impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> io::Error {
        let kind = match e {
            RecvError::Io(e) => return e,
            RecvError::Disconnected | RecvError::Torn { .. } => io::ErrorKind::UnexpectedEof,
            RecvError::TooLarge { .. }
            | RecvError::LengthMismatch { .. }
            | RecvError::Decode(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// Why a [`Connection`] send failed. A transport with no room is not a failure: the `try_`,
/// `_timeout` and `_deadline` forms report it as `Ok(false)`.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The peer closed the connection (`EPIPE`, `ECONNRESET`); nothing more can be sent.
    Disconnected,
    /// The payload (`len` bytes) is longer than the limit `max`; nothing was sent.
    TooLarge {
        /// The payload length.
        len: usize,
        /// The connection's frame limit.
        max: usize,
    },
    /// The codec could not encode the message; nothing was sent.
    Encode(EncodeError),
    /// An OS error.
    Io(io::Error),
}

impl SendError {
    /// The failure behind `f`, which is not "not now" (see [`sent`]).
    pub(super) fn from_fail(f: Fail) -> SendError {
        match f {
            Fail::Disconnected => SendError::Disconnected,
            Fail::TooLarge { len, max } => SendError::TooLarge { len, max },
            Fail::Encode(e) => SendError::Encode(e),
            Fail::Io(e) => SendError::Io(e),
            // As for RecvError: `sent` takes "not now" before it gets here.
            Fail::WouldBlock => SendError::Io(io::ErrorKind::WouldBlock.into()),
            Fail::Torn { .. } | Fail::LengthMismatch { .. } | Fail::Decode(_) => {
                SendError::Io(io::Error::other("internal: receive error on send"))
            }
        }
    }

    /// `true` for `Disconnected`.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected => f.write_str(DISCONNECTED),
            SendError::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes is longer than the frame limit of {max} bytes"
            ),
            SendError::Encode(e) => e.fmt(f),
            SendError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Encode(e) => Some(e),
            SendError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The kind by variant: `Disconnected` is `BrokenPipe`, `TooLarge` and `Encode` are
/// `InvalidInput`, and `Io` is the OS error itself.
impl From<SendError> for io::Error {
    fn from(e: SendError) -> io::Error {
        let kind = match e {
            SendError::Io(e) => return e,
            SendError::Disconnected => io::ErrorKind::BrokenPipe,
            SendError::TooLarge { .. } | SendError::Encode(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// What a receive that may return before a frame arrives returns: `Ok(None)` when none came
/// in time, the failure otherwise.
pub(super) fn received<T>(res: Result<T, Fail>) -> Result<Option<T>, RecvError> {
    match res {
        Ok(v) => Ok(Some(v)),
        Err(Fail::WouldBlock) => Ok(None),
        Err(f) => Err(RecvError::from_fail(f)),
    }
}

/// What a send that may return before the transport has room returns: `Ok(false)` when
/// nothing of the message was taken in time, the failure otherwise.
pub(super) fn sent(res: Result<(), Fail>) -> Result<bool, SendError> {
    match res {
        Ok(()) => Ok(true),
        Err(Fail::WouldBlock) => Ok(false),
        Err(f) => Err(SendError::from_fail(f)),
    }
}
