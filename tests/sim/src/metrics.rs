//! The team's own metrics, drawn per window and cohort straight into the aggregates SDKs
//! report (`flagwire_core::judge::MetricAgg`, as `tests/metrics/README.md` says a request scope
//! records them): `track_outcome` fills successes and failures, `track` the count, sum and sum
//! of squares, `observe` those and the histogram, and every request scope that recorded a
//! metric adds one to `requests` and the square of its total to `request_sum_of_squares`.
//!
//! As with latencies ([`crate::latency`]), a window's aggregates are drawn from their exact
//! joint distribution where one exists, so the cost does not grow with the number of requests:
//! binomials for how many requests record a metric and how many outcomes succeed, the mean and
//! the sum of squared deviations of normal values (normal and χ² draws, independent for normal
//! samples), bucket counts of observations, and counts of requests by number of events.

use flagwire_core::histogram::Histogram;
use flagwire_core::judge::MetricAgg;
use rand::Rng;
use rand_distr::{Binomial, ChiSquared, Distribution, Normal};

use crate::latency::{BucketSampler, Latency, value_in};

/// How a request records one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// `track_outcome` once, on a `share` of requests, succeeding with probability `success`
    /// (a mem0 write, a fast-path attempt).
    Outcome {
        /// Share of requests that record it.
        share: f64,
        /// Probability of success.
        success: f64,
    },
    /// `track(value)` once, on a `share` of requests, the value normal (a satisfaction score).
    Value {
        /// Share of requests that record it.
        share: f64,
        /// Mean of the values.
        mean: f64,
        /// Their standard deviation.
        sd: f64,
    },
    /// `observe(value)` once, on a `share` of requests, the value lognormal in the metric's
    /// unit (fast-path latency in ms: the histogram holds thousandths of it).
    Observed {
        /// Share of requests that record it.
        share: f64,
        /// The values' distribution (median in the metric's unit).
        values: Latency,
    },
    /// `track(name)` (a value of 1) a Poisson number of times per request, with this mean
    /// (FAQ hits per query); requests with none record nothing.
    Count {
        /// Events per request on average.
        mean: f64,
    },
}

/// One of the team's metrics and how requests record it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The name SDKs record it under.
    pub name: String,
    /// How.
    pub model: Model,
}

impl Metric {
    /// A metric `name` recorded as `model`.
    pub fn new(name: &str, model: Model) -> Self {
        Self {
            name: name.to_owned(),
            model,
        }
    }
}

/// Events per request beyond which a [`Model::Count`] lumps the Poisson tail (far beyond
/// any mean a row uses: at a mean of 1.5 the mass past 30 is below 1e-25).
const MAX_EVENTS: usize = 30;

/// A [`Metric`] ready to draw from (the per-bucket probabilities computed once per run).
#[derive(Debug, Clone)]
pub struct Sampler {
    name: String,
    model: Model,
    /// Observations' bucket probabilities.
    buckets: Option<BucketSampler>,
    /// Counts: the probability of `k` events given at least `k`, for `k = 0..MAX_EVENTS`.
    events: Vec<f64>,
}

impl Sampler {
    /// Prepares `metric` for drawing.
    pub fn new(metric: &Metric) -> Self {
        let buckets = match metric.model {
            Model::Observed { values, .. } => Some(BucketSampler::new(values)),
            _ => None,
        };
        let events = match metric.model {
            Model::Count { mean } => conditional_poisson(mean),
            _ => Vec::new(),
        };
        Self {
            name: metric.name.clone(),
            model: metric.model,
            buckets,
            events,
        }
    }

    /// Records the metric for `n` requests into `into`'s aggregate of it (created only when
    /// something was recorded, as an SDK reports no empty series).
    pub fn draw<R: Rng>(
        &self,
        rng: &mut R,
        n: u64,
        into: &mut std::collections::BTreeMap<String, MetricAgg>,
    ) {
        let mut m = MetricAgg::default();
        match self.model {
            Model::Outcome { share, success } => {
                let k = binomial(rng, n, share);
                let ok = binomial(rng, k, success);
                m.successes = ok;
                m.failures = k - ok;
                m.requests = k;
            }
            Model::Value { share, mean, sd } => {
                let k = binomial(rng, n, share);
                if k > 0 {
                    let kf = k as f64;
                    // For normal values the sample mean and the sum of squared deviations are
                    // independent: N(mean, sd²/k) and sd²·χ²(k − 1).
                    let mean = Normal::new(mean, sd / kf.sqrt())
                        .expect("sd >= 0")
                        .sample(rng);
                    let deviations = if k > 1 {
                        sd * sd * ChiSquared::new(kf - 1.0).expect("k > 1").sample(rng)
                    } else {
                        0.0
                    };
                    let squares = deviations + kf * mean * mean;
                    m.count = k;
                    m.sum = kf * mean;
                    m.sum_of_squares = squares;
                    m.requests = k;
                    m.request_sum_of_squares = squares;
                }
            }
            Model::Observed { share, .. } => {
                let k = binomial(rng, n, share);
                let mut h = Histogram::new();
                if let Some(b) = &self.buckets {
                    b.fill(rng, k, &mut h);
                }
                // Each value is its bucket's representative (what the sampler records).
                let squares: f64 = h
                    .buckets()
                    .map(|(i, c)| c as f64 * (value_in(i) as f64 / 1000.0).powi(2))
                    .sum();
                m.count = k;
                m.sum = h.sum() / 1000.0;
                m.sum_of_squares = squares;
                m.requests = k;
                m.request_sum_of_squares = squares;
                m.histogram = h;
            }
            Model::Count { .. } => {
                // Requests by number of events: a multinomial, one conditional binomial each.
                let mut left = n;
                for (k, &p) in self.events.iter().enumerate() {
                    if left == 0 {
                        break;
                    }
                    let with_k = if p >= 1.0 {
                        left
                    } else {
                        binomial(rng, left, p)
                    };
                    left -= with_k;
                    let (kf, c) = (k as f64, with_k as f64);
                    m.count += k as u64 * with_k;
                    m.sum += kf * c;
                    m.sum_of_squares += kf * c;
                    if k > 0 {
                        m.requests += with_k;
                        m.request_sum_of_squares += kf * kf * c;
                    }
                }
            }
        }
        if m.requests > 0 {
            into.entry(self.name.clone()).or_default().add(&m);
        }
    }
}

