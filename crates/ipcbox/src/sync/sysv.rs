//! System V semaphore sets (`semget`, `semop`, `semctl`), the objects `sysv_ipc.Semaphore`
//! uses.

use std::io;
use std::time::Duration;

use crate::error::{invalid_input, ResultExt};
use crate::ipc_key::IpcKey;
use crate::mode::CreationMode;
use crate::sys::sem::{semctl, semctl_all, semctl_nsems, semctl_setval, semget, semop};

/// The largest value of a System V semaphore (`SEMVMX`).
pub const SEMVMX: u16 = 32767;
/// The most semaphores in one set (`SEMMSL`, Linux default).
pub const SEMMSL: usize = 32000;

/// The permission bits `semget` checks when opening: read (`GETVAL`, `IPC_STAT`) and alter
/// (`semop`, `SETVAL`).
const READ_ALTER: i32 = 0o600;

/// One operation of [`SemaphoreSet::op`] (a `struct sembuf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemOp {
    index: u16,
    delta: i16,
    flags: i16,
}

impl SemOp {
    /// Adds `delta` to semaphore `index`: positive releases, negative acquires (waiting until
    /// the value is large enough), 0 waits until the value is 0.
    pub fn new(index: u16, delta: i16) -> SemOp {
        SemOp {
            index,
            delta,
            flags: 0,
        }
    }

    /// `SEM_UNDO`: the kernel reverts this operation when the process exits (even if
    /// killed), so permits taken by a dying process are given back.
    pub fn undo(mut self) -> SemOp {
        self.flags |= libc::SEM_UNDO as i16;
        self
    }

    /// `IPC_NOWAIT`: fail with [`io::ErrorKind::WouldBlock`] instead of waiting.
    pub fn nowait(mut self) -> SemOp {
        self.flags |= libc::IPC_NOWAIT as i16;
        self
    }

    fn raw(&self) -> libc::sembuf {
        libc::sembuf {
            sem_num: self.index,
            sem_op: self.delta,
            sem_flg: self.flags,
        }
    }
}

/// A System V semaphore set: `nsems` semaphores operated on atomically together by
/// [`op`](SemaphoreSet::op) (`semop`). `sysv_ipc.Semaphore(key)` is a set of one.
///
/// The set outlives every process until removed; the creator removes it on drop unless
/// [`detach`](SemaphoreSet::detach)ed.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::sync::{SemOp, SemaphoreSet};
/// use ipcbox::IpcKey;
///
/// let set = SemaphoreSet::create(IpcKey::PRIVATE, 2)?;
/// set.set_all(&[1, 0])?;
/// // take semaphore 0 and give semaphore 1, atomically, undone if this process dies
/// set.op(&[SemOp::new(0, -1).undo(), SemOp::new(1, 1).undo()])?;
/// assert_eq!(set.get_all()?, vec![0, 1]);
/// # Ok(())
/// # }
/// ```
///
/// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
#[derive(Debug)]
#[doc(alias = "semget")]
pub struct SemaphoreSet {
    id: i32,
    key: IpcKey,
    nsems: usize,
    owner: bool,
}

impl SemaphoreSet {
    /// Creates a set of `nsems` semaphores (values 0) under `key`, owner-only
    /// (`semget(IPC_CREAT | IPC_EXCL)`); [`IpcKey::PRIVATE`] makes a set only reachable through
    /// its [`id`](SemaphoreSet::id). [`Options`](super::Options) chooses another creation mode
    /// or permissions.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if `key` has a set; `InvalidInput` when `nsems` is 0 or above
    /// [`SEMMSL`].
    pub fn create(key: IpcKey, nsems: usize) -> io::Result<SemaphoreSet> {
        SemaphoreSet::with_options(key, CreationMode::CreateExclusive, 0o600, nsems)
    }

    /// Opens the existing set under `key` (`semget(key, 0, 0600)`).
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none; `PermissionDenied` when its permissions do not let us read
    /// and alter it. Both name the key.
    pub fn open(key: IpcKey) -> io::Result<SemaphoreSet> {
        SemaphoreSet::with_options(key, CreationMode::Open, 0, 0)
    }

