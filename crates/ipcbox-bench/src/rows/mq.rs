//! Kernel message queues, each beside its raw row: POSIX (`ipcbox::mq::PosixQueue` and bare
//! `mq_send` / `mq_receive`) and System V (`ipcbox::mq::SysVQueue` and bare `msgsnd` /
//! `msgrcv`). Two queues each way, made before `fork`; sizes within the unprivileged limits
//! (`/proc/sys/fs/mqueue`, `/proc/sys/kernel/msgmax`), so 1 MiB messages are not measured.

use std::io;
use std::os::fd::OwnedFd;

use ipcbox::mq::{PosixLimits, PosixQueue, SysVLimits, SysVQueue, TypeSelector};
use ipcbox::IpcKey;

use crate::rawsys;
use crate::row::{forked, Endpoint, Info, Kind, Link, Row};
use crate::rows::common::unique_name;

/// The POSIX and System V rows.
pub fn rows() -> Vec<Box<dyn Row>> {
    let posix = PosixLimits::read().ok();
    let posix_size = posix.map_or(8192, |l| l.msgsize_max);
    let posix_depth = posix.map_or(10, |l| l.msg_max).max(1);
    let sysv_size = SysVLimits::read().map_or(8192, |l| l.msgmax);
    vec![
        forked(
            Info::new("posix mq", "posix mq", Kind::Ipcbox).max_message(posix_size),
            PosixLink {
                depth: posix_depth,
                raw: false,
            },
        ),
        forked(
            Info::new("posix mq raw", "posix mq", Kind::Raw).max_message(posix_size),
            PosixLink {
                depth: posix_depth,
                raw: true,
            },
        ),
        forked(
            Info::new("sysv mq", "sysv mq", Kind::Ipcbox).max_message(sysv_size),
            SysVLink { raw: false },
        ),
        forked(
            Info::new("sysv mq raw", "sysv mq", Kind::Raw).max_message(sysv_size),
            SysVLink { raw: true },
        ),
    ]
}

fn short(got: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("received a message of {got} bytes, expected {want}"),
    )
}

/// POSIX queues `depth` messages deep, through ipcbox or bare calls.
#[derive(Debug)]
struct PosixLink {
    depth: usize,
    raw: bool,
}

/// The two queues: ipcbox handles, or bare descriptors with the names to unlink.
#[derive(Debug)]
enum PosixPair {
    Ipcbox(PosixQueue, PosixQueue),
    Raw(RawPosix),
}

/// Two bare queue descriptors; the parent unlinks the names when it drops them.
#[derive(Debug)]
struct RawPosix {
    to_child: OwnedFd,
    to_parent: OwnedFd,
    names: [String; 2],
    owner: u32,
    /// Both queues' message size.
    size: usize,
}

impl Drop for RawPosix {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            for name in &self.names {
                rawsys::mq_unlink(name);
            }
        }
    }
}

/// One side: ipcbox queues or bare descriptors, and a receive buffer of the queue's message
/// size (`mq_receive` demands one that large).
#[derive(Debug)]
struct PosixEnd {
    pair: PosixPair,
    child: bool,
    buf: Vec<u8>,
}

impl Link for PosixLink {
    type Shared = PosixPair;
    type Parent = PosixEnd;
    type Child = PosixEnd;

    fn prepare(&self, max_message: usize) -> io::Result<PosixPair> {
        let size = max_message.max(1);
        let names = [
            unique_name("/ipcbox-bench-mq"),
            unique_name("/ipcbox-bench-mq"),
        ];
        if self.raw {
            let to_child = rawsys::mq_create(&names[0], self.depth, size)?;
            let to_parent = rawsys::mq_create(&names[1], self.depth, size).inspect_err(|_| {
                rawsys::mq_unlink(&names[0]);
            })?;
            Ok(PosixPair::Raw(RawPosix {
                to_child,
                to_parent,
                names,
                owner: std::process::id(),
                size,
            }))
        } else {
            let attributes = ipcbox::mq::Attributes {
                max_messages: self.depth,
                max_message_size: size,
            };
            Ok(PosixPair::Ipcbox(
                PosixQueue::create(&names[0], attributes)?,
                PosixQueue::create(&names[1], attributes)?,
            ))
        }
    }

    fn parent(&self, pair: PosixPair) -> io::Result<PosixEnd> {
        Ok(PosixEnd::new(pair, false))
    }

    fn child(&self, mut pair: PosixPair) -> io::Result<PosixEnd> {
        if let PosixPair::Ipcbox(a, b) = &mut pair {
            a.detach();
            b.detach();
        }
        Ok(PosixEnd::new(pair, true))
    }
}

