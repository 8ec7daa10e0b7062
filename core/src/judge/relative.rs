//! The built-in relative tests, canary against control over the whole rollout: a critical
//! error rate, an error-rate regression and a latency regression at each quantile, each family
//! at its share of the release's α ([`super::alpha`]); and the error-rate bound that shows
//! non-inferiority.

use super::alpha::AlphaSplit;
use super::evidence::{Totals, tau2_for};
use super::plan::Guardrails;
use super::reason::Reason;
use super::{CRITICAL_MIN_ERRORS, TestResult};
use crate::histogram::upper_bound;
use crate::stats::{Counts, TwoProportions, confidence_radius, rate_variance, share_above};

/// The built-in relative tests (error rate, latency quantiles), each family at its share of
/// α; pushes every result and returns the first regression found.
pub(super) fn relative_regression(
    g: &Guardrails,
    split: &AlphaSplit,
    t: &Totals,
    tests: &mut Vec<TestResult>,
) -> Option<(Reason, String)> {
    let mut found = None;
    let (canary, control) = (t.canary.error_counts(), t.control.error_counts());
    if g.relative_error_rate && canary.n > 0 && control.n > 0 {
        let alpha = split.error_rate;
        let base = control.rate();
        // Critical: canary ≥ ratio × control, i.e. a margin of (ratio - 1) × control.
        if g.critical_error_ratio > 1.0 && canary.hits >= CRITICAL_MIN_ERRORS {
            let test = TwoProportions {
                margin: (g.critical_error_ratio - 1.0) * base,
                tau2: tau2_for(base * g.critical_error_ratio),
                alpha,
            };
            let v = test.test(canary, control);
            tests.push(result(
                "critical_error_rate",
                v.p_value,
                alpha,
                v.difference,
                v.regression,
            ));
            if v.regression {
                found = Some((
                    Reason::CriticalErrorRate,
                    format!(
                        "canary error rate {:.4} vs control {:.4}",
                        canary.rate(),
                        base
                    ),
                ));
            }
        }
        let test = TwoProportions {
            margin: g.error_rate_margin,
            tau2: tau2_for(base),
            alpha,
        };
        let v = test.test(canary, control);
        tests.push(result(
            "error_rate",
            v.p_value,
            alpha,
            v.difference,
            v.regression,
        ));
        if v.regression && found.is_none() {
            found = Some((
                Reason::ErrorRateRegression,
                format!(
                    "canary error rate {:.4} vs control {:.4} (p = {:.2e})",
                    canary.rate(),
                    base,
                    v.p_value
                ),
            ));
        }
    }
    let k = g.latency_quantiles.len().max(1) as f64;
    let (cl, kl) = (&t.canary.latency, &t.control.latency);
    let mut pooled = kl.clone();
    if !g.latency_quantiles.is_empty() {
        pooled.merge(cl);
    }
    for &q in &g.latency_quantiles {
        let alpha = split.latency / k;
        if !(0.0..1.0).contains(&q) || (kl.count() as f64) < 10.0 / (1.0 - q) || cl.count() == 0 {
            continue;
        }
        let (Some(kq), Some(cq)) = (kl.quantile(q), cl.quantile(q)) else {
            continue;
        };
        // The boundary is the quantile of both cohorts pooled, not control's own: with
        // control's, control's share above is below 1 - q by construction while the canary's is
        // not, a bias towards "regression" that the 9 % buckets make lumpy. Pooled, the cohorts
        // are exchangeable under the null and the difference of shares is centred on zero
        // (flagwire-sim: A/A latency rollbacks 14 → 8 of 6,000 rollouts at alpha 0.05, with no
        // slower detection of a +50 % latency).
        let Some(index) = pooled.quantile(q).and_then(|at| at.index) else {
            continue;
        };
        let (above_canary, above_control) = (share_above(cl, index), share_above(kl, index));
        let test = TwoProportions {
            margin: 0.0,
            tau2: tau2_for(share_above(&pooled, index).rate()),
            alpha,
        };
        let v = test.test(above_canary, above_control);
        let ratio = if kq.upper_bound_us > 0.0 {
            cq.upper_bound_us / kq.upper_bound_us
        } else {
            1.0
        };
        let flagged = v.regression && ratio >= g.latency_ratio;
        let name = format!("latency_p{}", quantile_name(q));
        tests.push(result(&name, v.p_value, alpha, ratio, flagged));
        if flagged && found.is_none() {
            found = Some((
                Reason::LatencyRegression,
                format!(
                    "p{}: canary {:.0} us vs control {:.0} us; {:.4} vs {:.4} of requests above the pooled p{} ({:.0} us)",
                    quantile_name(q),
                    cq.upper_bound_us,
                    kq.upper_bound_us,
                    above_canary.rate(),
                    above_control.rate(),
                    quantile_name(q),
                    upper_bound(index)
                ),
            ));
        }
    }
    found
}

/// Upper bound of the anytime-valid interval of canary minus control error rate.
pub(super) fn difference_upper_bound(g: &Guardrails, t: &Totals) -> f64 {
    let (c, k): (Counts, Counts) = (t.canary.error_counts(), t.control.error_counts());
    if c.n == 0 || k.n == 0 {
        return f64::INFINITY;
    }
    let v = rate_variance(c) + rate_variance(k);
    c.rate() - k.rate() + confidence_radius(v, tau2_for(k.rate()), g.alpha / 2.0)
}

/// `0.95` as `95`, `0.999` as `99.9`: a quantile as tests and details name it.
pub(super) fn quantile_name(q: f64) -> String {
    let pct = q * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{}", pct.round() as i64)
    } else {
        format!("{pct}")
    }
}

fn result(name: &str, p_value: f64, alpha: f64, effect: f64, flagged: bool) -> TestResult {
    TestResult {
        name: name.to_owned(),
        p_value,
        alpha,
        effect,
        flagged,
    }
}
