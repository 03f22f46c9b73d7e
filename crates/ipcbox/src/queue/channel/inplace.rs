//! The channel's in-place and one-copy forms: `send_with`, `recv_with`, `recv_into`.

use std::time::{Duration, Instant};

use super::{Receiver, RecvError, SendError, Sender};
use crate::queue::error::waited;
use crate::queue::wait::Deadline;

impl<T> Sender<T> {
    /// The largest message in bytes (each slot's room).
    pub fn max_message_size(&self) -> usize {
        self.ep.chan.max_msg as usize
    }

    fn send_with_until<R>(
        &self,
        len: usize,
        deadline: Deadline,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        let region = &self.ep.chan.obj.region;
        self.send_fill(len, deadline, |at| region.with_bytes_mut(at, len, fill))
    }

    /// Sends a message of `len` bytes that `fill` writes in place, in its slot of the
    /// channel's memory, waiting while the channel is full; returns what `fill` returns. No
    /// copy is made: see [Large messages](super#large-messages).
    ///
    /// `fill` gets the slot's bytes as the last message in it left them: it should write all
    /// of them. The message is published when `fill` returns. A sender killed inside `fill`,
    /// or a panic in it, publishes nothing.
    ///
    /// # Errors
    ///
    /// As [`Sender::send_bytes`]; `fill` is not called then.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ipcbox::queue::channel::new::<()>(4)?;
    /// tx.send_with(5, |buf| buf.copy_from_slice(b"hello"))?;
    /// let mut buf = [0; 16];
    /// let n = rx.recv_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with<R>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, SendError> {
        waited(self.send_with_until(len, Deadline::Forever, fill))
    }

    /// Like [`Sender::send_with`] if there is room now; `Ok(None)` (without calling `fill`) if
    /// the channel is full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send_with`].
    pub fn try_send_with<R>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        self.send_with_until(len, Deadline::Now, fill)
    }

    /// Like [`Sender::send_with`], waiting at most `timeout` for room; `Ok(None)` (without
    /// calling `fill`) if the channel stayed full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send_with`].
    pub fn send_with_timeout<R>(
        &self,
        len: usize,
        timeout: Duration,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        self.send_with_until(len, Deadline::after(timeout), fill)
    }

    /// Like [`Sender::send_with`], waiting until `deadline` at most for room; `Ok(None)`
    /// (without calling `fill`) if the channel stayed full.
    ///
    /// # Errors
    ///
    /// As [`Sender::send_with`].
    pub fn send_with_deadline<R>(
        &self,
        len: usize,
        deadline: Instant,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        self.send_with_until(len, Deadline::At(deadline), fill)
    }
}

impl<T> Receiver<T> {
    /// The largest message in bytes (each slot's room).
    pub fn max_message_size(&self) -> usize {
        self.ep.chan.max_msg as usize
    }

    fn recv_with_until<R>(
        &self,
        deadline: Deadline,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecvError> {
        let region = &self.ep.chan.obj.region;
        self.recv_take(deadline, |at, len| region.with_bytes(at, len, f))
    }

    fn recv_into_until(
        &self,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<Option<usize>, RecvError> {
        let region = &self.ep.chan.obj.region;
        self.recv_take(deadline, |at, len| {
            let room = buf.len();
            let Some(dst) = buf.get_mut(..len) else {
                return Err(crate::error::invalid_input(format_args!(
                    "message of {len} bytes does not fit the buffer of {room} bytes; it stays \
                     in the channel (recv_with reads any size in place)"
                )));
            };
            region.read(at, dst)?;
            Ok(len)
        })
    }

    /// Receives a message after `f` has read it in place, in its slot of the channel's
    /// memory, waiting while the channel is empty; returns what `f` returns. No copy is made.
    ///
    /// The slot is freed when `f` returns. A panic in `f` leaves the message in the channel;
    /// so does a receiver killed inside `f`, for the process that takes the receiving end
    /// over next (the crash rules of [`Receiver::recv`]).
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_bytes_into`]; `f` is not called then.
    pub fn recv_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
        waited(self.recv_with_until(Deadline::Forever, f))
    }

    /// Like [`Receiver::recv_with`] if a message is there now; `Ok(None)` (without calling
    /// `f`) if the channel is empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_with`].
    pub fn try_recv_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, RecvError> {
        self.recv_with_until(Deadline::Now, f)
    }

    /// Like [`Receiver::recv_with`], waiting at most `timeout`; `Ok(None)` (without calling
    /// `f`) if the channel stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_with`].
    pub fn recv_with_timeout<R>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecvError> {
        self.recv_with_until(Deadline::after(timeout), f)
    }

    /// Like [`Receiver::recv_with`], waiting until `deadline` at most; `Ok(None)` (without
    /// calling `f`) if the channel stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_with`].
    pub fn recv_with_deadline<R>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecvError> {
        self.recv_with_until(Deadline::At(deadline), f)
    }

    /// Receives a message into the front of `buf`, waiting while the channel is empty;
    /// returns its length. One copy, from the channel's memory into `buf`.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_bytes_into`]; `Failed` with `InvalidInput` if the message is
    /// longer than `buf`, and it stays in the channel ([`Receiver::recv_with`] reads any
    /// size).
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        waited(self.recv_into_until(buf, Deadline::Forever))
    }

    /// Like [`Receiver::recv_into`] if a message is there now; `Ok(None)` if the channel is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_into`].
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        self.recv_into_until(buf, Deadline::Now)
    }

    /// Like [`Receiver::recv_into`], waiting at most `timeout`; `Ok(None)` if the channel
    /// stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_into`].
    pub fn recv_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<usize>, RecvError> {
        self.recv_into_until(buf, Deadline::after(timeout))
    }

    /// Like [`Receiver::recv_into`], waiting until `deadline` at most; `Ok(None)` if the
    /// channel stayed empty.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_into`].
    pub fn recv_into_deadline(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<Option<usize>, RecvError> {
        self.recv_into_until(buf, Deadline::At(deadline))
    }
}
