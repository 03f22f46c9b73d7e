//! The queue on a JetStream stream: [`AsyncQueue`] and its [`Options`]. See the
//! [module docs](super) for the mapping and the guarantees.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::{AsyncClient, ATTEMPT, RETRY_BUDGET};
use crate::codec::Postcard;
use crate::deadline::Deadline;
use crate::mode::CreationMode;
use crate::queue::{RecvError, SendError};

/// The one durable consumer all handles of a queue share (competing consumers).
const CONSUMER: &str = "ipcbox-workers";
/// The longest single pull request of a blocking `get`.
const PULL_CHUNK: Duration = Duration::from_secs(5);
/// How long past a pull request's expiry the client waits for the server's word that it ended.
const PULL_GRACE: Duration = Duration::from_secs(1);
/// The longest pause between two looks at a full queue or a `join`.
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// The stream a readiness probe says it expects: not a valid queue name, so never the queue's.
const PROBE_STREAM: &str = "ipcbox.probe";
/// Room for the headers of a put (`NATS/1.0`, `Nats-Msg-Id`) in the server's payload limit.
const HEADER_ROOM: usize = 128;

/// The subject a queue's messages are published on.
fn subject_of(name: &str) -> String {
    format!("ipcbox.queue.{name}")
}

/// The stream's only subject once the queue is closed: puts then find no stream.
fn closed_subject_of(name: &str) -> String {
    format!("ipcbox.closed.{name}")
}

/// The core-NATS subject `close` announces itself on, to wake blocked `get`s.
fn close_notice_of(name: &str) -> String {
    format!("ipcbox.close-notice.{name}")
}

