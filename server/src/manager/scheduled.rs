//! Flag changes scheduled for a time. The change and its state (`APPLIED`) commit in one
//! write, so a change is applied exactly once even if the server stops at any moment: after a
//! restart a change is either applied with its record, or still pending.

use super::{Manager, actions, new_id};
use crate::catalog::flags::commit_version;
use crate::catalog::owners::guard;
use crate::catalog::{Meta, State};
use crate::error::{Error, Result};
use crate::releases::Command;
use flagwire_core::release::wire;
use flagwire_core::validate::validate_flag;
use flagwire_proto::v1::{ScheduledChange, ScheduledChangeState, plan_step};
use prost_types::Timestamp;
use std::time::SystemTime;

fn state_of(c: &ScheduledChange) -> ScheduledChangeState {
    ScheduledChangeState::try_from(c.state).unwrap_or(ScheduledChangeState::Unspecified)
}

/// When a change is due.
pub fn due_at(c: &ScheduledChange) -> Option<SystemTime> {
    c.at.and_then(|t| SystemTime::try_from(t).ok())
}

fn check(state: &State, c: &ScheduledChange) -> Result<()> {
    if due_at(c).is_none() {
        return Err(Error::invalid("change.at", "required: a valid time"));
    }
    match (&c.step, &c.flag) {
        (Some(step), None) => {
            if matches!(step.action, Some(plan_step::Action::Wait(_))) {
                return Err(Error::invalid("change.step.wait", "cannot be scheduled"));
            }
            actions::check(state, step, "change.step")
        }
        (None, Some(flag)) => {
            if !state.flags.contains_key(&flag.key) {
                return Err(Error::NotFound(format!("flag {:?}", flag.key)));
            }
            Ok(validate_flag(flag, state)?)
        }
        _ => Err(Error::invalid(
            "change",
            "needs exactly one of step and flag",
        )),
    }
}

impl Manager {
    /// Stores a change to apply at its time.
    pub async fn schedule(&self, meta: &Meta, change: ScheduledChange) -> Result<ScheduledChange> {
        let now: Timestamp = self.clock.now().into();
        self.catalog
            .write(meta, |state, txn| {
                check(state, &change)?;
                let c = ScheduledChange {
                    id: new_id("sc"),
                    actor: meta.actor.clone(),
                    reason: if change.reason.is_empty() {
                        meta.reason.clone()
                    } else {
                        change.reason.clone()
                    },
                    state: ScheduledChangeState::Pending as i32,
                    detail: String::new(),
                    done_time: None,
                    create_time: Some(now),
                    ..change
                };
                txn.put_scheduled(c.clone());
                txn.audit("schedule.create", "scheduled_change", &c.id, None, None);
                Ok(c)
            })
            .await
    }

    /// Scheduled changes by time (pending only, unless `include_done`).
    pub fn scheduled(&self, flag_key: &str, include_done: bool) -> Vec<ScheduledChange> {
        let mut out: Vec<ScheduledChange> = self
            .catalog
            .read()
            .scheduled
            .values()
            .filter(|c| include_done || state_of(c) == ScheduledChangeState::Pending)
            .filter(|c| {
                flag_key.is_empty()
                    || c.flag.as_ref().is_some_and(|f| f.key == flag_key)
                    || c.step.as_ref().and_then(actions::flag_of) == Some(flag_key)
            })
            .cloned()
            .collect();
        out.sort_by_key(|c| (c.at.map(|t| (t.seconds, t.nanos)), c.id.clone()));
        out
    }

    /// Cancels a pending change.
    pub async fn cancel_scheduled(&self, meta: &Meta, id: &str) -> Result<ScheduledChange> {
        let now: Timestamp = self.clock.now().into();
        self.catalog
            .write(meta, |state, txn| {
                let mut c = pending(state, id)?;
                c.state = ScheduledChangeState::Cancelled as i32;
                c.detail = format!("cancelled by {}: {}", meta.actor, meta.reason);
                c.done_time = Some(now);
                txn.put_scheduled(c.clone());
                txn.audit("schedule.cancel", "scheduled_change", &c.id, None, None);
                Ok(c)
            })
            .await
    }

