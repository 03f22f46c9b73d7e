//! Doorbells: how a waiter that cannot sleep on a futex (an event loop, [`crate::wait()`]) is
//! woken by another process (LAYOUT.md, "Doorbells").
//!
//! A bell is a Unix datagram socket bound to an abstract name derived from a 64-bit token.
//! The waiter writes its token into the queue's (or channel's) shared memory next to its
//! "someone sleeps" flag; a waker that finds the flag set sends one byte to the name. The
//! socket is the waiter's pollable descriptor.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketType};

/// A doorbell owned by one handle. Its descriptor number stays the same for the handle's life;
/// after `fork` the child's first [`Bell::token`] puts a fresh socket of its own under it.
#[derive(Debug)]
pub(crate) struct Bell {
    fd: OwnedFd,
    /// (fork generation, token) of the socket now under `fd`.
    state: Mutex<(u64, u64)>,
}

/// Per-process counter mixed into tokens, so that the handles of one process get distinct names.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The abstract socket name of token `token`.
fn address(token: u64) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(
        format!("ipcbox.bell.{token:016x}").as_bytes(),
    )?)
}

/// A nonblocking datagram socket bound to a fresh token's name, and that token.
fn bound() -> io::Result<(OwnedFd, u64)> {
    let fd = crate::sys::socket::socket(AddressFamily::UNIX, SocketType::DGRAM, true)?;
    let (pid, start) = crate::liveness::me();
    loop {
        // The PID in the high half, so live processes never collide; the low half mixes the
        // start time, so a dead process's stale token rarely names a newer process's bell.
        let low = NEXT.fetch_add(1, Relaxed) ^ (start as u32).rotate_left(16);
        let token = (u64::from(pid) << 32) | u64::from(low);
        if token == 0 {
            continue;
        }
        match net::bind(&fd, &address(token)?) {
            Ok(()) => return Ok((fd, token)),
            // A name still bound by a handle from before a wrap of the counter.
            Err(Errno::ADDRINUSE) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

impl Bell {
    /// A bell for a new handle.
    pub(crate) fn new() -> io::Result<Bell> {
        let (fd, token) = bound()?;
        Ok(Bell {
            fd,
            state: Mutex::new((crate::sys::process::fork_generation(), token)),
        })
    }

    /// This process's token for the bell, binding a socket of its own after a `fork`.
    pub(crate) fn token(&self) -> io::Result<u64> {
        let gen = crate::sys::process::fork_generation();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 != gen {
            let (fd, token) = bound()?;
            crate::sys::fd::replace(self.fd.as_fd(), fd)?;
            *state = (gen, token);
        }
        Ok(state.1)
    }

    /// The token this process's socket has, if [`Bell::token`] has bound one in it.
    pub(crate) fn current(&self) -> Option<u64> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.0 == crate::sys::process::fork_generation()).then_some(state.1)
    }

    /// Reads every pending ring, so the descriptor stops being readable until the next one.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 16];
        while net::recv(&self.fd, &mut buf[..], RecvFlags::DONTWAIT).is_ok() {}
    }
}

impl AsFd for Bell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The socket wakers send from: unbound, shared by the whole process.
fn sender() -> io::Result<BorrowedFd<'static>> {
    static SENDER: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = SENDER.get() {
        return Ok(fd.as_fd());
    }
    let fd = crate::sys::socket::socket(AddressFamily::UNIX, SocketType::DGRAM, true)?;
    Ok(SENDER.get_or_init(|| fd).as_fd())
}

/// Rings the bell named by `token`. False if no socket has that name any more (its owner is
/// gone, or lives in another network namespace), so the caller can clear the entry; a full
/// bell has rung already and counts as rung.
pub(crate) fn ring(token: u64) -> bool {
    let (Ok(fd), Ok(addr)) = (sender(), address(token)) else {
        return true;
    };
    !matches!(
        net::sendto(fd, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL, &addr),
        Err(Errno::CONNREFUSED | Errno::NOENT)
    )
}
