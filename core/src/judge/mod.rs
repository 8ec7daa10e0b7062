//! The rollout judge: at every window close, PROMOTE, HOLD or ROLLBACK, as a pure function of
//! the plan, the position, the closed windows and the time (no clock, no randomness), so the
//! server, the tests and the calibration simulator all run exactly the same decisions.
//!
//! The order of checks, first match wins:
//! 1. **absolute guardrails** on the canary at this step (error-rate ceiling, success-rate
//!    floor, p95 / p99 ceilings), then **absolute gates** on the team's metrics and
//!    **Prometheus gates** (see [`gate`]): ROLLBACK, unless control breaches too
//!    (GLOBAL_INCIDENT: HOLD); a Prometheus gate failing to evaluate as many times in a row as
//!    it allows: ROLLBACK (GATE_UNAVAILABLE);
//! 2. **missing canary data** past the policy's grace period: ROLLBACK;
//! 3. a cohort **silent** for [`HEALTH_WINDOWS`] windows: HOLD;
//! 4. **sample-ratio mismatch** between canary and control (always-valid p < 0.001): HOLD,
//!    since relative tests on a broken split prove nothing;
//! 5. **relative tests** over the whole rollout with [`crate::stats::TwoProportions`]: a
//!    critical error rate (≥ 3× control), an error-rate regression, a latency regression at
//!    each quantile (share of requests above the pooled quantile, gated by the quantile ratio),
//!    then the **relative gates** on the team's metrics ([`relative_gates`]): ROLLBACK;
//! 6. **data quality**: late reports or dropped series in the recent windows, or a Prometheus
//!    gate that did not answer: HOLD;
//! 7. the step's **minimum duration and outcomes**, and its **absolute gates** checked and met
//!    (a gate whose estimate fails its threshold without a breach beyond its bound, such as a
//!    two-tier gate between its two thresholds: GATE_NOT_MET): HOLD; a relative gate that
//!    cannot be tested yet (too few values) does not hold, as the latency tests do not;
//! 8. **promotion**: at once when the step has no max duration; with one, when non-inferiority
//!    is shown or, at the max duration, per policy; "pause for a human" turns it into HOLD.
//!
//! The sequential tests are anytime-valid, so testing at every window does not inflate false
//! alarms; the level is split equally among the error rate, the latency quantiles (together)
//! and each relative gate ([`alpha`]): half and half when the release has no relative gates.

mod absolute;
pub mod alpha;
pub mod evidence;
pub mod gate;
pub mod metric;
pub mod plan;
pub mod reason;
mod relative;
pub mod relative_gates;

pub use alpha::AlphaSplit;
pub use evidence::{Cohort, Summary, Totals, Window};
pub use gate::{External, Gate, GateResult};
pub use metric::MetricAgg;
pub use plan::{GATED_ALPHA, Guardrails, Limits, MaxDuration, Plan, Policy, Position, Step};
pub use reason::Reason;

use crate::stats::srm_sequential_p_value;
use absolute::{absolute_breach, gate_breach};
use relative::{difference_upper_bound, relative_regression};

/// Windows looked back over by the health checks.
pub const HEALTH_WINDOWS: usize = 3;
/// Sample-ratio mismatch below this always-valid p-value holds the rollout: at most 0.1 % of
/// healthy rollouts are ever held for it, however many windows they last.
pub const SRM_ALPHA: f64 = 0.001;
/// Mixing scale of the sample-ratio test: a canary share one point off (51 / 49) is the
/// imbalance it is tuned to see soonest. Real split bugs (a variant not reported by some SDKs,
/// a sticky-bucketing error) are larger and show within a few windows; this scale only decides
/// how fast, never how often a balanced split is held.
pub const SRM_TAU2: f64 = 1e-4;
/// Evaluations (both cohorts) needed before the sample ratio is checked.
pub const SRM_MIN_EVALUATIONS: u64 = 200;
/// Late reports above this share of the recent ones hold the rollout.
pub const MAX_LATE_SHARE: f64 = 0.1;
/// Canary errors needed before an error rate can be called critical.
pub const CRITICAL_MIN_ERRORS: u64 = 5;

/// What the judge decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Stay at this step.
    Hold,
    /// Go to the next step.
    Promote,
    /// Serve the baseline to everyone.
    Rollback,
}

/// One test behind a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// `error_rate`, `critical_error_rate`, `latency_p99`, `srm`, ...
    pub name: String,
    /// Always-valid p-value of this look (for `srm` too).
    pub p_value: f64,
    /// The level it was held to.
    pub alpha: f64,
    /// Canary minus control rate, or the quantile ratio for latency.
    pub effect: f64,
    /// Whether it flagged a problem.
    pub flagged: bool,
}