    /// Applies pending change `id` (its time has come).
    pub(crate) async fn apply_scheduled(&self, id: &str) -> Result<()> {
        let Some(c) = self.catalog.read().scheduled.get(id).cloned() else {
            return Ok(());
        };
        if state_of(&c) != ScheduledChangeState::Pending {
            return Ok(());
        }
        let meta = Meta {
            actor: c.actor.clone(),
            reason: format!("scheduled change {}: {}", c.id, c.reason),
        };
        let now: Timestamp = self.clock.now().into();
        // A rollout abort is its own write; record it right after.
        if let Some(plan_step::Action::AbortRolloutId(rollout)) =
            c.step.as_ref().and_then(|s| s.action.as_ref())
        {
            let active = self.catalog.read().releases.get(rollout).map(wire::active);
            let detail = match active {
                Some(true) => match self.releases.act(&meta, rollout, Command::Rollback).await {
                    Ok(_) => Ok(format!("release {rollout} rolled back")),
                    Err(e) => Err(e.to_string()),
                },
                Some(false) => Ok(format!("release {rollout} had already ended")),
                None => Err(format!("release {rollout:?} not found")),
            };
            return self.finish_scheduled(&meta, id, detail, now).await;
        }
        let old = match c.step.as_ref().and_then(|s| s.action.as_ref()) {
            Some(plan_step::Action::Revert(a)) => self.flag_version(&a.flag_key, a.version)?,
            _ => None,
        };
        let applied = self
            .catalog
            .write(&meta, |state, txn| {
                let mut c = pending(state, id)?;
                let detail = match (&c.step, &c.flag) {
                    (Some(step), _) => actions::apply(state, txn, &meta, step, old, c.force)?,
                    (None, Some(flag)) => {
                        let before = state
                            .flags
                            .get(&flag.key)
                            .ok_or_else(|| Error::NotFound(format!("flag {:?}", flag.key)))?;
                        validate_flag(flag, state)?;
                        let next = flagwire_proto::v1::Flag {
                            archived: before.archived,
                            ..flag.clone()
                        };
                        guard(state, txn, &meta, before, Some(&next), c.force)?;
                        let f = commit_version(state, txn, before, next, "flag.update");
                        format!("{} updated (version {})", f.key, f.version)
                    }
                    (None, None) => return Err(Error::invalid("change", "empty")),
                };
                c.state = ScheduledChangeState::Applied as i32;
                c.detail = detail;
                c.done_time = Some(now);
                txn.put_scheduled(c);
                txn.audit("schedule.apply", "scheduled_change", id, None, None);
                Ok(())
            })
            .await;
        match applied {
            Ok(()) => Ok(()),
            // Refused (the flag changed meanwhile, say): record why, once.
            Err(e) => {
                self.finish_scheduled(&meta, id, Err(e.to_string()), now)
                    .await
            }
        }
    }

    async fn finish_scheduled(
        &self,
        meta: &Meta,
        id: &str,
        outcome: std::result::Result<String, String>,
        now: Timestamp,
    ) -> Result<()> {
        self.catalog
            .write(meta, |state, txn| {
                let mut c = pending(state, id)?;
                let (st, detail) = match &outcome {
                    Ok(d) => (ScheduledChangeState::Applied, d.clone()),
                    Err(d) => (ScheduledChangeState::Failed, d.clone()),
                };
                c.state = st as i32;
                c.detail = detail;
                c.done_time = Some(now);
                txn.put_scheduled(c);
                txn.audit("schedule.apply", "scheduled_change", id, None, None);
                Ok(())
            })
            .await
    }
}

fn pending(state: &State, id: &str) -> Result<ScheduledChange> {
    let c = state
        .scheduled
        .get(id)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("scheduled change {id:?}")))?;
    if state_of(&c) != ScheduledChangeState::Pending {
        return Err(Error::FailedPrecondition(format!(
            "scheduled change {id:?} is {}, no longer pending",
            state_of(&c).as_str_name()
        )));
    }
    Ok(c)
}
