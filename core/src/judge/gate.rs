//! Gates: conditions on the team's own metrics (and on queries the server evaluates, such as
//! Prometheus) that a release's stages must keep. The plain types here are what the server
//! builds from `flagwire.v1.Gate` and the metric definitions; [`absolute`] and [`external`]
//! check them at a decision, [`super::relative_gates`] tests the relative ones against control.
//!
//! An absolute gate breaches only when the canary's anytime-valid confidence interval lies
//! wholly on the failing side of the threshold (as the absolute guardrails do with the error
//! rate): a gate of "success > 99 %" must not roll back a healthy 99.5 % canary because its
//! first hundred writes held two failures.

use super::evidence::Cohort;
use super::metric::MetricAgg;
use crate::histogram::upper_bound;
use crate::stats::{Counts, confidence_radius, rate_variance};

/// Interval level of the absolute gates' confidence bounds (that of the guardrails' too).
pub const ABSOLUTE_ALPHA: f64 = super::evidence::SUMMARY_ALPHA;
/// Values needed before an absolute gate is checked, when the gate does not say.
pub const DEFAULT_MIN_COUNT: u64 = 100;

/// How a metric is read (`flagwire.v1.MetricKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// successes / outcomes of track_outcome.
    Rate,
    /// The mean of the values tracked.
    Mean,
    /// Quantiles of the values observed.
    Distribution,
    /// The total tracked per measured request of the cohort.
    CountPerRequest,
}

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Higher is better (a success rate).
    HigherIsBetter,
    /// Lower is better (a latency).
    LowerIsBetter,
}

/// What passes (`flagwire.v1.Comparison`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// value > threshold.
    GreaterThan,
    /// value >= threshold.
    GreaterOrEqual,
    /// value < threshold.
    LessThan,
    /// value <= threshold.
    LessOrEqual,
}

impl Comparison {
    /// Whether `value` passes against `threshold`.
    pub fn passes(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThan => value > threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::LessThan => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
        }
    }

    /// Whether passing needs the value high (`>`, `>=`).
    fn wants_high(self) -> bool {
        matches!(self, Comparison::GreaterThan | Comparison::GreaterOrEqual)
    }

    /// The operator, for details.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterThan => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::LessThan => "<",
            Comparison::LessOrEqual => "<=",
        }
    }
}

/// A metric as its definition describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The name SDKs record it under.
    pub name: String,
    /// How it is read.
    pub kind: MetricKind,
    /// Which way is better.
    pub direction: Direction,
}

/// Canary against control on a metric (stages with a control only).
#[derive(Debug, Clone, PartialEq)]
pub struct RelativeGate {
    /// The gate's name in decisions.
    pub name: String,
    /// The metric.
    pub metric: Metric,
    /// How much worse (in the metric's direction and unit) is tolerated.
    pub margin: f64,
    /// Distributions: the quantile compared.
    pub quantile: f64,
}

/// The canary's statistic at this stage against a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct AbsoluteGate {
    /// The gate's name in decisions.
    pub name: String,
    /// The metric.
    pub metric: Metric,
    /// What passes.
    pub comparison: Comparison,
    /// The threshold, in the metric's unit (a rate in [0, 1]).
    pub threshold: f64,
    /// Distributions: the quantile compared.
    pub quantile: f64,
    /// Values (outcomes, requests) needed before the gate is checked.
    pub min_count: u64,
    /// Two-tier gates: breaching `threshold` only holds the stage; breaching this rolls back.
    pub rollback_threshold: Option<f64>,
    /// Compare the number of events recorded at this stage instead of the statistic.
    pub total: bool,
}

/// A gate on the team's own metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Against control.
    Relative(RelativeGate),
    /// Against a threshold.
    Absolute(AbsoluteGate),
}

/// A gate the server evaluated at this window close (a Prometheus query), as the judge needs
/// it: the judge stays pure, the server does the I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct External {
    /// The gate's name.
    pub name: String,
    /// The value checked (canary minus control when cohorts are compared); `None` when the
    /// evaluation failed (an error, a timeout, an empty result).
    pub value: Option<f64>,
    /// Control's value, when cohorts are compared.
    pub control_value: Option<f64>,
    /// What passes.
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: f64,
    /// Consecutive failed evaluations, this one included (0 when this one succeeded).
    pub consecutive_failures: u32,
    /// Failures after which the release rolls back; 0 = never (it holds).
    pub rollback_after_failures: u32,
    /// For people: the query as sent, or the error.
    pub detail: String,
}

