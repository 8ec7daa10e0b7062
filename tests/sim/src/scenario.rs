//! A simulated rollout: the plan, the traffic, what goes wrong and when.

use flagwire_core::judge::Plan;

use crate::faults::Faults;
use crate::traffic::Health;

/// When a regression starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Onset {
    /// At this time (ms after the rollout started), whatever the step.
    AtMs(i64),
    /// When the rollout enters this step (index into the plan's steps).
    AtStep(usize),
}

/// A release that is worse than the baseline from some point on (canary only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regression {
    /// When the canary starts misbehaving.
    pub onset: Onset,
    /// Canary error rate = control's × this (capped at 1).
    pub error_multiplier: f64,
    /// Every canary latency = control's × this.
    pub latency_multiplier: f64,
}

impl Regression {
    /// What the canary looks like once the regression is on.
    pub fn apply(&self, healthy: Health) -> Health {
        Health {
            error_rate: (healthy.error_rate * self.error_multiplier).min(1.0),
            latency: healthy.latency.scaled(self.latency_multiplier),
        }
    }
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
    /// The least time the plan allows before it reaches 100 %: the minimum durations of the
    /// steps before the first complete one.
    pub fn minimum_ms(&self) -> i64 {
        self.plan
            .steps
            .iter()
            .take_while(|s| s.basis_points < crate::COMPLETE)
            .map(|s| s.min_duration_ms)
            .sum()
    }
}
