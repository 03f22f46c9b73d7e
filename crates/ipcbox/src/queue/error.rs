//! Errors of queue and channel operations. An error is always a failure: "not now" (full,
//! empty, timed out) is a value in `Ok` (see the [module docs](super)).

use std::fmt;
use std::io;

/// Error of a send: `put`, `send` and their `try_`, `_timeout` and `_deadline` forms.
#[derive(Debug)]
pub enum SendError {
    /// The queue is closed, or every other attached process is gone.
    Disconnected,
    /// The operation failed (message over the size limit, encoding error, corrupted shared
    /// header, OS error); the queue is unchanged.
    Failed(io::Error),
}

/// Error of a receive: `get`, `recv` and their `try_`, `_timeout` and `_deadline` forms.
#[derive(Debug)]
pub enum RecvError {
    /// The queue is closed (or every other attached process is gone) and empty.
    Disconnected,
    /// The operation failed (undecodable message, which is then dropped; corrupted shared
    /// header; OS error).
    Failed(io::Error),
}

/// Error of a batch put (`put_many` and its forms): how many messages of the batch were put
/// before it failed, and why the rest was not.
#[derive(Debug)]
pub struct PutManyError {
    /// How many messages were put: `msgs[..sent]` is in the queue, the rest is not.
    pub sent: usize,
    /// Why the rest was not put.
    pub error: SendError,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected => f.write_str("sending on a disconnected queue"),
            SendError::Failed(e) => write!(f, "sending failed: {e}"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Disconnected => f.write_str("receiving on an empty and disconnected queue"),
            RecvError::Failed(e) => write!(f, "receiving failed: {e}"),
        }
    }
}

impl fmt::Display for PutManyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} of the batch put)", self.error, self.sent)
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Disconnected => None,
            SendError::Failed(e) => Some(e),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Disconnected => None,
            RecvError::Failed(e) => Some(e),
        }
    }
}

impl std::error::Error for PutManyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// `Disconnected` becomes `BrokenPipe`; `Failed` gives its own error back.
impl From<SendError> for io::Error {
    fn from(e: SendError) -> io::Error {
        match e {
            SendError::Disconnected => io::Error::new(io::ErrorKind::BrokenPipe, e),
            SendError::Failed(e) => e,
        }
    }
}

/// `Disconnected` becomes `BrokenPipe`; `Failed` gives its own error back.
impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> io::Error {
        match e {
            RecvError::Disconnected => io::Error::new(io::ErrorKind::BrokenPipe, e),
            RecvError::Failed(e) => e,
        }
    }
}

/// The kind of the batch's [`SendError`], with the count in the message.
impl From<PutManyError> for io::Error {
    fn from(e: PutManyError) -> io::Error {
        let kind = match &e.error {
            SendError::Disconnected => io::ErrorKind::BrokenPipe,
            SendError::Failed(err) => err.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// What the queue's and the channel's waits need of their error types: both have the same
/// two failures.
pub(crate) trait Failure {
    fn disconnected() -> Self;
    fn failed(e: io::Error) -> Self;
}

impl Failure for SendError {
    fn disconnected() -> SendError {
        SendError::Disconnected
    }
    fn failed(e: io::Error) -> SendError {
        SendError::Failed(e)
    }
}

impl Failure for RecvError {
    fn disconnected() -> RecvError {
        RecvError::Disconnected
    }
    fn failed(e: io::Error) -> RecvError {
        RecvError::Failed(e)
    }
}

/// A blocking form's result: its deadline never passes, so the "not now" of the core
/// operation it shares with the other forms cannot occur; were it to, it is a failure.
pub(crate) fn waited<T, E: Failure>(res: Result<Option<T>, E>) -> Result<T, E> {
    res?.ok_or_else(|| {
        E::failed(io::Error::new(
            io::ErrorKind::TimedOut,
            "a wait without a deadline gave up",
        ))
    })
}

/// [`waited`] for a form that returns `()`.
pub(crate) fn done<E: Failure>(res: Result<bool, E>) -> Result<(), E> {
    waited(res.map(|ok| ok.then_some(())))
}
