//! POSIX message queues: `mq_open`, `mq_timedsend`, `mq_timedreceive`, `mq_unlink`.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{context, invalid_input};
use crate::mode::CreationMode;
use crate::sys::mq as sys;

/// The highest priority a message may have (`MQ_PRIO_MAX - 1` on Linux).
pub const PRIORITY_MAX: u32 = 32767;

/// Longest name, without its leading `/` (`NAME_MAX`).
const NAME_MAX: usize = crate::name::NAME_MAX;

/// The kernel's hard ceilings, which even a privileged process cannot exceed.
const HARD_MSGMAX: usize = 65536;
const HARD_MSGSIZEMAX: usize = 16 * 1024 * 1024;

/// The size of a new queue: how many messages it holds and how long each may be
/// (`mq_attr.mq_maxmsg`, `mq_attr.mq_msgsize`).
///
/// Without privileges, the values may not exceed `/proc/sys/fs/mqueue/msg_max` and
/// `msgsize_max` (see [`PosixLimits`]). A process with `CAP_SYS_RESOURCE` (usually root, but
/// not every container's root) may go up to 65536 messages of 16 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// Capacity: how many messages the queue holds before senders wait (`mq_maxmsg`, ≥ 1).
    pub max_messages: usize,
    /// Longest message in bytes (`mq_msgsize`, ≥ 1); receive buffers must be at least this long.
    pub max_message_size: usize,
}

/// A queue's attributes as `mq_getattr` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PosixAttributes {
    /// Capacity (`mq_maxmsg`).
    pub max_messages: usize,
    /// Longest message (`mq_msgsize`).
    pub max_message_size: usize,
    /// Messages in the queue now (`mq_curmsgs`).
    pub current_messages: usize,
    /// Whether this handle is in non-blocking mode (`O_NONBLOCK` in `mq_flags`).
    pub nonblocking: bool,
}

/// The kernel's limits for POSIX queues, from `/proc/sys/fs/mqueue/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PosixLimits {
    /// Largest capacity a process without `CAP_SYS_RESOURCE` may ask for (`msg_max`).
    pub msg_max: usize,
    /// Largest message size a process without `CAP_SYS_RESOURCE` may ask for (`msgsize_max`).
    pub msgsize_max: usize,
    /// Capacity of a queue created without attributes (`msg_default`).
    pub msg_default: usize,
    /// Message size of a queue created without attributes (`msgsize_default`).
    pub msgsize_default: usize,
    /// How many queues may exist in the system (`queues_max`).
    pub queues_max: usize,
}

impl PosixLimits {
    /// Reads the limits from `/proc/sys/fs/mqueue/`.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or does not hold a number (no mqueue support).
    pub fn read() -> io::Result<PosixLimits> {
        let read = |f: &str| {
            super::read_proc_number(&format!("/proc/sys/fs/mqueue/{f}")).map(|n| n as usize)
        };
        Ok(PosixLimits {
            msg_max: read("msg_max")?,
            msgsize_max: read("msgsize_max")?,
            msg_default: read("msg_default")?,
            msgsize_default: read("msgsize_default")?,
            queues_max: read("queues_max")?,
        })
    }
}

/// A queue name checked against the rules of `mq_open`, kept with its leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    text: String,
    c: CString,
}

impl Name {
    fn parse(name: &str) -> io::Result<Name> {
        let text = crate::name::posix_name(name, "POSIX message queue", NAME_MAX)?;
        let c = CString::new(text.clone()).map_err(|_| invalid_input("NUL in queue name"))?;
        Ok(Name { text, c })
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "POSIX queue {}", self.text)
    }
}

