//! Why an operation on a connection failed: the public error enums, and the internal reason
//! each is built from.

use std::fmt;
use std::io;

use crate::codec::{DecodeError, EncodeError};

#[cfg(doc)]
use super::Connection;
/// Why an internal operation stopped; mapped onto the public error enums.
pub(super) enum Fail {
    WouldBlock,
    Disconnected,
    TooLarge { len: usize, max: usize },
    Torn { expected: usize, received: usize },
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

macro_rules! recv_error {
    ($(#[$doc:meta])* $name:ident, $wait:ident, $wait_doc:literal, $wait_msg:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            #[doc = $wait_doc]
            $wait,
            /// The peer closed the connection (every frame it sent before was received): the
            /// analogue of Python's `EOFError`.
            Disconnected,
            /// The next frame's payload (`len` bytes) is longer than the limit `max`. It
            /// stays unread, unless on a message transport it was also longer than the 64 KiB
            /// receive buffer: then it is dropped (see `WIRE.md`).
            TooLarge {
                /// The payload length the frame header gives.
                len: usize,
                /// The limit it exceeds.
                max: usize,
            },
            /// The peer closed the connection in the middle of a frame (killed, say): the
            /// partial frame is dropped and the next receive reports `Disconnected`. On a
            /// message transport: a message whose length disagrees with its header (dropped;
            /// receiving goes on).
            Torn {
                /// The bytes of the frame (header included) the receiver was waiting for.
                expected: usize,
                /// The bytes that had arrived.
                received: usize,
            },
            /// A whole frame arrived but its payload is not a valid message; it is consumed.
            Decode(DecodeError),
            /// An OS error.
            Io(io::Error),
        }

        impl $name {
            pub(super) fn from_fail(f: Fail) -> $name {
                match f {
                    Fail::WouldBlock => $name::$wait,
                    Fail::Disconnected => $name::Disconnected,
                    Fail::TooLarge { len, max } => $name::TooLarge { len, max },
                    Fail::Torn { expected, received } => $name::Torn { expected, received },
                    Fail::Decode(e) => $name::Decode(e),
                    Fail::Encode(e) => $name::Io(io::Error::new(io::ErrorKind::InvalidData, e)),
                    Fail::Io(e) => $name::Io(e),
                }
            }

            /// `true` for `Disconnected`.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $name::Disconnected)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::$wait => f.write_str($wait_msg),
                    $name::Disconnected => f.write_str(DISCONNECTED),
                    $name::TooLarge { len, max } => too_large(f, *len, *max),
                    $name::Torn { expected, received } => torn(f, *expected, *received),
                    $name::Decode(e) => e.fmt(f),
                    $name::Io(e) => e.fmt(f),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Decode(e) => Some(e),
                    $name::Io(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$name> for io::Error {
            fn from(e: $name) -> io::Error {
                let kind = match &e {
                    $name::$wait => io::ErrorKind::WouldBlock,
                    $name::Disconnected | $name::Torn { .. } => io::ErrorKind::UnexpectedEof,
                    $name::TooLarge { .. } | $name::Decode(_) => io::ErrorKind::InvalidData,
                    $name::Io(e) => e.kind(),
                };
                match e {
                    $name::Io(e) => e,
                    e => io::Error::new(kind, e),
                }
            }
        }
    };
}

/// Why [`Connection::recv`] failed.
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
    /// frame is dropped and the next receive reports `Disconnected`. On a message transport:
    /// a message whose length disagrees with its header (dropped; receiving goes on).
    Torn {
        /// The bytes of the frame (header included) the receiver was waiting for.
        expected: usize,
        /// The bytes that had arrived.
        received: usize,
    },
    /// A whole frame arrived but its payload is not a valid message; it is consumed.
    Decode(DecodeError),
    /// An OS error.
    Io(io::Error),
}

impl RecvError {
    pub(super) fn from_fail(f: Fail) -> RecvError {
        match f {
            // A blocking receive does not run out of time; keep the case total all the same.
            Fail::WouldBlock => RecvError::Io(io::ErrorKind::WouldBlock.into()),
            Fail::Disconnected => RecvError::Disconnected,
            Fail::TooLarge { len, max } => RecvError::TooLarge { len, max },
            Fail::Torn { expected, received } => RecvError::Torn { expected, received },
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

impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> io::Error {
        let kind = match &e {
            RecvError::Disconnected | RecvError::Torn { .. } => io::ErrorKind::UnexpectedEof,
            RecvError::TooLarge { .. } | RecvError::Decode(_) => io::ErrorKind::InvalidData,
            RecvError::Io(_) => io::ErrorKind::Other,
        };
        match e {
            RecvError::Io(e) => e,
            e => io::Error::new(kind, e),
        }
    }
}

recv_error!(
    /// Why [`Connection::try_recv`] failed.
    TryRecvError,
    Empty,
    "No whole frame is available yet (a partial one stays buffered).",
    "no whole frame is available yet"
);

recv_error!(
    /// Why [`Connection::recv_timeout`] failed.
    RecvTimeoutError,
    Timeout,
    "No whole frame arrived in time (a partial one stays buffered).",
    "timed out waiting for a frame"
);

fn send_too_large(f: &mut fmt::Formatter<'_>, len: usize, max: usize) -> fmt::Result {
    write!(
        f,
        "message of {len} bytes is longer than the frame limit of {max} bytes"
    )
}

macro_rules! send_error {
    ($(#[$doc:meta])* $name:ident $(, $wait:ident, $wait_doc:literal, $wait_msg:literal)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            $(
                #[doc = $wait_doc]
                $wait,
            )?
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

        impl $name {
            pub(super) fn from_fail(f: Fail) -> $name {
                match f {
                    $(Fail::WouldBlock => $name::$wait,)?
                    Fail::Disconnected => $name::Disconnected,
                    Fail::TooLarge { len, max } => $name::TooLarge { len, max },
                    Fail::Encode(e) => $name::Encode(e),
                    Fail::Io(e) => $name::Io(e),
                    #[allow(unreachable_patterns)]
                    Fail::WouldBlock => $name::Io(io::ErrorKind::WouldBlock.into()),
                    Fail::Torn { .. } | Fail::Decode(_) => {
                        $name::Io(io::Error::other("internal: receive error on send"))
                    }
                }
            }

            /// `true` for `Disconnected`.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $name::Disconnected)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$wait => f.write_str($wait_msg),)?
                    $name::Disconnected => f.write_str(DISCONNECTED),
                    $name::TooLarge { len, max } => send_too_large(f, *len, *max),
                    $name::Encode(e) => e.fmt(f),
                    $name::Io(e) => e.fmt(f),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Encode(e) => Some(e),
                    $name::Io(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$name> for io::Error {
            fn from(e: $name) -> io::Error {
                let kind = match &e {
                    $($name::$wait => io::ErrorKind::WouldBlock,)?
                    $name::Disconnected => io::ErrorKind::BrokenPipe,
                    $name::TooLarge { .. } | $name::Encode(_) => io::ErrorKind::InvalidInput,
                    $name::Io(e) => e.kind(),
                };
                match e {
                    $name::Io(e) => e,
                    e => io::Error::new(kind, e),
                }
            }
        }
    };
}

send_error!(
    /// Why [`Connection::send`] failed.
    SendError
);

send_error!(
    /// Why [`Connection::try_send`] failed.
    TrySendError,
    Full,
    "The transport has no room now; nothing was sent.",
    "the connection's transport is full"
);

send_error!(
    /// Why [`Connection::send_timeout`] failed.
    SendTimeoutError,
    Timeout,
    "The transport had no room in time; nothing was sent.",
    "timed out waiting to send"
);
