//! The shared-memory [`Queue`] and channel in async code: waiting through their doorbells
//! (see [the queue's docs](crate::queue#waiting-on-a-descriptor)), without a thread per waiter.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::unix::AsyncFd;

use crate::queue::{channel, Interest, RecvError, SendError};
use crate::sys::reactor::{self, Borrowed};

/// How often a waiter whose doorbell is registered checks that its peers still live.
// Longer than a blocking call's 100 ms: a thousand idle waiters would otherwise cost ten
// thousand wake-ups a second between them.
const LIVENESS_SLICE: Duration = Duration::from_secs(1);
/// How often a waiter without a registered doorbell looks again.
const POLL_SLICE: Duration = Duration::from_millis(10);

/// A handle's doorbell on the reactor, borrowed from the handle: every struct here declares
/// it before the handle, so it is dropped first.
type Bell = AsyncFd<Borrowed>;

fn bell(handle: &impl AsFd) -> io::Result<Bell> {
    reactor::register_borrowed(handle.as_fd(), tokio::io::Interest::READABLE)
}

/// What an async waiter needs of a handle: arm its doorbell, say whether that registered, and
/// whether the wait is hopeless.
trait Doorbell {
    fn arm(&self) -> io::Result<bool>;
    fn registered(&self) -> bool;
    fn abandoned(&self) -> bool;
}

/// Waits until the operation is worth trying again: armed and found ready, rung, or a slice
/// passed. `Ok(true)` when the waiter is abandoned (its blocking form's `Disconnected`).
async fn until_worth_trying(bell: &Bell, handle: &impl Doorbell) -> io::Result<bool> {
    if handle.arm()? {
        return Ok(false);
    }
    let slice = if handle.registered() {
        LIVENESS_SLICE
    } else {
        POLL_SLICE
    };
    match tokio::time::timeout(slice, bell.readable()).await {
        // Arming drains the socket; readiness is cleared first, so a ring after the drain
        // shows as new readiness.
        Ok(guard) => guard?.clear_ready(),
        Err(_) => return Ok(handle.abandoned()),
    }
    Ok(false)
}

/// Runs `attempt` until it takes something, waiting on the doorbell in between; the blocking
/// form's `Disconnected` when the waiter is abandoned. Each poll runs `attempt` whole, so a
/// dropped future took nothing it did not return.
async fn take<R>(
    bell: &Bell,
    wait: &impl Doorbell,
    mut attempt: impl FnMut() -> Result<Option<R>, RecvError>,
) -> Result<R, RecvError> {
    loop {
        if let Some(taken) = attempt()? {
            return Ok(taken);
        }
        if until_worth_trying(bell, wait)
            .await
            .map_err(RecvError::Failed)?
        {
            return Err(RecvError::Disconnected);
        }
    }
}

/// [`take`] for the sending side: runs `attempt` until it reports the message in.
async fn give(
    bell: &Bell,
    wait: &impl Doorbell,
    mut attempt: impl FnMut() -> Result<bool, SendError>,
) -> Result<(), SendError> {
    loop {
        if attempt()? {
            return Ok(());
        }
        if until_worth_trying(bell, wait)
            .await
            .map_err(SendError::Failed)?
        {
            return Err(SendError::Disconnected);
        }
    }
}

struct QueueBell<'a, T>(&'a crate::Queue<T>, Interest);

impl<T> Doorbell for QueueBell<'_, T> {
    fn arm(&self) -> io::Result<bool> {
        self.0.arm(self.1)
    }
    fn registered(&self) -> bool {
        self.0.doorbell_registered()
    }
    fn abandoned(&self) -> bool {
        self.0.is_abandoned(self.1)
    }
}

