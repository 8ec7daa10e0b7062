//! Rollback plans (named, stored, ordered steps) and their executions. An execution runs its
//! steps in order, each step one catalog write that also records the step's outcome in the
//! execution, so a restart resumes after the last recorded step and never repeats one. A
//! failing step stops the plan (state FAILED, the outcomes say which steps ran); a running or
//! scheduled execution can be cancelled; running the same plan again is safe because every
//! step sets a state rather than toggling one.

use super::{Manager, actions, new_id, stored_execution};
use crate::catalog::{Meta, State};
use crate::error::{Error, Result};
use crate::releases::Command;
use flagwire_core::release::wire;
use flagwire_proto::v1::{
    Acknowledgement, Execution, ExecutionState, PlanStep, RollbackPlan, StepOutcome, plan_step,
};
use prost_types::Timestamp;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The most steps a plan may have.
pub const MAX_STEPS: usize = 50;

fn state_of(e: &Execution) -> ExecutionState {
    ExecutionState::try_from(e.state).unwrap_or(ExecutionState::Unspecified)
}

fn check_plan(state: &State, p: &RollbackPlan) -> Result<()> {
    if p.name.trim().is_empty() {
        return Err(Error::invalid("plan.name", "required"));
    }
    if state.plans.values().any(|o| o.name == p.name) {
        return Err(Error::AlreadyExists(format!("plan named {:?}", p.name)));
    }
    if p.steps.is_empty() || p.steps.len() > MAX_STEPS {
        return Err(Error::invalid(
            "plan.steps",
            format!("needs 1 to {MAX_STEPS} steps"),
        ));
    }
    for (i, step) in p.steps.iter().enumerate() {
        actions::check(state, step, &format!("plan.steps[{i}]"))?;
    }
    Ok(())
}

impl Manager {
    /// Stores a plan.
    pub async fn create_plan(&self, meta: &Meta, plan: RollbackPlan) -> Result<RollbackPlan> {
        self.catalog
            .write(meta, |state, txn| {
                check_plan(state, &plan)?;
                let plan = RollbackPlan {
                    id: new_id("plan"),
                    ..plan
                };
                txn.put_plan(plan.clone());
                txn.audit("plan.create", "plan", &plan.id, None, None);
                Ok(plan)
            })
            .await
    }

    /// Every plan, by name.
    pub fn plans(&self) -> Vec<RollbackPlan> {
        let mut plans: Vec<_> = self.catalog.read().plans.values().cloned().collect();
        plans.sort_by(|a, b| a.name.cmp(&b.name));
        plans
    }

    /// Starts plan `plan_id` now, or schedules it for `at`; `rollout_id` names the rollout
    /// whose rollback triggered it.
    pub async fn execute(
        self: &Arc<Self>,
        meta: &Meta,
        plan_id: &str,
        at: Option<SystemTime>,
        rollout_id: &str,
        force: bool,
    ) -> Result<Execution> {
        let now = self.clock.now();
        let later = at.is_some_and(|t| t > now);
        let start: Timestamp = at.filter(|_| later).unwrap_or(now).into();
        let e = self
            .catalog
            .write(meta, |state, txn| {
                if !state.plans.contains_key(plan_id) {
                    return Err(Error::NotFound(format!("plan {plan_id:?}")));
                }
                let e = Execution {
                    id: new_id("ex"),
                    plan_id: plan_id.to_owned(),
                    kind: "plan".into(),
                    state: if later {
                        ExecutionState::Scheduled
                    } else {
                        ExecutionState::Running
                    } as i32,
                    reason: meta.reason.clone(),
                    actor: meta.actor.clone(),
                    start_time: Some(start),
                    rollout_id: rollout_id.to_owned(),
                    force,
                    ..Execution::default()
                };
                txn.put_execution(e.clone());
                txn.audit("plan.execute", "execution", &e.id, None, None);
                Ok(e)
            })
            .await?;
        if !later {
            self.spawn_run(e.id.clone());
        }
        Ok(self.acknowledged(e))
    }

    /// Cancels a scheduled or running execution.
    pub async fn cancel(&self, meta: &Meta, id: &str) -> Result<Execution> {
        let now: Timestamp = self.clock.now().into();
        let e = self
            .catalog
            .write(meta, |state, txn| {
                let mut e = stored_execution(state, id)?;
                if !matches!(
                    state_of(&e),
                    ExecutionState::Scheduled | ExecutionState::Running
                ) {
                    return Err(Error::FailedPrecondition(format!(
                        "execution {id:?} is {}; only a scheduled or running one can be cancelled",
                        state_of(&e).as_str_name()
                    )));
                }
                e.state = ExecutionState::Cancelled as i32;
                e.end_time = Some(now);
                txn.put_execution(e.clone());
                txn.audit("execution.cancel", "execution", &e.id, None, None);
                Ok(e)
            })
            .await?;
        if let Some(signal) = self.running.lock().expect("manager poisoned").get(id) {
            let _ = signal.send(true);
        }
        Ok(self.acknowledged(e))
    }

