//! POSIX named semaphores (`sem_open`) and System V semaphore sets (`semget`, `semop`,
//! `semctl`).

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::cvt;

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

/// A POSIX named semaphore opened with `sem_open`, closed on drop.
#[derive(Debug)]
pub(crate) struct NamedSem(*mut libc::sem_t);

// SAFETY: the `sem_*` functions are thread-safe; the handle is only an address of a mapping.
unsafe impl Send for NamedSem {}
// SAFETY: as above.
unsafe impl Sync for NamedSem {}

impl NamedSem {
    /// `sem_open(name, oflag, mode, value)`.
    pub(crate) fn open(name: &CStr, oflag: i32, mode: u32, value: u32) -> io::Result<NamedSem> {
        // SAFETY: `name` is a valid C string; the variadic arguments are those sem_open reads
        // when O_CREAT is given (mode_t as unsigned int, value as unsigned int).
        let sem = unsafe { libc::sem_open(name.as_ptr(), oflag, mode as libc::c_uint, value) };
        if sem == libc::SEM_FAILED {
            Err(io::Error::last_os_error())
        } else {
            Ok(NamedSem(sem))
        }
    }

    /// `sem_wait`, retried on `EINTR`.
    pub(crate) fn wait(&self) -> io::Result<()> {
        loop {
            // SAFETY: `self.0` came from a successful sem_open and is closed only on drop.
            match cvt(unsafe { libc::sem_wait(self.0) }) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map(drop),
            }
        }
    }

    /// `sem_trywait`: `Ok(false)` when the value is 0.
    pub(crate) fn try_wait(&self) -> io::Result<bool> {
        loop {
            // SAFETY: as in `wait`.
            match cvt(unsafe { libc::sem_trywait(self.0) }) {
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
            match cvt(unsafe { sem_clockwait(self.0, libc::CLOCK_MONOTONIC, &deadline) }) {
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
        cvt(unsafe { libc::sem_post(self.0) }).map(drop)
    }

    /// `sem_getvalue`.
    pub(crate) fn value(&self) -> io::Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: as in `wait`; `v` is valid for writes.
        cvt(unsafe { libc::sem_getvalue(self.0, &mut v) })?;
        Ok(v)
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from sem_open and is closed exactly once, here.
        unsafe { libc::sem_close(self.0) };
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
