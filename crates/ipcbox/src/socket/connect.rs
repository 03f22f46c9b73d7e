//! `connect(2)` with a timeout.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{self, sockopt};

use crate::sys::socket::wait;

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
    let deadline = timeout.and_then(deadline);
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
    let mut interrupted = false;
    let res = loop {
        if let Some(t) = timeout {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => t,
            };
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
                let wait_until = if timeout.is_some() { deadline } else { None };
                if !wait(fd, PollFlags::OUT, wait_until)? {
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

/// The deadline `timeout` from now (`None` if it is too far to represent: wait forever).
pub(super) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
