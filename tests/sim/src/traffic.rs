//! What one cohort's requests look like, and drawing a window's worth of them.

use flagwire_core::judge::Cohort;
use rand::Rng;
use rand_distr::{Binomial, Distribution, Poisson};

use crate::latency::{BucketSampler, Latency};

/// How a cohort behaves: every request has an outcome, an error with this probability, and a
/// lognormal latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// Probability that a request fails.
    pub error_rate: f64,
    /// Latency of every request, failed or not.
    pub latency: Latency,
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
        }
    }
}

/// A [`Health`] ready to draw from (the latency bucket probabilities computed once per run).
#[derive(Debug, Clone)]
pub struct Source {
    error_rate: f64,
    latency: BucketSampler,
}

impl Source {
    /// Prepares `health` for drawing.
    pub fn new(health: Health) -> Self {
        Self {
            error_rate: health.error_rate.clamp(0.0, 1.0),
            latency: BucketSampler::new(health.latency),
        }
    }

    /// Adds to `into` the requests of a Poisson process with `mean` arrivals: each one an
    /// outcome with a latency, counted once however many flags of the release it read (the
    /// SDK's cohort outcome; the server counts the cohort's size the same way).
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
    }
}
