//! POSIX named semaphores (`sem_open`), the objects `posix_ipc.Semaphore` uses.

use std::ffi::CString;
use std::io;
use std::time::Duration;

use crate::error::{context, invalid_input, ResultExt};
use crate::mode::CreationMode;
use crate::name::posix_name;
use crate::shm::{self, Link};
use crate::sys::sem::{sem_unlink, NamedSem, SEM_SIZE};

/// The largest value of a POSIX semaphore (`SEM_VALUE_MAX`).
pub const NAMED_SEMAPHORE_MAX: u32 = i32::MAX as u32;

/// A POSIX named semaphore (`sem_open`), living in `/dev/shm/sem.<name>`, which Python's
/// `posix_ipc.Semaphore("/name")` and C programs open by the same name.
///
/// ipcbox makes and maps that file itself, as glibc's `sem_open` does (a process-shared
/// `sem_t` in a file linked under the name once initialised), and uses the `sem_*` calls on
/// it, so either side may create the semaphore.
///
/// Names are `"/name"` or `"name"` (the slash is added), at most 251 bytes, no other `/`.
/// The creator removes the name on drop unless [`detach`](NamedSemaphore::detach)ed, and only
/// if the name still refers to the semaphore it created; it keeps the semaphore's file open
/// for that. Open handles keep working after the name is removed.
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
    /// The semaphore's file, which removes the name on drop only if it still is that file;
    /// kept by the handle that created it, as long as it owns the name.
    link: Option<Link>,
}

/// The name of a semaphore's file in `/dev/shm`, as glibc's `sem_open` names it.
fn file_name(name: &str) -> String {
    format!("sem.{}", name.trim_start_matches('/'))
}

impl NamedSemaphore {
    /// Creates the semaphore `name` with value `initial`, owner-only (0600), failing if the
    /// name exists (as `sem_open(O_CREAT | O_EXCL)` does).
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name exists; `InvalidInput` for an invalid name or an `initial`
    /// above [`NAMED_SEMAPHORE_MAX`].
    pub fn create(name: &str, initial: u32) -> io::Result<NamedSemaphore> {
        super::Options::new().open_named_semaphore(name, initial)
    }

    /// Opens the existing semaphore `name` (as `sem_open` without `O_CREAT` does).
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `InvalidInput` for an invalid name; `InvalidData` when the
    /// file under the name is too small to be a semaphore.
    pub fn open(name: &str) -> io::Result<NamedSemaphore> {
        super::Options::new()
            .mode(CreationMode::Open)
            .open_named_semaphore(name, 0)
    }

    // What `sem_open` does, done here so that the creator keeps the file's descriptor and
    // removes the name on drop only if it still is its semaphore: a new file is built unnamed,
    // initialised, and linked under the name in one step (as glibc does, so its `sem_open`
    // never finds a half-made semaphore); an existing one is mapped.
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
        let verb = match mode {
            CreationMode::CreateExclusive => "create",
            CreationMode::OpenOrCreate => "open or create",
            CreationMode::Open => "open",
        };
        let what = || format!("{verb} POSIX semaphore {name}");
        let seg = shm::Options::new()
            .mode(mode)
            .size(SEM_SIZE)
            .permissions(permissions)
            .open_with_init(&file_name(&name), |seg| {
                NamedSem::init(seg.mapping(), initial)
            })
            .context_with(what)?;
        let (link, map) = seg.into_parts();
        let sem = NamedSem::new(map).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: its file is too small for a semaphore", what()),
            )
        })?;
        Ok(NamedSemaphore {
            sem,
            name,
            link: link.is_owner().then_some(link),
        })
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

    /// Whether dropping this handle removes the name (it created it and is not detached).
    pub fn is_owner(&self) -> bool {
        self.link.is_some()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        if let Some(mut link) = self.link.take() {
            link.detach();
        }
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
