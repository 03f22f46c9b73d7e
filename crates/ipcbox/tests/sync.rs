//! Synchronisation across real processes: robust mutex, semaphores, events, condition variables,
//! barriers, and POSIX / System V semaphores shared with Python's posix_ipc and sysv_ipc.

// The tests map a small shared counter array of their own to check the primitives.
#![allow(unsafe_code)]

mod util;

use std::io::{self, BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipcbox::sync::{
    Barrier, Condvar, Event, LockError, Mutex, NamedSemaphore, Options, SemOp, Semaphore,
    SemaphoreSet,
};
use ipcbox::{CreationMode, IpcKey};
use util::{role_arg, role_command, unique_name, watchdog, ChildGuard};

const LIMIT: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// helpers

/// `n` shared `AtomicU32`s in a named POSIX segment of the test's own (not the code under test).
struct Counters {
    ptr: *mut AtomicU32,
    n: usize,
    name: String,
    owner: bool,
}

impl Counters {
    fn create(name: &str, n: usize) -> Counters {
        Counters::map(name, n, true)
    }

    fn open(name: &str, n: usize) -> Counters {
        Counters::map(name, n, false)
    }

    fn map(name: &str, n: usize, create: bool) -> Counters {
        use rustix::shm::OFlags;
        let shm_name = format!("/{name}");
        let flags = if create {
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR
        } else {
            OFlags::RDWR
        };
        let fd = rustix::shm::open(
            shm_name.as_str(),
            flags,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .expect("open counters segment");
        let len = n * 4;
        if create {
            rustix::fs::ftruncate(&fd, len as u64).expect("size counters segment");
        }
        // SAFETY: a fresh mapping chosen by the kernel, of a segment exactly `len` bytes long
        // that no test shrinks; unmapped in Drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .expect("map counters segment");
        Counters {
            ptr: ptr.cast(),
            n,
            name: shm_name,
            owner: create,
        }
    }

    fn at(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.n);
        // SAFETY: in bounds of the live, 4-byte aligned mapping; AtomicU32 accepts any bits.
        unsafe { &*self.ptr.add(i) }
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        // SAFETY: the range this value mapped, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.n * 4) };
        if self.owner {
            let _ = rustix::shm::unlink(self.name.as_str());
        }
    }
}

/// Re-runs this test binary as a child playing the role test `test_fn` with `arg`.
fn role(test_fn: &str, arg: &str) -> ChildGuard {
    ChildGuard::spawn(role_command(test_fn, test_fn, arg).stdout(Stdio::null()))
}

fn shm_gone(name: &str) -> bool {
    !util::shm_exists(name)
}

/// A fresh System V semaphore set under a key nobody uses.
fn fresh_set(nsems: usize) -> SemaphoreSet {
    // Every call in this process tries keys none tried before, so a key `free_key` handed out
    // (and freed) is not taken by a test running beside the one it was handed to.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = (std::process::id() & 0xffff) << 8;
    for _ in 0..10_000u32 {
        let attempt = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = IpcKey::from_raw((0x5c00_0000 | base).wrapping_add(attempt * 7919) as i32);
        match SemaphoreSet::create(key, nsems) {
            Ok(set) => return set,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("semget: {e}"),
        }
    }
    panic!("no free System V key");
}

/// A System V key nobody uses now (for a set a Python peer creates).
fn free_key() -> IpcKey {
    let set = fresh_set(1);
    let key = set.key();
    set.remove().expect("remove probe set");
    key
}

fn sysv_gone(key: IpcKey) -> bool {
    matches!(SemaphoreSet::open(key), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

// ---------------------------------------------------------------------------------------------
// robust mutex

#[test]
fn role_mutex_holder() {
    let Some(arg) = role_arg("role_mutex_holder") else {
        return;
    };
    let _dog = watchdog("mutex holder", LIMIT);
    let mutex = Mutex::open(&arg).unwrap();
    let held = Event::open(&format!("{arg}-held")).unwrap();
    let guard = mutex.lock().unwrap();
    held.set();
    // Hold the lock until the test SIGKILLs this process.
    loop {
        std::thread::park();
        let _ = &guard;
    }
}

/// Runs a holder child that locks `name`, waits until it says so, and SIGKILLs it.
fn kill_holder(name: &str, mutex: &Mutex) {
    let held = Event::create(&format!("{name}-held")).unwrap();
    let holder = role("role_mutex_holder", name);
    assert!(held.wait_timeout(LONG).unwrap(), "holder never locked");
    assert!(matches!(mutex.try_lock(), Ok(None)));
    assert!(matches!(
        mutex.lock_timeout(Duration::from_millis(20)),
        Ok(None)
    ));
    holder.kill();
}

#[test]
fn mutex_reports_owner_death_and_recovers_when_marked_consistent() {
    let _dog = watchdog("mutex owner died", LIMIT);
    let name = unique_name("mutex");
    let mutex = Mutex::create(&name).unwrap();

    kill_holder(&name, &mutex);
    let mut guard = match mutex.lock() {
        Err(LockError::OwnerDied(guard)) => guard,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    guard.mark_consistent().unwrap();
    drop(guard);
    // Works normally again, from this process and from another one.
    drop(mutex.lock().unwrap());
    drop(mutex.try_lock().unwrap().expect("free"));
    kill_holder(&name, &mutex);
    let mut guard = mutex.lock().unwrap_err().into_guard_for_test();
    guard.mark_consistent().unwrap();
    drop(guard);
    drop(mutex.lock().unwrap());

    drop(mutex);
    assert!(shm_gone(&name));
    assert!(shm_gone(&format!("{name}-held")));
}

#[test]
fn mutex_left_inconsistent_becomes_not_recoverable() {
    let _dog = watchdog("mutex not recoverable", LIMIT);
    let name = unique_name("mutex-nr");
    let mutex = Mutex::create(&name).unwrap();
    kill_holder(&name, &mutex);
    let err = mutex.lock().unwrap_err();
    assert!(err.is_owner_died(), "{err:?}");
    drop(err); // unlocks without mark_consistent
    let err = mutex.lock().unwrap_err();
    assert!(matches!(err, LockError::NotRecoverable), "{err:?}");
    assert!(err.to_string().contains("not recoverable"), "{err}");
    let io: io::Error = mutex.try_lock().unwrap_err().into();
    assert!(io.to_string().contains("not recoverable"), "{io}");
    // Repeated tries (glibc's trylock used to leave the word locked here) and other processes
    // keep getting the same answer instead of a deadlock error or a hang.
    assert!(matches!(mutex.try_lock(), Err(LockError::NotRecoverable)));
    role("role_expect_not_recoverable", &name).expect_success("second locker");
    assert!(matches!(
        mutex.lock_timeout(Duration::from_millis(10)),
        Err(LockError::NotRecoverable)
    ));
}

#[test]
fn role_expect_not_recoverable() {
    let Some(arg) = role_arg("role_expect_not_recoverable") else {
        return;
    };
    let _dog = watchdog("second locker", LIMIT);
    let mutex = Mutex::open(&arg).unwrap();
    let got = mutex.lock_timeout(LONG);
    assert!(matches!(got, Err(LockError::NotRecoverable)), "{got:?}");
    assert!(matches!(mutex.try_lock(), Err(LockError::NotRecoverable)));
}

trait IntoGuard<'a> {
    fn into_guard_for_test(self) -> ipcbox::sync::MutexGuard<'a>;
}

impl<'a> IntoGuard<'a> for LockError<ipcbox::sync::MutexGuard<'a>> {
    fn into_guard_for_test(self) -> ipcbox::sync::MutexGuard<'a> {
        match self {
            LockError::OwnerDied(guard) => guard,
            other => panic!("expected OwnerDied, got {other:?}"),
        }
    }
}

#[test]
fn mutex_relock_by_the_holding_thread_is_an_error_not_a_hang() {
    let _dog = watchdog("mutex relock", LIMIT);
    let mutex = Mutex::anonymous().unwrap();
    let guard = mutex.lock().unwrap();
    match mutex.lock() {
        Err(LockError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::Deadlock),
        other => panic!("expected a deadlock error, got {other:?}"),
    }
    drop(guard);
    drop(mutex.lock().unwrap());
}

#[test]
fn mutex_unlocks_without_its_guard_only_from_the_holding_thread() {
    let _dog = watchdog("mutex unlock", LIMIT);
    let mutex = Mutex::anonymous().unwrap();
    std::mem::forget(mutex.lock().unwrap());
    assert!(mutex.try_lock().unwrap().is_none());
    std::thread::scope(|s| {
        let other = s
            .spawn(|| mutex.unlock().unwrap_err().kind())
            .join()
            .unwrap();
        assert_eq!(other, io::ErrorKind::PermissionDenied);
    });
    mutex.unlock().unwrap();
    assert_eq!(
        mutex.unlock().unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    drop(mutex.try_lock().unwrap().expect("free after unlock"));
}

// ---------------------------------------------------------------------------------------------
// counting semaphore

const HOLDER_ROUNDS: u32 = 3000;

#[test]
fn role_semaphore_holder() {
    let Some(arg) = role_arg("role_semaphore_holder") else {
        return;
    };
    let _dog = watchdog("semaphore holder", LIMIT);
    let sem = Semaphore::open(&arg).unwrap();
    let counters = Counters::open(&format!("{arg}-c"), 3);
    let (current, max, total) = (counters.at(0), counters.at(1), counters.at(2));
    for i in 0..HOLDER_ROUNDS {
        sem.acquire().unwrap();
        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(now <= 3, "{now} holders of Semaphore(3)");
        max.fetch_max(now, Ordering::SeqCst);
        for _ in 0..(i % 4) {
            std::thread::yield_now();
        }
        current.fetch_sub(1, Ordering::SeqCst);
        total.fetch_add(1, Ordering::SeqCst);
        sem.release().unwrap();
    }
}

#[test]
fn semaphore_of_three_never_admits_a_fourth_of_five_processes() {
    let _dog = watchdog("semaphore(3) with 5 processes", LIMIT * 2);
    let name = unique_name("sem3");
    let sem = Semaphore::create(&name, 3).unwrap();
    let counters = Counters::create(&format!("{name}-c"), 3);
    let children: Vec<ChildGuard> = (0..5)
        .map(|_| role("role_semaphore_holder", &name))
        .collect();
    for child in children {
        child.expect_success("semaphore holder");
    }
    assert_eq!(counters.at(2).load(Ordering::SeqCst), 5 * HOLDER_ROUNDS);
    let max = counters.at(1).load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "max holders {max}");
    eprintln!("Semaphore(3): at most {max} holders at once");
    assert_eq!(counters.at(0).load(Ordering::SeqCst), 0);
    assert_eq!(sem.value(), 3);
    drop(sem);
    assert!(shm_gone(&name));
}

#[test]
fn role_semaphore_releaser() {
    let Some(arg) = role_arg("role_semaphore_releaser") else {
        return;
    };
    let sem = Semaphore::open(&arg).unwrap();
    sem.release_n(1).unwrap();
    sem.release_n(2).unwrap();
}

#[test]
fn semaphore_acquire_n_waits_for_a_release_by_another_process() {
    let _dog = watchdog("semaphore acquire_n", LIMIT);
    let name = unique_name("semn");
    let sem = Semaphore::create(&name, 0).unwrap();
    let child = role("role_semaphore_releaser", &name);
    sem.acquire_n(3).unwrap();
    child.expect_success("releaser");
    assert_eq!(sem.value(), 0);
}

#[test]
fn semaphore_try_timeout_and_counts() {
    let _dog = watchdog("semaphore try/timeout", LIMIT);
    let sem = Semaphore::anonymous(0).unwrap();
    assert!(!sem.try_acquire().unwrap());
    assert!(!sem.acquire_timeout(Duration::from_millis(30)).unwrap());
    sem.release_n(5).unwrap();
    assert!(!sem.try_acquire_n(6).unwrap());
    assert!(!sem.acquire_n_timeout(6, Duration::from_millis(10)).unwrap());
    assert!(sem.try_acquire_n(4).unwrap());
    assert!(sem.acquire_timeout(Duration::from_millis(10)).unwrap());
    assert_eq!(sem.value(), 0);
}

#[test]
fn semaphore_rejects_bad_counts_and_overflow() {
    let sem = Semaphore::anonymous(ipcbox::sync::SEMAPHORE_MAX).unwrap();
    let err = sem.release().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("overflow"), "{err}");
    let err = sem.acquire_n(0).unwrap_err();
    assert!(
        err.to_string().contains("invalid semaphore count 0"),
        "{err}"
    );
    let err = Semaphore::anonymous(u32::MAX).unwrap_err();
    assert!(err.to_string().contains("4294967295"), "{err}");
    let err = Barrier::anonymous(0).unwrap_err();
    assert!(err.to_string().contains("barrier size 0"), "{err}");
}

