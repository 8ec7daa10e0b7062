//! Decision log entries from the judge's [`Judgement`] (and what the driver does with each:
//! [`act_on`]), and windows as the wire shows them. (A person's entries, and folding repeated
//! HOLDs, are `flagwire_core::release::wire`'s.)

use flagwire_core::judge::{Judgement, Kind, Plan, Reason, Summary, Totals, Window};
use flagwire_core::release::{By, Event, Phase, wire};
use flagwire_proto::v1::{
    CohortStats, Decision, DecisionKind, GateResult, MetricStat, Release, RolloutWindow, TestResult,
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

/// The team's own metrics of the cohorts a decision at `step` was judged on (as
/// [`flagwire_core::judge::Summary`] is: the release's controlled stages, or the stage alone
/// without control), canary then control; the judge itself keeps no per-metric summary.
pub fn cohort_metrics(plan: &Plan, step: usize, windows: &[Window]) -> [Vec<MetricStat>; 2] {
    let uncontrolled = |i: usize| plan.steps.get(i).is_some_and(|s| s.no_control);
    let t = Totals::of(windows, step, uncontrolled);
    let (canary, control) = if uncontrolled(step) {
        (&t.step_canary, &t.step_control)
    } else {
        (&t.canary, &t.control)
    };
    let stats = |c: &flagwire_core::judge::Cohort| {
        c.metrics
            .iter()
            .map(|(name, m)| crate::metrics::custom::stat(name, m))
            .collect()
    };
    [stats(canary), stats(control)]
}

/// Puts each cohort's metrics (see [`cohort_metrics`]) into the entry's cohort statistics.
pub fn attach_metrics(entry: &mut Decision, [canary, control]: [Vec<MetricStat>; 2]) {
    for c in &mut entry.cohorts {
        c.metrics = match c.cohort.as_str() {
            "canary" => canary.clone(),
            "control" => control.clone(),
            _ => continue,
        };
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
                checked: g.checked,
            })
            .collect(),
    }
}

/// What the driver does with a judgement of a release at its current stage.
#[derive(Debug, Clone)]
pub struct Acted {
    /// The event for the state machine.
    pub event: Event,
    /// The log entry: what happened, which is not always what the judge wished.
    pub entry: Decision,
    /// The kind of decision the entry records (for the server log and spans).
    pub kind: Kind,
}

/// What the judge's `j` does to release `r` (judged at its current stage at `time`), and the
/// log entry that says so. A PROMOTE while the next stage awaits approval changes nothing: it
/// is logged as the HOLD AWAITING_APPROVAL it is (so it repeats the entry that began the wait),
/// with the judge's detail. A stage without control is judged on the canary alone, so its
/// entry has no control cohort: the numbers logged are the ones the decision used.
pub fn act_on(j: &Judgement, r: &Release, time: Timestamp) -> Acted {
    let mut entry = from_judgement(j, r.current_stage, time);
    let controlled = r
        .stages
        .get(r.current_stage as usize)
        .is_none_or(|s| wire::audience_of(s.audience.as_ref()).controlled());
    if !controlled {
        entry.cohorts.retain(|c| c.cohort != "control");
    }
    let awaiting = wire::phase_of(r.state) == Phase::AwaitingApproval;
    let (event, kind) = match (j.kind, j.reason) {
        (Kind::Rollback, _) => (Event::Rollback(By::Judge), Kind::Rollback),
        (Kind::Promote, _) | (Kind::Hold, Reason::AwaitingApproval) if awaiting => {
            entry = awaiting_approval(entry, r.approval_stage);
            (Event::Hold, Kind::Hold)
        }
        (Kind::Promote, _) => (Event::Promote(By::Judge), Kind::Promote),
        (Kind::Hold, Reason::AwaitingApproval) => (Event::Pause, Kind::Hold),
        (Kind::Hold, _) => (Event::Hold, Kind::Hold),
    };
    Acted { event, entry, kind }
}

/// The entry of a judge's wish to promote into `stage`, which awaits approval: a HOLD, with the
/// judge's detail.
pub fn awaiting_approval(judged: Decision, stage: u32) -> Decision {
    Decision {
        kind: DecisionKind::Hold as i32,
        reason_code: "AWAITING_APPROVAL".into(),
        detail: format!("{}; stage {stage} requires approval", judged.detail),
        ..judged
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

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_proto::v1::{ReleaseState, Stage};

    fn judgement(kind: Kind, reason: Reason) -> Judgement {
        Judgement {
            kind,
            reason,
            detail: "minimums met, no regression".into(),
            canary: Summary::default(),
            control: Summary::default(),
            tests: Vec::new(),
            gates: Vec::new(),
        }
    }

    #[test]
    fn a_promotion_while_awaiting_approval_is_logged_and_reported_as_the_hold_it_is() {
        let r = Release {
            state: ReleaseState::AwaitingApproval as i32,
            stages: vec![Stage::default(), Stage::default()],
            approval_stage: 1,
            ..Release::default()
        };
        let time = Timestamp::default();
        let acted = act_on(&judgement(Kind::Promote, Reason::StepHealthy), &r, time);
        assert_eq!((acted.event, acted.kind), (Event::Hold, Kind::Hold));
        assert_eq!(
            (acted.entry.kind, acted.entry.reason_code.as_str()),
            (DecisionKind::Hold as i32, "AWAITING_APPROVAL")
        );
        assert_eq!(
            acted.entry.detail,
            "minimums met, no regression; stage 1 requires approval"
        );
        let running = Release {
            state: ReleaseState::Running as i32,
            ..r
        };
        let acted = act_on(
            &judgement(Kind::Promote, Reason::StepHealthy),
            &running,
            time,
        );
        assert_eq!(
            (acted.event, acted.kind, acted.entry.reason_code.as_str()),
            (Event::Promote(By::Judge), Kind::Promote, "STEP_HEALTHY")
        );
    }
}
