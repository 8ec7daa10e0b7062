//! Planning an import: the bundle's shape checked, every object compared with the stored one,
//! and the catalog as it will be validated as a whole (references between objects of the bundle
//! resolve against the bundle itself), before [`super::import`] writes anything.

use super::{VERSION, definition};
use crate::catalog::State;
use crate::error::{Error, Result};
use flagwire_core::validate::{FieldError, validate_flag, validate_key, validate_segment};
use flagwire_proto::v1::{Bundle, Environment, Flag, RollbackPlan, Segment};
use prost_types::Timestamp;
use std::collections::HashSet;

/// One change an import makes.
pub(super) enum Step {
    Env(Option<Environment>, Environment),
    Flag(Option<Flag>, Flag),
    DeleteFlag(Flag),
    Segment(Option<Segment>, Segment),
    DeleteSegment(Segment),
    Release(Box<super::releases::Planned>),
    Plan(Box<RollbackPlan>),
    Metric(Box<super::metrics::Planned>),
}

/// What an import will change, worked out before anything is written.
pub(super) struct Plan {
    pub(super) steps: Vec<Step>,
    pub(super) unchanged: u32,
    // The catalog as it will be; changes are announced against it, so an environment the
    // bundle creates gets change-log entries for the flags it brings along.
    pub(super) next: State,
}

fn duplicate(field: String, what: &str, key: &str) -> Error {
    Error::invalid(field, format!("duplicate {what} {key:?}"))
}

