//! The connection to a NATS server: [`AsyncClient`] on the caller's tokio runtime, [`Client`]
//! on a private one.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ServerAddr};

/// How long a client waits for one answer of the server (a publish acknowledgement, a stream
/// lookup) before it retries or gives up; also its connect timeout.
pub(crate) const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one attempt of a put or an acknowledgement waits for the server's answer before
/// it is sent again (a put under the same message ID, so the server stores it once).
pub(crate) const ATTEMPT: Duration = Duration::from_secs(2);

/// How long a queue operation keeps retrying through trouble (no answer, a lost connection, a
/// cluster electing a new leader) before it fails.
pub(crate) const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// A connection to a NATS server (or cluster), for use from async code on a tokio runtime.
///
/// Cheap to clone: clones share the connection. It reconnects by itself after the connection
/// drops (to any server of the list, or one the cluster announced); messages published while
/// it is away are buffered and sent on reconnection.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let client = ipcbox::nats::AsyncClient::connect("nats://127.0.0.1:4222").await?;
/// client.publish("greetings", &"hello".to_string()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AsyncClient {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    pub(crate) nats: async_nats::Client,
    pub(crate) js: async_nats::jetstream::Context,
    /// `js` with the shorter timeout of one put attempt.
    pub(crate) js_put: async_nats::jetstream::Context,
    /// The servers as given, without credentials: what error messages name.
    pub(crate) label: String,
}

impl fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncClient")
            .field("servers", &self.inner.label)
            .finish_non_exhaustive()
    }
}

/// Parses `urls`, a comma-separated list of `nats://host:port` addresses (the scheme and the
/// port 4222 may be left out), into addresses and a label without credentials.
fn parse_urls(urls: &str) -> io::Result<(Vec<ServerAddr>, String)> {
    let mut addrs = Vec::new();
    let mut label = Vec::new();
    for url in urls.split(',').map(str::trim) {
        let addr: ServerAddr = url.parse().map_err(|e: io::Error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad NATS server URL {url:?}: {e}"),
            )
        })?;
        if addr.host().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad NATS server URL {url:?}: no host"),
            ));
        }
        label.push(format!(
            "{}://{}:{}",
            addr.scheme(),
            addr.host(),
            addr.port()
        ));
        addrs.push(addr);
    }
    Ok((addrs, label.join(",")))
}

impl AsyncClient {
    /// Connects to the NATS server at `urls`: one URL (`nats://host:4222`) or several separated
    /// by commas (the servers of a cluster; the client picks one and fails over to the others).
    /// Credentials may be given in the URL (`nats://user:password@host`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a malformed URL; `ConnectionRefused`, `TimedOut` or
    /// `PermissionDenied` when no server of the list can be reached or accepts the client. The
    /// message names the servers.
    pub async fn connect(urls: &str) -> io::Result<AsyncClient> {
        let (addrs, label) = parse_urls(urls)?;
        let nats = async_nats::ConnectOptions::new()
            .connection_timeout(SERVER_TIMEOUT)
            .request_timeout(Some(SERVER_TIMEOUT))
            .name("ipcbox")
            .connect(addrs)
            .await
            .map_err(|e| {
                let kind = match e.kind() {
                    ConnectErrorKind::ServerParse => io::ErrorKind::InvalidInput,
                    ConnectErrorKind::TimedOut => io::ErrorKind::TimedOut,
                    ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                        io::ErrorKind::PermissionDenied
                    }
                    _ => io::ErrorKind::ConnectionRefused,
                };
                io::Error::new(kind, format!("cannot connect to NATS server {label}: {e}"))
            })?;
        let mut js = async_nats::jetstream::new(nats.clone());
        js.set_timeout(SERVER_TIMEOUT);
        let mut js_put = js.clone();
        js_put.set_timeout(ATTEMPT);
        Ok(AsyncClient {
            inner: Arc::new(ClientInner {
                nats,
                js,
                js_put,
                label,
            }),
        })
    }

    /// The servers this client was given, as `nats://host:port` (without credentials).
    pub fn servers(&self) -> &str {
        &self.inner.label
    }

    /// The largest message (payload and headers) the server accepts, in bytes: its
    /// `max_payload`, 1 MiB unless configured otherwise.
    pub fn max_payload(&self) -> usize {
        self.inner.nats.server_info().max_payload
    }

    /// Waits until the server has received every message published so far.
    ///
    /// # Errors
    ///
    /// The connection failed before the server answered.
    pub async fn flush(&self) -> io::Result<()> {
        self.inner
            .nats
            .flush()
            .await
            .map_err(|e| self.error(io::ErrorKind::BrokenPipe, format_args!("flush: {e}")))
    }

    /// An error naming this client's servers.
    pub(crate) fn error(&self, kind: io::ErrorKind, what: fmt::Arguments<'_>) -> io::Error {
        io::Error::new(kind, format!("{what} (NATS server {})", self.inner.label))
    }

    /// `InvalidInput` if a message of `len` bytes (with headers) is over the server's limit.
    pub(crate) fn check_size(&self, len: usize, what: fmt::Arguments<'_>) -> io::Result<()> {
        let max = self.max_payload();
        if len > max {
            return Err(self.error(
                io::ErrorKind::InvalidInput,
                format_args!(
                    "{what}: a message of {len} bytes is over the server's max payload of {max} bytes"
                ),
            ));
        }
        Ok(())
    }
}

