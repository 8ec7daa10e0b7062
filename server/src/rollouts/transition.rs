//! Every change of a rollout's state, as one catalog write: check the state, rewrite the flag,
//! log the decision, store the record. People and the judge go through the same code.

use super::decision::{self, append, manual};
use super::serve::{Target, rewrite};
use super::spec::{self, FULL};
use super::{Rollouts, is_active};
use crate::catalog::flags::commit_version;
use crate::catalog::{Meta, State, Txn};
use crate::error::{Error, Result};
use flagwire_proto::v1::{Acknowledgement, Decision, DecisionKind, Rollout, RolloutState};
use prost_types::{Duration as PbDuration, Timestamp};

/// What to do to a rollout.
#[derive(Debug, Clone)]
pub enum Action {
    /// Store a new definition (DRAFT).
    Create(Box<Rollout>),
    /// DRAFT → RUNNING at the first step.
    Start,
    /// RUNNING → PAUSED.
    Pause,
    /// PAUSED → RUNNING.
    Resume,
    /// To the next step, or complete.
    Promote,
    /// Serve the baseline to everyone; ROLLED_BACK.
    Rollback,
    /// Only log a decision (a judge's HOLD).
    Log,
}

/// A decision of the judge, valid only while the rollout is still running at `step`.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The step it judged.
    pub step: u32,
    /// The log entry.
    pub decision: Decision,
}

fn state_of(r: &Rollout) -> RolloutState {
    RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified)
}

fn precondition(r: &Rollout, what: &str) -> Error {
    Error::FailedPrecondition(format!(
        "rollout {:?} is {}; cannot {what}",
        r.id,
        state_of(r).as_str_name()
    ))
}

fn new_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ro-{}", &id[..12])
}

fn millis_between(a: Option<Timestamp>, b: Timestamp) -> PbDuration {
    let a = a.unwrap_or(b);
    let ms = (b.seconds - a.seconds) * 1000 + i64::from((b.nanos - a.nanos) / 1_000_000);
    spec::duration(ms.max(0))
}

/// Rewrites the rollout's flag to serve `target` and records which revision that is.
fn serve(
    state: &State,
    txn: &mut Txn,
    r: &mut Rollout,
    target: Target,
    action: &str,
) -> Result<()> {
    let before = state
        .flags
        .get(&r.flag_key)
        .filter(|f| !f.archived)
        .ok_or_else(|| Error::NotFound(format!("flag {:?}", r.flag_key)))?;
    let next = rewrite(before, r, target)?;
    commit_version(state, txn, before, next, action);
    r.acknowledgement = Some(Acknowledgement {
        environment: r.environment.clone(),
        revision: txn.revision(&r.environment).unwrap_or_default(),
        ..Acknowledgement::default()
    });
    Ok(())
}

