//! Time-based gradual rollouts: a variant's weight moves from `from` to `to` in equal steps over
//! a duration. The server performs every step as an ordinary flag change at its time (SDKs
//! never rely on their own clocks); the split keeps one salt and the ramped variant first, so a
//! unit that got the variant keeps it as the weight grows. Pausing holds the weight; rolling
//! back serves the other variant to everyone, like a rollout's rollback.

use super::{Manager, new_id};
use crate::catalog::flags::commit_version;
use crate::catalog::owners::ramp_active;
use crate::catalog::{Meta, State, Txn};
use crate::error::{Error, Result};
use crate::releases::limits::millis;
use flagwire_proto::v1::{Ramp, RampState, Serve, Split, SplitEntry, serve};
use std::time::{Duration, SystemTime};

const FULL: u32 = 10_000;
/// Steps when the request leaves `steps` at 0.
pub const DEFAULT_STEPS: u32 = 10;

fn state_of(r: &Ramp) -> RampState {
    RampState::try_from(r.state).unwrap_or(RampState::Unspecified)
}

/// The time between two steps.
pub fn interval(r: &Ramp) -> Duration {
    let ms = millis(r.duration.as_ref(), "").unwrap_or(0).max(0) as u64;
    Duration::from_millis(ms / u64::from(r.steps.max(1)))
}

/// When the next step is due, if the ramp is running.
pub fn due_at(r: &Ramp) -> Option<SystemTime> {
    (state_of(r) == RampState::Running)
        .then_some(r.next_step_time)
        .flatten()
        .and_then(|t| SystemTime::try_from(t).ok())
}

fn check(state: &State, r: &Ramp) -> Result<()> {
    let flag = state
        .flags
        .get(&r.flag_key)
        .filter(|f| !f.archived)
        .ok_or_else(|| Error::NotFound(format!("flag {:?}", r.flag_key)))?;
    if !state.envs.contains_key(&r.environment) {
        return Err(Error::NotFound(format!("environment {:?}", r.environment)));
    }
    for (field, v) in [
        ("ramp.variant", &r.variant),
        ("ramp.otherVariant", &r.other_variant),
    ] {
        if !flag.variants.iter().any(|x| &x.key == v) {
            return Err(Error::invalid(
                field,
                format!("flag {:?} has no variant {v:?}", r.flag_key),
            ));
        }
    }
    if r.variant == r.other_variant {
        return Err(Error::invalid(
            "ramp.otherVariant",
            "must differ from variant",
        ));
    }
    for (field, bp) in [
        ("ramp.fromBasisPoints", r.from_basis_points),
        ("ramp.toBasisPoints", r.to_basis_points),
    ] {
        if bp > FULL {
            return Err(Error::invalid(field, "at most 10000"));
        }
    }
    if r.from_basis_points == r.to_basis_points {
        return Err(Error::invalid(
            "ramp.toBasisPoints",
            "must differ from fromBasisPoints",
        ));
    }
    let ms = millis(r.duration.as_ref(), "ramp.duration")?;
    if ms < 1_000 {
        return Err(Error::invalid("ramp.duration", "at least 1 s"));
    }
    if r.steps > 1_000 {
        return Err(Error::invalid("ramp.steps", "at most 1000"));
    }
    let enabled = flag.environments.get(&r.environment).map(|c| c.enabled);
    if enabled != Some(true) {
        return Err(Error::FailedPrecondition(format!(
            "flag {:?} is not enabled in {:?}",
            r.flag_key, r.environment
        )));
    }
    if let Some(owner) = state.owner(&r.flag_key, &r.environment) {
        return Err(Error::FailedPrecondition(format!(
            "flag {:?} already belongs to {} in {:?}",
            r.flag_key,
            owner.describe(),
            r.environment
        )));
    }
    Ok(())
}

/// Makes the ramp's flag serve `weight` basis points of its variant (or only `fixed`).
fn serve_weight(
    state: &State,
    txn: &mut Txn,
    r: &Ramp,
    weight: u32,
    fixed: Option<&str>,
    action: &str,
) -> Result<()> {
    let before = state
        .flags
        .get(&r.flag_key)
        .ok_or_else(|| Error::NotFound(format!("flag {:?}", r.flag_key)))?;
    let mut next = before.clone();
    let config = next.environments.get_mut(&r.environment).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "flag {:?} has no configuration in {:?}",
            r.flag_key, r.environment
        ))
    })?;
    config.default_rule = Some(Serve {
        kind: Some(match fixed {
            Some(v) => serve::Kind::Variant(v.to_owned()),
            None => serve::Kind::Split(Split {
                entries: vec![
                    SplitEntry {
                        variant: r.variant.clone(),
                        weight,
                        label: String::new(),
                    },
                    SplitEntry {
                        variant: r.other_variant.clone(),
                        weight: FULL - weight,
                        label: String::new(),
                    },
                ],
                bucket_by: String::new(),
                salt: r.salt.clone(),
                rollout_id: String::new(),
            }),
        }),
    });
    commit_version(state, txn, before, next, action);
    Ok(())
}

