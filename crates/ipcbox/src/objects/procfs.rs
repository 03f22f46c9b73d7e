//! What `/proc` tells about processes: which files each one maps or holds open, and whether a
//! recorded process ID still names a live process.

use std::collections::HashMap;
use std::fs;
use std::io;

use super::{How, User};
use crate::liveness::{self, Liveness};
use crate::pid::Pid;

/// A file's identity: (device, inode).
pub(super) type Inode = (u64, u64);

/// Every process's mapped and open files, from one pass over `/proc`.
#[derive(Debug, Default)]
pub(super) struct Processes {
    users: HashMap<Inode, Vec<User>>,
    /// Processes whose maps or fds could not be read: (pid, effective uid).
    uninspectable: Vec<(i32, Option<u32>)>,
}

impl Processes {
    /// Reads `/proc/*/maps` and `/proc/*/fd` of every process in this PID namespace.
    pub(super) fn scan() -> io::Result<Processes> {
        let mut this = Processes::default();
        let dir = fs::read_dir("/proc").map_err(|e| crate::error::context(e, "read /proc"))?;
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            this.scan_process(pid);
        }
        Ok(this)
    }

    fn scan_process(&mut self, pid: i32) {
        let Ok(id) = Pid::from_raw(pid) else { return };
        let command = fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default();
        let mut found: Vec<(Inode, How)> = Vec::new();
        match maps(pid) {
            Ok(maps) => found.extend(maps.lines().filter_map(map_inode).map(|i| (i, How::Mapped))),
            Err(e) if gone(&e) => return,
            Err(_) => return self.uninspectable.push((pid, process_uid(pid))),
        }
        match fs::read_dir(format!("/proc/{pid}/fd")) {
            Ok(fds) => {
                for fd in fds.flatten() {
                    let path = fd.path();
                    // Sockets, pipes and anonymous inodes read as "socket:[…]" etc.: skip them
                    // without a stat.
                    let named = fs::read_link(&path).is_ok_and(|t| t.is_absolute());
                    if let (true, Ok(st)) = (named, rustix::fs::stat(&path)) {
                        found.push(((st.st_dev, st.st_ino), How::Open));
                    }
                }
            }
            Err(e) if gone(&e) => return,
            Err(_) => return self.uninspectable.push((pid, process_uid(pid))),
        }
        found.sort_unstable_by_key(|&(inode, how)| (inode, how as u8));
        found.dedup();
        for (inode, how) in found {
            self.users.entry(inode).or_default().push(User {
                pid: id,
                command: command.clone(),
                how,
            });
        }
    }

    /// The processes that map or hold open the file `inode`.
    pub(super) fn users(&self, inode: Inode) -> &[User] {
        self.users.get(&inode).map_or(&[], Vec::as_slice)
    }

    /// How many processes that could not be inspected might use an object of owner `uid`
    /// and permission bits `mode`: those running as `uid`, and, if the object is open to group
    /// or others, every other one. Root processes are assumed not to use objects through
    /// paths nobody can see (a root process is uninspectable to root only when it has more
    /// capabilities, and to other users always, which would otherwise block every removal).
    pub(super) fn uninspectable_for(&self, uid: u32, mode: u32) -> usize {
        self.uninspectable
            .iter()
            .filter(|&&(_, puid)| match puid {
                Some(0) => false,
                Some(p) => p == uid || mode & 0o077 != 0,
                None => true,
            })
            .count()
    }

    /// The processes whose maps or fds could not be read, for a note.
    pub(super) fn uninspectable(&self) -> Option<String> {
        let n = self.uninspectable.len();
        if n == 0 {
            return None;
        }
        let some: Vec<String> = self
            .uninspectable
            .iter()
            .take(5)
            .map(|(pid, uid)| match uid {
                Some(uid) => format!("{pid} (uid {uid})"),
                None => pid.to_string(),
            })
            .collect();
        let more = if n > 5 { ", …" } else { "" };
        Some(format!(
            "{n} process(es) could not be inspected: {}{more}; objects they could use (same \
             owner, or open to group/others) count as unknown, except for root's processes, \
             which are assumed not to use them",
            some.join(", ")
        ))
    }
}

/// `/proc/PID/maps`; if that is empty (a kernel thread, or a process whose main thread has
/// exited while others run), the maps of its first other thread that has any.
fn maps(pid: i32) -> io::Result<String> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))?;
    if !maps.is_empty() {
        return Ok(maps);
    }
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Ok(maps);
    };
    for task in tasks.flatten() {
        if let Ok(m) = fs::read_to_string(task.path().join("maps")) {
            if !m.is_empty() {
                return Ok(m);
            }
        }
    }
    Ok(maps)
}

/// The (device, inode) of a file-backed line of `/proc/PID/maps`.
fn map_inode(line: &str) -> Option<Inode> {
    let mut fields = line.split_ascii_whitespace();
    let dev = fields.nth(3)?;
    let inode: u64 = fields.next()?.parse().ok()?;
    if inode == 0 {
        return None;
    }
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some((rustix::fs::makedev(major, minor), inode))
}

/// The process vanished while it was being read.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// The effective uid in `/proc/PID/status`.
fn process_uid(pid: i32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_ascii_whitespace().nth(2)?.parse().ok()
}

/// Whether `pid` may name a live process (see [`liveness`]): "unknown" counts as alive, the
/// safe answer for `clean`.
pub(super) fn alive(pid: Pid) -> bool {
    u32::try_from(pid.as_raw()).is_ok_and(|pid| liveness::process(pid, |_| true) != Liveness::Dead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_device_and_inode() {
        let line = "7f0000000000-7f0000001000 rw-s 00000000 00:1a 4242        /dev/shm/x";
        assert_eq!(map_inode(line), Some((rustix::fs::makedev(0, 0x1a), 4242)));
        let anon = "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0          [stack]";
        assert_eq!(map_inode(anon), None);
        assert_eq!(map_inode("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_sees_its_own_files() {
        assert!(alive(Pid::this()));
        let exe = rustix::fs::stat("/proc/self/exe").unwrap();
        let procs = Processes::scan().unwrap();
        let me = Pid::this();
        assert!(procs
            .users((exe.st_dev, exe.st_ino))
            .iter()
            .any(|u| u.pid == me && u.how == How::Mapped));
    }
}
