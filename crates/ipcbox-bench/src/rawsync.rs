//! The synchronisation baselines' unsafe code, beside `os.rs`: a process-shared
//! `pthread_mutex_t` and an unnamed POSIX semaphore (`sem_t`, `pshared = 1`), each in its own
//! [`SharedMemory`] page made before `fork`, so parent and child use the same object.
//!
//! Each type is a safe wrapper: the object is initialised once in `new`, lives as long as the
//! mapping, and is only reached through the libc calls made for it.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::rawsys::SharedMemory;

/// One `T` at the start of a fresh [`SharedMemory`] mapping: zero-filled, page-aligned, unmapped
/// on drop.
struct Page<T> {
    mem: SharedMemory,
    _holds: PhantomData<T>,
}

impl<T> Page<T> {
    fn new() -> io::Result<Page<T>> {
        const { assert!(align_of::<T>() <= 4096, "a mapping is only page-aligned") };
        Ok(Page {
            mem: SharedMemory::new(size_of::<T>())?,
            _holds: PhantomData,
        })
    }

    /// The `T`, valid while `self` lives.
    fn ptr(&self) -> *mut T {
        self.mem.as_ptr().cast()
    }
}

impl<T> std::fmt::Debug for Page<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").field("mem", &self.mem).finish()
    }
}

fn check(what: &str, ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        let err = io::Error::from_raw_os_error(ret);
        Err(io::Error::new(err.kind(), format!("{what}: {err}")))
    }
}

fn last_error(what: &str) -> io::Error {
    let err = io::Error::last_os_error();
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// A `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` (default type, not robust) and a word
/// that the benchmark protects with it, on the next cache line (as ipcbox's mutex and the value
/// it guards are apart: the lock's line and the data's line move separately).
#[repr(C, align(64))]
struct MutexPage {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    word: CacheLine,
}

#[repr(C, align(64))]
struct CacheLine(AtomicU64);

/// A process-shared, non-robust glibc mutex in shared memory, with one `u64` on the next line.
#[derive(Debug)]
pub struct PthreadMutex {
    page: Page<MutexPage>,
}

impl PthreadMutex {
    /// Maps a page and initialises the mutex in it (`pthread_mutex_init`).
    ///
    /// # Errors
    ///
    /// `mmap` or the pthread calls.
    pub fn new() -> io::Result<PthreadMutex> {
        let page = Page::<MutexPage>::new()?;
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised by `pthread_mutexattr_init` before any other use and
        // destroyed after; the mutex lies in our fresh mapping, which no one else uses yet.
        unsafe {
            check(
                "pthread_mutexattr_init",
                libc::pthread_mutexattr_init(attr.as_mut_ptr()),
            )?;
            let shared = check(
                "pthread_mutexattr_setpshared",
                libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED),
            );
            let init = shared.and_then(|()| {
                check(
                    "pthread_mutex_init",
                    libc::pthread_mutex_init((*page.ptr()).mutex.get(), attr.as_ptr()),
                )
            });
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
            init?;
        }
        Ok(PthreadMutex { page })
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: the page is mapped while `self` lives; only a pointer is formed.
        unsafe { (*self.page.ptr()).mutex.get() }
    }

    /// `pthread_mutex_lock`.
    ///
    /// # Errors
    ///
    /// The pthread error (none is expected for a default mutex).
    #[inline]
    pub fn lock(&self) -> io::Result<()> {
        // SAFETY: the mutex was initialised in `new` and stays mapped while `self` lives.
        check("pthread_mutex_lock", unsafe {
            libc::pthread_mutex_lock(self.raw())
        })
    }

    /// `pthread_mutex_unlock`.
    ///
    /// # Errors
    ///
    /// The pthread error (none is expected when the caller holds it).
    #[inline]
    pub fn unlock(&self) -> io::Result<()> {
        // SAFETY: as in `lock`.
        check("pthread_mutex_unlock", unsafe {
            libc::pthread_mutex_unlock(self.raw())
        })
    }

    /// The word the mutex guards.
    #[inline]
    pub fn word(&self) -> &AtomicU64 {
        // SAFETY: mapped while `self` lives, aligned (page-aligned struct), accessed atomically.
        unsafe { &(*self.page.ptr()).word.0 }
    }
}

/// An unnamed POSIX semaphore shared between processes (`sem_init(sem, 1, 0)`).
#[derive(Debug)]
pub struct PosixSemaphore {
    page: Page<UnsafeCell<libc::sem_t>>,
}

impl PosixSemaphore {
    /// Maps a page and initialises a semaphore of value 0 in it.
    ///
    /// # Errors
    ///
    /// `mmap` or `sem_init`.
    pub fn new() -> io::Result<PosixSemaphore> {
        let page = Page::<UnsafeCell<libc::sem_t>>::new()?;
        // SAFETY: the semaphore lies in our fresh mapping, which no one else uses yet.
        if unsafe { libc::sem_init((*page.ptr()).get(), 1, 0) } != 0 {
            return Err(last_error("sem_init"));
        }
        Ok(PosixSemaphore { page })
    }

    fn raw(&self) -> *mut libc::sem_t {
        // SAFETY: the page is mapped while `self` lives; only a pointer is formed.
        unsafe { (*self.page.ptr()).get() }
    }

    /// `sem_post`.
    ///
    /// # Errors
    ///
    /// `EOVERFLOW`.
    #[inline]
    pub fn post(&self) -> io::Result<()> {
        // SAFETY: initialised in `new`, mapped while `self` lives.
        if unsafe { libc::sem_post(self.raw()) } != 0 {
            return Err(last_error("sem_post"));
        }
        Ok(())
    }

    /// `sem_trywait`, then `sem_timedwait` up to `timeout`; `Ok(false)` on timeout (glibc's
    /// `sem_wait` makes the same user-space attempt first, so the fast path is `sem_wait`'s).
    ///
    /// # Errors
    ///
    /// Errors other than `EAGAIN`, `EINTR` and `ETIMEDOUT`.
    #[inline]
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<bool> {
        // SAFETY: as in `post`.
        if unsafe { libc::sem_trywait(self.raw()) } == 0 {
            return Ok(true);
        }
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let at = Duration::new(
            now.tv_sec.max(0) as u64,
            now.tv_nsec.clamp(0, 999_999_999) as u32,
        )
        .saturating_add(timeout);
        let deadline = libc::timespec {
            tv_sec: at.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: at.subsec_nanos().into(),
        };
        loop {
            // SAFETY: as in `post`; `deadline` is a valid timespec.
            if unsafe { libc::sem_timedwait(self.raw(), &deadline) } == 0 {
                return Ok(true);
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ETIMEDOUT) => return Ok(false),
                _ => return Err(last_error("sem_timedwait")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutex_and_semaphore_can_move_to_another_thread() {
        fn send<T: Send>(_: &T) {}
        send(&PthreadMutex::new().unwrap());
        send(&PosixSemaphore::new().unwrap());
    }

    #[test]
    fn mutex_and_semaphore_work_in_one_process() {
        let m = PthreadMutex::new().unwrap();
        m.lock().unwrap();
        m.word().store(7, std::sync::atomic::Ordering::Relaxed);
        m.unlock().unwrap();
        let s = PosixSemaphore::new().unwrap();
        assert!(!s.wait_timeout(Duration::from_millis(1)).unwrap());
        s.post().unwrap();
        assert!(s.wait_timeout(Duration::from_secs(1)).unwrap());
    }
}
