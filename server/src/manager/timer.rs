//! The manager's timer: on every tick it applies the scheduled changes that are due, starts the
//! scheduled executions that are due, resumes executions a restart interrupted, and takes the
//! ramp steps that are due. It goes by the injectable clock, like the rollout driver.

use super::Manager;
use super::{ramps, scheduled};
use crate::catalog::leader;
use crate::clock::Timers;
use flagwire_proto::v1::{ExecutionState, ScheduledChangeState};
use std::sync::Arc;

impl Manager {
    /// Runs the timer until `stop` resolves, marking each finished pass on `timers.manager`.
    pub async fn drive(
        self: Arc<Self>,
        timers: Arc<Timers>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        let mut led = None;
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = interval.tick() => {}
            }
            // Only the leader acts on time (catalog::leader); a replica that leads anew first
            // resumes the executions its predecessor (or its own last run) left running.
            let token = self.catalog.leadership();
            if token.is_some() && token != led {
                leader::as_leader(token.unwrap_or_default(), async {
                    self.resume_interrupted();
                })
                .await;
            }
            led = token;
            let Some(token) = token else { continue };
            let at = self.clock.now();
            leader::as_leader(token, self.tick()).await;
            timers.manager.beat(at);
        }
    }

    /// Executions that were running when the last leader stopped go on from their next step.
    fn resume_interrupted(self: &Arc<Self>) {
        let interrupted: Vec<String> = self
            .catalog
            .read()
            .executions
            .values()
            .filter(|e| e.state == ExecutionState::Running as i32 && e.kind == "plan")
            .map(|e| e.id.clone())
            .collect();
        for id in interrupted {
            self.spawn_run(id);
        }
    }

    /// One pass over everything that may be due.
    pub async fn tick(self: &Arc<Self>) {
        let now = self.clock.now();
        let (changes, executions, ramps) = {
            let state = self.catalog.read();
            let changes: Vec<String> = state
                .scheduled
                .values()
                .filter(|c| c.state == ScheduledChangeState::Pending as i32)
                .filter(|c| scheduled::due_at(c).is_some_and(|t| t <= now))
                .map(|c| c.id.clone())
                .collect();
            let executions: Vec<String> = state
                .executions
                .values()
                .filter(|e| e.state == ExecutionState::Scheduled as i32)
                .filter(|e| {
                    e.start_time
                        .and_then(|t| std::time::SystemTime::try_from(t).ok())
                        .is_some_and(|t| t <= now)
                })
                .map(|e| e.id.clone())
                .collect();
            let ramps: Vec<String> = state
                .ramps
                .values()
                .filter(|r| ramps::due_at(r).is_some_and(|t| t <= now))
                .map(|r| r.id.clone())
                .collect();
            (changes, executions, ramps)
        };
        for id in changes {
            if let Err(e) = self.apply_scheduled(&id).await {
                tracing::warn!(change = %id, error = %e, "scheduled change not applied");
            }
        }
        for id in executions {
            match self.begin_scheduled(&id).await {
                Ok(true) => self.spawn_run(id),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(execution = %id, error = %e, "scheduled execution not started")
                }
            }
        }
        for id in ramps {
            if let Err(e) = self.step_ramp(&id).await {
                tracing::warn!(ramp = %id, error = %e, "ramp step failed");
            }
        }
    }

    /// SCHEDULED → RUNNING; false if it is no longer scheduled (cancelled meanwhile).
    async fn begin_scheduled(&self, id: &str) -> crate::error::Result<bool> {
        let meta = crate::catalog::Meta {
            actor: "flagwire".into(),
            reason: "scheduled execution is due".into(),
        };
        self.catalog
            .write(&meta, |state, txn| {
                let Some(mut e) = state.executions.get(id).cloned() else {
                    return Ok(false);
                };
                if e.state != ExecutionState::Scheduled as i32 {
                    return Ok(false);
                }
                e.state = ExecutionState::Running as i32;
                txn.put_execution(e);
                Ok(true)
            })
            .await
    }
}
