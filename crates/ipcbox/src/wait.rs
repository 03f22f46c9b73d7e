//! Waiting on many objects at once: [`wait()`], the analogue of Python's
//! `multiprocessing.connection.wait`.
//!
//! Every object that can be waited on is [`Waitable`]: connections, queues and channel ends
//! (through their doorbells), POSIX message queues, child processes (their pidfd), and any
//! raw descriptor ([`Fd`]). One `poll(2)` covers them all; no thread is started.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use ipcbox::queue::Queue;
//!
//! let a: Queue<u32> = Queue::new(4)?;
//! let b: Queue<u32> = Queue::new(4)?;
//! b.put(&7)?;
//! let ready = ipcbox::wait(&[&a, &b], Some(Duration::from_secs(5)))?;
//! assert_eq!(ready, [1]);
//! assert_eq!(b.get()?, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use crate::frame::{Connection, Readable as ReadableTransport};
use crate::mq::PosixQueue;
use crate::process::Child;
use crate::queue::{channel, ByteQueue, Interest, Queue};

/// How long a waiter goes without looking at an object that cannot promise a wake-up: a queue
/// whose table of doorbells was full, a channel end that could not fence its peer.
const POLL_SLICE: Duration = Duration::from_millis(10);
/// How long a waiter goes without checking that a queue's or channel's peers live, as a
/// blocking call does while it sleeps.
const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// An object [`wait()`] can wait on: it says whether it is ready now and, if not, which
/// descriptor becomes readable when it may be.
///
/// "Ready" means the object's receiving operation (`recv`, `get`, `wait`) would not block: it
/// has something to return, or an error such as `Disconnected` to report.
pub trait Waitable {
    /// Whether the object is ready now; if not, prepares [`Waitable::descriptor`] to become
    /// readable when it may be (a queue or channel arms its doorbell).
    ///
    /// # Errors
    ///
    /// The object's own failure (a corrupted queue, a doorbell that could not be bound).
    fn prepare(&self) -> io::Result<bool>;

    /// The descriptor that becomes readable when the object may be ready.
    fn descriptor(&self) -> BorrowedFd<'_>;

    /// How long to wait at most before calling [`Waitable::prepare`] again even if the
    /// descriptor stays quiet; `None` if a readable descriptor is the only news.
    fn recheck(&self) -> Option<Duration> {
        None
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`: no limit), and
/// returns the indices of the ready ones in order; empty if the time passed first.
///
/// Readiness is checked once before any wait, so an object already ready returns at once.
/// A ready object stays ready until its operation is done (a queue's message can still be
/// taken by another consumer first: then that `try_get` says "not now").
///
/// # Errors
///
/// `InvalidInput` for an empty list; a [`Waitable::prepare`] error; the `poll` error.
#[doc(alias = "poll")]
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    if objects.is_empty() {
        return Err(crate::error::invalid_input(format_args!(
            "wait needs at least one object, got an empty list"
        )));
    }
    let end = timeout.map(|t| Instant::now() + t);
    loop {
        let mut ready = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            if o.prepare()? {
                ready.push(i);
            }
        }
        if !ready.is_empty() {
            return Ok(ready);
        }
        let now = Instant::now();
        let left = match end {
            Some(end) if end <= now => return Ok(ready),
            Some(end) => Some(end - now),
            None => None,
        };
        let slice = objects.iter().filter_map(|o| o.recheck()).min();
        let sleep = match (left, slice) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut fds: Vec<PollFd<'_>> = objects
            .iter()
            .map(|o| PollFd::from_borrowed_fd(o.descriptor(), PollFlags::IN))
            .collect();
        let ts = sleep.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos().into(),
        });
        match poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Any descriptor, ready when it is readable (or at its end, or in error).
#[derive(Debug, Clone, Copy)]
pub struct Fd<'a>(pub BorrowedFd<'a>);

impl Waitable for Fd<'_> {
    fn prepare(&self) -> io::Result<bool> {
        let mut fds = [PollFd::from_borrowed_fd(self.0, PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        Ok(poll(&mut fds, Some(&zero)).map_err(io::Error::from)? > 0)
    }

    fn descriptor(&self) -> BorrowedFd<'_> {
        self.0
    }
}

/// Ready when `get` would not block: a message, or the queue closed or abandoned.
impl Waitable for ByteQueue {
    fn prepare(&self) -> io::Result<bool> {
        Ok(self.arm(Interest::Get)? || self.is_abandoned(Interest::Get))
    }

    fn descriptor(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn recheck(&self) -> Option<Duration> {
        Some(if self.doorbell_registered() {
            LIVENESS_SLICE
        } else {
            POLL_SLICE
        })
    }
}

/// As for [`ByteQueue`].
impl<T> Waitable for Queue<T> {
    fn prepare(&self) -> io::Result<bool> {
        self.as_bytes().prepare()
    }

    fn descriptor(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn recheck(&self) -> Option<Duration> {
        self.as_bytes().recheck()
    }
}

/// `Waitable` for a channel end: ready when its operation would not block, or its peer is gone.
macro_rules! channel_end {
    ($end:ident, $doc:literal) => {
        #[doc = $doc]
        impl<T> Waitable for channel::$end<T> {
            fn prepare(&self) -> io::Result<bool> {
                Ok(self.arm()? || self.is_abandoned())
            }

            fn descriptor(&self) -> BorrowedFd<'_> {
                self.as_fd()
            }

            fn recheck(&self) -> Option<Duration> {
                Some(if self.doorbell_registered() {
                    LIVENESS_SLICE
                } else {
                    POLL_SLICE
                })
            }
        }
    };
}

channel_end!(
    Receiver,
    "Ready when `recv` would not block: a message, or the sender gone."
);
channel_end!(
    Sender,
    "Ready when `send` would not block: room, or the receiver gone."
);

/// Ready when `recv` would not block: a whole frame buffered, bytes (or the end) on the
/// transport. A frame that arrives in pieces can make a ready connection's blocking `recv`
/// wait for the rest; its `try_recv` never does.
impl<Out, In, T: ReadableTransport, C> Waitable for Connection<Out, In, T, C> {
    fn prepare(&self) -> io::Result<bool> {
        if self.frame_buffered() {
            return Ok(true);
        }
        Fd(self.as_fd()).prepare()
    }

    fn descriptor(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// Ready when a message is queued (`mq_receive` would not block).
impl Waitable for PosixQueue {
    fn prepare(&self) -> io::Result<bool> {
        Fd(self.as_fd()).prepare()
    }

    fn descriptor(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// Ready when the child has exited (its pidfd is readable): `wait` would not block.
impl Waitable for Child {
    fn prepare(&self) -> io::Result<bool> {
        Fd(self.as_fd()).prepare()
    }

    fn descriptor(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}