impl PosixEnd {
    fn new(pair: PosixPair, child: bool) -> PosixEnd {
        let size = match &pair {
            PosixPair::Ipcbox(a, _) => a.max_message_size(),
            PosixPair::Raw(raw) => raw.size,
        };
        PosixEnd {
            pair,
            child,
            buf: vec![0; size],
        }
    }
}

impl Endpoint for PosixEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match &self.pair {
            PosixPair::Ipcbox(to_child, to_parent) => {
                let q = if self.child { to_parent } else { to_child };
                q.send(msg, 0)
            }
            PosixPair::Raw(raw) => {
                let fd = if self.child {
                    &raw.to_parent
                } else {
                    &raw.to_child
                };
                rawsys::mq_send(fd, msg)
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let n = match &self.pair {
            PosixPair::Ipcbox(to_child, to_parent) => {
                let q = if self.child { to_child } else { to_parent };
                q.recv(&mut self.buf)?.len
            }
            PosixPair::Raw(raw) => {
                let fd = if self.child {
                    &raw.to_child
                } else {
                    &raw.to_parent
                };
                rawsys::mq_receive(fd, &mut self.buf)?
            }
        };
        if n != buf.len() {
            return Err(short(n, buf.len()));
        }
        buf.copy_from_slice(&self.buf[..n]);
        Ok(())
    }
}

/// System V queues (`IPC_PRIVATE`), through ipcbox or bare calls.
#[derive(Debug)]
struct SysVLink {
    raw: bool,
}

#[derive(Debug)]
enum SysVPair {
    Ipcbox(SysVQueue, SysVQueue),
    /// Queue ids (to the child, to the parent) and the process that removes them.
    Raw(RawSysV),
}

#[derive(Debug)]
struct RawSysV {
    ids: [i32; 2],
    owner: u32,
}

impl Drop for RawSysV {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            for id in self.ids {
                rawsys::msg_remove(id);
            }
        }
    }
}

/// One side, with a `struct msgbuf` buffer for each direction (type 1, then the payload).
#[derive(Debug)]
struct SysVEnd {
    pair: SysVPair,
    child: bool,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Link for SysVLink {
    type Shared = SysVPair;
    type Parent = SysVEnd;
    type Child = SysVEnd;

    fn prepare(&self, _max_message: usize) -> io::Result<SysVPair> {
        if self.raw {
            let a = rawsys::msg_create()?;
            let b = rawsys::msg_create().inspect_err(|_| rawsys::msg_remove(a))?;
            Ok(SysVPair::Raw(RawSysV {
                ids: [a, b],
                owner: std::process::id(),
            }))
        } else {
            Ok(SysVPair::Ipcbox(
                SysVQueue::create(IpcKey::PRIVATE)?,
                SysVQueue::create(IpcKey::PRIVATE)?,
            ))
        }
    }

    fn parent(&self, pair: SysVPair) -> io::Result<SysVEnd> {
        Ok(SysVEnd::new(pair, false))
    }

    fn child(&self, mut pair: SysVPair) -> io::Result<SysVEnd> {
        if let SysVPair::Ipcbox(a, b) = &mut pair {
            a.detach();
            b.detach();
        }
        Ok(SysVEnd::new(pair, true))
    }
}

impl SysVEnd {
    fn new(pair: SysVPair, child: bool) -> SysVEnd {
        SysVEnd {
            pair,
            child,
            out: 1i64.to_ne_bytes().to_vec(),
            buf: Vec::new(),
        }
    }
}

impl Endpoint for SysVEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match &self.pair {
            SysVPair::Ipcbox(to_child, to_parent) => {
                let q = if self.child { to_parent } else { to_child };
                q.send(msg, 1)
            }
            SysVPair::Raw(raw) => {
                self.out.truncate(8);
                self.out.extend_from_slice(msg);
                rawsys::msgsnd(raw.ids[usize::from(self.child)], &self.out)
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let n = match &self.pair {
            SysVPair::Ipcbox(to_child, to_parent) => {
                let q = if self.child { to_child } else { to_parent };
                q.recv(buf, TypeSelector::Any)?.len
            }
            SysVPair::Raw(raw) => {
                self.buf.resize(8 + buf.len(), 0);
                let n = rawsys::msgrcv(raw.ids[usize::from(!self.child)], &mut self.buf)?;
                buf.copy_from_slice(&self.buf[8..]);
                n
            }
        };
        if n != buf.len() {
            return Err(short(n, buf.len()));
        }
        Ok(())
    }
}
