//! Looking inside ipcbox's own segments without taking part in them.
//!
//! Opening a [`Queue`](crate::Queue) attaches the opener as a peer: it is counted among the
//! processes whose death disconnects the others, and a consumer waiting for producers would be
//! told "disconnected" once the onlooker left. Opening a store takes its lock. An onlooker
//! such as `ipcbox watch` must do neither, so [`inspect`] maps the segment read-only and reads
//! the counters LAYOUT.md describes, with the atomic loads of their size and no lock.

use std::io;
use std::sync::atomic::Ordering::Acquire;

use super::{Format, RecordedPid};
use crate::layout::channel::{self, RawChannelHeader, RawEnd};
use crate::layout::queue::{self, RawQueueHeader, RawSide};
use crate::layout::store::{self as store_layout, RawEntry, RawHeader, TABLE_OFFSET};
use crate::liveness::{self, Liveness};
use crate::mode::CreationMode;
use crate::pid::Pid;
use crate::queue::peers;
use crate::shm;
use crate::sys::mmap::{slice, view, Mapping};

/// What [`inspect`] read in one of ipcbox's segments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// A [`Queue`](crate::Queue) or [`ByteQueue`](crate::queue::ByteQueue).
    Queue(QueueState),
    /// A one-to-one [`channel`](crate::queue::channel).
    Channel(ChannelState),
    /// An object [`Store`](crate::store::Store).
    Store(StoreState),
}

/// A queue's fill and peers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueState {
    /// The most messages it holds.
    pub capacity: u64,
    /// The most payload bytes it holds.
    pub byte_capacity: u64,
    /// The largest message it takes.
    pub max_message: u64,
    /// Messages in it now (at most `capacity`).
    pub messages: u64,
    /// Payload bytes in it now.
    pub bytes: u64,
    /// Messages ever put.
    pub sent: u64,
    /// Messages ever taken.
    pub received: u64,
    /// Whether it was closed.
    pub closed: bool,
    /// Times a process found a lock owner dead and repaired the queue.
    pub recoveries: u64,
    /// The attached processes (role `attached`), dead ones included until their entry is
    /// reused.
    pub peers: Vec<RecordedPid>,
}

/// A one-to-one channel's fill and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelState {
    /// Slots: the most messages it holds.
    pub capacity: u64,
    /// The largest message it takes.
    pub max_message: u64,
    /// Messages in it now.
    pub messages: u64,
    /// Messages ever sent, modulo 2^32.
    pub sent: u64,
    /// Messages ever received, modulo 2^32.
    pub received: u64,
    /// The processes holding the ends (roles `sender`, `receiver`); an end nobody holds or
    /// whose holder dropped it is not listed.
    pub peers: Vec<RecordedPid>,
}

/// A store's use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreState {
    /// The data area's size in bytes.
    pub capacity: u64,
    /// The table's size: the most objects at once.
    pub max_objects: u64,
    /// Bytes allocated to objects (sealed, being created, deleted but held).
    pub used: u64,
    /// Sealed objects.
    pub sealed: u64,
    /// Objects being created.
    pub creating: u64,
    /// Of those, the ones whose creator is dead: the next operation that needs the space
    /// frees them.
    pub abandoned: u64,
    /// Deleted objects still held.
    pub deleting: u64,
    /// The processes creating objects (role `creator`) or holding views (role `holder`), each
    /// once per role.
    pub peers: Vec<RecordedPid>,
}

/// Reads the state of the ipcbox queue, channel or object store in the POSIX shared-memory
/// segment `name`, without attaching to it, locking it or writing to it.
///
/// The segment is mapped read-only for the call. The figures are read while others change
/// them, each with one atomic load: every one is a value it had, not all from the same
/// instant. Whether a peer is alive is decided as the object itself decides it, by the process
/// ID and, where the object records it, the start time; a zombie is dead.
///
/// Returns `Ok(None)` for a segment that holds none of the three (another ipcbox layout, or
/// not ipcbox's).
///
/// # Errors
///
/// * [`io::ErrorKind::NotFound`] when there is no segment `name`;
/// * [`io::ErrorKind::PermissionDenied`] when it may not be read;
/// * [`io::ErrorKind::InvalidData`] when its header is not one this version reads (another
///   layout version, not yet initialised, corrupted).
///
/// # Examples
///
/// ```
/// use ipcbox::objects::{self, State};
///
/// # let name = format!("/ipcbox-doc-inspect-{}", std::process::id());
/// let q: ipcbox::Queue<u32> = ipcbox::Queue::create(&name, 8)?;
/// q.put(&7).unwrap();
/// let Some(State::Queue(s)) = objects::inspect(&name)? else { panic!("a queue") };
/// assert_eq!((s.messages, s.capacity), (1, 8));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn inspect(name: &str) -> io::Result<Option<State>> {
    let seg = shm::Options::new()
        .mode(CreationMode::Open)
        .read_only(true)
        .open(name)?;
    let label = seg.name();
    let (_link, map) = seg.into_parts();
    let mut head = [0u8; 8];
    let _ = map.read_at(0, &mut head);
    match Format::recognise(&head) {
        Some(Format::Queue) => queue_state(&map, &label).map(|s| Some(State::Queue(s))),
        Some(Format::Channel) => channel_state(&map, &label).map(|s| Some(State::Channel(s))),
        Some(Format::Store) => store_state(&map, &label).map(|s| Some(State::Store(s))),
        _ => Ok(None),
    }
}