/// One gate's check at a decision (`flagwire.v1.GateResult`).
#[derive(Debug, Clone, PartialEq)]
pub struct GateResult {
    /// The gate's name.
    pub name: String,
    /// `relative`, `absolute` or `prometheus`.
    pub kind: &'static str,
    /// The value checked: the canary's statistic, a query's result, or the relative effect.
    pub value: f64,
    /// Control's value, when compared.
    pub control_value: Option<f64>,
    /// The threshold or margin.
    pub threshold: f64,
    /// Passed, or not checked yet (too few values). A two-tier gate that is not met but not
    /// breached past its rollback threshold has not passed.
    pub passed: bool,
    /// Whether it could be checked at all (enough values, an answer from the query).
    pub checked: bool,
    /// Whether it demands a rollback (`false` for a two-tier gate that only holds the stage).
    pub rollback: bool,
    /// For people.
    pub detail: String,
}

/// A metric's statistic for a cohort as an absolute gate reads it: the estimate, the variance
/// of one value and how many values it rests on. A rate's variance carries half a pseudo-event
/// ([`rate_variance`]), so a cohort whose writes all failed does not claim certainty about
/// its 0 % (and escape every bound); a distribution has no variance here (its bound is a
/// share's, see [`quantile_breach`]).
fn statistic(
    kind: MetricKind,
    m: &MetricAgg,
    c: &Cohort,
    quantile: f64,
) -> Option<(f64, f64, u64)> {
    match kind {
        MetricKind::Rate => {
            let n = m.successes.saturating_add(m.failures);
            let p = m.rate()?;
            let var = rate_variance(Counts {
                hits: m.successes,
                n,
            });
            Some((p, var * n as f64, n))
        }
        MetricKind::Mean => {
            let mean = m.mean()?;
            let n = m.count as f64;
            Some((mean, (m.sum_of_squares / n - mean * mean).max(0.0), m.count))
        }
        MetricKind::CountPerRequest => {
            // Requests that recorded nothing count as zeros: the cohort's measured requests
            // are its outcomes (one per request scope).
            let n = c.outcomes().max(m.requests);
            let mean = m.per_request(n)?;
            let nf = n as f64;
            let var = (m.request_sum_of_squares / nf - mean * mean).max(0.0);
            Some((mean, var, n))
        }
        MetricKind::Distribution => Some((m.quantile(quantile)?, 0.0, m.histogram.count())),
    }
}

/// The bound of a distribution's quantile most favourable to passing: the value is above its
/// bucket's lower bound and at most its upper bound.
fn quantile_bound(m: &MetricAgg, q: f64, wants_high: bool) -> Option<f64> {
    let at = m.histogram.quantile(q)?;
    if wants_high {
        return Some(at.upper_bound_us / 1000.0);
    }
    Some(at.index.map_or(0.0, |i| upper_bound(i - 1)) / 1000.0)
}

/// Whether the `q` quantile of `m` surely fails `comparison` against `threshold`: the share
/// of values certainly on the failing side of the threshold (whole buckets, so the buckets'
/// 9 % width never counts against the canary) has an anytime-valid lower bound past what the
/// quantile allows. "p95 < 500 ms" fails once more than 5 % of values surely exceed 500 ms.
/// This is what makes a distribution gate anytime-valid: the sample quantile alone swings
/// past a threshold near the true quantile at small counts, and would roll back healthy
/// canaries.
fn quantile_breach(
    m: &MetricAgg,
    q: f64,
    comparison: Comparison,
    threshold: f64,
    min: u64,
) -> bool {
    let h = &m.histogram;
    let t_us = threshold * 1000.0;
    // Values surely failing, and the share of them the quantile tolerates.
    let (failing, tolerated): (u64, f64) = match comparison {
        // Fails when the quantile is at most (below) t: values surely <= t (< t).
        Comparison::GreaterThan | Comparison::GreaterOrEqual => {
            let strict = comparison == Comparison::GreaterOrEqual;
            let below = h
                .buckets()
                .filter(|&(i, _)| {
                    let ub = upper_bound(i);
                    if strict { ub < t_us } else { ub <= t_us }
                })
                .map(|(_, n)| n)
                .sum::<u64>();
            let zeros = if strict && t_us <= 0.0 {
                0
            } else {
                h.zero_count()
            };
            (below + zeros, q)
        }
        // Fails when the quantile is at least (above) t: values surely >= t (> t).
        Comparison::LessThan | Comparison::LessOrEqual => {
            let above = h
                .buckets()
                .filter(|&(i, _)| upper_bound(i - 1) >= t_us)
                .map(|(_, n)| n)
                .sum::<u64>();
            (above, 1.0 - q)
        }
    };
    let counts = Counts {
        hits: failing,
        n: h.count(),
    };
    let var = rate_variance(counts);
    let tau2 = (var * h.count() as f64 / min as f64).max(f64::MIN_POSITIVE);
    counts.rate() - confidence_radius(var, tau2, ABSOLUTE_ALPHA) > tolerated
}