/// How a NATS queue is created or opened: capacity, byte capacity, replicas, ack wait, mode.
///
/// The sizes, replicas and ack wait apply when the stream is created; opening an existing
/// queue takes them from the server.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use ipcbox::nats::{Client, Options};
///
/// let client = Client::connect("nats://host1.example:4222,nats://host2.example:4222,nats://host3.example:4222")?;
/// let jobs = Options::new()
///     .capacity(10_000)
///     .replicas(3)
///     .ack_wait(Duration::from_secs(60))
///     .open::<(u64, String)>(&client, "jobs")?;
/// jobs.put(&(1, "first".into()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: usize,
    byte_capacity: Option<usize>,
    replicas: usize,
    ack_wait: Duration,
    mode: CreationMode,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Capacity 1024 messages, no byte bound but the server's, one replica, ack wait 30 s,
    /// open or create.
    pub fn new() -> Options {
        Options {
            capacity: 1024,
            byte_capacity: None,
            replicas: 1,
            ack_wait: Duration::from_secs(30),
            mode: CreationMode::OpenOrCreate,
        }
    }

    /// Most messages in the queue (`maxsize`), counting those taken but not yet done; at
    /// least 1. The stream's `max_msgs`, with discard policy "new".
    pub fn capacity(&mut self, messages: usize) -> &mut Options {
        self.capacity = messages;
        self
    }

    /// Most bytes in the queue (the stream's `max_bytes`, discard "new"), and so the largest
    /// message (its `max_msg_size`): a put of a larger one fails. The server counts each
    /// message's headers and its own bookkeeping too, so leave room beyond the payloads.
    pub fn byte_capacity(&mut self, bytes: usize) -> &mut Options {
        self.byte_capacity = Some(bytes);
        self
    }

    /// Copies of the stream kept by the servers of a cluster (1 to 5): with 3, the queue
    /// survives the loss of one server.
    pub fn replicas(&mut self, replicas: usize) -> &mut Options {
        self.replicas = replicas;
        self
    }

    /// How long a message taken by `get` may go without [`task_done`](AsyncQueue::task_done)
    /// before the server delivers it again, to the next `get` (the consumer's `ack_wait`).
    pub fn ack_wait(&mut self, wait: Duration) -> &mut Options {
        self.ack_wait = wait;
        self
    }

    /// Whether to create the queue, open it, or either (default
    /// [`CreationMode::OpenOrCreate`]).
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    fn check(&self, name: &str) -> io::Result<()> {
        let bad = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad(format!(
                "bad NATS queue name {name:?}: use 1 to 64 ASCII letters, digits, '-' or '_'"
            ));
        }
        if self.capacity == 0 || self.capacity > i64::MAX as usize {
            return bad(format!("bad capacity {} for queue {name}", self.capacity));
        }
        if !(1..=5).contains(&self.replicas) {
            return bad(format!(
                "bad replica count {} for queue {name}: 1 to 5",
                self.replicas
            ));
        }
        if self.ack_wait < Duration::from_millis(1) {
            return bad(format!(
                "ack wait {:?} for queue {name} is too short",
                self.ack_wait
            ));
        }
        Ok(())
    }

    fn stream_config(&self, name: &str) -> stream::Config {
        stream::Config {
            name: name.to_owned(),
            description: Some(format!("ipcbox queue {name}")),
            subjects: vec![subject_of(name)],
            retention: RetentionPolicy::WorkQueue,
            max_messages: self.capacity as i64,
            max_bytes: self
                .byte_capacity
                .map_or(-1, |b| b.min(i64::MAX as usize) as i64),
            // A message larger than the byte capacity could never be stored: refuse it.
            max_message_size: self
                .byte_capacity
                .map_or(-1, |b| b.min(i32::MAX as usize) as i32),
            discard: DiscardPolicy::New,
            storage: StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    /// Creates or opens (per [`Options::mode`]) the queue `name` on `client`'s server.
    ///
    /// # Errors
    ///
    /// `InvalidInput` (bad name or sizes), `NotFound` (opening a queue that does not exist),
    /// `AlreadyExists` (creating one that does), `InvalidData` (a stream of that name that is
    /// not an ipcbox queue), and the server's errors (no JetStream, not enough servers for the
    /// replicas), each naming the queue and the server.
    pub async fn open_async<T>(
        &self,
        client: &AsyncClient,
        name: &str,
    ) -> io::Result<AsyncQueue<T>> {
        self.check(name)?;
        let js = &client.inner.js;
        let existing = match js.get_stream(name).await {
            Ok(s) => Some(s),
            Err(e) if js_code(&e) == Some(ErrorCode::STREAM_NOT_FOUND) => None,
            Err(e) => {
                return Err(server_error(
                    client,
                    &e,
                    format_args!("look up queue {name}"),
                ))
            }
        };
        let stream = match (existing, self.mode) {
            (Some(_), CreationMode::CreateExclusive) => {
                return Err(client.error(
                    io::ErrorKind::AlreadyExists,
                    format_args!("queue {name} already exists"),
                ))
            }
            (None, CreationMode::Open) => {
                return Err(client.error(
                    io::ErrorKind::NotFound,
                    format_args!("there is no queue {name}"),
                ))
            }
            (Some(s), _) => s,
            (None, _) => {
                let mut config = self.stream_config(name);
                if self.mode == CreationMode::CreateExclusive {
                    // Creating a stream that exists with the same configuration succeeds, so
                    // a unique description makes a concurrent creator's stream differ.
                    config.description = Some(format!(
                        "ipcbox queue {name} ({})",
                        client.inner.nats.new_inbox()
                    ));
                }
                match js.create_stream(config).await {
                    Ok(s) => s,
                    // A creator racing ours may make the server answer "subjects overlap"
                    // rather than "name exists": both mean the stream is there now.
                    Err(e)
                        if matches!(
                            js_code(&e),
                            Some(ErrorCode::STREAM_NAME_EXIST | ErrorCode::STREAM_SUBJECT_OVERLAP)
                        ) =>
                    {
                        if self.mode == CreationMode::CreateExclusive {
                            return Err(client.error(
                                io::ErrorKind::AlreadyExists,
                                format_args!("queue {name} already exists"),
                            ));
                        }
                        js.get_stream(name).await.map_err(|e| {
                            server_error(client, &e, format_args!("open queue {name}"))
                        })?
                    }
                    Err(e) => {
                        return Err(server_error(
                            client,
                            &e,
                            format_args!("create queue {name}"),
                        ))
                    }
                }
            }
        };
        let info = stream.cached_info().clone();
        let subjects = &info.config.subjects;
        let open = subjects == &[subject_of(name)];
        let closed = subjects == &[closed_subject_of(name)];
        if info.config.retention != RetentionPolicy::WorkQueue || !(open || closed) {
            return Err(client.error(
                io::ErrorKind::InvalidData,
                format_args!("stream {name} is not an ipcbox queue (subjects {subjects:?})"),
            ));
        }
        let capacity = usize::try_from(info.config.max_messages).unwrap_or(usize::MAX);
        serving(client, name, &subjects[0]).await?;
        let consumer = stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_deliver: -1,
                    max_ack_pending: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                server_error(
                    client,
                    &e,
                    format_args!("open the consumer of queue {name}"),
                )
            })?;
        Ok(AsyncQueue {
            shared: Arc::new(Shared {
                client: client.clone(),
                name: name.to_owned(),
                subject: subject_of(name),
                capacity,
                consumer,
                closed: AtomicBool::new(closed),
                id_prefix: client.inner.nats.new_inbox().replace("_INBOX.", ""),
                next_id: AtomicU64::new(0),
            }),
            taken: Mutex::new(VecDeque::new()),
            _marker: PhantomData,
        })
    }

    /// [`Options::open_async`] with a blocking [`Client`](super::Client).
    ///
    /// # Errors
    ///
    /// As [`Options::open_async`].
    pub fn open<T>(&self, client: &super::Client, name: &str) -> io::Result<super::Queue<T>> {
        let queue = client.rt.block_on(self.open_async(&client.inner, name))?;
        Ok(super::Queue::wrap(client.clone(), queue))
    }
}

