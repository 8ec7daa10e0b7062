//! Every change of a release, as one catalog write: the pure state machine decides
//! (`flagwire_core::release::apply`); this applies what it returns: every flag whose stored
//! configuration differs from what the new state says it serves is rewritten, all of them in one
//! revision of the environment, and the record, its log and the audit go in the same batch.
//! People and the judge go through the same code.

use super::decision::awaiting_approval;
use super::serve::rewrite;
use super::{Releases, spec};
use crate::catalog::flags::stamp_version;
use crate::catalog::owners::Owner;
use crate::catalog::{Meta, State, Txn};
use crate::error::{Error, Result};
use flagwire_core::release::{self, Action, By, Event, Phase, wire};
use flagwire_proto::v1::{
    Acknowledgement, Approval, AuditSubject, Decision, DecisionKind, Flag, Release, audit_subject,
};
use prost_types::{Duration as PbDuration, Timestamp};
use std::collections::BTreeMap;

/// What a person asks of a release.
#[derive(Debug, Clone)]
pub enum Command {
    /// Store a new definition (DRAFT).
    Create(Box<Release>),
    /// Store a new one-flag rollout, as the release it is (DRAFT).
    CreateRollout(Box<flagwire_proto::v1::Rollout>),
    /// Start a draft.
    Start,
    /// Approve the stage awaiting approval.
    Approve(u32),
    /// Stop automatic decisions.
    Pause,
    /// Resume them.
    Resume,
    /// Next stage now (approving it if needed), or complete.
    Promote,
    /// Every flag back to baseline.
    Rollback,
    /// One flag back to its baseline; `hold` pauses the release after it.
    RollbackFlag {
        /// The flag.
        flag: String,
        /// Pause after it.
        hold: bool,
        /// A rollback plan to execute once it is committed ("": none).
        plan: String,
    },
}

/// A decision of the judge, valid only while the release is still judged at `stage`.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The stage it judged.
    pub stage: u32,
    /// What it asks.
    pub event: Event,
    /// The log entry.
    pub decision: Decision,
}

/// How a transition was made, for [`Releases::conclude`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done<'a> {
    /// The revision of its flag changes (0: none).
    pub revision: u64,
    /// The person's command (its log code).
    pub command: &'a Command,
    /// The judge's decision, when it was the judge's.
    pub judged: Option<&'a Judged>,
    /// The canary's (evaluations, errors) so far: the blast radius of a rollback.
    pub canary_totals: (u64, u64),
}

/// A person's rollback of active release `r` made by another write (the kill switch, which
/// turns the flags off on top, so both are one revision): the transition and each flag whose
/// configuration it changes, by key, as it makes it serve.
pub(crate) fn rollback_by_kill(
    state: &State,
    r: &Release,
) -> Result<(release::Transition, BTreeMap<String, Flag>)> {
    let event = event_of(&Command::Rollback);
    let t = release::apply(&wire::spec(r), &wire::state(r), &event)
        .map_err(|e| Error::FailedPrecondition(format!("release {:?}: {e}", r.id)))?;
    let flags = rewritten(state, r, &t.state)?
        .into_iter()
        .map(|(_, f)| (f.key.clone(), f))
        .collect();
    Ok((t, flags))
}

fn new_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("rel-{}", &id[..12])
}

fn millis_between(a: Option<Timestamp>, b: Timestamp) -> PbDuration {
    let a = a.unwrap_or(b);
    let ms = (b.seconds - a.seconds) * 1000 + i64::from((b.nanos - a.nanos) / 1_000_000);
    PbDuration {
        seconds: ms.max(0) / 1000,
        nanos: ((ms.max(0) % 1000) * 1_000_000) as i32,
    }
}

