//! What `ls` and `watch` show of an object beyond the listing: the fill and peers of ipcbox's
//! queues, channels and stores (read without attaching, `ipcbox::objects::inspect`), and the
//! depth of message queues.

use ipcbox::mq::{PosixQueue, SysVQueue};
use ipcbox::objects::{self, Format, Kind, Object, RecordedPid, State};
use serde_json::{json, Value};

/// An object's state, or why it could not be read.
#[derive(Debug, Clone)]
pub(crate) enum Detail {
    /// Nothing more to show for this kind.
    None,
    /// An ipcbox queue, channel or store.
    Inspected(State),
    /// A POSIX message queue.
    PosixMq {
        messages: u64,
        capacity: u64,
        max_message: u64,
    },
    /// A System V message queue.
    SysVMq {
        messages: u64,
        bytes: u64,
        max_bytes: u64,
    },
    /// It could not be read: why.
    Unreadable(String),
}

/// The state of a listed object.
pub(crate) fn of_object(obj: &Object) -> Detail {
    match (obj.kind, obj.format, &obj.name, obj.id) {
        (Kind::PosixShm, Some(Format::Queue | Format::Channel | Format::Store), Some(name), _) => {
            of_segment(name)
        }
        (Kind::PosixQueue, _, Some(name), _) => of_posix_mq(name),
        (Kind::SysVQueue, _, _, Some(id)) => from(
            SysVQueue::from_id(id)
                .and_then(|q| q.stat())
                .map(|s| Detail::SysVMq {
                    messages: s.messages,
                    bytes: s.bytes,
                    max_bytes: s.max_bytes,
                }),
        ),
        _ => Detail::None,
    }
}

/// The state of an ipcbox queue, channel or store by name.
pub(crate) fn of_segment(name: &str) -> Detail {
    from(objects::inspect(name).map(|s| s.map_or(Detail::None, Detail::Inspected)))
}

/// The depth of a POSIX message queue by name (opened for a moment: the kernel tells it only
/// through a descriptor).
pub(crate) fn of_posix_mq(name: &str) -> Detail {
    from(
        PosixQueue::open(name)
            .and_then(|q| q.attributes())
            .map(|a| Detail::PosixMq {
                messages: a.current_messages as u64,
                capacity: a.max_messages as u64,
                max_message: a.max_message_size as u64,
            }),
    )
}

/// The depth of a System V message queue by key.
pub(crate) fn of_sysv_mq(key: ipcbox::IpcKey) -> Detail {
    from(
        SysVQueue::open(key)
            .and_then(|q| q.stat())
            .map(|s| Detail::SysVMq {
                messages: s.messages,
                bytes: s.bytes,
                max_bytes: s.max_bytes,
            }),
    )
}

fn from(r: std::io::Result<Detail>) -> Detail {
    r.unwrap_or_else(|e| Detail::Unreadable(e.to_string()))
}

/// Counters that only grow, for rates: messages sent and received since creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// The counters wrap at 2^32 (a channel's).
    pub(crate) wraps32: bool,
}

impl Detail {
    /// Messages moved since creation, where the object counts them.
    pub(crate) fn totals(&self) -> Option<Totals> {
        match self {
            Detail::Inspected(State::Queue(q)) => Some(Totals {
                sent: q.sent,
                received: q.received,
                wraps32: false,
            }),
            Detail::Inspected(State::Channel(c)) => Some(Totals {
                sent: c.sent,
                received: c.received,
                wraps32: true,
            }),
            _ => None,
        }
    }

