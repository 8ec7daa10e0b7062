//! The flag changes a rollback plan step or a scheduled change can make, each as part of one
//! catalog write: set the served variant, enable or disable, revert to a version, set a split's
//! weights. (Aborting a rollout and waiting are run by the caller: they are not flag writes.)
//!
//! Every action is idempotent in effect: applying it twice leaves the flag serving the same
//! thing (a second application still records a new version, like any write).

use crate::catalog::flags::commit_version;
use crate::catalog::owners::guard;
use crate::catalog::{Meta, State, Txn};
use crate::error::{Error, Result};
use flagwire_core::validate::validate_flag;
use flagwire_proto::v1::{
    Flag, FlagConfig, PlanStep, Serve, SetEnabledAction, SetVariantAction, SetWeightsAction, Split,
    SplitEntry, plan_step, serve,
};

/// The flag key a step changes, if it is a flag change.
pub fn flag_of(step: &PlanStep) -> Option<&str> {
    match step.action.as_ref()? {
        plan_step::Action::SetVariant(a) => Some(&a.flag_key),
        plan_step::Action::SetEnabled(a) => Some(&a.flag_key),
        plan_step::Action::Revert(a) => Some(&a.flag_key),
        plan_step::Action::SetWeights(a) => Some(&a.flag_key),
        plan_step::Action::AbortRolloutId(_) | plan_step::Action::Wait(_) => None,
    }
}

/// Checks a step's shape against the catalog (`field` prefixes error paths).
pub fn check(state: &State, step: &PlanStep, field: &str) -> Result<()> {
    let Some(action) = step.action.as_ref() else {
        return Err(Error::invalid(field, "needs exactly one action"));
    };
    let flag = |key: &str| -> Result<&Flag> {
        state
            .flags
            .get(key)
            .ok_or_else(|| Error::NotFound(format!("flag {key:?}")))
    };
    let env = |key: &str, name: &str| -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid(
                format!("{field}.{name}.environment"),
                "required",
            ));
        }
        if !state.envs.contains_key(key) {
            return Err(Error::NotFound(format!("environment {key:?}")));
        }
        Ok(())
    };
    match action {
        plan_step::Action::SetVariant(a) => {
            let f = flag(&a.flag_key)?;
            env(&a.environment, "setVariant")?;
            if !f.variants.iter().any(|v| v.key == a.variant) {
                return Err(Error::invalid(
                    format!("{field}.setVariant.variant"),
                    format!("flag {:?} has no variant {:?}", a.flag_key, a.variant),
                ));
            }
        }
        plan_step::Action::SetEnabled(a) => {
            flag(&a.flag_key)?;
            env(&a.environment, "setEnabled")?;
        }
        plan_step::Action::Revert(a) => {
            flag(&a.flag_key)?;
            if a.version == 0 {
                return Err(Error::invalid(
                    format!("{field}.revert.version"),
                    "required",
                ));
            }
        }
        plan_step::Action::SetWeights(a) => {
            let f = flag(&a.flag_key)?;
            env(&a.environment, "setWeights")?;
            if a.weights.is_empty() || a.weights.values().all(|w| *w == 0) {
                return Err(Error::invalid(
                    format!("{field}.setWeights.weights"),
                    "needs a positive weight",
                ));
            }
            for v in a.weights.keys() {
                if !f.variants.iter().any(|x| &x.key == v) {
                    return Err(Error::invalid(
                        format!("{field}.setWeights.weights"),
                        format!("flag {:?} has no variant {v:?}", a.flag_key),
                    ));
                }
            }
        }
        plan_step::Action::AbortRolloutId(id) => {
            if !state.releases.contains_key(id) {
                return Err(Error::NotFound(format!("release {id:?}")));
            }
        }
        plan_step::Action::Wait(d) => {
            if d.seconds < 0 || d.nanos < 0 || d.seconds > 86_400 {
                return Err(Error::invalid(format!("{field}.wait"), "must be 0 to 24 h"));
            }
        }
    }
    Ok(())
}

