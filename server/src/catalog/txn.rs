//! A catalog transaction under construction: the store batch plus what to apply to memory and
//! publish once the batch is durable.

use super::{Meta, State, tokens::StoredToken};
use crate::store::{Batch, keys};
use flagwire_core::project::project;
use flagwire_proto::v1::{
    AuditEvent, AuditSubject, Change, Environment, Execution, Flag, FlagBatch, MetricDefinition,
    Ramp, Release, RollbackPlan, ScheduledChange, Segment, change,
};
use prost::Message;
use prost_types::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

/// `flag` as `env`'s SDKs see it, or `None` when that view equals `previous`'s.
///
/// The version and update time are left out of the comparison: they move on every write, and
/// a change that only moves them would wake every SDK of every environment for nothing. So an
/// environment's copy keeps the version of the last write that changed what it sees.
fn changed_view(previous: Option<&Flag>, flag: &Flag, env: &str) -> Option<Flag> {
    let projected = project(flag, env);
    let Some(old) = previous else {
        return Some(projected);
    };
    let before = Flag {
        version: 0,
        update_time: None,
        ..project(old, env)
    };
    let after = Flag {
        version: 0,
        update_time: None,
        ..projected.clone()
    };
    (before != after).then_some(projected)
}

enum Effect {
    Env(String, Option<Environment>),
    Flag(String, Option<Flag>),
    Segment((String, String), Option<Segment>),
    Token(String, Option<StoredToken>),
    Release(String, Box<Release>),
    Plan(String, Box<RollbackPlan>),
    Execution(String, Box<Execution>),
    Scheduled(String, Box<ScheduledChange>),
    Ramp(String, Box<Ramp>),
    Metric((String, String), Option<MetricDefinition>),
}

/// One write's batch and effects. Built by [`super::Catalog::write`]'s closure.
pub struct Txn {
    meta: Meta,
    now: Timestamp,
    retention: u64,
    batch: Batch,
    effects: Vec<Effect>,
    revisions: BTreeMap<String, u64>,
    changes: BTreeMap<String, Vec<Arc<Change>>>,
    audit: Vec<AuditEvent>,
    next_audit_id: u64,
}

impl Txn {
    pub(super) fn new(meta: &Meta, now: SystemTime, retention: u64) -> Self {
        Self {
            meta: meta.clone(),
            now: Timestamp::from(now),
            retention: retention.max(1),
            batch: Batch::default(),
            effects: Vec::new(),
            revisions: BTreeMap::new(),
            changes: BTreeMap::new(),
            audit: Vec::new(),
            next_audit_id: 0,
        }
    }

    /// The commit time every object of this write is stamped with.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Stores `env` (created or updated, without a change-log entry of its own).
    pub fn put_environment(&mut self, env: Environment) {
        self.batch
            .put(keys::environment(&env.key), env.encode_to_vec());
        self.effects.push(Effect::Env(env.key.clone(), Some(env)));
    }

    /// Removes an environment record.
    pub fn delete_environment(&mut self, key: &str) {
        self.batch.delete(keys::environment(key));
        self.effects.push(Effect::Env(key.to_owned(), None));
    }

    /// Stores a flag version and announces it in each environment whose view of it changed:
    /// a toggle in staging wakes no production SDK (ADR 0001), while an edit of the definition
    /// (variants, description, tags, archive) changes every environment's view.
    pub fn put_flag(&mut self, state: &State, flag: Flag) {
        let previous = state.flags.get(&flag.key).cloned();
        self.put_flag_over(state, previous.as_ref(), flag);
    }

    /// [`Txn::put_flag`] for a caller whose `state` already holds the new flag (an import
    /// plans the whole next state first): `previous` is what the environments saw before.
    pub fn put_flag_over(&mut self, state: &State, previous: Option<&Flag>, flag: Flag) {
        self.store_flag(&flag);
        for env in state.envs.keys() {
            if let Some(projected) = changed_view(previous, &flag, env) {
                self.change(state, env, change::Kind::FlagUpserted(projected));
            }
        }
        self.effects
            .push(Effect::Flag(flag.key.clone(), Some(flag)));
    }

    /// The current flag and its version in history.
    fn store_flag(&mut self, flag: &Flag) {
        let bytes = flag.encode_to_vec();
        self.batch.put(keys::flag(&flag.key), bytes.clone());
        self.batch
            .put(keys::flag_version(&flag.key, flag.version), bytes);
    }