    /// One line for a table: "3/16 msgs, 24 B; peers 1 alive, 1 dead".
    pub(crate) fn summary(&self) -> String {
        let peers = |peers: &[RecordedPid]| {
            let alive = peers.iter().filter(|p| p.alive).count();
            let dead = peers.len() - alive;
            match (alive, dead) {
                (0, 0) => "no peers".to_owned(),
                (a, 0) => format!("peers {a} alive"),
                (a, d) => format!("peers {a} alive, {d} DEAD"),
            }
        };
        match self {
            Detail::None => "-".to_owned(),
            Detail::Unreadable(why) => format!("? {why}"),
            Detail::Inspected(State::Queue(q)) => format!(
                "{}/{} msgs, {}/{}{}; {}",
                q.messages,
                q.capacity,
                bytes(q.bytes),
                bytes(q.byte_capacity),
                if q.closed { ", closed" } else { "" },
                peers(&q.peers)
            ),
            Detail::Inspected(State::Channel(c)) => {
                format!("{}/{} msgs; {}", c.messages, c.capacity, peers(&c.peers))
            }
            Detail::Inspected(State::Store(s)) => format!(
                "{} of {} used, {} objects{}{}; {}",
                bytes(s.used),
                bytes(s.capacity),
                s.sealed,
                if s.creating > 0 {
                    format!(", {} being created", s.creating)
                } else {
                    String::new()
                },
                if s.abandoned > 0 {
                    format!(" ({} ABANDONED by a dead creator)", s.abandoned)
                } else {
                    String::new()
                },
                peers(&s.peers)
            ),
            Detail::Inspected(_) => "-".to_owned(),
            Detail::PosixMq {
                messages,
                capacity,
                max_message,
            } => format!(
                "{messages}/{capacity} msgs of up to {}",
                bytes(*max_message)
            ),
            Detail::SysVMq {
                messages,
                bytes: b,
                max_bytes,
            } => format!("{messages} msgs, {}/{}", bytes(*b), bytes(*max_bytes)),
        }
    }

    /// The state as JSON (`null` when there is none).
    pub(crate) fn json(&self) -> Value {
        let peers = |peers: &[RecordedPid]| {
            peers
                .iter()
                .map(|p| json!({"role": p.role, "pid": p.pid.as_raw(), "alive": p.alive}))
                .collect::<Vec<_>>()
        };
        let alive = |ps: &[RecordedPid]| ps.iter().filter(|p| p.alive).count();
        match self {
            Detail::None => Value::Null,
            Detail::Unreadable(why) => json!({"error": why}),
            Detail::Inspected(State::Queue(q)) => json!({
                "type": "queue",
                "messages": q.messages,
                "capacity": q.capacity,
                "bytes": q.bytes,
                "byte_capacity": q.byte_capacity,
                "max_message": q.max_message,
                "sent": q.sent,
                "received": q.received,
                "closed": q.closed,
                "recoveries": q.recoveries,
                "peers": peers(&q.peers),
                "peers_alive": alive(&q.peers),
                "peers_dead": q.peers.len() - alive(&q.peers),
            }),
            Detail::Inspected(State::Channel(c)) => json!({
                "type": "channel",
                "messages": c.messages,
                "capacity": c.capacity,
                "max_message": c.max_message,
                "sent": c.sent,
                "received": c.received,
                "peers": peers(&c.peers),
                "peers_alive": alive(&c.peers),
                "peers_dead": c.peers.len() - alive(&c.peers),
            }),
            Detail::Inspected(State::Store(s)) => json!({
                "type": "store",
                "capacity": s.capacity,
                "used": s.used,
                "max_objects": s.max_objects,
                "sealed": s.sealed,
                "creating": s.creating,
                "abandoned": s.abandoned,
                "deleting": s.deleting,
                "peers": peers(&s.peers),
                "peers_alive": alive(&s.peers),
                "peers_dead": s.peers.len() - alive(&s.peers),
            }),
            Detail::Inspected(_) => Value::Null,
            Detail::PosixMq {
                messages,
                capacity,
                max_message,
            } => json!({
                "type": "posix-mq",
                "messages": messages,
                "capacity": capacity,
                "max_message": max_message,
            }),
            Detail::SysVMq {
                messages,
                bytes,
                max_bytes,
            } => json!({
                "type": "sysv-msg",
                "messages": messages,
                "bytes": bytes,
                "max_bytes": max_bytes,
            }),
        }
    }
}

/// `512 B`, `1.5 KiB`, `64 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64 MiB");
    }
}
