//! Spinning before sleeping: a waiter re-checks for a few microseconds, on machines where a
//! peer on another CPU can answer meanwhile, before it pays for a futex sleep and wake-up.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a waiter re-checks before it sleeps.
// A wake-up costs far more (about 60 µs on a VM, see DESIGN.md) than spinning while a peer on
// another core is about to answer.
const SPIN_FOR: Duration = Duration::from_micros(10);

/// How long the spin is pure: after that it yields the CPU between re-checks.
// A peer on another CPU answers within a fraction of this. A peer waiting for *our* CPU (both
// processes pinned to one, or a one-CPU cpuset) only runs if we yield.
const SPIN_ALONE: Duration = Duration::from_micros(1);

/// Spins briefly (at most [`SPIN_FOR`]) until `ready` holds; `true` if it did.
pub(crate) fn spin_until(ready: impl FnMut() -> bool) -> bool {
    spin_until_by(32, ready)
}

/// As [`spin_until`], looking at the clock every `batch` calls of `ready` (1 when `ready` is
/// itself a system call, so that the time limits hold).
pub(crate) fn spin_until_by(batch: u32, mut ready: impl FnMut() -> bool) -> bool {
    if !multi_core() {
        return false;
    }
    let start = Instant::now();
    loop {
        for _ in 0..batch {
            std::hint::spin_loop();
            if ready() {
                return true;
            }
        }
        let spun = start.elapsed();
        if spun >= SPIN_FOR {
            return false;
        }
        if spun >= SPIN_ALONE {
            std::thread::yield_now();
            if ready() {
                return true;
            }
        }
    }
}

/// Whether spinning can help: on one CPU the holder cannot run while we spin. This counts the
/// system's CPUs, not this process's affinity.
// A process pinned to one CPU (as latency-minded programs and `ipcbox bench` are) still waits
// for peers running on the others.
fn multi_core() -> bool {
    static CORES: OnceLock<bool> = OnceLock::new();
    *CORES.get_or_init(|| crate::sys::process::online_cpus() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_counts_the_system_cpus_not_the_affinity_mask() {
        let online = crate::sys::process::online_cpus();
        let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(online >= allowed, "{online} online < {allowed} allowed");
        // Pin this test's thread to one CPU, as `ipcbox bench` pins its processes: the count
        // must not change, since a peer may still run on the other CPUs.
        let mut one = rustix::thread::CpuSet::new();
        one.set(rustix::thread::sched_getcpu());
        rustix::thread::sched_setaffinity(None, &one).expect("pin to one CPU");
        assert_eq!(
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            1
        );
        assert_eq!(crate::sys::process::online_cpus(), online);
        assert_eq!(multi_core(), online > 1);
        if online > 1 {
            assert!(spin_until(|| true));
        }
    }
}
