//! The timer that runs releases: every tick it closes the windows that are due, asks the judge,
//! and hands PROMOTE and ROLLBACK to the state machine as the judge's events (one catalog write
//! each); HOLDs are logged when they change and counted in memory while they repeat. Paused
//! releases keep collecting windows but are not judged; a release awaiting approval is judged
//! for rollback only (the state machine refuses the judge's promotion there).

use super::decision::{Acted, act_on, attach_metrics, cohort_metrics};
use super::evidence::{epoch_ms, from_epoch_ms};
use super::transition::{Command, Judged};
use super::{Releases, spec};
use crate::catalog::Meta;
use crate::clock::Timers;
use flagwire_core::judge::{self, Kind, Position};
use flagwire_core::release::{Event, Phase, wire};
use flagwire_proto::v1::{PrometheusGate, Release, gate};
use std::sync::Arc;
use std::time::SystemTime;
use tracing::Instrument;

/// A Prometheus gate on a server without `--prometheus-url` (started before it was removed):
/// a failure every time.
fn unconfigured(name: &str, g: &PrometheusGate, failures: u32) -> judge::External {
    judge::External {
        name: name.to_owned(),
        value: None,
        control_value: None,
        comparison: super::gates::to_comparison(g.comparison),
        threshold: g.threshold,
        consecutive_failures: failures + 1,
        rollback_after_failures: g.rollback_after_failures,
        detail: "the server was started without --prometheus-url".into(),
    }
}

fn ms(t: Option<prost_types::Timestamp>) -> i64 {
    t.and_then(|t| SystemTime::try_from(t).ok())
        .map_or(0, epoch_ms)
}

