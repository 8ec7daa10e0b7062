//! Which flags an active release or ramp owns, and the guard every other write goes through:
//! a change to what an owned flag serves in the owner's environment is refused with the owner
//! named, unless the request says `force`; a forced write is audited, and a release then pauses
//! (its evidence no longer describes its stage) with the reason in its log.

use super::{Meta, State, Txn};
use crate::error::{Error, Result};
use flagwire_core::release::{self, Event, wire};
use flagwire_proto::v1::{DecisionKind, Flag, Ramp, RampState, Release};

/// What owns a flag in an environment.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// An active release (or one-flag rollout).
    Release(&'a Release),
    /// An active ramp.
    Ramp(&'a Ramp),
}

impl Owner<'_> {
    /// "release rel-… (name)" or "ramp ramp-…", for messages.
    pub fn describe(&self) -> String {
        match self {
            Owner::Release(r) if r.name.is_empty() => format!("release {}", r.id),
            Owner::Release(r) => format!("release {} ({})", r.id, r.name),
            Owner::Ramp(r) => format!("ramp {}", r.id),
        }
    }
}

/// Whether a ramp still moves its flag.
pub fn ramp_active(r: &Ramp) -> bool {
    matches!(
        RampState::try_from(r.state),
        Ok(RampState::Running | RampState::Paused)
    )
}

impl State {
    /// The active release or ramp that owns `flag` in `env`, if any (at most one does).
    pub fn owner(&self, flag: &str, env: &str) -> Option<Owner<'_>> {
        let release = self.releases.values().find(|r| {
            r.environment == env && wire::active(r) && r.flags.iter().any(|f| f.flag_key == flag)
        });
        if let Some(r) = release {
            return Some(Owner::Release(r));
        }
        self.ramps
            .values()
            .find(|r| r.environment == env && r.flag_key == flag && ramp_active(r))
            .map(Owner::Ramp)
    }

    /// Every (environment, owner) of `flag`.
    fn owners(&self, flag: &str) -> Vec<(String, Owner<'_>)> {
        self.envs
            .keys()
            .filter_map(|env| self.owner(flag, env).map(|o| (env.clone(), o)))
            .collect()
    }
}

/// Whether `before` → `after` changes what the flag serves in `env`: its configuration there,
/// its variants, or whether it is archived (or it is deleted).
fn serving_changes(before: &Flag, after: Option<&Flag>, env: &str) -> bool {
    let Some(after) = after else { return true };
    before.environments.get(env) != after.environments.get(env)
        || before.variants != after.variants
        || before.archived != after.archived
}

/// Checks a write of `before` → `after` (`None`: a deletion) against the flag's owners.
/// Deleting an owned flag is always refused; other changes to what it serves need `force`,
/// and are then audited and pause the owning release within this same write.
pub(crate) fn guard(
    state: &State,
    txn: &mut Txn,
    meta: &Meta,
    before: &Flag,
    after: Option<&Flag>,
    force: bool,
) -> Result<()> {
    guard_unless(state, txn, meta, before, after, force, None)
}

/// [`guard`], except for release `ending`, which the same write ends (the kill switch rolling
/// back the release it kills): its own log says what happened, no forced write is recorded.
pub(crate) fn guard_unless(
    state: &State,
    txn: &mut Txn,
    meta: &Meta,
    before: &Flag,
    after: Option<&Flag>,
    force: bool,
    ending: Option<&str>,
) -> Result<()> {
    for (env, owner) in state.owners(&before.key) {
        if !serving_changes(before, after, &env) {
            continue;
        }
        if matches!(owner, Owner::Release(r) if Some(r.id.as_str()) == ending) {
            continue;
        }
        let what = owner.describe();
        if after.is_none() {
            return Err(Error::FailedPrecondition(format!(
                "flag {:?} is part of {what} in {env:?}: end it before deleting the flag",
                before.key
            )));
        }
        if !force {
            return Err(Error::FailedPrecondition(format!(
                "flag {:?} is part of {what} in {env:?}: change it through the release, or \
                 pass force to write anyway (the release then pauses)",
                before.key
            )));
        }
        txn.audit("flag.forced_write", "flag", &before.key, None, None);
        if let Owner::Release(r) = owner {
            pause_for_forced_write(txn, meta, r, &before.key);
        }
    }
    Ok(())
}

/// Records a forced write in release `r`: it pauses, and its log says who wrote what.
fn pause_for_forced_write(txn: &mut Txn, meta: &Meta, r: &Release, flag: &str) {
    let event = Event::ForcedWrite {
        flag: flag.to_owned(),
    };
    let Ok(t) = release::apply(&wire::spec(r), &wire::state(r), &event) else {
        return;
    };
    let mut next = r.clone();
    wire::store_state(&mut next, &t.state);
    let detail = format!(
        "{} wrote flag {flag:?} with force: {}",
        meta.actor, meta.reason
    );
    next.state_reason = format!("FORCED_WRITE: {detail}");
    let entry = wire::log_entry(
        DecisionKind::Hold,
        "FORCED_WRITE",
        &detail,
        &meta.actor,
        next.current_stage,
        txn.now(),
    );
    wire::append(&mut next, entry);
    txn.put_release(next);
    txn.audit("release.pause", "release", &r.id, None, None);
}
