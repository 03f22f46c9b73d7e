//! [`Connection`]: a [`crate::Connection`] whose sends and receives wait on tokio's reactor,
//! over every transport, with the sync API's framing, codecs, errors and descriptor passing.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::codec::{Codec, Postcard};
use crate::frame::{Readable, RecvError, SendError, Transport, Writable};
use crate::socket;
use crate::sys::reactor::{self, Borrowed};

/// A [`crate::Connection`] with async sends and receives: each is the sync `try_` form, retried
/// when the transport's descriptor is ready, so frames, errors and limits are exactly the sync
/// API's (a clean close is [`RecvError::Disconnected`], a frame cut short
/// [`RecvError::Torn`]). Works over every transport: Unix and TCP streams, pipes and FIFOs,
/// seqpacket and datagram sockets, with descriptor passing where the transport has it.
///
/// Every receive is cancel-safe: a frame is taken only in the poll that returns it, and the
/// bytes of a frame still arriving stay buffered in the connection. A send returns once the
/// whole frame is in the transport. It is cancel-safe too: a dropped send either took its
/// frame (wholly, or a first part whose rest the next send or [`Connection::flush`] sends
/// first) or took nothing of it.
///
/// For `Stream`/`Sink` combinators, [`framed`](super::framed) gives tokio-util's `Framed`
/// over the same wire format instead.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (a, b) = ipcbox::frame::duplex::<String>()?;
/// let (mut a, mut b) = (
///     ipcbox::tokio::Connection::new(a)?,
///     ipcbox::tokio::Connection::new(b)?,
/// );
/// a.send(&"hi".to_owned()).await?;
/// assert_eq!(b.recv().await?, "hi");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Connection<Out, In = Out, T: Transport = socket::Stream, C = Postcard> {
    // Declared before the connection that owns the descriptor, so dropped first.
    fd: AsyncFd<Borrowed>,
    conn: crate::Connection<Out, In, T, C>,
}

impl<Out, In, T: Transport, C> Connection<Out, In, T, C> {
    /// Registers `conn`'s transport with the current runtime's reactor.
    ///
    /// # Errors
    ///
    /// Not inside a tokio runtime with I/O enabled, or the registration failed.
    pub fn new(conn: crate::Connection<Out, In, T, C>) -> io::Result<Self> {
        Ok(Connection {
            fd: reactor::register_borrowed(&conn, Interest::READABLE | Interest::WRITABLE)?,
            conn,
        })
    }

    /// The sync connection, for its settings (`max_frame_len`, ...) and `try_` forms.
    pub fn get_ref(&self) -> &crate::Connection<Out, In, T, C> {
        &self.conn
    }

    /// The sync connection, mutably.
    pub fn get_mut(&mut self) -> &mut crate::Connection<Out, In, T, C> {
        &mut self.conn
    }

    /// The sync connection back, deregistered.
    pub fn into_inner(self) -> crate::Connection<Out, In, T, C> {
        let Connection { fd, conn } = self;
        drop(fd);
        conn
    }

    /// Runs the `try_` operation `op` until it is done, waiting for `interest` on the
    /// descriptor whenever it says "not now".
    async fn until<R, E: From<io::Error>>(
        &mut self,
        interest: Interest,
        mut op: impl FnMut(&mut crate::Connection<Out, In, T, C>) -> Result<Option<R>, E>,
    ) -> Result<R, E> {
        let Connection { fd, conn } = self;
        if let Some(r) = op(conn)? {
            return Ok(r);
        }
        loop {
            let mut guard = fd.ready(interest).await?;
            if let Some(r) = op(conn)? {
                return Ok(r);
            }
            // Only the readiness this guard saw is cleared: an event since then stays.
            guard.clear_ready();
        }
    }
}

fn taken(sent: bool) -> Option<()> {
    sent.then_some(())
}

impl<Out, In, T: Writable, C: Codec<Out>> Connection<Out, In, T, C> {
    /// Encodes `msg` and sends it as one frame, waiting for room ([`crate::Connection::send`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::send`].
    pub async fn send(&mut self, msg: &Out) -> Result<(), SendError> {
        self.until(Interest::WRITABLE, |c| c.try_send(msg).map(taken))
            .await?;
        self.finish().await
    }

    /// Encodes `msg` and sends it with `fds` attached (`SCM_RIGHTS`), waiting for room
    /// ([`crate::Connection::send_with_fds`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::send_with_fds`].
    pub async fn send_with_fds(
        &mut self,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), SendError> {
        self.until(Interest::WRITABLE, |c| {
            c.try_send_with_fds(msg, fds).map(taken)
        })
        .await
    }
}

impl<Out, In, T: Writable, C> Connection<Out, In, T, C> {
    /// Sends `bytes` as one frame, waiting for room ([`crate::Connection::send_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::send_bytes`].
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.until(Interest::WRITABLE, |c| c.try_send_bytes(bytes).map(taken))
            .await?;
        self.finish().await
    }

    /// Sends the rest of the frame just taken, if the transport took only a first part.
    async fn finish(&mut self) -> Result<(), SendError> {
        if self.conn.pending_len() == 0 {
            return Ok(());
        }
        self.flush().await
    }

    /// Sends the rest of a frame a send left pending ([`crate::Connection::flush`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::flush`].
    pub async fn flush(&mut self) -> Result<(), SendError> {
        self.until(Interest::WRITABLE, |c| c.try_flush().map(taken))
            .await
    }
}

impl<Out, In, T: Readable, C: Codec<In>> Connection<Out, In, T, C> {
    /// Receives and decodes one frame, waiting for one ([`crate::Connection::recv`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::recv`].
    pub async fn recv(&mut self) -> Result<In, RecvError> {
        self.until(Interest::READABLE, |c| c.try_recv()).await
    }

    /// Receives one frame and the descriptors that came with it
    /// ([`crate::Connection::recv_with_fds`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::recv_with_fds`].
    pub async fn recv_with_fds(&mut self) -> Result<(In, Vec<OwnedFd>), RecvError> {
        self.until(Interest::READABLE, |c| c.try_recv_with_fds())
            .await
    }
}

impl<Out, In, T: Readable, C> Connection<Out, In, T, C> {
    /// Receives one frame's payload, waiting for one ([`crate::Connection::recv_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::recv_bytes`].
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        self.until(Interest::READABLE, |c| c.try_recv_bytes()).await
    }

    /// Receives one frame's payload into `buf` and returns its length, waiting for one
    /// ([`crate::Connection::recv_bytes_into`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::recv_bytes_into`].
    pub async fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.until(Interest::READABLE, |c| c.try_recv_bytes_into(buf))
            .await
    }
}
