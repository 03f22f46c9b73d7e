//! System V message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.

use std::fmt;
use std::io;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::deadline::Deadline;
use crate::error::{context, invalid_input};
use crate::ipc_key::IpcKey;
use crate::mode::CreationMode;
use crate::pid::Pid;
use crate::sys::mq as sys;
use crate::sys::mq::MTYPE_SIZE;

/// First and longest pause of the polling loop behind the `_timeout` forms.
const POLL_FIRST: Duration = Duration::from_micros(50);
const POLL_MAX: Duration = Duration::from_millis(1);

/// Which message [`SysVQueue::recv`] takes, as `msgrcv`'s `msgtyp` (and `MSG_EXCEPT`) choose it.
///
/// Exactly as [msgrcv(2)](https://man7.org/linux/man-pages/man2/msgrcv.2.html) documents:
///
/// | selector | `msgtyp` | takes |
/// |---|---|---|
/// | `Any` | `0` | the first (oldest) message in the queue |
/// | `Exactly(t)` | `t` | the first message of type `t` |
/// | `AtMost(t)` | `-t` | the first message of the lowest type that is ≤ `t` |
/// | `Except(t)` | `t`, `MSG_EXCEPT` | the first message whose type is not `t` |
///
/// `t` must be at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeSelector {
    /// The first message (`msgtyp = 0`).
    Any,
    /// The first message of this type (`msgtyp = t`).
    Exactly(i64),
    /// The first message of the lowest type ≤ `t` (`msgtyp = -t`): a priority queue where
    /// lower types come first.
    AtMost(i64),
    /// The first message of any other type (`msgtyp = t` with `MSG_EXCEPT`).
    Except(i64),
}

impl TypeSelector {
    /// `(msgtyp, extra msgflg)`.
    fn to_raw(self) -> io::Result<(libc::c_long, libc::c_int)> {
        let check = |t: i64| {
            if t >= 1 {
                Ok(t)
            } else {
                Err(invalid_input(format_args!(
                    "message type selector {self:?}: the type must be at least 1"
                )))
            }
        };
        Ok(match self {
            TypeSelector::Any => (0, 0),
            TypeSelector::Exactly(t) => (check(t)?, 0),
            TypeSelector::AtMost(t) => (-check(t)?, 0),
            TypeSelector::Except(t) => (check(t)?, libc::MSG_EXCEPT),
        })
    }
}

/// The kernel's limits for System V queues, from `/proc/sys/kernel/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SysVLimits {
    /// Longest message (`msgmax`).
    pub msgmax: usize,
    /// Default (and, without privileges, largest) byte capacity of a queue (`msgmnb`).
    pub msgmnb: usize,
    /// How many queues may exist in the system (`msgmni`).
    pub msgmni: usize,
}

impl SysVLimits {
    /// Reads the limits from `/proc/sys/kernel/`.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or does not hold a number.
    pub fn read() -> io::Result<SysVLimits> {
        let read =
            |f: &str| super::read_proc_number(&format!("/proc/sys/kernel/{f}")).map(|n| n as usize);
        Ok(SysVLimits {
            msgmax: read("msgmax")?,
            msgmnb: read("msgmnb")?,
            msgmni: read("msgmni")?,
        })
    }
}

/// A queue's state as `msgctl(IPC_STAT)` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysVStat {
    /// The key the queue was created with.
    pub key: IpcKey,
    /// Messages in the queue (`msg_qnum`).
    pub messages: u64,
    /// Bytes of message data in the queue (`__msg_cbytes`).
    pub bytes: u64,
    /// Byte capacity (`msg_qbytes`); also the most messages the queue holds.
    pub max_bytes: u64,
    /// The process that sent last (`msg_lspid`), if any.
    pub last_sender: Option<Pid>,
    /// The process that received last (`msg_lrpid`), if any.
    pub last_receiver: Option<Pid>,
    /// When a message was last sent (`msg_stime`), if ever.
    pub last_send: Option<SystemTime>,
    /// When a message was last received (`msg_rtime`), if ever.
    pub last_receive: Option<SystemTime>,
    /// When the queue was created or its settings last changed (`msg_ctime`).
    pub last_change: Option<SystemTime>,
    /// Owner's user id (`msg_perm.uid`).
    pub uid: u32,
    /// Owner's group id (`msg_perm.gid`).
    pub gid: u32,
    /// Creator's user id (`msg_perm.cuid`).
    pub creator_uid: u32,
    /// Creator's group id (`msg_perm.cgid`).
    pub creator_gid: u32,
    /// Permission bits (`msg_perm.mode & 0o777`).
    pub permissions: u32,
}

