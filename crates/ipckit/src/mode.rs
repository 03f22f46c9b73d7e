//! How a named OS object is created or opened.

/// How a named object (FIFO, shared-memory segment, queue, semaphore…) is created or opened.
///
/// The process that creates a name owns it: it removes the name when its handle is dropped,
/// unless it detaches the handle. A process that merely opens an existing name never removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreationMode {
    /// Create the object; fail with [`std::io::ErrorKind::AlreadyExists`] if the name exists.
    CreateExclusive,
    /// Open the object if the name exists, otherwise create it (and then own it).
    OpenOrCreate,
    /// Open an existing object; fail with [`std::io::ErrorKind::NotFound`] if there is none.
    Open,
}