fn bad(what: &str, label: &str, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("inspect {what} {label}: {why}"),
    )
}

/// Checks a header's magic, version and ready word.
fn check_header(
    what: &str,
    label: &str,
    (magic, want_magic): (u64, u64),
    (version, want_version): (u32, u32),
    ready: bool,
) -> io::Result<()> {
    if magic != want_magic {
        return Err(bad(what, label, "not initialised"));
    }
    if version != want_version {
        return Err(bad(
            what,
            label,
            format_args!("layout version {version}, this ipcbox reads {want_version}"),
        ));
    }
    if !ready {
        return Err(bad(
            what,
            label,
            "not initialised: its creator is still setting it up, or died doing so",
        ));
    }
    Ok(())
}

fn pid_of(raw: u64) -> Option<Pid> {
    i32::try_from(raw).ok().and_then(|p| Pid::from_raw(p).ok())
}

fn queue_state(map: &Mapping, label: &str) -> io::Result<QueueState> {
    let h: &RawQueueHeader = view(map, 0).ok_or_else(|| bad("queue", label, "too small"))?;
    check_header(
        "queue",
        label,
        (h.magic.load(Acquire), queue::MAGIC),
        (h.version.load(Acquire), queue::VERSION),
        h.ready.load(Acquire) == queue::READY,
    )?;
    // Totals only grow and consumers never pass producers: reading the consumers' first keeps
    // the difference from going negative however the two race.
    let totals = |side: &RawSide| {
        (
            side.totals.msgs.load(Acquire),
            side.totals.bytes.load(Acquire),
        )
    };
    let (got, got_bytes) = totals(&h.consumers);
    let (put, put_bytes) = totals(&h.producers);
    let capacity = h.cap_msgs.load(Acquire);
    let byte_capacity = h.cap_bytes.load(Acquire);
    let peers = h
        .peers
        .iter()
        .filter_map(|p| {
            let (pid, start) = (p.pid.load(Acquire), p.start.load(Acquire));
            pid_of(pid).map(|pid_| RecordedPid {
                role: "attached",
                pid: pid_,
                alive: peers::alive(pid, start),
            })
        })
        .collect();
    Ok(QueueState {
        capacity,
        byte_capacity,
        max_message: h.max_msg.load(Acquire),
        messages: put.saturating_sub(got).min(capacity),
        bytes: put_bytes.saturating_sub(got_bytes).min(byte_capacity),
        sent: put,
        received: got,
        closed: h.closed.load(Acquire) != 0,
        recoveries: h.recoveries.load(Acquire),
        peers,
    })
}

fn channel_state(map: &Mapping, label: &str) -> io::Result<ChannelState> {
    let h: &RawChannelHeader = view(map, 0).ok_or_else(|| bad("channel", label, "too small"))?;
    check_header(
        "channel",
        label,
        (h.magic.load(Acquire), channel::MAGIC),
        (h.version.load(Acquire), channel::VERSION),
        h.ready.load(Acquire) == channel::READY,
    )?;
    let received = h.head.load(Acquire);
    let sent = h.tail.load(Acquire);
    let capacity = h.capacity.load(Acquire);
    let end = |end: &RawEnd, role: &'static str| {
        let owner = end.owner.load(Acquire);
        if owner == 0 || end.gone.load(Acquire) != 0 {
            return None;
        }
        pid_of(owner & 0xFFFF_FFFF).map(|pid| RecordedPid {
            role,
            pid,
            alive: peers::alive_packed(owner),
        })
    };
    Ok(ChannelState {
        capacity,
        max_message: h.max_msg.load(Acquire),
        messages: u64::from(sent.wrapping_sub(received)).min(capacity),
        sent: u64::from(sent),
        received: u64::from(received),
        peers: [end(&h.sender, "sender"), end(&h.receiver, "receiver")]
            .into_iter()
            .flatten()
            .collect(),
    })
}

