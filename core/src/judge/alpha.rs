//! How a release's level α is shared among its relative tests.
//!
//! Every relative test can roll a release back on its own, so the chance that a healthy
//! release is rolled back by *any* of them is at most the sum of their levels (a union bound;
//! each test is anytime-valid, so looking at every window costs nothing more). The judge
//! therefore splits `guardrails.alpha` into equal shares, one per **family** of tests: the
//! error rate (with its critical-ratio test, which only fires where the error-rate test would),
//! the latency quantiles (sharing their family's share), and each relative gate of the release.
//! With no relative gates this is the split the judge always had, α/2 and α/2, so plans
//! without gates decide exactly as before.
//!
//! Equal shares are the simplest split that keeps the bound. They cost each test little power:
//! a mixture test needs evidence growing with `ln(1/α)`, so at α = 0.03 seven families instead
//! of two (ln(1/0.0043) = 5.5 against ln(1/0.015) = 4.2) ask about a third more samples of
//! each test, not 3.5 times more.

use super::gate::{Gate, RelativeGate};
use super::plan::Plan;

/// The level of each family of relative tests at one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlphaSplit {
    /// The error-rate family (the error-rate and critical-error-rate tests).
    pub error_rate: f64,
    /// The latency family, shared equally by the latency quantiles.
    pub latency: f64,
    /// Each relative gate.
    pub gate: f64,
    /// The number of families the release's α was split into.
    pub families: usize,
}

impl AlphaSplit {
    /// The split of `plan`: its α over the two built-in families and every distinct relative
    /// gate the release can test (the release-wide ones and those of stages with a control;
    /// a stage without control never tests its relative gates, so they take no share).
    pub fn of(plan: &Plan) -> Self {
        let families = 2 + relative_gates(plan).len();
        let share = plan.guardrails.alpha / families as f64;
        Self {
            error_rate: share,
            latency: share,
            gate: share,
            families,
        }
    }
}

/// The distinct relative gates `plan` can test. A gate repeated word for word at several
/// stages is one sequential test over the whole rollout (the relative tests read every
/// controlled window), looked at from more stages, so it counts once.
pub fn relative_gates(plan: &Plan) -> Vec<&RelativeGate> {
    let controlled = plan.steps.iter().filter(|s| !s.no_control);
    let all = plan.gates.iter().chain(controlled.flat_map(|s| &s.gates));
    let mut distinct: Vec<&RelativeGate> = Vec::new();
    for g in all {
        if let Gate::Relative(r) = g
            && !distinct.contains(&r)
        {
            distinct.push(r);
        }
    }
    distinct
}