    /// Stores new versions of several flags and announces them together: one change, so one
    /// revision, per environment whose view of any of them changed, carrying only those (a
    /// single flag goes out as an ordinary `FlagUpserted`).
    pub fn put_flags(&mut self, state: &State, flags: Vec<Flag>) {
        if flags.len() == 1 {
            let flag = flags.into_iter().next().expect("one flag");
            return self.put_flag(state, flag);
        }
        if flags.is_empty() {
            return;
        }
        for flag in &flags {
            self.store_flag(flag);
        }
        for env in state.envs.keys() {
            let mut projected: Vec<Flag> = flags
                .iter()
                .filter_map(|f| changed_view(state.flags.get(&f.key), f, env))
                .collect();
            let kind = match projected.len() {
                0 => continue,
                1 => change::Kind::FlagUpserted(projected.remove(0)),
                _ => change::Kind::FlagsUpserted(FlagBatch { flags: projected }),
            };
            self.change(state, env, kind);
        }
        for flag in flags {
            self.effects
                .push(Effect::Flag(flag.key.clone(), Some(flag)));
        }
    }

    /// Deletes a flag (its history stays) and announces it in every environment.
    pub fn delete_flag(&mut self, state: &State, key: &str) {
        self.batch.delete(keys::flag(key));
        for env in state.envs.keys() {
            self.change(state, env, change::Kind::FlagDeleted(key.to_owned()));
        }
        self.effects.push(Effect::Flag(key.to_owned(), None));
    }

    /// Stores a segment and announces it in its environment.
    pub fn put_segment(&mut self, state: &State, segment: Segment) {
        let id = (segment.environment.clone(), segment.key.clone());
        self.batch
            .put(keys::segment(&id.0, &id.1), segment.encode_to_vec());
        self.change(state, &id.0, change::Kind::SegmentUpserted(segment.clone()));
        self.effects.push(Effect::Segment(id, Some(segment)));
    }

    /// Deletes a segment and announces it in its environment.
    pub fn delete_segment(&mut self, state: &State, env: &str, key: &str) {
        self.batch.delete(keys::segment(env, key));
        self.change(state, env, change::Kind::SegmentDeleted(key.to_owned()));
        self.effects
            .push(Effect::Segment((env.to_owned(), key.to_owned()), None));
    }

    /// Stores a token.
    pub fn put_token(&mut self, token: StoredToken) {
        let id = token
            .token
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_default();
        self.batch.put(keys::token(&id), token.encode_to_vec());
        self.effects.push(Effect::Token(id, Some(token)));
    }

    /// Stores a release record (no change-log entry: its flag changes carry their own).
    pub fn put_release(&mut self, release: Release) {
        self.batch
            .put(keys::release(&release.id), release.encode_to_vec());
        self.effects
            .push(Effect::Release(release.id.clone(), Box::new(release)));
    }

    /// Stores a rollback plan.
    pub fn put_plan(&mut self, plan: RollbackPlan) {
        self.batch.put(keys::plan(&plan.id), plan.encode_to_vec());
        self.effects
            .push(Effect::Plan(plan.id.clone(), Box::new(plan)));
    }

    /// Stores an execution.
    pub fn put_execution(&mut self, e: Execution) {
        self.batch.put(keys::execution(&e.id), e.encode_to_vec());
        self.effects
            .push(Effect::Execution(e.id.clone(), Box::new(e)));
    }

    /// Stores a scheduled change.
    pub fn put_scheduled(&mut self, c: ScheduledChange) {
        self.batch.put(keys::scheduled(&c.id), c.encode_to_vec());
        self.effects
            .push(Effect::Scheduled(c.id.clone(), Box::new(c)));
    }

    /// Stores a ramp.
    pub fn put_ramp(&mut self, r: Ramp) {
        self.batch.put(keys::ramp(&r.id), r.encode_to_vec());
        self.effects.push(Effect::Ramp(r.id.clone(), Box::new(r)));
    }

    /// Stores a metric definition (no change-log entry: SDKs do not read definitions).
    pub fn put_metric(&mut self, m: MetricDefinition) {
        let id = (m.environment.clone(), m.name.clone());
        self.batch
            .put(keys::metric(&id.0, &id.1), m.encode_to_vec());
        self.effects.push(Effect::Metric(id, Some(m)));
    }

