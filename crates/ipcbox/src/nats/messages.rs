//! Typed messages over core NATS: publish/subscribe and request/reply, with the codecs of
//! local connections ([`crate::codec`]); the payload of a NATS message is the codec's payload
//! (`WIRE.md`, "Over NATS").

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::{AsyncClient, Client, Runtime};
use crate::codec::{Codec, Postcard};
use crate::deadline::Deadline;
use crate::queue::{RecvError, SendError};

/// The queue group of [`AsyncClient::serve`]: each request goes to one responder.
const RESPONDERS: &str = "ipcbox-responders";

/// Runs `f` until `deadline`: `None` if it did not finish by then (it is polled once for
/// [`Deadline::Now`]).
async fn until<F: std::future::Future>(deadline: Deadline, f: F) -> Option<F::Output> {
    match deadline {
        Deadline::Forever => Some(f.await),
        Deadline::Now => tokio::time::timeout(Duration::ZERO, f).await.ok(),
        Deadline::At(at) => tokio::time::timeout_at(at.into(), f).await.ok(),
    }
}

/// `msg` encoded with `codec`, or an error naming the subject.
fn encode_with<M, C: Codec<M>>(
    client: &AsyncClient,
    codec: &mut C,
    msg: &M,
    subject: &str,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    codec.encode(msg, &mut buf).map_err(|e| {
        client.error(
            io::ErrorKind::InvalidInput,
            format_args!("subject {subject}: {e}"),
        )
    })?;
    Ok(buf)
}

/// `msg` encoded with [`Postcard`] (which needs only `Serialize` to encode).
fn encode_postcard<M: Serialize>(
    client: &AsyncClient,
    msg: &M,
    subject: &str,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    Postcard::encode_to(msg, &mut buf).map_err(|e| {
        client.error(
            io::ErrorKind::InvalidInput,
            format_args!("subject {subject}: {e}"),
        )
    })?;
    Ok(buf)
}

/// A reply that did not decode, as an error naming the subject.
fn bad_reply(client: &AsyncClient, subject: &str, e: impl fmt::Display) -> RecvError {
    RecvError::Failed(client.error(
        io::ErrorKind::InvalidData,
        format_args!("reply on subject {subject}: {e}"),
    ))
}

impl AsyncClient {
    /// Publishes `msg` on `subject`, encoded with [`Postcard`], to whoever subscribes now
    /// (core NATS: at most once, nothing is stored). Returns once the message is handed to the
    /// connection; [`AsyncClient::flush`] waits for the server to have it.
    ///
    /// # Errors
    ///
    /// [`SendError::Failed`] for a message that does not encode or is over the server's max
    /// payload, or a closed connection.
    pub async fn publish<T: Serialize>(&self, subject: &str, msg: &T) -> Result<(), SendError> {
        let buf = encode_postcard(self, msg, subject).map_err(SendError::Failed)?;
        self.publish_bytes(subject, buf).await
    }

    /// [`AsyncClient::publish`] with another codec.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::publish`].
    pub async fn publish_with<T, C: Codec<T>>(
        &self,
        subject: &str,
        msg: &T,
        codec: &mut C,
    ) -> Result<(), SendError> {
        let buf = encode_with(self, codec, msg, subject).map_err(SendError::Failed)?;
        self.publish_bytes(subject, buf).await
    }

    async fn publish_bytes(&self, subject: &str, buf: Vec<u8>) -> Result<(), SendError> {
        self.check_size(buf.len(), format_args!("publish on subject {subject}"))
            .map_err(SendError::Failed)?;
        self.inner
            .nats
            .publish(subject.to_owned(), buf.into())
            .await
            .map_err(|e| {
                SendError::Failed(self.error(
                    io::ErrorKind::InvalidInput,
                    format_args!("publish on subject {subject}: {e}"),
                ))
            })
    }

    /// Subscribes to `subject` (wildcards `*` and `>` allowed) for messages of type `T`
    /// encoded with [`Postcard`].
    ///
    /// # Errors
    ///
    /// A bad subject or a closed connection.
    pub async fn subscribe<T>(&self, subject: &str) -> io::Result<AsyncSubscriber<T>> {
        self.subscribe_with(subject, Postcard).await
    }