/// A private tokio runtime, and the connection to flush before it stops.
pub(crate) struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
    nats: Option<async_nats::Client>,
}

impl Runtime {
    fn new() -> io::Result<Runtime> {
        // One worker thread keeps the connection alive (pings, reconnection, incoming messages)
        // while the caller is not inside a call.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ipcbox-nats")
            .enable_all()
            .build()?;
        Ok(Runtime {
            rt: Some(rt),
            nats: None,
        })
    }

    /// Enters the runtime's context, for dropping what needs one (a subscription).
    pub(crate) fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.rt.as_ref().map(|rt| rt.enter())
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime lives until drop"),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped inside async code: blocking here is not allowed.
            rt.shutdown_background();
            return;
        }
        // Messages published without an acknowledgement may still sit in the client's buffer.
        if let Some(nats) = self.nats.take() {
            let _ = rt.block_on(async { tokio::time::timeout(SERVER_TIMEOUT, nats.flush()).await });
        }
        drop(rt);
    }
}

/// A connection to a NATS server (or cluster) with a blocking API: [`AsyncClient`] on a
/// private tokio runtime (one thread, which keeps the connection alive between calls).
///
/// Cheap to clone: clones share the connection and the runtime. Its methods block the calling
/// thread, so they must not be called from async code (they panic there, as tokio's
/// `block_on` does): use [`AsyncClient`] there.
///
/// # Examples
///
/// ```no_run
/// let client = ipcbox::nats::Client::connect("nats://127.0.0.1:4222")?;
/// let mut readings = client.subscribe::<(u32, f64)>("sensors.>")?;
/// client.publish("sensors.kitchen", &(7, 21.5))?;
/// assert_eq!(readings.recv()?, (7, 21.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) inner: AsyncClient,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.inner.inner.label)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the NATS server at `urls`, as [`AsyncClient::connect`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::connect`]; an OS error if the runtime's thread cannot start.
    pub fn connect(urls: &str) -> io::Result<Client> {
        let mut rt = Runtime::new()?;
        let inner = rt.block_on(AsyncClient::connect(urls))?;
        rt.nats = Some(inner.inner.nats.clone());
        Ok(Client {
            rt: Arc::new(rt),
            inner,
        })
    }

    /// As [`AsyncClient::servers`].
    pub fn servers(&self) -> &str {
        self.inner.servers()
    }

    /// As [`AsyncClient::max_payload`].
    pub fn max_payload(&self) -> usize {
        self.inner.max_payload()
    }

    /// As [`AsyncClient::flush`].
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::flush`].
    pub fn flush(&self) -> io::Result<()> {
        self.rt.block_on(self.inner.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_named_without_credentials() {
        let (addrs, label) = parse_urls("nats://u:secret@127.0.0.1:4000, host1.example").unwrap();
        assert_eq!(addrs.len(), 2);
        assert_eq!(label, "nats://127.0.0.1:4000,nats://host1.example:4222");
        let err = parse_urls("http://x:1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"http://x:1\""), "{err}");
        assert!(parse_urls("nats://").is_err());
    }
}