fn time_of(t: libc::time_t) -> Option<SystemTime> {
    (t > 0).then(|| UNIX_EPOCH + Duration::from_secs(t as u64))
}

/// How to create or open a [`SysVQueue`]: creation mode, permissions, byte capacity.
///
/// By default: create exclusively, permissions 0600, the kernel's default capacity
/// ([`SysVLimits::msgmnb`] bytes).
#[derive(Debug, Clone)]
pub struct SysVOptions {
    mode: CreationMode,
    permissions: u32,
    max_bytes: Option<usize>,
}

impl Default for SysVOptions {
    fn default() -> SysVOptions {
        SysVOptions::new()
    }
}

impl SysVOptions {
    /// Create exclusively, permissions 0600, default capacity.
    pub fn new() -> SysVOptions {
        SysVOptions {
            mode: CreationMode::CreateExclusive,
            permissions: 0o600,
            max_bytes: None,
        }
    }

    /// How to create or open. With [`IpcKey::PRIVATE`] every mode creates a new queue, except
    /// `Open`, which is an error.
    pub fn mode(&mut self, mode: CreationMode) -> &mut SysVOptions {
        self.mode = mode;
        self
    }

    /// Permission bits of a newly created queue, `0o600` by default, set exactly (no umask
    /// applies to System V objects; see [Named objects](crate#named-objects)).
    pub fn permissions(&mut self, permissions: u32) -> &mut SysVOptions {
        self.permissions = permissions & 0o777;
        self
    }

    /// Byte capacity of a newly created queue (set with `IPC_SET` right after `msgget`);
    /// ignored when opening an existing queue. See [`SysVQueue::set_max_bytes`].
    pub fn max_bytes(&mut self, bytes: usize) -> &mut SysVOptions {
        self.max_bytes = Some(bytes);
        self
    }

    /// Creates or opens the queue of `key` (`msgget`).
    ///
    /// # Errors
    ///
    /// * `AlreadyExists` / `NotFound` as the [`CreationMode`] says, naming the key.
    /// * `InvalidInput` for `Open` with [`IpcKey::PRIVATE`] or a capacity of 0.
    /// * `PermissionDenied` when the queue exists and its permissions do not let us both send
    ///   and receive (read and write).
    /// * `ENOSPC` when the system's limit of queues (`msgmni`) is reached.
    /// * As [`SysVQueue::set_max_bytes`] for the capacity (the new queue is removed then).
    pub fn open(&self, key: IpcKey) -> io::Result<SysVQueue> {
        if self.max_bytes == Some(0) {
            return Err(invalid_input(format_args!(
                "create System V queue {key} with capacity 0 bytes: no message would ever fit"
            )));
        }
        let (id, owner) = match self.mode {
            CreationMode::Open if key == IpcKey::PRIVATE => {
                return Err(invalid_input(
                    "open a System V queue: IPC_PRIVATE names no existing queue",
                ))
            }
            mode => mode.create_or_open(|| self.create(key), || open_existing(key))?,
        };
        let queue = SysVQueue::from_parts(id, key, owner);
        if owner {
            if let Some(bytes) = self.max_bytes {
                // On failure the new queue is dropped, and so removed.
                queue.set_max_bytes(bytes)?;
            }
        }
        Ok(queue)
    }