/// Checks what needs no stored state: the format version, keys, and duplicates.
pub(super) fn check_shape(b: &Bundle) -> Result<()> {
    if b.version != VERSION {
        return Err(Error::invalid(
            "version",
            format!("must be {VERSION} (the bundle format this server reads)"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, e) in b.environments.iter().enumerate() {
        validate_key(&format!("environments[{i}].key"), &e.key)?;
        if !seen.insert(e.key.as_str()) {
            return Err(duplicate(
                format!("environments[{i}].key"),
                "environment",
                &e.key,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, f) in b.flags.iter().enumerate() {
        validate_key(&format!("flags[{i}].key"), &f.key)?;
        if !seen.insert(f.key.as_str()) {
            return Err(duplicate(format!("flags[{i}].key"), "flag", &f.key));
        }
    }
    let mut seen = HashSet::new();
    for (i, s) in b.segments.iter().enumerate() {
        validate_key(&format!("segments[{i}].key"), &s.key)?;
        if !seen.insert((s.environment.as_str(), s.key.as_str())) {
            return Err(duplicate(format!("segments[{i}].key"), "segment", &s.key));
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in b.rollouts.iter().enumerate() {
        validate_key(&format!("rollouts[{i}].id"), &r.id)
            .map_err(|e| reason(e, "rollouts keep their id across export and import"))?;
        if !seen.insert(r.id.as_str()) {
            return Err(duplicate(format!("rollouts[{i}].id"), "rollout", &r.id));
        }
    }
    for (i, r) in b.releases.iter().enumerate() {
        validate_key(&format!("releases[{i}].id"), &r.id)
            .map_err(|e| reason(e, "releases keep their id across export and import"))?;
        if !seen.insert(r.id.as_str()) {
            return Err(duplicate(format!("releases[{i}].id"), "release", &r.id));
        }
    }
    let (mut ids, mut names) = (HashSet::new(), HashSet::new());
    for (i, p) in b.rollback_plans.iter().enumerate() {
        validate_key(&format!("rollbackPlans[{i}].id"), &p.id)
            .map_err(|e| reason(e, "plans keep their id across export and import"))?;
        if !ids.insert(p.id.as_str()) {
            return Err(duplicate(format!("rollbackPlans[{i}].id"), "plan", &p.id));
        }
        if !names.insert(p.name.as_str()) {
            return Err(duplicate(
                format!("rollbackPlans[{i}].name"),
                "plan name",
                &p.name,
            ));
        }
    }
    Ok(())
}

fn reason(e: FieldError, more: &str) -> FieldError {
    FieldError {
        reason: format!("{} ({more})", e.reason),
        ..e
    }
}

/// Rewrites a validation error about `flag.…` or `rollout.…` into the bundle's path
/// (`flags[3].…`), naming the object's key.
pub(super) fn locate(
    e: FieldError,
    singular: &str,
    plural: &str,
    index: usize,
    key: &str,
) -> Error {
    let rest = e.field.strip_prefix(singular).unwrap_or(&e.field);
    Error::Invalid(FieldError {
        field: format!("{plural}[{index}]{rest}"),
        reason: format!("{} ({singular} {key:?})", e.reason),
    })
}

pub(super) fn plan(
    state: &State,
    bundle: &Bundle,
    prune: bool,
    now: Timestamp,
    last_version: &dyn Fn(&str) -> Result<u64>,
) -> Result<Plan> {
    let mut next = state.clone();
    let mut plan = Plan {
        steps: Vec::new(),
        unchanged: 0,
        next: State::default(),
    };
    for e in &bundle.environments {
        let wanted = definition::environment(e);
        match next.envs.get(&e.key) {
            Some(old) if definition::environment(old) == wanted => plan.unchanged += 1,
            old => {
                let after = Environment {
                    revision: old.map_or(0, |o| o.revision),
                    create_time: Some(old.and_then(|o| o.create_time).unwrap_or(now)),
                    ..wanted
                };
                plan.steps.push(Step::Env(old.cloned(), after.clone()));
                next.envs.insert(after.key.clone(), after);
            }
        }
    }
    let mut segment_steps = Vec::new();
    for (i, s) in bundle.segments.iter().enumerate() {
        let id = (s.environment.clone(), s.key.clone());
        let wanted = definition::segment(s);
        match next.segments.get(&id) {
            Some(old) if definition::segment(old) == wanted => plan.unchanged += 1,
            old => {
                let after = Segment {
                    version: old.map_or(0, |o| o.version) + 1,
                    update_time: Some(now),
                    ..wanted
                };
                segment_steps.push((i, old.cloned(), after.clone()));
                next.segments.insert(id, after);
            }
        }
    }
    let mut flag_steps = Vec::new();
    for (i, f) in bundle.flags.iter().enumerate() {
        let wanted = definition::flag(f);
        match next.flags.get(&f.key) {
            Some(old) if definition::flag(old) == wanted => plan.unchanged += 1,
            old => {
                let after = Flag {
                    version: match old {
                        Some(o) => o.version + 1,
                        None => last_version(&f.key)? + 1,
                    },
                    create_time: Some(old.and_then(|o| o.create_time).unwrap_or(now)),
                    update_time: Some(now),
                    ..wanted
                };
                flag_steps.push((i, old.cloned(), after.clone()));
                next.flags.insert(after.key.clone(), after);
            }
        }
    }
    let mut deletions = Vec::new();
    if prune {
        let named: HashSet<&str> = bundle.flags.iter().map(|f| f.key.as_str()).collect();
        for f in state
            .flags
            .values()
            .filter(|f| !named.contains(f.key.as_str()))
        {
            next.flags.remove(&f.key);
            deletions.push(Step::DeleteFlag(f.clone()));
        }
        let named: HashSet<(&str, &str)> = bundle
            .segments
            .iter()
            .map(|s| (s.environment.as_str(), s.key.as_str()))
            .collect();
        for s in state.segments.values() {
            if !named.contains(&(s.environment.as_str(), s.key.as_str())) {
                next.segments
                    .remove(&(s.environment.clone(), s.key.clone()));
                deletions.push(Step::DeleteSegment(s.clone()));
            }
        }
    }
    // Validate against the state after the import, so objects may refer to each other in any
    // order within the bundle.
    for (i, _, s) in &segment_steps {
        validate_segment(s, &next).map_err(|e| locate(e, "segment", "segments", *i, &s.key))?;
    }
    for (i, _, f) in &flag_steps {
        validate_flag(f, &next).map_err(|e| locate(e, "flag", "flags", *i, &f.key))?;
    }
    if !deletions.is_empty() {
        // A kept flag may name a pruned segment or prerequisite, a kept plan a pruned flag.
        for f in next.flags.values() {
            validate_flag(f, &next).map_err(|e| {
                Error::FailedPrecondition(format!(
                    "prune would leave flag {:?} invalid: {e}",
                    f.key
                ))
            })?;
        }
        for p in next.plans.values() {
            for (j, step) in p.steps.iter().enumerate() {
                let field = format!("steps[{j}]");
                crate::manager::actions::check(&next, step, &field).map_err(|e| {
                    Error::FailedPrecondition(format!(
                        "prune would leave rollback plan {:?} invalid: {e}",
                        p.id
                    ))
                })?;
            }
        }
    }
    // Rollouts may name a plan of the bundle and plans may abort a rollout of it: store the
    // plans, check the rollouts, then the plans' steps.
    let plans = place_plans(&mut next, bundle, &mut plan.unchanged)?;
    let metrics = super::metrics::plan(&mut next, bundle, &mut plan.unchanged)?;
    let releases = super::releases::plan(&mut next, bundle, now, &mut plan.unchanged)?;
    check_plans(&next, bundle, &plans)?;
    plan.steps.extend(
        segment_steps
            .into_iter()
            .map(|(_, old, s)| Step::Segment(old, s)),
    );
    plan.steps
        .extend(flag_steps.into_iter().map(|(_, old, f)| Step::Flag(old, f)));
    plan.steps.extend(deletions);
    plan.steps.extend(
        plans
            .iter()
            .map(|&i| Step::Plan(Box::new(bundle.rollback_plans[i].clone()))),
    );
    plan.steps
        .extend(metrics.into_iter().map(|m| Step::Metric(Box::new(m))));
    plan.steps
        .extend(releases.into_iter().map(|r| Step::Release(Box::new(r))));
    plan.next = next;
    Ok(plan)
}

/// Puts the bundle's new plans into `next`; answers their indexes. A plan has no server-managed
/// field, so "unchanged" is plain equality; an existing plan is never changed (there is no
/// UpdateRollbackPlan either).
fn place_plans(next: &mut State, bundle: &Bundle, unchanged: &mut u32) -> Result<Vec<usize>> {
    let mut created = Vec::new();
    for (i, p) in bundle.rollback_plans.iter().enumerate() {
        match next.plans.get(&p.id) {
            Some(stored) if stored == p => *unchanged += 1,
            Some(_) => {
                return Err(Error::FailedPrecondition(format!(
                    "rollbackPlans[{i}]: plan {:?} exists with another definition; an import \
                     cannot change a plan (give the new definition another id)",
                    p.id
                )));
            }
            None => {
                if p.name.trim().is_empty() {
                    return Err(Error::invalid(
                        format!("rollbackPlans[{i}].name"),
                        "required",
                    ));
                }
                if let Some(other) = next.plans.values().find(|o| o.name == p.name) {
                    return Err(Error::invalid(
                        format!("rollbackPlans[{i}].name"),
                        format!("plan {:?} already has the name {:?}", other.id, p.name),
                    ));
                }
                next.plans.insert(p.id.clone(), p.clone());
                created.push(i);
            }
        }
    }
    Ok(created)
}

/// Checks the steps of the new plans as CreateRollbackPlan does, against the catalog as it
/// will be.
fn check_plans(next: &State, bundle: &Bundle, created: &[usize]) -> Result<()> {
    use crate::manager::plans::MAX_STEPS;
    for &i in created {
        let p = &bundle.rollback_plans[i];
        if p.steps.is_empty() || p.steps.len() > MAX_STEPS {
            return Err(Error::invalid(
                format!("rollbackPlans[{i}].steps"),
                format!("needs 1 to {MAX_STEPS} steps"),
            ));
        }
        for (j, step) in p.steps.iter().enumerate() {
            let field = format!("rollbackPlans[{i}].steps[{j}]");
            crate::manager::actions::check(next, step, &field).map_err(|e| match e {
                Error::NotFound(what) => Error::invalid(field, format!("unknown {what}")),
                other => other,
            })?;
        }
    }
    Ok(())
}