#[test]
fn named_primitives_validate_names_kinds_and_modes() {
    for bad in ["", "a/b", "x\0y"] {
        let err = Semaphore::create(bad, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("name"), "{err}");
        let err = NamedSemaphore::create(bad, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    let err = Mutex::create(&"m".repeat(300)).unwrap_err();
    assert!(err.to_string().contains("limit is 255"), "{err}");

    let name = unique_name("kind");
    let err = Event::open(&name).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    let event = Event::create(&name).unwrap();
    let err = Event::create(&name).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    let err = Semaphore::open(&name).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    let same = Options::new()
        .mode(CreationMode::OpenOrCreate)
        .open_event(&name)
        .unwrap();
    event.set();
    assert!(same.is_set());
    drop(same); // an opener never removes the name
    assert!(!shm_gone(&name));
    drop(event);
    assert!(shm_gone(&name));

    // A segment that is not an ipcbox primitive is refused, not trusted.
    let foreign = Counters::create(&name, 6);
    let err = Mutex::open(&name).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    foreign.at(0).store(0xdead_beef, Ordering::SeqCst);
    let err = Semaphore::open(&name).unwrap_err();
    assert!(err.to_string().contains("not an ipcbox primitive"), "{err}");
    drop(foreign);
    assert!(shm_gone(&name));
}

// ---------------------------------------------------------------------------------------------
// event, condition variable, barrier

#[test]
fn role_event_waiter() {
    let Some(arg) = role_arg("role_event_waiter") else {
        return;
    };
    let _dog = watchdog("event waiter", LIMIT);
    let event = Event::open(&arg).unwrap();
    let ready = Semaphore::open(&format!("{arg}-ready")).unwrap();
    ready.release().unwrap();
    assert!(event.wait_timeout(LONG).unwrap(), "event never set");
    assert!(event.is_set());
}

#[test]
fn event_wakes_waiters_in_other_processes() {
    let _dog = watchdog("event", LIMIT);
    let name = unique_name("event");
    let event = Event::create(&name).unwrap();
    let ready = Semaphore::create(&format!("{name}-ready"), 0).unwrap();
    let children: Vec<ChildGuard> = (0..3).map(|_| role("role_event_waiter", &name)).collect();
    ready.acquire_n(3).unwrap();
    assert!(!event.wait_timeout(Duration::from_millis(5)).unwrap());
    event.set();
    for child in children {
        child.expect_success("event waiter");
    }
    event.clear();
    assert!(!event.is_set());
}

const ITEMS: u32 = 300;

#[test]
fn role_producer() {
    let Some(arg) = role_arg("role_producer") else {
        return;
    };
    let _dog = watchdog("producer", LIMIT);
    let mutex = Mutex::open(&format!("{arg}-m")).unwrap();
    let cond = Condvar::open(&format!("{arg}-cv")).unwrap();
    let slot = Counters::open(&format!("{arg}-c"), 1);
    for i in 1..=ITEMS {
        let mut guard = mutex.lock().unwrap();
        while slot.at(0).load(Ordering::SeqCst) != 0 {
            guard = cond.wait(guard).unwrap();
        }
        slot.at(0).store(i, Ordering::SeqCst);
        cond.notify_all();
        drop(guard);
    }
}

#[test]
fn condvar_producer_and_consumer_in_two_processes() {
    let _dog = watchdog("condvar", LIMIT);
    let name = unique_name("cv");
    let mutex = Mutex::create(&format!("{name}-m")).unwrap();
    let cond = Condvar::create(&format!("{name}-cv")).unwrap();
    let slot = Counters::create(&format!("{name}-c"), 1);
    let producer = role("role_producer", &name);
    for i in 1..=ITEMS {
        let mut guard = mutex.lock().unwrap();
        while slot.at(0).load(Ordering::SeqCst) == 0 {
            let (g, _) = cond.wait_timeout(guard, LONG).unwrap();
            guard = g;
        }
        assert_eq!(slot.at(0).load(Ordering::SeqCst), i, "items out of order");
        slot.at(0).store(0, Ordering::SeqCst);
        cond.notify_one();
        drop(guard);
    }
    producer.expect_success("producer");
    let guard = mutex.lock().unwrap();
    let (_guard, result) = cond.wait_timeout(guard, Duration::from_millis(10)).unwrap();
    assert!(result.timed_out());
}

const ROUNDS: usize = 50;

/// One party of the barrier test: `arrivals[r]` counts arrivals in round `r`, `[ROUNDS]` leaders.
fn barrier_party(name: &str, counters: &Counters) -> Result<(), String> {
    let barrier = Barrier::open(name).map_err(|e| e.to_string())?;
    for r in 0..ROUNDS {
        counters.at(r).fetch_add(1, Ordering::SeqCst);
        let result = barrier.wait().map_err(|e| e.to_string())?;
        let seen = counters.at(r).load(Ordering::SeqCst);
        if seen != 3 {
            return Err(format!("passed round {r} with {seen} of 3 arrivals"));
        }
        if result.is_leader() {
            counters.at(ROUNDS).fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

#[test]
fn role_barrier_party() {
    let Some(arg) = role_arg("role_barrier_party") else {
        return;
    };
    let _dog = watchdog("barrier party", LIMIT);
    let counters = Counters::open(&format!("{arg}-c"), ROUNDS + 1);
    barrier_party(&arg, &counters).unwrap();
}

#[test]
fn barrier_of_three_processes() {
    let _dog = watchdog("barrier", LIMIT);
    let name = unique_name("barrier");
    let barrier = Barrier::create(&name, 3).unwrap();
    assert_eq!(barrier.parties(), 3);
    let counters = Counters::create(&format!("{name}-c"), ROUNDS + 1);
    let children: Vec<ChildGuard> = (0..2).map(|_| role("role_barrier_party", &name)).collect();
    barrier_party(&name, &counters).unwrap();
    for child in children {
        child.expect_success("barrier party");
    }
    assert_eq!(counters.at(ROUNDS).load(Ordering::SeqCst), ROUNDS as u32);
}

#[test]
fn barrier_timeout_withdraws_the_arrival() {
    let _dog = watchdog("barrier timeout", LIMIT);
    let barrier = Barrier::anonymous(2).unwrap();
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(20)).unwrap(),
        None
    );
    // Had the timed-out arrival stayed counted, this round would let one party through alone.
    let leaders = std::thread::scope(|s| {
        let other = s.spawn(|| barrier.wait().unwrap().is_leader());
        let me = barrier.wait().unwrap().is_leader();
        u32::from(me) + u32::from(other.join().unwrap())
    });
    assert_eq!(leaders, 1);
}

// ---------------------------------------------------------------------------------------------
// POSIX named semaphores with posix_ipc

#[test]
fn posix_ipc_releases_what_ipcbox_waits_for() {
    let _dog = watchdog("posix_ipc -> ipcbox", LIMIT);
    let dir = util::TempDir::new("psem");
    let file = dir.join("message");
    let name = format!("/{}", unique_name("psem"));
    let sem = NamedSemaphore::create(&name, 0).unwrap();
    assert_eq!(sem.name(), name);
    let script = format!(
        "import posix_ipc\n\
         s = posix_ipc.Semaphore({name:?})\n\
         assert s.value == 0, s.value\n\
         open({file:?}, 'w').write('written by python')\n\
         s.release()\n\
         s.close()\n",
        file = file.display().to_string()
    );
    let py = ChildGuard::spawn(util::python::python(&script));
    assert!(sem.wait_timeout(LONG).unwrap(), "python never released");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "written by python");
    py.expect_success("python posix_ipc peer");
    assert!(!sem.try_wait().unwrap());
    drop(sem);
    assert!(shm_gone(&format!("sem.{}", &name[1..])));
}

#[test]
fn ipcbox_posts_what_posix_ipc_waits_for() {
    let _dog = watchdog("ipcbox -> posix_ipc", LIMIT);
    let dir = util::TempDir::new("psem2");
    let file = dir.join("message");
    let name = format!("/{}", unique_name("psem2"));
    let script = format!(
        "import posix_ipc\n\
         s = posix_ipc.Semaphore({name:?}, posix_ipc.O_CREX, 0o600, 0)\n\
         try:\n\
         \x20   print('ready', flush=True)\n\
         \x20   s.acquire(30)\n\
         \x20   print(open({file:?}).read(), s.value, flush=True)\n\
         finally:\n\
         \x20   s.unlink()\n",
        file = file.display().to_string()
    );
    let mut cmd = util::python::python(&script);
    cmd.stdout(Stdio::piped());
    let mut py = ChildGuard::spawn(cmd);
    let mut out = BufReader::new(py.get().stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let sem = NamedSemaphore::open(&name).unwrap();
    std::fs::write(&file, "written by ipcbox").unwrap();
    sem.post().unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "written by ipcbox 0");
    py.expect_success("python posix_ipc peer");
    drop(sem);
    assert!(shm_gone(&format!("sem.{}", &name[1..])));
}

#[test]
fn named_semaphore_values_timeouts_and_errors() {
    let name = unique_name("psem3");
    let sem = NamedSemaphore::create(&name, 2).unwrap();
    let err = NamedSemaphore::create(&name, 2).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains(&name), "{err}");
    assert_eq!(sem.value().unwrap(), 2);
    assert!(sem.try_wait().unwrap());
    sem.wait().unwrap();
    assert!(!sem.wait_timeout(Duration::from_millis(20)).unwrap());
    let err = NamedSemaphore::create(&unique_name("big"), u32::MAX).unwrap_err();
    assert!(err.to_string().contains("4294967295"), "{err}");
    let err = NamedSemaphore::open(&unique_name("missing")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    drop(sem);
    assert!(shm_gone(&format!("sem.{name}")));
}

// ---------------------------------------------------------------------------------------------
// System V semaphore sets with sysv_ipc

#[test]
fn sysv_ipc_releases_what_ipcbox_semop_waits_for() {
    let _dog = watchdog("sysv_ipc -> ipcbox", LIMIT);
    let dir = util::TempDir::new("ssem");
    let file = dir.join("message");
    let set = fresh_set(1);
    set.set(0, 0).unwrap();
    let script = format!(
        "import sysv_ipc\n\
         s = sysv_ipc.Semaphore({key})\n\
         open({file:?}, 'w').write('written by python')\n\
         s.release()\n",
        key = set.key().as_raw(),
        file = file.display().to_string()
    );
    let py = ChildGuard::spawn(util::python::python(&script));
    assert!(set.op_timeout(&[SemOp::new(0, -1)], LONG).unwrap());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "written by python");
    py.expect_success("python sysv_ipc peer");
    let key = set.key();
    drop(set);
    assert!(sysv_gone(key));
}

#[test]
fn ipcbox_semop_releases_what_sysv_ipc_waits_for() {
    let _dog = watchdog("ipcbox -> sysv_ipc", LIMIT);
    let dir = util::TempDir::new("ssem2");
    let file = dir.join("message");
    let key = free_key();
    let script = format!(
        "import sysv_ipc\n\
         s = sysv_ipc.Semaphore({key}, sysv_ipc.IPC_CREX, 0o600, 0)\n\
         try:\n\
         \x20   print('ready', flush=True)\n\
         \x20   s.acquire(30)\n\
         \x20   print(open({file:?}).read(), s.value, flush=True)\n\
         finally:\n\
         \x20   s.remove()\n",
        key = key.as_raw(),
        file = file.display().to_string()
    );
    let mut cmd = util::python::python(&script);
    cmd.stdout(Stdio::piped());
    let mut py = ChildGuard::spawn(cmd);
    let mut out = BufReader::new(py.get().stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let set = SemaphoreSet::open(key).unwrap();
    assert_eq!(set.len(), 1);
    std::fs::write(&file, "written by ipcbox").unwrap();
    set.op(&[SemOp::new(0, 1)]).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "written by ipcbox 0");
    py.expect_success("python sysv_ipc peer");
    drop(set);
    assert!(sysv_gone(key));
}

#[test]
fn role_sysv_undo() {
    let Some(arg) = role_arg("role_sysv_undo") else {
        return;
    };
    let _dog = watchdog("SEM_UNDO child", LIMIT);
    let set = SemaphoreSet::open(IpcKey::from_raw(arg.parse().unwrap())).unwrap();
    // Take semaphore 0 (undone at exit) and announce it on semaphore 1, in one atomic step…
    set.op(&[SemOp::new(0, -1).undo(), SemOp::new(1, 1)])
        .unwrap();
    // …then wait until the test took the announcement (semaphore 1 back at 0), and exit.
    set.op(&[SemOp::new(1, 0)]).unwrap();
}

#[test]
fn role_sysv_undo_killed() {
    let Some(arg) = role_arg("role_sysv_undo_killed") else {
        return;
    };
    let _dog = watchdog("SEM_UNDO child to be killed", LIMIT);
    let set = SemaphoreSet::open(IpcKey::from_raw(arg.parse().unwrap())).unwrap();
    set.op(&[SemOp::new(0, -2).undo(), SemOp::new(1, 1)])
        .unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn sysv_undo_gives_permits_back_when_the_holder_is_sigkilled() {
    let _dog = watchdog("SEM_UNDO after SIGKILL", LIMIT);
    let set = fresh_set(2);
    set.set_all(&[3, 0]).unwrap();
    let child = role("role_sysv_undo_killed", &set.key().as_raw().to_string());
    set.op(&[SemOp::new(1, -1)]).unwrap();
    assert_eq!(set.get(0).unwrap(), 1, "the child holds 2 of 3");
    child.kill();
    assert_eq!(set.get(0).unwrap(), 3, "SEM_UNDO gave both back");
}

#[test]
fn sysv_semop_over_several_semaphores_undo_and_nowait() {
    let _dog = watchdog("SEM_UNDO", LIMIT);
    let set = fresh_set(3);
    set.set_all(&[1, 0, 7]).unwrap();
    assert_eq!(set.get_all().unwrap(), vec![1, 0, 7]);

    let child = role("role_sysv_undo", &set.key().as_raw().to_string());
    // Wait for the announcement without taking it (-1 then +1 in one atomic step): the child
    // waits for semaphore 1 to be 0 again, so it still holds semaphore 0 while we look.
    assert!(set
        .op_timeout(&[SemOp::new(1, -1), SemOp::new(1, 1)], LONG)
        .unwrap());
    assert_eq!(set.get(0).unwrap(), 0, "the child holds semaphore 0");
    set.op(&[SemOp::new(1, -1)]).unwrap();
    child.expect_success("SEM_UNDO child");
    assert_eq!(
        set.get(0).unwrap(),
        1,
        "SEM_UNDO gave semaphore 0 back at exit"
    );

    // IPC_NOWAIT: all or nothing, WouldBlock, nothing changed.
    let err = set
        .op(&[SemOp::new(0, -1), SemOp::new(1, -1).nowait()])
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert_eq!(set.get_all().unwrap(), vec![1, 0, 7]);
    assert!(!set
        .op_timeout(&[SemOp::new(1, -1)], Duration::from_millis(20))
        .unwrap());
    set.op(&[SemOp::new(0, -1), SemOp::new(2, -5), SemOp::new(1, 2)])
        .unwrap();
    assert_eq!(set.get_all().unwrap(), vec![0, 2, 2]);

    // Bad input.
    let err = set.op(&[SemOp::new(3, 1)]).unwrap_err();
    assert!(err.to_string().contains("index 3 out of range"), "{err}");
    assert!(set.op(&[]).is_err());
    let err = set.set(0, 40_000).unwrap_err();
    assert!(err.to_string().contains("40000"), "{err}");
    let err = set.set_all(&[1]).unwrap_err();
    assert!(err.to_string().contains("needs 3 values"), "{err}");
    let err = SemaphoreSet::create(IpcKey::PRIVATE, 0).unwrap_err();
    assert!(err.to_string().contains("set size 0"), "{err}");
    let err = SemaphoreSet::create(set.key(), 3).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);

    let key = set.key();
    set.remove().unwrap();
    assert!(sysv_gone(key));
}

/// A user the set's permissions exclude is refused at open, by a message naming the key they
/// asked for; one they admit opens it and uses it.
#[test]
fn sysv_open_by_an_excluded_user_is_refused_naming_the_key() {
    let _dog = watchdog("sysv permissions", LIMIT);
    let closed = fresh_set(1); // 0600, ours
    let open = Options::new()
        .permissions(0o666)
        .open_semaphore_set(free_key(), 1)
        .unwrap();
    let key = closed.key();
    let refused = util::as_other_user("open a 0600 semaphore set", || {
        match SemaphoreSet::open(key) {
            Ok(set) => Err(format!(
                "opened set {} regardless of its permissions",
                set.id()
            )),
            Err(e)
                if e.kind() == io::ErrorKind::PermissionDenied
                    && e.to_string().contains(&key.to_string()) =>
            {
                Ok(())
            }
            Err(e) => Err(format!("not a PermissionDenied naming {key}: {e}")),
        }
    });
    if refused {
        let key = open.key();
        util::as_other_user("use a 0666 semaphore set", || {
            let set = SemaphoreSet::open(key).map_err(|e| e.to_string())?;
            set.op(&[SemOp::new(0, 2)]).map_err(|e| e.to_string())
        });
        assert_eq!(open.get(0).unwrap(), 2);
    }
}

#[test]
fn ftok_matches_sysv_ipc() {
    let dir = util::TempDir::new("ftok");
    let key = IpcKey::ftok(dir.path(), 42).unwrap();
    let out = util::python::output(&mut util::python::python(&format!(
        "import sysv_ipc; print(sysv_ipc.ftok({:?}, 42, True))",
        dir.path().display().to_string()
    )));
    assert_eq!(out, key.as_raw().to_string());
    assert!(IpcKey::ftok(dir.join("missing"), 1).is_err());
}

#[test]
fn a_thread_that_ends_holding_the_mutex_is_a_dead_owner() {
    let _dog = watchdog("mutex thread owner", LIMIT);
    let mutex = Mutex::anonymous().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(mutex.lock().unwrap()));
    });
    let mut guard = mutex.lock().unwrap_err().into_guard_for_test();
    guard.mark_consistent().unwrap();
    drop(guard);
    drop(mutex.lock().unwrap());
}

