//! An event flag in shared memory: set, clear, wait until set.

use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use super::region::{Kind, Region, STATE_OFFSET};
use crate::deadline::Deadline;
use crate::layout::sync::RawEvent;
use crate::mode::CreationMode;
use crate::spin::spin_until;
use crate::sys::futex;
use crate::sys::mmap::view;
use crate::sys::mmap::Mapping;

impl RawEvent {
    pub(crate) fn init(&self, set: bool) {
        self.flag.store(u32::from(set), Relaxed);
        self.waiters.store(0, Relaxed);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(SeqCst) != 0
    }

    pub(crate) fn set(&self) {
        self.flag.store(1, SeqCst);
        if self.waiters.load(SeqCst) != 0 {
            futex::wake(&self.flag, u32::MAX);
        }
    }

    pub(crate) fn clear(&self) {
        self.flag.store(0, SeqCst);
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        if self.is_set() || spin_until(|| self.is_set()) {
            return Ok(true);
        }
        let deadline = Deadline::from_timeout(timeout);
        loop {
            self.waiters.fetch_add(1, SeqCst);
            let outcome = if self.is_set() {
                Ok(true)
            } else {
                if deadline.has_passed() {
                    Ok(false)
                } else {
                    futex::wait(&self.flag, 0, deadline.remaining())
                }
            };
            self.waiters.fetch_sub(1, SeqCst);
            let woken = outcome?;
            if self.is_set() {
                return Ok(true);
            }
            if !woken || deadline.has_passed() {
                return Ok(false);
            }
        }
    }
}

/// An event shared between processes, like Python's `multiprocessing.Event`: a flag that
/// [`wait`](Event::wait) sleeps on (a futex) until someone [`set`](Event::set)s it.
///
/// `set` makes a system call only when someone sleeps.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// use ipcbox::sync::Event;
///
/// let event = Event::anonymous()?;
/// assert!(!event.wait_timeout(Duration::from_millis(1))?);
/// event.set();
/// event.wait()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Event {
    region: Region,
}

impl Event {
    /// A new, clear event in anonymous shared memory.
    ///
    /// # Errors
    ///
    /// Mapping errors.
    pub fn anonymous() -> io::Result<Event> {
        Region::anonymous(Kind::Event, size_of::<RawEvent>(), init).map(|region| Event { region })
    }

    /// Creates the named event `name` (clear, owner-only); removed on drop unless detached.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name exists; `InvalidInput` for an invalid name.
    pub fn create(name: &str) -> io::Result<Event> {
        super::Options::new().open_event(name)
    }

    /// Opens the existing named event `name`.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `InvalidInput` if it holds no ipcbox event.
    pub fn open(name: &str) -> io::Result<Event> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_event(name)
    }

    pub(crate) fn with_options(
        name: &str,
        mode: CreationMode,
        permissions: u32,
    ) -> io::Result<Event> {
        Region::named(
            name,
            mode,
            permissions,
            Kind::Event,
            size_of::<RawEvent>(),
            init,
        )
        .map(|region| Event { region })
    }

    fn raw(&self) -> &RawEvent {
        self.region.state()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.raw().set();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.raw().clear();
    }

    /// Whether the flag is set now.
    pub fn is_set(&self) -> bool {
        self.raw().is_set()
    }

    /// Sleeps until the flag is set (returns at once if it is).
    ///
    /// # Errors
    ///
    /// Only when the futex wait fails unexpectedly.
    pub fn wait(&self) -> io::Result<()> {
        self.raw().wait(None).map(drop)
    }

    /// Sleeps until the flag is set or `timeout` passed: `Ok(false)` on timeout.
    ///
    /// # Errors
    ///
    /// Only when the futex wait fails unexpectedly.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<bool> {
        self.raw().wait(Some(timeout))
    }

    /// The shared-memory name ("/name") of a named event.
    pub fn name(&self) -> Option<&str> {
        self.region.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.region.detach();
    }
}

fn init(map: &Mapping) -> io::Result<()> {
    view::<RawEvent>(map, STATE_OFFSET)
        .ok_or_else(|| io::Error::other("event segment too small"))?
        .init(false);
    Ok(())
}