    /// [`AsyncClient::subscribe`] with another codec.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub async fn subscribe_with<T, C>(
        &self,
        subject: &str,
        codec: C,
    ) -> io::Result<AsyncSubscriber<T, C>> {
        Ok(AsyncSubscriber {
            incoming: Incoming::new(self, subject, None, codec).await?,
            _marker: PhantomData,
        })
    }

    /// Serves requests of type `Q` ([`Postcard`]) on `subject`. Responders of one subject
    /// share the requests: each goes to one of them (a NATS queue group).
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub async fn serve<Q>(&self, subject: &str) -> io::Result<AsyncResponder<Q>> {
        self.serve_with(subject, Postcard).await
    }

    /// [`AsyncClient::serve`] with another codec, for requests and replies.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub async fn serve_with<Q, C>(
        &self,
        subject: &str,
        codec: C,
    ) -> io::Result<AsyncResponder<Q, C>> {
        Ok(AsyncResponder {
            incoming: Incoming::new(self, subject, Some(RESPONDERS), codec).await?,
            _marker: PhantomData,
        })
    }

    /// Sends the request `req` on `subject` and waits for one reply, both [`Postcard`].
    ///
    /// # Errors
    ///
    /// [`RecvError::Failed`]: `NotFound` when no responder listens on `subject`;
    /// `InvalidData` for a reply that does not decode as `R`; a request over the max payload;
    /// a closed connection.
    pub async fn request<Q: Serialize, R: DeserializeOwned>(
        &self,
        subject: &str,
        req: &Q,
    ) -> Result<R, RecvError> {
        super::waited(self.request_postcard(subject, req, None).await)
    }

    /// [`AsyncClient::request`], waiting at most `timeout` for the reply; `Ok(None)` if none
    /// came.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub async fn request_timeout<Q: Serialize, R: DeserializeOwned>(
        &self,
        subject: &str,
        req: &Q,
        timeout: Duration,
    ) -> Result<Option<R>, RecvError> {
        let deadline = Instant::now().checked_add(timeout);
        self.request_postcard(subject, req, deadline).await
    }

    /// [`AsyncClient::request`], waiting until `deadline` at most for the reply; `Ok(None)` if
    /// none came.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub async fn request_deadline<Q: Serialize, R: DeserializeOwned>(
        &self,
        subject: &str,
        req: &Q,
        deadline: Instant,
    ) -> Result<Option<R>, RecvError> {
        self.request_postcard(subject, req, Some(deadline)).await
    }

    async fn request_postcard<Q: Serialize, R: DeserializeOwned>(
        &self,
        subject: &str,
        req: &Q,
        deadline: Option<Instant>,
    ) -> Result<Option<R>, RecvError> {
        let buf = encode_postcard(self, req, subject).map_err(RecvError::Failed)?;
        match self.request_bytes(subject, buf, deadline).await? {
            Some(reply) => Postcard::decode_from(&reply.payload)
                .map(Some)
                .map_err(|e| bad_reply(self, subject, e)),
            None => Ok(None),
        }
    }

    /// A request with any codec, waiting until `deadline` (for ever if `None`); `Ok(None)` if
    /// no reply came by then.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub async fn request_with<Q, R, C>(
        &self,
        subject: &str,
        req: &Q,
        codec: &mut C,
        deadline: Option<Instant>,
    ) -> Result<Option<R>, RecvError>
    where
        C: Codec<Q> + Codec<R>,
    {
        let buf = encode_with(self, codec, req, subject).map_err(RecvError::Failed)?;
        match self.request_bytes(subject, buf, deadline).await? {
            Some(reply) => Codec::<R>::decode(codec, &reply.payload)
                .map(Some)
                .map_err(|e| bad_reply(self, subject, e)),
            None => Ok(None),
        }
    }

    /// Sends the request `buf` and waits for the reply until `deadline`.
    async fn request_bytes(
        &self,
        subject: &str,
        buf: Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<Option<async_nats::Message>, RecvError> {
        self.check_size(buf.len(), format_args!("request on subject {subject}"))
            .map_err(RecvError::Failed)?;
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let request = async_nats::Request::new()
            .payload(buf.into())
            .timeout(timeout);
        let reply = match self
            .inner
            .nats
            .send_request(subject.to_owned(), request)
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                let (kind, what) = match e.kind() {
                    async_nats::RequestErrorKind::TimedOut => return Ok(None),
                    async_nats::RequestErrorKind::NoResponders => {
                        (io::ErrorKind::NotFound, "no responder listens".to_owned())
                    }
                    async_nats::RequestErrorKind::Other => {
                        (io::ErrorKind::BrokenPipe, e.to_string())
                    }
                };
                return Err(RecvError::Failed(
                    self.error(kind, format_args!("request on subject {subject}: {what}")),
                ));
            }
        };
        Ok(Some(reply))
    }
}