/// The number of events of `m` (track calls, outcomes and observations).
fn events(m: &MetricAgg) -> u64 {
    m.count
        .saturating_add(m.successes)
        .saturating_add(m.failures)
}

/// Checks an absolute gate on `canary` (the cohort at this stage); with too few values it is
/// not checked (and passes).
///
/// The rollback threshold (the threshold itself for a one-tier gate) must be breached beyond
/// the anytime-valid confidence bound. Whether the gate is met (`passed`, which a stage needs
/// to be promoted) is read off the estimate, for one-tier and two-tier gates alike: keeping a
/// stage until the estimate is on the right side costs far less than a false rollback, and a
/// stage is never promoted with a gate's estimate failing it.
pub fn absolute(g: &AbsoluteGate, canary: &Cohort) -> GateResult {
    let rollback_at = g.rollback_threshold.unwrap_or(g.threshold);
    let mut r = GateResult {
        name: g.name.clone(),
        kind: "absolute",
        value: 0.0,
        control_value: None,
        threshold: g.threshold,
        passed: true,
        checked: false,
        rollback: false,
        detail: String::new(),
    };
    let empty = MetricAgg::default();
    let m = canary.metrics.get(&g.metric.name).unwrap_or(&empty);
    let describe = |value: f64, n: u64, passed: bool| {
        format!(
            "{}{} {value:.6} (n = {n}; {} {} {})",
            g.metric.name,
            if g.total { " events" } else { "" },
            if passed { "keeps" } else { "breaches" },
            g.comparison.symbol(),
            g.threshold
        )
    };
    if g.total {
        let n = events(m) as f64;
        r.value = n;
        r.checked = true;
        r.passed = g.comparison.passes(n, g.threshold);
        r.rollback = !g.comparison.passes(n, rollback_at);
        r.detail = describe(n, events(m), r.passed);
        return r;
    }
    let min = if g.min_count == 0 {
        DEFAULT_MIN_COUNT
    } else {
        g.min_count
    };
    let Some((value, var, n)) = statistic(g.metric.kind, m, canary, g.quantile) else {
        r.detail = format!("no values of {:?} yet", g.metric.name);
        return r;
    };
    r.value = value;
    if n < min {
        r.detail = format!("{n} of {min} values");
        return r;
    }
    r.checked = true;
    let wants_high = g.comparison.wants_high();
    let estimate = if g.metric.kind == MetricKind::Distribution {
        r.rollback = quantile_breach(m, g.quantile, g.comparison, rollback_at, min);
        // Within its bucket, the quantile may be anywhere: met unless the whole bucket fails.
        quantile_bound(m, g.quantile, wants_high).unwrap_or(value)
    } else {
        // One pseudo-value at the rollback threshold: a cohort whose values are all equal (a
        // count per request that dropped to zero everywhere) has no spread to bound it with,
        // and would otherwise never be found breaching.
        let nf = n as f64;
        let gap = value - rollback_at;
        let var = (nf * var + gap * gap * nf / (nf + 1.0)) / (nf + 1.0);
        let tau2 = (var / min as f64).max(f64::MIN_POSITIVE);
        let radius = confidence_radius(var / nf, tau2, ABSOLUTE_ALPHA);
        // The value most favourable to passing that the evidence still allows.
        let favourable = if wants_high {
            value + radius
        } else {
            value - radius
        };
        r.rollback = !g.comparison.passes(favourable, rollback_at);
        value
    };
    r.passed = g.comparison.passes(estimate, g.threshold) && !r.rollback;
    r.detail = describe(value, n, r.passed);
    if let Some(at) = g.rollback_threshold {
        r.detail.push_str(&format!(
            ", rolls back {} {at}",
            if wants_high { "below" } else { "above" }
        ));
    }
    r
}

/// The result of an external gate.
pub fn external(e: &External) -> GateResult {
    let (value, passed, checked) = match e.value {
        Some(v) => (v, e.comparison.passes(v, e.threshold), true),
        None => (0.0, false, false),
    };
    let exhausted =
        e.rollback_after_failures > 0 && e.consecutive_failures >= e.rollback_after_failures;
    GateResult {
        name: e.name.clone(),
        kind: "prometheus",
        value,
        control_value: e.control_value,
        threshold: e.threshold,
        passed,
        checked,
        rollback: (checked && !passed) || (!checked && exhausted),
        detail: e.detail.clone(),
    }
}
