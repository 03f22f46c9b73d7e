//! The tutorials' pi: numerical integration of 4/(1+x²) over [0, 1], split into `WORKERS`
//! slices. Shared by the pi examples (`#[path = "common/pi.rs"] mod pi;`); not an example itself.
//!
//! Each worker integrates one slice and sends `(slice index, partial sum)` back; the parent adds
//! the partial sums in slice order, so the result is bit-for-bit the single-process one (which
//! adds the same partial sums in the same order).

/// Worker processes, one slice each.
pub const WORKERS: usize = 10;

/// Integration steps over all slices.
pub const STEPS: u64 = 10_000_000;

/// The integral of 4/(1+x²) over slice `index` of `WORKERS` (midpoint rule).
pub fn partial_sum(index: usize) -> f64 {
    let per = STEPS / WORKERS as u64;
    let width = 1.0 / STEPS as f64;
    let start = per * index as u64;
    (start..start + per)
        .map(|i| {
            let x = (i as f64 + 0.5) * width;
            4.0 / (1.0 + x * x)
        })
        .sum::<f64>()
        * width
}

/// Checks a slice index that came from a worker.
pub fn check_index(index: u64) -> Result<usize, String> {
    usize::try_from(index)
        .ok()
        .filter(|&i| i < WORKERS)
        .ok_or_else(|| format!("worker sent slice index {index}, expected 0..{WORKERS}"))
}

/// Records the partial sum of slice `index`, refusing a slice that arrives twice.
pub fn store(parts: &mut [Option<f64>], index: usize, sum: f64) -> Result<(), String> {
    match parts[index].replace(sum) {
        Some(_) => Err(format!("slice {index} arrived twice")),
        None => Ok(()),
    }
}

/// Adds the partial sums in slice order, checking every slice arrived.
pub fn total(parts: &[Option<f64>]) -> Result<f64, String> {
    parts.iter().enumerate().try_fold(0.0, |acc, (i, part)| {
        part.map(|p| acc + p)
            .ok_or_else(|| format!("no result for slice {i}"))
    })
}

/// Pi computed in this one process, from the same partial sums in the same order.
pub fn single_process() -> f64 {
    (0..WORKERS).map(partial_sum).fold(0.0, |acc, p| acc + p)
}
