//! System V segments, semaphore sets and message queues, from `/proc/sysvipc/{shm,sem,msg}`,
//! with `semctl(GETPID/GETNCNT/GETZCNT)` for the per-semaphore evidence.

use std::fs;
use std::io;
use std::time::Duration;

use super::{idle_since, Kind, Object, RecordedPid, Removal, Usage};
use crate::error::context;
use crate::ipc_key::IpcKey;
use crate::pid::Pid;
use crate::sys;

/// One line of a `/proc/sysvipc` table.
#[derive(Debug, Clone)]
struct Row {
    kind: Kind,
    key: i32,
    id: i32,
    mode: u32,
    size: u64,
    uid: u32,
    attached: Option<u64>,
    /// Recorded process IDs with their role; 0 = none recorded.
    pids: Vec<(&'static str, i32)>,
    /// Every time the kernel records (seconds since the epoch, 0 = never), ctime last.
    times: Vec<i64>,
}

impl Row {
    fn ctime(&self) -> i64 {
        self.times.last().copied().unwrap_or(0)
    }
}

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::SysVShm => "/proc/sysvipc/shm",
        Kind::SysVSemaphores => "/proc/sysvipc/sem",
        _ => "/proc/sysvipc/msg",
    }
}

/// Every object of `kind`; none when the kernel has no System V IPC.
fn rows(kind: Kind) -> io::Result<Vec<Row>> {
    let path = table(kind);
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(context(e, format_args!("read {path}"))),
    };
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| parse(kind, line))
        .collect())
}

fn parse(kind: Kind, line: &str) -> Option<Row> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let int = |i: usize| -> Option<i64> { f.get(i)?.parse().ok() };
    let key = i32::try_from(int(0)?).ok()?;
    let id = i32::try_from(int(1)?).ok()?;
    let mode = u32::from_str_radix(f.get(2)?, 8).ok()?;
    let pid = |i: usize| -> Option<i32> { i32::try_from(int(i)?).ok() };
    let uid = |i: usize| -> Option<u32> { u32::try_from(int(i)?).ok() };
    let count = |i: usize| -> Option<u64> { u64::try_from(int(i)?).ok() };
    let row = match kind {
        // key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap
        Kind::SysVShm => Row {
            kind,
            key,
            id,
            mode,
            size: count(3)?,
            uid: uid(7)?,
            attached: Some(count(6)?),
            pids: vec![("creator", pid(4)?), ("last attach/detach", pid(5)?)],
            times: vec![int(11)?, int(12)?, int(13)?],
        },
        // key semid perms nsems uid gid cuid cgid otime ctime
        Kind::SysVSemaphores => Row {
            kind,
            key,
            id,
            mode,
            size: count(3)?,
            uid: uid(4)?,
            attached: None,
            pids: Vec::new(),
            times: vec![int(8)?, int(9)?],
        },
        // key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid stime rtime ctime
        _ => Row {
            kind,
            key,
            id,
            mode,
            size: count(3)?,
            uid: uid(7)?,
            attached: None,
            pids: vec![("last send", pid(5)?), ("last receive", pid(6)?)],
            times: vec![int(11)?, int(12)?, int(13)?],
        },
    };
    Some(row)
}

/// Every System V object, with its evidence of use.
pub(super) fn scan() -> io::Result<Vec<Object>> {
    let mut out = Vec::new();
    for kind in [Kind::SysVShm, Kind::SysVSemaphores, Kind::SysVQueue] {
        out.extend(rows(kind)?.into_iter().map(object));
    }
    Ok(out)
}

