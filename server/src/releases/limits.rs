//! Checking the parts releases and rollouts share: durations, guardrails and policy, with
//! their defaults (written into the stored record, so a Get shows what applies): no
//! `guardrails` at all means the error rate and p50/p95/p99 tested against control; `alpha`
//! 0.03 (calibrated in `tests/sim`), `latencyRatioThreshold` 1.10, `nonInferiorityMargin`
//! 0.005, `criticalErrorRatio` 3; `policy.window` 10 s.

use crate::error::{Error, Result};
use flagwire_proto::v1::{Guardrails, MaxDurationPolicy, RolloutPolicy};
use prost_types::Duration as PbDuration;

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Error {
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

fn in_range(v: f64, lo: f64, hi: f64, field: &str, what: &str) -> Result<()> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(invalid(field, format!("must be {what}")))
    }
}

/// `g` with its defaults filled in, checked; `prefix` is its field path (`release.guardrails`).
/// `gated`: the release has relative gates, whose default `alpha` is lower (see
/// `flagwire_core::judge::GATED_ALPHA`).
pub fn normalise_guardrails(
    g: Option<Guardrails>,
    prefix: &str,
    gated: bool,
) -> Result<Guardrails> {
    let mut g = g.unwrap_or(Guardrails {
        relative_error_rate: true,
        relative_latency_quantiles: vec![0.5, 0.95, 0.99],
        ..Guardrails::default()
    });
    let f = |name: &str| format!("{prefix}.{name}");
    if g.alpha == 0.0 {
        g.alpha = if gated {
            flagwire_core::judge::GATED_ALPHA
        } else {
            flagwire_core::judge::Guardrails::default().alpha
        };
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

/// `p` with its defaults filled in, checked; `prefix` is its field path (`release.policy`).
pub fn normalise_policy(p: Option<RolloutPolicy>, prefix: &str) -> Result<RolloutPolicy> {
    let mut p = p.unwrap_or_default();
    let window = millis(p.window.as_ref(), &format!("{prefix}.window"))?;
    let window = if window == 0 { 10_000 } else { window };
    if !(1_000..=3_600_000).contains(&window) {
        return Err(invalid(&format!("{prefix}.window"), "must be 1 s to 1 h"));
    }
    p.window = Some(duration(window));
    millis(
        p.missing_data_grace.as_ref(),
        &format!("{prefix}.missingDataGrace"),
    )?;
    if MaxDurationPolicy::try_from(p.max_duration_policy).is_err() {
        return Err(invalid(
            &format!("{prefix}.maxDurationPolicy"),
            "unknown value",
        ));
    }
    Ok(p)
}

/// Checks a stage's own guardrails: only the absolute limits may be set there (the relative
/// tests and their level belong to the whole release).
pub fn check_stage_guardrails(g: &Guardrails, prefix: &str) -> Result<()> {
    let relative = g.relative_error_rate
        || !g.relative_latency_quantiles.is_empty()
        || g.latency_ratio_threshold != 0.0
        || g.alpha != 0.0
        || g.error_rate_margin != 0.0
        || g.non_inferiority_margin != 0.0
        || g.critical_error_ratio != 0.0;
    if relative {
        return Err(invalid(
            prefix,
            "a stage may set only absolute limits (maxErrorRate, minSuccessRate, maxP95Ms, \
             maxP99Ms); relative tests are set on the release",
        ));
    }
    let f = |name: &str| format!("{prefix}.{name}");
    in_range(g.max_error_rate, 0.0, 1.0, &f("maxErrorRate"), "in [0, 1]")?;
    in_range(
        g.min_success_rate,
        0.0,
        1.0,
        &f("minSuccessRate"),
        "in [0, 1]",
    )?;
    in_range(g.max_p95_ms, 0.0, 3.6e6, &f("maxP95Ms"), "0 to 3600000")?;
    in_range(g.max_p99_ms, 0.0, 3.6e6, &f("maxP99Ms"), "0 to 3600000")
}

/// `ms` rounded up to whole windows: the judge decides only at window closes, so a healthy
/// release then reaches its last stage at exactly the sum of its minimums.
pub fn round_to_window(d: Option<PbDuration>, window_ms: i64) -> PbDuration {
    let min = millis(d.as_ref(), "").unwrap_or(0);
    let w = window_ms.max(1);
    duration((min + w - 1) / w * w)
}