fn binomial<R: Rng>(rng: &mut R, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).expect("0 < p < 1").sample(rng)
}

/// `P(K = k | K >= k)` for a Poisson `K` of mean `mean`, `k = 0..MAX_EVENTS`; the last is 1
/// (the tail lumped into it).
fn conditional_poisson(mean: f64) -> Vec<f64> {
    let mut pmf = (-mean).exp();
    let mut left = 1.0;
    let mut out = Vec::with_capacity(MAX_EVENTS + 1);
    for k in 0..=MAX_EVENTS {
        if k == MAX_EVENTS || left <= 0.0 {
            out.push(1.0);
            break;
        }
        out.push((pmf / left).clamp(0.0, 1.0));
        left -= pmf;
        pmf *= mean / (k + 1) as f64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::Poisson;
    use rand_pcg::Pcg64Mcg;
    use std::collections::BTreeMap;

    fn drawn(model: Model, n: u64, windows: usize) -> MetricAgg {
        let mut rng = Pcg64Mcg::seed_from_u64(9);
        let s = Sampler::new(&Metric::new("m", model));
        let mut into = BTreeMap::new();
        for _ in 0..windows {
            s.draw(&mut rng, n, &mut into);
        }
        into.remove("m").unwrap_or_default()
    }

    #[test]
    fn outcomes_are_recorded_on_their_share_of_requests() {
        let m = drawn(
            Model::Outcome {
                share: 0.3,
                success: 0.7,
            },
            10_000,
            10,
        );
        let k = m.successes + m.failures;
        assert!((k as f64 / 100_000.0 - 0.3).abs() < 0.01, "{k}");
        assert!((m.rate().unwrap() - 0.7).abs() < 0.01, "{m:?}");
        assert_eq!((m.requests, m.request_sum_of_squares, m.count), (k, 0.0, 0));
    }

    #[test]
    fn values_have_their_mean_and_spread() {
        let m = drawn(
            Model::Value {
                share: 0.25,
                mean: 4.0,
                sd: 1.5,
            },
            4_000,
            50,
        );
        let n = m.count as f64;
        let var = m.sum_of_squares / n - m.mean().unwrap().powi(2);
        assert!((m.mean().unwrap() - 4.0).abs() < 0.02, "{m:?}");
        assert!((var.sqrt() - 1.5).abs() < 0.02, "{var}");
        assert_eq!(m.requests, m.count);
    }

    #[test]
    fn observations_fill_the_histogram_in_thousandths_of_the_unit() {
        let values = Latency {
            median_ms: 5.0,
            sigma: 0.8,
        };
        let m = drawn(Model::Observed { share: 0.7, values }, 10_000, 10);
        assert!((m.count as f64 / 100_000.0 - 0.7).abs() < 0.01);
        assert_eq!(m.histogram.count(), m.count);
        let p95 = m.quantile(0.95).unwrap();
        let expected = values.quantile_ms(0.95);
        assert!((p95 / expected - 1.0).abs() < 0.1, "{p95} vs {expected}");
        // The mean of a lognormal is exp(σ²/2) times its median.
        let mean = m.mean().unwrap();
        assert!((mean / (5.0 * 0.32f64.exp()) - 1.0).abs() < 0.02, "{mean}");
    }

    /// Per-request Poisson draws give the same aggregates as the multinomial of counts.
    #[test]
    fn counts_per_request_match_per_request_draws() {
        let (mean, n, windows) = (1.5, 2_000u64, 50);
        let m = drawn(Model::Count { mean }, n, windows);
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let poisson = Poisson::new(mean).unwrap();
        let (mut requests, mut total, mut squares) = (0u64, 0.0, 0.0);
        for _ in 0..n * windows as u64 {
            let k: f64 = poisson.sample(&mut rng);
            if k > 0.0 {
                requests += 1;
                total += k;
                squares += k * k;
            }
        }
        let all = (n * windows as u64) as f64;
        let close = |a: f64, b: f64| (a / b - 1.0).abs() < 0.01;
        assert!(close(m.requests as f64, requests as f64), "{m:?}");
        assert!(close(m.sum, total) && close(m.request_sum_of_squares, squares));
        assert!(close(m.per_request(n * windows as u64).unwrap(), mean));
        assert_eq!(m.count as f64, m.sum);
        // E[K²] = λ + λ² per request.
        assert!(close(m.request_sum_of_squares / all, mean + mean * mean));
    }
}
