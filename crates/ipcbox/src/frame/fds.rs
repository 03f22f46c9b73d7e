//! Descriptors beside frames over Unix sockets (`SCM_RIGHTS`).

use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};

use super::buffer::{wait_ready, State, INITIAL_BUF};
use super::connection::{fd_of, Connection};
use super::error::{received, sent, Fail, RecvError, SendError};
use super::transport::{Framing, Readable, Writable};
use super::HEADER_LEN;
use crate::codec::Codec;
use crate::deadline::Deadline;
use crate::error::context;
use crate::sys;

/// The most descriptors one frame carries: the kernel's limit per message (`SCM_MAX_FD`).
pub const MAX_FDS_PER_FRAME: usize = 253;

impl State {
    fn check_socket_for_fds(&self) -> Result<(), Fail> {
        if self.socket {
            return Ok(());
        }
        Err(Fail::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors travel only over Unix sockets, and this connection is not a socket",
        )))
    }

    /// One `recvmsg` of at most `want` bytes into the free end of `rbuf`, keeping any
    /// descriptors that come with them in `fds`; sets `eof` when the peer has closed.
    fn read_exact_part(
        &mut self,
        fd: BorrowedFd<'_>,
        want: usize,
        deadline: Deadline,
    ) -> Result<(), Fail> {
        let flags = if deadline == Deadline::Forever {
            RecvFlags::empty()
        } else {
            RecvFlags::DONTWAIT
        };
        loop {
            let end = self.rbuf.len().min(self.rend + want);
            let buf = &mut self.rbuf[self.rend..end];
            match sys::socket::recv_fds(fd, buf, MAX_FDS_PER_FRAME, flags) {
                Ok((0, _, _)) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok((n, _, fds)) => {
                    self.rend += n;
                    self.fds.extend(fds);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if deadline == Deadline::Now || !wait_ready(fd, PollFlags::IN, deadline)? {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return Ok(());
                }
                Err(e) => return Err(Fail::Io(e)),
            }
        }
    }

    /// [`fill_frame`](Self::fill_frame) that never reads past the frame (so it cannot take the
    /// next frame's descriptors) and keeps the descriptors that arrive with this one in `fds`.
    fn fill_frame_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Deadline,
        max: usize,
    ) -> Result<usize, Fail> {
        if self.framing == Framing::Message {
            return self.fill_message_fds(fd, deadline, max);
        }
        loop {
            let have = self.rend - self.rpos;
            let need = if have >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
                let len = u32::from_le_bytes(h) as usize;
                if len > max {
                    return Err(Fail::TooLarge { len, max });
                }
                if have >= HEADER_LEN + len {
                    return Ok(len);
                }
                HEADER_LEN + len
            } else {
                HEADER_LEN
            };
            if self.eof {
                self.fds.clear();
                if have == 0 {
                    return Err(Fail::Disconnected);
                }
                self.rpos = 0;
                self.rend = 0;
                return Err(Fail::Torn {
                    expected: need,
                    received: have,
                });
            }
            self.make_room(need);
            self.read_exact_part(fd, need - have, deadline)?;
        }
    }

    /// [`fill_message`](Self::fill_message) with the descriptors attached to the message.
    fn fill_message_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Deadline,
        max: usize,
    ) -> Result<usize, Fail> {
        self.rpos = 0;
        self.rend = 0;
        if self.eof {
            return Err(Fail::Disconnected);
        }
        loop {
            // The real size of the next message, without taking it (MSG_TRUNC reports it).
            let size = match rustix::net::recv(
                fd,
                &mut [0u8; 0][..],
                RecvFlags::PEEK | RecvFlags::TRUNC | RecvFlags::DONTWAIT,
            ) {
                Ok((_, size)) => size,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    if deadline == Deadline::Now || !wait_ready(fd, PollFlags::IN, deadline)? {
                        return Err(Fail::WouldBlock);
                    }
                    continue;
                }
                Err(Errno::CONNRESET) => return Err(Fail::Disconnected),
                Err(e) => return Err(Fail::Io(context(e, "receive from connection"))),
            };
            if size == 0 && !self.datagram {
                self.eof = true;
                return Err(Fail::Disconnected);
            }
            if size > HEADER_LEN && size - HEADER_LEN > max {
                return Err(Fail::TooLarge {
                    len: size - HEADER_LEN,
                    max,
                });
            }
            if self.rbuf.len() < size {
                self.rbuf.resize(size.max(INITIAL_BUF), 0);
            }
            let buf = &mut self.rbuf[..size];
            let (got, _, fds) =
                sys::socket::recv_fds(fd, buf, MAX_FDS_PER_FRAME, RecvFlags::DONTWAIT)
                    .map_err(Fail::Io)?;
            let claimed = if got >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.rbuf[..HEADER_LEN]);
                HEADER_LEN + u32::from_le_bytes(h) as usize
            } else {
                HEADER_LEN
            };
            if claimed != got {
                return Err(Fail::LengthMismatch {
                    expected: claimed,
                    received: got,
                });
            }
            self.fds = fds;
            self.rend = got;
            return Ok(got - HEADER_LEN);
        }
    }

    /// Sends `frame` (header included) with `fds` attached to its first byte: one `sendmsg`
    /// with `SCM_RIGHTS`, then plain sends for any rest (kept pending if time runs out).
    fn write_frame_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        frame: &[u8],
        fds: &[BorrowedFd<'_>],
        deadline: Deadline,
    ) -> Result<(), Fail> {
        self.flush_pending(fd, deadline)?;
        let flags = if deadline == Deadline::Forever {
            SendFlags::empty()
        } else {
            SendFlags::DONTWAIT
        };
        let mut done = loop {
            match sys::socket::send_fds(fd, frame, fds, flags) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_ready(fd, PollFlags::OUT, deadline)? {
                        return Err(Fail::WouldBlock);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Err(Fail::Disconnected)
                }
                Err(e) => return Err(Fail::Io(e)),
            }
        };
        while done < frame.len() {
            match self.write_some(fd, &[IoSlice::new(&frame[done..])], deadline) {
                Ok(n) => done += n,
                Err(Fail::WouldBlock) => {
                    self.pending.extend_from_slice(&frame[done..]);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<Out, In, T: Writable, C: Codec<Out>> Connection<Out, In, T, C> {
    fn send_fds_with(
        &mut self,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
        deadline: Deadline,
    ) -> Result<(), Fail> {
        self.state.check_socket_for_fds()?;
        let mut wbuf = std::mem::take(&mut self.state.wbuf);
        wbuf.clear();
        wbuf.extend_from_slice(&[0; HEADER_LEN]);
        let res = match self.codec.encode(msg, &mut wbuf) {
            Ok(()) => self
                .state
                .check_send_len(wbuf.len() - HEADER_LEN)
                .and_then(|h| {
                    wbuf[..HEADER_LEN].copy_from_slice(&h);
                    self.state
                        .write_frame_fds(fd_of(&self.transport), &wbuf, fds, deadline)
                }),
            Err(e) => Err(Fail::Encode(e)),
        };
        self.state.wbuf = wbuf;
        res
    }

    /// Sends `msg` as one frame with the open descriptors `fds` attached to the frame's first
    /// byte: `sendmsg(2)` with an `SCM_RIGHTS` control message, over Unix sockets only. The
    /// peer receives duplicates with [`recv_with_fds`](Self::recv_with_fds), and ours stay
    /// open. See `WIRE.md`, "File descriptors".
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`SendError::Io`] with `InvalidInput` on a pipe, and the OS
    /// error on a TCP socket or past [`MAX_FDS_PER_FRAME`] descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use ipcbox::{frame, pipe};
    ///
    /// let (mut a, mut b) = frame::duplex::<String>()?;
    /// let (_reader, writer) = pipe::new()?;
    /// a.send_with_fds(&"a pipe".to_string(), &[writer.as_fd()])?;
    /// let (msg, fds) = b.recv_with_fds()?;
    /// assert_eq!((msg.as_str(), fds.len()), ("a pipe", 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&mut self, msg: &Out, fds: &[BorrowedFd<'_>]) -> Result<(), SendError> {
        self.send_fds_with(msg, fds, Deadline::Forever)
            .map_err(SendError::from_fail)
    }

    /// [`send_with_fds`](Self::send_with_fds) without waiting; `Ok(true)` and `Ok(false)` as
    /// for [`try_send`](Self::try_send). After `Ok(false)` no descriptor was passed; after
    /// `Ok(true)` they all were, with the frame's first byte.
    ///
    /// # Errors
    ///
    /// As [`send_with_fds`](Self::send_with_fds).
    pub fn try_send_with_fds(
        &mut self,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
    ) -> Result<bool, SendError> {
        sent(self.send_fds_with(msg, fds, Deadline::Now))
    }

    /// [`send_with_fds`](Self::send_with_fds) waiting at most `timeout` for room; the outcome
    /// as for [`try_send_with_fds`](Self::try_send_with_fds).
    ///
    /// # Errors
    ///
    /// As [`send_with_fds`](Self::send_with_fds).
    pub fn send_with_fds_timeout(
        &mut self,
        msg: &Out,
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<bool, SendError> {
        sent(self.send_fds_with(msg, fds, Deadline::after(timeout)))
    }
}

impl<Out, In, T: Readable, C: Codec<In>> Connection<Out, In, T, C> {
    fn recv_fds_with(&mut self, deadline: Deadline) -> Result<(In, Vec<OwnedFd>), Fail> {
        self.state.check_socket_for_fds()?;
        let max = self.state.max_frame;
        let len = self
            .state
            .fill_frame_fds(fd_of(&self.transport), deadline, max)?;
        let fds = std::mem::take(&mut self.state.fds);
        let payload = self.state.take_frame(len);
        // A frame that does not decode is consumed with its descriptors (closed here).
        Ok((self.codec.decode(payload).map_err(Fail::Decode)?, fds))
    }

    /// Receives one frame and decodes it, with the descriptors the peer attached to it
    /// ([`send_with_fds`](Self::send_with_fds); empty for a frame sent without). They arrive
    /// close-on-exec and are this process's to own.
    ///
    /// On a stream socket this reads exactly one frame (`recvmsg` of the header, then of the
    /// payload) rather than ahead, since a read that took the next frame's first byte would
    /// take its descriptors too. Receive every frame of a peer that sends descriptors this
    /// way: a plain [`recv`](Self::recv) reads ahead with `read(2)`, and the kernel closes the
    /// descriptors attached to what that takes.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), and `InvalidInput` on a pipe. A frame refused as `TooLarge`
    /// keeps its descriptors (they come with it once the limit is raised); a torn or
    /// undecodable frame's descriptors are closed.
    #[doc(alias = "SCM_RIGHTS")]
    pub fn recv_with_fds(&mut self) -> Result<(In, Vec<OwnedFd>), RecvError> {
        self.recv_fds_with(Deadline::Forever)
            .map_err(RecvError::from_fail)
    }

    /// [`recv_with_fds`](Self::recv_with_fds) without waiting: `Ok(None)` unless a whole frame
    /// is available; a partial one stays buffered with its descriptors.
    ///
    /// # Errors
    ///
    /// As [`recv_with_fds`](Self::recv_with_fds).
    pub fn try_recv_with_fds(&mut self) -> Result<Option<(In, Vec<OwnedFd>)>, RecvError> {
        received(self.recv_fds_with(Deadline::Now))
    }

    /// [`recv_with_fds`](Self::recv_with_fds) waiting at most `timeout`: `Ok(None)` as for
    /// [`try_recv_with_fds`](Self::try_recv_with_fds).
    ///
    /// # Errors
    ///
    /// As [`recv_with_fds`](Self::recv_with_fds).
    pub fn recv_with_fds_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(In, Vec<OwnedFd>)>, RecvError> {
        received(self.recv_fds_with(Deadline::after(timeout)))
    }
}
