//! Checking a rollout definition, filling in its defaults, and turning it into the judge's
//! [`Plan`].
//!
//! Defaults (written into the stored rollout, so `GetRollout` shows what applies): no
//! `guardrails` at all means the error rate and p50/p95/p99 tested against control; `alpha`
//! 0.03 (calibrated in `tests/sim`), `latencyRatioThreshold` 1.10, `nonInferiorityMargin`
//! 0.005, `criticalErrorRatio` 3; `policy.window` 10 s. Step minimum durations are rounded up
//! to whole windows: the judge decides only at window closes, so a healthy rollout then reaches
//! 100 % at exactly the sum of its minimums (plus at most one window after a restart).

use crate::catalog::State;
use crate::error::{Error, Result};
use flagwire_core::judge::{self, MaxDuration, Plan};
use flagwire_proto::v1::{Guardrails, MaxDurationPolicy, Rollout, RolloutPolicy, RolloutStep};
use prost_types::Duration as PbDuration;

/// The most steps a rollout may have.
pub const MAX_STEPS: usize = 20;
/// Basis points that mean "everyone": promoting to such a step completes the rollout.
pub const FULL: u32 = 10_000;

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid(field, reason)
}

/// Milliseconds of a protobuf duration; `field` names it in the error.
pub fn millis(d: Option<&PbDuration>, field: &str) -> Result<i64> {
    let Some(d) = d else { return Ok(0) };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(invalid(field, "must be a non-negative duration"));
    }
    d.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(d.nanos / 1_000_000)))
        .ok_or_else(|| invalid(field, "too long"))
}

/// The protobuf duration of `ms` milliseconds.
pub(crate) fn duration(ms: i64) -> PbDuration {
    PbDuration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn check_steps(steps: &[RolloutStep]) -> Result<()> {
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(invalid(
            "rollout.steps",
            format!("needs 1 to {MAX_STEPS} steps"),
        ));
    }
    let mut last = 0;
    for (i, s) in steps.iter().enumerate() {
        let field = format!("rollout.steps[{i}]");
        let bp = s.basis_points;
        let final_full = bp == FULL && i == steps.len() - 1;
        if !final_full && !(1..=FULL / 2).contains(&bp) {
            return Err(invalid(
                &format!("{field}.basisPoints"),
                "must be 1 to 5000 (canary and control are equal), or 10000 as the last step",
            ));
        }
        if bp <= last {
            return Err(invalid(
                &format!("{field}.basisPoints"),
                "steps must increase",
            ));
        }
        last = bp;
        let min = millis(s.min_duration.as_ref(), &format!("{field}.minDuration"))?;
        let max = millis(s.max_duration.as_ref(), &format!("{field}.maxDuration"))?;
        if max != 0 && max < min {
            return Err(invalid(
                &format!("{field}.maxDuration"),
                "shorter than minDuration",
            ));
        }
    }
    Ok(())
}

fn in_range(v: f64, lo: f64, hi: f64, field: &str, what: &str) -> Result<()> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(invalid(field, format!("must be {what}")))
    }
}

fn normalise_guardrails(g: Option<Guardrails>) -> Result<Guardrails> {
    let mut g = g.unwrap_or(Guardrails {
        relative_error_rate: true,
        relative_latency_quantiles: vec![0.5, 0.95, 0.99],
        ..Guardrails::default()
    });
    let f = |name: &str| format!("rollout.guardrails.{name}");
    if g.alpha == 0.0 {
        g.alpha = flagwire_core::judge::Guardrails::default().alpha;
    }
    in_range(g.alpha, 1e-9, 0.5, &f("alpha"), "in (0, 0.5]")?;
    if g.latency_ratio_threshold == 0.0 {
        g.latency_ratio_threshold = 1.10;
    }
    in_range(
        g.latency_ratio_threshold,
        1.0,
        100.0,
        &f("latencyRatioThreshold"),
        "at least 1",
    )?;
    if g.relative_latency_quantiles.len() > 5 {
        return Err(invalid(&f("relativeLatencyQuantiles"), "at most 5"));
    }
    for (i, q) in g.relative_latency_quantiles.iter().enumerate() {
        let field = f(&format!("relativeLatencyQuantiles[{i}]"));
        if !(q.is_finite() && *q > 0.0 && *q < 1.0) {
            return Err(invalid(&field, "must be in (0, 1)"));
        }
    }
    in_range(g.max_error_rate, 0.0, 1.0, &f("maxErrorRate"), "in [0, 1]")?;
    in_range(
        g.min_success_rate,
        0.0,
        1.0,
        &f("minSuccessRate"),
        "in [0, 1]",
    )?;
    in_range(g.max_p95_ms, 0.0, 3.6e6, &f("maxP95Ms"), "0 to 3600000")?;
    in_range(g.max_p99_ms, 0.0, 3.6e6, &f("maxP99Ms"), "0 to 3600000")?;
    in_range(
        g.error_rate_margin,
        0.0,
        1.0,
        &f("errorRateMargin"),
        "in [0, 1]",
    )?;
    if g.non_inferiority_margin == 0.0 {
        g.non_inferiority_margin = 0.005;
    }
    in_range(
        g.non_inferiority_margin,
        0.0,
        1.0,
        &f("nonInferiorityMargin"),
        "in (0, 1]",
    )?;
    if g.critical_error_ratio == 0.0 {
        g.critical_error_ratio = 3.0;
    }
    in_range(
        g.critical_error_ratio,
        1.0,
        1e6,
        &f("criticalErrorRatio"),
        "more than 1",
    )?;
    Ok(g)
}

