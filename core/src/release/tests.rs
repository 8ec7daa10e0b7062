//! The state machine as a table: each row is (state, event) → (state, changed flags, log), with
//! a description that is the failure message. The property that flags never drift from the
//! release is in `core/tests/release_properties.rs`.

use super::*;

/// Seed 000's mem0 epic, cut down: stage 0 shadow writes for 10 %, stage 1 fast-path too at
/// 50 %, stage 2 (approval required) reads on and shadow off at 50 %, stage 3 everyone.
pub(crate) fn mem0() -> Spec {
    let flag = |key: &str| FlagSpec {
        key: key.into(),
        baseline: "off".into(),
    };
    let stage = |audience, on: &[&str], approval| StageSpec {
        audience,
        variants: on
            .iter()
            .map(|k| (k.to_string(), "on".to_string()))
            .collect(),
        require_approval: approval,
    };
    Spec {
        flags: vec![flag("shadow"), flag("fast-path"), flag("reads")],
        stages: vec![
            stage(Audience::Share(1_000), &["shadow"], false),
            stage(Audience::Share(5_000), &["shadow", "fast-path"], false),
            stage(Audience::Share(5_000), &["fast-path", "reads"], true),
            stage(Audience::Everyone, &["fast-path", "reads"], false),
        ],
    }
}

fn at(phase: Phase, stage: Option<usize>, rolled_back: &[&str]) -> State {
    State {
        phase,
        stage,
        rolled_back: rolled_back.iter().map(|s| s.to_string()).collect(),
    }
}

