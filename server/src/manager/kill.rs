//! The emergency kill switch: one call turns off one flag, every flag with a tag, the flags of
//! a release (or rollout), or everything, in one environment or all of them, serving each
//! flag's off variant. All of it is one catalog write, so one revision per environment, durable
//! before the call answers; it never waits on anything else and is never refused because a
//! release owns a flag (a release whose flag is killed pauses, in the same write). A kill of a
//! release's scope rolls the release back in that same write instead (its log: the rollback,
//! with the kill's reason); if the rollback cannot be made the release pauses as for any forced
//! write, and the execution records the failure, which the server logs. The execution keeps the
//! flags as they were; `UndoKill` restores the `enabled` state of exactly the configurations the
//! kill turned off (later edits stay).

use super::{Manager, new_id, stored_execution};
use crate::catalog::flags::{stamp_version, subject};
use crate::catalog::owners::guard_unless;
use crate::catalog::{Meta, State};
use crate::error::{Error, Result};
use crate::releases::Command;
use crate::releases::transition::{Done, rollback_by_kill};
use flagwire_core::release::{self, wire};
use flagwire_proto::v1::{
    Acknowledgement, Execution, ExecutionState, Flag, Release, Scope, StepOutcome, scope,
};
use prost_types::Timestamp;
use std::collections::BTreeMap;

/// The kill's step about release `id`: rolled back (`ended`), already over, or not rolled
/// back because of `failure`.
fn release_step(id: &str, ended: bool, failure: Option<&str>) -> StepOutcome {
    let (ok, detail) = match (ended, failure) {
        (true, _) => (true, format!("release {id} rolled back")),
        (false, Some(e)) => (false, format!("release {id} did not roll back: {e}")),
        (false, None) => (true, format!("release {id} had already ended")),
    };
    StepOutcome {
        index: 1,
        ok,
        detail,
    }
}

/// The (flag, environments) a scope covers, only where the flag is configured and enabled.
fn targets(state: &State, s: &Scope) -> Result<Vec<(Flag, Vec<String>)>> {
    if !s.environment.is_empty() && !state.envs.contains_key(&s.environment) {
        return Err(Error::NotFound(format!("environment {:?}", s.environment)));
    }
    let mut env_filter = s.environment.clone();
    let flags: Vec<&Flag> = match s.kind.as_ref() {
        None => {
            return Err(Error::invalid(
                "scope",
                "needs one of flagKey, tag, releaseId, rolloutId, systemWide",
            ));
        }
        Some(scope::Kind::FlagKey(k)) => {
            let f = state
                .flags
                .get(k)
                .ok_or_else(|| Error::NotFound(format!("flag {k:?}")))?;
            vec![f]
        }
        Some(scope::Kind::Tag(t)) => {
            let found: Vec<&Flag> = state
                .flags
                .values()
                .filter(|f| f.tags.contains(t))
                .collect();
            if found.is_empty() {
                return Err(Error::NotFound(format!("no flag has tag {t:?}")));
            }
            found
        }
        Some(scope::Kind::RolloutId(id) | scope::Kind::ReleaseId(id)) => {
            let r = state
                .releases
                .get(id)
                .ok_or_else(|| Error::NotFound(format!("release {id:?}")))?;
            env_filter = r.environment.clone();
            r.flags
                .iter()
                .filter_map(|f| state.flags.get(&f.flag_key))
                .collect()
        }
        Some(scope::Kind::SystemWide(true)) => state.flags.values().collect(),
        Some(scope::Kind::SystemWide(false)) => {
            return Err(Error::invalid("scope.systemWide", "must be true when set"));
        }
    };
    Ok(flags
        .into_iter()
        .filter(|f| !f.archived)
        .map(|f| {
            let envs = f
                .environments
                .iter()
                .filter(|(e, c)| c.enabled && (env_filter.is_empty() || **e == env_filter))
                .map(|(e, _)| e.clone())
                .collect::<Vec<_>>();
            (f.clone(), envs)
        })
        .filter(|(_, envs)| !envs.is_empty())
        .collect())
}

