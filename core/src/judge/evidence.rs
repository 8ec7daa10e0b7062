//! The data the judge decides on: closed windows of per-cohort aggregates, and what they add up
//! to.

use super::metric::MetricAgg;
use crate::histogram::Histogram;
use crate::stats::{Counts, confidence_radius, rate_variance};
use std::collections::BTreeMap;

/// Aggregates of one cohort (canary or control).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cohort {
    /// Evaluations served to the cohort.
    pub evaluations: u64,
    /// Measured outcomes that succeeded.
    pub successes: u64,
    /// Measured outcomes that failed.
    pub errors: u64,
    /// Outcome latencies, microseconds.
    pub latency: Histogram,
    /// The team's own metrics recorded for the cohort, by name.
    pub metrics: BTreeMap<String, MetricAgg>,
}

impl Cohort {
    /// Measured outcomes.
    pub fn outcomes(&self) -> u64 {
        self.successes.saturating_add(self.errors)
    }

    /// Errors out of outcomes.
    pub fn error_counts(&self) -> Counts {
        Counts {
            hits: self.errors,
            n: self.outcomes(),
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Cohort) {
        self.evaluations = self.evaluations.saturating_add(other.evaluations);
        self.successes = self.successes.saturating_add(other.successes);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
        for (name, m) in &other.metrics {
            // Looked up before inserting: the judge adds up every window at every decision,
            // and cloning each name for `entry` would allocate once per metric and window.
            match self.metrics.get_mut(name) {
                Some(total) => total.add(m),
                None => {
                    self.metrics.insert(name.clone(), m.clone());
                }
            }
        }
    }

    /// Whether anything was reported for the cohort.
    pub fn is_empty(&self) -> bool {
        self.evaluations == 0 && self.outcomes() == 0 && self.metrics.is_empty()
    }
}

/// One closed judging window of a rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// When it closed (ms since the epoch).
    pub end_ms: i64,
    /// The step it belonged to.
    pub step: usize,
    /// The canary cohort.
    pub canary: Cohort,
    /// The control cohort.
    pub control: Cohort,
    /// Reports accepted for the environment.
    pub reports: u64,
    /// Reports dropped as late.
    pub late_reports: u64,
    /// Series SDKs said they dropped.
    pub dropped_series: u64,
}

/// What one cohort's numbers look like at a decision.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Outcomes.
    pub n: u64,
    /// Evaluations.
    pub evaluations: u64,
    /// Errors.
    pub errors: u64,
    /// Error rate.
    pub error_rate: f64,
    /// Lower bound of the anytime-valid interval of the error rate.
    pub error_rate_lower: f64,
    /// Upper bound of it.
    pub error_rate_upper: f64,
    /// Latency quantiles (bucket upper bounds), microseconds; 0 without latencies.
    pub p50_us: f64,
    /// p95.
    pub p95_us: f64,
    /// p99.
    pub p99_us: f64,
}

/// Interval level of the per-cohort error-rate bounds shown with decisions.
pub const SUMMARY_ALPHA: f64 = 0.05;

impl Summary {
    /// Summarises a cohort.
    pub fn of(c: &Cohort) -> Self {
        let counts = c.error_counts();
        let rate = counts.rate();
        let v = rate_variance(counts);
        let r = confidence_radius(v, tau2_for(rate), SUMMARY_ALPHA);
        let q = |q| c.latency.quantile(q).map_or(0.0, |at| at.upper_bound_us);
        Self {
            n: counts.n,
            evaluations: c.evaluations,
            errors: c.errors,
            error_rate: rate,
            error_rate_lower: (rate - r).max(0.0),
            error_rate_upper: (rate + r).min(1.0),
            p50_us: q(0.5),
            p95_us: q(0.95),
            p99_us: q(0.99),
        }
    }
}

/// Mixing scale for a rate near `base`: effects of the order of the rate itself (a doubling),
/// floored so a near-zero baseline still detects a jump to 0.1 %, capped at a 10-point effect.
pub fn tau2_for(base: f64) -> f64 {
    let scale = base.clamp(0.001, 0.1);
    scale * scale
}

/// Sums of the windows: the whole rollout, and the current step.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Canary over the whole rollout.
    pub canary: Cohort,
    /// Control over the whole rollout.
    pub control: Cohort,
    /// Canary at the current step.
    pub step_canary: Cohort,
    /// Control at the current step.
    pub step_control: Cohort,
}

impl Totals {
    /// Adds up `windows`; those of `step` also count for the step. Windows of steps without a
    /// control (`uncontrolled(step)`) count for their step only: the whole-rollout totals feed
    /// the relative tests and the sample-ratio check, which compare canary with control.
    pub fn of(windows: &[Window], step: usize, uncontrolled: impl Fn(usize) -> bool) -> Self {
        let mut t = Totals::default();
        for w in windows {
            if !uncontrolled(w.step) {
                t.canary.add(&w.canary);
                t.control.add(&w.control);
            }
            if w.step == step {
                t.step_canary.add(&w.canary);
                t.step_control.add(&w.control);
            }
        }
        t
    }
}
