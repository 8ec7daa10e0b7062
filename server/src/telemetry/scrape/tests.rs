use super::*;
use flagwire_proto::v1::{Decision, Environment, Execution, Rollout, RolloutState, RolloutStep};

#[test]
fn the_catalog_view_counts_rollouts_decisions_and_kills() {
    let mut state = State::default();
    let env = Environment {
        key: "prod".into(),
        revision: 7,
        ..Default::default()
    };
    state.envs.insert("prod".into(), env);
    let decision = |kind: DecisionKind, reason: &str, repeats| Decision {
        kind: kind as i32,
        reason_code: reason.into(),
        repeats,
        ..Default::default()
    };
    let rollout = Rollout {
        id: "r1".into(),
        flag_key: "f".into(),
        environment: "prod".into(),
        state: RolloutState::Running as i32,
        current_step: 1,
        step_start_time: Some(prost_types::Timestamp::default()),
        steps: vec![
            RolloutStep {
                basis_points: 100,
                ..Default::default()
            },
            RolloutStep {
                basis_points: 2_500,
                ..Default::default()
            },
        ],
        decisions: vec![
            decision(DecisionKind::Hold, "MIN_DURATION", 4),
            decision(DecisionKind::Promote, "HEALTHY", 0),
        ],
        ..Default::default()
    };
    state.releases.insert(
        "r1".into(),
        flagwire_core::release::wire::from_rollout(&rollout),
    );
    for (id, kind, s) in [
        ("x1", "kill", ExecutionState::Succeeded),
        ("x2", "kill", ExecutionState::Undone),
        ("x3", "plan", ExecutionState::Failed),
    ] {
        let execution = Execution {
            id: id.into(),
            kind: kind.into(),
            state: s as i32,
            ..Default::default()
        };
        state.executions.insert(id.into(), execution);
    }
    let view = CatalogView::of(&state);
    assert_eq!(view.revisions["prod"], 7);
    assert_eq!(view.rollouts[&("prod".to_owned(), "running")], 1);
    assert_eq!(view.rollouts[&("prod".to_owned(), "completed")], 0);
    assert_eq!(
        view.canary,
        [(["r1".into(), "prod".into(), "f".into()], 0.25)]
    );
    let hold = ("prod".to_owned(), "hold", "MIN_DURATION".to_owned());
    assert_eq!(view.decisions[&hold], 4);
    let promote = ("prod".to_owned(), "promote", "HEALTHY".to_owned());
    assert_eq!(
        view.decisions[&promote], 1,
        "an entry without repeats counts once"
    );
    assert_eq!(view.kills, 2);
    assert_eq!(view.executions[&("kill".to_owned(), "undone")], 1);
    assert_eq!(view.executions[&("plan".to_owned(), "failed")], 1);
    assert_eq!(view.executions[&("plan".to_owned(), "running")], 0);
}