/// A release the kill ends in its own write: the release and its rollback's transition.
type Ending = (Release, release::Transition);

/// What a kill of release `id`'s scope does to the release in the kill's write: the release
/// and its rollback with the flags it rewrites (by key) when it is active; nothing when it has
/// ended; or why it cannot be rolled back (the kill happens anyway).
fn ending(
    state: &State,
    id: Option<&str>,
) -> (Option<Ending>, BTreeMap<String, Flag>, Option<String>) {
    let active = id
        .and_then(|id| state.releases.get(id))
        .filter(|r| wire::active(r));
    match active.map(|r| (r, rollback_by_kill(state, r))) {
        Some((r, Ok((t, flags)))) => (Some((r.clone(), t)), flags, None),
        Some((_, Err(e))) => (None, BTreeMap::new(), Some(e.to_string())),
        None => (None, BTreeMap::new(), None),
    }
}

impl Manager {
    /// Flips the kill switch for `scope`; answers once the change is durable. A kill of a
    /// release's (or rollout's) scope also rolls the release back in the same write, so one
    /// revision turns its flags off and back to their baselines, nothing can promote it behind
    /// the kill, and its log says only that it was killed, and why.
    pub async fn kill(&self, meta: &Meta, scope: Option<Scope>) -> Result<Execution> {
        if meta.reason.trim().is_empty() {
            return Err(Error::invalid(
                "reason",
                "required: say why (it is audited)",
            ));
        }
        let scope = scope.ok_or_else(|| Error::invalid("scope", "required"))?;
        let now: Timestamp = self.clock.now().into();
        let release_id = match scope.kind.as_ref() {
            Some(scope::Kind::RolloutId(id) | scope::Kind::ReleaseId(id)) => Some(id.as_str()),
            _ => None,
        };
        let before =
            release_id.and_then(|id| self.catalog.read().releases.get(id).map(wire::state));
        let canary_totals = release_id.map_or(Ok((0, 0)), |id| self.releases.canary_totals(id))?;
        let mut failure = None;
        let (execution, ended) = self
            .catalog
            .write(meta, |state, txn| {
                let targets = targets(state, &scope)?;
                let (ending, mut rewritten, failed) = ending(state, release_id);
                // Without a rollback the release pauses as for any forced write (guard).
                failure = failed;
                let ending_id = ending.as_ref().map(|(r, _)| r.id.clone());
                let mut next_flags = Vec::new();
                let mut envs = std::collections::BTreeSet::new();
                for (before, kill_envs) in &targets {
                    let mut next = rewritten
                        .remove(&before.key)
                        .unwrap_or_else(|| before.clone());
                    for env in kill_envs {
                        if let Some(c) = next.environments.get_mut(env) {
                            c.enabled = false;
                        }
                        envs.insert(env.clone());
                    }
                    guard_unless(
                        state,
                        txn,
                        meta,
                        before,
                        Some(&next),
                        true,
                        ending_id.as_deref(),
                    )?;
                    let next = stamp_version(txn, before, next);
                    // Before and after, so the audit log (and the console's diff) shows what a
                    // kill turned off.
                    txn.audit(
                        "flag.kill",
                        "flag",
                        &next.key,
                        subject(before),
                        subject(&next),
                    );
                    next_flags.push(next);
                }
                // Flags of the release that were off already go back to their baselines too.
                for (key, next) in rewritten {
                    if let Some(before) = state.flags.get(&key) {
                        let next = stamp_version(txn, before, next);
                        txn.audit(
                            "release.rollback",
                            "flag",
                            &key,
                            subject(before),
                            subject(&next),
                        );
                        next_flags.push(next);
                    }
                }
                let count = targets.len();
                txn.put_flags(state, next_flags);
                let acknowledgements = envs
                    .iter()
                    .filter_map(|env| {
                        txn.revision(env).map(|revision| Acknowledgement {
                            environment: env.clone(),
                            revision,
                            ..Acknowledgement::default()
                        })
                    })
                    .collect();
                let mut e = Execution {
                    id: new_id("ex"),
                    kind: "kill".into(),
                    scope: Some(scope.clone()),
                    state: ExecutionState::Succeeded as i32,
                    steps: vec![StepOutcome {
                        index: 0,
                        ok: true,
                        detail: format!(
                            "{count} flag(s) turned off in {} environment(s)",
                            envs.len()
                        ),
                    }],
                    acknowledgements,
                    reason: meta.reason.clone(),
                    actor: meta.actor.clone(),
                    start_time: Some(now),
                    end_time: Some(now),
                    previous: targets.into_iter().map(|(f, _)| f).collect(),
                    ..Execution::default()
                };
                let ended = ending.map(|(r, t)| {
                    let revision = txn.revision(&r.environment).unwrap_or_default();
                    let killed = Meta {
                        actor: meta.actor.clone(),
                        reason: format!("kill switch {}: {}", e.id, meta.reason),
                    };
                    let done = Done {
                        revision,
                        command: &Command::Rollback,
                        judged: None,
                        canary_totals,
                    };
                    self.releases.conclude(txn, &killed, r, &t, done)
                });
                if let Some(id) = release_id {
                    e.steps
                        .push(release_step(id, ended.is_some(), failure.as_deref()));
                }
                txn.put_execution(e.clone());
                txn.audit("kill", "execution", &e.id, None, None);
                Ok((e, ended))
            })
            .await?;
        tracing::warn!(execution = %execution.id, reason = %meta.reason, actor = %meta.actor, "kill switch flipped");
        if let Some(r) = &ended {
            self.releases.after(r, before);
        }
        if let (Some(release), Some(error)) = (release_id, &failure) {
            tracing::error!(execution = %execution.id, release = %release, error = %error, "the kill switch could not roll the release back");
        }
        Ok(self.acknowledged(execution))
    }