impl Releases {
    /// Runs the driver until `stop` resolves, marking each finished pass on `timers.rollouts`.
    pub async fn drive(
        self: Arc<Self>,
        timers: Arc<Timers>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut interval = tokio::time::interval(self.options.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        let mut leading = false;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = interval.tick() => {}
            }
            // Only the leader closes windows and judges (catalog::leader).
            let Some(token) = self.catalog.leadership() else {
                leading = false;
                self.gather_for_leader();
                continue;
            };
            if !leading {
                leading = true;
                // Gathered here as a follower, the closed windows in memory are as old as
                // the tracking: the previous leader closed more since.
                if let Err(e) = self.evidence.reload_closed() {
                    tracing::warn!(error = %e, "reloading release windows failed");
                }
            }
            let at = self.clock.now();
            crate::catalog::leader::as_leader(token, self.tick()).await;
            timers.rollouts.beat(at);
            ticks += 1;
            // The retention sweep reads the store; once every few hundred ticks is plenty.
            if ticks % 600 == 1 {
                self.sweep();
            }
        }
    }

    /// On a replica that does not lead (only on a shared store): gathers evidence for every
    /// active release and hands it to the leader (see `evidence`).
    fn gather_for_leader(&self) {
        let active: Vec<Release> = self
            .catalog
            .read()
            .releases
            .values()
            .filter(|r| wire::active(r))
            .cloned()
            .collect();
        let gathered = self
            .evidence
            .follow(&active)
            .and_then(|()| self.evidence.flush());
        if let Err(e) = gathered {
            tracing::warn!(error = %e, "handing evidence to the leader failed");
        }
    }

    /// Closes every due window and acts on the judge's decisions (one pass).
    pub async fn tick(&self) {
        let now_ms = epoch_ms(self.clock.now());
        let active: Vec<Release> = self
            .catalog
            .read()
            .releases
            .values()
            .filter(|r| wire::active(r))
            .cloned()
            .collect();
        for r in active {
            if let Err(e) = self.tick_one(&r, now_ms).await {
                tracing::warn!(release = %r.id, error = %e, "release tick failed");
            }
        }
    }

    async fn tick_one(&self, r: &Release, now_ms: i64) -> crate::error::Result<()> {
        let plan = spec::plan(&self.catalog.read(), r);
        let due = {
            let mut runtime = self.runtime.lock().expect("releases poisoned");
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
        let state = wire::state(r);
        // Judged while a stage is served and no person holds it.
        let judging = state.stage.is_some()
            && matches!(state.phase, Phase::Running | Phase::AwaitingApproval);
        let position = Position {
            step: r.current_stage as usize,
            step_start_ms: ms(r.stage_start_time),
            started_ms: ms(r.start_time),
        };
        let external = if judging {
            self.evaluate_prometheus(r).await
        } else {
            Vec::new()
        };
        if !self.evidence.is_tracked(&r.id) {
            // Started on another replica, or led there until now: resume its stored windows
            // (shared when the store is) and gather from here on.
            self.evidence.track(r)?;
        }
        let judged = self
            .evidence
            .close(&r.id, now_ms, r.current_stage as usize, |w| {
                judging.then(|| {
                    let j = judge::judge_with(&plan, &position, w, now_ms, &external);
                    (j, cohort_metrics(&plan, position.step, w))
                })
            })?;
        let Some(Some((j, metrics))) = judged else {
            return Ok(());
        };
        let Acted {
            event,
            entry: mut decision,
            kind,
        } = act_on(&j, r, from_epoch_ms(now_ms).into());
        attach_metrics(&mut decision, metrics);
        if event == Event::Hold {
            let mut runtime = self.runtime.lock().expect("releases poisoned");
            let rt = runtime.entry(r.id.clone()).or_default();
            let base = rt.latest.clone().filter(|l| wire::repeats_last(r, l));
            if wire::repeats_last(r, &decision) {
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
        }
        let meta = Meta {
            actor: "judge".into(),
            reason: format!("{}: {}", decision.reason_code, decision.detail),
        };
        if kind != Kind::Hold {
            tracing::info!(
                release = %r.id,
                environment = %r.environment,
                decision = ?kind,
                reason = %decision.reason_code,
                detail = %decision.detail,
                "release decision"
            );
        }
        let judged = Judged {
            stage: r.current_stage,
            event,
            decision,
        };
        // One span per decision acted on (exported over OTLP when OpenTelemetry is on).
        let flags: Vec<&str> = r.flags.iter().map(|f| f.flag_key.as_str()).collect();
        let span = tracing::info_span!(target: "flagwire::rollout", "rollout decision", rollout = %r.id, flag = %flags.join(","), environment = %r.environment, decision = ?kind, reason = %judged.decision.reason_code);
        self.transition(&meta, Some(&r.id), Command::Promote, Some(judged))
            .instrument(span)
            .await
            .map(|_| ())
    }

    /// Evaluates the Prometheus gates of `r`'s current stage (release-wide and the stage's own)
    /// concurrently, keeping each gate's count of failures in a row.
    async fn evaluate_prometheus(&self, r: &Release) -> Vec<judge::External> {
        let stage = r.stages.get(r.current_stage as usize);
        let stage_gates = stage.into_iter().flat_map(|s| &s.gates);
        let queries: Vec<(&str, &PrometheusGate)> = r
            .gates
            .iter()
            .chain(stage_gates)
            .filter_map(|g| match &g.kind {
                Some(gate::Kind::Prometheus(p)) => Some((g.name.as_str(), p)),
                _ => None,
            })
            .collect();
        if queries.is_empty() {
            return Vec::new();
        }
        let failures = |name: &str| {
            let runtime = self.runtime.lock().expect("releases poisoned");
            let rt = runtime.get(&r.id);
            rt.and_then(|rt| rt.failures.get(name).copied())
                .unwrap_or(0)
        };
        let evaluated = futures::future::join_all(queries.iter().map(|(name, g)| {
            let before = failures(name);
            async move {
                match &self.prometheus {
                    Some(p) => p.evaluate(name, g, r, before).await,
                    None => unconfigured(name, g, before),
                }
            }
        }))
        .await;
        let mut runtime = self.runtime.lock().expect("releases poisoned");
        let rt = runtime.entry(r.id.clone()).or_default();
        for e in &evaluated {
            rt.failures.insert(e.name.clone(), e.consecutive_failures);
        }
        evaluated
    }

    /// Deletes the windows of releases that ended longer ago than the retention.
    fn sweep(&self) {
        let now = self.clock.now();
        let ended: Vec<String> = self
            .catalog
            .read()
            .releases
            .values()
            .filter(|r| !wire::active(r))
            .filter(|r| {
                r.end_time
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .is_some_and(|end| end + self.options.retention < now)
            })
            .map(|r| r.id.clone())
            .collect();
        for id in ended {
            if let Err(e) = self.evidence.forget(&id) {
                tracing::warn!(release = %id, error = %e, "could not delete old windows");
            }
        }
    }
}
