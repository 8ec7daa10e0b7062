//! Decision log entries from the judge's [`Judgement`], and windows as the wire shows them. (A
//! person's entries, and folding repeated HOLDs, are `flagwire_core::release::wire`'s.)

use flagwire_core::judge::{Judgement, Kind, Summary, Window};
use flagwire_proto::v1::{
    CohortStats, Decision, DecisionKind, GateResult, RolloutWindow, TestResult,
};
use prost_types::Timestamp;

/// The wire statistics of a cohort summary.
pub fn stats(cohort: &str, s: &Summary) -> CohortStats {
    CohortStats {
        cohort: cohort.to_owned(),
        n: s.n,
        error_rate: s.error_rate,
        error_rate_lower: s.error_rate_lower,
        error_rate_upper: s.error_rate_upper,
        p50_us: s.p50_us,
        p95_us: s.p95_us,
        p99_us: s.p99_us,
        evaluations: s.evaluations,
        errors: s.errors,
        metrics: Vec::new(),
    }
}

/// The proto kind of a judge's kind.
pub fn kind(k: Kind) -> DecisionKind {
    match k {
        Kind::Hold => DecisionKind::Hold,
        Kind::Promote => DecisionKind::Promote,
        Kind::Rollback => DecisionKind::Rollback,
    }
}

/// A log entry from a judgement.
pub fn from_judgement(j: &Judgement, stage: u32, time: Timestamp) -> Decision {
    Decision {
        time: Some(time),
        kind: kind(j.kind) as i32,
        reason_code: j.reason.code().to_owned(),
        detail: j.detail.clone(),
        step: stage,
        cohorts: vec![stats("canary", &j.canary), stats("control", &j.control)],
        actor: "judge".into(),
        tests: j
            .tests
            .iter()
            .map(|t| TestResult {
                name: t.name.clone(),
                p_value: t.p_value,
                alpha: t.alpha,
                effect: t.effect,
                flagged: t.flagged,
            })
            .collect(),
        repeats: 1,
        gates: j
            .gates
            .iter()
            .map(|g| GateResult {
                name: g.name.clone(),
                kind: g.kind.to_owned(),
                value: g.value,
                control_value: g.control_value.unwrap_or(0.0),
                threshold: g.threshold,
                passed: g.passed,
                detail: g.detail.clone(),
                time: (g.kind == "prometheus").then_some(time),
            })
            .collect(),
    }
}

/// The wire form of a closed window with its cohort statistics (the team's metrics too).
pub fn window(w: &Window) -> RolloutWindow {
    let cohort = |label: &str, c: &flagwire_core::judge::Cohort| CohortStats {
        metrics: c
            .metrics
            .iter()
            .map(|(name, m)| crate::metrics::custom::stat(name, m))
            .collect(),
        ..stats(label, &Summary::of(c))
    };
    RolloutWindow {
        cohorts: vec![cohort("canary", &w.canary), cohort("control", &w.control)],
        ..super::evidence::to_proto(w)
    }
}
