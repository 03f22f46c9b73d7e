//! Descriptor-backed mechanisms on tokio's reactor: byte streams ([`Async`] with `AsyncRead` /
//! `AsyncWrite`), message sockets, listeners, POSIX message queues, child exits and signals.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::mq::{PosixQueue, Received};
use crate::process::{Child, ExitStatus};
use crate::signal::Signals;
use crate::socket::{self, Listener, SeqPacketListener};
use crate::sys::reactor::{self, Source};
use crate::Signal;

mod sealed {
    pub trait Sealed {}
}

/// The ipcbox objects [`Async`] takes: those that own one descriptor and always give it.
pub trait Pollable: AsFd + sealed::Sealed {}

macro_rules! pollable {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}
        impl Pollable for $ty {}
    )*};
}

pollable!(
    crate::pipe::Reader,
    crate::pipe::Writer,
    socket::Stream,
    socket::SeqPacket,
    socket::Datagram,
    Listener,
    SeqPacketListener,
    PosixQueue
);

/// An ipcbox object whose descriptor waits on tokio's reactor: a pipe end, a FIFO end, a
/// stream, seqpacket or datagram socket, a listener or a POSIX message queue.
///
/// [`Async::new`] switches the descriptor to `O_NONBLOCK` (the open file description is shared
/// with its duplicates, which then do not block either). Byte streams (pipe and FIFO ends,
/// [`socket::Stream`]) implement [`AsyncRead`] / [`AsyncWrite`]; the others have async forms
/// of their own operations.
///
/// Every operation is cancel-safe: it does its system call only when the descriptor is
/// ready, and a dropped future made none that moved data.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (r, w) = ipcbox::pipe::new()?;
/// let (mut r, mut w) = (ipcbox::tokio::Async::new(r)?, ipcbox::tokio::Async::new(w)?);
/// w.write_all(b"ping").await?;
/// let mut buf = [0; 4];
/// r.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"ping");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Async<T: Pollable> {
    fd: AsyncFd<Source<T>>,
}

impl<T: Pollable> Async<T> {
    /// Registers `object`'s descriptor with the current runtime's reactor.
    ///
    /// # Errors
    ///
    /// Not inside a tokio runtime with I/O enabled; the `fcntl` or registration error.
    pub fn new(object: T) -> io::Result<Async<T>> {
        let flags = fcntl_getfl(object.as_fd())?;
        fcntl_setfl(object.as_fd(), flags | OFlags::NONBLOCK)?;
        Ok(Async {
            fd: reactor::register(object, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// The object.
    pub fn get_ref(&self) -> &T {
        &self.fd.get_ref().0
    }

    /// The object back, deregistered (its descriptor stays nonblocking).
    pub fn into_inner(self) -> T {
        self.fd.into_inner().0
    }

    /// Runs `op` once the descriptor is ready for `interest`, until it does not say
    /// `WouldBlock`.
    async fn io<R>(
        &self,
        interest: tokio::io::Interest,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.fd.async_io(interest, |inner| op(&inner.0)).await
    }
}

impl<T: Pollable> AsyncRead for Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|inner| (&inner.get_ref().0).read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl<T: Pollable> AsyncWrite for Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|inner| (&inner.get_ref().0).write(buf)) {
                Ok(res) => return Poll::Ready(res),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

macro_rules! message_socket {
    ($ty:ty) => {
        impl Async<$ty> {
            /// Sends one message, waiting for room. Cancel-safe.
            ///
            /// # Errors
            ///
            /// As the sync `send`.
            pub async fn send(&self, msg: &[u8]) -> io::Result<()> {
                self.io(Interest::WRITABLE, |s| match s.try_send(msg)? {
                    true => Ok(()),
                    false => Err(io::ErrorKind::WouldBlock.into()),
                })
                .await
            }

            /// Receives one message into `buf`, waiting for one; returns its length.
            /// Cancel-safe.
            ///
            /// # Errors
            ///
            /// As the sync `recv`.
            pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.io(Interest::READABLE, |s| {
                    s.try_recv(buf)?
                        .ok_or_else(|| io::ErrorKind::WouldBlock.into())
                })
                .await
            }
        }
    };
}

message_socket!(socket::Datagram);
message_socket!(socket::SeqPacket);

macro_rules! listener {
    ($ty:ty, $conn:ty) => {
        impl Async<$ty> {
            /// Accepts a connection, waiting for one. Cancel-safe.
            ///
            /// # Errors
            ///
            /// As the sync `accept`.
            pub async fn accept(&self) -> io::Result<$conn> {
                self.io(Interest::READABLE, |l| {
                    l.try_accept()?
                        .ok_or_else(|| io::ErrorKind::WouldBlock.into())
                })
                .await
            }
        }
    };
}

listener!(Listener, socket::Stream);
listener!(SeqPacketListener, socket::SeqPacket);

impl Async<PosixQueue> {
    /// Sends `msg` with priority `prio`, waiting for room (`mq_send`). Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`PosixQueue::send`].
    pub async fn send(&self, msg: &[u8], prio: u32) -> io::Result<()> {
        self.io(Interest::WRITABLE, |q| match q.try_send(msg, prio)? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        })
        .await
    }

    /// Receives the oldest message of the highest priority into `buf`, waiting for one
    /// (`mq_receive`); returns its length and priority. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`PosixQueue::recv`].
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.io(Interest::READABLE, |q| {
            q.try_recv(buf)?
                .ok_or_else(|| io::ErrorKind::WouldBlock.into())
        })
        .await
    }
}

/// Waits until `child` exits, on its pidfd, then reaps it ([`Child::wait`]).
///
/// Cancel-safe: the child is reaped only in the poll that returns its status.
///
/// # Errors
///
/// Not inside a tokio runtime with I/O enabled; the [`Child::wait`] error.
pub async fn exited(child: &mut Child) -> io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // Dropped before `child` is used again.
    let pidfd = reactor::register_borrowed(child.as_fd(), Interest::READABLE)?;
    let _ready = pidfd.readable().await?;
    drop(_ready);
    drop(pidfd);
    child.wait()
}

/// Waits until at least one of `signals` arrives and returns those that did, in number order
/// (as [`Signals::wait`]), on the handler's wake-up pipe.
///
/// Cancel-safe: signals are collected only in the poll that returns them.
///
/// # Errors
///
/// Not inside a tokio runtime with I/O enabled; the registration error.
pub async fn signals(signals: &mut Signals) -> io::Result<Vec<Signal>> {
    // Dropped before `signals` is released; `pending` only reads the pipe.
    let fd = reactor::register_borrowed(signals.as_fd(), Interest::READABLE)?;
    loop {
        let got = signals.pending();
        if !got.is_empty() {
            return Ok(got);
        }
        fd.readable().await?.clear_ready();
    }
}