    fn create(&self, key: IpcKey) -> io::Result<i32> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | self.permissions as libc::c_int;
        sys::msgget(key.as_raw(), flags).map_err(|e| {
            let hint = match (e.raw_os_error(), SysVLimits::read()) {
                (Some(libc::ENOSPC), Ok(l)) => format!(
                    " (the system's limit of {} queues, /proc/sys/kernel/msgmni, is reached)",
                    l.msgmni
                ),
                _ => String::new(),
            };
            context(e, format_args!("create System V queue {key}{hint}"))
        })
    }
}

/// The permission bits `msgget` checks when opening: a handle both sends and receives.
// Without them `msgget` checks nothing, and a user the queue's permissions exclude would get a
// handle whose every send and receive fails later.
const READ_WRITE: libc::c_int = 0o600;

fn open_existing(key: IpcKey) -> io::Result<i32> {
    sys::msgget(key.as_raw(), READ_WRITE)
        .map_err(|e| context(e, format_args!("open System V queue {key}")))
}

/// A System V message queue (`msgget`): messages with a positive type, received in order or
/// chosen by type ([`TypeSelector`]).
///
/// The queue lives in the kernel until it is removed, whoever created it and whether or not
/// that process still runs. The handle that created it removes it on drop unless
/// [`detach`](SysVQueue::detach)ed; handles that merely opened it never do. Python's
/// `sysv_ipc.MessageQueue(key)` opens the same queue.
///
/// # The message buffer
///
/// `msgsnd` and `msgrcv` take a `struct msgbuf`: a `long mtype` immediately followed by the
/// data. So that callers can send from and receive into plain byte slices, each handle keeps
/// one send and one receive buffer, grown to the largest message seen and then reused:
///
/// * a send or receive costs one copy of the data and one system call, and no allocation after
///   the first;
/// * when another thread is using a handle's buffer (blocked in `msgrcv`, say), a call uses a
///   temporary one rather than wait for it.
///
/// # Timeouts
///
/// `msgsnd` and `msgrcv` have no timed form. The `_timeout` methods therefore poll: they try
/// with `IPC_NOWAIT`, then sleep 50 µs, doubling up to 1 ms between attempts, until the
/// deadline. So:
///
/// * a message that arrives while they wait is seen within about 1 ms;
/// * the wait costs a few hundred system calls per second.
///
/// Blocking calls that a signal interrupts are restarted.
///
/// See [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).
#[doc(alias = "msgget")]
pub struct SysVQueue {
    id: i32,
    key: IpcKey,
    owner: bool,
    send_buf: Mutex<Vec<u8>>,
    recv_buf: Mutex<Vec<u8>>,
}

impl fmt::Debug for SysVQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysVQueue")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SysVQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "System V queue {} (id {})", self.key, self.id)
    }
}

/// Locks `buf` if it is free, else hands out a fresh temporary buffer.
enum Buffer<'a> {
    Shared(MutexGuard<'a, Vec<u8>>),
    Temporary(Vec<u8>),
}

impl Buffer<'_> {
    fn take(buf: &Mutex<Vec<u8>>) -> Buffer<'_> {
        match buf.try_lock() {
            Ok(guard) => Buffer::Shared(guard),
            // The buffer's contents never matter between calls: a panic cannot corrupt it.
            Err(TryLockError::Poisoned(p)) => Buffer::Shared(p.into_inner()),
            Err(TryLockError::WouldBlock) => Buffer::Temporary(Vec::new()),
        }
    }

    fn vec(&mut self) -> &mut Vec<u8> {
        match self {
            Buffer::Shared(g) => g,
            Buffer::Temporary(v) => v,
        }
    }
}

/// What one `msgrcv` attempt gave: `(mtype, length)`, or nothing.
enum Got {
    Message(i64, usize),
    NoMessage,
}

/// A message [`SysVQueue::recv`] took: how many bytes of the caller's buffer it fills, and its
/// type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SysVReceived {
    /// The message's length: it is `buf[..len]`.
    pub len: usize,
    /// Its type (`mtype`), at least 1.
    pub mtype: i64,
}