/// A new draft from a definition: server-managed fields reset.
fn draft(r: Release, ts: Timestamp) -> Release {
    let id = new_id();
    Release {
        salt: id.clone(),
        id,
        state: flagwire_proto::v1::ReleaseState::Draft as i32,
        create_time: Some(ts),
        flags: r.flags,
        stages: r.stages,
        guardrails: r.guardrails,
        policy: r.policy,
        gates: r.gates,
        name: r.name,
        description: r.description,
        environment: r.environment,
        ..Release::default()
    }
}

/// Checks that the release may take its flags: none owned by another release or ramp, each
/// enabled with a configuration in the environment.
fn check_flags_free(state: &State, r: &Release) -> Result<()> {
    for f in &r.flags {
        if let Some(owner) = state.owner(&f.flag_key, &r.environment)
            && !matches!(owner, Owner::Release(o) if o.id == r.id)
        {
            return Err(Error::FailedPrecondition(format!(
                "flag {:?} already belongs to {} in {:?}",
                f.flag_key,
                owner.describe(),
                r.environment
            )));
        }
        let enabled = state
            .flags
            .get(&f.flag_key)
            .filter(|flag| !flag.archived)
            .and_then(|flag| flag.environments.get(&r.environment))
            .map(|c| c.enabled);
        if enabled != Some(true) {
            return Err(Error::FailedPrecondition(format!(
                "flag {:?} is not enabled in {:?}",
                f.flag_key, r.environment
            )));
        }
    }
    Ok(())
}

/// Each flag of `r` whose stored configuration differs from what `next` says it serves:
/// (stored, rewritten), in the release's order.
fn rewritten(state: &State, r: &Release, next: &release::State) -> Result<Vec<(Flag, Flag)>> {
    let spec = wire::spec(r);
    let mut out = Vec::new();
    for f in &spec.flags {
        let Some(serving) = release::serving(&spec, next, f) else {
            continue;
        };
        let stored = state
            .flags
            .get(&f.key)
            .filter(|flag| !flag.archived)
            .ok_or_else(|| Error::NotFound(format!("flag {:?}", f.key)))?;
        let rewritten = rewrite(stored, r, &serving)?;
        if rewritten != *stored {
            out.push((stored.clone(), rewritten));
        }
    }
    Ok(out)
}

/// Rewrites every flag of `r` whose configuration differs from what `next` says it serves, in
/// one revision, each audited as `action`; returns that revision (0 when nothing changed).
fn apply_serving(
    state: &State,
    txn: &mut Txn,
    r: &Release,
    next: &release::State,
    action: &str,
) -> Result<u64> {
    let pairs = rewritten(state, r, next)?;
    if pairs.is_empty() {
        return Ok(0);
    }
    let mut flags: Vec<Flag> = Vec::new();
    for (old, new) in pairs {
        let new = stamp_version(txn, &old, new);
        let s = |f: &Flag| {
            Some(AuditSubject {
                kind: Some(audit_subject::Kind::Flag(f.clone())),
            })
        };
        txn.audit(action, "flag", &new.key, s(&old), s(&new));
        flags.push(new);
    }
    txn.put_flags(state, flags);
    Ok(txn.revision(&r.environment).unwrap_or_default())
}

/// The event of a person's command.
fn event_of(command: &Command) -> Event {
    match command {
        Command::Create(_) | Command::CreateRollout(_) | Command::Start => Event::Start,
        Command::Approve(stage) => Event::Approve {
            stage: *stage as usize,
        },
        Command::Pause => Event::Pause,
        Command::Resume => Event::Resume,
        Command::Promote => Event::Promote(By::Person),
        Command::Rollback => Event::Rollback(By::Person),
        Command::RollbackFlag { flag, hold, .. } => Event::RollbackFlag {
            flag: flag.clone(),
            hold: *hold,
            by: By::Person,
        },
    }
}

