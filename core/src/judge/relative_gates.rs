//! Relative gates: the canary against control on the team's own metrics, over the whole
//! rollout's controlled windows, each with an anytime-valid one-sided sequential test at its
//! share of the release's α ([`super::alpha`]). Like the built-in tests, a gate can be looked
//! at after every window without inflating false rollbacks.
//!
//! Per kind of metric, "worse" is read in the metric's direction and the gate's margin (in the
//! metric's unit) is tolerated:
//! - **rate**: two proportions ([`TwoProportions`]) on the bad outcomes: failures when higher
//!   is better, successes when lower is better;
//! - **mean** and **count per request**: the difference of means, with each cohort's variance
//!   from its sum of squares, under the half-normal mixture of [`one_sided_log_lr`]; a count
//!   per request divides by the cohort's measured requests (its outcomes, requests that
//!   recorded nothing counting as zero) and takes its variance from `request_sum_of_squares`;
//! - **distribution**: as the latency test does, the share of values on the bad side of the
//!   pooled quantile (above it when lower is better, below it when higher is better), flagged
//!   only when the canary's quantile is also worse than control's by more than the margin.

use super::evidence::{Cohort, tau2_for};
use super::gate::{Direction, GateResult, MetricKind, RelativeGate};
use super::metric::MetricAgg;
use super::reason::Reason;
use super::{TestResult, Totals};
use crate::histogram::Histogram;
use crate::stats::{Counts, TwoProportions, one_sided_log_lr, share_above};

/// Values (outcomes, tracked values, measured requests, observations) each cohort needs before
/// a relative gate is tested. The tests rest on the normal approximation with a variance
/// estimated from the data; a hundred values keep that estimate honest for the skewed metrics
/// teams track (counts, scores), and cost seconds at any traffic a canary is judged at.
pub const MIN_VALUES: u64 = 100;

/// Mixing scale of the mean tests, in standard deviations of the metric (τ = 0.2 σ).
///
/// The mixture test is quickest for effects near its scale and loses little away from it (the
/// cost grows with the log of the mismatch). A shift of a tenth of a standard deviation is the
/// smallest the issue asks to see. Simulated with 25 values per cohort per 10 s window at a
/// gate's share of α (0.03 / 7), the median time to catch a shift of 0.1 / 0.2 / 0.5 σ was
/// 870 / 280 / 80 s at τ = 0.1 σ, 890 / 230 / 50 s at 0.2 σ and 1,070 / 250 / 50 s at 0.5 σ.
/// In flagwire-sim, 0.2 σ rather than 0.1 σ caught satisfaction down 0.1 σ as fast (median
/// 1 min 40 s – 1 min 50 s) with fewer A/A rollbacks from the two mean gates (22 against 33 of
/// 8,000 releases at 2,000 requests/s). Scaling τ by the metric's own standard deviation keeps
/// the test free of the metric's unit, which the judge does not know.
pub const MEAN_TAU: f64 = 0.2;

/// What one gate's test found.
struct Look {
    /// The canary's statistic (rate, mean, per-request mean, quantile).
    canary: f64,
    /// Control's.
    control: f64,
    /// Always-valid p-value of this look.
    p_value: f64,
    /// A regression beyond the margin at the gate's level.
    flagged: bool,
    /// For people.
    detail: String,
}

/// Tests every relative gate at level `alpha` each over the whole rollout's `totals`, pushing
/// its test (when it could run) and its gate result; returns the first regression found.
pub fn test<'a>(
    gates: impl Iterator<Item = &'a RelativeGate>,
    alpha: f64,
    totals: &Totals,
    tests: &mut Vec<TestResult>,
    results: &mut Vec<GateResult>,
) -> Option<(Reason, String)> {
    let mut found = None;
    for g in gates {
        let mut r = GateResult {
            name: g.name.clone(),
            kind: "relative",
            value: 0.0,
            control_value: None,
            threshold: g.margin,
            passed: true,
            checked: false,
            rollback: false,
            detail: String::new(),
        };
        match look(g, alpha, &totals.canary, &totals.control) {
            Ok(l) => {
                tests.push(TestResult {
                    name: format!("gate:{}", g.name),
                    p_value: l.p_value,
                    alpha,
                    effect: l.canary - l.control,
                    flagged: l.flagged,
                });
                r.value = l.canary;
                r.control_value = Some(l.control);
                r.checked = true;
                r.passed = !l.flagged;
                r.rollback = l.flagged;
                r.detail = l.detail;
                if l.flagged && found.is_none() {
                    found = Some((
                        Reason::MetricRegression,
                        format!("gate {:?}: {}", g.name, r.detail),
                    ));
                }
            }
            Err(why) => r.detail = why,
        }
        results.push(r);
    }
    found
}

