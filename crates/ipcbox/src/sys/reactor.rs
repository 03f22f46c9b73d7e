//! Registering descriptors with tokio's reactor (`AsyncFd::register_with_interest`), for the
//! `tokio` adapters.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// An object registered with the reactor through its descriptor.
#[derive(Debug)]
pub(crate) struct Source<T>(pub(crate) T);

impl<T: AsFd> AsRawFd for Source<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A descriptor number borrowed from an object that outlives the registration.
#[derive(Debug)]
pub(crate) struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Registers `object`, which owns its descriptor: an ipcbox type whose `as_fd` always gives
/// the one descriptor it owns (pipe and FIFO ends, sockets, listeners, message queues).
pub(crate) fn register<T: AsFd>(object: T, interest: Interest) -> io::Result<AsyncFd<Source<T>>> {
    // SAFETY: `object` owns its descriptor and is owned by the `AsyncFd` until it is dropped
    // or taken back with `into_inner`, so the descriptor stays open and names the same open
    // file description; the crate's callers pass only types whose `as_fd` returns that one
    // descriptor every time.
    Ok(unsafe { AsyncFd::register_with_interest(Source(object), interest) }?)
}

/// Registers the descriptor `fd` borrows. The caller keeps the owner alive, and the
/// descriptor naming the same description, until the returned `AsyncFd` is dropped: a local
/// of one function borrowing the owner, or a field declared before the owner's in a struct
/// that owns both.
pub(crate) fn register_borrowed(
    fd: impl AsFd,
    interest: Interest,
) -> io::Result<AsyncFd<Borrowed>> {
    let raw = Borrowed(fd.as_fd().as_raw_fd());
    // SAFETY: per this function's contract, the owner of `raw` outlives the `AsyncFd` and
    // does not close or replace the descriptor meanwhile.
    Ok(unsafe { AsyncFd::register_with_interest(raw, interest) }?)
}
