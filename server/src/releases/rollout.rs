//! The single-flag rollout API as a view of releases: a rollout is checked in its own terms
//! (`rollout.steps[1].basisPoints`, ...) and stored as the one-flag release it is; reads show
//! a release that a rollout can express as that rollout.

use super::limits::{invalid, millis, normalise_guardrails, normalise_policy, round_to_window};
use crate::catalog::State;
use crate::error::{Error, Result};
use flagwire_core::release::{EVERYONE as FULL, wire};
use flagwire_proto::v1::{Release, Rollout, RolloutStep};

/// The most steps a rollout may have.
pub const MAX_STEPS: usize = 20;

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

/// Checks a new rollout against the catalog (field paths in its own terms, `rollout.*`) and
/// returns the one-flag release it is, with its defaults filled in.
pub fn normalise(state: &State, r: Rollout) -> Result<Release> {
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
    let policy = normalise_policy(r.policy, "rollout.policy")?;
    if !policy.rollback_plan_id.is_empty() && !state.plans.contains_key(&policy.rollback_plan_id) {
        return Err(Error::NotFound(format!(
            "plan {:?}",
            policy.rollback_plan_id
        )));
    }
    let window = millis(policy.window.as_ref(), "rollout.policy.window")?;
    let guardrails = Some(normalise_guardrails(
        r.guardrails,
        "rollout.guardrails",
        false,
    )?);
    let mut release = wire::from_rollout(&Rollout {
        guardrails,
        policy: Some(policy),
        ..r
    });
    for s in &mut release.stages {
        s.min_duration = Some(round_to_window(s.min_duration, window));
    }
    Ok(release)
}