    /// Deletes a metric definition.
    pub fn delete_metric(&mut self, env: &str, name: &str) {
        self.batch.delete(keys::metric(env, name));
        let id = (env.to_owned(), name.to_owned());
        self.effects.push(Effect::Metric(id, None));
    }

    /// The environments this write changes so far.
    pub fn touched_environments(&self) -> Vec<String> {
        self.revisions.keys().cloned().collect()
    }

    /// The revision this write gives `env`, if it changes anything there.
    pub fn revision(&self, env: &str) -> Option<u64> {
        self.revisions.get(env).copied()
    }

    /// Records an audit event for this write.
    pub fn audit(
        &mut self,
        action: &str,
        resource_type: &str,
        resource_key: &str,
        before: Option<AuditSubject>,
        after: Option<AuditSubject>,
    ) {
        self.audit.push(AuditEvent {
            id: 0,
            time: Some(self.now),
            actor: self.meta.actor.clone(),
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_key: resource_key.to_owned(),
            before,
            after,
            reason: self.meta.reason.clone(),
            revisions: Default::default(),
        });
    }

    fn change(&mut self, state: &State, env: &str, kind: change::Kind) {
        let current = state.envs.get(env).map_or(0, |e| e.revision);
        let revision = self.revisions.entry(env.to_owned()).or_insert(current);
        *revision += 1;
        let revision = *revision;
        let change = Change {
            revision,
            commit_time: Some(self.now),
            kind: Some(kind),
        };
        self.batch
            .put(keys::change(env, revision), change.encode_to_vec());
        if revision > self.retention {
            self.batch
                .delete(keys::change(env, revision - self.retention));
        }
        self.changes
            .entry(env.to_owned())
            .or_default()
            .push(Arc::new(change));
    }

    /// Stamps new revisions on the environments and ids on the audit events.
    pub(super) fn finish(&mut self, state: &State) {
        let revisions = std::mem::take(&mut self.revisions);
        for (key, revision) in &revisions {
            // An environment created or changed in this same write carries its new record.
            let pending = self.effects.iter().rev().find_map(|e| match e {
                Effect::Env(k, env) if k == key => Some(env.clone()),
                _ => None,
            });
            let base = match pending {
                Some(Some(env)) => env,
                Some(None) => continue,
                None => match state.envs.get(key) {
                    Some(env) => env.clone(),
                    None => continue,
                },
            };
            self.put_environment(Environment {
                revision: *revision,
                ..base
            });
        }
        self.next_audit_id = state.next_audit_id;
        for mut event in std::mem::take(&mut self.audit) {
            event.id = self.next_audit_id;
            self.next_audit_id += 1;
            event.revisions = revisions.clone().into_iter().collect();
            self.batch.put(keys::audit(event.id), event.encode_to_vec());
        }
    }

    pub(super) fn take_batch(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }

    /// Applies the effects to memory; returns the changes to publish, per environment.
    pub(super) fn apply(self, state: &mut State) -> BTreeMap<String, Vec<Arc<Change>>> {
        for effect in self.effects {
            match effect {
                Effect::Env(k, Some(v)) => drop(state.envs.insert(k, v)),
                Effect::Env(k, None) => drop(state.envs.remove(&k)),
                Effect::Flag(k, Some(v)) => drop(state.flags.insert(k, v)),
                Effect::Flag(k, None) => drop(state.flags.remove(&k)),
                Effect::Segment(k, Some(v)) => drop(state.segments.insert(k, v)),
                Effect::Segment(k, None) => drop(state.segments.remove(&k)),
                Effect::Token(k, Some(v)) => drop(state.tokens.insert(k, v)),
                Effect::Token(k, None) => drop(state.tokens.remove(&k)),
                Effect::Release(k, v) => drop(state.releases.insert(k, *v)),
                Effect::Plan(k, v) => drop(state.plans.insert(k, *v)),
                Effect::Execution(k, v) => drop(state.executions.insert(k, *v)),
                Effect::Scheduled(k, v) => drop(state.scheduled.insert(k, *v)),
                Effect::Ramp(k, v) => drop(state.ramps.insert(k, *v)),
                Effect::Metric(k, Some(v)) => drop(state.metrics.insert(k, v)),
                Effect::Metric(k, None) => drop(state.metrics.remove(&k)),
            }
        }
        state.next_audit_id = state.next_audit_id.max(self.next_audit_id);
        self.changes
    }
}
