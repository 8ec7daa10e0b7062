//! The absolute checks of the current step, the judge's first: the guardrails' limits on the
//! canary, then the absolute gates on the team's metrics and the external (Prometheus) gates.
//! They read the step alone, so a stage is held to its own numbers.

use super::Kind;
use super::evidence::{Cohort, Summary, Totals};
use super::gate::{self, External, Gate, GateResult};
use super::plan::{Limits, Plan};
use super::reason::Reason;
use crate::histogram::upper_bound;

/// Checks the absolute gates of `step` and the `external` ones, pushing every result; the first
/// breach decides: ROLLBACK, or HOLD when control breaches an absolute gate too (an incident,
/// not the release), or ROLLBACK when an external gate failed as often in a row as it allows.
pub(super) fn gate_breach(
    plan: &Plan,
    step: usize,
    t: &Totals,
    no_control: bool,
    external: &[External],
    results: &mut Vec<GateResult>,
) -> Option<(Kind, Reason, String)> {
    let mut found = None;
    for g in plan.gates_at(step) {
        let Gate::Absolute(a) = g else { continue };
        let r = gate::absolute(a, &t.step_canary);
        if r.rollback && found.is_none() {
            let control = (!no_control).then(|| gate::absolute(a, &t.step_control));
            found = Some(match control {
                Some(k) if k.rollback => (
                    Kind::Hold,
                    Reason::GlobalIncident,
                    format!("gate {:?}: {}; control breaches too", a.name, r.detail),
                ),
                _ => (
                    Kind::Rollback,
                    Reason::GateBreached,
                    format!("gate {:?}: {}", a.name, r.detail),
                ),
            });
        }
        results.push(r);
    }
    for e in external {
        let r = gate::external(e);
        if r.rollback && found.is_none() {
            let detail = if r.checked {
                format!(
                    "gate {:?}: {} {} {} fails ({})",
                    e.name,
                    r.value,
                    e.comparison.symbol(),
                    e.threshold,
                    e.detail
                )
            } else {
                format!(
                    "gate {:?} failed {} times in a row: {}",
                    e.name, e.consecutive_failures, e.detail
                )
            };
            let reason = if r.checked {
                Reason::GateBreached
            } else {
                Reason::GateUnavailable
            };
            found = Some((Kind::Rollback, reason, detail));
        }
        results.push(r);
    }
    found
}

/// The first absolute limit `c` (summarised as `s`) breaches, with a detail.
pub(super) fn absolute_breach(g: &Limits, c: &Cohort, s: &Summary) -> Option<(Reason, String)> {
    if g.max_error_rate > 0.0 && s.error_rate_lower > g.max_error_rate {
        let d = format!(
            "error rate {:.4} (at least {:.4}) > {}",
            s.error_rate, s.error_rate_lower, g.max_error_rate
        );
        return Some((Reason::MaxErrorRate, d));
    }
    if g.min_success_rate > 0.0 && 1.0 - s.error_rate_lower < g.min_success_rate {
        let d = format!(
            "success rate {:.4} < {}",
            1.0 - s.error_rate,
            g.min_success_rate
        );
        return Some((Reason::MinSuccessRate, d));
    }
    for (q, max_ms, reason) in [
        (0.95, g.max_p95_ms, Reason::MaxP95Latency),
        (0.99, g.max_p99_ms, Reason::MaxP99Latency),
    ] {
        if max_ms <= 0.0 || (c.latency.count() as f64) < 10.0 / (1.0 - q) {
            continue;
        }
        // The quantile is above its bucket's lower bound: breach only when that is too high.
        let lower_us = c
            .latency
            .quantile(q)
            .and_then(|at| at.index)
            .map_or(0.0, |i| upper_bound(i - 1));
        if lower_us > max_ms * 1000.0 {
            let d = format!(
                "p{} above {:.1} ms > {max_ms} ms",
                (q * 100.0).round(),
                lower_us / 1000.0
            );
            return Some((reason, d));
        }
    }
    None
}