    pub(crate) fn with_options(
        key: IpcKey,
        mode: CreationMode,
        permissions: u32,
        nsems: usize,
    ) -> io::Result<SemaphoreSet> {
        if mode != CreationMode::Open && (nsems == 0 || nsems > SEMMSL) {
            return Err(invalid_input(format_args!(
                "invalid System V semaphore set size {nsems}: must be between 1 and {SEMMSL}"
            )));
        }
        let perms = (permissions & 0o777) as i32;
        let (id, owner) = mode.create_or_open(
            || {
                let flags = libc::IPC_CREAT | libc::IPC_EXCL | perms;
                semget(key.as_raw(), nsems as i32, flags).context_with(|| {
                    format!("create System V semaphore set {key} ({nsems} semaphores)")
                })
            },
            // Asking for read and alter permission makes `semget` refuse a caller the set's
            // permissions exclude, naming the key, rather than every later call fail.
            || {
                semget(key.as_raw(), 0, READ_ALTER)
                    .context_with(|| format!("open System V semaphore set {key}"))
            },
        )?;
        let nsems = semctl_nsems(id).context_with(|| {
            format!("read the size of System V semaphore set {key} (id {id}) with IPC_STAT")
        })?;
        Ok(SemaphoreSet {
            id,
            key,
            nsems,
            owner,
        })
    }

    fn check_index(&self, index: usize) -> io::Result<i32> {
        if index < self.nsems {
            Ok(index as i32)
        } else {
            Err(invalid_input(format_args!(
                "semaphore index {index} out of range: set {} has {} semaphores",
                self.id, self.nsems
            )))
        }
    }

    fn ops(&self, ops: &[SemOp]) -> io::Result<Vec<libc::sembuf>> {
        if ops.is_empty() {
            return Err(invalid_input("semop with no operations"));
        }
        ops.iter()
            .map(|op| {
                self.check_index(usize::from(op.index))?;
                Ok(op.raw())
            })
            .collect()
    }

    /// Retries `raw` with `IPC_NOWAIT` for a few microseconds before the caller's blocking
    /// call; `true` when the operations were done.
    ///
    /// Operations that already say `IPC_NOWAIT` are not retried, and any error but `EAGAIN` is
    /// left to the blocking call.
    // A peer on another CPU about to make the operations possible answers faster than a
    // sleeper is woken.
    fn spin(&self, raw: &[libc::sembuf]) -> bool {
        let nowait = libc::IPC_NOWAIT as i16;
        if raw.iter().any(|b| b.sem_flg & nowait != 0) {
            return false;
        }
        let mut tries: Vec<libc::sembuf> = raw.to_vec();
        for b in &mut tries {
            b.sem_flg |= nowait;
        }
        let mut done = false;
        crate::spin::spin_until_by(1, || match semop(self.id, &mut tries, None) {
            Ok(()) => {
                done = true;
                true
            }
            Err(e) => e.raw_os_error() != Some(libc::EAGAIN),
        });
        done
    }

    /// Performs all `ops` atomically (`semop`): either all happen, or the call waits until they
    /// can (or fails without changing anything with [`SemOp::nowait`]). Before sleeping in the
    /// kernel it retries with `IPC_NOWAIT` for a few microseconds.
    ///
    /// # Errors
    ///
    /// * `WouldBlock` when an operation has [`SemOp::nowait`] and would wait.
    /// * `InvalidInput` for an index out of range or no operations.
    /// * `ERANGE` when a value would exceed [`SEMVMX`].
    /// * `NotFound`/`EIDRM` when the set was removed.
    #[doc(alias = "semop")]
    pub fn op(&self, ops: &[SemOp]) -> io::Result<()> {
        let mut raw = self.ops(ops)?;
        if self.spin(&raw) {
            return Ok(());
        }
        semop(self.id, &mut raw, None).context_with(|| format!("semop on set {}", self.id))
    }

