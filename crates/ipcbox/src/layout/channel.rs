//! The layout of a one-to-one channel's shared-memory object (LAYOUT.md, "Channel"): a header,
//! then from [`SLOTS_OFFSET`] on `capacity` slots of `slot` bytes each.
//!
//! A slot is a [`RawSlot`] (length and stamp) followed by the payload, up to `max_msg` bytes.

use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::sys::mmap::shared_layout;

/// "IPCBCHN\x01" in memory order.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"IPCBCHN\x01");
/// The layout version this code writes and reads.
pub(crate) const VERSION: u32 = 4;
/// The value of [`RawChannelHeader::ready`] once the creator has written the geometry.
pub(crate) const READY: u32 = 0x5245_4459;
/// Where the first slot starts.
pub(crate) const SLOTS_OFFSET: usize = 448;
/// Where a slot's payload starts.
pub(crate) const PAYLOAD_OFFSET: usize = 8;

shared_layout! {
    /// One end of the channel: the process that owns it and whether it is gone.
    pub(crate) struct RawEnd {
        /// The owner: its PID in the low 32 bits, the low 32 bits of its start time in the
        /// high ones; 0 when nobody owns the end.
        pub(crate) owner: AtomicU64 = 0,
        /// The token of the owner's doorbell while it waits on one; 0 otherwise.
        pub(crate) bell: AtomicU64 = 8,
        /// 1 once the owner dropped its end.
        pub(crate) gone: AtomicU32 = 16,
        _reserved1: AtomicU32 = 20,
        _reserved2: [AtomicU64; 5] = 24,
    }
}

shared_layout! {
    /// The header at offset 0 of a channel's object. The geometry is written once by the
    /// creator, before [`RawChannelHeader::ready`].
    pub(crate) struct RawChannelHeader {
        /// [`MAGIC`].
        pub(crate) magic: AtomicU64 = 0,
        /// [`VERSION`].
        pub(crate) version: AtomicU32 = 8,
        /// [`READY`] once the geometry is written (stored last, with release).
        pub(crate) ready: AtomicU32 = 12,
        /// The number of slots, a power of two.
        pub(crate) capacity: AtomicU64 = 16,
        /// A slot's size in bytes, a multiple of 64.
        pub(crate) slot: AtomicU64 = 24,
        /// The largest payload of one message.
        pub(crate) max_msg: AtomicU64 = 32,
        _reserved0: [AtomicU64; 3] = 40,
        /// The sender's index: messages sent (modulo 2^32). Each index, flag and end is on a
        /// cache line of its own.
        pub(crate) tail: AtomicU32 = 64,
        _reserved1: [AtomicU32; 15] = 68,
        /// The receiver's index: messages received (modulo 2^32).
        pub(crate) head: AtomicU32 = 128,
        _reserved2: [AtomicU32; 15] = 132,
        /// Bit 0 while the receiver may sleep on [`RawChannelHeader::tail`], bit 1 while it
        /// waits on its doorbell.
        pub(crate) rx_sleeping: AtomicU32 = 192,
        _reserved3: [AtomicU32; 15] = 196,
        /// Bit 0 while the sender may sleep on [`RawChannelHeader::head`], bit 1 while it
        /// waits on its doorbell.
        pub(crate) tx_sleeping: AtomicU32 = 256,
        _reserved4: [AtomicU32; 15] = 260,
        pub(crate) sender: RawEnd = 320,
        pub(crate) receiver: RawEnd = 384,
    }
}

shared_layout! {
    /// The start of a slot: the message's length and the stamp that publishes it (the
    /// sender's index after it, so the receiver expecting message `i` waits for stamp `i + 1`).
    pub(crate) struct RawSlot {
        pub(crate) len: AtomicU32 = 0,
        pub(crate) stamp: AtomicU32 = 4,
    }
}

const _: () = assert!(size_of::<RawChannelHeader>() == SLOTS_OFFSET);
const _: () = assert!(size_of::<RawSlot>() == PAYLOAD_OFFSET);
