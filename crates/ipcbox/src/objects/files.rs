//! POSIX objects, which are files: segments and named semaphores in `/dev/shm`, message
//! queues in `/dev/mqueue`.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::procfs::{Inode, Processes};
use super::{idle_since, Format, How, Kind, Object, Removal, Usage, User};
use crate::error::context;

pub(super) const SHM_DIR: &str = "/dev/shm";
pub(super) const MQUEUE_DIR: &str = "/dev/mqueue";
/// `MQUEUE_MAGIC`, the `statfs` type of the mqueue file system.
const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// Where the POSIX message queues of this IPC namespace can be read as files.
enum QueueDir {
    /// `/dev/mqueue`, where mqueue is mounted.
    Mounted,
    /// A mount of mqueue attached nowhere (`fsopen`, `fsmount`): nobody else sees it, and it
    /// goes away with its descriptor. Its files are reached through `/proc/self/fd/N`.
    Private(OwnedFd),
}

impl QueueDir {
    /// `/dev/mqueue` if it is an mqueue mount, else a private mount; the error says why
    /// neither could be had (a private mount needs `CAP_SYS_ADMIN`).
    fn open() -> io::Result<QueueDir> {
        if rustix::fs::statfs(MQUEUE_DIR).is_ok_and(|s| s.f_type == MQUEUE_MAGIC) {
            return Ok(QueueDir::Mounted);
        }
        use rustix::mount::{fsconfig_create, fsmount, fsopen};
        use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
        let fs = fsopen("mqueue", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_create(&fs)?;
        let mount = fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NOEXEC | MountAttrFlags::MOUNT_ATTR_NOSUID,
        )?;
        Ok(QueueDir::Private(mount))
    }

    fn path(&self) -> PathBuf {
        match self {
            QueueDir::Mounted => PathBuf::from(MQUEUE_DIR),
            QueueDir::Private(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        }
    }
}

/// Every object in `/dev/shm`, and the POSIX message queues: from `/dev/mqueue` when mqueue is
/// mounted there, else through a private mount. When neither can be had, a note says that
/// queues are not listed (it is the first of the notes).
pub(super) fn scan(procs: &Processes, notes: &mut Vec<String>) -> io::Result<Vec<Object>> {
    let mut out = Vec::new();
    scan_dir(Path::new(SHM_DIR), None, procs, &mut out)?;
    match QueueDir::open() {
        Ok(dir @ QueueDir::Mounted) => scan_dir(&dir.path(), Some(true), procs, &mut out)?,
        Ok(dir @ QueueDir::Private(_)) => {
            notes.insert(
                0,
                format!(
                    "POSIX message queues: {MQUEUE_DIR} is not an mqueue mount; the queues \
                     are listed through a private mount of the mqueue file system, without \
                     paths"
                ),
            );
            scan_dir(&dir.path(), Some(false), procs, &mut out)?;
        }
        Err(e) => notes.insert(
            0,
            format!(
                "POSIX message queues: not listed, how many there are is unknown: \
                 {MQUEUE_DIR} is not an mqueue mount and a private mount failed ({e}; it \
                 needs CAP_SYS_ADMIN). Mount it (mount -t mqueue none {MQUEUE_DIR}) or run \
                 as root"
            ),
        ),
    }
    Ok(out)
}

/// Lists the files of `dir`: POSIX queues if `queues` is `Some(with_paths)`, else segments and
/// semaphores (`sem.NAME`).
fn scan_dir(
    dir: &Path,
    queues: Option<bool>,
    procs: &Processes,
    out: &mut Vec<Object>,
) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(context(e, format_args!("read {}", dir.display()))),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let (kind, name) = if queues.is_some() {
            (Kind::PosixQueue, format!("/{file}"))
        } else if let Some(sem) = file.strip_prefix("sem.") {
            (Kind::PosixSemaphore, format!("/{sem}"))
        } else {
            (Kind::PosixShm, format!("/{file}"))
        };
        let inode = (meta.dev(), meta.ino());
        let usage = usage(procs, inode, meta.uid(), meta.mode());
        let (size, format) = match kind {
            Kind::PosixQueue => (queued_bytes(&path).unwrap_or(0), None),
            _ => (meta.size(), classify(&path)),
        };
        out.push(Object {
            kind,
            name: Some(name),
            path: (queues != Some(false)).then_some(path),
            key: None,
            id: None,
            size,
            uid: meta.uid(),
            mode: meta.mode() & 0o777,
            format,
            changed: changed(&meta),
            usage,
            users: procs.users(inode).to_vec(),
            pids: Vec::new(),
            attached: None,
            waiters: None,
            inode: Some(inode),
            stamp: 0,
        });
    }
    Ok(())
}

/// The later of a file's modification and status-change times.
fn changed(meta: &fs::Metadata) -> std::time::SystemTime {
    super::epoch_time(meta.mtime().max(meta.ctime()))
}

/// `QSIZE:n` from reading a queue's file: the bytes in its messages.
fn queued_bytes(path: &Path) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.split_ascii_whitespace()
        .find_map(|f| f.strip_prefix("QSIZE:"))?
        .parse()
        .ok()
}

/// The ipcbox layout whose magic number the file starts with (read-only, 8 bytes).
fn classify(path: &Path) -> Option<Format> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let mut head = [0u8; 8];
    let n = file.read_at(&mut head, 0).ok()?;
    Format::recognise(&head[..n])
}

