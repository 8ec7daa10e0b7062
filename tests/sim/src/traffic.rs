//! What one cohort's requests look like, and drawing a window's worth of them.

use flagwire_core::judge::Cohort;
use rand::Rng;
use rand_distr::{Binomial, Distribution, Poisson};

use crate::latency::{BucketSampler, Latency};
use crate::metrics::{Metric, Sampler};

/// How a cohort behaves: every request has an outcome, an error with this probability, and a
/// lognormal latency, and records the team's own metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Probability that a request fails.
    pub error_rate: f64,
    /// Latency of every request, failed or not.
    pub latency: Latency,
    /// The team's metrics each request records (none by default).
    pub metrics: Vec<Metric>,
}

impl Default for Health {
    /// 1 % errors, 20 ms median with p99 at 64 ms: a typical service.
    fn default() -> Self {
        Self {
            error_rate: 0.01,
            latency: Latency {
                median_ms: 20.0,
                sigma: 0.5,
            },
            metrics: Vec::new(),
        }
    }
}

/// A [`Health`] ready to draw from (the latency bucket probabilities computed once per run).
#[derive(Debug, Clone)]
pub struct Source {
    error_rate: f64,
    latency: BucketSampler,
    metrics: Vec<Sampler>,
}

impl Source {
    /// Prepares `health` for drawing.
    pub fn new(health: &Health) -> Self {
        Self {
            error_rate: health.error_rate.clamp(0.0, 1.0),
            latency: BucketSampler::new(health.latency),
            metrics: health.metrics.iter().map(Sampler::new).collect(),
        }
    }

    /// Adds to `into` the requests of a Poisson process with `mean` arrivals: each one an
    /// outcome with a latency and the metrics it records, counted once however many flags of
    /// the release it read (the SDK's cohort outcome and request scope; the server counts the
    /// cohort's size the same way).
    pub fn draw<R: Rng>(&self, rng: &mut R, mean: f64, into: &mut Cohort) {
        if mean <= 0.0 {
            return;
        }
        let n = Poisson::new(mean).expect("mean > 0").sample(rng) as u64;
        let errors = Binomial::new(n, self.error_rate)
            .expect("rate in [0, 1]")
            .sample(rng);
        into.evaluations += n;
        into.errors += errors;
        into.successes += n - errors;
        self.latency.fill(rng, n, &mut into.latency);
        // After the outcome and latency draws: rows without metrics draw exactly what they
        // always drew.
        for m in &self.metrics {
            m.draw(rng, n, &mut into.metrics);
        }
    }
}