fn store_state(map: &Mapping, label: &str) -> io::Result<StoreState> {
    let h: &RawHeader = view(map, 0).ok_or_else(|| bad("object store", label, "too small"))?;
    check_header(
        "object store",
        label,
        (h.magic.load(Acquire), store_layout::MAGIC),
        (h.version.load(Acquire), store_layout::VERSION),
        true,
    )?;
    let entries = h.entries.load(Acquire);
    let table = usize::try_from(entries)
        .ok()
        .filter(|&n| n <= store_layout::MAX_OBJECTS_LIMIT)
        .and_then(|n| slice::<RawEntry>(map, TABLE_OFFSET, n))
        .ok_or_else(|| {
            bad(
                "object store",
                label,
                format_args!("a table of {entries} entries does not fit the segment"),
            )
        })?;
    let mut state = StoreState {
        capacity: h.capacity.load(Acquire),
        max_objects: entries,
        used: 0,
        sealed: 0,
        creating: 0,
        abandoned: 0,
        deleting: 0,
        peers: Vec::new(),
    };
    let note = |role: &'static str, raw: u32, peers: &mut Vec<RecordedPid>| {
        let Some(pid) = pid_of(u64::from(raw)) else {
            return true;
        };
        if let Some(known) = peers.iter().find(|p| p.role == role && p.pid == pid) {
            return known.alive;
        }
        let alive = liveness::process(raw, |_| true) != Liveness::Dead;
        peers.push(RecordedPid { role, pid, alive });
        alive
    };
    let mut peers = Vec::new();
    for e in table {
        match e.state.load(Acquire) {
            store_layout::FREE => continue,
            store_layout::CREATING => {
                state.creating += 1;
                if !note("creator", e.creator.load(Acquire), &mut peers) {
                    state.abandoned += 1;
                }
            }
            store_layout::SEALED => state.sealed += 1,
            _ => state.deleting += 1,
        }
        state.used = state.used.saturating_add(e.alloc_len.load(Acquire));
        for holder in &e.holders {
            if holder.count.load(Acquire) > 0 {
                note("holder", holder.pid.load(Acquire), &mut peers);
            }
        }
    }
    state.used = state.used.min(state.capacity);
    peers.sort_by_key(|p| (p.role, p.pid.as_raw()));
    state.peers = peers;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ObjectId, Store};

    fn name(tag: &str) -> String {
        format!("/ipcbox-unit-inspect-{tag}-{}", std::process::id())
    }

    #[test]
    fn a_queue_is_read_without_attaching() {
        let n = name("queue");
        let q = crate::queue::Options::new()
            .capacity(4)
            .byte_capacity(1024)
            .named::<Vec<u8>>(&n)
            .unwrap();
        q.as_bytes().put(b"abc").unwrap();
        q.as_bytes().put(b"defgh").unwrap();
        let Some(State::Queue(s)) = inspect(&n).unwrap() else {
            panic!("not a queue")
        };
        assert_eq!((s.capacity, s.byte_capacity), (4, 1024));
        assert_eq!((s.messages, s.bytes, s.sent, s.received), (2, 8, 2, 0));
        assert!(!s.closed);
        let me = Pid::this();
        assert_eq!(
            s.peers,
            [RecordedPid {
                role: "attached",
                pid: me,
                alive: true
            }]
        );
        // Inspecting attached nobody: still this one process.
        let Some(State::Queue(again)) = inspect(&n).unwrap() else {
            panic!("not a queue")
        };
        assert_eq!(again.peers.len(), 1);
        q.as_bytes().get().unwrap();
        q.close().unwrap();
        let Some(State::Queue(s)) = inspect(&n).unwrap() else {
            panic!("not a queue")
        };
        assert_eq!((s.messages, s.received, s.closed), (1, 1, true));
    }

    #[test]
    fn a_store_reports_use_and_holders() {
        let n = name("store");
        let store = Store::create(&n, 1 << 16).unwrap();
        let mut buf = store.create_object(ObjectId::from_u64(1), 100).unwrap();
        buf.fill(1);
        buf.seal().unwrap();
        let _pending = store.create_object(ObjectId::from_u64(2), 10).unwrap();
        let _view = store.get(ObjectId::from_u64(1)).unwrap();
        let Some(State::Store(s)) = inspect(&n).unwrap() else {
            panic!("not a store")
        };
        assert_eq!(
            (s.sealed, s.creating, s.abandoned, s.deleting),
            (1, 1, 0, 0)
        );
        assert_eq!(s.used, 128 + 64);
        assert_eq!(s.capacity, 1 << 16);
        let roles: Vec<_> = s.peers.iter().map(|p| (p.role, p.alive)).collect();
        assert_eq!(roles, [("creator", true), ("holder", true)]);
    }

    #[test]
    fn other_segments_and_missing_names() {
        let n = name("plain");
        let seg = shm::Segment::create(&n, 4096).unwrap();
        assert_eq!(inspect(&n).unwrap(), None);
        drop(seg);
        assert_eq!(inspect(&n).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_wrong_version_is_invalid_data() {
        let n = name("version");
        let seg = shm::Segment::create(&n, 8192).unwrap();
        seg.write_at(0, b"IPCBQUE\x01").unwrap();
        seg.write_at(8, &99u32.to_ne_bytes()).unwrap();
        let e = inspect(&n).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("version 99"), "{e}");
    }
}
