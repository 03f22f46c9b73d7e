//! Message queues kept by the kernel: POSIX queues (named, with priorities and timeouts) and
//! System V queues (found by an [`IpcKey`](crate::IpcKey), received by type).
//!
//! Both kinds outlive the processes that use them: a message sent by a process that has since
//! exited is still there for the next reader, until the queue is removed. Both interoperate
//! with other languages: Python's `posix_ipc.MessageQueue` opens the same POSIX queue by name
//! and `sysv_ipc.MessageQueue` the same System V queue by key.
//!
//! | | [`PosixQueue`] | [`SysVQueue`] |
//! |---|---|---|
//! | found by | name (`/jobs`) | [`IpcKey`](crate::IpcKey) (an integer, or `ftok`) |
//! | message order | highest priority first, FIFO within a priority | FIFO, or chosen by type ([`TypeSelector`]) |
//! | limits | capacity and max message size per queue | total bytes per queue ([`SysVQueue::set_max_bytes`]) |
//! | timeouts | exact (`mq_timedsend`/`mq_timedreceive`) | by polling (no timed `msgrcv` exists) |
//! | pollable fd | yes ([`AsFd`](std::os::fd::AsFd)) | no |
//!
//! Sending and receiving cost one system call and no allocation: messages are byte slices
//! sent from and received into the caller's buffers. Both kinds take the message first and
//! its tag second (`send(msg, priority)`, `send(data, mtype)`), and a receive returns a
//! struct naming both numbers ([`Received`], [`SysVReceived`]).
//!
//! # Examples
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use ipcbox::mq::{Attributes, PosixQueue};
//!
//! let name = format!("/ipcbox-doc-mq-{}", std::process::id());
//! let q = PosixQueue::create(&name, Attributes { max_messages: 4, max_message_size: 64 })?;
//! q.send(b"low", 1)?;
//! q.send(b"urgent", 9)?;
//! let mut buf = [0u8; 64];
//! let got = q.recv(&mut buf)?;
//! assert_eq!((&buf[..got.len], got.priority), (&b"urgent"[..], 9));
//! # Ok(())
//! # }
//! ```

mod posix;
mod sysv;

pub use posix::{
    Attributes, Options, PosixAttributes, PosixLimits, PosixQueue, Received, PRIORITY_MAX,
};
pub use sysv::{SysVLimits, SysVOptions, SysVQueue, SysVReceived, SysVStat, TypeSelector};

use std::path::Path;

/// Reads one unsigned integer from a `/proc/sys` file.
fn read_proc_number(path: &str) -> std::io::Result<u64> {
    use crate::error::ResultExt;
    let text = std::fs::read_to_string(Path::new(path)).context_with(|| format!("read {path}"))?;
    text.trim()
        .parse()
        .map_err(|e| crate::error::invalid_input(format_args!("{path} holds {text:?}: {e}")))
}
