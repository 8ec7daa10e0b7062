//! Decision log entries: from the judge's [`Judgement`] (or a person's action) to the
//! `flagwire.v1.Decision` kept in the rollout, folding repeated HOLDs into one entry.

use flagwire_core::judge::{Judgement, Kind, Summary};
use flagwire_proto::v1::{CohortStats, Decision, DecisionKind, Rollout, TestResult};
use prost_types::Timestamp;

/// Entries kept in a rollout's log; beyond it the oldest HOLD entries (never the first entry,
/// a promotion or a rollback) are dropped so a long rollout cannot grow without bound.
pub const MAX_LOG: usize = 1_000;

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
pub fn from_judgement(j: &Judgement, step: u32, time: Timestamp) -> Decision {
    Decision {
        time: Some(time),
        kind: kind(j.kind) as i32,
        reason_code: j.reason.code().to_owned(),
        detail: j.detail.clone(),
        step,
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
    }
}

/// A log entry for a person's action (or the server's own, like STARTED).
pub fn manual(
    kind: DecisionKind,
    code: &str,
    detail: &str,
    actor: &str,
    step: u32,
    time: Timestamp,
) -> Decision {
    Decision {
        time: Some(time),
        kind: kind as i32,
        reason_code: code.to_owned(),
        detail: detail.to_owned(),
        step,
        actor: actor.to_owned(),
        repeats: 1,
        ..Decision::default()
    }
}

/// Whether `d` repeats the last logged entry (same kind, reason and step).
pub fn repeats_last(r: &Rollout, d: &Decision) -> bool {
    r.decisions.last().is_some_and(|last| {
        last.kind == d.kind && last.reason_code == d.reason_code && last.step == d.step
    })
}

/// Puts `latest` (the driver's in-memory count of a repeated HOLD) in place of the log's last
/// entry when it repeats it.
pub fn fold_latest(r: &mut Rollout, latest: &Decision) {
    if repeats_last(r, latest)
        && let Some(last) = r.decisions.last_mut()
    {
        *last = latest.clone();
    }
}

/// Appends `d` to the log, or folds it into the last entry when it repeats it.
pub fn append(r: &mut Rollout, d: Decision) {
    if repeats_last(r, &d)
        && let Some(last) = r.decisions.last_mut()
    {
        let repeats = last.repeats.saturating_add(1);
        *last = Decision { repeats, ..d };
        return;
    }
    r.decisions.push(d);
    if r.decisions.len() > MAX_LOG
        && let Some(i) = r
            .decisions
            .iter()
            .skip(1)
            .position(|e| e.kind == DecisionKind::Hold as i32)
    {
        r.decisions.remove(i + 1);
    }
}