fn usage(procs: &Processes, inode: Inode, uid: u32, mode: u32) -> Usage {
    let users = procs.users(inode);
    if !users.is_empty() {
        return Usage::InUse(describe(users));
    }
    match procs.uninspectable_for(uid, mode) {
        0 => Usage::Unused("no live process maps it or holds it open".into()),
        n => Usage::Unknown(format!(
            "{n} process(es) that could use it cannot be inspected (run as their owner or root)"
        )),
    }
}

fn describe(users: &[User]) -> String {
    let list = |how: How| {
        users
            .iter()
            .filter(|u| u.how == how)
            .map(|u| format!("{} ({})", u.pid, u.command))
            .collect::<Vec<_>>()
    };
    let mut parts = Vec::new();
    for (how, verb) in [(How::Mapped, "mapped by"), (How::Open, "open in")] {
        let who = list(how);
        if !who.is_empty() {
            parts.push(format!("{verb} {}", who.join(", ")));
        }
    }
    parts.join("; ")
}

/// Removes the file of `obj` if it is still the object listed, idle for `min_idle`, and no
/// process maps or holds it once it has been moved out of the way.
///
/// The file is first renamed to a hidden name, so that no new opener can find it; then every
/// process is inspected again, and the file is removed only if nobody uses it, or else renamed
/// back. A process that opened it before the rename holds an fd or a mapping by then.
pub(super) fn remove_if_unused(obj: &Object, min_idle: Duration) -> io::Result<Removal> {
    if obj.kind == Kind::PosixQueue {
        return remove_queue_if_unused(obj, min_idle);
    }
    let (Some(path), Some(inode)) = (obj.path.as_deref(), obj.inode) else {
        return Ok(Removal::Gone);
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(context(e, format_args!("stat {}", path.display()))),
    };
    if (meta.dev(), meta.ino()) != inode {
        return Ok(Removal::Gone);
    }
    if let Some(kept) = idle_since(changed(&meta), min_idle) {
        return Ok(Removal::Kept(kept));
    }
    let hidden = hidden_name(path);
    match renameat_with(CWD, path, CWD, &hidden, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::NOENT => return Ok(Removal::Gone),
        // Not movable (another user's file in the sticky /dev/shm, say): check, then unlink,
        // which reports the reason if it fails too.
        Err(_) => return check_and_unlink(obj, path, path, inode),
    }
    let result = check_and_unlink(obj, &hidden, path, inode);
    // Put it back unless it is gone (removed, or taken by a concurrent `clean` meanwhile).
    if !matches!(result, Ok(Removal::Removed(_) | Removal::Gone)) {
        if let Err(e) = renameat_with(CWD, &hidden, CWD, path, RenameFlags::NOREPLACE) {
            let why = match result {
                Ok(Removal::Kept(why)) => why,
                Ok(_) => "kept".to_owned(),
                Err(err) => err.to_string(),
            };
            return Ok(Removal::Kept(format!(
                "{why}; it could not get its name back ({e}: a new object took it meanwhile) \
                 and stays at {}",
                hidden.display()
            )));
        }
    }
    result
}

/// [`remove_if_unused`] for a POSIX queue, found again where [`QueueDir::open`] finds queues.
/// mqueue has no rename: check, then unlink (a narrower guarantee, see the module docs).
fn remove_queue_if_unused(obj: &Object, min_idle: Duration) -> io::Result<Removal> {
    let (Some(name), Some(inode)) = (obj.name.as_deref(), obj.inode) else {
        return Ok(Removal::Gone);
    };
    let dir = QueueDir::open().map_err(|e| {
        context(
            e,
            format_args!("remove {obj}: {MQUEUE_DIR} is not mounted and a private mount failed"),
        )
    })?;
    let at = dir.path().join(name.trim_start_matches('/'));
    let meta = match fs::symlink_metadata(&at) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(context(e, format_args!("stat {obj}"))),
    };
    if (meta.dev(), meta.ino()) != inode {
        return Ok(Removal::Gone);
    }
    if let Some(kept) = idle_since(changed(&meta), min_idle) {
        return Ok(Removal::Kept(kept));
    }
    check_and_unlink(obj, &at, obj.path.as_deref().unwrap_or(&at), inode)
}

fn check_and_unlink(obj: &Object, at: &Path, path: &Path, inode: Inode) -> io::Result<Removal> {
    let procs = Processes::scan()?;
    let meta = match fs::symlink_metadata(at) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(context(e, format_args!("stat {}", at.display()))),
    };
    if (meta.dev(), meta.ino()) != inode {
        return Ok(Removal::Gone);
    }
    match usage(&procs, inode, meta.uid(), meta.mode()) {
        Usage::Unused(why) => match fs::remove_file(at) {
            Ok(()) => Ok(Removal::Removed(why)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Removal::Gone),
            Err(e) => Err(context(
                e,
                format_args!("remove {obj} ({})", path.display()),
            )),
        },
        other => Ok(Removal::Kept(other.to_string())),
    }
}

/// A fresh hidden name beside `path`.
fn hidden_name(path: &Path) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!(".ipcbox-clean-{}-{n}", std::process::id());
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_magic() {
        let dir = std::env::temp_dir().join(format!("ipcbox-objects-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("queue");
        fs::write(&file, b"IPCBQUE\x01rest").unwrap();
        assert_eq!(classify(&file), Some(Format::Queue));
        fs::write(&file, b"xx").unwrap();
        assert_eq!(classify(&file), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