/// A new named mutex and its segment's file in `/dev/shm`, opened for reading and writing as
/// another process (or a peer in another language) would.
fn named_mutex_and_file(tag: &str) -> (String, Mutex, std::fs::File) {
    let name = unique_name(tag);
    let mutex = Mutex::create(&name).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    (name, mutex, file)
}

/// The lock word of a named mutex, read through the segment's file (offset 16, after the
/// header), as a peer in another language would.
fn lock_word(file: &std::fs::File) -> u32 {
    use std::os::unix::fs::FileExt;
    let mut word = [0; 4];
    file.read_exact_at(&mut word, 16).unwrap();
    u32::from_ne_bytes(word)
}

#[test]
fn garbage_written_over_a_mutex_makes_locking_fail_or_recover_never_crash() {
    use std::os::unix::fs::FileExt;
    let _dog = watchdog("mutex garbage", LIMIT);
    let (name, mutex, file) = named_mutex_and_file("mutex-garbage");
    // The documented layout: the holder's thread ID in the low 22 bits of the lock word.
    let guard = mutex.lock().unwrap();
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    assert_eq!(lock_word(&file) & 0x3f_ffff, tid);
    drop(guard);
    assert_eq!(lock_word(&file), 0);

    // Another writer scribbles over the lock and state words, with this thread holding the
    // mutex or not. glibc's robust mutex keeps list pointers there, which its unlock writes
    // through; here the outcome may be any error or a guard, but no crash and no hang.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for round in 0..300u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let held = mutex.try_lock();
        let mut garbage = x.to_ne_bytes();
        if round % 3 == 0 {
            // A state word of 0..=2 now and then, so the lock word alone is tried too.
            garbage[4..].copy_from_slice(&((round / 3) % 3).to_ne_bytes());
        }
        file.write_all_at(&garbage, 16).unwrap();
        drop(held);
        let outcome = match mutex.lock_timeout(Duration::from_millis(20)) {
            Ok(Some(_)) => "locked",
            Ok(None) => "timed out",
            Err(LockError::OwnerDied(_)) => "owner died",
            Err(LockError::NotRecoverable) => "not recoverable",
            Err(LockError::Io(_)) => "error",
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    assert!(outcomes.len() >= 2, "{outcomes:?}");
    // Zeros are a free, consistent mutex again.
    file.write_all_at(&[0; 8], 16).unwrap();
    drop(mutex.lock().unwrap());
    drop(mutex);
    assert!(shm_gone(&name));
}

// ---------------------------------------------------------------------------------------------
// anonymous primitives shared with forked children

/// Forks a child that runs `child` (only atomics, futexes and pthread calls: no allocation)
/// and `_exit`s with its result; returns the child's exit status.
fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child`, which by contract does async-signal-safe work
    // (atomic operations, futex and pthread mutex calls on memory mapped before the fork),
    // then `_exit`s without running destructors or atexit handlers.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child immediately, as fork's contract asks.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is valid for writes.
    let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(ret, pid, "waitpid: {}", io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

#[test]
fn anonymous_primitives_work_across_fork_and_report_a_dead_owner() {
    let _dog = watchdog("fork", LIMIT);
    let sem = Semaphore::anonymous(0).unwrap();
    let mutex = Mutex::anonymous().unwrap();
    let code = fork_and_wait(|| {
        let Ok(guard) = mutex.lock() else { return 1 };
        // Exiting holding the lock: the kernel marks it owner-died for the next locker.
        std::mem::forget(guard);
        match sem.release_n(2) {
            Ok(()) => 0,
            Err(_) => 2,
        }
    });
    assert_eq!(code, 0);
    sem.acquire_n(2).unwrap();
    let mut guard = mutex.lock().unwrap_err().into_guard_for_test();
    guard.mark_consistent().unwrap();
    drop(guard);
    drop(mutex.lock().unwrap());
}

/// Runs `rounds` turns between this process and a forked child: the parent gives, then
/// takes; the child takes, then gives. The child only makes semaphore calls (no allocation
/// on success) and `_exit`s with 0, or 1 at the first error.
fn ping_pong(
    rounds: u32,
    parent: (impl Fn() -> io::Result<()>, impl Fn() -> io::Result<()>),
    child: (impl Fn() -> io::Result<()>, impl Fn() -> io::Result<()>),
) {
    // SAFETY: the child only runs semaphore operations on objects made before the fork
    // (futex, sem_* and semop calls), then `_exit`s without running destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let (take, give) = child;
        let ok = (0..rounds).all(|_| take().is_ok() && give().is_ok());
        // SAFETY: ends the child immediately, as fork's contract asks.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let (give, take) = parent;
    for round in 0..rounds {
        give().unwrap_or_else(|e| panic!("give, round {round}: {e}"));
        take().unwrap_or_else(|e| panic!("take, round {round}: {e}"));
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is valid for writes.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
}

/// The waits spin on a try-operation before they sleep; thousands of quick turns between two
/// processes (most answered while spinning, some after sleeping) must neither lose nor
/// duplicate a permit: every turn completes and every semaphore ends at 0.
#[test]
fn semaphores_ping_pong_between_processes_without_losing_a_permit() {
    let _dog = watchdog("semaphore ping-pong", LIMIT);
    const ROUNDS: u32 = 3000;

    let (a, b) = (
        Semaphore::anonymous(0).unwrap(),
        Semaphore::anonymous(0).unwrap(),
    );
    ping_pong(
        ROUNDS,
        (|| a.release(), || b.acquire()),
        (|| a.acquire(), || b.release()),
    );
    assert_eq!((a.value(), b.value()), (0, 0));

    let a = NamedSemaphore::create(&unique_name("pingpong-a"), 0).unwrap();
    let b = NamedSemaphore::create(&unique_name("pingpong-b"), 0).unwrap();
    ping_pong(
        ROUNDS,
        (|| a.post(), || b.wait()),
        (|| a.wait(), || b.post()),
    );
    assert_eq!((a.value().unwrap(), b.value().unwrap()), (0, 0));

    let set = fresh_set(2);
    let (give, take) = ([SemOp::new(0, 1)], [SemOp::new(1, -1)]);
    let (child_take, child_give) = ([SemOp::new(0, -1)], [SemOp::new(1, 1)]);
    ping_pong(
        ROUNDS,
        (|| set.op(&give), || set.op(&take)),
        (|| set.op(&child_take), || set.op(&child_give)),
    );
    assert_eq!(set.get_all().unwrap(), [0, 0]);
}

#[test]
fn role_locker_out_of_fds() {
    if role_arg("role_locker_out_of_fds").is_none() {
        return;
    }
    let _dog = watchdog("locker out of fds", LIMIT);
    let mutex = Mutex::anonymous().unwrap();
    let (locked, unlock) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            let guard = mutex.lock().unwrap();
            locked.wait();
            unlock.wait();
            drop(guard);
        });
        locked.wait();
        // Use up every file descriptor this process may have (a few more than it has open).
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(got, 0, "getrlimit: {}", io::Error::last_os_error());
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        limit.rlim_cur = open + 8;
        // SAFETY: `limit` is a valid rlimit; this role process is ours alone.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let mut files = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(file) => files.push(file),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                    break;
                }
            }
        }
        // The holder lives: its lock is not taken over, whatever /proc could not tell.
        let got = mutex.lock_timeout(Duration::from_millis(50));
        let timed_out = matches!(got, Ok(None));
        drop(got);
        drop(files);
        unlock.wait();
        assert!(timed_out, "a live holder's mutex was taken");
    });
}

#[test]
fn a_live_holder_keeps_the_mutex_when_the_locker_is_out_of_file_descriptors() {
    let _dog = watchdog("mutex out of fds", LIMIT);
    role("role_locker_out_of_fds", "").expect_success("locker out of fds");
}

#[test]
/// The child of a `fork` made by the thread holding a mutex runs under another thread ID, so
/// it does not own the lock (nor unlock it by dropping the guard it inherited), and the
/// thread's cached lock word is made again for it.
fn a_child_forked_by_the_holding_thread_does_not_own_the_mutex() {
    let _dog = watchdog("fork holder", LIMIT);
    let mutex = Mutex::anonymous().unwrap();
    let guard = mutex.lock().unwrap();
    let code = fork_and_wait(|| {
        // The inherited guard names the parent's thread: dropping it here unlocks nothing.
        drop(guard);
        match mutex.lock_timeout(Duration::from_millis(30)) {
            Ok(None) => {}
            Err(LockError::Io(e)) if e.kind() == io::ErrorKind::Deadlock => return 3,
            Ok(Some(_)) => return 4,
            _ => return 5,
        }
        match mutex.try_lock() {
            Ok(None) => 0,
            _ => 6,
        }
    });
    assert_eq!(code, 0);
}

#[test]
/// A condition-variable waiter whose mutex was taken by a process that died holding it gets
/// `OwnerDied` when it relocks.
fn condvar_wait_reports_an_owner_that_died_while_it_waited() {
    let _dog = watchdog("condvar owner dies", LIMIT);
    let mutex = Mutex::anonymous().unwrap();
    let cond = Condvar::anonymous().unwrap();
    let guard = mutex.lock().unwrap();
    // SAFETY: the child only locks, notifies and `_exit`s (as in `fork_and_wait`).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match mutex.lock() {
            Ok(g) => {
                cond.notify_all();
                std::mem::forget(g);
                0
            }
            Err(_) => 1,
        };
        // SAFETY: ends the child immediately, holding the lock.
        unsafe { libc::_exit(code) };
    }
    assert!(pid > 0, "fork: {}", io::Error::last_os_error());
    let got = cond.wait_timeout(guard, LONG);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is valid for writes.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status:#x}"
    );
    match got {
        Err(LockError::OwnerDied(mut g)) => g.mark_consistent().unwrap(),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    drop(mutex.lock().unwrap());
}

#[test]
fn a_lock_word_naming_the_calling_thread_under_another_tag_is_a_dead_owners() {
    use std::os::unix::fs::FileExt;
    let _dog = watchdog("mutex own tid", LIMIT);
    let (name, mutex, file) = named_mutex_and_file("mutex-own-tid");
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    // A word with this thread's ID but not this thread's word: an earlier thread given the
    // same ID (whose start time could not be read: tag 0), or a forged word. This thread
    // holds nothing, so nobody alive does; waiting for it would wait for ever.
    for word in [tid, tid | 1 << 31] {
        file.write_all_at(&word.to_ne_bytes(), 16).unwrap();
        let mut guard = mutex
            .lock_timeout(Duration::from_millis(50))
            .unwrap_err()
            .into_guard_for_test();
        guard.mark_consistent().unwrap();
        drop(guard);
        assert_eq!(lock_word(&file), 0);
    }
    drop(mutex.lock().unwrap());
    drop(mutex);
    assert!(shm_gone(&name));
}