/// A [`crate::Queue`] with async `get`, `put` and `join`.
///
/// Waiting costs no thread and no CPU: a waiter arms the queue's doorbell and the task sleeps
/// until a peer's commit rings it. Sync and async handles of one queue mix freely, in any
/// processes. An async waiter checks every second that its peers live (a blocking call does
/// every 100 ms); where the doorbell cannot be registered it looks every 10 ms.
///
/// Create it inside a tokio runtime with I/O and time enabled, in the process that uses it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let q = ipcbox::tokio::Queue::new(ipcbox::Queue::<String>::new(8)?)?;
/// q.put(&"hi".to_owned()).await?;
/// assert_eq!(q.get().await?, "hi");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    bell: Bell,
    queue: crate::Queue<T>,
}

impl<T> Queue<T> {
    /// Wraps `queue`, registering its doorbell with the current runtime.
    ///
    /// # Errors
    ///
    /// Not inside a tokio runtime with I/O enabled, or the registration failed.
    pub fn new(queue: crate::Queue<T>) -> io::Result<Queue<T>> {
        queue.as_bytes().own_bell()?;
        Ok(Queue {
            bell: bell(&queue)?,
            queue,
        })
    }

    /// The sync queue, for its other operations (`try_` forms, `len`, `close`...).
    pub fn get_ref(&self) -> &crate::Queue<T> {
        &self.queue
    }

    /// The sync queue back.
    pub fn into_inner(self) -> crate::Queue<T> {
        let Queue { bell, queue } = self;
        drop(bell);
        queue
    }

    /// Removes the oldest message's bytes into `buf` (replacing its contents), waiting while
    /// the queue is empty. Cancel-safe, as [`Queue::get`].
    ///
    /// # Errors
    ///
    /// As [`crate::queue::ByteQueue::get_into`].
    pub async fn get_bytes_into(&self, buf: &mut Vec<u8>) -> Result<(), RecvError> {
        let wait = QueueBell(&self.queue, Interest::Get);
        take(&self.bell, &wait, || {
            Ok(self.queue.as_bytes().try_get_into(buf)?.then_some(()))
        })
        .await
    }

    /// Appends `msg` as raw bytes, waiting while the queue is full. Cancel-safe, as
    /// [`Queue::put`].
    ///
    /// # Errors
    ///
    /// As [`crate::queue::ByteQueue::put`].
    pub async fn put_bytes(&self, msg: &[u8]) -> Result<(), SendError> {
        let wait = QueueBell(&self.queue, Interest::Put);
        give(&self.bell, &wait, || self.queue.as_bytes().try_put(msg)).await
    }

    /// Waits until every message put is finished ([`crate::Queue::join`]).
    ///
    /// Cancel-safe: it changes nothing.
    ///
    /// # Errors
    ///
    /// As [`crate::Queue::join`].
    pub async fn join(&self) -> io::Result<()> {
        loop {
            if self.queue.join_timeout(Duration::ZERO)? {
                return Ok(());
            }
            if until_worth_trying(&self.bell, &QueueBell(&self.queue, Interest::Join)).await? {
                // Same error as the blocking form.
                return self.queue.join();
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Removes and returns the oldest message, waiting while the queue is empty.
    ///
    /// Cancel-safe: a message is taken only in the poll that returns it, so a dropped `get`
    /// leaves every message in the queue.
    ///
    /// # Errors
    ///
    /// As [`crate::Queue::get`].
    pub async fn get(&self) -> Result<T, RecvError> {
        let wait = QueueBell(&self.queue, Interest::Get);
        take(&self.bell, &wait, || self.queue.try_get()).await
    }

    /// Appends `msg`, waiting while the queue is full.
    ///
    /// Cancel-safe: the message is put only in the poll that returns `Ok`, so a dropped `put`
    /// put nothing.
    ///
    /// # Errors
    ///
    /// As [`crate::Queue::put`].
    pub async fn put(&self, msg: &T) -> Result<(), SendError> {
        let wait = QueueBell(&self.queue, Interest::Put);
        give(&self.bell, &wait, || self.queue.try_put(msg)).await
    }
}

struct ReceiverBell<'a, T>(&'a channel::Receiver<T>);

impl<T> Doorbell for ReceiverBell<'_, T> {
    fn arm(&self) -> io::Result<bool> {
        self.0.arm()
    }
    fn registered(&self) -> bool {
        self.0.doorbell_registered()
    }
    fn abandoned(&self) -> bool {
        self.0.is_abandoned()
    }
}

struct SenderBell<'a, T>(&'a channel::Sender<T>);

