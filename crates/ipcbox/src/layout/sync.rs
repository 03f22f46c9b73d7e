//! Layouts in shared memory of the synchronisation primitives: the header of a primitive's own
//! segment and the state of each primitive (LAYOUT.md, "Synchronisation primitives").

use std::sync::atomic::AtomicU32;

use crate::sys::mmap::shared_layout;

shared_layout! {
    /// ipcbox's process-shared robust mutex (of `sync::Mutex`, `shm::Value` and `shm::Array`):
    /// a lock word naming the owner thread, and a word saying whether what it protects is
    /// consistent. Two plain `u32`s, no pointers; `robust` implements the protocol.
    ///
    /// The lock word's format: LAYOUT.md, "Lock words".
    pub(crate) struct RawMutex {
        /// Who holds the lock, if anyone (`pid_lock`).
        pub(crate) word: AtomicU32 = 0,
        /// Whether what the lock protects is consistent, or an owner died, or the lock is not
        /// recoverable (`robust`).
        pub(crate) state: AtomicU32 = 4,
    }
}

shared_layout! {
    /// The header in front of every primitive ipcbox places in its own segment.
    #[derive(Debug)]
    pub(crate) struct Header {
        /// The `sync` magic number once the creator finished initialising the segment.
        pub(crate) magic: AtomicU32 = 0,
        pub(crate) version: AtomicU32 = 4,
        /// Which primitive (one of the `KIND_*` constants of `sync`).
        pub(crate) kind: AtomicU32 = 8,
        /// Total size of the segment in bytes.
        pub(crate) size: AtomicU32 = 12,
    }
}

shared_layout! {
    /// A counting semaphore's state: the count and how many processes sleep on it.
    #[derive(Debug)]
    pub(crate) struct RawSemaphore {
        pub(crate) count: AtomicU32 = 0,
        pub(crate) waiters: AtomicU32 = 4,
    }
}

shared_layout! {
    /// An event's state: 0 = clear, 1 = set, and the number of sleepers.
    #[derive(Debug)]
    pub(crate) struct RawEvent {
        pub(crate) flag: AtomicU32 = 0,
        pub(crate) waiters: AtomicU32 = 4,
    }
}

shared_layout! {
    /// A condition variable's state: a sequence number bumped by every notify, and sleepers.
    #[derive(Debug)]
    pub(crate) struct RawCondvar {
        pub(crate) seq: AtomicU32 = 0,
        pub(crate) waiters: AtomicU32 = 4,
    }
}

shared_layout! {
    /// A barrier's state: parties, `generation << 16 | arrived`, and sleepers.
    #[derive(Debug)]
    pub(crate) struct RawBarrier {
        pub(crate) parties: AtomicU32 = 0,
        pub(crate) state: AtomicU32 = 4,
        pub(crate) waiters: AtomicU32 = 8,
    }
}
