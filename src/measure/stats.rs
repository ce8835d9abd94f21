//! Summary statistics, computed after a run from the raw records (never inside a timed loop).

use serde::{Deserialize, Serialize};

/// Distribution of one figure over its samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation.
    pub stddev: f64,
    /// Median absolute deviation divided by the median: a spread that one outlier does not
    /// dominate; the report flags figures whose spread is above 5%.
    pub rel_mad: f64,
}

/// Percentile by linear interpolation between closest ranks (numpy's default), `q` in 0..=100.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

impl Summary {
    /// `None` for an empty slice or any non-finite value (a broken measurement is not averaged).
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let median = percentile(&v, 50.0);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
        dev.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mad = percentile(&dev, 50.0);
        Some(Self {
            n,
            mean,
            median,
            p90: percentile(&v, 90.0),
            p95: percentile(&v, 95.0),
            p99: percentile(&v, 99.0),
            min: v[0],
            max: v[n - 1],
            stddev: var.sqrt(),
            rel_mad: if median != 0.0 { mad / median.abs() } else { 0.0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        // numpy.percentile([1,2,3,4,10], [50, 90, 95]) == [3.0, 7.6, 8.8]
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert!((percentile(&v, 90.0) - 7.6).abs() < 1e-12);
        assert!((percentile(&v, 95.0) - 8.8).abs() < 1e-12);
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 10.0, 5));
        assert!((s.mean - 4.0).abs() < 1e-12);
        assert!((s.rel_mad - 1.0 / 3.0).abs() < 1e-12);
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
        assert!(Summary::of(&[]).is_none());
    }
}