/// A subscription with its codec: what subscribers and responders share.
struct Incoming<C> {
    sub: async_nats::Subscriber,
    codec: C,
    client: AsyncClient,
    subject: String,
}

impl<C> Incoming<C> {
    async fn new(
        client: &AsyncClient,
        subject: &str,
        group: Option<&str>,
        codec: C,
    ) -> io::Result<Incoming<C>> {
        let nats = &client.inner.nats;
        let sub = match group {
            Some(g) => nats.queue_subscribe(subject.to_owned(), g.to_owned()).await,
            None => nats.subscribe(subject.to_owned()).await,
        }
        .map_err(|e| {
            client.error(
                io::ErrorKind::InvalidInput,
                format_args!("subscribe to {subject:?}: {e}"),
            )
        })?;
        Ok(Incoming {
            sub,
            codec,
            client: client.clone(),
            subject: subject.to_owned(),
        })
    }

    async fn next(&mut self, deadline: Deadline) -> Result<Option<async_nats::Message>, RecvError> {
        match until(deadline, self.sub.next()).await {
            None => Ok(None),
            Some(None) => Err(RecvError::Disconnected),
            Some(Some(msg)) => Ok(Some(msg)),
        }
    }

    fn decode<T>(&mut self, msg: &async_nats::Message) -> Result<T, RecvError>
    where
        C: Codec<T>,
    {
        self.codec.decode(&msg.payload).map_err(|e| {
            RecvError::Failed(self.client.error(
                io::ErrorKind::InvalidData,
                format_args!(
                    "a message of {} bytes on subject {} (subscribed as {:?}): {e}",
                    msg.payload.len(),
                    msg.subject,
                    self.subject
                ),
            ))
        })
    }
}

/// Typed messages published on a subject ([`AsyncClient::subscribe`]), for async code.
///
/// Receives what is published while it exists; a message that does not decode is an error
/// and the subscription stays usable. Dropping it unsubscribes.
pub struct AsyncSubscriber<T, C = Postcard> {
    incoming: Incoming<C>,
    _marker: PhantomData<fn() -> T>,
}

impl<T, C> fmt::Debug for AsyncSubscriber<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSubscriber")
            .field("subject", &self.incoming.subject)
            .finish_non_exhaustive()
    }
}

impl<T, C: Codec<T>> AsyncSubscriber<T, C> {
    async fn recv_until(&mut self, deadline: Deadline) -> Result<Option<T>, RecvError> {
        match self.incoming.next(deadline).await? {
            Some(msg) => self.incoming.decode(&msg).map(Some),
            None => Ok(None),
        }
    }

    /// Waits for the next message.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the connection is closed; [`RecvError::Failed`] for
    /// a message that does not decode (the next one can be received).
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        super::waited(self.recv_until(Deadline::Forever).await)
    }

    /// The next message if one has arrived; `Ok(None)` if not.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn try_recv(&mut self) -> Result<Option<T>, RecvError> {
        self.recv_until(Deadline::Now).await
    }

    /// Waits at most `timeout` for the next message; `Ok(None)` if none came.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<T>, RecvError> {
        self.recv_until(Deadline::after(timeout)).await
    }

    /// Waits until `deadline` at most for the next message; `Ok(None)` if none came.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn recv_deadline(&mut self, deadline: Instant) -> Result<Option<T>, RecvError> {
        self.recv_until(Deadline::At(deadline)).await
    }
}

/// A request received by a responder: the message and where its reply goes.
#[derive(Debug)]
pub struct Request<Q> {
    /// The request's message.
    pub message: Q,
    reply: Option<async_nats::Subject>,
}

/// Requests on a subject ([`AsyncClient::serve`]) and their replies, for async code.
pub struct AsyncResponder<Q, C = Postcard> {
    incoming: Incoming<C>,
    _marker: PhantomData<fn() -> Q>,
}

impl<Q, C> fmt::Debug for AsyncResponder<Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResponder")
            .field("subject", &self.incoming.subject)
            .finish_non_exhaustive()
    }
}

