//! Releases in the simulator: several flags over one cohort, moved by the real state machine
//! (`flagwire_core::release::apply`) with the judge's decisions handed over as the server's
//! driver hands them; requests that read every flag count one outcome and an evaluation per
//! flag; an interaction regression that needs two flags on.

use flagwire_core::judge::{Judgement, Kind as Decision, Reason, Summary};
use flagwire_core::release::{Audience, By, Event, Phase, Spec, State, apply};
use flagwire_sim::calibration::{RELEASE_FLAGS, Row, healthy_release, rows, typical_plan};
use flagwire_sim::release::{Cohorts, event_for, rollout_spec, serves_all, stage, steps};
use flagwire_sim::{End, Kind, run};

const MINUTE: i64 = 60_000;

fn row(name: &str) -> Row {
    rows()
        .into_iter()
        .find(|r| r.scenario.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

fn judgement(kind: Decision, reason: Reason) -> Judgement {
    Judgement {
        kind,
        reason,
        detail: String::new(),
        canary: Summary::default(),
        control: Summary::default(),
        tests: Vec::new(),
        gates: Vec::new(),
    }
}

/// `spec` after the events, each of which the state machine must accept.
fn after(spec: &Spec, events: &[Event]) -> State {
    events.iter().fold(State::default(), |s, e| {
        apply(spec, &s, e).expect("accepted").state
    })
}

#[test]
fn the_judges_decisions_reach_the_state_machine_as_the_driver_hands_them() {
    use Decision::*;
    let cases = [
        (
            Promote,
            Reason::StepHealthy,
            Phase::Running,
            Event::Promote(By::Judge),
        ),
        (
            Promote,
            Reason::StepHealthy,
            Phase::AwaitingApproval,
            Event::Hold,
        ),
        (
            Rollback,
            Reason::ErrorRateRegression,
            Phase::Running,
            Event::Rollback(By::Judge),
        ),
        (
            Rollback,
            Reason::MaxErrorRate,
            Phase::AwaitingApproval,
            Event::Rollback(By::Judge),
        ),
        (Hold, Reason::AwaitingApproval, Phase::Running, Event::Pause),
        (
            Hold,
            Reason::AwaitingApproval,
            Phase::AwaitingApproval,
            Event::Hold,
        ),
        (
            Hold,
            Reason::SampleRatioMismatch,
            Phase::Running,
            Event::Hold,
        ),
    ];
    for (kind, reason, phase, event) in cases {
        assert_eq!(
            event_for(&judgement(kind, reason), phase),
            event,
            "{kind:?} {reason:?} {phase:?}"
        );
    }
}

#[test]
fn a_request_counts_once_however_many_flags_it_reads() {
    // The SDK reports one cohort outcome per request scope, and the server sizes the cohorts
    // (for the sample-ratio check) by the same requests, not by the flags they read.
    let release = healthy_release("release", 2_000.0);
    let rollout = row("aa-2000").scenario;
    for seed in 0..5 {
        let o = run(&release, seed);
        assert!(o.outcomes > 0);
        assert_eq!(o.evaluations, o.outcomes, "seed {seed}: {o:?}");
        let o = run(&rollout, seed);
        assert_eq!(o.evaluations, o.outcomes, "seed {seed}: {o:?}");
    }
}

#[test]
fn cohorts_follow_what_the_state_machine_serves() {
    let [a, b, _] = RELEASE_FLAGS;
    let spec = Spec {
        flags: healthy_release("r", 1.0).spec().flags,
        stages: vec![
            stage(Audience::Share(500), &[a]),
            stage(Audience::Segment("beta".into()), &[a, b]),
            stage(Audience::Everyone, &[a, b]),
        ],
    };
    let promote = Event::Promote(By::Judge);
    let cohorts = |events: &[Event]| Cohorts::of(&spec, &after(&spec, events), 0.1);
    let c = |canary, control, reads| Cohorts {
        canary,
        control,
        reads,
    };
    // Every flag carries the cohort, the ones serving their baseline to the audience too.
    assert_eq!(cohorts(&[Event::Start]), c(0.05, 0.05, 3));
    assert_eq!(cohorts(&[Event::Start, promote.clone()]), c(0.1, 0.0, 3));
    assert_eq!(
        cohorts(&[Event::Start, promote.clone(), promote.clone()]),
        c(1.0, 0.0, 3)
    );
    let partial = Event::RollbackFlag {
        flag: b.into(),
        hold: false,
        by: By::Person,
    };
    assert_eq!(cohorts(&[Event::Start, partial]), c(0.05, 0.05, 2));
    assert_eq!(
        cohorts(&[Event::Start, Event::Rollback(By::Judge)]),
        c(0.0, 0.0, 0)
    );
    let done = [Event::Start, promote.clone(), promote.clone(), promote];
    assert_eq!(cohorts(&done), c(0.0, 0.0, 0));

    // The plan has a step per stage; the segment and everyone stages have no control.
    let s = steps(&spec, &typical_plan().steps[0]);
    let shape: Vec<_> = s.iter().map(|s| (s.basis_points, s.no_control)).collect();
    assert_eq!(shape, [(500, false), (10_000, true), (10_000, true)]);

    // Both flags of the interaction are on for the canary from the segment stage.
    let both = [a.to_owned(), b.to_owned()];
    assert!(!serves_all(&spec, &after(&spec, &[Event::Start]), &both));
    let segment = after(&spec, &[Event::Start, Event::Promote(By::Judge)]);
    assert!(serves_all(&spec, &segment, &both));
}

#[test]
fn a_rollout_is_the_one_flag_release_the_server_stores() {
    let spec = rollout_spec(&typical_plan());
    assert_eq!(spec.flags.len(), 1);
    let shares: Vec<_> = spec.stages.iter().map(|s| s.audience.clone()).collect();
    assert_eq!(
        shares,
        [500, 2_500, 5_000].map(Audience::Share),
        "the 100 % step is what completion serves, not a stage"
    );
}

#[test]
fn an_interaction_starts_with_the_stage_that_turns_both_flags_on() {
    let r = row("release-interaction-x2-2000");
    for seed in 0..20 {
        let o = run(&r.scenario, seed);
        if o.false_rollback() {
            continue;
        }
        // Stage 1 (25 %, checkout and pricing) starts when stage 0's five minutes are up.
        assert_eq!(o.onset_ms, Some(5 * MINUTE), "seed {seed}");
        // Caught at that stage, within it.
        assert!(o.detection_ms().is_some(), "seed {seed}: {o:?}");
        assert_eq!(o.stage, 1, "seed {seed}: {o:?}");
    }

    // Without pricing ever on, nothing regresses: an A/A release.
    let mut never = r.scenario.clone();
    let Kind::Release { spec, .. } = &mut never.kind else {
        panic!("a release row")
    };
    for s in &mut spec.stages {
        s.variants.remove(RELEASE_FLAGS[1]);
    }
    for seed in 0..20 {
        let o = run(&never, seed);
        assert_eq!(o.onset_ms, None, "seed {seed}");
        assert!(
            o.end == End::Completed || o.false_rollback(),
            "seed {seed}: {o:?}"
        );
    }
}

#[test]
fn the_judge_stops_where_the_state_machine_waits_for_a_person() {
    // A stage that requires approval: the judge's promotion leaves the release awaiting it,
    // judged for rollback only, so it never moves on.
    let mut approval = healthy_release("approval", 2_000.0);
    approval.horizon_ms = 20 * MINUTE;
    let Kind::Release { spec, .. } = &mut approval.kind else {
        panic!("a release")
    };
    spec.stages[1].require_approval = true;
    let o = run(&approval, 1);
    assert_eq!((o.end, o.stage, o.windows), (End::Horizon, 0, 120), "{o:?}");
    assert!(o.holds.iter().any(|&(r, _)| r == Reason::MinDuration));

    // Pause for a human: the judge's "awaiting approval" pauses it; a paused release is not
    // judged (windows still close), so judging stops at the end of stage 0's minimum.
    let mut paused = healthy_release("paused", 2_000.0);
    paused.horizon_ms = 20 * MINUTE;
    paused.plan.policy.pause_for_human = true;
    let o = run(&paused, 1);
    assert_eq!((o.end, o.stage, o.windows), (End::Horizon, 0, 30), "{o:?}");
    assert_eq!(o.holds.last(), Some(&(Reason::AwaitingApproval, 1)));
}
