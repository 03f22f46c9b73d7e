//! Signal dispositions (`sigaction`), which rustix leaves to the C library.

use std::io;
use std::mem::MaybeUninit;
use std::sync::Once;

use super::cvt;

/// Sets `SIGPIPE` to ignored if it is still at its default (terminate the process), once.
///
/// A write to a pipe or socket with no reader then fails with `EPIPE` instead of killing the
/// process. A disposition the program chose itself (a handler, or already ignored) is kept.
pub(crate) fn ignore_sigpipe_if_default() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| result = ignore_if_default(libc::SIGPIPE));
    result
}

fn ignore_if_default(sig: libc::c_int) -> io::Result<()> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is valid for writes of a `sigaction`.
    cvt(unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so it filled `old`; zeroed is also a valid `sigaction`.
    let old = unsafe { old.assume_init() };
    if old.sa_sigaction == libc::SIG_DFL {
        // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags).
        let mut new: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        new.sa_sigaction = libc::SIG_IGN;
        // SAFETY: `new` is a valid, initialised action; a null old pointer is allowed.
        cvt(unsafe { libc::sigaction(sig, &new, std::ptr::null_mut()) })?;
    }
    Ok(())
}
