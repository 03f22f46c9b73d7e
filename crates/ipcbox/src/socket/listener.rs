//! Listening sockets and the options they are created with.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{self, sockopt, AddressFamily, SocketFlags};

use super::bind::{bind_unix, BoundFile};
use super::endpoint::local_endpoint;
use super::ready::wait_ready;
use super::{peer_cred, Credentials, Endpoint, Kind, SeqPacket, Stream};
use crate::deadline::Deadline;
use crate::error::{context, invalid_input, ResultExt};
use crate::sys::socket as sys;

/// Options for a listening or bound socket: file mode, backlog, same-uid-only.
///
/// ```no_run
/// use ipcbox::socket::{Endpoint, Options};
///
/// let ep: Endpoint = "unix:/run/app.sock".parse()?;
/// let listener = Options::new().mode(0o660).same_uid_only(true).listen(&ep)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    mode: u32,
    backlog: i32,
    same_uid_only: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Socket files 0600 (owner only), backlog 4096 (capped by `net.core.somaxconn`), every
    /// peer accepted.
    pub fn new() -> Options {
        Options {
            mode: 0o600,
            backlog: 4096,
            same_uid_only: false,
        }
    }

    /// The permission bits (`0o777` at most) of a filesystem socket file, set exactly (default
    /// 0600; see [Named objects](crate#named-objects)). Connecting needs write permission on
    /// the file, so this decides which users may connect. Ignored for abstract names (anyone
    /// in the network namespace may connect; use [`Options::same_uid_only`]) and IP sockets.
    pub fn mode(&mut self, mode: u32) -> &mut Options {
        self.mode = mode & 0o777;
        self
    }

    /// The length of the queue of connections not yet accepted (`listen(2)`'s backlog).
    pub fn backlog(&mut self, backlog: u32) -> &mut Options {
        self.backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        self
    }

    /// Accepts only peers whose effective uid (`SO_PEERCRED`) is this process's effective uid;
    /// see [`Listener::set_same_uid_only`]. Unix sockets only.
    pub fn same_uid_only(&mut self, on: bool) -> &mut Options {
        self.same_uid_only = on;
        self
    }

    /// Creates a [`Listener`] for a stream endpoint (`unix:`, `unix-abstract:`, `tcp:`).
    ///
    /// # Errors
    ///
    /// See [`Listener::bind`].
    pub fn listen(&self, ep: &Endpoint) -> io::Result<Listener> {
        Ok(Listener(Inner::bind(ep, Kind::Stream, self)?))
    }

    /// Creates a [`SeqPacketListener`] for a `unix-seqpacket:` or `unix-abstract-seqpacket:`
    /// endpoint.
    ///
    /// # Errors
    ///
    /// See [`Listener::bind`].
    pub fn listen_seqpacket(&self, ep: &Endpoint) -> io::Result<SeqPacketListener> {
        Ok(SeqPacketListener(Inner::bind(ep, Kind::SeqPacket, self)?))
    }

    /// Creates a bound [`Datagram`](super::Datagram) socket (`unix-dgram:`,
    /// `unix-abstract-dgram:`, `udp:`), with this file mode.
    ///
    /// # Errors
    ///
    /// See [`Datagram::bind`](super::Datagram::bind).
    pub fn bind_datagram(&self, ep: &Endpoint) -> io::Result<super::Datagram> {
        super::Datagram::bind_inner(ep, self.mode)
    }
}

/// A peer that a listener refused, as handed to [`Listener::on_refused`].
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The peer's credentials, if they could be read.
    pub credentials: Option<Credentials>,
    /// Why it was refused, in words ("peer uid 65534 is not this process's uid 0").
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credentials {
            Some(c) => write!(f, "refused peer ({c}): {}", self.reason),
            None => write!(f, "refused peer: {}", self.reason),
        }
    }
}

type RefusedHook = Arc<dyn Fn(&Refusal) + Send + Sync>;

/// What both listener types share. The socket is non-blocking; blocking accepts wait in
/// `poll(2)` only when no connection is queued.
struct Inner {
    fd: OwnedFd,
    local: Endpoint,
    tcp: bool,
    file: Option<BoundFile>,
    same_uid_only: bool,
    on_refused: Option<RefusedHook>,
    refused: AtomicU64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("fd", &self.fd.as_raw_fd())
            .field("local", &self.local.to_string())
            .field("same_uid_only", &self.same_uid_only)
            .field("refused", &self.refused.load(Ordering::Relaxed))
            .finish()
    }
}