fn config<'a>(next: &'a mut Flag, before: &Flag, env: &str) -> &'a mut FlagConfig {
    next.environments
        .entry(env.to_owned())
        .or_insert_with(|| flagwire_core::project::default_config(before))
}

fn set_variant(next: &mut Flag, before: &Flag, a: &SetVariantAction) {
    config(next, before, &a.environment).default_rule = Some(Serve {
        kind: Some(serve::Kind::Variant(a.variant.clone())),
    });
}

fn set_enabled(next: &mut Flag, before: &Flag, a: &SetEnabledAction) {
    config(next, before, &a.environment).enabled = a.enabled;
}

fn set_weights(next: &mut Flag, before: &Flag, a: &SetWeightsAction) {
    let c = config(next, before, &a.environment);
    let weight = |v: &str| a.weights.get(v).copied().unwrap_or(0);
    let split = match c.default_rule.as_ref().and_then(|s| s.kind.as_ref()) {
        // An existing split keeps its order, salt and labels: only the weights move, so units
        // stay in their buckets.
        Some(serve::Kind::Split(s)) => Split {
            entries: s
                .entries
                .iter()
                .map(|e| SplitEntry {
                    weight: weight(&e.variant),
                    ..e.clone()
                })
                .collect(),
            ..s.clone()
        },
        _ => Split {
            entries: before
                .variants
                .iter()
                .filter(|v| a.weights.contains_key(&v.key))
                .map(|v| SplitEntry {
                    variant: v.key.clone(),
                    weight: weight(&v.key),
                    label: String::new(),
                })
                .collect(),
            ..Split::default()
        },
    };
    c.default_rule = Some(Serve {
        kind: Some(serve::Kind::Split(split)),
    });
}

/// Applies a flag-changing step in `txn`; returns a detail for the execution log. Abort and
/// wait steps are refused here (the caller runs them). A step that changes what a flag under
/// an active release or ramp serves is refused unless `force` (see `catalog::owners`).
pub fn apply(
    state: &State,
    txn: &mut Txn,
    meta: &Meta,
    step: &PlanStep,
    old: Option<Flag>,
    force: bool,
) -> Result<String> {
    let key = flag_of(step).ok_or_else(|| Error::invalid("step", "not a flag change"))?;
    let before = state
        .flags
        .get(key)
        .ok_or_else(|| Error::NotFound(format!("flag {key:?}")))?;
    let mut next = before.clone();
    let (action, detail) = match step.action.as_ref() {
        Some(plan_step::Action::SetVariant(a)) => {
            set_variant(&mut next, before, a);
            (
                "flag.set_variant",
                format!("{key} serves {} in {}", a.variant, a.environment),
            )
        }
        Some(plan_step::Action::SetEnabled(a)) => {
            set_enabled(&mut next, before, a);
            let verb = if a.enabled { "enabled" } else { "disabled" };
            (
                "flag.set_enabled",
                format!("{key} {verb} in {}", a.environment),
            )
        }
        Some(plan_step::Action::SetWeights(a)) => {
            set_weights(&mut next, before, a);
            (
                "flag.set_weights",
                format!("{key} weights {:?} in {}", a.weights, a.environment),
            )
        }
        Some(plan_step::Action::Revert(a)) => {
            let old =
                old.ok_or_else(|| Error::NotFound(format!("flag {key:?} version {}", a.version)))?;
            next = Flag {
                archived: before.archived,
                ..old
            };
            (
                "flag.revert",
                format!("{key} reverted to version {}", a.version),
            )
        }
        _ => return Err(Error::invalid("step", "not a flag change")),
    };
    validate_flag(&next, state)?;
    guard(state, txn, meta, before, Some(&next), force)?;
    let flag = commit_version(state, txn, before, next, action);
    Ok(format!("{detail} (version {})", flag.version))
}
