//! `connect(2)` with a timeout.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{self, sockopt};

use super::ready::wait_ready;
use crate::deadline::Deadline;

/// `connect(2)` with an optional timeout. The timeout uses `SO_SNDTIMEO`, which bounds both a
/// TCP handshake and a wait on a full Unix listen queue; it is reset afterwards.
///
/// A signal handler interrupts a connect that has a timeout even with `SA_RESTART`
/// (signal(7)), so `EINTR` is retried in both forms: a Unix connect starts again with the time
/// that is left; a TCP handshake goes on in the background (`EALREADY`) and is waited for.
pub(super) fn connect(
    fd: BorrowedFd<'_>,
    addr: &impl net::addr::SocketAddrArg,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let deadline = Deadline::from_timeout(timeout);
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
    let mut interrupted = false;
    let res = loop {
        if let Some(t) = timeout {
            // Forever: a timeout too long to reach; ask the kernel for it all the same.
            let left = deadline.remaining().unwrap_or(t);
            if interrupted && left.is_zero() {
                break Err(timed_out());
            }
            // SO_SNDTIMEO of zero means "no timeout": use the smallest positive one instead.
            let left = left.max(Duration::from_micros(1));
            sockopt::set_socket_timeout(fd, sockopt::Timeout::Send, Some(left))?;
        }
        match net::connect(fd, addr) {
            Err(Errno::INTR) => interrupted = true,
            // A TCP handshake that a signal interrupted goes on in the background: wait for it.
            Err(Errno::ALREADY) if interrupted => {
                if !wait_ready(fd, PollFlags::OUT, deadline)? {
                    break Err(timed_out());
                }
                break match sockopt::socket_error(fd)? {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.into()),
                };
            }
            Err(Errno::ISCONN) if interrupted => break Ok(()),
            Err(Errno::INPROGRESS | Errno::AGAIN) if timeout.is_some() => break Err(timed_out()),
            other => break other.map_err(io::Error::from),
        }
    };
    if timeout.is_some() {
        sockopt::set_socket_timeout(fd, sockopt::Timeout::Send, None)?;
    }
    res
}
