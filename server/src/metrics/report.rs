//! Validation of a `ReportRequest` as a whole, against the catalog, before anything is merged.
//!
//! A report is accepted or rejected entire: one bad series rejects the report, with the field
//! path of the first problem in protobuf JSON form (`series[2].latencyUs.scale`), so an SDK with
//! a bug finds out at once instead of silently skewing a canary's numbers. A report with no
//! series and no window is valid: SDKs send those to say which revision they have applied.

use super::cohorts::ValidCohortOutcome;
use super::custom::ValidMetric;
use super::usage::Aggregate;
use crate::catalog::State;
use crate::error::{Error, Result};
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::{ReportRequest, Series};
use std::time::{Duration, SystemTime};

/// How far in the future a window may end: SDK clocks drift, but not by this much.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Longest accepted SDK name, SDK version, cohort or rollout id.
const MAX_LABEL: usize = 128;

/// The reasons a `ReasonCount` may name (`flagwire.v1.Reason` without its prefix).
const REASONS: &[&str] = &[
    "STATIC",
    "TARGETING_MATCH",
    "SPLIT",
    "DISABLED",
    "PREREQUISITE_FAILED",
    "ERROR",
];

/// One series of a valid report.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSeries {
    /// The flag (exists).
    pub flag_key: String,
    /// A variant of the flag, or empty for evaluations that ended in an error.
    pub variant: String,
    /// The split label, if any.
    pub cohort: String,
    /// The rollout the SDK attributed it to, if any.
    pub rollout_id: String,
    /// What it adds.
    pub aggregate: Aggregate,
}

/// A report that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidReport {
    /// The environment it is for.
    pub environment: String,
    /// The instance id, as a lowercase hyphenated UUID.
    pub instance_id: String,
    /// The instance's report number.
    pub sequence: u64,
    /// SDK name.
    pub sdk_name: String,
    /// SDK version.
    pub sdk_version: String,
    /// The revision the instance has applied (at most the environment's revision).
    pub applied_revision: u64,
    /// The window's start and end; `None` for a report without series and window.
    pub window: Option<(SystemTime, SystemTime)>,
    /// The series, in request order.
    pub series: Vec<ValidSeries>,
    /// Series the SDK dropped since its last successful report.
    pub dropped_series: u64,
    /// Outcomes per release cohort, in request order.
    pub cohort_outcomes: Vec<ValidCohortOutcome>,
    /// The team's own metrics of release cohorts (per-flag ones are in their `series`).
    pub cohort_metrics: Vec<ValidMetric>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::invalid(field, reason)
}

fn label(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_LABEL {
        return Err(invalid(
            field,
            format!("longer than {MAX_LABEL} characters"),
        ));
    }
    Ok(())
}

fn time(field: &str, ts: &prost_types::Timestamp) -> Result<SystemTime> {
    SystemTime::try_from(*ts).map_err(|_| invalid(field, "not a valid timestamp"))
}

/// The instance id as a lowercase hyphenated UUID; `field` names it in errors.
pub fn instance_id(field: &str, id: &str) -> Result<String> {
    let uuid =
        uuid::Uuid::try_parse(id).map_err(|_| invalid(field, format!("{id:?} is not a UUID")))?;
    if uuid.is_nil() {
        return Err(invalid(field, "must not be the nil UUID"));
    }
    Ok(uuid.hyphenated().to_string())
}

fn window(r: &ReportRequest, now: SystemTime) -> Result<Option<(SystemTime, SystemTime)>> {
    let (start, end) = match (&r.window_start, &r.window_end) {
        (None, None)
            if r.series.is_empty() && r.cohort_outcomes.is_empty() && r.metrics.is_empty() =>
        {
            return Ok(None);
        }
        (None, _) => return Err(invalid("windowStart", "required")),
        (_, None) => return Err(invalid("windowEnd", "required")),
        (Some(s), Some(e)) => (time("windowStart", s)?, time("windowEnd", e)?),
    };
    if end < start {
        return Err(invalid("windowEnd", "before windowStart"));
    }
    if end > now + MAX_CLOCK_SKEW {
        return Err(invalid(
            "windowEnd",
            format!(
                "more than {} s in the future (is the SDK's clock right?)",
                MAX_CLOCK_SKEW.as_secs()
            ),
        ));
    }
    Ok(Some((start, end)))
}