impl Inner {
    fn bind(ep: &Endpoint, kind: Kind, opts: &Options) -> io::Result<Inner> {
        let mut inner = match ep {
            Endpoint::Unix { kind: k, .. } | Endpoint::Abstract { kind: k, .. } if *k == kind => {
                let fd = sys::socket(AddressFamily::UNIX, kind.socket_type(), true)
                    .context_with(|| format!("listen on \"{ep}\": create a socket"))?;
                let file = bind_unix(fd.as_fd(), ep, opts.mode)?;
                net::listen(&fd, opts.backlog).context_with(|| format!("listen on \"{ep}\""))?;
                Inner::new(fd, ep.clone(), false, file)
            }
            Endpoint::Tcp { .. } if kind == Kind::Stream => {
                if opts.same_uid_only {
                    return Err(invalid_input(format_args!(
                        "listen on \"{ep}\": same-uid-only needs a Unix socket (TCP peers have no \
                         credentials)"
                    )));
                }
                let mut last = None;
                for addr in ep.resolve()? {
                    match bind_tcp(&addr, opts.backlog) {
                        Ok(fd) => {
                            let local = local_endpoint(fd.as_fd(), Kind::Stream)?
                                .unwrap_or_else(|| ep.clone());
                            return Ok(Inner::new(fd, local, true, None));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let err = last.unwrap_or_else(|| io::Error::other("no address"));
                return Err(context(err, format_args!("listen on \"{ep}\"")));
            }
            _ => {
                return Err(invalid_input(format_args!(
                    "listen on \"{ep}\": a {kind} listener needs a {} endpoint",
                    match kind {
                        Kind::Stream => "unix:, unix-abstract: or tcp:",
                        _ => "unix-seqpacket: or unix-abstract-seqpacket:",
                    }
                )))
            }
        };
        inner.same_uid_only = opts.same_uid_only;
        Ok(inner)
    }

    fn new(fd: OwnedFd, local: Endpoint, tcp: bool, file: Option<BoundFile>) -> Inner {
        Inner {
            fd,
            local,
            tcp,
            file,
            same_uid_only: false,
            on_refused: None,
            refused: AtomicU64::new(0),
        }
    }

    fn accept(&self, deadline: Deadline) -> io::Result<Option<OwnedFd>> {
        loop {
            match net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => {
                    if !self.admit(&fd) {
                        continue;
                    }
                    if self.tcp {
                        sockopt::set_tcp_nodelay(&fd, true).context_with(|| {
                            format!("set TCP_NODELAY on a connection to \"{}\"", self.local)
                        })?;
                    }
                    return Ok(Some(fd));
                }
                Err(Errno::AGAIN) => {
                    if deadline == Deadline::Now
                        || !wait_ready(self.fd.as_fd(), PollFlags::IN, deadline)?
                    {
                        return Ok(None);
                    }
                }
                Err(Errno::INTR | Errno::CONNABORTED) => {}
                Err(e) => return Err(context(e, format_args!("accept on \"{}\"", self.local))),
            }
        }
    }

    /// Checks the same-uid rule; a refused peer is counted, reported and closed.
    fn admit(&self, fd: &OwnedFd) -> bool {
        if !self.same_uid_only {
            return true;
        }
        let me = rustix::process::geteuid().as_raw();
        let refusal = match peer_cred(fd.as_fd()) {
            Ok(c) => {
                if c.uid == me {
                    return true;
                }
                Refusal {
                    credentials: Some(c),
                    reason: format!(
                        "peer uid {} is not this process's uid {me} (same-uid-only listener on \"{}\")",
                        c.uid, self.local
                    ),
                }
            }
            Err(e) => Refusal {
                credentials: None,
                reason: format!("cannot read the peer's credentials: {e}"),
            },
        };
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = &self.on_refused {
            hook(&refusal);
        }
        false
    }
}

fn bind_tcp(addr: &std::net::SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = sys::socket(family, Kind::Stream.socket_type(), true)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    net::bind(&fd, addr)?;
    net::listen(&fd, backlog)?;
    Ok(fd)
}

macro_rules! listener {
    ($(#[$doc:meta])* $name:ident, $conn:ident, $verb:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Inner);

        impl $name {
            /// Binds and listens on `ep` with the default [`Options`]: `socket(2)`, `bind(2)`,
            /// `listen(2)`.
            ///
            /// * A filesystem socket gets mode 0600. A path that exists is handled as in
            ///   [Socket files](crate::socket#socket-files): a dead listener's socket file is
            ///   replaced; a live listener's path, or a path that is not a socket, gives
            ///   [`io::ErrorKind::AddrInUse`] naming the path.
            /// * The listener removes its socket file on drop (if the path is still the file it
            ///   created) unless [`detach`](Self::detach)ed. An abstract name has no file.
            /// * TCP listeners set `SO_REUSEADDR`. Port 0 picks a free port, which
            ///   [`local_endpoint`](Self::local_endpoint) reports.
            ///
            /// # Errors
            ///
            /// An endpoint of the wrong kind ([`io::ErrorKind::InvalidInput`]), a name that is
            /// in use, permission errors; each message quotes the endpoint.
            #[doc(alias = "listen")]
            pub fn bind(ep: &Endpoint) -> io::Result<$name> {
                Options::new().$verb(ep)
            }

            /// [`bind`](Self::bind) with `options`.
            ///
            /// # Errors
            ///
            /// As for [`bind`](Self::bind).
            pub fn bind_with(ep: &Endpoint, options: &Options) -> io::Result<$name> {
                options.$verb(ep)
            }

            /// Where this listener listens; for `tcp:host:0`, the port the kernel picked.
            pub fn local_endpoint(&self) -> &Endpoint {
                &self.0.local
            }

            /// Waits for a connection and accepts it (`accept4(2)` with `SOCK_CLOEXEC`; TCP
            /// connections get `TCP_NODELAY` once, here). Peers refused by the same-uid rule
            /// are closed and the wait goes on.
            ///
            /// # Errors
            ///
            /// The OS error, e.g. `EMFILE` when out of descriptors.
            #[doc(alias = "accept4")]
            pub fn accept(&self) -> io::Result<$conn> {
                match self.0.accept(Deadline::Forever)? {
                    Some(fd) => Ok($conn::from(fd)),
                    None => Err(io::Error::new(io::ErrorKind::TimedOut, "accept")),
                }
            }

            /// [`accept`](Self::accept), waiting at most `timeout`; `Ok(None)` when it passes.
            ///
            /// # Errors
            ///
            /// As for [`accept`](Self::accept).
            pub fn accept_timeout(&self, timeout: Duration) -> io::Result<Option<$conn>> {
                Ok(self
                    .0
                    .accept(Deadline::after(timeout))?
                    .map($conn::from))
            }

            /// [`accept`](Self::accept) without waiting: `Ok(None)` if no connection is queued.
            ///
            /// # Errors
            ///
            /// As for [`accept`](Self::accept).
            pub fn try_accept(&self) -> io::Result<Option<$conn>> {
                Ok(self.0.accept(Deadline::Now)?.map($conn::from))
            }

            /// Accepts only peers whose effective uid (`SO_PEERCRED`, recorded when the peer
            /// connected) equals this process's effective uid. Others are closed at once,
            /// counted in [`refused`](Self::refused) and reported to the
            /// [`on_refused`](Self::on_refused) hook. Unix sockets only.
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::InvalidInput`] on a TCP listener.
            pub fn set_same_uid_only(&mut self, on: bool) -> io::Result<()> {
                if on && self.0.tcp {
                    return Err(invalid_input(format_args!(
                        "\"{}\": same-uid-only needs a Unix socket",
                        self.0.local
                    )));
                }
                self.0.same_uid_only = on;
                Ok(())
            }

            /// Calls `hook` for every refused peer (from the thread that accepts), e.g. to log
            /// the [`Refusal`]'s reason. The library itself prints nothing.
            pub fn on_refused(&mut self, hook: impl Fn(&Refusal) + Send + Sync + 'static) {
                self.0.on_refused = Some(Arc::new(hook));
            }

            /// How many peers were refused so far.
            pub fn refused(&self) -> u64 {
                self.0.refused.load(Ordering::Relaxed)
            }

            /// Keeps the socket file on drop (for a listener whose file another process takes
            /// over, or that a service manager removes).
            pub fn detach(&mut self) {
                if let Some(f) = &mut self.0.file {
                    f.keep();
                }
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.fd.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.fd.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            /// The listening socket (non-blocking). Its socket file is kept: the new owner
            /// decides when to remove it.
            fn from(mut l: $name) -> OwnedFd {
                l.detach();
                let Inner { fd, .. } = l.0;
                fd
            }
        }
    };
}

listener!(
    /// A listening stream socket (Unix or TCP) that accepts [`Stream`]s.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use ipcbox::socket::{Endpoint, Listener, Stream};
    ///
    /// let listener = Listener::bind(&"tcp:127.0.0.1:0".parse()?)?;
    /// let ep = listener.local_endpoint().clone(); // the real port
    /// let mut client = Stream::connect(&ep)?;
    /// let mut server = listener.accept()?;
    /// client.write_all(b"ping")?;
    /// let mut buf = [0; 4];
    /// server.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    Listener,
    Stream,
    listen
);

listener!(
    /// A listening Unix `SOCK_SEQPACKET` socket that accepts [`SeqPacket`] connections.
    SeqPacketListener,
    SeqPacket,
    listen_seqpacket
);
