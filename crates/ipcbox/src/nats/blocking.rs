//! [`Queue`]: the blocking face of [`AsyncQueue`], on its client's private runtime.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::Client;
use super::queue::{AsyncQueue, Options};
use crate::mode::CreationMode;
use crate::queue::{RecvError, SendError};

/// A queue of `T` on a NATS JetStream stream, shared by processes on any host that reach the
/// server, with the local [`Queue`](crate::Queue)'s blocking API: `put`/`get` with `try_`,
/// `_timeout` and `_deadline` forms, `task_done`/`join`, `len`, `close`.
///
/// See the [module docs](super) for the delivery guarantee and how it differs from the local
/// queue's. Each handle keeps the messages it took and has not finished;
/// [`Queue::task_done`] finishes the oldest of them, so give each worker thread its own
/// [`clone`](Clone::clone) (clones share the connection).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use ipcbox::nats::Queue;
///
/// let jobs: Queue<(u32, String)> = Queue::create("nats://127.0.0.1:4222", "jobs", 100)?;
/// jobs.put(&(7, "work".to_owned()))?;
/// let job = jobs.get_timeout(Duration::from_secs(1))?;
/// assert_eq!(job, Some((7, "work".to_owned())));
/// jobs.task_done()?; // the acknowledgement: it will not be delivered again
/// assert_eq!(jobs.try_get()?, None); // "not now" is a value, never an error
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    client: Client,
    queue: AsyncQueue<T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue {
            client: self.client.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.queue.name())
            .field("servers", &self.queue.servers())
            .finish_non_exhaustive()
    }
}

impl<T> Queue<T> {
    pub(crate) fn wrap(client: Client, queue: AsyncQueue<T>) -> Queue<T> {
        Queue { client, queue }
    }

    /// Creates the queue `name` of at most `capacity` messages on the server at `urls`
    /// (fails if it exists), on a connection of its own (other settings as [`Options::new`]).
    ///
    /// # Errors
    ///
    /// As [`Client::connect`] and [`Options::open`].
    pub fn create(urls: &str, name: &str, capacity: usize) -> io::Result<Queue<T>> {
        let client = Client::connect(urls)?;
        Options::new()
            .capacity(capacity)
            .mode(CreationMode::CreateExclusive)
            .open(&client, name)
    }

    /// Opens the existing queue `name` on the server at `urls`, on a connection of its own.
    ///
    /// # Errors
    ///
    /// As [`Client::connect`] and [`Options::open`]; `NotFound` if there is no such queue.
    pub fn open(urls: &str, name: &str) -> io::Result<Queue<T>> {
        let client = Client::connect(urls)?;
        Options::new().mode(CreationMode::Open).open(&client, name)
    }

    /// The async face of this queue (for code on a tokio runtime of its own).
    pub fn as_async(&self) -> &AsyncQueue<T> {
        &self.queue
    }

    /// As [`AsyncQueue::name`].
    pub fn name(&self) -> &str {
        self.queue.name()
    }

    /// As [`AsyncQueue::servers`].
    pub fn servers(&self) -> &str {
        self.queue.servers()
    }

    /// As [`AsyncQueue::capacity`].
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// As [`AsyncQueue::max_message_size`].
    pub fn max_message_size(&self) -> usize {
        self.queue.max_message_size()
    }

    /// As [`AsyncQueue::task_done`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::task_done`].
    pub fn task_done(&self) -> io::Result<()> {
        self.client.rt.block_on(self.queue.task_done())
    }

    /// As [`AsyncQueue::unfinished`].
    pub fn unfinished(&self) -> usize {
        self.queue.unfinished()
    }

    /// As [`AsyncQueue::join`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::join`].
    pub fn join(&self) -> io::Result<()> {
        self.client.rt.block_on(self.queue.join())
    }

    /// As [`AsyncQueue::join_timeout`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::join`].
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.client.rt.block_on(self.queue.join_timeout(timeout))
    }

    /// As [`AsyncQueue::len`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::len`].
    #[doc(alias = "qsize")]
    pub fn len(&self) -> io::Result<usize> {
        self.client.rt.block_on(self.queue.len())
    }

    /// As [`AsyncQueue::is_empty`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::len`].
    pub fn is_empty(&self) -> io::Result<bool> {
        self.client.rt.block_on(self.queue.is_empty())
    }

    /// As [`AsyncQueue::close`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::close`].
    pub fn close(&self) -> io::Result<()> {
        self.client.rt.block_on(self.queue.close())
    }

    /// As [`AsyncQueue::is_closed`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::is_closed`].
    pub fn is_closed(&self) -> io::Result<bool> {
        self.client.rt.block_on(self.queue.is_closed())
    }

    /// As [`AsyncQueue::delete`].
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::delete`].
    pub fn delete(self) -> io::Result<()> {
        self.client.rt.block_on(self.queue.delete())
    }
}

impl<T: Serialize> Queue<T> {
    /// As [`AsyncQueue::put`]: appends `msg`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub fn put(&self, msg: &T) -> Result<(), SendError> {
        self.client.rt.block_on(self.queue.put(msg))
    }

    /// As [`AsyncQueue::try_put`]: `Ok(false)` if the queue is full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub fn try_put(&self, msg: &T) -> Result<bool, SendError> {
        self.client.rt.block_on(self.queue.try_put(msg))
    }

    /// As [`AsyncQueue::put_timeout`]: `Ok(false)` if the queue stayed full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub fn put_timeout(&self, msg: &T, timeout: Duration) -> Result<bool, SendError> {
        self.client
            .rt
            .block_on(self.queue.put_timeout(msg, timeout))
    }

    /// As [`AsyncQueue::put_deadline`]: `Ok(false)` if the queue stayed full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub fn put_deadline(&self, msg: &T, deadline: Instant) -> Result<bool, SendError> {
        self.client
            .rt
            .block_on(self.queue.put_deadline(msg, deadline))
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// As [`AsyncQueue::get`]: takes the oldest message, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub fn get(&self) -> Result<T, RecvError> {
        self.client.rt.block_on(self.queue.get())
    }

    /// As [`AsyncQueue::try_get`]: `Ok(None)` if the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub fn try_get(&self) -> Result<Option<T>, RecvError> {
        self.client.rt.block_on(self.queue.try_get())
    }

    /// As [`AsyncQueue::get_timeout`]: `Ok(None)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, RecvError> {
        self.client.rt.block_on(self.queue.get_timeout(timeout))
    }

    /// As [`AsyncQueue::get_deadline`]: `Ok(None)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub fn get_deadline(&self, deadline: Instant) -> Result<Option<T>, RecvError> {
        self.client.rt.block_on(self.queue.get_deadline(deadline))
    }
}