impl SysVQueue {
    /// Creates the queue of `key` exclusively (`msgget` with `IPC_CREAT | IPC_EXCL`),
    /// permissions 0600. With [`IpcKey::PRIVATE`], a new queue only its id reaches.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` naming the key when a queue has it; otherwise as [`SysVOptions::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use ipcbox::mq::{SysVQueue, TypeSelector};
    /// use ipcbox::IpcKey;
    ///
    /// let q = SysVQueue::create(IpcKey::PRIVATE)?;
    /// q.send(b"later", 2)?;
    /// q.send(b"first", 1)?;
    /// let mut buf = [0u8; 16];
    /// let got = q.recv(&mut buf, TypeSelector::AtMost(9))?;
    /// assert_eq!((got.mtype, &buf[..got.len]), (1, &b"first"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn create(key: IpcKey) -> io::Result<SysVQueue> {
        SysVOptions::new().open(key)
    }

    /// Opens the existing queue of `key` (`msgget(key, 0)`).
    ///
    /// # Errors
    ///
    /// `NotFound` naming the key when there is no such queue; otherwise as
    /// [`SysVOptions::open`].
    pub fn open(key: IpcKey) -> io::Result<SysVQueue> {
        SysVOptions::new().mode(CreationMode::Open).open(key)
    }

    /// A handle on the queue with identifier `id` (as [`SysVQueue::id`] or `ipcs -q` show it),
    /// checked with `msgctl(IPC_STAT)`. It does not remove the queue on drop.
    ///
    /// # Errors
    ///
    /// `InvalidInput` (`EINVAL`) when no queue has this id, `PermissionDenied` when we may
    /// not read it.
    pub fn from_id(id: i32) -> io::Result<SysVQueue> {
        let ds = sys::msgctl_stat(id)
            .map_err(|e| context(e, format_args!("find System V queue with id {id}")))?;
        Ok(SysVQueue::from_parts(
            id,
            IpcKey::from_raw(ds.msg_perm.__key),
            false,
        ))
    }

    fn from_parts(id: i32, key: IpcKey, owner: bool) -> SysVQueue {
        SysVQueue {
            id,
            key,
            owner,
            send_buf: Mutex::new(Vec::new()),
            recv_buf: Mutex::new(Vec::new()),
        }
    }

    /// The queue's identifier (`msqid`).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key this handle found the queue by.
    pub fn key(&self) -> IpcKey {
        self.key
    }

    /// Whether this handle created the queue (and so removes it on drop).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Keeps the queue when this handle is dropped.
    pub fn detach(&mut self) {
        self.owner = false;
    }

    /// Removes the queue now (`msgctl(IPC_RMID)`): its messages are discarded, and processes
    /// waiting on it wake with an error.
    ///
    /// # Errors
    ///
    /// `PermissionDenied` unless we own or created it; `InvalidInput` when it is already gone.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(mut self) -> io::Result<()> {
        self.owner = false;
        sys::msgctl_rmid(self.id).map_err(|e| context(e, format_args!("remove {self}")))
    }

    /// `msgctl(IPC_STAT)`: message count, bytes, capacity, last sender and receiver, times,
    /// owner and permissions.
    ///
    /// # Errors
    ///
    /// When the queue was removed, or we may not read it.
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> io::Result<SysVStat> {
        let ds = self.raw_stat()?;
        Ok(SysVStat {
            key: IpcKey::from_raw(ds.msg_perm.__key),
            messages: ds.msg_qnum,
            bytes: ds.__msg_cbytes,
            max_bytes: ds.msg_qbytes,
            last_sender: Pid::from_raw(ds.msg_lspid).ok(),
            last_receiver: Pid::from_raw(ds.msg_lrpid).ok(),
            last_send: time_of(ds.msg_stime),
            last_receive: time_of(ds.msg_rtime),
            last_change: time_of(ds.msg_ctime),
            uid: ds.msg_perm.uid,
            gid: ds.msg_perm.gid,
            creator_uid: ds.msg_perm.cuid,
            creator_gid: ds.msg_perm.cgid,
            permissions: u32::from(ds.msg_perm.mode) & 0o777,
        })
    }

    fn raw_stat(&self) -> io::Result<libc::msqid_ds> {
        sys::msgctl_stat(self.id).map_err(|e| context(e, format_args!("stat {self}")))
    }

    /// Sets the byte capacity (`msg_qbytes` with `msgctl(IPC_SET)`); it also bounds how many
    /// messages the queue holds. Without `CAP_SYS_RESOURCE`, at most `msgmnb`
    /// ([`SysVLimits`]).
    ///
    /// # Errors
    ///
    /// * `InvalidInput` for 0.
    /// * `PermissionDenied` (`EPERM`) above `msgmnb` without privilege, or when we neither own
    ///   nor created the queue.
    ///
    /// The message names the value and the limit.
    #[doc(alias = "IPC_SET")]
    pub fn set_max_bytes(&self, bytes: usize) -> io::Result<()> {
        if bytes == 0 {
            return Err(invalid_input(format_args!(
                "set the capacity of {self} to 0 bytes: no message would ever fit"
            )));
        }
        let mut ds = self.raw_stat()?;
        ds.msg_qbytes = bytes as libc::msglen_t;
        sys::msgctl_set(self.id, &ds).map_err(|e| {
            let limit = SysVLimits::read()
                .map(|l| {
                    format!(
                        " (msgmnb, the limit without CAP_SYS_RESOURCE, is {})",
                        l.msgmnb
                    )
                })
                .unwrap_or_default();
            context(
                e,
                format_args!("set the capacity of {self} to {bytes} bytes{limit}"),
            )
        })
    }

    /// Sets the permission bits (`msg_perm.mode` with `msgctl(IPC_SET)`).
    ///
    /// # Errors
    ///
    /// `PermissionDenied` unless we own or created the queue.
    pub fn set_permissions(&self, permissions: u32) -> io::Result<()> {
        let mut ds = self.raw_stat()?;
        ds.msg_perm.mode = (permissions & 0o777) as libc::c_ushort;
        sys::msgctl_set(self.id, &ds).map_err(|e| {
            context(
                e,
                format_args!("set the permissions of {self} to {permissions:#o}"),
            )
        })
    }

    /// Sends `data` as a message of type `mtype` (`msgsnd`), waiting while the queue is full.
    /// The message comes first and its tag second, as in
    /// [`PosixQueue::send`](super::PosixQueue::send) and Python's `sysv_ipc`.
    ///
    /// # Errors
    ///
    /// * `InvalidInput` when `mtype` < 1, when `data` is longer than `msgmax`, or when it is
    ///   longer than the queue's capacity (it could never fit); the message names both sizes.
    /// * `EIDRM` when the queue is removed meanwhile.
    #[doc(alias = "msgsnd")]
    pub fn send(&self, data: &[u8], mtype: i64) -> io::Result<()> {
        let mut buf = self.fill_send_buffer(mtype, data)?;
        // A first attempt without waiting lets a message that can never fit be reported
        // instead of waited on forever (the kernel would block); it costs nothing when there is
        // room, and a full queue has us sleep anyway.
        if self.send_now(buf.vec(), data.len())? {
            return Ok(());
        }
        loop {
            match sys::msgsnd(self.id, buf.vec(), 0) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.send_error(e, data.len())),
            }
        }
    }

    /// Sends if the queue has room now (`msgsnd` with `IPC_NOWAIT`); `Ok(false)` (nothing
    /// sent) when it is full.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), except that a full queue is `Ok(false)`.
    pub fn try_send(&self, data: &[u8], mtype: i64) -> io::Result<bool> {
        let mut buf = self.fill_send_buffer(mtype, data)?;
        self.send_now(buf.vec(), data.len())
    }

    /// Sends, waiting at most `timeout` for room (polling, see [the type's docs](SysVQueue));
    /// `Ok(false)` (nothing sent) when the time ran out.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), except that a full queue is `Ok(false)` at the deadline.
    pub fn send_timeout(&self, data: &[u8], mtype: i64, timeout: Duration) -> io::Result<bool> {
        let mut buf = self.fill_send_buffer(mtype, data)?;
        poll_until(Deadline::after(timeout), || {
            self.send_now(buf.vec(), data.len())
        })
    }

    fn fill_send_buffer(&self, mtype: i64, data: &[u8]) -> io::Result<Buffer<'_>> {
        if mtype < 1 {
            return Err(invalid_input(format_args!(
                "send to {self}: message type {mtype} is not positive"
            )));
        }
        let mut buf = Buffer::take(&self.send_buf);
        let v = buf.vec();
        v.clear();
        v.extend_from_slice(&(mtype as libc::c_long).to_ne_bytes());
        v.extend_from_slice(data);
        Ok(buf)
    }

    /// One `msgsnd` with `IPC_NOWAIT`: `Ok(false)` when full, an error when the message can
    /// never fit.
    fn send_now(&self, msgbuf: &[u8], len: usize) -> io::Result<bool> {
        loop {
            match sys::msgsnd(self.id, msgbuf, libc::IPC_NOWAIT) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    let capacity = self.raw_stat()?.msg_qbytes;
                    if len as u64 > capacity {
                        return Err(invalid_input(format_args!(
                            "send to {self}: a message of {len} bytes is longer than the \
                             queue's capacity, {capacity} bytes, and could never fit"
                        )));
                    }
                    return Ok(false);
                }
                Err(e) => return Err(self.send_error(e, len)),
            }
        }
    }

    fn send_error(&self, err: io::Error, len: usize) -> io::Error {
        if err.raw_os_error() == Some(libc::EINVAL) {
            if let Ok(limits) = SysVLimits::read() {
                if len > limits.msgmax {
                    return invalid_input(format_args!(
                        "send to {self}: a message of {len} bytes is longer than msgmax, {} \
                         bytes (/proc/sys/kernel/msgmax)",
                        limits.msgmax
                    ));
                }
            }
        }
        context(err, format_args!("send {len} bytes to {self}"))
    }

    /// Receives the message `sel` selects into `buf` (`msgrcv`), waiting until there is one:
    /// its length (the bytes of `buf` it fills) and its type.
    ///
    /// # Errors
    ///
    /// * `InvalidInput` when the selected message is longer than `buf` (`E2BIG`; the message
    ///   stays in the queue, and a buffer of `msgmax` bytes always suffices), or for a
    ///   selector type < 1.
    /// * `EIDRM` when the queue is removed meanwhile.
    #[doc(alias = "msgrcv")]
    pub fn recv(&self, buf: &mut [u8], sel: TypeSelector) -> io::Result<SysVReceived> {
        match self.recv_once(buf, sel, 0)? {
            Got::Message(mtype, len) => Ok(SysVReceived { len, mtype }),
            // Only IPC_NOWAIT (or MSG_COPY) gives ENOMSG; never expected here.
            Got::NoMessage => Err(io::Error::other(format!(
                "receive {sel:?} from {self}: msgrcv returned no message"
            ))),
        }
    }

    /// Receives the selected message if there is one now (`msgrcv` with `IPC_NOWAIT`);
    /// `Ok(None)` otherwise.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), except that no matching message is `Ok(None)`.
    pub fn try_recv(&self, buf: &mut [u8], sel: TypeSelector) -> io::Result<Option<SysVReceived>> {
        Ok(match self.recv_once(buf, sel, libc::IPC_NOWAIT)? {
            Got::Message(mtype, len) => Some(SysVReceived { len, mtype }),
            Got::NoMessage => None,
        })
    }

    /// Receives the selected message, waiting at most `timeout` (polling, see
    /// [the type's docs](SysVQueue)); `Ok(None)` when the time ran out.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), except that no matching message is `Ok(None)` at the deadline.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        sel: TypeSelector,
        timeout: Duration,
    ) -> io::Result<Option<SysVReceived>> {
        let mut got = None;
        poll_until(Deadline::after(timeout), || {
            got = self.try_recv(buf, sel)?;
            Ok(got.is_some())
        })?;
        Ok(got)
    }

    fn recv_once(&self, buf: &mut [u8], sel: TypeSelector, flags: libc::c_int) -> io::Result<Got> {
        let (msgtyp, sel_flags) = sel
            .to_raw()
            .map_err(|e| invalid_input(format_args!("receive from {self}: {e}")))?;
        let mut scratch = Buffer::take(&self.recv_buf);
        let v = scratch.vec();
        let need = MTYPE_SIZE + buf.len();
        if v.len() < need {
            v.resize(need, 0);
        }
        let msgbuf = &mut v[..need];
        loop {
            match sys::msgrcv(self.id, msgbuf, msgtyp, flags | sel_flags) {
                Ok(n) => {
                    // The kernel wrote at most buf.len() bytes; check anyway rather than trust.
                    let n = n.min(buf.len());
                    let mut mtype = [0u8; MTYPE_SIZE];
                    mtype.copy_from_slice(&msgbuf[..MTYPE_SIZE]);
                    buf[..n].copy_from_slice(&msgbuf[MTYPE_SIZE..MTYPE_SIZE + n]);
                    return Ok(Got::Message(libc::c_long::from_ne_bytes(mtype), n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOMSG) => return Ok(Got::NoMessage),
                Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {
                    let hint = SysVLimits::read()
                        .map(|l| {
                            format!("; a buffer of msgmax = {} bytes always suffices", l.msgmax)
                        })
                        .unwrap_or_default();
                    return Err(invalid_input(format_args!(
                        "receive {sel:?} from {self}: the message is longer than the buffer of \
                         {} bytes (it stays in the queue{hint})",
                        buf.len()
                    )));
                }
                Err(e) => return Err(context(e, format_args!("receive {sel:?} from {self}"))),
            }
        }
    }
}

/// Calls `attempt` until it returns `Ok(true)` or `deadline` passes, sleeping between attempts
/// from [`POLL_FIRST`] doubling up to [`POLL_MAX`]; `Ok(false)` once the deadline has passed.
fn poll_until(
    deadline: Deadline,
    mut attempt: impl FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    let mut pause = POLL_FIRST;
    loop {
        if attempt()? {
            return Ok(true);
        }
        let Some(sleep) = deadline.slice(pause) else {
            return Ok(false);
        };
        std::thread::sleep(sleep);
        pause = (pause * 2).min(POLL_MAX);
    }
}

impl Drop for SysVQueue {
    fn drop(&mut self) {
        if self.owner {
            // Identifiers carry a sequence number, so a stale id does not name a newer queue.
            let _ = sys::msgctl_rmid(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_map_to_msgrcv_arguments() {
        assert_eq!(TypeSelector::Any.to_raw().unwrap(), (0, 0));
        assert_eq!(TypeSelector::Exactly(3).to_raw().unwrap(), (3, 0));
        assert_eq!(TypeSelector::AtMost(3).to_raw().unwrap(), (-3, 0));
        assert_eq!(
            TypeSelector::Except(3).to_raw().unwrap(),
            (3, libc::MSG_EXCEPT)
        );
        for bad in [
            TypeSelector::Exactly(0),
            TypeSelector::AtMost(-1),
            TypeSelector::Except(0),
            TypeSelector::AtMost(i64::MIN),
        ] {
            let err = bad.to_raw().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn poll_until_gives_up_at_the_deadline_and_stops_on_success() {
        let mut calls = 0;
        assert!(!poll_until(Deadline::after(Duration::from_millis(5)), || {
            calls += 1;
            Ok(false)
        })
        .unwrap());
        assert!(calls >= 2);
        let mut calls = 0;
        assert!(poll_until(Deadline::after(Duration::from_secs(60)), || {
            calls += 1;
            Ok(calls == 3)
        })
        .unwrap());
        assert_eq!(calls, 3);
    }
}