fn normalise_policy(p: Option<RolloutPolicy>) -> Result<RolloutPolicy> {
    let mut p = p.unwrap_or_default();
    let window = millis(p.window.as_ref(), "rollout.policy.window")?;
    let window = if window == 0 { 10_000 } else { window };
    if !(1_000..=3_600_000).contains(&window) {
        return Err(invalid("rollout.policy.window", "must be 1 s to 1 h"));
    }
    p.window = Some(duration(window));
    millis(
        p.missing_data_grace.as_ref(),
        "rollout.policy.missingDataGrace",
    )?;
    if MaxDurationPolicy::try_from(p.max_duration_policy).is_err() {
        return Err(invalid("rollout.policy.maxDurationPolicy", "unknown value"));
    }
    Ok(p)
}

/// Checks a new rollout against the catalog and returns it with its defaults filled in.
pub fn normalise(state: &State, r: Rollout) -> Result<Rollout> {
    if r.flag_key.is_empty() {
        return Err(invalid("rollout.flagKey", "required"));
    }
    let flag = state
        .flags
        .get(&r.flag_key)
        .filter(|f| !f.archived)
        .ok_or_else(|| Error::NotFound(format!("flag {:?}", r.flag_key)))?;
    if r.environment.is_empty() {
        return Err(invalid("rollout.environment", "required"));
    }
    if !state.envs.contains_key(&r.environment) {
        return Err(Error::NotFound(format!("environment {:?}", r.environment)));
    }
    for (field, v) in [
        ("rollout.treatmentVariant", &r.treatment_variant),
        ("rollout.baselineVariant", &r.baseline_variant),
    ] {
        if !flag.variants.iter().any(|x| &x.key == v) {
            return Err(invalid(
                field,
                format!("flag {:?} has no variant {v:?}", r.flag_key),
            ));
        }
    }
    if r.treatment_variant == r.baseline_variant {
        return Err(invalid(
            "rollout.baselineVariant",
            "must differ from treatmentVariant",
        ));
    }
    check_steps(&r.steps)?;
    let policy = normalise_policy(r.policy)?;
    if !policy.rollback_plan_id.is_empty() && !state.plans.contains_key(&policy.rollback_plan_id) {
        return Err(Error::NotFound(format!(
            "plan {:?}",
            policy.rollback_plan_id
        )));
    }
    let window = millis(policy.window.as_ref(), "rollout.policy.window")?.max(1);
    let steps = r
        .steps
        .into_iter()
        .map(|mut s| {
            let min = millis(s.min_duration.as_ref(), "").unwrap_or(0);
            let rounded = (min + window - 1) / window * window;
            s.min_duration = Some(duration(rounded));
            s
        })
        .collect();
    Ok(Rollout {
        guardrails: Some(normalise_guardrails(r.guardrails)?),
        policy: Some(policy),
        steps,
        ..r
    })
}

/// The judge's plan for a stored (normalised) rollout.
pub fn plan(r: &Rollout) -> Plan {
    let g = r.guardrails.clone().unwrap_or_default();
    let p = r.policy.clone().unwrap_or_default();
    let ms = |d: Option<&PbDuration>| millis(d, "").unwrap_or(0);
    Plan {
        steps: r
            .steps
            .iter()
            .map(|s| judge::Step {
                basis_points: s.basis_points,
                min_duration_ms: ms(s.min_duration.as_ref()),
                min_outcomes: s.min_outcomes_per_cohort,
                max_duration_ms: ms(s.max_duration.as_ref()),
                ..judge::Step::default()
            })
            .collect(),
        guardrails: judge::Guardrails {
            relative_error_rate: g.relative_error_rate,
            latency_quantiles: g.relative_latency_quantiles,
            latency_ratio: g.latency_ratio_threshold,
            max_error_rate: g.max_error_rate,
            min_success_rate: g.min_success_rate,
            max_p95_ms: g.max_p95_ms,
            max_p99_ms: g.max_p99_ms,
            alpha: g.alpha,
            error_rate_margin: g.error_rate_margin,
            non_inferiority_margin: g.non_inferiority_margin,
            critical_error_ratio: g.critical_error_ratio,
        },
        policy: judge::Policy {
            max_duration: match MaxDurationPolicy::try_from(p.max_duration_policy) {
                Ok(MaxDurationPolicy::Hold) => MaxDuration::Hold,
                _ => MaxDuration::Promote,
            },
            pause_for_human: p.pause_for_human,
            missing_data_grace_ms: ms(p.missing_data_grace.as_ref()),
            window_ms: ms(p.window.as_ref()).max(1_000),
        },
    }
}