/// How to create or open a [`PosixQueue`]: creation mode, permissions, size, blocking.
///
/// By default: create exclusively, permissions 0600, the kernel's default size ([`PosixLimits::msg_default`] messages of [`PosixLimits::msgsize_default`] bytes),
/// blocking.
///
/// # Examples
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use ipcbox::{mq, CreationMode};
///
/// let name = format!("/ipcbox-doc-mqopts-{}", std::process::id());
/// let q = mq::Options::new()
///     .mode(CreationMode::OpenOrCreate)
///     .capacity(8)
///     .max_message_size(256)
///     .open(&name)?;
/// assert_eq!(q.capacity(), 8);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    mode: CreationMode,
    permissions: u32,
    capacity: Option<usize>,
    max_message_size: Option<usize>,
    nonblocking: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Create exclusively, permissions 0600, kernel default size, blocking.
    pub fn new() -> Options {
        Options {
            mode: CreationMode::CreateExclusive,
            permissions: 0o600,
            capacity: None,
            max_message_size: None,
            nonblocking: false,
        }
    }

    /// How to create or open.
    pub fn mode(&mut self, mode: CreationMode) -> &mut Options {
        self.mode = mode;
        self
    }

    /// Permission bits for a newly created queue, set exactly (see
    /// [Named objects](crate#named-objects)).
    pub fn permissions(&mut self, permissions: u32) -> &mut Options {
        self.permissions = permissions & 0o777;
        self
    }

    /// Capacity of a newly created queue (`mq_maxmsg`); ignored when opening an existing one.
    pub fn capacity(&mut self, messages: usize) -> &mut Options {
        self.capacity = Some(messages);
        self
    }

    /// Longest message of a newly created queue (`mq_msgsize`); ignored when opening an
    /// existing one.
    pub fn max_message_size(&mut self, bytes: usize) -> &mut Options {
        self.max_message_size = Some(bytes);
        self
    }

    /// Both sizes of a newly created queue.
    pub fn attributes(&mut self, attributes: Attributes) -> &mut Options {
        self.capacity(attributes.max_messages)
            .max_message_size(attributes.max_message_size)
    }

    /// Open in non-blocking mode (`O_NONBLOCK`): [`send`](PosixQueue::send) on a full queue and
    /// [`recv`](PosixQueue::recv) on an empty one fail with `WouldBlock` instead of waiting,
    /// and the `_timeout` forms return at once. For an event loop polling the queue's fd.
    pub fn nonblocking(&mut self, on: bool) -> &mut Options {
        self.nonblocking = on;
        self
    }

    /// Creates or opens the queue `name` (`mq_open`), for sending and receiving.
    ///
    /// `name` follows the rules of POSIX shared memory: an optional leading `/` (added when
    /// missing), no other `/`, at most 255 bytes.
    ///
    /// # Errors
    ///
    /// * `InvalidInput` for a bad name, a capacity or message size of 0, and (from the kernel,
    ///   `EINVAL`) sizes above the limits, which the message names together with the limits
    ///   read from `/proc/sys/fs/mqueue`.
    /// * `AlreadyExists` / `NotFound` as the [`CreationMode`] says, naming the queue.
    /// * `PermissionDenied` when the queue exists and is not readable and writable by us.
    /// * `EMFILE` (`RLIMIT_MSGQUEUE` or the fd limit), `ENOSPC` (`queues_max`).
    pub fn open(&self, name: &str) -> io::Result<PosixQueue> {
        let name = Name::parse(name)?;
        let attr = match self.mode {
            CreationMode::Open => None,
            _ => self.creation_attributes(&name)?,
        };
        let flags = libc::O_RDWR
            | if self.nonblocking {
                libc::O_NONBLOCK
            } else {
                0
            };
        let (fd, owner) = self.mode.create_or_open(
            || self.create(&name, flags, attr),
            || open_existing(&name, flags),
        )?;
        PosixQueue::from_parts(fd, name, owner)
    }

    /// `(mq_maxmsg, mq_msgsize)` to create with, or `None` for the kernel's defaults.
    fn creation_attributes(&self, name: &Name) -> io::Result<Option<(i64, i64)>> {
        if self.capacity.is_none() && self.max_message_size.is_none() {
            return Ok(None);
        }
        if self.capacity == Some(0) {
            return Err(invalid_input(format_args!(
                "create {name} with capacity 0: a queue must hold at least one message"
            )));
        }
        if self.max_message_size == Some(0) {
            return Err(invalid_input(format_args!(
                "create {name} with max message size 0: messages must be allowed at least 1 byte"
            )));
        }
        // One of the two was given: the other is the kernel's default, as without attributes.
        let defaults = PosixLimits::read().ok();
        let capacity = self
            .capacity
            .or(defaults.map(|l| l.msg_default))
            .unwrap_or(10);
        let size = self
            .max_message_size
            .or(defaults.map(|l| l.msgsize_default))
            .unwrap_or(8192);
        Ok(Some((
            i64::try_from(capacity).unwrap_or(i64::MAX),
            i64::try_from(size).unwrap_or(i64::MAX),
        )))
    }

    fn create(
        &self,
        name: &Name,
        flags: libc::c_int,
        attr: Option<(i64, i64)>,
    ) -> io::Result<OwnedFd> {
        let fd = sys::mq_open(
            &name.c,
            flags | libc::O_CREAT | libc::O_EXCL,
            self.permissions,
            attr,
        )
        .map_err(|e| create_error(e, name, attr))?;
        // mq_open narrows the permissions by the umask; set them as asked. Until then they
        // are narrower, never wider.
        let mode = rustix::fs::Mode::from_raw_mode(self.permissions);
        if let Err(e) = rustix::fs::fchmod(&fd, mode) {
            let _ = sys::mq_unlink(&name.c);
            return Err(context(
                e,
                format_args!("set permissions {:o} on {name}", self.permissions),
            ));
        }
        Ok(fd)
    }
}

