//! The timer that runs rollouts: every tick it closes the windows that are due, asks the judge,
//! and carries out PROMOTE and ROLLBACK as catalog writes; HOLDs are logged when they change.
//! Paused rollouts keep collecting windows but are not judged.

use super::decision::{from_judgement, repeats_last};
use super::evidence::{epoch_ms, from_epoch_ms};
use super::transition::{Action, Judged};
use super::{Rollouts, is_active, spec};
use crate::catalog::Meta;
use crate::clock::Timers;
use flagwire_core::judge::{self, Kind, Position, Reason};
use flagwire_proto::v1::{Rollout, RolloutState};
use std::sync::Arc;
use std::time::SystemTime;
use tracing::Instrument;

fn ms(t: Option<prost_types::Timestamp>) -> i64 {
    t.and_then(|t| SystemTime::try_from(t).ok())
        .map_or(0, epoch_ms)
}

impl Rollouts {
    /// Runs the driver until `stop` resolves, marking each finished pass on `timers.rollouts`.
    pub async fn drive(
        self: Arc<Self>,
        timers: Arc<Timers>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut interval = tokio::time::interval(self.options.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = interval.tick() => {}
            }
            let at = self.clock.now();
            self.tick().await;
            timers.rollouts.beat(at);
            ticks += 1;
            // The retention sweep reads the store; once every few hundred ticks is plenty.
            if ticks % 600 == 1 {
                self.sweep();
            }
        }
    }

    /// Closes every due window and acts on the judge's decisions (one pass).
    pub async fn tick(&self) {
        let now_ms = epoch_ms(self.clock.now());
        let active: Vec<Rollout> = self
            .catalog
            .read()
            .rollouts
            .values()
            .filter(|r| is_active(r))
            .cloned()
            .collect();
        for r in active {
            if let Err(e) = self.tick_one(&r, now_ms).await {
                tracing::warn!(rollout = %r.id, error = %e, "rollout tick failed");
            }
        }
    }

    async fn tick_one(&self, r: &Rollout, now_ms: i64) -> crate::error::Result<()> {
        let plan = spec::plan(r);
        let due = {
            let mut runtime = self.runtime.lock().expect("rollouts poisoned");
            let rt = runtime.entry(r.id.clone()).or_default();
            if rt.last_close_ms == 0 {
                // First tick after a restart: a fresh window starts now.
                rt.last_close_ms = now_ms;
            }
            let due = now_ms - rt.last_close_ms >= plan.policy.window_ms;
            if due {
                rt.last_close_ms = now_ms;
            }
            due
        };
        if !due {
            return Ok(());
        }
        let running = r.state == RolloutState::Running as i32;
        let position = Position {
            step: r.current_step as usize,
            step_start_ms: ms(r.step_start_time),
            started_ms: ms(r.start_time),
        };
        let step = r.current_step as usize;
        let judged = self
            .evidence
            .close(&r.environment, &r.flag_key, now_ms, step, |w| {
                running.then(|| judge::judge(&plan, &position, w, now_ms))
            })?;
        let Some(Some(j)) = judged else {
            return Ok(());
        };
        let decision = from_judgement(&j, r.current_step, from_epoch_ms(now_ms).into());
        let action = match (j.kind, j.reason) {
            (Kind::Promote, _) => Action::Promote,
            (Kind::Rollback, _) => Action::Rollback,
            (Kind::Hold, Reason::AwaitingApproval) => Action::Pause,
            (Kind::Hold, _) => {
                let mut runtime = self.runtime.lock().expect("rollouts poisoned");
                let rt = runtime.entry(r.id.clone()).or_default();
                let base = rt.latest.clone().filter(|l| repeats_last(r, l));
                if repeats_last(r, &decision) {
                    // Same HOLD as logged: count it in memory, no write.
                    let repeats = base.map_or_else(
                        || r.decisions.last().map_or(1, |d| d.repeats),
                        |b| b.repeats,
                    );
                    rt.latest = Some(flagwire_proto::v1::Decision {
                        repeats: repeats.saturating_add(1),
                        ..decision
                    });
                    return Ok(());
                }
                Action::Log
            }
        };
        let meta = Meta {
            actor: "judge".into(),
            reason: format!("{}: {}", j.reason.code(), j.detail),
        };
        let judged = Judged {
            step: r.current_step,
            decision,
        };
        if j.kind != Kind::Hold {
            tracing::info!(
                rollout = %r.id,
                flag = %r.flag_key,
                environment = %r.environment,
                decision = ?j.kind,
                reason = j.reason.code(),
                detail = %j.detail,
                "rollout decision"
            );
        }
        // One span per decision acted on (exported over OTLP when OpenTelemetry is on).
        let span = tracing::info_span!(target: "flagwire::rollout", "rollout decision", rollout = %r.id, flag = %r.flag_key, environment = %r.environment, decision = ?j.kind, reason = j.reason.code());
        self.transition(&meta, Some(&r.id), action, Some(judged))
            .instrument(span)
            .await
            .map(|_| ())
    }

    /// Deletes the windows of rollouts that ended longer ago than the retention.
    fn sweep(&self) {
        let now = self.clock.now();
        let ended: Vec<String> = self
            .catalog
            .read()
            .rollouts
            .values()
            .filter(|r| !is_active(r))
            .filter(|r| {
                r.end_time
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .is_some_and(|end| end + self.options.retention < now)
            })
            .map(|r| r.id.clone())
            .collect();
        for id in ended {
            if let Err(e) = self.evidence.forget(&id) {
                tracing::warn!(rollout = %id, error = %e, "could not delete old windows");
            }
        }
    }
}
