//! Errors of queue and channel operations. Send errors hand the message back.

use std::fmt;
use std::io;

macro_rules! send_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $var:ident => $text:literal,)* }) => {
        $(#[$doc])*
        pub enum $name<T> {
            $($(#[$vdoc])* $var(T),)*
            /// The operation failed (message over the size limit, encoding error, corrupted
            /// shared header, OS error); the message is handed back and the queue is unchanged.
            Failed(T, io::Error),
        }

        impl<T> $name<T> {
            /// The message that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$var(m) => m,)*
                    $name::Failed(m, _) => m,
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$var(_) => f.write_str(concat!(stringify!($var), "(..)")),)*
                    $name::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
                }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$var(_) => f.write_str($text),)*
                    $name::Failed(_, e) => write!(f, "sending failed: {e}"),
                }
            }
        }

        impl<T> std::error::Error for $name<T> {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Failed(_, e) => Some(e),
                    _ => None,
                }
            }
        }

        impl<T> From<$name<T>> for io::Error {
            fn from(e: $name<T>) -> io::Error {
                match e {
                    $name::Failed(_, e) => e,
                    other => io::Error::new(kind_of(&other.to_string()), other.to_string()),
                }
            }
        }
    };
}

macro_rules! recv_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $var:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {
            $($(#[$vdoc])* $var,)*
            /// The operation failed (undecodable message, which is then dropped; corrupted
            /// shared header; OS error).
            Failed(io::Error),
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$var => f.write_str($text),)*
                    $name::Failed(e) => write!(f, "receiving failed: {e}"),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Failed(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$name> for io::Error {
            fn from(e: $name) -> io::Error {
                match e {
                    $name::Failed(e) => e,
                    other => io::Error::new(kind_of(&other.to_string()), other.to_string()),
                }
            }
        }
    };
}

fn kind_of(text: &str) -> io::ErrorKind {
    if text.contains("disconnected") {
        io::ErrorKind::BrokenPipe
    } else if text.contains("timed out") {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::WouldBlock
    }
}

send_error! {
    /// Error of a blocking `put`/`send`.
    SendError {
        /// The queue is closed, or every other attached process is gone.
        Disconnected => "sending on a disconnected queue",
    }
}

send_error! {
    /// Error of `try_put`/`try_send`.
    TrySendError {
        /// The queue holds its maximum number of messages or bytes.
        Full => "sending on a full queue",
        /// The queue is closed, or every other attached process is gone.
        Disconnected => "sending on a disconnected queue",
    }
}

send_error! {
    /// Error of `put_timeout`/`send_timeout`.
    SendTimeoutError {
        /// The queue stayed full until the timeout.
        Timeout => "sending timed out: queue full",
        /// The queue is closed, or every other attached process is gone.
        Disconnected => "sending on a disconnected queue",
    }
}

recv_error! {
    /// Error of a blocking `get`/`recv`.
    RecvError {
        /// The queue is closed (or every other attached process is gone) and empty.
        Disconnected => "receiving on an empty and disconnected queue",
    }
}

recv_error! {
    /// Error of `try_get`/`try_recv`.
    TryRecvError {
        /// The queue is empty.
        Empty => "receiving on an empty queue",
        /// The queue is closed (or every other attached process is gone) and empty.
        Disconnected => "receiving on an empty and disconnected queue",
    }
}

recv_error! {
    /// Error of `get_timeout`/`recv_timeout`.
    RecvTimeoutError {
        /// The queue stayed empty until the timeout.
        Timeout => "receiving timed out: queue empty",
        /// The queue is closed (or every other attached process is gone) and empty.
        Disconnected => "receiving on an empty and disconnected queue",
    }
}

/// Why an internal operation stopped: mapped onto the public enums by each form.
#[derive(Debug)]
pub(crate) enum Stop {
    Full,
    Empty,
    Timeout,
    Disconnected,
    Failed(io::Error),
}

impl Stop {
    pub(crate) fn send<T>(self, msg: T) -> SendError<T> {
        match self {
            Stop::Failed(e) => SendError::Failed(msg, e),
            _ => SendError::Disconnected(msg),
        }
    }
    pub(crate) fn try_send<T>(self, msg: T) -> TrySendError<T> {
        match self {
            Stop::Disconnected => TrySendError::Disconnected(msg),
            Stop::Failed(e) => TrySendError::Failed(msg, e),
            _ => TrySendError::Full(msg),
        }
    }
    pub(crate) fn send_timeout<T>(self, msg: T) -> SendTimeoutError<T> {
        match self {
            Stop::Disconnected => SendTimeoutError::Disconnected(msg),
            Stop::Failed(e) => SendTimeoutError::Failed(msg, e),
            _ => SendTimeoutError::Timeout(msg),
        }
    }
    pub(crate) fn recv(self) -> RecvError {
        match self {
            Stop::Failed(e) => RecvError::Failed(e),
            _ => RecvError::Disconnected,
        }
    }
    pub(crate) fn try_recv(self) -> TryRecvError {
        match self {
            Stop::Disconnected => TryRecvError::Disconnected,
            Stop::Failed(e) => TryRecvError::Failed(e),
            _ => TryRecvError::Empty,
        }
    }
    pub(crate) fn recv_timeout(self) -> RecvTimeoutError {
        match self {
            Stop::Disconnected => RecvTimeoutError::Disconnected,
            Stop::Failed(e) => RecvTimeoutError::Failed(e),
            _ => RecvTimeoutError::Timeout,
        }
    }
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Failed(e)
    }
}
