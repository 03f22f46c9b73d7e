//! Handing a descriptor to a program started with `std::process::Command`, and claiming it
//! there: the two steps `Connection::pass_to_child` / `Connection::from_env` are made of.
//!
//! The parent keeps the descriptor open across `exec` in the child only (a `pre_exec` hook
//! clears `FD_CLOEXEC` after `fork`, so other children spawned at the same time never get it)
//! and names it in an environment variable as `fd:dev:ino`. The child claims it once, after
//! checking that this number is open and is the very object the parent named (same device and
//! inode), which is what makes taking ownership by number sound.
//!
//! Also reading from a descriptor into a `Vec`'s spare capacity, which needs no zeroing first.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

use rustix::io::{fcntl_dupfd_cloexec, fcntl_setfd, FdFlags};

/// One `read(2)` of at most `max` bytes appended to `v` within its capacity (none when it is
/// full); returns how many were read, 0 at end of file.
pub(crate) fn read_to_spare(
    fd: BorrowedFd<'_>,
    v: &mut Vec<u8>,
    max: usize,
) -> rustix::io::Result<usize> {
    let spare = v.spare_capacity_mut();
    let n = spare.len().min(max);
    let (got, _) = rustix::io::read(fd, &mut spare[..n])?;
    let got = got.len();
    // SAFETY: the read initialised the first `got` bytes after the `len` initialised ones, and
    // `len + got` is within the capacity.
    unsafe { v.set_len(v.len() + got) };
    Ok(got)
}

/// Identity of an open file description's object: `(st_dev, st_ino)`.
fn identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Keeps `fd` open (at the same number) in the program `cmd` executes, and returns the value
/// to put in the environment variable that names it: `"fd:dev:ino"`.
pub(crate) fn keep_open_in_child(cmd: &mut Command, fd: OwnedFd) -> io::Result<String> {
    // Numbers 0..=2 would collide with the child's standard streams, which std sets up first.
    let fd = if fd.as_raw_fd() < 3 {
        fcntl_dupfd_cloexec(&fd, 3)?
    } else {
        fd
    };
    let (dev, ino) = identity(fd.as_fd())?;
    let value = format!("{}:{dev}:{ino}", fd.as_raw_fd());
    let hook =
        move || -> io::Result<()> { fcntl_setfd(&fd, FdFlags::empty()).map_err(io::Error::from) };
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // work is allowed: it makes one `fcntl` system call through rustix (no allocation, no lock;
    // an error becomes an `io::Error` from a raw errno, which does not allocate). The hook owns
    // `fd`, so the descriptor stays open in the parent until `cmd` is dropped, and `fork` gives
    // the child the same number.
    unsafe { cmd.pre_exec(hook) };
    Ok(value)
}

/// Descriptor numbers this process has already claimed through [`claim_inherited`].
static CLAIMED: Mutex<Option<HashSet<RawFd>>> = Mutex::new(None);

/// Takes ownership of the descriptor named by an environment value made by
/// [`keep_open_in_child`], after checking it is open, is the object the parent named and passes
/// `check` (its kind). It becomes close-on-exec again, so grandchildren do not inherit it. A
/// failed check leaves the descriptor open and unclaimed.
pub(crate) fn claim_inherited(
    var: &str,
    value: &str,
    check: impl FnOnce(BorrowedFd<'_>) -> io::Result<()>,
) -> io::Result<OwnedFd> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("environment variable {var}={value:?} is not of the form fd:dev:ino"),
        )
    };
    let mut parts = value.split(':');
    let (Some(fd), Some(dev), Some(ino), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let fd: RawFd = fd.parse().map_err(|_| bad())?;
    let want: (u64, u64) = (
        dev.parse().map_err(|_| bad())?,
        ino.parse().map_err(|_| bad())?,
    );
    if fd < 3 {
        return Err(bad());
    }
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    let claimed = claimed.get_or_insert_with(HashSet::new);
    if claimed.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("descriptor {fd} named by {var} was already claimed by this process"),
        ));
    }
    // SAFETY: F_GETFD reads the descriptor flags of any integer; a number that is not open
    // only yields EBADF. Nothing is borrowed or owned yet.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("descriptor {fd} named by {var} is not open in this process: {err}"),
        ));
    }
    // SAFETY: the number is open (checked just above, under the lock that serialises claims);
    // borrowing it for the duration of one fstat does not outlive that.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let got = identity(borrowed)?;
    if got != want {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "descriptor {fd} named by {var} is not the object the parent passed \
                 (dev:ino {}:{} here, {}:{} expected)",
                got.0, got.1, want.0, want.1
            ),
        ));
    }
    check(borrowed).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("descriptor {fd} named by {var} is of the wrong kind: {e}"),
        )
    })?;
    fcntl_setfd(borrowed, FdFlags::CLOEXEC)?;
    claimed.insert(fd);
    // SAFETY: the descriptor is open and is the object the parent handed to this program for
    // it to take (same device and inode as named in the environment): the parent kept it open
    // across exec for exactly this, so nothing in this program owns it yet, and the `CLAIMED`
    // set makes sure this function creates at most one owner for it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the descriptor number `target` refer to `with`'s open file description
/// (`dup3(with, target, O_CLOEXEC)`), then closes `with`. Whoever borrowed `target` keeps a
/// valid number; it now names the new object.
pub(crate) fn replace(target: BorrowedFd<'_>, with: OwnedFd) -> io::Result<()> {
    // SAFETY: both numbers are open for the call (`target` is borrowed, `with` owned). `dup3`
    // closes the description `target` named and installs `with`'s under the same number
    // atomically, so the number never dangles for `target`'s owner, who still owns it. `with`
    // is closed on return by its drop.
    super::cvt(unsafe { libc::dup3(with.as_raw_fd(), target.as_raw_fd(), libc::O_CLOEXEC) })?;
    Ok(())
}
