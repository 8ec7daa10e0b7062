//! Lognormal latencies, drawn straight into histogram buckets.
//!
//! A window holds up to tens of thousands of requests per cohort, and a calibration row replays
//! thousands of rollouts: sampling every request would dominate the run time. The judge only
//! ever sees bucket counts, so drawing the bucket counts of `n` requests from their exact
//! multinomial distribution (one binomial per bucket, conditioned on what is left) gives the
//! judge the same data as `n` lognormal samples, in time that does not grow with `n`.

use flagwire_core::histogram::{Histogram, bucket_index, upper_bound};
use rand::Rng;
use rand_distr::{Binomial, Distribution};

/// A lognormal latency distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median, milliseconds.
    pub median_ms: f64,
    /// Standard deviation of the log of the latency; 0.5 puts p99 at 3.2× the median.
    pub sigma: f64,
}

impl Latency {
    /// Every latency multiplied by `factor` (a slower release): every quantile scales with it.
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            median_ms: self.median_ms * factor,
            ..self
        }
    }

    /// The quantile `q` in milliseconds (for checking the sampler against the closed form).
    pub fn quantile_ms(self, q: f64) -> f64 {
        self.median_ms * (self.sigma * inverse_normal_cdf(q)).exp()
    }
}

/// Standard deviations covered on each side of the median; the tails beyond go into the outer
/// buckets. At 8σ the mass left out is about 1e-15, far below anything a run can observe.
const TAILS_SIGMA: f64 = 8.0;

/// Draws the histogram of `n` latencies of one [`Latency`] distribution.
#[derive(Debug, Clone)]
pub struct BucketSampler {
    /// `(value, probability)`: a microsecond value that falls in the bucket, and the
    /// probability of the bucket given that the latency is not in an earlier one.
    buckets: Vec<(u64, f64)>,
}

impl BucketSampler {
    /// Precomputes the bucket probabilities of `latency`.
    pub fn new(latency: Latency) -> Self {
        let mu = (latency.median_ms * 1000.0).ln();
        let sigma = latency.sigma;
        // Survival function in log space: erfc keeps the upper tail precise.
        let survival =
            |ln_us: f64| 0.5 * libm::erfc((ln_us - mu) / (sigma * std::f64::consts::SQRT_2));
        let index_of = |ln_us: f64| bucket_index(ln_us.exp().max(1.0) as u64).unwrap_or(0);
        let (first, last) = (
            index_of(mu - TAILS_SIGMA * sigma),
            index_of(mu + TAILS_SIGMA * sigma),
        );
        let buckets = (first..=last)
            .map(|i| {
                let lower = if i == first {
                    1.0
                } else {
                    survival(upper_bound(i - 1).ln())
                };
                let upper = if i == last {
                    0.0
                } else {
                    survival(upper_bound(i).ln())
                };
                let p = if lower > 0.0 {
                    1.0 - upper / lower
                } else {
                    1.0
                };
                (value_in(i), p.clamp(0.0, 1.0))
            })
            .collect();
        Self { buckets }
    }

    /// Records `n` latencies into `into`.
    pub fn fill<R: Rng>(&self, rng: &mut R, n: u64, into: &mut Histogram) {
        let mut left = n;
        for &(value, p) in &self.buckets {
            if left == 0 {
                break;
            }
            let k = if p >= 1.0 {
                left
            } else if p <= 0.0 {
                0
            } else {
                Binomial::new(left, p).expect("0 < p < 1").sample(rng)
            };
            into.record_n(value, k);
            left -= k;
        }
    }
}

/// An integer microsecond value inside bucket `i`: the geometric middle, or the upper bound
/// for buckets too narrow to hold it. It is what [`BucketSampler`] records for the bucket.
pub(crate) fn value_in(i: i32) -> u64 {
    let middle = 2f64.powf((f64::from(i) + 0.5) / 8.0).round() as u64;
    if bucket_index(middle) == Some(i) {
        middle
    } else {
        upper_bound(i).floor() as u64
    }
}

/// Φ⁻¹(p) by bisection on erfc: only used to state expected quantiles, never in a hot loop.
fn inverse_normal_cdf(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * libm::erfc(-mid / std::f64::consts::SQRT_2) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::LogNormal;
    use rand_pcg::Pcg64Mcg;

    const MODEL: Latency = Latency {
        median_ms: 20.0,
        sigma: 0.5,
    };

    /// The bucket counts must be what per-request lognormal samples give: compare quantile
    /// buckets of both ways on a large draw.
    #[test]
    fn buckets_match_per_request_samples() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let n = 400_000;
        let mut drawn = Histogram::new();
        BucketSampler::new(MODEL).fill(&mut rng, n, &mut drawn);
        let mut sampled = Histogram::new();
        let lognormal = LogNormal::new((MODEL.median_ms * 1000.0).ln(), MODEL.sigma).unwrap();
        for _ in 0..n {
            sampled.record(lognormal.sample(&mut rng).round() as u64);
        }
        assert_eq!(drawn.count(), n);
        for q in [0.01, 0.5, 0.95, 0.99, 0.999] {
            let (a, b) = (drawn.quantile(q).unwrap(), sampled.quantile(q).unwrap());
            let expected = bucket_index((MODEL.quantile_ms(q) * 1000.0) as u64);
            assert_eq!(a.index, b.index, "q = {q}");
            // Within one bucket of the closed form (the quantile may sit on a boundary).
            assert!(
                (a.index.unwrap() - expected.unwrap()).abs() <= 1,
                "q = {q}: {a:?} vs {expected:?}"
            );
        }
    }

    #[test]
    fn scaling_moves_every_quantile() {
        let slow = MODEL.scaled(1.5);
        for q in [0.5, 0.99] {
            let ratio = slow.quantile_ms(q) / MODEL.quantile_ms(q);
            assert!((ratio - 1.5).abs() < 1e-9);
        }
        assert!((MODEL.quantile_ms(0.99) / MODEL.median_ms - 3.20).abs() < 0.01);
    }

    #[test]
    fn every_representative_value_lies_in_its_bucket() {
        // From 64 µs up; below ~12 µs some buckets hold no integer at all.
        for i in 48..300 {
            assert_eq!(bucket_index(value_in(i)), Some(i), "bucket {i}");
        }
    }
}