/// A decision with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// What.
    pub kind: Kind,
    /// Why.
    pub reason: Reason,
    /// For people.
    pub detail: String,
    /// Canary over the whole rollout.
    pub canary: Summary,
    /// Control over the whole rollout.
    pub control: Summary,
    /// Every test run at this look.
    pub tests: Vec<TestResult>,
    /// Every gate checked at this look.
    pub gates: Vec<GateResult>,
}

/// Judges a rollout at `now_ms` from its closed `windows` (oldest first), with no external
/// gates.
pub fn judge(plan: &Plan, at: &Position, windows: &[Window], now_ms: i64) -> Judgement {
    judge_with(plan, at, windows, now_ms, &[])
}

/// Judges a rollout as [`judge`] does, with the `external` gates the caller evaluated at this
/// window close (Prometheus queries).
pub fn judge_with(
    plan: &Plan,
    at: &Position,
    windows: &[Window],
    now_ms: i64,
    external: &[External],
) -> Judgement {
    let uncontrolled = |i: usize| plan.steps.get(i).is_some_and(|s| s.no_control);
    let totals = Totals::of(windows, at.step, uncontrolled);
    let step = plan.steps.get(at.step);
    // Without a randomised control a step is judged on absolute limits only; every decision
    // says so, since "no regression" means less there, and shows the step's own numbers.
    let no_control = step.is_some_and(|s| s.no_control);
    let (canary, control) = if no_control {
        (&totals.step_canary, &totals.step_control)
    } else {
        (&totals.canary, &totals.control)
    };
    let mut j = Judgement {
        kind: Kind::Hold,
        reason: Reason::InsufficientData,
        detail: String::new(),
        canary: Summary::of(canary),
        control: Summary::of(control),
        tests: Vec::new(),
        gates: Vec::new(),
    };
    let g = &plan.guardrails;
    let decide = |mut j: Judgement, kind, reason, detail: String| {
        j.kind = kind;
        j.reason = reason;
        j.detail = if no_control {
            format!("{detail} (no control: absolute limits only)")
        } else {
            detail
        };
        j
    };
    let limits = step.map_or(g.limits(), |s| g.limits().stricter(s.limits));

    // 1. Absolute guardrails, at this step.
    let (sc, sk) = (
        Summary::of(&totals.step_canary),
        Summary::of(&totals.step_control),
    );
    if let Some((reason, detail)) = absolute_breach(&limits, &totals.step_canary, &sc) {
        if !no_control && absolute_breach(&limits, &totals.step_control, &sk).is_some() {
            let detail = format!("{detail}; control breaches too");
            return decide(j, Kind::Hold, Reason::GlobalIncident, detail);
        }
        return decide(j, Kind::Rollback, reason, detail);
    }
    // 1b. Absolute and external gates, at this step.
    if let Some((kind, reason, detail)) =
        gate_breach(plan, at.step, &totals, no_control, external, &mut j.gates)
    {
        return decide(j, kind, reason, detail);
    }

    // 2. Missing canary data, per policy.
    let grace = plan.policy.missing_data_grace_ms;
    if grace > 0 {
        let last = windows
            .iter()
            .rev()
            .find(|w| !w.canary.is_empty())
            .map_or(at.started_ms, |w| w.end_ms);
        if now_ms - last >= grace {
            let detail = format!("no canary data for {} ms", now_ms - last);
            return decide(j, Kind::Rollback, Reason::NoCanaryData, detail);
        }
    }

    // 3. A silent cohort (checked before the sample ratio, which silence breaks too).
    let recent = &windows[windows.len().saturating_sub(HEALTH_WINDOWS)..];
    if recent.len() == HEALTH_WINDOWS {
        let cohorts = [
            ("canary", recent.iter().all(|w| w.canary.is_empty())),
            (
                "control",
                !no_control && recent.iter().all(|w| w.control.is_empty()),
            ),
        ];
        for (name, silent) in cohorts {
            if silent {
                let detail = format!("no {name} data in the last {HEALTH_WINDOWS} windows");
                return decide(j, Kind::Hold, Reason::MissingData, detail);
            }
        }
    }

    // 4. Sample ratio (of a controlled step).
    let (a, b) = (totals.canary.evaluations, totals.control.evaluations);
    if !no_control && a + b >= SRM_MIN_EVALUATIONS {
        let p = srm_sequential_p_value(a, b, SRM_TAU2);
        let flagged = p < SRM_ALPHA;
        j.tests.push(TestResult {
            name: "srm".into(),
            p_value: p,
            alpha: SRM_ALPHA,
            effect: a as f64 / (a + b) as f64 - 0.5,
            flagged,
        });
        if flagged {
            let detail = format!("canary {a} vs control {b} evaluations (p = {p:.2e})");
            return decide(j, Kind::Hold, Reason::SampleRatioMismatch, detail);
        }
    }

    // 5. Relative tests over the whole rollout (its controlled steps), each family at its
    // share of the release's α. Every test runs, so the decision shows all of them; the first
    // regression (built-in tests first, then the gates in order) decides.
    if !no_control {
        let split = AlphaSplit::of(plan);
        let builtin = relative_regression(g, &split, &totals, &mut j.tests);
        let gates = plan.gates_at(at.step).filter_map(|g| match g {
            Gate::Relative(r) => Some(r),
            Gate::Absolute(_) => None,
        });
        let found = relative_gates::test(gates, split.gate, &totals, &mut j.tests, &mut j.gates);
        if let Some((reason, detail)) = builtin.or(found) {
            return decide(j, Kind::Rollback, reason, detail);
        }
    }

    // 6. Data quality.
    if recent.len() == HEALTH_WINDOWS {
        let late: u64 = recent.iter().map(|w| w.late_reports).sum();
        let reports: u64 = recent.iter().map(|w| w.reports).sum();
        let dropped: u64 = recent.iter().map(|w| w.dropped_series).sum();
        if dropped > 0 || late as f64 > MAX_LATE_SHARE * (late + reports) as f64 {
            let detail = format!(
                "{late} late reports of {}, {dropped} dropped series",
                late + reports
            );
            return decide(j, Kind::Hold, Reason::DataQuality, detail);
        }
    }
    if let Some(e) = external.iter().find(|e| e.value.is_none()) {
        let detail = format!("gate {:?} did not answer: {}", e.name, e.detail);
        return decide(j, Kind::Hold, Reason::GateUnavailable, detail);
    }

    // 7. Minimums of the step.
    let Some(step) = step else {
        return decide(j, Kind::Hold, Reason::StepHealthy, "no such step".into());
    };
    let elapsed = now_ms - at.step_start_ms;
    if elapsed < step.min_duration_ms {
        let detail = format!("{elapsed} of {} ms at this step", step.min_duration_ms);
        return decide(j, Kind::Hold, Reason::MinDuration, detail);
    }
    let fewest = if no_control { sc.n } else { sc.n.min(sk.n) };
    if fewest < step.min_outcomes.max(1) {
        let detail = format!("{fewest} of {} outcomes per cohort", step.min_outcomes);
        return decide(j, Kind::Hold, Reason::InsufficientData, detail);
    }
    // Gates keep a stage until each has been checked and is met.
    if let Some(g) = j
        .gates
        .iter()
        .find(|g| !g.checked && g.kind != "prometheus")
    {
        let detail = format!("gate {:?}: {}", g.name, g.detail);
        return decide(j, Kind::Hold, Reason::InsufficientData, detail);
    }
    if let Some(g) = j.gates.iter().find(|g| !g.passed) {
        let detail = format!("gate {:?}: {}", g.name, g.detail);
        return decide(j, Kind::Hold, Reason::GateNotMet, detail);
    }

    // 8. Promotion.
    let max_duration = step.max_duration_policy.unwrap_or(plan.policy.max_duration);
    let (kind, reason, detail) = if step.max_duration_ms <= 0 {
        (
            Kind::Promote,
            Reason::StepHealthy,
            "minimums met, no regression".to_owned(),
        )
    } else {
        let upper = if no_control {
            f64::INFINITY
        } else {
            difference_upper_bound(g, &totals)
        };
        if upper < g.non_inferiority_margin {
            let detail = format!("error-rate difference below {upper:.5}");
            (Kind::Promote, Reason::NonInferior, detail)
        } else if elapsed >= step.max_duration_ms {
            match max_duration {
                MaxDuration::Promote => (
                    Kind::Promote,
                    Reason::MaxDurationPromote,
                    "max duration reached".to_owned(),
                ),
                MaxDuration::Hold => (
                    Kind::Hold,
                    Reason::MaxDurationReached,
                    "max duration reached".to_owned(),
                ),
            }
        } else if no_control {
            let detail = format!("{elapsed} of {} ms max duration", step.max_duration_ms);
            (Kind::Hold, Reason::AwaitingMaxDuration, detail)
        } else {
            let detail = format!("error-rate difference may be up to {upper:.5}");
            (Kind::Hold, Reason::AwaitingNonInferiority, detail)
        }
    };
    if kind == Kind::Promote && plan.policy.pause_for_human {
        return decide(j, Kind::Hold, Reason::AwaitingApproval, detail);
    }
    decide(j, kind, reason, detail)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gates;
#[cfg(test)]
mod tests_relative_gates;
