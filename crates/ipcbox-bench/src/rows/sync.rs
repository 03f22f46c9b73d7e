//! Synchronisation between two processes, latency only: a mutex handed back and forth, and
//! semaphore ping-pong (the bench releases one semaphore and acquires a second, the peer the
//! other way round). Each ipcbox row has a raw row running the same loop on glibc's own
//! process-shared objects in anonymous shared memory.

use std::io;
use std::sync::atomic::Ordering::Relaxed;

use ipcbox::shm::Value;
use ipcbox::sync::{Mutex, NamedSemaphore, SemOp, Semaphore, SemaphoreSet};
use ipcbox::IpcKey;

use crate::rawsync::{PosixSemaphore, PthreadMutex};
use crate::row::{forked, Info, Kind, Link, Row};
use crate::rows::common::unique_name;
use crate::rows::turns::{block_until, spin_until, Echo, Peer, Turn};

/// The mutex and semaphore rows.
pub fn rows() -> Vec<Box<dyn Row>> {
    let info = |name, group, kind| Info::new(name, group, kind).sizes(&[]);
    vec![
        forked(info("mutex hand-off", "mutex", Kind::Ipcbox), MutexApi),
        forked(info("pthread mutex raw", "mutex", Kind::Raw), MutexRaw),
        forked(
            info("semaphore ping-pong", "semaphore", Kind::Ipcbox),
            SemaphoreApi,
        ),
        forked(info("sem_t raw", "semaphore", Kind::Raw), SemaphoreRaw),
        forked(
            info("named semaphore", "semaphore", Kind::Ipcbox),
            NamedSemaphoreApi,
        ),
        forked(
            info("System V semaphore", "semaphore", Kind::Ipcbox),
            SemaphoreSetApi,
        ),
    ]
}

/// Whose turn it is, in the word the mutex protects: the bench's or the peer's.
const BENCH: u64 = 0;
const PEER: u64 = 1;

fn turns(child: bool) -> (u64, u64) {
    if child {
        (PEER, BENCH)
    } else {
        (BENCH, PEER)
    }
}

/// Strict alternation under a lock: each side waits for its turn by locking, reading the
/// turn word and unlocking (spinning between tries), and hands over by locking, writing the
/// other side's turn and unlocking. One round trip is two hand-offs of the lock.
#[derive(Debug)]
struct MutexApi;

/// `ipcbox::sync::Mutex::anonymous` guarding an `ipcbox::shm::Value<u64>` (the turn).
#[derive(Debug)]
struct MutexTurn {
    mutex: Mutex,
    turn: Value<u64>,
    me: u64,
    other: u64,
    peer: Peer,
}

impl MutexTurn {
    fn new((mutex, turn): (Mutex, Value<u64>), child: bool) -> Echo<MutexTurn> {
        let (me, other) = turns(child);
        Echo::new(MutexTurn {
            mutex,
            turn,
            me,
            other,
            peer: Peer::of(child),
        })
    }
}

impl Turn for MutexTurn {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        let _guard = self.mutex.lock()?;
        self.turn.set(self.other);
        Ok(())
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        spin_until(self.peer, || {
            let _guard = self.mutex.lock()?;
            Ok(self.turn.get() == self.me)
        })
    }
}

impl Link for MutexApi {
    type Shared = (Mutex, Value<u64>);
    type Parent = Echo<MutexTurn>;
    type Child = Echo<MutexTurn>;

    fn prepare(&self, _max_message: usize) -> io::Result<Self::Shared> {
        Ok((Mutex::anonymous()?, Value::anonymous(BENCH)?))
    }

    fn parent(&self, shared: Self::Shared) -> io::Result<Self::Parent> {
        Ok(MutexTurn::new(shared, false))
    }

    fn child(&self, shared: Self::Shared) -> io::Result<Self::Child> {
        Ok(MutexTurn::new(shared, true))
    }
}

/// The same loop on a process-shared, non-robust `pthread_mutex_t` (default type) and an
/// `AtomicU64` beside it.
#[derive(Debug)]
struct MutexRaw;

#[derive(Debug)]
struct PthreadTurn {
    mutex: PthreadMutex,
    me: u64,
    other: u64,
    peer: Peer,
}

impl PthreadTurn {
    fn new(mutex: PthreadMutex, child: bool) -> Echo<PthreadTurn> {
        let (me, other) = turns(child);
        Echo::new(PthreadTurn {
            mutex,
            me,
            other,
            peer: Peer::of(child),
        })
    }
}

impl Turn for PthreadTurn {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        self.mutex.lock()?;
        self.mutex.word().store(self.other, Relaxed);
        self.mutex.unlock()
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        spin_until(self.peer, || {
            self.mutex.lock()?;
            let mine = self.mutex.word().load(Relaxed) == self.me;
            self.mutex.unlock()?;
            Ok(mine)
        })
    }
}

impl Link for MutexRaw {
    type Shared = PthreadMutex;
    type Parent = Echo<PthreadTurn>;
    type Child = Echo<PthreadTurn>;

    fn prepare(&self, _max_message: usize) -> io::Result<PthreadMutex> {
        PthreadMutex::new()
    }

    fn parent(&self, mutex: PthreadMutex) -> io::Result<Self::Parent> {
        Ok(PthreadTurn::new(mutex, false))
    }