/// Runs `g`'s test on the two cohorts, or says why it cannot yet.
fn look(g: &RelativeGate, alpha: f64, canary: &Cohort, control: &Cohort) -> Result<Look, String> {
    let empty = MetricAgg::default();
    let (c, k) = (
        canary.metrics.get(&g.metric.name).unwrap_or(&empty),
        control.metrics.get(&g.metric.name).unwrap_or(&empty),
    );
    let mut l = match g.metric.kind {
        MetricKind::Rate => rate(g, alpha, c, k)?,
        MetricKind::Mean => {
            let m = |m: &MetricAgg| Moments::of(m.count, m.sum, m.sum_of_squares);
            let mut l = means(g, alpha, m(c), m(k))?;
            l.detail = format!("mean {}", l.detail);
            l
        }
        MetricKind::CountPerRequest => {
            // Requests that recorded nothing count as zeros: a cohort's measured requests are
            // its outcomes (one per request scope).
            let m = |m: &MetricAgg, cohort: &Cohort| {
                let n = cohort.outcomes().max(m.requests);
                Moments::of(n, m.sum, m.request_sum_of_squares)
            };
            let mut l = means(g, alpha, m(c, canary), m(k, control))?;
            l.detail = format!("per request {}", l.detail);
            l
        }
        MetricKind::Distribution => distribution(g, alpha, &c.histogram, &k.histogram)?,
    };
    l.detail
        .push_str(&format!("; p = {:.2e} at α = {alpha:.4}", l.p_value));
    Ok(l)
}

/// Whether both cohorts have `need` values.
fn enough(canary: u64, control: u64, need: u64) -> Result<(), String> {
    if canary < need || control < need {
        return Err(format!(
            "{canary} canary and {control} control values of {need} needed per cohort"
        ));
    }
    Ok(())
}

/// A rate: two proportions on the bad outcomes.
fn rate(g: &RelativeGate, alpha: f64, c: &MetricAgg, k: &MetricAgg) -> Result<Look, String> {
    let bad = |m: &MetricAgg| Counts {
        hits: match g.metric.direction {
            Direction::HigherIsBetter => m.failures,
            Direction::LowerIsBetter => m.successes,
        },
        n: m.successes.saturating_add(m.failures),
    };
    let (bc, bk) = (bad(c), bad(k));
    enough(bc.n, bk.n, MIN_VALUES)?;
    let test = TwoProportions {
        margin: g.margin,
        tau2: tau2_for(bk.rate()),
        alpha,
    };
    let v = test.test(bc, bk);
    let (rc, rk) = (c.rate().unwrap_or(0.0), k.rate().unwrap_or(0.0));
    Ok(Look {
        canary: rc,
        control: rk,
        p_value: v.p_value,
        flagged: v.regression,
        detail: format!(
            "rate {rc:.4} vs control {rk:.4} (n = {} / {}, margin {})",
            bc.n, bk.n, g.margin
        ),
    })
}

/// A cohort's values as a mean test reads them.
#[derive(Debug, Clone, Copy)]
struct Moments {
    n: u64,
    mean: f64,
    /// The unbiased variance of one value.
    var: f64,
}

impl Moments {
    /// From `n` values (zeros included) summing to `sum`, with `sum_of_squares`.
    fn of(n: u64, sum: f64, sum_of_squares: f64) -> Self {
        let nf = n.max(1) as f64;
        let mean = sum / nf;
        let var = if n > 1 {
            ((sum_of_squares - nf * mean * mean) / (nf - 1.0)).max(0.0)
        } else {
            0.0
        };
        Self { n, mean, var }
    }
}