fn open_existing(name: &Name, flags: libc::c_int) -> io::Result<OwnedFd> {
    sys::mq_open(&name.c, flags, 0, None).map_err(|e| context(e, format_args!("open {name}")))
}

/// Explains a failed `mq_open(O_CREAT)` with the values asked for and the limits that apply.
fn create_error(err: io::Error, name: &Name, attr: Option<(i64, i64)>) -> io::Error {
    let asked = match attr {
        Some((m, s)) => format!("with capacity {m} and max message size {s}"),
        None => "with the default size".to_owned(),
    };
    let limits = PosixLimits::read();
    let hint = match (err.raw_os_error(), limits) {
        (Some(libc::EINVAL), Ok(l)) => format!(
            " (limits in /proc/sys/fs/mqueue: msg_max {}, msgsize_max {}; a process with \
             CAP_SYS_RESOURCE may go up to {HARD_MSGMAX} messages of {HARD_MSGSIZEMAX} bytes)",
            l.msg_max, l.msgsize_max
        ),
        (Some(libc::ENOSPC), Ok(l)) => format!(
            " (the system's limit of {} queues, /proc/sys/fs/mqueue/queues_max, is reached)",
            l.queues_max
        ),
        (Some(libc::EMFILE), _) => {
            " (RLIMIT_MSGQUEUE, the bytes of queues per user, or the open-file limit is reached)"
                .to_owned()
        }
        _ => String::new(),
    };
    context(err, format_args!("create {name} {asked}{hint}"))
}

/// A message [`PosixQueue::recv`] took: how many bytes of the caller's buffer it fills, and
/// its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Received {
    /// The message's length: it is `buf[..len]`.
    pub len: usize,
    /// Its priority, 0 to [`PRIORITY_MAX`].
    pub priority: u32,
}

/// A POSIX message queue (`mq_open`): messages of up to
/// [`max_message_size`](PosixQueue::max_message_size) bytes, each with a priority, received
/// highest priority first and in FIFO order within a priority.
///
/// The queue lives in the kernel until its name is unlinked and the last handle is closed: a
/// message sent by a process that has exited stays in it. The handle that created the name
/// unlinks it on drop unless [`detach`](PosixQueue::detach)ed, and handles that merely opened
/// it never do. Python's `posix_ipc.MessageQueue(name)` opens the same queue.
///
/// The handle is a file descriptor ([`AsFd`]): `poll`/`epoll` report it readable when a message
/// is waiting and writable when there is room, so it fits in an event loop.
///
/// Blocking calls that a signal interrupts are restarted (the timed forms with their original
/// deadline).
///
/// See [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html).
#[doc(alias = "mq_open")]
#[derive(Debug)]
pub struct PosixQueue {
    fd: OwnedFd,
    name: Name,
    max_message_size: usize,
    max_messages: usize,
    owner: bool,
}

impl PosixQueue {
    /// Creates the queue `name` exclusively (`mq_open` with `O_CREAT | O_EXCL`), permissions
    /// 0600, with the given size. See [`Options::open`] for names and errors.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` when the name exists; otherwise as [`Options::open`].
    pub fn create(name: &str, attributes: Attributes) -> io::Result<PosixQueue> {
        Options::new().attributes(attributes).open(name)
    }

    /// Opens the existing queue `name` (`mq_open` without `O_CREAT`) for sending and receiving.
    ///
    /// # Errors
    ///
    /// `NotFound` naming the queue when it does not exist; otherwise as [`Options::open`].
    pub fn open(name: &str) -> io::Result<PosixQueue> {
        Options::new().mode(CreationMode::Open).open(name)
    }

