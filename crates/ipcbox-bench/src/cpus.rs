//! Where the bench and its peer run: two different CPUs when the process may use two.

use std::io;

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
use serde::Serialize;

/// The CPUs the bench (parent) and its peer (child) are pinned to; `None` means not pinned.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Placement {
    /// The bench process's CPU.
    pub parent: Option<usize>,
    /// The peer process's CPU.
    pub child: Option<usize>,
}

impl Placement {
    /// Chooses the first two CPUs this process may run on (`sched_getaffinity`), or the first
    /// one for both when `same_cpu`; no pinning at all with a single CPU.
    ///
    /// # Errors
    ///
    /// The OS error from `sched_getaffinity`.
    pub fn choose(same_cpu: bool) -> io::Result<Placement> {
        let allowed = allowed_cpus()?;
        Ok(match (allowed.first(), allowed.get(1)) {
            (Some(&first), Some(&second)) => Placement {
                parent: Some(first),
                child: Some(if same_cpu { first } else { second }),
            },
            _ => Placement::default(),
        })
    }

    /// Pins the calling process to the parent's CPU.
    ///
    /// # Errors
    ///
    /// The OS error from `sched_setaffinity`, naming the CPU.
    pub fn pin_parent(&self) -> io::Result<()> {
        pin(self.parent)
    }

    /// Pins the calling process to the child's CPU.
    ///
    /// # Errors
    ///
    /// The OS error from `sched_setaffinity`, naming the CPU.
    pub fn pin_child(&self) -> io::Result<()> {
        pin(self.child)
    }
}

/// The CPUs this process may run on, in increasing order.
///
/// # Errors
///
/// The OS error from `sched_getaffinity`.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(None)?;
    Ok((0..CpuSet::MAX_CPU)
        .filter(|&cpu| set.is_set(cpu))
        .collect())
}

fn pin(cpu: Option<usize>) -> io::Result<()> {
    let Some(cpu) = cpu else { return Ok(()) };
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set)
        .map_err(|err| io::Error::new(err.kind(), format!("pin process to CPU {cpu}: {err}")))
}
