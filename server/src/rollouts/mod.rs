//! Canary rollouts: definitions, the transitions that rewrite their flag (start, promote,
//! pause, resume, roll back), and the driver that judges them at every window close.
//!
//! A rollout's record lives in the catalog (`r/` keys), so a step change and the flag change it
//! makes commit in one batch: the flag change is an ordinary one (streamed, versioned, audited
//! with the actor `judge` or the person's token). The evidence it is judged on lives beside it
//! ([`evidence`]); the judge itself is `flagwire_core::judge`, a pure function.
//!
//! - [`spec`]: validation, defaults, the judge's plan; [`serve`]: what the flag serves;
//! - [`evidence`]: per-cohort windows from SDK reports; [`decision`]: the decision log;
//! - [`driver`]: the timer that closes windows and acts on the judge.

pub mod decision;
pub mod driver;
pub mod evidence;
pub mod serve;
pub mod spec;
mod transition;

use crate::catalog::{Catalog, Meta};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::instances::Registry;
use evidence::Evidence;
use flagwire_proto::v1::{Decision, Rollout, RolloutState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use transition::Action;

/// Tunables of rollouts.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// Closed windows kept per rollout (older ones are merged pairwise).
    pub max_windows: usize,
    /// How long the windows of a finished rollout are kept.
    pub retention: Duration,
    /// How often the driver looks for windows to close.
    pub tick: Duration,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        Self {
            max_windows: 4_096,
            retention: Duration::from_secs(7 * 24 * 3600),
            tick: Duration::from_millis(100),
        }
    }
}

/// What the driver remembers between ticks (not durable: a restart starts a fresh window).
#[derive(Debug, Default)]
struct Runtime {
    last_close_ms: i64,
    latest: Option<Decision>,
}

/// Rollouts. Shared as `Arc<Rollouts>`.
pub struct Rollouts {
    catalog: Arc<Catalog>,
    evidence: Arc<Evidence>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    options: RolloutOptions,
    runtime: Mutex<HashMap<String, Runtime>>,
    // Runs a rollout's rollback plan when it rolls back (set once the manager exists; weak
    // because the manager holds the rollouts).
    manager: std::sync::OnceLock<std::sync::Weak<crate::manager::Manager>>,
}

/// Whether a rollout is being judged (running or paused).
pub fn is_active(r: &Rollout) -> bool {
    matches!(
        RolloutState::try_from(r.state),
        Ok(RolloutState::Running | RolloutState::Paused)
    )
}

impl Rollouts {
    /// Rollouts over `catalog`, resuming the evidence of every active one.
    pub fn open(
        catalog: Arc<Catalog>,
        evidence: Arc<Evidence>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        options: RolloutOptions,
    ) -> Result<Self> {
        let active: Vec<Rollout> = catalog
            .read()
            .rollouts
            .values()
            .filter(|r| is_active(r))
            .cloned()
            .collect();
        for r in &active {
            evidence.track(&r.id, &r.environment, &r.flag_key)?;
        }
        Ok(Self {
            catalog,
            evidence,
            registry,
            clock,
            options,
            runtime: Mutex::default(),
            manager: std::sync::OnceLock::new(),
        })
    }

    /// Lets rollouts run their rollback plans through `manager`.
    pub fn set_manager(&self, manager: &Arc<crate::manager::Manager>) {
        let _ = self.manager.set(Arc::downgrade(manager));
    }

    /// The clock rollouts go by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Stores a new rollout as DRAFT.
    pub async fn create(&self, meta: &Meta, rollout: Rollout) -> Result<Rollout> {
        self.transition(meta, None, Action::Create(Box::new(rollout)), None)
            .await
    }

    /// Runs a person's action (start, pause, resume, promote, roll back) on rollout `id`.
    pub async fn act(&self, meta: &Meta, id: &str, action: Action) -> Result<Rollout> {
        self.transition(meta, Some(id), action, None).await
    }

    /// One rollout with its latest decision, acknowledgement, and up to `window_limit` recent
    /// windows.
    pub fn get(&self, id: &str, window_limit: usize) -> Result<Rollout> {
        let r = self
            .catalog
            .read()
            .rollouts
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("rollout {id:?}")))?;
        let mut r = self.decorate(r);
        if window_limit > 0 {
            let windows = self.evidence.windows(id, &r.environment, &r.flag_key)?;
            let from = windows.len().saturating_sub(window_limit);
            r.windows = windows[from..].iter().map(evidence_window).collect();
        }
        Ok(r)
    }

    /// Rollouts, newest first, optionally of one environment and/or flag.
    pub fn list(&self, env: &str, flag: &str) -> Vec<Rollout> {
        let mut out: Vec<Rollout> = self
            .catalog
            .read()
            .rollouts
            .values()
            .filter(|r| env.is_empty() || r.environment == env)
            .filter(|r| flag.is_empty() || r.flag_key == flag)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            let t = |r: &Rollout| r.create_time.map(|t| (t.seconds, t.nanos));
            t(b).cmp(&t(a)).then_with(|| a.id.cmp(&b.id))
        });
        out.into_iter().map(|r| self.decorate(r)).collect()
    }

    /// Adds what lives outside the record: the latest decision (with repeats since the last
    /// logged entry) and acknowledgements of the final revision.
    fn decorate(&self, mut r: Rollout) -> Rollout {
        let latest = self
            .runtime
            .lock()
            .expect("rollouts poisoned")
            .get(&r.id)
            .and_then(|rt| rt.latest.clone());
        if let Some(latest) = latest {
            decision::fold_latest(&mut r, &latest);
            r.latest_decision = Some(latest);
        } else {
            r.latest_decision = r.decisions.last().cloned();
        }
        if let Some(ack) = r.acknowledgement.as_mut()
            && ack.revision > 0
        {
            *ack = self.registry.acknowledge(ack);
            if r.rollback_revision > 0 {
                r.rollback_acknowledged = ack.acknowledged;
            }
        }
        r
    }
}

fn evidence_window(w: &flagwire_core::judge::Window) -> flagwire_proto::v1::RolloutWindow {
    use flagwire_core::judge::Summary;
    flagwire_proto::v1::RolloutWindow {
        cohorts: vec![
            decision::stats("canary", &Summary::of(&w.canary)),
            decision::stats("control", &Summary::of(&w.control)),
        ],
        ..evidence::to_proto(w)
    }
}
