//! Binding a Unix socket to a path with the stale-file policy, and removing the socket file
//! again on drop.

use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::net::{self, AddressFamily};

use super::endpoint::unix_addr;
use super::{Endpoint, Kind};
use crate::error::{context, ResultExt};
use crate::sys::socket::socket;

/// A socket file this process created by binding, identified by inode so that drop removes it
/// only if it is still the same file.
#[derive(Debug)]
pub(super) struct BoundFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    keep: bool,
}

impl BoundFile {
    pub(super) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for BoundFile {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// `bind(2)` for a Unix endpoint, with the stale-file policy for a path that exists:
///
/// * a socket nobody listens on (connecting gives `ECONNREFUSED`) is removed, and the bind
///   retried;
/// * a live socket gives `AddrInUse` naming the path;
/// * anything that is not a socket is never removed.
///
/// A filesystem socket then gets `mode`, before `listen`, so nobody can connect earlier.
pub(super) fn bind_unix(
    fd: BorrowedFd<'_>,
    ep: &Endpoint,
    mode: u32,
) -> io::Result<Option<BoundFile>> {
    let addr = unix_addr(ep)?;
    match net::bind(fd, &addr) {
        Ok(()) => {}
        Err(Errno::ADDRINUSE) => {
            let Endpoint::Unix { path, kind } = ep else {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("bind \"{ep}\": the abstract name is in use"),
                ));
            };
            remove_if_stale(path, *kind, ep)?;
            net::bind(fd, &addr).context_with(|| format!("bind \"{ep}\""))?;
        }
        Err(e) => return Err(context(e, format_args!("bind \"{ep}\""))),
    }
    let Endpoint::Unix { path, .. } = ep else {
        return Ok(None);
    };
    let meta = std::fs::symlink_metadata(path)
        .context_with(|| format!("stat the new socket file {}", path.display()))?;
    let file = BoundFile {
        path: path.clone(),
        dev: meta.dev(),
        ino: meta.ino(),
        keep: false,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context_with(|| format!("chmod {mode:o} {}", path.display()))?;
    Ok(Some(file))
}

fn remove_if_stale(path: &Path, kind: Kind, ep: &Endpoint) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .context_with(|| format!("bind \"{ep}\": address in use; stat {}", path.display()))?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "bind \"{ep}\": {} exists and is not a socket; it is left alone",
                path.display()
            ),
        ));
    }
    // A live listener sees this probe as a connection that closes at once.
    let probe = socket(AddressFamily::UNIX, kind.socket_type(), true).context_with(|| {
        format!(
            "bind \"{ep}\": address in use; create a socket to probe {}",
            path.display()
        )
    })?;
    match net::connect(&probe, &unix_addr(ep)?) {
        Err(Errno::CONNREFUSED) => {
            // Nobody has the socket open: a listener died without removing its file.
            std::fs::remove_file(path).context_with(|| {
                format!(
                    "bind \"{ep}\": remove the stale socket file {}",
                    path.display()
                )
            })
        }
        Err(Errno::NOENT) => Ok(()), // removed meanwhile
        _ => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "bind \"{ep}\": a live socket is bound to {} (address in use)",
                path.display()
            ),
        )),
    }
}