/// Returns once the stream of queue `name` answers a publish on `subject`, which it does only
/// once it is fully set up: before that, a consumer created on it may never deliver.
async fn serving(client: &AsyncClient, name: &str, subject: &str) -> io::Result<()> {
    // nats-server before 2.9.15 lists a new stream before it can send, and a consumer created
    // in that moment (by another process opening the queue) copies its missing send queue: it
    // takes messages and pull requests and answers none. The probe names another stream, so
    // the server refuses it (through the send queue, once there is one) and stores nothing.
    let mut subject = subject.to_owned();
    let give_up = Instant::now() + RETRY_BUDGET;
    let mut pause = Duration::from_millis(1);
    loop {
        let probe = PublishMessage::build().expected_stream(PROBE_STREAM);
        let res = match client
            .inner
            .js_put
            .send_publish(subject.clone(), probe)
            .await
        {
            Ok(ack) => ack.await.map(drop),
            Err(e) => Err(e),
        };
        let e = match res {
            // Stored: cannot happen (stream names have no dots), but the stream did answer.
            Ok(()) => return Ok(()),
            Err(e) if js_code(&e).is_some() => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= give_up {
            return Err(server_error(
                client,
                &e,
                format_args!("queue {name}: the stream does not answer"),
            ));
        }
        if e.kind() == PublishErrorKind::StreamNotFound {
            // Not listening yet, or closed meanwhile (its subject renamed).
            if let Ok(s) = client.inner.js.get_stream(name).await {
                if let Some(current) = s.cached_info().config.subjects.first() {
                    subject = current.clone();
                }
            }
        }
        tokio::time::sleep(backoff(&mut pause, Deadline::Forever).unwrap_or(MAX_BACKOFF)).await;
    }
}

/// What the handles of one queue share.
struct Shared {
    client: AsyncClient,
    name: String,
    subject: String,
    capacity: usize,
    consumer: PullConsumer,
    /// Seen closed once: closing cannot be undone.
    closed: AtomicBool,
    /// Message IDs are this handle's unique prefix and a counter.
    id_prefix: String,
    next_id: AtomicU64,
}

/// A queue of `T` on a NATS JetStream stream, shared by processes on any host that reach the
/// server; for async code on a tokio runtime. [`Queue`](super::Queue) is the blocking face.
///
/// The methods and their outcomes are the local [`Queue`](crate::Queue)'s: `try_`,
/// `_timeout` and `_deadline` forms return "not now" as `Ok(false)` or `Ok(None)`. See the
/// [module docs](super) for the guarantees and how they differ.
///
/// Each handle keeps the messages it took and has not finished; [`AsyncQueue::task_done`]
/// finishes the oldest of them. A [`clone`](Clone::clone) shares the connection and has
/// none taken, so give each concurrent worker its own clone.
pub struct AsyncQueue<T> {
    shared: Arc<Shared>,
    taken: Mutex<VecDeque<jetstream::Message>>,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T> Clone for AsyncQueue<T> {
    fn clone(&self) -> AsyncQueue<T> {
        AsyncQueue {
            shared: self.shared.clone(),
            taken: Mutex::new(VecDeque::new()),
            _marker: PhantomData,
        }
    }
}

impl<T> fmt::Debug for AsyncQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncQueue")
            .field("name", &self.shared.name)
            .field("servers", &self.shared.client.servers())
            .finish_non_exhaustive()
    }
}

