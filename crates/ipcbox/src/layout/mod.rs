//! Layouts in shared memory: `#[repr(C)]` structs of atomics, declared with
//! `sys::mmap::shared_layout!` and reached through the checked views of `sys::mmap`. LAYOUT.md is
//! their normative description, for peers in other languages.

pub(crate) mod channel;
pub(crate) mod queue;
pub(crate) mod store;
pub(crate) mod sync;
pub(crate) mod typed;