    fn from_parts(fd: OwnedFd, name: Name, owner: bool) -> io::Result<PosixQueue> {
        let mut queue = PosixQueue {
            fd,
            name,
            max_message_size: 0,
            max_messages: 0,
            owner,
        };
        let attr = queue.attributes()?;
        queue.max_message_size = attr.max_message_size;
        queue.max_messages = attr.max_messages;
        Ok(queue)
    }

    /// Removes the name `name` (`mq_unlink`); handles already open keep working, and the queue
    /// is destroyed when the last one closes.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad name, `NotFound` naming it when there is no such queue.
    #[doc(alias = "mq_unlink")]
    pub fn unlink(name: &str) -> io::Result<()> {
        let name = Name::parse(name)?;
        sys::mq_unlink(&name.c).map_err(|e| context(e, format_args!("unlink {name}")))
    }

    /// The queue's name, with its leading `/`.
    pub fn name(&self) -> &str {
        &self.name.text
    }

    /// Longest message the queue accepts (`mq_msgsize`), and the least receive buffer size.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// How many messages the queue holds before senders wait (`mq_maxmsg`).
    pub fn capacity(&self) -> usize {
        self.max_messages
    }

    /// Whether this handle created the name (and so unlinks it on drop).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Keeps the name when this handle is dropped: the queue stays for other processes until
    /// someone calls [`PosixQueue::unlink`].
    pub fn detach(&mut self) {
        self.owner = false;
    }

    /// `mq_getattr`: sizes, the number of messages waiting now, and the blocking mode.
    ///
    /// # Errors
    ///
    /// Only if the descriptor is unusable (not expected).
    #[doc(alias = "mq_getattr")]
    pub fn attributes(&self) -> io::Result<PosixAttributes> {
        let (flags, maxmsg, msgsize, curmsgs) = sys::mq_getattr(self.fd.as_fd())
            .map_err(|e| context(e, format_args!("mq_getattr of {}", self.name)))?;
        Ok(PosixAttributes {
            max_messages: maxmsg.max(0) as usize,
            max_message_size: msgsize.max(0) as usize,
            current_messages: curmsgs.max(0) as usize,
            nonblocking: flags & i64::from(libc::O_NONBLOCK) != 0,
        })
    }

