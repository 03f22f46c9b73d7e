//! Objects without a descriptor (System V message queues and semaphores, the robust mutex,
//! the shared-memory semaphores, events and barriers) in async code: their blocking calls
//! run on tokio's blocking thread pool (`spawn_blocking`), one pool thread per call in
//! progress.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use crate::mq::{SysVQueue, TypeSelector};

type Undo<T, R> = Box<dyn FnOnce(&T, R) + Send>;

/// What a call on the pool and its awaiting future share: the result, whether the future was
/// dropped, and what undoes an unwanted result.
struct Slot<T, R> {
    result: Option<R>,
    abandoned: bool,
    undo: Option<Undo<T, R>>,
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks the call abandoned when its future is dropped, and undoes a result that arrived
/// but was not taken; the pool thread undoes one that arrives later.
struct Abandon<T, R> {
    slot: Arc<Mutex<Slot<T, R>>>,
    object: Arc<T>,
}

impl<T, R> Drop for Abandon<T, R> {
    fn drop(&mut self) {
        let mut slot = lock(&self.slot);
        slot.abandoned = true;
        if let (Some(r), Some(undo)) = (slot.result.take(), slot.undo.take()) {
            drop(slot);
            undo(&self.object, r);
        }
    }
}

fn shut_down() -> io::Error {
    io::Error::other("the tokio runtime's blocking pool shut down before the call ran")
}

/// An object whose blocking calls run on tokio's blocking pool.
///
/// [`Blocking::run`] moves a call to a pool thread and awaits it. A call cannot be stopped
/// once it runs: dropping the future lets it finish there and drops its result, so `run` is
/// cancel-safe only for calls whose result may be dropped. [`Blocking::run_or_undo`] makes
/// any call cancel-safe by undoing an unwanted result (releasing an acquired semaphore,
/// keeping a received message for the next call).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use ipcbox::sync::Semaphore;
/// let sem = ipcbox::tokio::Blocking::new(Semaphore::anonymous(0)?);
/// sem.get_ref().release()?;
/// sem.run_or_undo(|s| s.acquire(), |s, got| if got.is_ok() { let _ = s.release(); })
///     .await??;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Blocking<T> {
    object: Arc<T>,
}

impl<T: Send + Sync + 'static> Blocking<T> {
    /// Wraps `object`.
    pub fn new(object: T) -> Blocking<T> {
        Blocking {
            object: Arc::new(object),
        }
    }

    /// The object, for its non-blocking calls.
    pub fn get_ref(&self) -> &T {
        &self.object
    }

    /// Runs `call` on the blocking pool and returns its result.
    ///
    /// Not cancel-safe for calls with an effect to undo: a dropped future lets the call
    /// finish and drops its result.
    ///
    /// # Errors
    ///
    /// The runtime's blocking pool shut down. A panic in `call` is resumed here.
    pub async fn run<R: Send + 'static>(
        &self,
        call: impl FnOnce(&T) -> R + Send + 'static,
    ) -> io::Result<R> {
        self.call(call, None).await
    }

    /// Runs `call` on the blocking pool and returns its result; if the future is dropped
    /// before the result is taken, `undo` gets the result on whichever thread has it last.
    ///
    /// Cancel-safe when `undo` reverses `call`.
    ///
    /// # Errors
    ///
    /// As [`Blocking::run`].
    pub async fn run_or_undo<R: Send + 'static>(
        &self,
        call: impl FnOnce(&T) -> R + Send + 'static,
        undo: impl FnOnce(&T, R) + Send + 'static,
    ) -> io::Result<R> {
        self.call(call, Some(Box::new(undo))).await
    }

    async fn call<R: Send + 'static>(
        &self,
        call: impl FnOnce(&T) -> R + Send + 'static,
        undo: Option<Undo<T, R>>,
    ) -> io::Result<R> {
        let slot = Arc::new(Mutex::new(Slot {
            result: None,
            abandoned: false,
            undo,
        }));
        let _guard = Abandon {
            slot: slot.clone(),
            object: self.object.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (object, shared) = (self.object.clone(), slot.clone());
        let handle = tokio::task::spawn_blocking(move || {
            let r = call(&object);
            let mut s = lock(&shared);
            if s.abandoned {
                if let Some(undo) = s.undo.take() {
                    drop(s);
                    undo(&object, r);
                }
            } else {
                s.result = Some(r);
                drop(s);
                let _ = tx.send(());
            }
        });
        let woke = rx.await;
        if let Err(e) = handle.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        woke.map_err(|_| shut_down())?;
        let mut s = lock(&slot);
        s.undo = None;
        s.result.take().ok_or_else(shut_down)
    }
}

