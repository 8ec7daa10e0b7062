//! Releases: several flags of one environment moved through stages over one cohort, judged at
//! every window close; a single-flag canary rollout is a release of one flag (the Rollout API
//! is a view of it, see `flagwire_core::release::wire`).
//!
//! A release's record lives in the catalog (`l/` keys), so a stage change and the flag changes
//! it makes commit in one batch, one revision: the flag changes are ordinary ones (streamed,
//! versioned, audited with the actor `judge` or the person's token). What changes is decided by
//! the pure state machine `flagwire_core::release`; the evidence it is judged on lives beside
//! it ([`evidence`]); the judge is `flagwire_core::judge`, also pure.
//!
//! - [`spec`]: validation, defaults, the judge's plan ([`limits`]: the parts rollouts share;
//!   [`gates`]: gates on the team's metrics and Prometheus; [`rollout`]: a one-flag rollout's
//!   own checks); [`serve`]: flag rewrites per stage; [`prometheus`]: the Prometheus gates'
//!   queries;
//! - [`evidence`]: per-cohort windows from SDK reports; [`decision`]: the decision log;
//! - [`transition`]: one event as one catalog write; [`driver`]: the timer that judges.
//!
//! A release that rolls back with a rollback plan announces it on [`Releases::subscribe`];
//! the manager (which imports this module, never the reverse) runs the plan.

pub mod decision;
pub mod driver;
pub mod evidence;
pub mod gates;
pub mod limits;
pub mod prometheus;
pub mod rollout;
pub mod serve;
pub mod spec;
pub mod transition;

use crate::catalog::{Catalog, Meta};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::instances::Registry;
use evidence::Evidence;
use flagwire_core::release::wire;
use flagwire_proto::v1::{Decision, Release};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use transition::Command;

/// Tunables of releases.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// Closed windows kept per release (older ones are merged pairwise).
    pub max_windows: usize,
    /// How long the windows of a finished release are kept.
    pub retention: Duration,
    /// How often the driver (and the manager's timer) look for due work.
    pub tick: Duration,
    /// Where Prometheus gates are evaluated; without it they fail (and their releases hold).
    pub prometheus: Option<prometheus::PrometheusOptions>,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        Self {
            max_windows: 4_096,
            retention: Duration::from_secs(7 * 24 * 3600),
            tick: Duration::from_millis(100),
            prometheus: None,
        }
    }
}

/// A release rolled back and names a rollback plan to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The release.
    pub release_id: String,
    /// The plan to execute.
    pub plan_id: String,
}

/// What the driver remembers between ticks (not durable: a restart starts a fresh window).
#[derive(Debug, Default)]
struct Runtime {
    last_close_ms: i64,
    latest: Option<Decision>,
    // Consecutive failed evaluations of each Prometheus gate, by gate name.
    failures: HashMap<String, u32>,
}

/// Releases. Shared as `Arc<Releases>`.
pub struct Releases {
    catalog: Arc<Catalog>,
    evidence: Arc<Evidence>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    options: ReleaseOptions,
    prometheus: Option<prometheus::Prometheus>,
    runtime: Mutex<HashMap<String, Runtime>>,
    // Rollbacks with a plan, for the manager. Unbounded: one message per rollback, and a plan
    // that was never started would be a silent failure of the rollback.
    rolled_back: tokio::sync::mpsc::UnboundedSender<RolledBack>,
}