impl<Q, C: Codec<Q>> AsyncResponder<Q, C> {
    async fn recv_until(&mut self, deadline: Deadline) -> Result<Option<Request<Q>>, RecvError> {
        match self.incoming.next(deadline).await? {
            Some(msg) => Ok(Some(Request {
                message: self.incoming.decode(&msg)?,
                reply: msg.reply,
            })),
            None => Ok(None),
        }
    }

    /// Waits for the next request.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn recv(&mut self) -> Result<Request<Q>, RecvError> {
        super::waited(self.recv_until(Deadline::Forever).await)
    }

    /// The next request if one has arrived; `Ok(None)` if not.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn try_recv(&mut self) -> Result<Option<Request<Q>>, RecvError> {
        self.recv_until(Deadline::Now).await
    }

    /// Waits at most `timeout` for the next request; `Ok(None)` if none came.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Request<Q>>, RecvError> {
        self.recv_until(Deadline::after(timeout)).await
    }

    /// Waits until `deadline` at most for the next request; `Ok(None)` if none came.
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub async fn recv_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Request<Q>>, RecvError> {
        self.recv_until(Deadline::At(deadline)).await
    }

    /// Sends `reply` to the requester of `req`.
    ///
    /// # Errors
    ///
    /// [`SendError::Failed`]: the request wants no reply (it was published, not requested),
    /// the reply does not encode or is over the max payload, or the connection is closed.
    pub async fn reply<R>(&mut self, req: &Request<Q>, reply: &R) -> Result<(), SendError>
    where
        C: Codec<R>,
    {
        let inc = &mut self.incoming;
        let Some(to) = req.reply.clone() else {
            return Err(SendError::Failed(inc.client.error(
                io::ErrorKind::InvalidInput,
                format_args!("a message on {} wants no reply", inc.subject),
            )));
        };
        let buf = encode_with(&inc.client, &mut inc.codec, reply, &inc.subject)
            .map_err(SendError::Failed)?;
        inc.client
            .check_size(buf.len(), format_args!("reply on {}", inc.subject))
            .map_err(SendError::Failed)?;
        inc.client
            .inner
            .nats
            .publish(to, buf.into())
            .await
            .map_err(|e| {
                SendError::Failed(inc.client.error(
                    io::ErrorKind::BrokenPipe,
                    format_args!("reply on {}: {e}", inc.subject),
                ))
            })
    }
}

impl Client {
    /// As [`AsyncClient::publish`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::publish`].
    pub fn publish<T: Serialize>(&self, subject: &str, msg: &T) -> Result<(), SendError> {
        self.rt.block_on(self.inner.publish(subject, msg))
    }

    /// As [`AsyncClient::publish_with`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::publish`].
    pub fn publish_with<T, C: Codec<T>>(
        &self,
        subject: &str,
        msg: &T,
        codec: &mut C,
    ) -> Result<(), SendError> {
        self.rt
            .block_on(self.inner.publish_with(subject, msg, codec))
    }

    /// As [`AsyncClient::subscribe`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub fn subscribe<T>(&self, subject: &str) -> io::Result<Subscriber<T>> {
        self.subscribe_with(subject, Postcard)
    }

    /// As [`AsyncClient::subscribe_with`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub fn subscribe_with<T, C>(&self, subject: &str, codec: C) -> io::Result<Subscriber<T, C>> {
        let inner = self
            .rt
            .block_on(self.inner.subscribe_with(subject, codec))?;
        Ok(Subscriber {
            on: OnRuntime::new(&self.rt, inner),
        })
    }

    /// As [`AsyncClient::serve`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub fn serve<Q>(&self, subject: &str) -> io::Result<Responder<Q>> {
        self.serve_with(subject, Postcard)
    }

    /// As [`AsyncClient::serve_with`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::subscribe`].
    pub fn serve_with<Q, C>(&self, subject: &str, codec: C) -> io::Result<Responder<Q, C>> {
        let inner = self.rt.block_on(self.inner.serve_with(subject, codec))?;
        Ok(Responder {
            on: OnRuntime::new(&self.rt, inner),
        })
    }

    /// As [`AsyncClient::request`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub fn request<Q, R>(&self, subject: &str, req: &Q) -> Result<R, RecvError>
    where
        Q: Serialize,
        R: DeserializeOwned,
    {
        self.rt.block_on(self.inner.request(subject, req))
    }

    /// As [`AsyncClient::request_timeout`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub fn request_timeout<Q, R>(
        &self,
        subject: &str,
        req: &Q,
        timeout: Duration,
    ) -> Result<Option<R>, RecvError>
    where
        Q: Serialize,
        R: DeserializeOwned,
    {
        self.rt
            .block_on(self.inner.request_timeout(subject, req, timeout))
    }

    /// As [`AsyncClient::request_deadline`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub fn request_deadline<Q, R>(
        &self,
        subject: &str,
        req: &Q,
        deadline: Instant,
    ) -> Result<Option<R>, RecvError>
    where
        Q: Serialize,
        R: DeserializeOwned,
    {
        self.rt
            .block_on(self.inner.request_deadline(subject, req, deadline))
    }

    /// As [`AsyncClient::request_with`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::request`].
    pub fn request_with<Q, R, C>(
        &self,
        subject: &str,
        req: &Q,
        codec: &mut C,
        deadline: Option<Instant>,
    ) -> Result<Option<R>, RecvError>
    where
        C: Codec<Q> + Codec<R>,
    {
        self.rt
            .block_on(self.inner.request_with(subject, req, codec, deadline))
    }
}

