//! What a child's standard streams are connected to.

use std::fs::File;
use std::os::fd::OwnedFd;

#[cfg(doc)]
use super::{Child, Command};
use crate::pipe;

/// What a child's stdin, stdout or stderr is connected to.
///
/// Converts from a [`pipe::Reader`] or [`pipe::Writer`], a [`File`] or any [`OwnedFd`]. The
/// [`Command`] hands such an fd to the child at the next spawn and then closes its own copy,
/// so a reader in the parent sees end of file when the child (the only writer left) exits.
#[derive(Debug)]
pub struct Stdio(pub(super) StdioKind);

#[derive(Debug)]
pub(super) enum StdioKind {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
    HandedOver,
}

impl Stdio {
    /// The child shares the parent's stream (the default of [`Command::spawn`]).
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// The child's stream is `/dev/null`: reads see end of file, writes are discarded.
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A new pipe whose other end appears in [`Child::stdin`], [`Child::stdout`] or
    /// [`Child::stderr`].
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}

impl From<pipe::Reader> for Stdio {
    fn from(end: pipe::Reader) -> Stdio {
        Stdio::from(OwnedFd::from(end))
    }
}

impl From<pipe::Writer> for Stdio {
    fn from(end: pipe::Writer) -> Stdio {
        Stdio::from(OwnedFd::from(end))
    }
}

/// The stream setting used when a [`Command`] leaves one unset.
#[derive(Clone, Copy)]
pub(super) enum Fallback {
    Inherit,
    Null,
    Piped,
}
