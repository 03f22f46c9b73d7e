//! Raw system calls that `rustix` does not cover.
//!
//! This is the only place in the crate where `unsafe` code may live. Every mechanism has its own
//! file here; the public modules call these safe wrappers.

#![allow(unsafe_code)]

use std::io;

/// Turns the C convention "`-1` and `errno`" into an [`io::Result`].
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Integer types a C call returns `-1` in on failure.
pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => ($(impl IsMinusOne for $t {
        fn is_minus_one(&self) -> bool {
            *self == -1
        }
    })*)
}

impl_is_minus_one! { i32 i64 isize }

pub(crate) mod cast;
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod mmap;
pub(crate) mod mq;
pub(crate) mod process;
#[cfg(feature = "tokio")]
pub(crate) mod reactor;
pub(crate) mod sem;
pub(crate) mod shm;
pub(crate) mod signal;
pub(crate) mod socket;
