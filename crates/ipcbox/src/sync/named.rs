//! POSIX named semaphores (`sem_open`), the objects `posix_ipc.Semaphore` uses.

use std::ffi::CString;
use std::io;
use std::time::Duration;

use crate::error::{context, invalid_input, ResultExt};
use crate::mode::CreationMode;
use crate::name::posix_name;
use crate::sys::sem::{sem_unlink, NamedSem};

/// The largest value of a POSIX semaphore (`SEM_VALUE_MAX`).
pub const NAMED_SEMAPHORE_MAX: u32 = i32::MAX as u32;

/// A POSIX named semaphore (`sem_open`), living in `/dev/shm/sem.<name>`, which Python's
/// `posix_ipc.Semaphore("/name")` and C programs open by the same name.
///
/// Names are `"/name"` or `"name"` (the slash is added), at most 251 bytes, no other `/`.
/// The creator removes the name on drop unless [`detach`](NamedSemaphore::detach)ed; open
/// handles keep working after the name is removed.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::sync::NamedSemaphore;
///
/// let name = format!("/ipcbox-doc-{}", std::process::id());
/// let sem = NamedSemaphore::create(&name, 1)?;
/// assert!(sem.try_wait()?);
/// sem.post()?;
/// assert_eq!(sem.value()?, 1);
/// # Ok(())
/// # }
/// ```
///
/// See [sem_overview(7)](https://man7.org/linux/man-pages/man7/sem_overview.7.html).
#[derive(Debug)]
#[doc(alias = "sem_open")]
pub struct NamedSemaphore {
    sem: NamedSem,
    name: String,
    owner: bool,
}

impl NamedSemaphore {
    /// Creates the semaphore `name` with value `initial`, owner-only (0600)
    /// (`sem_open(O_CREAT | O_EXCL)`).
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name exists; `InvalidInput` for an invalid name or an `initial`
    /// above [`NAMED_SEMAPHORE_MAX`].
    pub fn create(name: &str, initial: u32) -> io::Result<NamedSemaphore> {
        super::Options::new().open_named_semaphore(name, initial)
    }

    /// Opens the existing semaphore `name` (`sem_open` without `O_CREAT`).
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `InvalidInput` for an invalid name.
    pub fn open(name: &str) -> io::Result<NamedSemaphore> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_named_semaphore(name, 0)
    }

    pub(crate) fn with_options(
        name: &str,
        mode: CreationMode,
        permissions: u32,
        initial: u32,
    ) -> io::Result<NamedSemaphore> {
        let name = posix_name(name, "POSIX semaphore", 251)?;
        if initial > NAMED_SEMAPHORE_MAX {
            return Err(invalid_input(format_args!(
                "invalid initial value {initial} for POSIX semaphore {name}: the maximum is \
                 {NAMED_SEMAPHORE_MAX}"
            )));
        }
        let c_name = CString::new(name.clone()).map_err(|_| invalid_input("NUL in name"))?;
        let open = |flags, verb| {
            NamedSem::open(&c_name, flags, permissions, initial)
                .context_with(|| format!("{verb} POSIX semaphore {name}"))
        };
        let (sem, owner) = mode.create_or_open(
            || open(libc::O_CREAT | libc::O_EXCL, "create"),
            || open(0, "open"),
        )?;
        Ok(NamedSemaphore { sem, name, owner })
    }

    /// Decrements the value, sleeping while it is 0 (`sem_wait`, after retrying `sem_trywait`
    /// for a few microseconds).
    ///
    /// # Errors
    ///
    /// OS errors from `sem_wait` (interruptions are retried).
    #[doc(alias = "sem_wait")]
    pub fn wait(&self) -> io::Result<()> {
        if self.spin() {
            return Ok(());
        }
        self.sem
            .wait()
            .context_with(|| format!("sem_wait {}", self.name))
    }

    /// Decrements the value if it is positive: `Ok(false)` when it is 0 (`sem_trywait`).
    ///
    /// # Errors
    ///
    /// OS errors from `sem_trywait`.
    #[doc(alias = "sem_trywait")]
    pub fn try_wait(&self) -> io::Result<bool> {
        self.sem
            .try_wait()
            .context_with(|| format!("sem_trywait {}", self.name))
    }

    /// As [`wait`](NamedSemaphore::wait), at most `timeout`: `Ok(false)` when it timed out
    /// (`sem_clockwait` on `CLOCK_MONOTONIC`, immune to wall-clock changes).
    ///
    /// # Errors
    ///
    /// OS errors from `sem_clockwait`.
    #[doc(alias = "sem_timedwait", alias = "sem_clockwait")]
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<bool> {
        if !timeout.is_zero() && self.spin() {
            return Ok(true);
        }
        self.sem
            .wait_timeout(timeout)
            .context_with(|| format!("sem_clockwait {}", self.name))
    }

    /// Retries `sem_trywait` briefly before a blocking wait; `true` when it took the semaphore.
    /// Errors are left to the blocking call that follows.
    // A peer on another CPU about to post answers faster than a sleeper is woken (glibc's
    // `sem_post` makes no system call when nobody sleeps).
    fn spin(&self) -> bool {
        crate::spin::spin_until(|| matches!(self.sem.try_wait(), Ok(true)))
    }

    /// Increments the value, waking one waiter (`sem_post`).
    ///
    /// # Errors
    ///
    /// `EOVERFLOW` when the value is already [`NAMED_SEMAPHORE_MAX`].
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> io::Result<()> {
        self.sem
            .post()
            .map_err(|e| context(e, format!("sem_post {} (value at its maximum?)", self.name)))
    }

    /// The current value (`sem_getvalue`).
    ///
    /// # Errors
    ///
    /// OS errors from `sem_getvalue`.
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> io::Result<u32> {
        let v = self
            .sem
            .value()
            .context_with(|| format!("sem_getvalue {}", self.name))?;
        Ok(v.max(0) as u32)
    }

    /// The name, with its leading slash.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.owner = false;
    }

    /// Removes the name `name` now (`sem_unlink`); open handles keep working.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such semaphore; `InvalidInput` for an invalid name.
    #[doc(alias = "sem_unlink")]
    pub fn unlink(name: &str) -> io::Result<()> {
        let name = posix_name(name, "POSIX semaphore", 251)?;
        let c_name = CString::new(name.clone()).map_err(|_| invalid_input("NUL in name"))?;
        sem_unlink(&c_name).context_with(|| format!("sem_unlink {name}"))
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        if self.owner {
            let _ = NamedSemaphore::unlink(&self.name);
        }
    }
}