    /// As [`op`](SemaphoreSet::op), waiting at most `timeout` (`semtimedop`): `Ok(false)` when
    /// it timed out, nothing changed.
    ///
    /// # Errors
    ///
    /// As [`op`](SemaphoreSet::op); `Interrupted` when a signal arrived.
    #[doc(alias = "semtimedop")]
    pub fn op_timeout(&self, ops: &[SemOp], timeout: Duration) -> io::Result<bool> {
        let mut raw = self.ops(ops)?;
        let nowait = ops.iter().any(|op| op.flags & libc::IPC_NOWAIT as i16 != 0);
        if !timeout.is_zero() && self.spin(&raw) {
            return Ok(true);
        }
        match semop(self.id, &mut raw, Some(timeout)) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && !nowait => Ok(false),
            Err(e) => Err(crate::error::context(
                e,
                format!("semtimedop on set {}", self.id),
            )),
        }
    }

    /// The value of semaphore `index` (`semctl(GETVAL)`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an index out of range; OS errors.
    #[doc(alias = "GETVAL")]
    pub fn get(&self, index: usize) -> io::Result<u16> {
        let i = self.check_index(index)?;
        let v = semctl(self.id, i, libc::GETVAL)
            .context_with(|| format!("GETVAL semaphore {index} of set {}", self.id))?;
        Ok(v as u16)
    }

    /// Sets semaphore `index` to `value` (`semctl(SETVAL)`); waiters are woken as needed and
    /// every process's undo entry for it is cleared.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an index out of range or a value above [`SEMVMX`].
    #[doc(alias = "SETVAL")]
    pub fn set(&self, index: usize, value: u16) -> io::Result<()> {
        let i = self.check_index(index)?;
        check_value(value)?;
        semctl_setval(self.id, i, i32::from(value))
            .context_with(|| format!("SETVAL semaphore {index} of set {} to {value}", self.id))
    }

    /// Every semaphore's value (`semctl(GETALL)`).
    ///
    /// # Errors
    ///
    /// OS errors.
    #[doc(alias = "GETALL")]
    pub fn get_all(&self) -> io::Result<Vec<u16>> {
        let mut values = vec![0u16; self.nsems];
        semctl_all(self.id, libc::GETALL, &mut values)
            .context_with(|| format!("GETALL semaphore set {}", self.id))?;
        Ok(values)
    }

    /// Sets every semaphore's value (`semctl(SETALL)`); `values` has one per semaphore.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the length differs from [`len`](SemaphoreSet::len) or a value is
    /// above [`SEMVMX`].
    #[doc(alias = "SETALL")]
    pub fn set_all(&self, values: &[u16]) -> io::Result<()> {
        if values.len() != self.nsems {
            return Err(invalid_input(format_args!(
                "SETALL on semaphore set {} needs {} values, got {}",
                self.id,
                self.nsems,
                values.len()
            )));
        }
        for &v in values {
            check_value(v)?;
        }
        let mut values = values.to_vec();
        semctl_all(self.id, libc::SETALL, &mut values)
            .context_with(|| format!("SETALL semaphore set {}", self.id))
    }

    /// The number of semaphores in the set.
    pub fn len(&self) -> usize {
        self.nsems
    }

    /// `false`: a set has at least one semaphore.
    pub fn is_empty(&self) -> bool {
        self.nsems == 0
    }

    /// The set's identifier (what `ipcs -s` shows).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened with.
    pub fn key(&self) -> IpcKey {
        self.key
    }

    /// Keeps the set after this handle is dropped.
    pub fn detach(&mut self) {
        self.owner = false;
    }

    /// Removes the set now (`semctl(IPC_RMID)`), waking every waiter with an error.
    ///
    /// # Errors
    ///
    /// `PermissionDenied` when not its owner or creator; `EINVAL` when already removed.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(mut self) -> io::Result<()> {
        self.owner = false;
        semctl(self.id, 0, libc::IPC_RMID)
            .map(drop)
            .context_with(|| format!("IPC_RMID semaphore set {}", self.id))
    }
}

fn check_value(value: u16) -> io::Result<()> {
    if value > SEMVMX {
        Err(invalid_input(format_args!(
            "invalid System V semaphore value {value}: the maximum is {SEMVMX}"
        )))
    } else {
        Ok(())
    }
}

impl Drop for SemaphoreSet {
    fn drop(&mut self) {
        if self.owner {
            let _ = semctl(self.id, 0, libc::IPC_RMID);
        }
    }
}
