//! What a rollout asks of the judge: its steps, guardrails and policy, in plain types so the
//! judge runs without protobuf (and the simulator can build plans cheaply).

use super::gate::Gate;

/// One step of a rollout (a stage of a release).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// Canary share in basis points; control gets as much. `10_000` means "complete": serve
    /// the treatment to everyone.
    pub basis_points: u32,
    /// Minimum time at this step before promotion, in milliseconds.
    pub min_duration_ms: i64,
    /// Minimum measured outcomes per cohort at this step before promotion.
    pub min_outcomes: u64,
    /// After this long (ms) the max-duration policy applies; 0 = promote as soon as the
    /// minimums are met with no regression.
    pub max_duration_ms: i64,
    /// The step has no randomised control (a segment or everyone): it is judged on absolute
    /// limits only, and its minimum outcomes count the canary alone.
    pub no_control: bool,
    /// The step's own absolute limits, applied with the plan's (the stricter wins).
    pub limits: Limits,
    /// The step's max-duration policy, if it differs from the plan's.
    pub max_duration_policy: Option<MaxDuration>,
    /// The step's own gates, checked with the plan's.
    pub gates: Vec<Gate>,
}

/// Absolute limits on the canary cohort; zero means unset.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Maximum error rate.
    pub max_error_rate: f64,
    /// Minimum success rate.
    pub min_success_rate: f64,
    /// Maximum p95, milliseconds.
    pub max_p95_ms: f64,
    /// Maximum p99, milliseconds.
    pub max_p99_ms: f64,
}

impl Limits {
    /// Both sets of limits at once: the stricter of each that is set.
    pub fn stricter(self, other: Limits) -> Limits {
        let low = |a: f64, b: f64| match (a > 0.0, b > 0.0) {
            (true, true) => a.min(b),
            (true, false) => a,
            _ => b,
        };
        Limits {
            max_error_rate: low(self.max_error_rate, other.max_error_rate),
            min_success_rate: self.min_success_rate.max(other.min_success_rate),
            max_p95_ms: low(self.max_p95_ms, other.max_p95_ms),
            max_p99_ms: low(self.max_p99_ms, other.max_p99_ms),
        }
    }
}

/// Guardrails judging the canary cohort. Zero means "unset" for the absolute ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Guardrails {
    /// Test the canary's error rate against control.
    pub relative_error_rate: bool,
    /// Latency quantiles tested against control (e.g. 0.5, 0.95, 0.99).
    pub latency_quantiles: Vec<f64>,
    /// A latency regression also needs canary/control quantile ratio at least this (e.g. 1.10).
    pub latency_ratio: f64,
    /// Absolute maximum canary error rate.
    pub max_error_rate: f64,
    /// Absolute minimum canary success rate.
    pub min_success_rate: f64,
    /// Absolute maximum canary p95, milliseconds.
    pub max_p95_ms: f64,
    /// Absolute maximum canary p99, milliseconds.
    pub max_p99_ms: f64,
    /// Level of the sequential tests over the whole rollout, the bound on a healthy release's
    /// chance of a relative rollback: split equally among the error rate, the latency
    /// quantiles and each relative gate ([`super::AlphaSplit`]); half and half without gates.
    pub alpha: f64,
    /// Error-rate increase over control that is tolerated.
    pub error_rate_margin: f64,
    /// Error-rate difference below which non-inferiority counts as shown.
    pub non_inferiority_margin: f64,
    /// Canary error rate at least this many times control's is critical.
    pub critical_error_ratio: f64,
}

/// The default level of a release with relative gates: more families share it, and at 200
/// requests/s the default 0.03 rolled back 1.05-1.25 % of healthy gated releases (flagwire-sim,
/// rows `gated-aa-*`), over the 1 % aim; 0.02 rolls back 0.60-0.75 % (BENCHMARKS.md).
pub const GATED_ALPHA: f64 = 0.02;

impl Guardrails {
    /// The absolute limits among the guardrails.
    pub fn limits(&self) -> Limits {
        Limits {
            max_error_rate: self.max_error_rate,
            min_success_rate: self.min_success_rate,
            max_p95_ms: self.max_p95_ms,
            max_p99_ms: self.max_p99_ms,
        }
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            relative_error_rate: true,
            latency_quantiles: vec![0.5, 0.95, 0.99],
            latency_ratio: 1.10,
            max_error_rate: 0.0,
            min_success_rate: 0.0,
            max_p95_ms: 0.0,
            max_p99_ms: 0.0,
            // Measured with flagwire-sim (BENCHMARKS.md, "Canary judge calibration"): over a
            // 5 % → 25 % → 50 % rollout at 200 or 2,000 requests/s, 0.05 rolled back 1.0–1.45 %
            // of A/A rollouts (seeds 1–4), over the 1 % aim; 0.03 rolls back 0.45–0.95 % and
            // still catches a 1 % → 2 % error rate on a 5 % canary in a median 4.5–4.8 min at
            // 200 requests/s (target 5 min). Lower would miss that target: at 10 canary
            // requests/s the evidence simply is not there sooner.
            alpha: 0.03,
            error_rate_margin: 0.0,
            non_inferiority_margin: 0.005,
            critical_error_ratio: 3.0,
        }
    }
}

/// What a step does when it reaches its max duration without a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxDuration {
    /// Promote.
    #[default]
    Promote,
    /// Hold for a human.
    Hold,
}

/// How the rollout behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// At a step's max duration.
    pub max_duration: MaxDuration,
    /// Before each promotion, wait for a human (the judge says HOLD / AWAITING_APPROVAL).
    pub pause_for_human: bool,
    /// Roll back when the canary reports nothing for this long (ms); 0 = never.
    pub missing_data_grace_ms: i64,
    /// Decision window length, ms.
    pub window_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_duration: MaxDuration::Promote,
            pause_for_human: false,
            missing_data_grace_ms: 0,
            window_ms: 10_000,
        }
    }
}

/// A whole rollout plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Guardrails.
    pub guardrails: Guardrails,
    /// Policy.
    pub policy: Policy,
    /// Gates checked at every step.
    pub gates: Vec<Gate>,
}

impl Plan {
    /// The gates of step `step`: the plan's, then the step's own.
    pub fn gates_at(&self, step: usize) -> impl Iterator<Item = &Gate> {
        let own = self.steps.get(step).into_iter().flat_map(|s| &s.gates);
        self.gates.iter().chain(own)
    }
}

/// Where a rollout is: the judge's only state besides the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Current step index.
    pub step: usize,
    /// When the current step began (ms since the epoch).
    pub step_start_ms: i64,
    /// When the rollout started (ms since the epoch).
    pub started_ms: i64,
}
