//! Whether a process or thread is alive, through pidfds: how the object store and the pid lock
//! tell a dead holder from a live one.

/// Whether process `pid` still runs: `pidfd_open` fails with `ESRCH` for a reaped (or never
/// existing) process, and the pidfd polls readable once it has exited (a zombie counts as dead).
///
/// Errors other than `ESRCH` (`EMFILE`, permission) count as alive: never reclaim on doubt.
pub(crate) fn process_alive(pid: u32) -> bool {
    process_alive_if(pid, || true)
}

/// Whether process `pid` is alive and `same()` (run while a pidfd pins the process, so what
/// it reads about `pid` in `/proc` is about this process if it is still alive afterwards)
/// says it is the expected one. Unknown (a pidfd cannot be had for another reason) counts
/// as alive.
pub(crate) fn process_alive_if(pid: u32, same: impl FnOnce() -> bool) -> bool {
    // `Err`, from `EINVAL`: not a process (a thread ID, or none at all).
    alive_by_pidfd(pid, rustix::process::PidfdFlags::empty(), same).unwrap_or_default()
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for one thread, readable once that thread has exited.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// As [`process_alive_if`] for thread `tid`, through a thread pidfd; `None` where the kernel
/// has none (before Linux 6.9), so the caller must look in `/proc` instead.
pub(crate) fn thread_alive_if(tid: u32, same: impl FnOnce() -> bool) -> Option<bool> {
    alive_by_pidfd(
        tid,
        rustix::process::PidfdFlags::from_bits_retain(PIDFD_THREAD),
        same,
    )
    .ok()
}

/// Whether `id` is alive and `same()`, through `pidfd_open(id, flags)`; `Err(())` when the
/// kernel refuses the request (`EINVAL`), any other failure counting as alive.
fn alive_by_pidfd(
    id: u32,
    flags: rustix::process::PidfdFlags,
    same: impl FnOnce() -> bool,
) -> Result<bool, ()> {
    let Some(pid) = i32::try_from(id)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(false);
    };
    match rustix::process::pidfd_open(pid, flags) {
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(rustix::io::Errno::INVAL) => Err(()),
        Err(_) => Ok(true),
        Ok(fd) => {
            if !same() {
                return Ok(false);
            }
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            Ok(match rustix::event::poll(&mut fds, Some(&zero)) {
                Ok(n) => n == 0,
                Err(_) => true,
            })
        }
    }
}