    /// Runs execution `id` in the background from its next unrecorded step.
    pub(crate) fn spawn_run(self: &Arc<Self>, id: String) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        {
            let mut running = self.running.lock().expect("manager poisoned");
            if running.contains_key(&id) {
                return;
            }
            running.insert(id.clone(), tx);
        }
        let manager = Arc::clone(self);
        // A run the leader starts writes as the leader (fenced) for as long as it lasts.
        let token = crate::catalog::leader::current();
        tokio::spawn(crate::catalog::leader::inherit(token, async move {
            if let Err(e) = manager.run(&id, rx).await {
                tracing::warn!(execution = %id, error = %e, "execution stopped");
            }
            manager
                .running
                .lock()
                .expect("manager poisoned")
                .remove(&id);
        }));
    }

    async fn run(&self, id: &str, mut cancelled: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        loop {
            let (e, plan) = {
                let state = self.catalog.read();
                let Some(e) = state.executions.get(id).cloned() else {
                    return Ok(());
                };
                let plan = state.plans.get(&e.plan_id).cloned();
                (e, plan)
            };
            if state_of(&e) != ExecutionState::Running {
                return Ok(());
            }
            let Some(plan) = plan else {
                return self
                    .finish(id, None, Some("the plan was deleted".into()))
                    .await;
            };
            let index = e.steps.len();
            let Some(step) = plan.steps.get(index).cloned() else {
                return self.finish(id, None, None).await;
            };
            if let Some(plan_step::Action::Wait(d)) = &step.action {
                let wait = Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32);
                let until = self.clock.now() + wait;
                tokio::select! {
                    () = self.clock.sleep_until(until) => {}
                    _ = cancelled.wait_for(|c| *c) => return Ok(()),
                }
                let outcome = StepOutcome {
                    index: index as u32,
                    ok: true,
                    detail: format!("waited {} ms", wait.as_millis()),
                };
                self.record(id, outcome).await?;
                continue;
            }
            let meta = Meta {
                actor: e.actor.clone(),
                reason: format!("plan {:?}: {}", plan.name, e.reason),
            };
            let outcome = self.step(id, &meta, index, &step).await;
            if let Err(err) = outcome {
                let outcome = StepOutcome {
                    index: index as u32,
                    ok: false,
                    detail: err.to_string(),
                };
                return self.finish(id, Some(outcome), Some(err.to_string())).await;
            }
        }
    }

    /// Runs one step and records its outcome in the same write when it changes a flag.
    async fn step(&self, id: &str, meta: &Meta, index: usize, step: &PlanStep) -> Result<()> {
        if let Some(plan_step::Action::AbortRolloutId(rollout)) = &step.action {
            let active = self
                .catalog
                .read()
                .releases
                .get(rollout)
                .map(wire::active)
                .ok_or_else(|| Error::NotFound(format!("release {rollout:?}")))?;
            let detail = if active {
                self.releases.act(meta, rollout, Command::Rollback).await?;
                format!("release {rollout} rolled back")
            } else {
                format!("release {rollout} had already ended")
            };
            let outcome = StepOutcome {
                index: index as u32,
                ok: true,
                detail,
            };
            return self.record(id, outcome).await;
        }
        let old = match &step.action {
            Some(plan_step::Action::Revert(a)) => self.flag_version(&a.flag_key, a.version)?,
            _ => None,
        };
        self.catalog
            .write(meta, |state, txn| {
                let mut e = running(state, id)?;
                if e.steps.len() != index {
                    return Err(Error::FailedPrecondition("step already recorded".into()));
                }
                let detail = actions::apply(state, txn, meta, step, old, e.force)?;
                e.steps.push(StepOutcome {
                    index: index as u32,
                    ok: true,
                    detail,
                });
                remember_revisions(&mut e, txn);
                txn.put_execution(e);
                Ok(())
            })
            .await
    }

    async fn record(&self, id: &str, outcome: StepOutcome) -> Result<()> {
        let meta = Meta {
            actor: "flagwire".into(),
            reason: String::new(),
        };
        self.catalog
            .write(&meta, |state, txn| {
                let mut e = running(state, id)?;
                e.steps.push(outcome);
                txn.put_execution(e);
                Ok(())
            })
            .await
    }

    /// Ends execution `id`: SUCCEEDED, or FAILED with `failed` (and the failing outcome).
    async fn finish(
        &self,
        id: &str,
        outcome: Option<StepOutcome>,
        failed: Option<String>,
    ) -> Result<()> {
        let now: Timestamp = self.clock.now().into();
        let meta = Meta {
            actor: "flagwire".into(),
            reason: failed.clone().unwrap_or_default(),
        };
        self.catalog
            .write(&meta, |state, txn| {
                let mut e = running(state, id)?;
                e.steps.extend(outcome);
                e.state = if failed.is_some() {
                    ExecutionState::Failed
                } else {
                    ExecutionState::Succeeded
                } as i32;
                e.end_time = Some(now);
                txn.put_execution(e);
                Ok(())
            })
            .await
    }
}

fn running(state: &State, id: &str) -> Result<Execution> {
    let e = stored_execution(state, id)?;
    if state_of(&e) != ExecutionState::Running {
        return Err(Error::FailedPrecondition(format!(
            "execution {id:?} is no longer running"
        )));
    }
    Ok(e)
}

/// Notes the revisions a step's write gives each environment, for acknowledgement counts.
fn remember_revisions(e: &mut Execution, txn: &crate::catalog::Txn) {
    for env in txn.touched_environments() {
        let Some(revision) = txn.revision(&env) else {
            continue;
        };
        match e.acknowledgements.iter_mut().find(|a| a.environment == env) {
            Some(a) => a.revision = revision,
            None => e.acknowledgements.push(Acknowledgement {
                environment: env,
                revision,
                ..Acknowledgement::default()
            }),
        }
    }
}