    /// Restores what kill execution `id` turned off.
    pub async fn undo_kill(&self, meta: &Meta, id: &str) -> Result<Execution> {
        let now: Timestamp = self.clock.now().into();
        let e = self
            .catalog
            .write(meta, |state, txn| {
                let mut e = stored_execution(state, id)?;
                if e.kind != "kill" {
                    return Err(Error::FailedPrecondition(format!(
                        "execution {id:?} is not a kill"
                    )));
                }
                if e.state != ExecutionState::Succeeded as i32 {
                    return Err(Error::FailedPrecondition(format!(
                        "execution {id:?} is {}; only a standing kill can be undone",
                        ExecutionState::try_from(e.state).map_or("unknown", |s| s.as_str_name())
                    )));
                }
                let killed_envs: Vec<String> = e
                    .acknowledgements
                    .iter()
                    .map(|a| a.environment.clone())
                    .collect();
                let mut restored = Vec::new();
                for previous in &e.previous {
                    let Some(before) = state.flags.get(&previous.key) else {
                        continue;
                    };
                    let mut next = before.clone();
                    for (env, was) in &previous.environments {
                        let killed = was.enabled && killed_envs.contains(env);
                        if let (true, Some(c)) = (killed, next.environments.get_mut(env)) {
                            c.enabled = true;
                        }
                    }
                    let next = stamp_version(txn, before, next);
                    txn.audit(
                        "flag.undo_kill",
                        "flag",
                        &next.key,
                        subject(before),
                        subject(&next),
                    );
                    restored.push(next);
                }
                let count = restored.len();
                txn.put_flags(state, restored);
                let mut acks = Vec::new();
                for env in &killed_envs {
                    if let Some(revision) = txn.revision(env) {
                        acks.push(Acknowledgement {
                            environment: env.clone(),
                            revision,
                            ..Acknowledgement::default()
                        });
                    }
                }
                e.acknowledgements = acks;
                e.state = ExecutionState::Undone as i32;
                e.end_time = Some(now);
                e.steps.push(StepOutcome {
                    index: 1,
                    ok: true,
                    detail: format!(
                        "undone by {}: {count} flag(s) restored ({})",
                        meta.actor, meta.reason
                    ),
                });
                txn.put_execution(e.clone());
                txn.audit("undo_kill", "execution", &e.id, None, None);
                Ok(e)
            })
            .await?;
        Ok(self.acknowledged(e))
    }
}