impl Manager {
    /// Validates and starts a ramp at its `from` weight.
    pub async fn create_ramp(&self, meta: &Meta, ramp: Ramp) -> Result<Ramp> {
        let now = self.clock.now();
        self.catalog
            .write(meta, |state, txn| {
                check(state, &ramp)?;
                let id = new_id("ramp");
                let mut r = Ramp {
                    salt: id.clone(),
                    id,
                    steps: if ramp.steps == 0 {
                        DEFAULT_STEPS
                    } else {
                        ramp.steps
                    },
                    state: RampState::Running as i32,
                    steps_done: 0,
                    current_basis_points: ramp.from_basis_points,
                    start_time: Some(now.into()),
                    end_time: None,
                    actor: meta.actor.clone(),
                    ..ramp
                };
                r.next_step_time = Some((now + interval(&r)).into());
                serve_weight(state, txn, &r, r.current_basis_points, None, "ramp.start")?;
                txn.put_ramp(r.clone());
                txn.audit("ramp.start", "ramp", &r.id, None, None);
                Ok(r)
            })
            .await
    }

    /// One ramp.
    pub fn ramp(&self, id: &str) -> Result<Ramp> {
        self.catalog
            .read()
            .ramps
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("ramp {id:?}")))
    }

    /// Ramps, newest first.
    pub fn ramps(&self, flag_key: &str) -> Vec<Ramp> {
        let mut out: Vec<Ramp> = self
            .catalog
            .read()
            .ramps
            .values()
            .filter(|r| flag_key.is_empty() || r.flag_key == flag_key)
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.start_time.map(|t| (t.seconds, t.nanos))));
        out
    }

    /// Pauses (`Some(true)`), resumes (`Some(false)`) or rolls back (`None`) a ramp.
    pub async fn ramp_action(&self, meta: &Meta, id: &str, pause: Option<bool>) -> Result<Ramp> {
        let now = self.clock.now();
        self.catalog
            .write(meta, |state, txn| {
                let mut r = state
                    .ramps
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::NotFound(format!("ramp {id:?}")))?;
                let st = state_of(&r);
                let refuse = |what: &str| {
                    Error::FailedPrecondition(format!(
                        "ramp {id:?} is {}; cannot {what}",
                        st.as_str_name()
                    ))
                };
                let verb = match pause {
                    Some(true) if st == RampState::Running => {
                        r.state = RampState::Paused as i32;
                        r.next_step_time = None;
                        "ramp.pause"
                    }
                    Some(true) => return Err(refuse("pause")),
                    Some(false) if st == RampState::Paused => {
                        r.state = RampState::Running as i32;
                        r.next_step_time = Some((now + interval(&r)).into());
                        "ramp.resume"
                    }
                    Some(false) => return Err(refuse("resume")),
                    None if ramp_active(&r) => {
                        serve_weight(
                            state,
                            txn,
                            &r,
                            0,
                            Some(&r.other_variant.clone()),
                            "ramp.rollback",
                        )?;
                        r.state = RampState::RolledBack as i32;
                        r.current_basis_points = 0;
                        r.next_step_time = None;
                        r.end_time = Some(now.into());
                        "ramp.rollback"
                    }
                    None => return Err(refuse("roll back")),
                };
                txn.put_ramp(r.clone());
                txn.audit(verb, "ramp", &r.id, None, None);
                Ok(r)
            })
            .await
    }

    /// Takes ramp `id`'s next step if it is due (the timer calls this).
    pub(crate) async fn step_ramp(&self, id: &str) -> Result<()> {
        let now = self.clock.now();
        let meta = Meta {
            actor: "flagwire".into(),
            reason: format!("ramp {id} step"),
        };
        self.catalog
            .write(&meta, |state, txn| {
                let Some(mut r) = state.ramps.get(id).cloned() else {
                    return Ok(());
                };
                if due_at(&r).is_none_or(|t| t > now) {
                    return Ok(());
                }
                r.steps_done += 1;
                let (from, to) = (i64::from(r.from_basis_points), i64::from(r.to_basis_points));
                let weight =
                    from + (to - from) * i64::from(r.steps_done) / i64::from(r.steps.max(1));
                r.current_basis_points = weight.clamp(0, i64::from(FULL)) as u32;
                serve_weight(state, txn, &r, r.current_basis_points, None, "ramp.step")?;
                if r.steps_done >= r.steps {
                    r.state = RampState::Completed as i32;
                    r.next_step_time = None;
                    r.end_time = Some(now.into());
                } else {
                    let next = r
                        .next_step_time
                        .and_then(|t| SystemTime::try_from(t).ok())
                        .unwrap_or(now);
                    r.next_step_time = Some((next + interval(&r)).into());
                }
                txn.put_ramp(r);
                Ok(())
            })
            .await
    }
}