/// The log code of a person's action.
fn code_of(action: Action, command: &Command) -> (DecisionKind, &'static str) {
    match (action, command) {
        (Action::Started, _) => (DecisionKind::Promote, "STARTED"),
        (Action::AwaitingApproval, _) => (DecisionKind::Hold, "AWAITING_APPROVAL"),
        (Action::StageStarted, Command::Approve(_)) => (DecisionKind::Promote, "APPROVED"),
        (Action::StageStarted | Action::Completed, _) => (DecisionKind::Promote, "MANUAL_PROMOTE"),
        (Action::RolledBack, _) => (DecisionKind::Rollback, "MANUAL_ROLLBACK"),
        (Action::FlagRolledBack, _) => (DecisionKind::Rollback, "FLAG_ROLLED_BACK"),
        (Action::Paused, _) => (DecisionKind::Hold, "MANUAL_PAUSE"),
        (Action::Resumed, _) => (DecisionKind::Hold, "MANUAL_RESUME"),
        (Action::ForcedWrite, _) => (DecisionKind::Hold, "FORCED_WRITE"),
        (Action::Held, _) => (DecisionKind::Hold, "HELD"),
    }
}

/// The audit action of a transition.
fn verb(action: Action) -> &'static str {
    match action {
        Action::Started => "release.start",
        Action::StageStarted => "release.promote",
        Action::AwaitingApproval => "release.await_approval",
        Action::Completed => "release.complete",
        Action::Held => "release.decision",
        Action::RolledBack => "release.rollback",
        Action::FlagRolledBack => "release.rollback_flag",
        Action::Paused => "release.pause",
        Action::Resumed => "release.resume",
        Action::ForcedWrite => "release.forced_write",
    }
}

impl Releases {
    /// The canary's (evaluations, errors) over release `id`'s closed windows.
    pub(crate) fn canary_totals(&self, id: &str) -> Result<(u64, u64)> {
        Ok(self.evidence.windows(id)?.iter().fold((0, 0), |(e, x), w| {
            (e + w.canary.evaluations, x + w.canary.errors)
        }))
    }

    /// Runs `command` (or a judge's decision) on release `id` (none for a create) in one catalog
    /// write.
    pub(super) async fn transition(
        &self,
        meta: &Meta,
        id: Option<&str>,
        command: Command,
        judged: Option<Judged>,
    ) -> Result<Release> {
        let ts: Timestamp = self.clock.now().into();
        let latest = id.and_then(|id| {
            let runtime = self.runtime.lock().expect("releases poisoned");
            runtime.get(id).and_then(|rt| rt.latest.clone())
        });
        let canary_totals = match id {
            Some(id) => self.canary_totals(id)?,
            None => (0, 0),
        };
        let before = id.and_then(|id| self.catalog.read().releases.get(id).map(wire::state));
        let r = self
            .catalog
            .write(meta, |state, txn| {
                let mut r = match (&command, id) {
                    (Command::Create(r), _) => {
                        let r = draft(spec::normalise(state, (**r).clone())?, ts);
                        txn.put_release(r.clone());
                        txn.audit("release.create", "release", &r.id, None, None);
                        return Ok(r);
                    }
                    (Command::CreateRollout(r), _) => {
                        let r = draft(super::rollout::normalise(state, (**r).clone())?, ts);
                        txn.put_release(r.clone());
                        txn.audit("release.create", "release", &r.id, None, None);
                        return Ok(r);
                    }
                    (_, Some(id)) => state
                        .releases
                        .get(id)
                        .cloned()
                        .ok_or_else(|| Error::NotFound(format!("release {id:?}")))?,
                    (_, None) => return Err(Error::invalid("id", "required")),
                };
                if let Some(j) = &judged {
                    let from = wire::state(&r);
                    let judging = matches!(from.phase, Phase::Running | Phase::AwaitingApproval);
                    if !judging || r.current_stage != j.stage {
                        return Err(Error::FailedPrecondition("release moved on".into()));
                    }
                }
                if let Some(latest) = &latest {
                    wire::fold_latest(&mut r, latest);
                }
                if matches!(command, Command::Start) {
                    check_flags_free(state, &r)?;
                }
                if let Command::RollbackFlag { plan, .. } = &command
                    && !plan.is_empty()
                    && !state.plans.contains_key(plan)
                {
                    return Err(Error::NotFound(format!("rollback plan {plan:?}")));
                }
                self.step(
                    state,
                    txn,
                    meta,
                    r,
                    &command,
                    judged.as_ref(),
                    canary_totals,
                )
            })
            .await?;
        self.after(&r, before);
        if let Command::RollbackFlag { plan, .. } = &command
            && !plan.is_empty()
        {
            self.run_plan(&r.id, plan);
        }
        Ok(self.decorate(r))
    }