impl<T> Doorbell for SenderBell<'_, T> {
    fn arm(&self) -> io::Result<bool> {
        self.0.arm()
    }
    fn registered(&self) -> bool {
        self.0.doorbell_registered()
    }
    fn abandoned(&self) -> bool {
        self.0.is_abandoned()
    }
}

/// The receiving end of a [channel](crate::queue::channel) with an async `recv`; waits as
/// [`Queue`] does.
#[derive(Debug)]
pub struct Receiver<T> {
    bell: Bell,
    rx: channel::Receiver<T>,
}

impl<T> Receiver<T> {
    /// Wraps `rx`, registering its doorbell with the current runtime.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    pub fn new(rx: channel::Receiver<T>) -> io::Result<Receiver<T>> {
        rx.own_bell()?;
        Ok(Receiver {
            bell: bell(&rx)?,
            rx,
        })
    }

    /// The sync end.
    pub fn get_ref(&self) -> &channel::Receiver<T> {
        &self.rx
    }

    /// Receives raw bytes into `buf` (replacing its contents), waiting while the channel is
    /// empty. Cancel-safe, as [`Receiver::recv`].
    ///
    /// # Errors
    ///
    /// As [`channel::Receiver::recv`].
    pub async fn recv_bytes_into(&mut self, buf: &mut Vec<u8>) -> Result<(), RecvError> {
        let rx = &self.rx;
        take(&self.bell, &ReceiverBell(rx), || {
            Ok(rx.try_recv_bytes_into(buf)?.then_some(()))
        })
        .await
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Receives a message, waiting while the channel is empty.
    ///
    /// Cancel-safe: a message is taken only in the poll that returns it.
    ///
    /// # Errors
    ///
    /// As [`channel::Receiver::recv`].
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        let rx = &self.rx;
        take(&self.bell, &ReceiverBell(rx), || rx.try_recv()).await
    }
}

/// The sending end of a [channel](crate::queue::channel) with an async `send`; waits as
/// [`Queue`] does.
#[derive(Debug)]
pub struct Sender<T> {
    bell: Bell,
    tx: channel::Sender<T>,
}

impl<T> Sender<T> {
    /// Wraps `tx`, registering its doorbell with the current runtime.
    ///
    /// # Errors
    ///
    /// As [`Queue::new`].
    pub fn new(tx: channel::Sender<T>) -> io::Result<Sender<T>> {
        tx.own_bell()?;
        Ok(Sender {
            bell: bell(&tx)?,
            tx,
        })
    }

    /// The sync end.
    pub fn get_ref(&self) -> &channel::Sender<T> {
        &self.tx
    }

    /// Sends raw bytes, waiting while the channel is full. Cancel-safe, as [`Sender::send`].
    ///
    /// # Errors
    ///
    /// As [`channel::Sender::send`].
    pub async fn send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let tx = &self.tx;
        give(&self.bell, &SenderBell(tx), || tx.try_send_bytes(msg)).await
    }
}

impl<T: Serialize> Sender<T> {
    /// Sends `msg`, waiting while the channel is full.
    ///
    /// Cancel-safe: the message is sent only in the poll that returns `Ok`.
    ///
    /// # Errors
    ///
    /// As [`channel::Sender::send`].
    pub async fn send(&mut self, msg: &T) -> Result<(), SendError> {
        let tx = &self.tx;
        give(&self.bell, &SenderBell(tx), || tx.try_send(msg)).await
    }
}
