//! Waiting for a descriptor to become ready, up to a [`Deadline`].

use std::io;
use std::os::fd::BorrowedFd;

use rustix::event::PollFlags;

use crate::deadline::Deadline;
use crate::sys::socket::poll_one;

/// Waits with `poll(2)` until `fd` has one of `events` or `deadline` passes; `Ok(false)` when
/// it passed first. [`Deadline::Now`] looks once without sleeping. A signal's interruption
/// restarts the wait with the time that is left.
///
/// Any descriptor will do (frame connections wait on pipes with it too).
pub(crate) fn wait_ready(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Deadline,
) -> io::Result<bool> {
    loop {
        match poll_one(fd, events, deadline.remaining()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