    /// Applies `command` (or the judge's event) to release `r` inside a catalog write: the
    /// state machine's transition, the flags it rewrites, the record and its log.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &self,
        state: &State,
        txn: &mut Txn,
        meta: &Meta,
        r: Release,
        command: &Command,
        judged: Option<&Judged>,
        canary_totals: (u64, u64),
    ) -> Result<Release> {
        let from = wire::state(&r);
        let event = judged
            .as_ref()
            .map_or_else(|| event_of(command), |j| j.event.clone());
        let t = release::apply(&wire::spec(&r), &from, &event)
            .map_err(|e| Error::FailedPrecondition(format!("release {:?}: {e}", r.id)))?;
        let action = if from.phase == Phase::Draft {
            "release.start"
        } else {
            verb(t.log.action)
        };
        let revision = apply_serving(state, txn, &r, &t.state, action)?;
        let done = Done {
            revision,
            command,
            judged,
            canary_totals,
        };
        Ok(self.conclude(txn, meta, r, &t, done))
    }

    /// The record and log of transition `t` of release `r`, whose flag changes are in `txn`
    /// already (at `done.revision`; 0: none): state, times, approvals, the log entry (two when a
    /// start awaits its first stage's approval), why it waits, the audit.
    pub(crate) fn conclude(
        &self,
        txn: &mut Txn,
        meta: &Meta,
        mut r: Release,
        t: &release::Transition,
        done: Done<'_>,
    ) -> Release {
        let Done {
            revision,
            command,
            judged,
            canary_totals,
        } = done;
        let ts = txn.now();
        let from = wire::state(&r);
        self.record(&mut r, &from, t, revision, ts, canary_totals);
        if t.log.action == Action::StageStarted
            && judged.is_none()
            && r.stages
                .get(t.state.stage.unwrap_or(0))
                .is_some_and(|s| s.require_approval)
        {
            // A person began a stage that requires approval: that is the approval.
            r.approvals.push(Approval {
                stage: r.current_stage,
                actor: meta.actor.clone(),
                time: Some(ts),
                reason: meta.reason.clone(),
            });
        }
        let entry = match judged {
            Some(j) if t.log.action == Action::AwaitingApproval => {
                awaiting_approval(j.decision.clone(), r.approval_stage)
            }
            Some(j) => j.decision.clone(),
            None => {
                let (kind, code) = code_of(t.log.action, command);
                let detail = match (&t.log.flag, t.log.action) {
                    // Only a start stops at a stage awaiting approval (a person's promotion
                    // approves it): the start is logged, then the wait, saying what it awaits.
                    (_, Action::AwaitingApproval) => {
                        let started = wire::log_entry(
                            DecisionKind::Promote,
                            "STARTED",
                            &meta.reason,
                            &meta.actor,
                            r.current_stage,
                            ts,
                        );
                        wire::append(&mut r, started);
                        format!("stage {} requires approval", r.approval_stage)
                    }
                    (Some(flag), _) => format!("flag {flag:?}: {}", meta.reason),
                    (None, _) => meta.reason.clone(),
                };
                wire::log_entry(kind, code, &detail, &meta.actor, r.current_stage, ts)
            }
        };
        // Why it waits, while it waits (the log says the rest).
        r.state_reason = match t.state.phase {
            Phase::Paused | Phase::AwaitingApproval if t.log.action != Action::Held => {
                format!("{}: {}", entry.reason_code, entry.detail)
            }
            Phase::Paused | Phase::AwaitingApproval => std::mem::take(&mut r.state_reason),
            _ => String::new(),
        };
        wire::append(&mut r, entry);
        txn.put_release(r.clone());
        if t.log.action != Action::Held {
            let action = if from.phase == Phase::Draft {
                "release.start"
            } else {
                verb(t.log.action)
            };
            txn.audit(action, "release", &r.id, None, None);
        }
        r
    }

    /// Writes a transition's outcome into the record: state, times, acknowledgements, blast
    /// radius.
    fn record(
        &self,
        r: &mut Release,
        from: &release::State,
        t: &release::Transition,
        revision: u64,
        ts: Timestamp,
        (canary_requests, canary_errors): (u64, u64),
    ) {
        wire::store_state(r, &t.state);
        if matches!(t.log.action, Action::Started | Action::StageStarted) {
            r.stage_start_time = Some(ts);
            if let Some(s) = r.stages.get(r.current_stage as usize) {
                let bp = match wire::audience_of(s.audience.as_ref()) {
                    release::Audience::Share(bp) => bp,
                    _ => release::EVERYONE,
                };
                r.blast_radius_basis_points = r.blast_radius_basis_points.max(bp);
            }
        }
        if from.phase == Phase::Draft {
            r.start_time = Some(ts);
        }
        if revision > 0 {
            r.acknowledgement = Some(Acknowledgement {
                environment: r.environment.clone(),
                revision,
                ..Acknowledgement::default()
            });
        }
        let ended = matches!(t.state.phase, Phase::Completed | Phase::RolledBack);
        if ended && !matches!(from.phase, Phase::Completed | Phase::RolledBack) {
            r.end_time = Some(ts);
            r.final_revision = revision;
            if t.state.phase == Phase::Completed {
                r.blast_radius_basis_points = release::EVERYONE;
            }
            if t.state.phase == Phase::RolledBack {
                r.time_to_detect = Some(millis_between(r.start_time, ts));
                r.blast_radius_requests = canary_requests;
                r.blast_radius_errors = canary_errors;
            }
        }
    }
}