/// A difference of means, worse beyond the margin in the metric's direction.
fn means(g: &RelativeGate, alpha: f64, c: Moments, k: Moments) -> Result<Look, String> {
    enough(c.n, k.n, MIN_VALUES)?;
    let (nc, nk) = (c.n as f64, k.n as f64);
    let worse = match g.metric.direction {
        Direction::HigherIsBetter => k.mean - c.mean,
        Direction::LowerIsBetter => c.mean - k.mean,
    };
    let variance = c.var / nc + k.var / nk;
    let pooled = (c.var * nc + k.var * nk) / (nc + nk);
    let shifted = worse - g.margin;
    // No spread in either cohort leaves nothing to weigh a difference against: untested
    // (one_sided_log_lr is 0), never flagged on arithmetic noise.
    let log_lr = one_sided_log_lr(shifted, variance, MEAN_TAU * MEAN_TAU * pooled);
    let p_value = (-log_lr).exp().min(1.0);
    Ok(Look {
        canary: c.mean,
        control: k.mean,
        p_value,
        flagged: shifted > 0.0 && log_lr >= (1.0 / alpha).ln(),
        detail: format!(
            "{:.4} vs control {:.4} (n = {} / {}, sd {:.4} / {:.4}, margin {})",
            c.mean,
            k.mean,
            c.n,
            k.n,
            c.var.sqrt(),
            k.var.sqrt(),
            g.margin
        ),
    })
}

/// A distribution: the share of values on the bad side of the pooled quantile.
fn distribution(
    g: &RelativeGate,
    alpha: f64,
    c: &Histogram,
    k: &Histogram,
) -> Result<Look, String> {
    let q = g.quantile;
    if !(q > 0.0 && q < 1.0) {
        return Err(format!("quantile {q} is not in (0, 1)"));
    }
    // As the latency test asks: enough values for the quantile to have ten above it.
    let need = MIN_VALUES.max((10.0 / (1.0 - q)).ceil() as u64);
    enough(c.count(), k.count(), need)?;
    let mut pooled = k.clone();
    pooled.merge(c);
    let (Some(at), Some(cq), Some(kq)) = (pooled.quantile(q), c.quantile(q), k.quantile(q)) else {
        return Err("no quantile".into());
    };
    let lower_is_better = g.metric.direction == Direction::LowerIsBetter;
    let bad = |h: &Histogram| {
        if lower_is_better {
            above(h, at.index)
        } else {
            below(h, at.index)
        }
    };
    // The pooled boundary keeps both cohorts exchangeable under the null (see the latency test).
    let test = TwoProportions {
        margin: 0.0,
        tau2: tau2_for(bad(&pooled).rate()),
        alpha,
    };
    let (bc, bk) = (bad(c), bad(k));
    let v = test.test(bc, bk);
    let (cv, kv) = (cq.upper_bound_us / 1000.0, kq.upper_bound_us / 1000.0);
    let worse = if lower_is_better { cv - kv } else { kv - cv };
    let pct = super::relative::quantile_name(q);
    Ok(Look {
        canary: cv,
        control: kv,
        p_value: v.p_value,
        flagged: v.regression && worse > g.margin,
        detail: format!(
            "p{pct} {cv:.3} vs control {kv:.3} (margin {}); {:.4} vs {:.4} of values {} the pooled p{pct} ({:.3})",
            g.margin,
            bc.rate(),
            bk.rate(),
            if lower_is_better { "above" } else { "below" },
            at.upper_bound_us / 1000.0
        ),
    })
}

/// Values of `h` above the bucket `at` (`None`: the zero bucket).
fn above(h: &Histogram, at: Option<i32>) -> Counts {
    match at {
        Some(i) => share_above(h, i),
        None => Counts {
            hits: h.count() - h.zero_count(),
            n: h.count(),
        },
    }
}

/// Values of `h` below the bucket `at`: zeros and the buckets under it.
fn below(h: &Histogram, at: Option<i32>) -> Counts {
    let hits = match at {
        Some(i) => h.count() - share_above(h, i - 1).hits,
        None => 0,
    };
    Counts { hits, n: h.count() }
}
