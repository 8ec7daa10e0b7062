//! Checking a release definition against the catalog, filling in its defaults, and turning it
//! into the judge's [`Plan`]. Stage minimum durations are rounded up to whole windows (see
//! [`round_to_window`]).

use super::gates;
use super::limits::{
    check_stage_guardrails, invalid, millis, normalise_guardrails, normalise_policy,
    round_to_window,
};
use crate::catalog::State;
use crate::error::{Error, Result};
use flagwire_core::judge::{self, Limits, MaxDuration, Plan};
use flagwire_core::release::{Audience, EVERYONE, wire};
use flagwire_proto::v1::{Guardrails, MaxDurationPolicy, Release, Stage};
use std::collections::BTreeSet;

/// The most flags a release may move.
pub const MAX_FLAGS: usize = 20;
/// The most stages a release may have.
pub const MAX_STAGES: usize = 20;

fn check_flags(state: &State, r: &Release) -> Result<()> {
    if r.flags.is_empty() || r.flags.len() > MAX_FLAGS {
        return Err(invalid(
            "release.flags",
            format!("needs 1 to {MAX_FLAGS} flags"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in r.flags.iter().enumerate() {
        let field = |name: &str| format!("release.flags[{i}].{name}");
        if f.flag_key.is_empty() {
            return Err(invalid(&field("flagKey"), "required"));
        }
        if !seen.insert(f.flag_key.as_str()) {
            return Err(invalid(&field("flagKey"), "named twice"));
        }
        let flag = state
            .flags
            .get(&f.flag_key)
            .filter(|f| !f.archived)
            .ok_or_else(|| Error::NotFound(format!("flag {:?}", f.flag_key)))?;
        if !flag.variants.iter().any(|v| v.key == f.baseline_variant) {
            return Err(invalid(
                &field("baselineVariant"),
                format!(
                    "flag {:?} has no variant {:?}",
                    f.flag_key, f.baseline_variant
                ),
            ));
        }
    }
    Ok(())
}

fn check_stage(state: &State, r: &Release, i: usize, s: &Stage) -> Result<()> {
    let field = |name: &str| format!("release.stages[{i}].{name}");
    match wire::audience_of(s.audience.as_ref()) {
        Audience::Share(bp) if bp == EVERYONE || (1..=EVERYONE / 2).contains(&bp) => {}
        Audience::Share(_) => {
            return Err(invalid(
                &field("audience.basisPoints"),
                "must be 1 to 5000 (the audience and control are equal), or 10000 for everyone",
            ));
        }
        Audience::Segment(seg) => {
            if !state
                .segments
                .contains_key(&(r.environment.clone(), seg.clone()))
            {
                return Err(invalid(
                    &field("audience.segment"),
                    format!("no segment {seg:?} in {:?}", r.environment),
                ));
            }
        }
        Audience::Everyone => {}
    }
    for (key, variant) in &s.variants {
        let field = field(&format!("variants[{key:?}]"));
        let Some(flag) = r.flags.iter().find(|f| &f.flag_key == key) else {
            return Err(invalid(&field, "not a flag of the release"));
        };
        let known = state
            .flags
            .get(&flag.flag_key)
            .is_some_and(|f| f.variants.iter().any(|v| &v.key == variant));
        if !known {
            return Err(invalid(
                &field,
                format!("flag {key:?} has no variant {variant:?}"),
            ));
        }
    }
    let min = millis(s.min_duration.as_ref(), &field("minDuration"))?;
    let max = millis(s.max_duration.as_ref(), &field("maxDuration"))?;
    if max != 0 && max < min {
        return Err(invalid(&field("maxDuration"), "shorter than minDuration"));
    }
    if MaxDurationPolicy::try_from(s.max_duration_policy).is_err() {
        return Err(invalid(&field("maxDurationPolicy"), "unknown value"));
    }
    if let Some(g) = &s.guardrails {
        check_stage_guardrails(g, &field("guardrails"))?;
    }
    Ok(())
}

/// Checks a new release against the catalog and returns it with its defaults filled in.
pub fn normalise(state: &State, r: Release) -> Result<Release> {
    if r.environment.is_empty() {
        return Err(invalid("release.environment", "required"));
    }
    if !state.envs.contains_key(&r.environment) {
        return Err(Error::NotFound(format!("environment {:?}", r.environment)));
    }
    if r.name.chars().count() > 200 {
        return Err(invalid("release.name", "at most 200 characters"));
    }
    check_flags(state, &r)?;
    if r.stages.is_empty() || r.stages.len() > MAX_STAGES {
        return Err(invalid(
            "release.stages",
            format!("needs 1 to {MAX_STAGES} stages"),
        ));
    }
    for (i, s) in r.stages.iter().enumerate() {
        check_stage(state, &r, i, s)?;
    }
    let policy = normalise_policy(r.policy, "release.policy")?;
    if !policy.rollback_plan_id.is_empty() && !state.plans.contains_key(&policy.rollback_plan_id) {
        return Err(Error::NotFound(format!(
            "plan {:?}",
            policy.rollback_plan_id
        )));
    }
    let window = millis(policy.window.as_ref(), "release.policy.window")?;
    let mut names = BTreeSet::new();
    let gates = gates::normalise(state, &r.environment, r.gates, "release.gates", &mut names)?;
    let relative = gates
        .iter()
        .chain(r.stages.iter().flat_map(|s| &s.gates))
        .any(|g| matches!(g.kind, Some(flagwire_proto::v1::gate::Kind::Relative(_))));
    let stages = r
        .stages
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let prefix = format!("release.stages[{i}].gates");
            let mut taken = names.clone();
            Ok(Stage {
                min_duration: Some(round_to_window(s.min_duration, window)),
                gates: gates::normalise(state, &r.environment, s.gates, &prefix, &mut taken)?,
                ..s
            })
        })
        .collect::<Result<_>>()?;
    Ok(Release {
        gates,
        guardrails: Some(normalise_guardrails(
            r.guardrails,
            "release.guardrails",
            relative,
        )?),
        policy: Some(policy),
        stages,
        ..r
    })
}

fn limits(g: &Guardrails) -> Limits {
    Limits {
        max_error_rate: g.max_error_rate,
        min_success_rate: g.min_success_rate,
        max_p95_ms: g.max_p95_ms,
        max_p99_ms: g.max_p99_ms,
    }
}

fn max_duration(p: i32) -> Option<MaxDuration> {
    match MaxDurationPolicy::try_from(p) {
        Ok(MaxDurationPolicy::Hold) => Some(MaxDuration::Hold),
        Ok(MaxDurationPolicy::Promote) => Some(MaxDuration::Promote),
        _ => None,
    }
}

/// The judge's plan for a stored (normalised) release: one step per stage, with the metric
/// gates read against the definitions in `state`.
pub fn plan(state: &State, r: &Release) -> Plan {
    let g = r.guardrails.clone().unwrap_or_default();
    let p = r.policy.clone().unwrap_or_default();
    let ms = |d: Option<&prost_types::Duration>| millis(d, "").unwrap_or(0);
    Plan {
        steps: r
            .stages
            .iter()
            .map(|s| {
                let audience = wire::audience_of(s.audience.as_ref());
                judge::Step {
                    basis_points: match audience {
                        Audience::Share(bp) => bp,
                        _ => EVERYONE,
                    },
                    min_duration_ms: ms(s.min_duration.as_ref()),
                    min_outcomes: s.min_outcomes_per_cohort,
                    max_duration_ms: ms(s.max_duration.as_ref()),
                    no_control: !audience.controlled(),
                    limits: s.guardrails.as_ref().map(limits).unwrap_or_default(),
                    max_duration_policy: max_duration(s.max_duration_policy),
                    gates: gates::to_judge(state, &r.environment, &s.gates),
                }
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
            max_duration: max_duration(p.max_duration_policy).unwrap_or_default(),
            pause_for_human: p.pause_for_human,
            missing_data_grace_ms: ms(p.missing_data_grace.as_ref()),
            window_ms: ms(p.window.as_ref()).max(1_000),
        },
        gates: gates::to_judge(state, &r.environment, &r.gates),
    }
}
