//! POSIX named semaphores (the `sem_*` calls on a mapped `sem_t`) and System V semaphore
//! sets (`semget`, `semop`, `semctl`).

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::cvt;
use super::mmap::Mapping;

// glibc ≥ 2.30 has these; the `libc` crate does not declare them for every target.
extern "C" {
    fn sem_clockwait(
        sem: *mut libc::sem_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
    fn semtimedop(
        semid: libc::c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> libc::c_int;
}

/// A CLOCK_MONOTONIC deadline `timeout` from now, as an absolute `timespec`.
fn monotonic_deadline(timeout: Duration) -> libc::timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let total = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32).saturating_add(timeout);
    libc::timespec {
        tv_sec: total.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: total.subsec_nanos() as libc::c_long,
    }
}

/// A POSIX named semaphore: the `sem_t` at the start of a shared mapping of its file
/// (`/dev/shm/sem.<name>`), as `sem_open` maps it.
// glibc's `sem_open` creates the file with one `sem_t` in it (initialised as `sem_init` with
// `pshared` does) and maps it; its `sem_*` calls work on any process-shared `sem_t`. Mapping
// the file ourselves lets the creator keep the file's descriptor, and so know its file.
#[derive(Debug)]
pub(crate) struct NamedSem(Mapping);

/// The size of a semaphore's file.
pub(crate) const SEM_SIZE: usize = std::mem::size_of::<libc::sem_t>();

impl NamedSem {
    /// The semaphore at the start of `map`, a read-write mapping of a semaphore's file; `None`
    /// when `map` is too small to hold one.
    pub(crate) fn new(map: Mapping) -> Option<NamedSem> {
        (map.len() >= SEM_SIZE).then_some(NamedSem(map))
    }

    /// Makes the start of `map` (a read-write mapping of a new file, not yet shared with
    /// anyone) a process-shared semaphore of value `value` (`sem_init(sem, 1, value)`).
    pub(crate) fn init(map: &Mapping, value: u32) -> io::Result<()> {
        if map.len() < SEM_SIZE {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: the mapping is writable, page-aligned and holds a `sem_t`; nobody else uses
        // it yet, so initialising it in place races with no one.
        cvt(unsafe { libc::sem_init(map.as_ptr().cast(), 1, value) }).map(drop)
    }

    fn ptr(&self) -> *mut libc::sem_t {
        self.0.as_ptr().cast()
    }

    /// `sem_wait`, retried on `EINTR`.
    pub(crate) fn wait(&self) -> io::Result<()> {
        loop {
            // SAFETY: `ptr()` is a page-aligned `sem_t` in a shared mapping that lives as long
            // as `self`; the `sem_*` calls are atomic on it. Another process may have written
            // anything there: a `sem_t` holds no pointer, so garbage makes the calls fail or
            // misbehave as a semaphore, never touch memory outside it.
            match cvt(unsafe { libc::sem_wait(self.ptr()) }) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map(drop),
            }
        }
    }

    /// `sem_trywait`: `Ok(false)` when the value is 0.
    pub(crate) fn try_wait(&self) -> io::Result<bool> {
        loop {
            // SAFETY: as in `wait`.
            match cvt(unsafe { libc::sem_trywait(self.ptr()) }) {
                Ok(_) => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `sem_clockwait` with a CLOCK_MONOTONIC deadline: `Ok(false)` on timeout.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = monotonic_deadline(timeout);
        loop {
            // SAFETY: as in `wait`; `deadline` is valid for the call.
            match cvt(unsafe { sem_clockwait(self.ptr(), libc::CLOCK_MONOTONIC, &deadline) }) {
                Ok(_) => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `sem_post`.
    pub(crate) fn post(&self) -> io::Result<()> {
        // SAFETY: as in `wait`.
        cvt(unsafe { libc::sem_post(self.ptr()) }).map(drop)
    }

    /// `sem_getvalue`.
    pub(crate) fn value(&self) -> io::Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: as in `wait`; `v` is valid for writes.
        cvt(unsafe { libc::sem_getvalue(self.ptr(), &mut v) })?;
        Ok(v)
    }
}

/// `sem_unlink(name)`.
pub(crate) fn sem_unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid C string.
    cvt(unsafe { libc::sem_unlink(name.as_ptr()) }).map(drop)
}

/// `semget(key, nsems, flags)`.
pub(crate) fn semget(key: i32, nsems: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: plain integer arguments.
    cvt(unsafe { libc::semget(key, nsems, flags) })
}

/// `semop`, or `semtimedop` when `timeout` is given; retried on `EINTR` only without timeout.
pub(crate) fn semop(
    id: i32,
    ops: &mut [libc::sembuf],
    timeout: Option<Duration>,
) -> io::Result<()> {
    loop {
        let ret = match timeout {
            // SAFETY: `ops` is a valid array of `ops.len()` sembufs for the call.
            None => unsafe { libc::semop(id, ops.as_mut_ptr(), ops.len()) },
            Some(d) => {
                let ts = libc::timespec {
                    tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                // SAFETY: as above; `ts` is valid for the call.
                unsafe { semtimedop(id, ops.as_mut_ptr(), ops.len(), &ts) }
            }
        };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && timeout.is_none() => continue,
            r => return r.map(drop),
        }
    }
}

/// `semctl(id, num, cmd)` for the commands without a fourth argument (GETVAL, IPC_RMID…).
pub(crate) fn semctl(id: i32, num: i32, cmd: i32) -> io::Result<i32> {
    // SAFETY: these commands do not read a fourth argument.
    cvt(unsafe { libc::semctl(id, num, cmd) })
}

/// `semctl(id, num, SETVAL, value)`.
pub(crate) fn semctl_setval(id: i32, num: i32, value: i32) -> io::Result<()> {
    // SAFETY: SETVAL reads the `val` member of `union semun`, an int passed by value.
    cvt(unsafe { libc::semctl(id, num, libc::SETVAL, value) }).map(drop)
}

/// `semctl(id, 0, GETALL/SETALL, array)`: `values` must have exactly `nsems` elements.
pub(crate) fn semctl_all(id: i32, cmd: i32, values: &mut [u16]) -> io::Result<()> {
    let nsems = semctl_nsems(id)?;
    if values.len() != nsems {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "System V semaphore set {id} has {nsems} semaphores, not {}",
                values.len()
            ),
        ));
    }
    // SAFETY: GETALL/SETALL read/write `nsems` unsigned shorts through the `array` member of
    // `union semun`, passed as a pointer; `values` has exactly that many.
    cvt(unsafe { libc::semctl(id, 0, cmd, values.as_mut_ptr()) }).map(drop)
}

/// The number of semaphores in the set (`IPC_STAT`'s `sem_nsems`).
pub(crate) fn semctl_nsems(id: i32) -> io::Result<usize> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: IPC_STAT writes one `semid_ds` through the `buf` member of `union semun`.
    cvt(unsafe { libc::semctl(id, 0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: semctl succeeded and filled it; zeroed was valid as well.
    let ds = unsafe { ds.assume_init() };
    Ok(ds.sem_nsems as usize)
}
