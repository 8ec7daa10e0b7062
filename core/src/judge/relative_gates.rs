//! Relative gates: the canary against control on the team's own metrics, with anytime-valid
//! sequential tests sharing the rollout's level with the built-in relative tests.
//!
//! NOT IMPLEMENTED YET (issue 14, in progress): every relative gate is reported unchecked.

use super::gate::{GateResult, RelativeGate};
use super::plan::Guardrails;
use super::reason::Reason;
use super::{TestResult, Totals};

/// Tests every relative gate over the whole rollout's totals, pushing its test and its gate
/// result; returns the first regression found.
pub fn test<'a>(
    gates: impl Iterator<Item = &'a RelativeGate>,
    _guardrails: &Guardrails,
    _totals: &Totals,
    _tests: &mut Vec<TestResult>,
    results: &mut Vec<GateResult>,
) -> Option<(Reason, String)> {
    for g in gates {
        results.push(GateResult {
            name: g.name.clone(),
            kind: "relative",
            value: 0.0,
            control_value: None,
            threshold: g.margin,
            passed: true,
            checked: false,
            rollback: false,
            detail: "relative gates are not implemented yet".into(),
        });
    }
    None
}
