//! A simulated rollout or release: the plan, what moves, the traffic, what goes wrong and when.

use flagwire_core::judge::Plan;
use flagwire_core::release::Spec;

use crate::faults::Faults;
use crate::metrics::Metric;
use crate::traffic::Health;

/// When a regression starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Onset {
    /// At this time (ms after the rollout started), whatever the step.
    AtMs(i64),
    /// When the rollout enters this step (index into the plan's steps).
    AtStep(usize),
    /// While the canary is served the stage variant (not the baseline) of every one of these
    /// flags of a release: an interaction, absent while any of them serves its baseline. It
    /// is read from what the state machine says each flag serves
    /// (`flagwire_core::release::serving`), so it starts with the stage that turns the last of
    /// them on.
    WhenServing(Vec<String>),
}

/// A release that is worse than the baseline from some point on (canary only).
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// When the canary starts misbehaving.
    pub onset: Onset,
    /// Canary error rate = control's × this (capped at 1).
    pub error_multiplier: f64,
    /// Every canary latency = control's × this.
    pub latency_multiplier: f64,
    /// The canary's metrics that change, as they then behave (replacing control's of the same
    /// name).
    pub metrics: Vec<Metric>,
}

impl Regression {
    /// A regression of the error rate and latency alone from `onset`.
    pub fn new(onset: Onset, error_multiplier: f64, latency_multiplier: f64) -> Self {
        Self {
            onset,
            error_multiplier,
            latency_multiplier,
            metrics: Vec::new(),
        }
    }

    /// A regression of the team's metrics alone from `onset`: `metrics` replace the healthy
    /// ones of the same names.
    pub fn of_metrics(onset: Onset, metrics: Vec<Metric>) -> Self {
        Self {
            metrics,
            ..Self::new(onset, 1.0, 1.0)
        }
    }

    /// What the canary looks like once the regression is on.
    pub fn apply(&self, healthy: &Health) -> Health {
        let metrics = healthy
            .metrics
            .iter()
            .map(|m| {
                let changed = self.metrics.iter().find(|r| r.name == m.name);
                changed.unwrap_or(m).clone()
            })
            .collect();
        Health {
            error_rate: (healthy.error_rate * self.error_multiplier).min(1.0),
            latency: healthy.latency.scaled(self.latency_multiplier),
            metrics,
        }
    }
}

/// What a scenario moves through the state machine (`flagwire_core::release::apply`).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// One flag through the plan's steps, up to its first complete (100 %) step: the one-flag
    /// release the server stores a rollout as ([`crate::release::rollout_spec`]).
    Rollout,
    /// Several flags over one cohort through the stages of `spec`, the plan holding one step per
    /// stage (as the server's plan of a release does: [`crate::release::steps`]). Every request
    /// reads every flag of the release in one request scope: one outcome and one unit of its
    /// cohort's size per request, as the SDKs report it and the server counts it.
    Release {
        /// The flags and stages.
        spec: Spec,
        /// Share of all traffic from units in a stage's segment (for segment audiences).
        segment_share: f64,
    },
}

/// One row of the calibration: a rollout replayed with many seeds.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name, shown in the table.
    pub name: String,
    /// Mixed into the run seeds, so different scenarios draw independent traffic, while
    /// variants of one scenario that keep it (another alpha) are compared on identical traffic.
    pub stream: String,
    /// The rollout plan the judge works from.
    pub plan: Plan,
    /// What moves: one flag, or a release of several.
    pub kind: Kind,
    /// Total requests per second (canary, control and baseline together).
    pub rps: f64,
    /// How control (and the canary, until a regression) behaves.
    pub health: Health,
    /// What goes wrong with the canary, if anything.
    pub regression: Option<Regression>,
    /// How SDK reports reach the server.
    pub faults: Faults,
    /// Simulated time after which a run stops, whatever the judge says (ms).
    pub horizon_ms: i64,
}

impl Scenario {
    /// The release spec the state machine moves.
    pub fn spec(&self) -> Spec {
        match &self.kind {
            Kind::Rollout => crate::release::rollout_spec(&self.plan),
            Kind::Release { spec, .. } => spec.clone(),
        }
    }

    /// Share of traffic in a segment audience (none for a rollout).
    pub fn segment_share(&self) -> f64 {
        match &self.kind {
            Kind::Rollout => 0.0,
            Kind::Release { segment_share, .. } => *segment_share,
        }
    }

    /// The least time the plan allows before it completes: the minimum durations of the
    /// stages (for a rollout, of the steps before the first complete one).
    pub fn minimum_ms(&self) -> i64 {
        let stages = self.spec().stages.len();
        self.plan
            .steps
            .iter()
            .take(stages)
            .map(|s| s.min_duration_ms)
            .sum()
    }
}