impl Releases {
    /// Keeps the evidence, the driver's memory and the manager in step with a committed
    /// transition (`before`: the state the release had).
    pub(crate) fn after(&self, r: &Release, before: Option<release::State>) {
        let now = wire::state(r);
        let was = before.as_ref().map(|b| b.phase);
        let mut runtime = self.runtime.lock().expect("releases poisoned");
        if now.phase.active() {
            let rt = runtime.entry(r.id.clone()).or_default();
            rt.latest = None;
            if was == Some(Phase::Draft) {
                rt.last_close_ms = super::evidence::epoch_ms(self.clock.now());
                if let Err(e) = self.evidence.track(r) {
                    tracing::error!(release = %r.id, error = %e, "could not track the release's evidence");
                }
            }
        } else if was.is_some_and(Phase::active) {
            runtime.remove(&r.id);
            self.evidence.untrack(&r.id);
        }
        drop(runtime);
        let plan = r
            .policy
            .as_ref()
            .map_or("", |p| p.rollback_plan_id.as_str());
        let rolled_back = now.phase == Phase::RolledBack && was != Some(Phase::RolledBack);
        if rolled_back && !plan.is_empty() {
            self.run_plan(&r.id, plan);
        }
    }

    /// Hands `plan` to the manager, which executes it as the actor `judge` (after a rollback,
    /// full or partial, has been committed).
    fn run_plan(&self, release: &str, plan: &str) {
        let event = super::RolledBack {
            release_id: release.to_owned(),
            plan_id: plan.to_owned(),
        };
        if self.rolled_back.send(event).is_err() {
            tracing::error!(release = %release, plan = %plan, "no manager to run the rollback plan");
        }
    }
}