    /// Switches this handle (this open description) between blocking and non-blocking mode
    /// (`mq_setattr`).
    ///
    /// # Errors
    ///
    /// Only if the descriptor is unusable (not expected).
    #[doc(alias = "mq_setattr")]
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        sys::mq_set_nonblocking(self.fd.as_fd(), on)
            .map_err(|e| context(e, format_args!("mq_setattr of {}", self.name)))
    }

    /// Sends `msg` with priority `priority` (`mq_send`), waiting while the queue is full. The
    /// message comes first and its tag second, as in [`SysVQueue::send`](super::SysVQueue::send)
    /// and Python's `posix_ipc`.
    ///
    /// # Errors
    ///
    /// * `InvalidInput` when `msg` is longer than [`max_message_size`](Self::max_message_size)
    ///   or `priority` exceeds [`PRIORITY_MAX`]; the message names both values, and nothing is
    ///   sent.
    /// * `WouldBlock` when the handle is non-blocking and the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use ipcbox::mq::{Attributes, PosixQueue};
    /// # let name = format!("/ipcbox-doc-send-{}", std::process::id());
    /// let q = PosixQueue::create(&name, Attributes { max_messages: 1, max_message_size: 8 })?;
    /// q.send(b"12345678", 0)?;
    /// assert!(q.send(b"123456789", 0).is_err()); // longer than 8 bytes
    /// # Ok(())
    /// # }
    /// ```
    #[doc(alias = "mq_send")]
    pub fn send(&self, msg: &[u8], priority: u32) -> io::Result<()> {
        self.check_send(msg, priority)?;
        // Without a deadline the call waits until it sends (or fails).
        self.send_until(msg, priority, Deadline::Forever).map(drop)
    }

    /// Sends `msg` if the queue has room now; `Ok(false)` (nothing sent) when it is full.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), except that a full queue is `Ok(false)`.
    // One `mq_timedsend` with a deadline in the past, so the handle's blocking mode need not
    // change.
    pub fn try_send(&self, msg: &[u8], priority: u32) -> io::Result<bool> {
        self.check_send(msg, priority)?;
        self.send_until(msg, priority, Deadline::Now)
    }

    /// Sends `msg`, waiting at most `timeout` for room (`mq_timedsend`); `Ok(false)` (nothing
    /// sent) when the time ran out.
    ///
    /// The kernel takes an absolute `CLOCK_REALTIME` deadline, computed once from `timeout`, so a
    /// jump of the system clock shortens or lengthens the wait.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), except that a full queue is `Ok(false)` at the deadline.
    #[doc(alias = "mq_timedsend")]
    pub fn send_timeout(&self, msg: &[u8], priority: u32, timeout: Duration) -> io::Result<bool> {
        self.check_send(msg, priority)?;
        self.send_until(msg, priority, Deadline::after(timeout))
    }

    /// Sends by `deadline`: `Ok(false)` when the queue stayed full.
    fn send_until(&self, msg: &[u8], prio: u32, deadline: Deadline) -> io::Result<bool> {
        let at = realtime_deadline(deadline);
        loop {
            match sys::mq_send(self.fd.as_fd(), msg, prio, at.as_ref()) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if at.is_some() && is_timeout(&e) => return Ok(false),
                Err(e) => return Err(self.send_error(e, msg)),
            }
        }
    }

    fn check_send(&self, msg: &[u8], prio: u32) -> io::Result<()> {
        if msg.len() > self.max_message_size {
            return Err(self.too_long(msg.len()));
        }
        if prio > PRIORITY_MAX {
            return Err(invalid_input(format_args!(
                "send to {}: priority {prio} is above the highest, {PRIORITY_MAX}",
                self.name
            )));
        }
        Ok(())
    }

    fn too_long(&self, len: usize) -> io::Error {
        invalid_input(format_args!(
            "send to {}: a message of {len} bytes is longer than the queue's max message size, \
             {} bytes",
            self.name, self.max_message_size
        ))
    }

    fn send_error(&self, err: io::Error, msg: &[u8]) -> io::Error {
        if err.raw_os_error() == Some(libc::EMSGSIZE) {
            return self.too_long(msg.len());
        }
        context(
            err,
            format_args!("send {} bytes to {}", msg.len(), self.name),
        )
    }

    /// Receives the oldest message of the highest priority into `buf` (`mq_receive`), waiting
    /// while the queue is empty: its length (the bytes of `buf` it fills) and its priority.
    ///
    /// # Errors
    ///
    /// * `InvalidInput` when `buf` is shorter than [`max_message_size`](Self::max_message_size)
    ///   (the kernel demands it, whatever the message's length); the message names both sizes
    ///   and nothing is taken from the queue.
    /// * `WouldBlock` when the handle is non-blocking and the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use ipcbox::mq::{Attributes, PosixQueue, Received};
    /// # let name = format!("/ipcbox-doc-recv-{}", std::process::id());
    /// let q = PosixQueue::create(&name, Attributes { max_messages: 4, max_message_size: 8 })?;
    /// q.send(b"hi", 3)?;
    /// let mut buf = [0u8; 8];
    /// let got = q.recv(&mut buf)?;
    /// assert_eq!(got, Received { len: 2, priority: 3 });
    /// assert_eq!(&buf[..got.len], b"hi");
    /// # Ok(())
    /// # }
    /// ```
    #[doc(alias = "mq_receive")]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.check_recv(buf)?;
        // Without a deadline the call waits until it receives (or fails).
        self.recv_until(buf, Deadline::Forever)?
            .ok_or_else(|| io::Error::other(format!("receive from {}: no message", self.name)))
    }

    /// Receives a message if one is waiting; `Ok(None)` when the queue is empty.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), except that an empty queue is `Ok(None)`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        self.check_recv(buf)?;
        self.recv_until(buf, Deadline::Now)
    }

    /// Receives a message, waiting at most `timeout` (`mq_timedreceive`); `Ok(None)` when the
    /// time ran out. The deadline is on `CLOCK_REALTIME`, as for
    /// [`send_timeout`](Self::send_timeout).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), except that an empty queue is `Ok(None)` at the deadline.
    #[doc(alias = "mq_timedreceive")]
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<Received>> {
        self.check_recv(buf)?;
        self.recv_until(buf, Deadline::after(timeout))
    }

    /// Receives by `deadline`: `Ok(None)` when the queue stayed empty.
    fn recv_until(&self, buf: &mut [u8], deadline: Deadline) -> io::Result<Option<Received>> {
        let at = realtime_deadline(deadline);
        loop {
            match sys::mq_receive(self.fd.as_fd(), buf, at.as_ref()) {
                Ok((len, priority)) => return Ok(Some(Received { len, priority })),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if at.is_some() && is_timeout(&e) => return Ok(None),
                Err(e) => return Err(self.recv_error(e, buf)),
            }
        }
    }

    fn check_recv(&self, buf: &[u8]) -> io::Result<()> {
        if buf.len() < self.max_message_size {
            return Err(self.buffer_too_small(buf.len()));
        }
        Ok(())
    }

    fn buffer_too_small(&self, len: usize) -> io::Error {
        invalid_input(format_args!(
            "receive from {}: the buffer of {len} bytes is shorter than the queue's max message \
             size, {} bytes (mq_receive needs room for the longest message)",
            self.name, self.max_message_size
        ))
    }

    fn recv_error(&self, err: io::Error, buf: &[u8]) -> io::Error {
        if err.raw_os_error() == Some(libc::EMSGSIZE) {
            return self.buffer_too_small(buf.len());
        }
        context(err, format_args!("receive from {}", self.name))
    }

    /// Unlinks the name only if it still names this queue (same inode): a queue someone else
    /// created under the name after ours was unlinked is left alone. A small window remains
    /// between the check and the unlink. When our own permissions keep us from opening the
    /// name to check, it is unlinked anyway (we created it).
    fn unlink_if_ours(&self) {
        let now = [libc::O_RDONLY, libc::O_WRONLY]
            .into_iter()
            .map(|access| sys::mq_open(&self.name.c, access | libc::O_NONBLOCK, 0, None))
            .find(|r| !matches!(r, Err(e) if e.kind() == io::ErrorKind::PermissionDenied));
        let same = match now {
            Some(Ok(now)) => match (rustix::fs::fstat(&self.fd), rustix::fs::fstat(&now)) {
                (Ok(ours), Ok(now)) => now.st_ino == ours.st_ino && now.st_dev == ours.st_dev,
                _ => false,
            },
            // Gone already, or unusable: nothing of ours to remove.
            Some(Err(_)) => false,
            None => true,
        };
        if same {
            let _ = sys::mq_unlink(&self.name.c);
        }
    }
}

