//! A barrier for a fixed number of processes, in shared memory.

use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use super::region::{Kind, Region, STATE_OFFSET};
use crate::deadline::Deadline;
use crate::error::invalid_input;
use crate::layout::sync::RawBarrier;
use crate::mode::CreationMode;
use crate::spin::spin_until;
use crate::sys::futex;
use crate::sys::mmap::view;
use crate::sys::mmap::Mapping;

/// The most parties a [`Barrier`] can have.
pub const BARRIER_MAX_PARTIES: u32 = 0xffff;
const ARRIVED: u32 = 0xffff;

fn generation(state: u32) -> u32 {
    state >> 16
}

impl RawBarrier {
    pub(crate) fn init(&self, parties: u32) {
        self.parties.store(parties, Relaxed);
        self.state.store(0, Relaxed);
        self.waiters.store(0, Relaxed);
    }

    /// `Ok(None)` on timeout (this party withdrew), `Ok(Some(leader))` when released.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<bool>> {
        let parties = self.parties.load(Relaxed);
        if parties == 0 || parties > BARRIER_MAX_PARTIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("barrier memory corrupted: {parties} parties"),
            ));
        }
        let mut s = self.state.load(SeqCst);
        let my_gen = loop {
            let arrived = s & ARRIVED;
            if arrived >= parties {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("barrier memory corrupted: {arrived} of {parties} parties arrived"),
                ));
            }
            let last = arrived + 1 == parties;
            let new = if last {
                ((generation(s) + 1) & 0xffff) << 16
            } else {
                s + 1
            };
            match self.state.compare_exchange(s, new, SeqCst, SeqCst) {
                Ok(_) if last => {
                    if self.waiters.load(SeqCst) != 0 {
                        futex::wake(&self.state, u32::MAX);
                    }
                    return Ok(Some(true));
                }
                Ok(_) => break generation(s),
                Err(now) => s = now,
            }
        };
        let released = || generation(self.state.load(SeqCst)) != my_gen;
        if spin_until(released) {
            return Ok(Some(false));
        }
        let deadline = Deadline::from_timeout(timeout);
        loop {
            self.waiters.fetch_add(1, SeqCst);
            let s = self.state.load(SeqCst);
            let outcome = if generation(s) != my_gen {
                Ok(true)
            } else {
                if deadline.has_passed() {
                    Ok(false)
                } else {
                    futex::wait(&self.state, s, deadline.remaining())
                }
            };
            self.waiters.fetch_sub(1, SeqCst);
            outcome?;
            if released() {
                return Ok(Some(false));
            }
            if deadline.has_passed() {
                // Withdraw our arrival, unless the barrier opened meanwhile.
                let mut s = self.state.load(SeqCst);
                loop {
                    if generation(s) != my_gen {
                        return Ok(Some(false));
                    }
                    if s & ARRIVED == 0 {
                        return Ok(None);
                    }
                    match self.state.compare_exchange(s, s - 1, SeqCst, SeqCst) {
                        Ok(_) => return Ok(None),
                        Err(now) => s = now,
                    }
                }
            }
        }
    }
}

/// What [`Barrier::wait`] tells one of the parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// `true` for exactly one party per round: the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

/// A barrier shared between processes: each round, [`wait`](Barrier::wait) returns in all
/// `parties` processes once the last of them called it.
///
/// # Limitations
///
/// A party that dies (or never comes) keeps the others waiting: use
/// [`wait_timeout`](Barrier::wait_timeout), which withdraws the caller's arrival on timeout.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::sync::Barrier;
///
/// let barrier = Barrier::anonymous(1)?;
/// assert!(barrier.wait()?.is_leader());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Barrier {
    region: Region,
}

fn check_parties(parties: u32) -> io::Result<u32> {
    if parties == 0 || parties > BARRIER_MAX_PARTIES {
        Err(invalid_input(format_args!(
            "invalid barrier size {parties}: must be between 1 and {BARRIER_MAX_PARTIES}"
        )))
    } else {
        Ok(parties)
    }
}

impl Barrier {
    /// A new barrier for `parties` processes in anonymous shared memory.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `parties` is 0 or above [`BARRIER_MAX_PARTIES`].
    pub fn anonymous(parties: u32) -> io::Result<Barrier> {
        let parties = check_parties(parties)?;
        Region::anonymous(Kind::Barrier, size_of::<RawBarrier>(), |m| init(m, parties))
            .map(|region| Barrier { region })
    }

    /// Creates the named barrier `name` for `parties` processes; removed on drop unless
    /// detached.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name exists; `InvalidInput` for an invalid name or size.
    pub fn create(name: &str, parties: u32) -> io::Result<Barrier> {
        super::Options::new().open_barrier(name, parties)
    }

    /// Opens the existing named barrier `name`.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `InvalidInput` if it holds no ipcbox barrier.
    pub fn open(name: &str) -> io::Result<Barrier> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_barrier(name, 1)
    }

    pub(crate) fn with_options(
        name: &str,
        mode: CreationMode,
        permissions: u32,
        parties: u32,
    ) -> io::Result<Barrier> {
        let parties = check_parties(parties)?;
        Region::named(
            name,
            mode,
            permissions,
            Kind::Barrier,
            size_of::<RawBarrier>(),
            |m| init(m, parties),
        )
        .map(|region| Barrier { region })
    }

    fn raw(&self) -> &RawBarrier {
        self.region.state()
    }

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        self.raw().parties.load(Relaxed)
    }

    /// Waits until all parties have called `wait` this round.
    ///
    /// # Errors
    ///
    /// `InvalidData` when the shared state is corrupted; futex errors.
    pub fn wait(&self) -> io::Result<BarrierWaitResult> {
        match self.raw().wait(None)? {
            Some(leader) => Ok(BarrierWaitResult(leader)),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "barrier wait without timeout timed out",
            )),
        }
    }

    /// As [`wait`](Barrier::wait), at most `timeout`: `Ok(None)` when it timed out, in which
    /// case this caller's arrival was withdrawn (the round still needs all parties).
    ///
    /// # Errors
    ///
    /// As [`wait`](Barrier::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<BarrierWaitResult>> {
        Ok(self.raw().wait(Some(timeout))?.map(BarrierWaitResult))
    }

    /// The shared-memory name ("/name") of a named barrier.
    pub fn name(&self) -> Option<&str> {
        self.region.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.region.detach();
    }
}

fn init(map: &Mapping, parties: u32) -> io::Result<()> {
    view::<RawBarrier>(map, STATE_OFFSET)
        .ok_or_else(|| io::Error::other("barrier segment too small"))?
        .init(parties);
    Ok(())
}
