//! Rows whose two processes take turns instead of moving bytes (a counter in shared memory, a
//! mutex, a pair of semaphores): a [`Turn`] is one side's "hand the turn over" and "wait for it
//! back", and [`Echo`] makes it an [`Endpoint`] for the shared round-trip loop. Waiting never
//! hangs on a dead peer: [`Peer`] tells whether the other process has ended, [`spin_until`]
//! busy-waits with that check, and [`block_until`] repeats a bounded blocking wait with it.

use std::io;
use std::time::Duration;

use rustix::process::{waitid, WaitId, WaitIdOptions};

use crate::row::Endpoint;

/// One side of two processes taking turns.
pub trait Turn {
    /// Gives the turn to the peer.
    fn give(&mut self) -> io::Result<()>;

    /// Waits until the peer gives the turn back.
    fn take(&mut self) -> io::Result<()>;
}

/// A [`Turn`] as an [`Endpoint`]: `send` gives the turn, `recv` takes it back. No payload
/// moves (the turn is the whole message); since the peer only ever echoes, `recv` hands back
/// the last message this side sent, so the shared loop sees its echo.
#[derive(Debug)]
pub struct Echo<T> {
    turn: T,
    last: Vec<u8>,
}

impl<T> Echo<T> {
    /// Wraps `turn`.
    pub fn new(turn: T) -> Echo<T> {
        Echo {
            turn,
            last: Vec::new(),
        }
    }
}

impl<T: Turn> Endpoint for Echo<T> {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.last.clear();
        self.last.extend_from_slice(msg);
        self.turn.give()
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.turn.take()?;
        if self.last.len() == buf.len() {
            buf.copy_from_slice(&self.last);
        }
        Ok(())
    }
}

/// The other process of a measurement.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// Seen from the bench: its (only) forked child.
    Child,
    /// Seen from the child: the bench, by its process ID at fork time.
    Parent(u32),
}

impl Peer {
    /// The peer of the side `child` says we are.
    pub fn of(child: bool) -> Peer {
        if child {
            Peer::Parent(std::os::unix::process::parent_id())
        } else {
            Peer::Child
        }
    }

    /// Whether the peer has ended: for the bench, a child waiting to be reaped (looked at
    /// with `WNOWAIT`, so the status stays for the real `waitpid`); for the child, a new
    /// parent process ID.
    pub fn gone(&self) -> bool {
        match *self {
            Peer::Child => matches!(
                waitid(
                    WaitId::All,
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT
                ),
                Ok(Some(_))
            ),
            Peer::Parent(pid) => std::os::unix::process::parent_id() != pid,
        }
    }

    /// `BrokenPipe` if the peer has ended.
    ///
    /// # Errors
    ///
    /// See above.
    pub fn check(&self) -> io::Result<()> {
        if self.gone() {
            let who = match self {
                Peer::Child => "the peer process",
                Peer::Parent(_) => "the bench process",
            };
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("{who} has ended"),
            ));
        }
        Ok(())
    }
}

/// Spins until `ready()` holds (an error from it ends the wait), with the spin-loop hint,
/// yielding now and then (the machine may be busier than its CPUs) and checking that the peer
/// still runs every million tries.
///
/// # Errors
///
/// `ready`'s error, or `BrokenPipe` when the peer ended.
#[inline]
pub fn spin_until(peer: Peer, mut ready: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    let mut spins: u32 = 0;
    loop {
        if ready()? {
            return Ok(());
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins % (1 << 14) == 0 {
            std::thread::yield_now();
            if spins % (1 << 20) == 0 {
                peer.check()?;
            }
        }
    }
}

/// How long one bounded blocking wait lasts before the peer is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Repeats `wait(CHECK_EVERY)` until it returns `true`, checking the peer after each timeout.
///
/// # Errors
///
/// `wait`'s error, or `BrokenPipe` when the peer ended.
#[inline]
pub fn block_until(
    peer: Peer,
    mut wait: impl FnMut(Duration) -> io::Result<bool>,
) -> io::Result<()> {
    while !wait(CHECK_EVERY)? {
        peer.check()?;
    }
    Ok(())
}