impl Drop for PosixQueue {
    fn drop(&mut self) {
        if self.owner {
            self.unlink_if_ours();
        }
    }
}

impl AsFd for PosixQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PosixQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An absolute deadline long past: the timed calls return at once instead of waiting.
const PAST: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ETIMEDOUT) | Some(libc::EAGAIN)
    )
}

/// `deadline` as the absolute `CLOCK_REALTIME` time the timed calls take: [`PAST`] for
/// [`Deadline::Now`], `None` (wait without a deadline) for [`Deadline::Forever`] and for an
/// instant beyond what the kernel accepts.
fn realtime_deadline(deadline: Deadline) -> Option<libc::timespec> {
    // The kernel refuses deadlines past KTIME_SEC_MAX (about the year 2262).
    const SEC_MAX: u64 = (i64::MAX / 1_000_000_000) as u64;
    let timeout = match deadline {
        Deadline::Now => return Some(PAST),
        Deadline::At(_) => deadline.remaining()?,
        Deadline::Forever => return None,
    };
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let now = Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    let end = now.checked_add(timeout)?;
    if end.as_secs() > SEC_MAX {
        return None;
    }
    Some(libc::timespec {
        tv_sec: end.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(end.subsec_nanos()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_shm_rules() {
        assert_eq!(Name::parse("/a").unwrap().text, "/a");
        assert_eq!(Name::parse("a").unwrap().text, "/a");
        for bad in ["", "/", "/a/b", "a/", "/.", "..", "/a\0b"] {
            let err = Name::parse(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(Name::parse(&"x".repeat(255)).is_ok());
        assert!(Name::parse(&format!("/{}", "x".repeat(256))).is_err());
    }

    #[test]
    fn deadlines_are_in_the_future_or_none() {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let d = realtime_deadline(Deadline::after(Duration::from_secs(5))).unwrap();
        assert!(d.tv_sec >= now.tv_sec + 4 && d.tv_nsec < 1_000_000_000);
        assert!(realtime_deadline(Deadline::after(Duration::MAX)).is_none());
        let far = Deadline::after(Duration::from_secs(u64::from(u32::MAX) * 4));
        assert!(realtime_deadline(far).is_none());
        let now = realtime_deadline(Deadline::Now).unwrap();
        assert_eq!((now.tv_sec, now.tv_nsec), (PAST.tv_sec, PAST.tv_nsec));
        assert!(realtime_deadline(Deadline::Forever).is_none());
    }
}
