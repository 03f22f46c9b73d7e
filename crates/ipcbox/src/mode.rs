//! How a named OS object is created or opened.

use std::io;

/// How a named object (FIFO, shared-memory segment, queue, semaphore…) is created or opened.
///
/// The process that creates a name owns it: it removes the name when its handle is dropped,
/// unless it detaches the handle. A process that merely opens an existing name never removes it.
/// Every `Options::new()` starts at `CreateExclusive` (see [Named objects](crate#named-objects)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreationMode {
    /// Create the object; fail with [`std::io::ErrorKind::AlreadyExists`] if the name exists.
    CreateExclusive,
    /// Open the object if the name exists, otherwise create it (and then own it).
    OpenOrCreate,
    /// Open an existing object; fail with [`std::io::ErrorKind::NotFound`] if there is none.
    Open,
}

/// How often `OpenOrCreate` retries when the name appears and vanishes under it.
const OPEN_OR_CREATE_ATTEMPTS: usize = 16;

impl CreationMode {
    /// Creates or opens an object as the mode says, returning it and whether it was created.
    ///
    /// `create` must fail with `AlreadyExists` when the name is taken (`O_CREAT | O_EXCL`,
    /// `IPC_CREAT | IPC_EXCL`), `open` with `NotFound` when there is no such name.
    /// `OpenOrCreate` tries `create`, then `open` if the name exists, and again while the name
    /// keeps vanishing in between (a few times; then `open`'s `NotFound` is the answer).
    pub(crate) fn create_or_open<T>(
        self,
        mut create: impl FnMut() -> io::Result<T>,
        mut open: impl FnMut() -> io::Result<T>,
    ) -> io::Result<(T, bool)> {
        match self {
            CreationMode::CreateExclusive => Ok((create()?, true)),
            CreationMode::Open => Ok((open()?, false)),
            CreationMode::OpenOrCreate => {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match create() {
                        Ok(obj) => return Ok((obj, true)),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                    match open() {
                        Ok(obj) => return Ok((obj, false)),
                        Err(e)
                            if e.kind() == io::ErrorKind::NotFound
                                && attempt < OPEN_OR_CREATE_ATTEMPTS => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: io::ErrorKind) -> io::Result<u8> {
        Err(io::Error::from(kind))
    }

    #[test]
    fn create_or_open_follows_the_mode() {
        use io::ErrorKind::{AlreadyExists, NotFound};
        let ok = |v: u8| move || Ok(v);
        assert_eq!(
            CreationMode::CreateExclusive
                .create_or_open(ok(1), ok(2))
                .unwrap(),
            (1, true)
        );
        assert_eq!(
            CreationMode::Open.create_or_open(ok(1), ok(2)).unwrap(),
            (2, false)
        );
        assert_eq!(
            CreationMode::OpenOrCreate
                .create_or_open(ok(1), ok(2))
                .unwrap(),
            (1, true)
        );
        let taken = || err(AlreadyExists);
        assert_eq!(
            CreationMode::OpenOrCreate
                .create_or_open(taken, ok(2))
                .unwrap(),
            (2, false)
        );
        let e = CreationMode::CreateExclusive
            .create_or_open(taken, ok(2))
            .unwrap_err();
        assert_eq!(e.kind(), AlreadyExists);
        // The name vanishes between a failed create and the open: try again, then give up.
        let (mut creates, mut opens) = (0, 0);
        let e = CreationMode::OpenOrCreate
            .create_or_open(
                || {
                    creates += 1;
                    err(AlreadyExists)
                },
                || {
                    opens += 1;
                    err(NotFound)
                },
            )
            .unwrap_err();
        assert_eq!(e.kind(), NotFound);
        assert_eq!(
            (creates, opens),
            (OPEN_OR_CREATE_ATTEMPTS, OPEN_OR_CREATE_ATTEMPTS)
        );
    }
}