fn series(state: &State, i: usize, s: Series) -> Result<ValidSeries> {
    let at = |field: &str| format!("series[{i}].{field}");
    let flag = state
        .flags
        .get(&s.flag_key)
        .ok_or_else(|| invalid(at("flagKey"), format!("unknown flag {:?}", s.flag_key)))?;
    let mut evaluations = 0u64;
    for (j, rc) in s.evaluations.iter().enumerate() {
        // Field names are built only on failure: this loop runs for every series of every report.
        let field = || at(&format!("evaluations[{j}].reason"));
        if !REASONS.contains(&rc.reason.as_str()) {
            return Err(invalid(field(), format!("unknown reason {:?}", rc.reason)));
        }
        if s.variant.is_empty() && rc.reason != "ERROR" && rc.count > 0 {
            return Err(invalid(
                field(),
                format!(
                    "{} evaluations serve a variant, but variant is empty",
                    rc.reason
                ),
            ));
        }
        evaluations = evaluations.checked_add(rc.count).ok_or_else(|| {
            invalid(
                at(&format!("evaluations[{j}].count")),
                "the counts overflow",
            )
        })?;
    }
    if !s.variant.is_empty() && !flag.variants.iter().any(|v| v.key == s.variant) {
        return Err(invalid(
            at("variant"),
            format!("flag {:?} has no variant {:?}", s.flag_key, s.variant),
        ));
    }
    if s.cohort.len() > MAX_LABEL || s.rollout_id.len() > MAX_LABEL {
        label(&at("cohort"), &s.cohort)?;
        label(&at("rolloutId"), &s.rollout_id)?;
    }
    let outcomes = s
        .successes
        .checked_add(s.errors)
        .ok_or_else(|| invalid(at("errors"), "successes plus errors overflows"))?;
    let latency = match &s.latency_us {
        None => Histogram::new(),
        Some(h) => {
            let latency = Histogram::from_proto(h)
                .map_err(|e| invalid(at(&format!("latencyUs.{}", e.field)), e.reason))?;
            if outcomes != latency.count() {
                return Err(invalid(
                    at("successes"),
                    format!(
                        "successes ({}) plus errors ({}) must equal latencyUs.count ({})",
                        s.successes,
                        s.errors,
                        latency.count()
                    ),
                ));
            }
            latency
        }
    };
    // Moved out of the request, not copied: ingestion runs for every series of every report.
    Ok(ValidSeries {
        flag_key: s.flag_key,
        variant: s.variant,
        cohort: s.cohort,
        rollout_id: s.rollout_id,
        aggregate: Aggregate {
            evaluations,
            successes: s.successes,
            errors: s.errors,
            latency,
            metrics: Default::default(),
        },
    })
}

/// Puts each per-flag metric into the series of its (flag, variant, cohort, rollout id), or a
/// series of its own with no evaluations when the report has none (an event attributed to a
/// flag outside any request scope); answers the release cohorts' metrics apart.
fn attach(
    mut series: Vec<ValidSeries>,
    metrics: Vec<ValidMetric>,
) -> (Vec<ValidSeries>, Vec<ValidMetric>) {
    let mut cohorts = Vec::new();
    for m in metrics {
        if m.flag_key.is_empty() {
            cohorts.push(m);
            continue;
        }
        let same = |s: &ValidSeries| {
            s.flag_key == m.flag_key
                && s.variant == m.variant
                && s.cohort == m.cohort
                && s.rollout_id == m.rollout_id
        };
        let at = match series.iter().position(same) {
            Some(i) => i,
            None => {
                series.push(ValidSeries {
                    flag_key: m.flag_key.clone(),
                    variant: m.variant.clone(),
                    cohort: m.cohort.clone(),
                    rollout_id: m.rollout_id.clone(),
                    aggregate: Aggregate::default(),
                });
                series.len() - 1
            }
        };
        series[at]
            .aggregate
            .metrics
            .entry(m.name)
            .or_default()
            .add(&m.agg);
    }
    (series, cohorts)
}

/// Checks `r` for environment `env` (already authorised) against `state` at time `now`.
///
/// `NotFound` when the environment does not exist; otherwise `Invalid` naming the first bad
/// field: `instanceId` (not a UUID), `sdkName` / `sdkVersion` (too long), `appliedRevision`
/// (beyond the environment's revision), `windowStart` / `windowEnd` (missing while there are
/// series, reversed, or more than [`MAX_CLOCK_SKEW`] in the future), and per series an unknown
/// flag, variant or reason, a histogram that is not scale 3 or whose counts disagree, or
/// `successes + errors` different from the histogram's count.
pub fn validate(
    state: &State,
    env: &str,
    r: ReportRequest,
    now: SystemTime,
) -> Result<ValidReport> {
    let environment = state
        .envs
        .get(env)
        .ok_or_else(|| Error::NotFound(format!("environment {env:?}")))?;
    let id = instance_id("instanceId", &r.instance_id)?;
    label("sdkName", &r.sdk_name)?;
    label("sdkVersion", &r.sdk_version)?;
    if r.applied_revision > environment.revision {
        return Err(invalid(
            "appliedRevision",
            format!(
                "{} is beyond the environment's revision {}",
                r.applied_revision, environment.revision
            ),
        ));
    }
    let window = window(&r, now)?;
    let series = r
        .series
        .into_iter()
        .enumerate()
        .map(|(i, s)| series(state, i, s))
        .collect::<Result<Vec<_>>>()?;
    let cohort_outcomes = r
        .cohort_outcomes
        .into_iter()
        .enumerate()
        .map(|(i, c)| super::cohorts::validate(i, c))
        .collect::<Result<Vec<_>>>()?;
    let metrics = r
        .metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| super::custom::validate(state, i, m))
        .collect::<Result<Vec<_>>>()?;
    let (series, cohort_metrics) = attach(series, metrics);
    Ok(ValidReport {
        environment: env.to_owned(),
        instance_id: id,
        sequence: r.sequence,
        sdk_name: r.sdk_name,
        sdk_version: r.sdk_version,
        applied_revision: r.applied_revision,
        window,
        series,
        dropped_series: r.dropped_series,
        cohort_outcomes,
        cohort_metrics,
    })
}

#[cfg(test)]
mod tests;