/// Typed messages published on a subject ([`Client::subscribe`]), blocking: an
/// [`AsyncSubscriber`] on the client's private runtime.
pub struct Subscriber<T, C = Postcard> {
    on: OnRuntime<AsyncSubscriber<T, C>>,
}

/// An async handle driven by a client's private runtime, and dropped inside it: the client
/// unsubscribes from a task it spawns, which needs the runtime's context.
struct OnRuntime<A> {
    rt: Arc<Runtime>,
    /// Always `Some` but in `drop`.
    inner: Option<A>,
}

impl<A> OnRuntime<A> {
    fn new(rt: &Arc<Runtime>, inner: A) -> OnRuntime<A> {
        OnRuntime {
            rt: rt.clone(),
            inner: Some(inner),
        }
    }

    fn parts(&mut self) -> (&Runtime, &mut A) {
        (&self.rt, self.inner.as_mut().expect("present until drop"))
    }
}

impl<A> Drop for OnRuntime<A> {
    fn drop(&mut self) {
        let _in_runtime = self.rt.enter();
        drop(self.inner.take());
    }
}

impl<T, C> fmt::Debug for Subscriber<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field(
                "subject",
                &self.on.inner.as_ref().map(|i| &i.incoming.subject),
            )
            .finish_non_exhaustive()
    }
}

impl<T, C: Codec<T>> Subscriber<T, C> {
    /// As [`AsyncSubscriber::recv`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn recv(&mut self) -> Result<T, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.recv())
    }

    /// As [`AsyncSubscriber::try_recv`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn try_recv(&mut self) -> Result<Option<T>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.try_recv())
    }

    /// As [`AsyncSubscriber::recv_timeout`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<T>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.recv_timeout(timeout))
    }

    /// As [`AsyncSubscriber::recv_deadline`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Option<T>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.recv_deadline(deadline))
    }
}

/// Requests on a subject ([`Client::serve`]) and their replies, blocking: an
/// [`AsyncResponder`] on the client's private runtime.
pub struct Responder<Q, C = Postcard> {
    on: OnRuntime<AsyncResponder<Q, C>>,
}

impl<Q, C> fmt::Debug for Responder<Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field(
                "subject",
                &self.on.inner.as_ref().map(|i| &i.incoming.subject),
            )
            .finish_non_exhaustive()
    }
}

impl<Q, C: Codec<Q>> Responder<Q, C> {
    /// As [`AsyncResponder::recv`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn recv(&mut self) -> Result<Request<Q>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.recv())
    }

    /// As [`AsyncResponder::try_recv`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn try_recv(&mut self) -> Result<Option<Request<Q>>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.try_recv())
    }

    /// As [`AsyncResponder::recv_timeout`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Request<Q>>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.recv_timeout(timeout))
    }

    /// As [`AsyncResponder::recv_deadline`].
    ///
    /// # Errors
    ///
    /// As [`AsyncSubscriber::recv`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Option<Request<Q>>, RecvError> {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.recv_deadline(deadline))
    }

    /// As [`AsyncResponder::reply`].
    ///
    /// # Errors
    ///
    /// As [`AsyncResponder::reply`].
    pub fn reply<R>(&mut self, req: &Request<Q>, reply: &R) -> Result<(), SendError>
    where
        C: Codec<R>,
    {
        let (rt, inner) = self.on.parts();
        rt.block_on(inner.reply(req, reply))
    }
}
