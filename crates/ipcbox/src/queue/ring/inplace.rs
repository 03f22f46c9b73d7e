//! Puts and gets that work on the record in the ring itself: a put filled in place, a get
//! read in place or copied into the caller's slice.
//!
//! Both run under their side's lock, like a copying put or get, so the crash rules are the
//! same: a producer killed inside its fill commits nothing (the bytes it wrote are free space
//! past the tail), a consumer killed inside its read leaves the message in the queue.

use super::{Ring, CONSUMERS, PRODUCERS};
use crate::queue::error::{RecvError, SendError};
use crate::queue::wait::Deadline;

impl Ring {
    /// The error for a `len`-byte message over the queue's limit: it names the limit and the
    /// way for larger data.
    pub(super) fn too_large(&self, len: u64) -> SendError {
        SendError::Failed(crate::error::invalid_input(format_args!(
            "message of {len} bytes over the queue's limit of {} bytes \
             (Options::max_message_size); put larger data in an ipcbox::store::Store and \
             send its ObjectId",
            self.geo.max_msg
        )))
    }

    /// Appends a `len`-byte message that `fill` writes in place; `None` if the deadline
    /// passed first (`fill` not called).
    pub(crate) fn put_with<R>(
        &self,
        len: usize,
        deadline: Deadline,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>, SendError> {
        let len64 = len as u64;
        if len64 > self.geo.max_msg {
            return Err(self.too_large(len64));
        }
        let mut fill = Some(fill);
        let mut out = None;
        let mut n = 0;
        let put = self.run(
            Some(PRODUCERS),
            Some(CONSUMERS),
            deadline,
            self.full_poll(len64),
            &self.h().not_full,
            || self.full_for(len64),
            || {
                self.put_each_locked(
                    1,
                    |_| len64,
                    |_, at| {
                        if let Some(fill) = fill.take() {
                            out = Some(self.r().with_bytes_mut(at, len, fill)?);
                        }
                        Ok(())
                    },
                    &mut n,
                )
            },
        )?;
        Ok(if put { out } else { None })
    }

    /// Removes the oldest message after `f` has read it in place; `None` if the deadline
    /// passed first (`f` not called).
    pub(crate) fn get_with<R>(
        &self,
        deadline: Deadline,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, RecvError> {
        let mut f = Some(f);
        let mut out = None;
        let got = self.get_by(deadline, |at, len| {
            if let Some(f) = f.take() {
                out = Some(self.r().with_bytes(at, len, f)?);
            }
            Ok(())
        })?;
        Ok(if got { out } else { None })
    }

    /// Removes the oldest message into the front of `buf` and returns its length; `None` if
    /// the deadline passed first. A message longer than `buf` is an error and stays in the
    /// queue.
    pub(crate) fn get_into_slice(
        &self,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<Option<usize>, RecvError> {
        let mut got_len = 0;
        let got = self.get_by(deadline, |at, len| {
            let Some(dst) = buf.get_mut(..len) else {
                return Err(crate::error::invalid_input(format_args!(
                    "message of {len} bytes does not fit the buffer of {} bytes; it stays in \
                     the queue (get_with reads any size in place)",
                    buf.len()
                )));
            };
            self.r().read(at, dst)?;
            got_len = len;
            Ok(())
        })?;
        Ok(got.then_some(got_len))
    }
}