/// The JetStream API error code behind `e`, if the server answered with one.
fn js_code(e: &(dyn StdError + 'static)) -> Option<ErrorCode> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(js) = err.downcast_ref::<jetstream::Error>() {
            return Some(js.error_code());
        }
        // Some of the client's error kinds hold the server's error instead of pointing to it
        // as their source; its text ends "(code N, error code C)".
        let text = err.to_string();
        if let Some(at) = text.rfind("error code ") {
            let digits: String = text[at + 11..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(code) = digits.parse() {
                return Some(ErrorCode(code));
            }
        }
        cur = err.source();
    }
    None
}

/// An `io::Error` for a failed server request, naming what was done and the server.
fn server_error(
    client: &AsyncClient,
    e: &(dyn StdError + 'static),
    what: fmt::Arguments<'_>,
) -> io::Error {
    let kind = match js_code(e) {
        Some(ErrorCode::STREAM_NOT_FOUND) => io::ErrorKind::NotFound,
        Some(_) => io::ErrorKind::Other,
        None if e.to_string().contains("timed out") => io::ErrorKind::TimedOut,
        None => io::ErrorKind::Other,
    };
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text = format!("{text}: {s}");
        src = s.source();
    }
    client.error(kind, format_args!("{what}: {text}"))
}

/// Whether a publish was refused because the stream holds its maximum (discard "new").
fn is_full(e: &(dyn StdError + 'static)) -> bool {
    js_code(e) == Some(ErrorCode::STREAM_STORE_FAILED) && {
        let text = format!("{}", e.source().unwrap_or(e));
        text.contains("maximum messages") || text.contains("maximum bytes")
    }
}

/// Errors a caller bears for a while before failing: a cluster electing a leader, a client
/// reconnecting to another server.
#[derive(Default)]
struct Trouble {
    since: Option<Instant>,
}

impl Trouble {
    /// `Ok` (after a pause) while the trouble is younger than [`RETRY_BUDGET`], else `e`.
    async fn bear(&mut self, e: io::Error) -> Result<(), RecvError> {
        if self.since.get_or_insert_with(Instant::now).elapsed() >= RETRY_BUDGET {
            return Err(RecvError::Failed(e));
        }
        tokio::time::sleep(MAX_BACKOFF).await;
        Ok(())
    }
}

/// The next pause of a caller that looks again at something it cannot wait on: doubling up
/// to [`MAX_BACKOFF`], never past `deadline`; `None` once the deadline has passed.
fn backoff(pause: &mut Duration, deadline: Deadline) -> Option<Duration> {
    let this = *pause;
    *pause = (*pause * 2).min(MAX_BACKOFF);
    deadline.slice(this)
}

impl<T> AsyncQueue<T> {
    /// The queue's name (its stream's name).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The servers the queue was opened on.
    pub fn servers(&self) -> &str {
        self.shared.client.servers()
    }

    /// Most messages the queue holds (its stream's `max_msgs`).
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// The largest encoded message a put accepts: the server's max payload less room for the
    /// headers.
    pub fn max_message_size(&self) -> usize {
        self.shared.client.max_payload().saturating_sub(HEADER_ROOM)
    }

    fn error(&self, kind: io::ErrorKind, what: fmt::Arguments<'_>) -> io::Error {
        self.shared
            .client
            .error(kind, format_args!("queue {}: {what}", self.shared.name))
    }

    fn server_error(&self, e: &(dyn StdError + 'static), what: &str) -> io::Error {
        server_error(
            &self.shared.client,
            e,
            format_args!("queue {}: {what}", self.shared.name),
        )
    }

    async fn stream_info(&self) -> io::Result<stream::Info> {
        let js = &self.shared.client.inner.js;
        let stream = js
            .get_stream(&self.shared.name)
            .await
            .map_err(|e| self.server_error(&e, "look up the stream"))?;
        Ok(stream.cached_info().clone())
    }

    /// Whether the queue was closed, asking the server unless this handle saw it closed.
    async fn closed_now(&self) -> io::Result<bool> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let info = self.stream_info().await?;
        let closed = info.config.subjects == [closed_subject_of(&self.shared.name)];
        if closed {
            self.shared.closed.store(true, Ordering::Relaxed);
        }
        Ok(closed)
    }

    /// Publishes one encoded message under the message ID `id`, retrying what may have been
    /// lost (no answer, the connection, a cluster electing a leader) with the same ID, which
    /// the server deduplicates. `Ok(false)`: the queue is full.
    async fn publish_once(&self, payload: &[u8], id: &str) -> Result<bool, SendError> {
        let give_up = Instant::now() + RETRY_BUDGET;
        let mut pause = Duration::from_millis(1);
        loop {
            let js = &self.shared.client.inner.js_put;
            let publish = PublishMessage::build()
                .payload(payload.to_vec().into())
                .message_id(id);
            let res = match js.send_publish(self.shared.subject.clone(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            let e = match res {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            if is_full(&e) {
                return Ok(false);
            }
            let transient = match e.kind() {
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => true,
                PublishErrorKind::StreamNotFound => {
                    // No stream listens on the subject: closed, deleted, or between leaders
                    // (when even a lookup may say "not found" for a while).
                    match self.closed_now().await {
                        Ok(true) => return Err(SendError::Disconnected),
                        Ok(false) => true,
                        Err(lookup) if Instant::now() >= give_up => {
                            return Err(SendError::Failed(lookup))
                        }
                        Err(_) => true,
                    }
                }
                PublishErrorKind::Other => js_code(&e).is_none_or(|c| {
                    // 503s and cluster errors pass while a leader is elected.
                    c == ErrorCode::CLUSTER_NOT_AVAILABLE || c == ErrorCode::CLUSTER_INCOMPLETE
                }),
                _ => false,
            };
            if !transient || Instant::now() >= give_up {
                return Err(SendError::Failed(self.server_error(&e, "put")));
            }
            tokio::time::sleep(backoff(&mut pause, Deadline::Forever).unwrap_or(MAX_BACKOFF)).await;
        }
    }

    /// The put of every form: waits for room until `deadline`.
    async fn put_until(&self, payload: &[u8], deadline: Deadline) -> Result<bool, SendError> {
        let size = payload.len() + HEADER_ROOM;
        self.shared
            .client
            .check_size(size, format_args!("put on queue {}", self.shared.name))
            .map_err(SendError::Failed)?;
        // One ID for every attempt of this put, so that a retry is never stored twice.
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}.{n}", self.shared.id_prefix);
        let mut pause = Duration::from_millis(1);
        loop {
            if self.publish_once(payload, &id).await? {
                return Ok(true);
            }
            // Full: nothing announces room, so look again after a pause.
            match backoff(&mut pause, deadline) {
                None => return Ok(false),
                Some(p) => tokio::time::sleep(p).await,
            }
        }
    }

    /// Whether every message is gone but those this handle holds, on a closed queue: the
    /// point where a `get` reports `Disconnected`.
    async fn drained(&self) -> Result<bool, RecvError> {
        if !self.closed_now().await.map_err(RecvError::Failed)? {
            return Ok(false);
        }
        let mut consumer = self.shared.consumer.clone();
        let info = consumer
            .info()
            .await
            .map_err(|e| RecvError::Failed(self.server_error(&e, "look up the consumer")))?;
        let own = self.taken.lock().map_or(0, |t| t.len());
        Ok(info.num_pending == 0 && info.num_ack_pending <= own)
    }

    /// The get of every form: one message, waiting until `deadline`.
    async fn get_raw(&self, deadline: Deadline) -> Result<Option<jetstream::Message>, RecvError> {
        let client = &self.shared.client.inner.nats;
        let mut notices = None;
        let mut trouble = Trouble::default();
        loop {
            let wait = match deadline.remaining() {
                None => PULL_CHUNK,
                Some(left) => left.min(PULL_CHUNK),
            };
            let consumer = &self.shared.consumer;
            let pulled = if wait < Duration::from_millis(1) {
                consumer.fetch().max_messages(1).messages().await
            } else {
                if notices.is_none() {
                    let notice = close_notice_of(&self.shared.name);
                    notices = client.subscribe(notice).await.ok();
                }
                consumer
                    .batch()
                    .max_messages(1)
                    .expires(wait)
                    .messages()
                    .await
            };
            let mut batch = match pulled {
                Ok(b) => b,
                Err(e) => {
                    trouble.bear(self.server_error(&e, "get")).await?;
                    continue;
                }
            };
            let limit = tokio::time::sleep(wait + PULL_GRACE);
            tokio::pin!(limit);
            let got = loop {
                tokio::select! {
                    next = batch.next() => break next,
                    _ = &mut limit => break None,
                    Some(_) = async {
                        match notices.as_mut() {
                            Some(n) => n.next().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        // Closed meanwhile: give up only if nothing can come any more, since a
                        // message the server sends to an abandoned pull returns only after the
                        // ack wait.
                        if let Ok(true) = self.drained().await {
                            return Err(RecvError::Disconnected);
                        }
                    }
                }
            };
            match got {
                Some(Ok(msg)) => return Ok(Some(msg)),
                // A status from the server (a leader change, say): ask again.
                Some(Err(e)) => trouble.bear(self.server_error(&*e, "get")).await?,
                None => match self.drained().await {
                    Ok(true) => return Err(RecvError::Disconnected),
                    Ok(false) if deadline.has_passed() => return Ok(None),
                    Ok(false) => trouble = Trouble::default(),
                    Err(RecvError::Failed(e)) => trouble.bear(e).await?,
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// Records `msg` as taken and decodes it; an undecodable message is finished (never
    /// delivered again) and reported.
    async fn take(&self, msg: jetstream::Message) -> Result<T, RecvError>
    where
        T: DeserializeOwned,
    {
        match Postcard::decode_from::<T>(&msg.payload) {
            Ok(value) => {
                if let Ok(mut taken) = self.taken.lock() {
                    taken.push_back(msg);
                }
                Ok(value)
            }
            Err(e) => {
                let _ = msg.ack_with(jetstream::AckKind::Term).await;
                Err(RecvError::Failed(self.error(
                    io::ErrorKind::InvalidData,
                    format_args!(
                        "a message of {} bytes does not decode as {} (it was dropped): {e}",
                        msg.payload.len(),
                        std::any::type_name::<T>()
                    ),
                )))
            }
        }
    }

    async fn get_until(&self, deadline: Deadline) -> Result<Option<T>, RecvError>
    where
        T: DeserializeOwned,
    {
        match self.get_raw(deadline).await? {
            Some(msg) => self.take(msg).await.map(Some),
            None => Ok(None),
        }
    }
}

impl<T: Serialize> AsyncQueue<T> {
    fn encode(&self, msg: &T) -> Result<Vec<u8>, SendError> {
        let mut buf = Vec::new();
        Postcard::encode_to(msg, &mut buf).map_err(|e| {
            SendError::Failed(self.error(io::ErrorKind::InvalidInput, format_args!("{e}")))
        })?;
        Ok(buf)
    }

    /// Appends `msg`, waiting while the queue is full; returns once the server has stored it
    /// (on a quorum of the replicas).
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] once the queue is closed; [`SendError::Failed`] for a
    /// message over the server's max payload, a deleted queue, or a server that did not
    /// answer within 30 s of retries (the message may then have been stored).
    pub async fn put(&self, msg: &T) -> Result<(), SendError> {
        let payload = self.encode(msg)?;
        self.put_until(&payload, Deadline::Forever).await.map(drop)
    }

    /// Appends `msg` if there is room now; `Ok(false)` if the queue is full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub async fn try_put(&self, msg: &T) -> Result<bool, SendError> {
        let payload = self.encode(msg)?;
        self.put_until(&payload, Deadline::Now).await
    }

    /// Appends `msg`, waiting at most `timeout` for room; `Ok(false)` if the queue stayed
    /// full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub async fn put_timeout(&self, msg: &T, timeout: Duration) -> Result<bool, SendError> {
        let payload = self.encode(msg)?;
        self.put_until(&payload, Deadline::after(timeout)).await
    }

    /// Appends `msg`, waiting until `deadline` at most for room; `Ok(false)` if the queue
    /// stayed full.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::put`].
    pub async fn put_deadline(&self, msg: &T, deadline: Instant) -> Result<bool, SendError> {
        let payload = self.encode(msg)?;
        self.put_until(&payload, Deadline::At(deadline)).await
    }
}

impl<T: DeserializeOwned> AsyncQueue<T> {
    /// Takes the oldest message, waiting while the queue is empty. The message stays on the
    /// server, delivered to no one else, until [`AsyncQueue::task_done`] or the ack wait.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the queue is closed and holds nothing but the
    /// messages this handle took; [`RecvError::Failed`] for a message that does not decode
    /// as `T` (it is dropped), a deleted queue, or a server that stays away for 30 s.
    pub async fn get(&self) -> Result<T, RecvError> {
        super::waited(self.get_until(Deadline::Forever).await)
    }

    /// Takes the oldest message if there is one now; `Ok(None)` if the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub async fn try_get(&self) -> Result<Option<T>, RecvError> {
        self.get_until(Deadline::Now).await
    }

    /// Takes the oldest message, waiting at most `timeout` for one; `Ok(None)` if the queue
    /// stayed empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, RecvError> {
        self.get_until(Deadline::after(timeout)).await
    }

    /// Takes the oldest message, waiting until `deadline` at most for one; `Ok(None)` if the
    /// queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::get`].
    pub async fn get_deadline(&self, deadline: Instant) -> Result<Option<T>, RecvError> {
        self.get_until(Deadline::At(deadline)).await
    }
}

impl<T> AsyncQueue<T> {
    /// Finishes the oldest message this handle took and has not finished: acknowledges it and
    /// waits for the server's confirmation, after which it is removed and never delivered
    /// again.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if this handle has no unfinished message; `TimedOut` if the server did
    /// not confirm within 30 s of retries (the message may then be delivered again).
    pub async fn task_done(&self) -> io::Result<()> {
        let msg = self.taken.lock().ok().and_then(|mut t| t.pop_front());
        let Some(msg) = msg else {
            return Err(self.error(
                io::ErrorKind::InvalidInput,
                format_args!("task_done called more times than this handle took messages"),
            ));
        };
        let Some(reply) = msg.reply.clone() else {
            return Err(self.error(
                io::ErrorKind::InvalidData,
                format_args!("a message without an acknowledgement subject"),
            ));
        };
        let nats = &self.shared.client.inner.nats;
        let mut trouble = Trouble::default();
        loop {
            // An acknowledgement the server confirms (AckSync); a lost one is sent again, which
            // is harmless: acknowledging twice is acknowledging once.
            let request = async_nats::Request::new()
                .payload(b"+ACK".as_slice().into())
                .timeout(Some(ATTEMPT));
            match nats.send_request(reply.clone(), request).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = self.error(
                        io::ErrorKind::TimedOut,
                        format_args!("the server did not confirm task_done: {e}"),
                    );
                    if let Err(RecvError::Failed(e)) = trouble.bear(e).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// How many messages this handle took and has not finished.
    pub fn unfinished(&self) -> usize {
        self.taken.lock().map_or(0, |t| t.len())
    }

    async fn join_until(&self, deadline: Deadline) -> io::Result<bool> {
        let mut pause = Duration::from_millis(1);
        let mut trouble = Trouble::default();
        loop {
            match self.stream_info().await {
                Ok(info) if info.state.messages == 0 => return Ok(true),
                Ok(_) => trouble = Trouble::default(),
                Err(e) => {
                    if let Err(RecvError::Failed(e)) = trouble.bear(e).await {
                        return Err(e);
                    }
                    continue;
                }
            }
            // Nothing announces the last acknowledgement, so look again after a pause.
            match backoff(&mut pause, deadline) {
                None => return Ok(false),
                Some(p) => tokio::time::sleep(p).await,
            }
        }
    }

    /// Waits until every message put has been taken and finished with `task_done` (by any
    /// handle, on any host): until the stream is empty.
    ///
    /// # Errors
    ///
    /// The server's errors, naming it.
    pub async fn join(&self) -> io::Result<()> {
        self.join_until(Deadline::Forever).await.map(drop)
    }

    /// Like [`AsyncQueue::join`] for at most `timeout`; `Ok(false)` if work is still
    /// unfinished then.
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::join`].
    pub async fn join_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.join_until(Deadline::after(timeout)).await
    }

    /// The number of messages waiting to be taken (not counting those taken and not yet
    /// finished); approximate, since others change it concurrently.
    ///
    /// # Errors
    ///
    /// The server's errors, naming it.
    pub async fn len(&self) -> io::Result<usize> {
        let mut consumer = self.shared.consumer.clone();
        let info = consumer
            .info()
            .await
            .map_err(|e| self.server_error(&e, "look up the consumer"))?;
        Ok(usize::try_from(info.num_pending).unwrap_or(usize::MAX))
    }

    /// Whether no message waits to be taken (approximate).
    ///
    /// # Errors
    ///
    /// As [`AsyncQueue::len`].
    pub async fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Closes the queue for every process on every host: later puts fail with
    /// `Disconnected`; gets drain what is left, then fail with `Disconnected`. Wakes the gets
    /// that wait. Closing a closed queue does nothing.
    ///
    /// # Errors
    ///
    /// The server's errors, naming it.
    pub async fn close(&self) -> io::Result<()> {
        let mut config = self.stream_info().await?.config;
        let closed = vec![closed_subject_of(&self.shared.name)];
        if config.subjects != closed {
            config.subjects = closed;
            self.shared
                .client
                .inner
                .js
                .update_stream(&config)
                .await
                .map_err(|e| self.server_error(&e, "close"))?;
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        let nats = &self.shared.client.inner.nats;
        let notice = close_notice_of(&self.shared.name);
        nats.publish(notice, Vec::new().into())
            .await
            .map_err(|e| self.server_error(&e, "announce the close"))?;
        nats.flush()
            .await
            .map_err(|e| self.server_error(&e, "announce the close"))
    }

    /// Whether the queue was closed (by any process).
    ///
    /// # Errors
    ///
    /// The server's errors, naming it.
    pub async fn is_closed(&self) -> io::Result<bool> {
        self.closed_now().await
    }

    /// Deletes the queue from the server, with every message in it. Other handles' operations
    /// fail afterwards.
    ///
    /// # Errors
    ///
    /// The server's errors, naming it.
    pub async fn delete(self) -> io::Result<()> {
        self.shared
            .client
            .inner
            .js
            .delete_stream(&self.shared.name)
            .await
            .map(drop)
            .map_err(|e| self.server_error(&e, "delete"))
    }
}