impl Releases {
    /// Releases over `catalog`, resuming the evidence of every active one; rollbacks that name
    /// a plan are sent on the returned receiver.
    pub fn open(
        catalog: Arc<Catalog>,
        evidence: Arc<Evidence>,
        registry: Arc<Registry>,
        options: ReleaseOptions,
    ) -> Result<(Self, tokio::sync::mpsc::UnboundedReceiver<RolledBack>)> {
        let active: Vec<Release> = catalog
            .read()
            .releases
            .values()
            .filter(|r| wire::active(r))
            .cloned()
            .collect();
        for r in &active {
            evidence.track(r)?;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let clock = Arc::clone(catalog.clock());
        let prometheus = options
            .prometheus
            .as_ref()
            .map(prometheus::Prometheus::new)
            .transpose()
            // Each message names its flag.
            .map_err(|e| Error::FailedPrecondition(e.to_string()))?;
        let releases = Self {
            catalog,
            evidence,
            registry,
            clock,
            options,
            prometheus,
            runtime: Mutex::default(),
            rolled_back: tx,
        };
        Ok((releases, rx))
    }

    /// Stores a new release (or one-flag rollout) as DRAFT: `command` is a create.
    pub async fn act_new(&self, meta: &Meta, command: Command) -> Result<Release> {
        if let Command::Create(r) = &command
            && self.prometheus.is_none()
            && gates::uses_prometheus(r)
        {
            // A bad definition says what is wrong with it first.
            spec::normalise(&self.catalog.read(), (**r).clone())?;
            self.check_prometheus(r)?;
        }
        self.transition(meta, None, command, None).await
    }

    /// Runs a person's command on release `id`.
    pub async fn act(&self, meta: &Meta, id: &str, command: Command) -> Result<Release> {
        if matches!(command, Command::Start) {
            let stored = self.catalog.read().releases.get(id).cloned();
            if let Some(r) = stored {
                self.check_prometheus(&r)?;
            }
        }
        self.transition(meta, Some(id), command, None).await
    }

    /// Refuses a release with Prometheus gates when the server has no Prometheus to ask: it
    /// could only hold.
    fn check_prometheus(&self, r: &Release) -> Result<()> {
        if self.prometheus.is_none() && gates::uses_prometheus(r) {
            return Err(Error::FailedPrecondition(
                "the release has Prometheus gates and the server was started without \
                 --prometheus-url"
                    .into(),
            ));
        }
        Ok(())
    }

    /// One release with its latest decision, acknowledgement, and up to `window_limit` recent
    /// windows.
    pub fn get(&self, id: &str, window_limit: usize) -> Result<Release> {
        let r = self
            .catalog
            .read()
            .releases
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("release {id:?}")))?;
        let mut r = self.decorate(r);
        if window_limit > 0 {
            let windows = self.evidence.windows(id)?;
            let from = windows.len().saturating_sub(window_limit);
            r.windows = windows[from..].iter().map(decision::window).collect();
        }
        Ok(r)
    }

    /// Releases, newest first, optionally of one environment and/or moving one flag.
    pub fn list(&self, env: &str, flag: &str) -> Vec<Release> {
        let mut out: Vec<Release> = self
            .catalog
            .read()
            .releases
            .values()
            .filter(|r| env.is_empty() || r.environment == env)
            .filter(|r| flag.is_empty() || r.flags.iter().any(|f| f.flag_key == flag))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            let t = |r: &Release| r.create_time.map(|t| (t.seconds, t.nanos));
            t(b).cmp(&t(a)).then_with(|| a.id.cmp(&b.id))
        });
        out.into_iter().map(|r| self.decorate(r)).collect()
    }

    /// Adds what lives outside the record: the latest decision (with repeats since the last
    /// logged entry) and acknowledgements of the final revision.
    fn decorate(&self, mut r: Release) -> Release {
        let latest = self
            .runtime
            .lock()
            .expect("releases poisoned")
            .get(&r.id)
            .and_then(|rt| rt.latest.clone());
        if let Some(latest) = latest {
            wire::fold_latest(&mut r, &latest);
            r.latest_decision = Some(latest);
        } else {
            r.latest_decision = r.decisions.last().cloned();
        }
        if let Some(ack) = r.acknowledgement.as_mut()
            && ack.revision > 0
        {
            *ack = self.registry.acknowledge(ack);
        }
        r
    }
}