struct Row {
    what: &'static str,
    from: State,
    event: Event,
    to: Result<(State, Vec<&'static str>, Action), Refusal>,
}

fn row(
    what: &'static str,
    from: State,
    event: Event,
    to: State,
    changed: &[&'static str],
    action: Action,
) -> Row {
    Row {
        what,
        from,
        event,
        to: Ok((to, changed.to_vec(), action)),
    }
}

fn refused(what: &'static str, from: State, event: Event, refusal: Refusal) -> Row {
    Row {
        what,
        from,
        event,
        to: Err(refusal),
    }
}

#[test]
fn every_transition_of_the_table() {
    use Phase::*;
    let all = ["shadow", "fast-path", "reads"];
    let flag = |f: &str| f.to_string();
    let rows = vec![
        row(
            "start begins stage 0 on every flag",
            at(Draft, None, &[]),
            Event::Start,
            at(Running, Some(0), &[]),
            &all,
            Action::Started,
        ),
        row(
            "the judge promotes 0 -> 1: the share grows, so every flag changes",
            at(Running, Some(0), &[]),
            Event::Promote(By::Judge),
            at(Running, Some(1), &[]),
            &all,
            Action::StageStarted,
        ),
        row(
            "the judge stops before a stage that requires approval",
            at(Running, Some(1), &[]),
            Event::Promote(By::Judge),
            at(AwaitingApproval, Some(1), &[]),
            &[],
            Action::AwaitingApproval,
        ),
        row(
            "approval begins the stage: shadow off, reads on; fast-path's serving is unchanged",
            at(AwaitingApproval, Some(1), &[]),
            Event::Approve { stage: 2 },
            at(Running, Some(2), &[]),
            &["shadow", "reads"],
            Action::StageStarted,
        ),
        row(
            "a person's promotion approves the stage",
            at(Running, Some(1), &[]),
            Event::Promote(By::Person),
            at(Running, Some(2), &[]),
            &["shadow", "reads"],
            Action::StageStarted,
        ),
        row(
            "promoting the last stage completes: every flag fixed",
            at(Running, Some(3), &[]),
            Event::Promote(By::Judge),
            at(Completed, Some(3), &[]),
            &all,
            Action::Completed,
        ),
        row(
            "a judge hold changes nothing",
            at(Running, Some(1), &[]),
            Event::Hold,
            at(Running, Some(1), &[]),
            &[],
            Action::Held,
        ),
        row(
            "the judge rolls back: every flag to baseline in one transition",
            at(Running, Some(2), &[]),
            Event::Rollback(By::Judge),
            at(RolledBack, Some(2), &[]),
            &all,
            Action::RolledBack,
        ),
        row(
            "the judge guards a stage that awaits the next one's approval",
            at(AwaitingApproval, Some(1), &[]),
            Event::Rollback(By::Judge),
            at(RolledBack, Some(1), &[]),
            &all,
            Action::RolledBack,
        ),
        row(
            "a partial rollback returns one flag and the release goes on",
            at(Running, Some(1), &[]),
            Event::RollbackFlag {
                flag: flag("fast-path"),
                hold: false,
                by: By::Person,
            },
            at(Running, Some(1), &["fast-path"]),
            &["fast-path"],
            Action::FlagRolledBack,
        ),
        row(
            "a partial rollback with hold pauses",
            at(Running, Some(1), &[]),
            Event::RollbackFlag {
                flag: flag("fast-path"),
                hold: true,
                by: By::Person,
            },
            at(Paused, Some(1), &["fast-path"]),
            &["fast-path"],
            Action::FlagRolledBack,
        ),
        row(
            "a partially rolled-back flag stays at baseline through the next stages",
            at(Running, Some(1), &["fast-path"]),
            Event::Promote(By::Person),
            at(Running, Some(2), &["fast-path"]),
            &["shadow", "reads"],
            Action::StageStarted,
        ),
        row(
            "rolling back the last flag still served rolls the release back",
            at(Running, Some(1), &["shadow", "fast-path"]),
            Event::RollbackFlag {
                flag: flag("reads"),
                hold: false,
                by: By::Person,
            },
            at(RolledBack, Some(1), &all),
            &["reads"],
            Action::RolledBack,
        ),
        row(
            "a completed release keeps partial rollbacks at baseline",
            at(Running, Some(3), &["reads"]),
            Event::Promote(By::Person),
            at(Completed, Some(3), &["reads"]),
            &["shadow", "fast-path"],
            Action::Completed,
        ),
        row(
            "pause keeps serving",
            at(Running, Some(1), &[]),
            Event::Pause,
            at(Paused, Some(1), &[]),
            &[],
            Action::Paused,
        ),
        row(
            "resume",
            at(Paused, Some(1), &[]),
            Event::Resume,
            at(Running, Some(1), &[]),
            &[],
            Action::Resumed,
        ),
        row(
            "a forced write pauses the release and changes nothing it serves",
            at(Running, Some(1), &[]),
            Event::ForcedWrite {
                flag: flag("reads"),
            },
            at(Paused, Some(1), &[]),
            &[],
            Action::ForcedWrite,
        ),
        row(
            "a person rolls back a paused release",
            at(Paused, Some(1), &[]),
            Event::Rollback(By::Person),
            at(RolledBack, Some(1), &[]),
            &all,
            Action::RolledBack,
        ),
        refused(
            "the judge never acts on a paused release",
            at(Paused, Some(1), &[]),
            Event::Promote(By::Judge),
            Refusal::Phase {
                phase: Paused,
                what: "promote",
            },
        ),
        refused(
            "the judge never rolls back a paused release",
            at(Paused, Some(1), &[]),
            Event::Rollback(By::Judge),
            Refusal::Phase {
                phase: Paused,
                what: "roll back",
            },
        ),
        refused(
            "no second start",
            at(Running, Some(0), &[]),
            Event::Start,
            Refusal::Phase {
                phase: Running,
                what: "start",
            },
        ),
        refused(
            "approving the wrong stage",
            at(AwaitingApproval, Some(1), &[]),
            Event::Approve { stage: 3 },
            Refusal::NotAwaiting {
                asked: 3,
                awaiting: Some(2),
            },
        ),
        refused(
            "approving while nothing awaits",
            at(Running, Some(1), &[]),
            Event::Approve { stage: 2 },
            Refusal::Phase {
                phase: Running,
                what: "approve a stage",
            },
        ),
        refused(
            "a flag twice",
            at(Running, Some(1), &["reads"]),
            Event::RollbackFlag {
                flag: flag("reads"),
                hold: false,
                by: By::Person,
            },
            Refusal::AlreadyRolledBack(flag("reads")),
        ),
        refused(
            "a flag not in the release",
            at(Running, Some(1), &[]),
            Event::RollbackFlag {
                flag: flag("other"),
                hold: false,
                by: By::Person,
            },
            Refusal::UnknownFlag(flag("other")),
        ),
        refused(
            "an ended release stays ended",
            at(RolledBack, Some(1), &[]),
            Event::Promote(By::Person),
            Refusal::Phase {
                phase: RolledBack,
                what: "promote",
            },
        ),
        refused(
            "resume what is not paused",
            at(Running, Some(1), &[]),
            Event::Resume,
            Refusal::Phase {
                phase: Running,
                what: "resume",
            },
        ),
    ];
    let spec = mem0();
    let mut failures = Vec::new();
    for r in rows {
        let got = apply(&spec, &r.from, &r.event).map(|t| {
            let changed: Vec<&str> = t.changes.iter().map(|c| c.flag.as_str()).collect();
            let changed: Vec<&'static str> = ["shadow", "fast-path", "reads"]
                .into_iter()
                .filter(|f| changed.contains(f))
                .collect();
            (t.state, changed, t.log.action)
        });
        if got != r.to {
            failures.push(format!("{}:\n  want {:?}\n  got  {:?}", r.what, r.to, got));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_first_stage_that_requires_approval_serves_nothing_until_approved() {
    let mut spec = mem0();
    spec.stages[0].require_approval = true;
    let t = apply(&spec, &State::default(), &Event::Start).unwrap();
    assert_eq!(t.state.phase, Phase::AwaitingApproval);
    assert_eq!(t.state.stage, None);
    assert!(t.changes.is_empty(), "nothing served before approval");
    assert_eq!(t.log.action, Action::AwaitingApproval);
    let paused = apply(&spec, &t.state, &Event::Pause).unwrap().state;
    let resumed = apply(&spec, &paused, &Event::Resume).unwrap().state;
    assert_eq!(resumed.phase, Phase::AwaitingApproval, "still awaiting");
    let t = apply(&spec, &resumed, &Event::Approve { stage: 0 }).unwrap();
    assert_eq!(t.state.stage, Some(0));
    assert_eq!(t.changes.len(), 3);
}

#[test]
fn stage_serving_names_the_audience_and_the_variants() {
    let spec = mem0();
    let state = at(Phase::Running, Some(1), &[]);
    let shadow = serving(&spec, &state, &spec.flags[0]).unwrap();
    assert_eq!(
        shadow,
        Serving::Stage {
            variant: "on".into(),
            baseline: "off".into(),
            audience: Audience::Share(5_000)
        }
    );
    // Stage 1 does not name reads: its audience is served the baseline, still as a cohort, so
    // requests that read only reads are attributed to the stage.
    let reads = serving(&spec, &state, &spec.flags[2]).unwrap();
    assert!(matches!(reads, Serving::Stage { ref variant, .. } if variant == "off"));
    assert!(!Audience::Everyone.controlled() && !Audience::Share(EVERYONE).controlled());
    assert!(Audience::Share(9_999).controlled());
    assert_eq!(
        apply(&Spec::default(), &State::default(), &Event::Start),
        Err(Refusal::Empty)
    );
}

#[test]
fn refusals_name_phases_and_stages_as_people_read_them() {
    let spec = mem0();
    let ended = at(Phase::RolledBack, Some(1), &[]);
    let refusal = apply(&spec, &ended, &Event::Approve { stage: 2 }).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the release is ROLLED_BACK: cannot approve a stage"
    );
    let awaiting = at(Phase::AwaitingApproval, Some(1), &[]);
    let refusal = apply(&spec, &awaiting, &Event::Approve { stage: 3 }).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "stage 3 does not await approval (stage 2 does)"
    );
}