/// A System V message queue with async receive and send on the blocking pool.
///
/// Cancel-safe receives: a `recv` dropped while its `msgrcv` waits on the pool leaves that
/// call running, and the next `recv` awaits it instead of starting another. A message it
/// brings that the next selector does not want is kept, and returned first by the first
/// `recv` whose selector matches its type (a kept message can thus come before an older one
/// still in the kernel's queue).
#[derive(Debug)]
pub struct SysVReceiver {
    queue: Arc<SysVQueue>,
    kept: Mutex<Kept>,
    pending: Mutex<Option<Pending>>,
}

/// Messages brought by receives nobody awaited any more: (bytes, type), oldest first.
type Kept = VecDeque<(Vec<u8>, i64)>;
/// A receive still running on the pool.
type Pending = tokio::sync::oneshot::Receiver<io::Result<(Vec<u8>, i64)>>;

fn matches(sel: TypeSelector, t: i64) -> bool {
    match sel {
        TypeSelector::Any => true,
        TypeSelector::Exactly(x) => t == x,
        TypeSelector::AtMost(x) => t <= x,
        TypeSelector::Except(x) => t != x,
    }
}

/// Puts a receive still running back for the next `recv` if its future is dropped.
struct PutBack<'a> {
    slot: &'a Mutex<Option<Pending>>,
    rx: Option<Pending>,
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            *lock(self.slot) = Some(rx);
        }
    }
}

impl SysVReceiver {
    /// Wraps `queue`.
    pub fn new(queue: SysVQueue) -> SysVReceiver {
        SysVReceiver {
            queue: Arc::new(queue),
            kept: Mutex::default(),
            pending: Mutex::default(),
        }
    }

    /// The queue, for its non-blocking calls.
    pub fn get_ref(&self) -> &SysVQueue {
        &self.queue
    }

    fn start(&self, max: usize, sel: TypeSelector) -> Pending {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; max];
            let got = queue.recv(&mut buf, sel).map(|got| {
                buf.truncate(got.len);
                (buf, got.mtype)
            });
            let _ = tx.send(got);
        });
        rx
    }

    /// Receives a message chosen by `sel` of up to `max` bytes (`msgrcv` on the pool);
    /// returns its bytes and type.
    ///
    /// # Errors
    ///
    /// As [`SysVQueue::recv`] (for a receive a dropped call started: with that call's
    /// arguments); the pool shut down.
    pub async fn recv(&self, max: usize, sel: TypeSelector) -> io::Result<(Vec<u8>, i64)> {
        loop {
            {
                let mut kept = lock(&self.kept);
                if let Some(i) = kept.iter().position(|(_, t)| matches(sel, *t)) {
                    if let Some(m) = kept.remove(i) {
                        return Ok(m);
                    }
                }
            }
            let pending = lock(&self.pending).take();
            let mut call = PutBack {
                slot: &self.pending,
                rx: Some(pending.unwrap_or_else(|| self.start(max, sel))),
            };
            let Some(rx) = call.rx.as_mut() else {
                continue;
            };
            let got = rx.await;
            call.rx = None;
            let (m, t) = got.map_err(|_| shut_down())??;
            if matches(sel, t) {
                return Ok((m, t));
            }
            lock(&self.kept).push_back((m, t));
        }
    }

    /// Sends `data` as a message of type `mtype`, waiting for room on the pool (`msgsnd`).
    ///
    /// Not cancel-safe: a dropped future may have sent the message.
    ///
    /// # Errors
    ///
    /// As [`SysVQueue::send`]; the pool shut down.
    pub async fn send(&self, data: Vec<u8>, mtype: i64) -> io::Result<()> {
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || queue.send(&data, mtype))
            .await
            .map_err(|_| shut_down())?
    }
}