    fn child(&self, mutex: PthreadMutex) -> io::Result<Self::Child> {
        Ok(PthreadTurn::new(mutex, true))
    }
}

/// Two semaphores of value 0, one per direction: a side gives the turn by releasing the
/// semaphore its peer waits on and takes it back by acquiring its own.
#[derive(Debug)]
struct Pair<S> {
    give: S,
    take: S,
    peer: Peer,
}

impl<S> Pair<S> {
    /// The side `child` says of the semaphores (to the child, to the bench).
    fn new((to_child, to_bench): (S, S), child: bool) -> Echo<Pair<S>> {
        let (give, take) = if child {
            (to_bench, to_child)
        } else {
            (to_child, to_bench)
        };
        Echo::new(Pair {
            give,
            take,
            peer: Peer::of(child),
        })
    }
}

/// Makes a [`Link`] of a pair of semaphores of type `$sem`, made by `$make`.
macro_rules! pair_link {
    ($link:ident, $sem:ty, $make:expr) => {
        impl Link for $link {
            type Shared = ($sem, $sem);
            type Parent = Echo<Pair<$sem>>;
            type Child = Echo<Pair<$sem>>;

            fn prepare(&self, _max_message: usize) -> io::Result<Self::Shared> {
                let make = $make;
                Ok((make()?, make()?))
            }

            fn parent(&self, shared: Self::Shared) -> io::Result<Self::Parent> {
                Ok(Pair::new(shared, false))
            }

            fn child(&self, shared: Self::Shared) -> io::Result<Self::Child> {
                Ok(Pair::new(shared, true))
            }
        }
    };
}

/// `ipcbox::sync::Semaphore::anonymous`: `release`, `acquire_timeout`.
#[derive(Debug)]
struct SemaphoreApi;

pair_link!(SemaphoreApi, Semaphore, || Semaphore::anonymous(0));

impl Turn for Pair<Semaphore> {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        self.give.release()
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        block_until(self.peer, |t| self.take.acquire_timeout(t))
    }
}

/// The same on glibc's unnamed process-shared `sem_t`: `sem_post`, `sem_timedwait`.
#[derive(Debug)]
struct SemaphoreRaw;

pair_link!(SemaphoreRaw, PosixSemaphore, PosixSemaphore::new);

impl Turn for Pair<PosixSemaphore> {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        self.give.post()
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        block_until(self.peer, |t| self.take.wait_timeout(t))
    }
}

/// `ipcbox::sync::NamedSemaphore` (`sem_open`): `post`, `wait_timeout`. The names are
/// removed by the bench; the peer detaches its copies.
#[derive(Debug)]
struct NamedSemaphoreApi;

fn named_semaphore() -> io::Result<NamedSemaphore> {
    NamedSemaphore::create(&unique_name("ipcbox-bench-sem"), 0)
}

impl Link for NamedSemaphoreApi {
    type Shared = (NamedSemaphore, NamedSemaphore);
    type Parent = Echo<Pair<NamedSemaphore>>;
    type Child = Echo<Pair<NamedSemaphore>>;

    fn prepare(&self, _max_message: usize) -> io::Result<Self::Shared> {
        Ok((named_semaphore()?, named_semaphore()?))
    }

    fn parent(&self, shared: Self::Shared) -> io::Result<Self::Parent> {
        Ok(Pair::new(shared, false))
    }

    fn child(&self, (mut a, mut b): Self::Shared) -> io::Result<Self::Child> {
        a.detach();
        b.detach();
        Ok(Pair::new((a, b), true))
    }
}

impl Turn for Pair<NamedSemaphore> {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        self.give.post()
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        block_until(self.peer, |t| self.take.wait_timeout(t))
    }
}

/// `ipcbox::sync::SemaphoreSet` (System V, `IPC_PRIVATE`, two semaphores): `op` with +1 on
/// the peer's, `op_timeout` with -1 on its own. The bench removes the set; the peer detaches.
#[derive(Debug)]
struct SemaphoreSetApi;

/// A set and which of its semaphores a side gives and takes.
#[derive(Debug)]
struct SetTurn {
    set: SemaphoreSet,
    give: u16,
    take: u16,
    peer: Peer,
}

impl Link for SemaphoreSetApi {
    type Shared = SemaphoreSet;
    type Parent = Echo<SetTurn>;
    type Child = Echo<SetTurn>;

    fn prepare(&self, _max_message: usize) -> io::Result<SemaphoreSet> {
        SemaphoreSet::create(IpcKey::PRIVATE, 2)
    }

    fn parent(&self, set: SemaphoreSet) -> io::Result<Self::Parent> {
        Ok(Echo::new(SetTurn {
            set,
            give: 0,
            take: 1,
            peer: Peer::Child,
        }))
    }

    fn child(&self, mut set: SemaphoreSet) -> io::Result<Self::Child> {
        set.detach();
        Ok(Echo::new(SetTurn {
            set,
            give: 1,
            take: 0,
            peer: Peer::of(true),
        }))
    }
}

impl Turn for SetTurn {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        self.set.op(&[SemOp::new(self.give, 1)])
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        let op = [SemOp::new(self.take, -1)];
        block_until(self.peer, |t| self.set.op_timeout(&op, t))
    }
}