impl Rollouts {
    /// Runs `action` on rollout `id` (none for Create) in one catalog write; `judged` carries a
    /// judge's decision, refused if the rollout moved on since it was judged.
    pub(super) async fn transition(
        &self,
        meta: &Meta,
        id: Option<&str>,
        action: Action,
        judged: Option<Judged>,
    ) -> Result<Rollout> {
        let ts: Timestamp = self.clock.now().into();
        let latest = id.and_then(|id| {
            let runtime = self.runtime.lock().expect("rollouts poisoned");
            runtime.get(id).and_then(|rt| rt.latest.clone())
        });
        let blast = match (&action, id) {
            (Action::Rollback, Some(id)) => {
                let r = self.catalog.read().rollouts.get(id).cloned();
                match r {
                    Some(r) => {
                        let w = self.evidence.windows(id, &r.environment, &r.flag_key)?;
                        let canary = w.iter().fold((0u64, 0u64), |(e, x), w| {
                            (e + w.canary.evaluations, x + w.canary.errors)
                        });
                        Some(canary)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let before_state = id.and_then(|id| self.catalog.read().rollouts.get(id).map(state_of));
        let r = self
            .catalog
            .write(meta, |state, txn| {
                let mut r = match (&action, id) {
                    (Action::Create(r), _) => {
                        let mut r = spec::normalise(state, (**r).clone())?;
                        r.id = new_id();
                        r.salt = r.id.clone();
                        r.state = RolloutState::Draft as i32;
                        r.current_step = 0;
                        r.decisions.clear();
                        r.windows.clear();
                        r.create_time = Some(ts);
                        r.step_start_time = None;
                        r.start_time = None;
                        r.end_time = None;
                        r.rollback_revision = 0;
                        r.rollback_acknowledged = 0;
                        r.blast_radius_requests = 0;
                        r.blast_radius_errors = 0;
                        r.blast_radius_basis_points = 0;
                        r.acknowledgement = None;
                        r.latest_decision = None;
                        r.time_to_detect = None;
                        txn.put_rollout(r.clone());
                        txn.audit("rollout.create", "rollout", &r.id, None, None);
                        return Ok(r);
                    }
                    (_, Some(id)) => state
                        .rollouts
                        .get(id)
                        .cloned()
                        .ok_or_else(|| Error::NotFound(format!("rollout {id:?}")))?,
                    (_, None) => return Err(Error::invalid("id", "required")),
                };
                let st = state_of(&r);
                if let Some(j) = &judged
                    && (st != RolloutState::Running || r.current_step != j.step)
                {
                    return Err(Error::FailedPrecondition("rollout moved on".into()));
                }
                if let Some(latest) = &latest {
                    decision::fold_latest(&mut r, latest);
                }
                let step = r.current_step;
                let person =
                    |kind, code: &str| manual(kind, code, &meta.reason, &meta.actor, step, ts);
                let entry = |kind, code: &str| match &judged {
                    Some(j) => j.decision.clone(),
                    None => person(kind, code),
                };
                match action {
                    Action::Create(_) => unreachable!("handled above"),
                    Action::Start => {
                        if st != RolloutState::Draft {
                            return Err(precondition(&r, "start"));
                        }
                        let busy = state.rollouts.values().any(|o| {
                            o.id != r.id
                                && is_active(o)
                                && o.flag_key == r.flag_key
                                && o.environment == r.environment
                        }) || state.ramps.values().any(|o| {
                            crate::manager::ramps::ramp_active(o)
                                && o.flag_key == r.flag_key
                                && o.environment == r.environment
                        });
                        if busy {
                            return Err(Error::FailedPrecondition(format!(
                                "flag {:?} already has an active rollout or ramp in {:?}",
                                r.flag_key, r.environment
                            )));
                        }
                        let enabled = state
                            .flags
                            .get(&r.flag_key)
                            .and_then(|f| f.environments.get(&r.environment))
                            .map(|c| c.enabled);
                        if enabled != Some(true) {
                            return Err(Error::FailedPrecondition(format!(
                                "flag {:?} is not enabled in {:?}",
                                r.flag_key, r.environment
                            )));
                        }
                        let bp = r.steps.first().map_or(FULL, |s| s.basis_points);
                        r.start_time = Some(ts);
                        r.step_start_time = Some(ts);
                        r.blast_radius_basis_points = bp;
                        if bp >= FULL {
                            serve(state, txn, &mut r, Target::Complete, "rollout.complete")?;
                            r.state = RolloutState::Completed as i32;
                            r.end_time = Some(ts);
                        } else {
                            serve(state, txn, &mut r, Target::Step(bp), "rollout.start")?;
                            r.state = RolloutState::Running as i32;
                        }
                        append(&mut r, person(DecisionKind::Promote, "STARTED"));
                    }
                    Action::Promote => {
                        if !is_active(&r) {
                            return Err(precondition(&r, "promote"));
                        }
                        let next = r.current_step as usize + 1;
                        match r.steps.get(next).map(|s| s.basis_points) {
                            Some(bp) if bp < FULL => {
                                serve(state, txn, &mut r, Target::Step(bp), "rollout.promote")?;
                                r.current_step = next as u32;
                                r.step_start_time = Some(ts);
                                r.blast_radius_basis_points = bp;
                            }
                            _ => {
                                serve(state, txn, &mut r, Target::Complete, "rollout.complete")?;
                                r.state = RolloutState::Completed as i32;
                                r.end_time = Some(ts);
                                r.blast_radius_basis_points = FULL;
                            }
                        }
                        let awaiting = r
                            .decisions
                            .last()
                            .is_some_and(|d| d.reason_code == "AWAITING_APPROVAL");
                        if st == RolloutState::Paused && awaiting && is_active(&r) {
                            r.state = RolloutState::Running as i32;
                        }
                        append(&mut r, entry(DecisionKind::Promote, "MANUAL_PROMOTE"));
                    }
                    Action::Rollback => {
                        if !is_active(&r) {
                            return Err(precondition(&r, "roll back"));
                        }
                        serve(state, txn, &mut r, Target::Rollback, "rollout.rollback")?;
                        r.state = RolloutState::RolledBack as i32;
                        r.end_time = Some(ts);
                        r.rollback_revision = r.acknowledgement.as_ref().map_or(0, |a| a.revision);
                        r.time_to_detect = Some(millis_between(r.start_time, ts));
                        let (requests, errors) = blast.unwrap_or_default();
                        r.blast_radius_requests = requests;
                        r.blast_radius_errors = errors;
                        append(&mut r, entry(DecisionKind::Rollback, "MANUAL_ROLLBACK"));
                    }
                    Action::Pause => {
                        if st != RolloutState::Running {
                            return Err(precondition(&r, "pause"));
                        }
                        r.state = RolloutState::Paused as i32;
                        append(&mut r, entry(DecisionKind::Hold, "MANUAL_PAUSE"));
                    }
                    Action::Resume => {
                        if st != RolloutState::Paused {
                            return Err(precondition(&r, "resume"));
                        }
                        r.state = RolloutState::Running as i32;
                        append(&mut r, person(DecisionKind::Hold, "MANUAL_RESUME"));
                    }
                    Action::Log => match &judged {
                        Some(j) => append(&mut r, j.decision.clone()),
                        None => return Err(Error::invalid("action", "nothing to log")),
                    },
                }
                txn.put_rollout(r.clone());
                let verb = match action {
                    Action::Start => "rollout.start",
                    Action::Pause => "rollout.pause",
                    Action::Resume => "rollout.resume",
                    Action::Promote => "rollout.promote",
                    Action::Rollback => "rollout.rollback",
                    _ => "rollout.decision",
                };
                if !matches!(action, Action::Log) {
                    txn.audit(verb, "rollout", &r.id, None, None);
                }
                Ok(r)
            })
            .await?;
        self.after(&r, before_state);
        Ok(self.decorate(r))
    }

    /// Keeps the evidence and the driver's memory in step with a committed transition.
    fn after(&self, r: &Rollout, before: Option<RolloutState>) {
        let mut runtime = self.runtime.lock().expect("rollouts poisoned");
        if is_active(r) {
            let rt = runtime.entry(r.id.clone()).or_default();
            rt.latest = None;
            if before == Some(RolloutState::Draft) {
                rt.last_close_ms = super::evidence::epoch_ms(self.clock.now());
                if let Err(e) = self.evidence.track(&r.id, &r.environment, &r.flag_key) {
                    tracing::error!(rollout = %r.id, error = %e, "could not track the rollout's evidence");
                }
            }
        } else if before.is_some_and(|b| b != RolloutState::Draft)
            || state_of(r) != RolloutState::Draft
        {
            runtime.remove(&r.id);
            self.evidence.untrack(&r.environment, &r.flag_key);
        }
        drop(runtime);
        let plan = r
            .policy
            .as_ref()
            .map_or("", |p| p.rollback_plan_id.as_str());
        let rolled_back =
            before != Some(RolloutState::RolledBack) && state_of(r) == RolloutState::RolledBack;
        if rolled_back
            && !plan.is_empty()
            && let Some(manager) = self.manager.get().and_then(std::sync::Weak::upgrade)
        {
            let (plan, id) = (plan.to_owned(), r.id.clone());
            let meta = Meta {
                actor: "judge".into(),
                reason: format!("rollout {id} rolled back"),
            };
            tokio::spawn(async move {
                if let Err(e) = manager.execute(&meta, &plan, None, &id).await {
                    tracing::error!(rollout = %id, plan = %plan, error = %e, "rollback plan did not start");
                }
            });
        }
    }
}
