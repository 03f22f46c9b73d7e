//! Percentiles and medians.

/// The `p`-th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank method; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Summary of one latency round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median, nanoseconds.
    pub p50: u64,
    /// 99th percentile, nanoseconds.
    pub p99: u64,
    /// Fastest, nanoseconds.
    pub min: u64,
    /// Slowest, nanoseconds.
    pub max: u64,
    /// Mean, nanoseconds.
    pub mean: f64,
}

/// Sorts `samples` and summarises them.
pub fn summarize(samples: &mut [u64]) -> Summary {
    samples.sort_unstable();
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Summary {
        p50: percentile(samples, 50.0),
        p99: percentile(samples, 99.0),
        min: samples.first().copied().unwrap_or(0),
        max: samples.last().copied().unwrap_or(0),
        mean: if samples.is_empty() {
            0.0
        } else {
            sum as f64 / samples.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn summary() {
        let mut v = vec![5, 1, 3];
        let s = summarize(&mut v);
        assert_eq!((s.p50, s.min, s.max, s.mean), (3, 1, 5, 3.0));
    }
}
