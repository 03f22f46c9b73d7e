use super::Child;
use crate::sys;

/// Where [`fork`] returned.
#[derive(Debug)]
pub enum Fork {
    /// In the parent, with a handle on the new child.
    Parent(Child),
    /// In the child.
    Child,
}

pub use crate::sys::process::fork;

/// Ends this process at once with `code` (`_exit(2)`): no destructors, no `atexit` handlers,
/// no flushing of stdio buffers. The way for a forked child to end.
#[doc(alias = "_exit")]
pub fn exit_immediately(code: i32) -> ! {
    sys::process::exit_immediately(code)
}

pub use crate::sys::process::daemonize;
