//! [`ByteQueue`]'s in-place and one-copy forms: `put_with`, `get_with`, `get_into_slice`.

use std::time::{Duration, Instant};

use super::error::waited;
use super::wait::Deadline;
use super::{ByteQueue, RecvError, SendError};

impl ByteQueue {
    /// Appends a message of `len` bytes that `fill` writes in place, in the queue's own
    /// memory, waiting while the queue is full; returns what `fill` returns. No copy is made:
    /// see [Large messages](super#large-messages).
    ///
    /// `fill` gets the message's bytes, holding whatever the queue's memory held there: it
    /// should write all of them. The message is committed when `fill` returns. A producer
    /// killed inside `fill`, or a panic in it, commits nothing. Other producers wait while
    /// `fill` runs, since it runs under the producers' lock: keep it to writing the message.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put`]; `fill` is not called then.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: ipcbox::Queue<()> = ipcbox::Queue::new(4)?;
    /// let q = q.as_bytes();
    /// q.put_with(5, |buf| buf.copy_from_slice(b"hello"))?;
    /// assert_eq!(q.get_with(|msg| msg.len())?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_with<R>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, SendError> {
        waited(self.ring.put_with(len, Deadline::Forever, fill))
    }

    /// Like [`ByteQueue::put_with`] if there is room now; `Ok(None)` (without calling `fill`)
    /// if the queue is full.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put_with`].
    pub fn try_put_with<R>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        self.ring.put_with(len, Deadline::Now, fill)
    }

    /// Like [`ByteQueue::put_with`], waiting at most `timeout` for room; `Ok(None)` (without
    /// calling `fill`) if the queue stayed full.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put_with`].
    pub fn put_with_timeout<R>(
        &self,
        len: usize,
        timeout: Duration,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        self.ring.put_with(len, Deadline::after(timeout), fill)
    }

    /// Like [`ByteQueue::put_with`], waiting until `deadline` at most for room; `Ok(None)`
    /// (without calling `fill`) if the queue stayed full.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::put_with`].
    pub fn put_with_deadline<R>(
        &self,
        len: usize,
        deadline: Instant,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        self.ring.put_with(len, Deadline::At(deadline), fill)
    }

    /// Removes the oldest message after `f` has read it in place, in the queue's memory,
    /// waiting while the queue is empty; returns what `f` returns. No copy is made.
    ///
    /// The message is removed when `f` returns. A panic in `f` leaves it in the queue; a
    /// consumer killed inside `f` leaves it in the queue for another consumer (the crash
    /// rules of [`ByteQueue::get_into`]). Other consumers wait while `f` runs, since it runs
    /// under the consumers' lock: copy out what must live longer and return.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`]; `f` is not called then.
    pub fn get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
        waited(self.ring.get_with(Deadline::Forever, f))
    }

    /// Like [`ByteQueue::get_with`] if there is a message now; `Ok(None)` (without calling
    /// `f`) if the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_with`].
    pub fn try_get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, RecvError> {
        self.ring.get_with(Deadline::Now, f)
    }

    /// Like [`ByteQueue::get_with`], waiting at most `timeout` for a message; `Ok(None)`
    /// (without calling `f`) if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_with`].
    pub fn get_with_timeout<R>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecvError> {
        self.ring.get_with(Deadline::after(timeout), f)
    }

    /// Like [`ByteQueue::get_with`], waiting until `deadline` at most for a message;
    /// `Ok(None)` (without calling `f`) if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_with`].
    pub fn get_with_deadline<R>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecvError> {
        self.ring.get_with(Deadline::At(deadline), f)
    }

    /// Removes the oldest message into the front of `buf`, waiting while the queue is empty;
    /// returns its length. One copy, from the queue's memory into `buf`.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`]; `Failed` with `InvalidInput` if the message is longer than
    /// `buf`, and it stays in the queue ([`ByteQueue::get_with`] reads any size).
    pub fn get_into_slice(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        waited(self.ring.get_into_slice(buf, Deadline::Forever))
    }

    /// Like [`ByteQueue::get_into_slice`] if there is a message now; `Ok(None)` if the queue
    /// is empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into_slice`].
    pub fn try_get_into_slice(&self, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        self.ring.get_into_slice(buf, Deadline::Now)
    }

    /// Like [`ByteQueue::get_into_slice`], waiting at most `timeout` for a message;
    /// `Ok(None)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into_slice`].
    pub fn get_into_slice_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<usize>, RecvError> {
        self.ring.get_into_slice(buf, Deadline::after(timeout))
    }

    /// Like [`ByteQueue::get_into_slice`], waiting until `deadline` at most for a message;
    /// `Ok(None)` if the queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into_slice`].
    pub fn get_into_slice_deadline(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<Option<usize>, RecvError> {
        self.ring.get_into_slice(buf, Deadline::At(deadline))
    }

    /// Removes up to `max` of the oldest messages in one lock hold, appending their bytes to
    /// `buf` and the end offset of each one in `buf` to `ends`, waiting while the queue is
    /// empty; returns how many (at least 1, or 0 for a `max` of 0). One copy per message, and
    /// no allocation once `buf` and `ends` have grown to their working size. See
    /// [Batches](super#batches).
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_into`]; `buf` and `ends` are as they were then.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: ipcbox::Queue<()> = ipcbox::Queue::new(8)?;
    /// let q = q.as_bytes();
    /// q.put_many(&[&b"ab"[..], b"cde"])?;
    /// let (mut buf, mut ends) = (Vec::new(), Vec::new());
    /// assert_eq!(q.get_many_into(8, &mut buf, &mut ends)?, 2);
    /// assert_eq!((&buf[..], &ends[..]), (&b"abcde"[..], &[2, 5][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many_into(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<usize, RecvError> {
        self.many_into(max, buf, ends, Deadline::Forever)
    }

    /// Like [`ByteQueue::get_many_into`] if there is a message now; 0 if the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_many_into`].
    pub fn try_get_many_into(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<usize, RecvError> {
        self.many_into(max, buf, ends, Deadline::Now)
    }

    /// Like [`ByteQueue::get_many_into`], waiting at most `timeout` for a message; 0 if the
    /// queue stayed empty.
    ///
    /// # Errors
    ///
    /// As [`ByteQueue::get_many_into`].
    pub fn get_many_into_timeout(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.many_into(max, buf, ends, Deadline::after(timeout))
    }

    fn many_into(
        &self,
        max: usize,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        deadline: Deadline,
    ) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        let before = ends.len();
        self.ring.get_many(max, buf, ends, deadline)?;
        Ok(ends.len() - before)
    }
}
