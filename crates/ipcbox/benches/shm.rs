//! Criterion benchmarks of the shared-memory fast paths in one process, each beside the bare
//! operation it is built on: `shm::Value<u64>` `get`/`set`/`fetch_add` against an `AtomicU64`;
//! an uncontended `sync::Mutex` lock and unlock against glibc's process-shared
//! `pthread_mutex_t` (plain and robust, since ipcbox's is robust); `sync::Semaphore`
//! `release`+`acquire` against an unnamed process-shared `sem_t`.
//!
//! `cargo bench -p ipcbox --bench shm`. For the same primitives between two pinned processes,
//! see `ipcbox bench --filter "shm value" --filter mutex --filter semaphore`.

// The baselines call glibc directly; the unsafe calls are on objects this file owns.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use ipcbox::shm::Value;
use ipcbox::sync::{Mutex, Semaphore};

fn value(c: &mut Criterion) {
    let mut g = c.benchmark_group("value");
    let value = Value::anonymous(0u64).expect("anonymous value");
    let atomic = AtomicU64::new(0);
    g.bench_function("Value::get", |b| b.iter(|| black_box(&value).get()));
    g.bench_function("AtomicU64 load acquire", |b| {
        b.iter(|| black_box(&atomic).load(Ordering::Acquire))
    });
    g.bench_function("Value::set", |b| b.iter(|| black_box(&value).set(7)));
    g.bench_function("AtomicU64 store release", |b| {
        b.iter(|| black_box(&atomic).store(7, Ordering::Release))
    });
    g.bench_function("Value::fetch_add", |b| {
        b.iter(|| black_box(&value).fetch_add(1))
    });
    g.bench_function("AtomicU64 fetch_add acqrel", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Ordering::AcqRel))
    });
    g.finish();
}

/// A glibc mutex with `PTHREAD_PROCESS_SHARED`, optionally robust and error-checking (as
/// ipcbox's), on the heap.
struct Pthread(Box<UnsafeCell<libc::pthread_mutex_t>>);

impl Pthread {
    fn new(robust: bool) -> Pthread {
        let m = Pthread(Box::new(UnsafeCell::new(
            // SAFETY: all-zero bytes are a valid value of the C struct; init follows.
            unsafe { std::mem::zeroed() },
        )));
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised first and destroyed last; the mutex is ours.
        unsafe {
            assert_eq!(libc::pthread_mutexattr_init(attr.as_mut_ptr()), 0);
            assert_eq!(
                libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED),
                0
            );
            if robust {
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(
                        attr.as_mut_ptr(),
                        libc::PTHREAD_MUTEX_ROBUST
                    ),
                    0
                );
            }
            assert_eq!(libc::pthread_mutex_init(m.0.get(), attr.as_ptr()), 0);
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        }
        m
    }

    fn lock_unlock(&self) {
        // SAFETY: initialised in `new`, and this thread unlocks what it locked.
        unsafe {
            libc::pthread_mutex_lock(self.0.get());
            libc::pthread_mutex_unlock(self.0.get());
        }
    }
}

fn mutex(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex uncontended");
    let mutex = Mutex::anonymous().expect("anonymous mutex");
    g.bench_function("sync::Mutex lock+unlock", |b| {
        b.iter(|| drop(black_box(&mutex).lock().expect("lock")))
    });
    let plain = Pthread::new(false);
    g.bench_function("pthread pshared lock+unlock", |b| {
        b.iter(|| black_box(&plain).lock_unlock())
    });
    let robust = Pthread::new(true);
    g.bench_function("pthread pshared robust errorcheck lock+unlock", |b| {
        b.iter(|| black_box(&robust).lock_unlock())
    });
    g.finish();
}

fn semaphore(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore uncontended");
    let sem = Semaphore::anonymous(0).expect("anonymous semaphore");
    g.bench_function("Semaphore release+acquire", |b| {
        b.iter(|| {
            let s = black_box(&sem);
            s.release().expect("release");
            s.acquire().expect("acquire");
        })
    });
    let raw: Box<UnsafeCell<libc::sem_t>> = Box::new(UnsafeCell::new(
        // SAFETY: all-zero bytes are a valid value of the C struct; sem_init follows.
        unsafe { std::mem::zeroed() },
    ));
    // SAFETY: the semaphore is ours, initialised once, never destroyed while used.
    assert_eq!(unsafe { libc::sem_init(raw.get(), 1, 0) }, 0);
    g.bench_function("sem_t sem_post+sem_wait", |b| {
        b.iter(|| {
            let s = black_box(&raw).get();
            // SAFETY: initialised above; the post makes the wait return at once.
            unsafe {
                libc::sem_post(s);
                libc::sem_wait(s);
            }
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    value(&mut c);
    mutex(&mut c);
    semaphore(&mut c);
    c.final_summary();
}