fn recorded(pids: &[(&'static str, i32)]) -> Vec<RecordedPid> {
    pids.iter()
        .filter_map(|&(role, raw)| {
            let pid = Pid::from_raw(raw).ok()?;
            Some(RecordedPid {
                role,
                pid,
                alive: super::procfs::alive(pid),
            })
        })
        .collect()
}

/// The last `semop` pid of each semaphore (deduplicated) and the number of waiters.
fn semaphores(id: i32, nsems: u64) -> io::Result<(Vec<(&'static str, i32)>, u64)> {
    let mut pids = Vec::new();
    let mut waiters = 0;
    for num in 0..i32::try_from(nsems).unwrap_or(i32::MAX) {
        let what = |cmd: &str| format!("semctl({id}, {num}, {cmd})");
        let pid =
            sys::sem::semctl(id, num, libc::GETPID).map_err(|e| context(e, what("GETPID")))?;
        let n =
            sys::sem::semctl(id, num, libc::GETNCNT).map_err(|e| context(e, what("GETNCNT")))?;
        let z =
            sys::sem::semctl(id, num, libc::GETZCNT).map_err(|e| context(e, what("GETZCNT")))?;
        waiters += u64::try_from(n).unwrap_or(0) + u64::try_from(z).unwrap_or(0);
        if pid > 0 && !pids.iter().any(|&(_, p)| p == pid) {
            pids.push(("last semop", pid));
        }
    }
    Ok((pids, waiters))
}

fn object(mut row: Row) -> Object {
    let mut waiters = None;
    let mut sem_error = None;
    if row.kind == Kind::SysVSemaphores {
        match semaphores(row.id, row.size) {
            Ok((pids, w)) => {
                row.pids = pids;
                waiters = Some(w);
            }
            Err(e) => sem_error = Some(e),
        }
    }
    let pids = recorded(&row.pids);
    let usage = usage(&row, &pids, waiters, sem_error);
    Object {
        kind: row.kind,
        name: None,
        path: None,
        key: Some(IpcKey::from_raw(row.key)),
        id: Some(row.id),
        size: row.size,
        uid: row.uid,
        mode: row.mode & 0o777,
        format: None,
        changed: super::epoch_time(row.times.iter().copied().max().unwrap_or(0)),
        usage,
        users: Vec::new(),
        pids,
        attached: row.attached,
        waiters,
        inode: None,
        stamp: row.ctime(),
    }
}

fn usage(
    row: &Row,
    pids: &[RecordedPid],
    waiters: Option<u64>,
    sem_error: Option<io::Error>,
) -> Usage {
    let live: Vec<String> = pids
        .iter()
        .filter(|p| p.alive)
        .map(|p| format!("{} {} (alive)", p.role, p.pid))
        .collect();
    let dead: Vec<String> = pids
        .iter()
        .filter(|p| !p.alive)
        .map(|p| format!("{} {} (gone)", p.role, p.pid))
        .collect();
    let history = if dead.is_empty() {
        String::new()
    } else {
        format!("; {}", dead.join(", "))
    };
    match row.kind {
        Kind::SysVShm => match row.attached {
            Some(n) if n > 0 => Usage::InUse(format!("{n} attachment(s)")),
            _ => Usage::Unused(format!("no attachments{history}")),
        },
        Kind::SysVSemaphores => {
            if let Some(e) = sem_error {
                return Usage::Unknown(format!("cannot read its semaphores: {e}"));
            }
            match waiters {
                Some(w) if w > 0 => Usage::InUse(format!("{w} process(es) waiting in semop")),
                _ if !live.is_empty() => Usage::InUse(live.join(", ")),
                _ if pids.is_empty() => Usage::Unused("no waiters, never operated on".into()),
                _ => Usage::Unused(format!("no waiters{history}")),
            }
        }
        _ if !live.is_empty() => Usage::InUse(live.join(", ")),
        _ if pids.is_empty() => Usage::Unused("never sent to or received from".into()),
        _ => Usage::Unused(history.trim_start_matches("; ").to_owned()),
    }
}

/// Removes the System V object `obj` if a fresh look still finds it unused and idle for
/// `min_idle`.
pub(super) fn remove_if_unused(obj: &Object, min_idle: Duration) -> io::Result<Removal> {
    let (Some(id), Some(key)) = (obj.id, obj.key) else {
        return Ok(Removal::Gone);
    };
    let Some(row) = rows(obj.kind)?.into_iter().find(|r| r.id == id) else {
        return Ok(Removal::Gone);
    };
    if row.key != key.as_raw() || row.ctime() != obj.stamp {
        // Removed (a removed segment's key reads 0) or changed: not the object listed.
        return Ok(Removal::Gone);
    }
    let fresh = object(row);
    let why = match &fresh.usage {
        Usage::Unused(why) => why.clone(),
        other => return Ok(Removal::Kept(other.to_string())),
    };
    if let Some(kept) = idle_since(fresh.changed, min_idle) {
        return Ok(Removal::Kept(kept));
    }
    let removed = match obj.kind {
        Kind::SysVShm => sys::shm::shm_remove(id),
        Kind::SysVSemaphores => sys::sem::semctl(id, 0, libc::IPC_RMID).map(drop),
        _ => sys::mq::msgctl_rmid(id),
    };
    match removed {
        Ok(()) => Ok(Removal::Removed(why)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => Ok(Removal::Gone),
        Err(e) => Err(context(e, format_args!("remove {obj}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_tables() {
        let shm = parse(
            Kind::SysVShm,
            " 737970527      65554   640                  4096 29074     0      0     0     0     0     0          0          0 1795691969                     0                     0",
        )
        .unwrap();
        assert_eq!(
            (shm.key, shm.id, shm.mode, shm.size),
            (737970527, 65554, 0o640, 4096)
        );
        assert_eq!(
            (shm.attached, shm.pids[0].1, shm.ctime()),
            (Some(0), 29074, 1795691969)
        );
        let sem = parse(
            Kind::SysVSemaphores,
            "-1744075339      65562   644          2     0     0     0     0          0 1795691969",
        )
        .unwrap();
        assert_eq!(
            (sem.key, sem.size, sem.ctime()),
            (-1744075339, 2, 1795691969)
        );
        let msg = parse(
            Kind::SysVQueue,
            "-115532557     163868   644           5          1   77   78     0     0     0     0     1     2 1795691969",
        )
        .unwrap();
        assert_eq!((msg.size, msg.pids[0].1, msg.pids[1].1), (5, 77, 78));
        assert!(parse(Kind::SysVQueue, "key msqid perms").is_none());
    }
}
