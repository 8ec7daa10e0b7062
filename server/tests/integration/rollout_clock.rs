//! Rollouts on compressed time: the real server (in process, real sled in a temp dir, real
//! gRPC on loopback) driven by a manual clock, so hours of windows and steps pass in seconds.
//! Reports are synthetic and deterministic; the judge's statistics are calibrated separately
//! (`tests/sim`).

use crate::support::Connect;
use crate::support::rollout::*;
use crate::support::rollout_harness::*;
use flagwire_proto::v1::*;
use tonic::Code;

#[tokio::test]
async fn a_healthy_rollout_reaches_everyone_in_its_minimum_time() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    assert_eq!(state(&r), RolloutState::Running);
    let serve::Kind::Split(split) = default_rule(&flag(&h).await) else {
        panic!("not a split")
    };
    let weights: Vec<_> = split
        .entries
        .iter()
        .map(|e| (e.variant.as_str(), e.weight, e.label.as_str()))
        .collect();
    assert_eq!(
        weights,
        [
            ("on", 500, "canary"),
            ("off", 9_000, ""),
            ("off", 500, "control")
        ]
    );
    assert_eq!(
        (split.salt.as_str(), split.rollout_id.as_str()),
        (r.id.as_str(), r.id.as_str())
    );

    let mut minutes = 0;
    let mut last = r.clone();
    while state(&last) == RolloutState::Running {
        last = h
            .window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
        minutes += 1;
        if minutes == 31 {
            let serve::Kind::Split(split) = default_rule(&flag(&h).await) else {
                panic!()
            };
            assert_eq!(
                split.entries[0].weight, 2_500,
                "promoted to 25 % after 30 minutes"
            );
        }
        assert!(
            minutes <= 91,
            "still running after {minutes} minutes: {:?}",
            reasons(&last)
        );
    }
    // Three steps of 30 minutes, each promoted at the first window close past its minimum.
    assert_eq!(minutes, 90);
    assert_eq!(state(&last), RolloutState::Completed);
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("on".into())
    );
    let log = reasons(&last);
    assert_eq!(log.first().map(String::as_str), Some("STARTED"));
    let promotions: Vec<_> = last
        .decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Promote as i32 && d.actor == "judge")
        .map(|d| (d.step, d.reason_code.as_str()))
        .collect();
    assert_eq!(
        promotions,
        [
            (0, "STEP_HEALTHY"),
            (1, "STEP_HEALTHY"),
            (2, "STEP_HEALTHY")
        ]
    );
    let holds = last
        .decisions
        .iter()
        .find(|d| d.reason_code == "MIN_DURATION")
        .unwrap();
    assert!(
        holds.repeats > 1,
        "repeated HOLDs fold into one entry: {holds:?}"
    );
    let promote = last.decisions.iter().rfind(|d| d.actor == "judge").unwrap();
    assert_eq!(promote.cohorts.len(), 2);
    assert_eq!(promote.cohorts[0].cohort, "canary");
    assert!(promote.cohorts[0].n >= 30_000 && (promote.cohorts[0].error_rate - 0.01).abs() < 1e-9);
    assert!(
        promote
            .tests
            .iter()
            .any(|t| t.name == "error_rate" && !t.flagged)
    );
    assert_eq!(last.blast_radius_basis_points, 10_000);
    let ack = last.acknowledgement.clone().unwrap();
    assert!(ack.revision > 0 && ack.environment == "prod");

    // Every step is an ordinary, audited flag change made by the judge.
    let events = h
        .admin()
        .await
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "checkout".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let by_judge: Vec<_> = events
        .iter()
        .filter(|e| e.actor == "judge")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(by_judge.len(), 3, "{by_judge:?}");
    assert!(by_judge.contains(&"release.complete"), "{by_judge:?}");
    assert_eq!(
        flag(&h).await.version,
        6,
        "create, enable, start, two promotions, completion"
    );
}

#[tokio::test]
async fn an_error_regression_rolls_back_on_its_own_with_the_evidence() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    let mut last = r.clone();
    let mut minutes = 0;
    while state(&last) == RolloutState::Running {
        // 2.2 % errors on the canary against 1 % on control: not critical, but a regression.
        last = h
            .window(&mut client, &mut metrics, &r, 2_000, (44, 20))
            .await;
        minutes += 1;
        assert!(
            minutes <= 10,
            "not rolled back after {minutes} windows: {:?}",
            reasons(&last)
        );
    }
    assert_eq!(state(&last), RolloutState::RolledBack);
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );
    let d = last.decisions.last().unwrap();
    assert_eq!(
        (d.kind, d.reason_code.as_str(), d.actor.as_str()),
        (
            DecisionKind::Rollback as i32,
            "ERROR_RATE_REGRESSION",
            "judge"
        )
    );
    let test = d.tests.iter().find(|t| t.name == "error_rate").unwrap();
    assert!(test.flagged && test.p_value < test.alpha, "{test:?}");
    assert!(d.cohorts[0].error_rate > d.cohorts[1].error_rate);
    assert!(
        d.cohorts[0].error_rate_lower > d.cohorts[1].error_rate,
        "{:?}",
        d.cohorts
    );
    assert_eq!(last.blast_radius_requests, 2_000 * minutes);
    assert_eq!(last.blast_radius_errors, 44 * minutes);
    assert_eq!(last.blast_radius_basis_points, 500);
    assert_eq!(last.time_to_detect.unwrap().seconds, 60 * minutes as i64);
    assert!(last.rollback_revision > 0);
    assert_eq!(
        last.acknowledgement.as_ref().unwrap().revision,
        last.rollback_revision
    );
    assert!(last.latest_decision.is_some());

    // Finished rollouts take no more actions.
    let err = client
        .promote_rollout(PromoteRolloutRequest {
            id: r.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

#[tokio::test]
async fn a_critical_error_rate_rolls_back_at_the_first_window() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    let last = h
        .window(&mut client, &mut metrics, &r, 1_000, (150, 10))
        .await;
    assert_eq!(state(&last), RolloutState::RolledBack);
    assert_eq!(
        last.decisions.last().unwrap().reason_code,
        "CRITICAL_ERROR_RATE"
    );
    let _ = last;
}

#[tokio::test]
async fn rollouts_and_their_windows_survive_a_restart() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    for _ in 0..31 {
        h.window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    let before = get(&mut client, &r.id, 10_000).await;
    assert_eq!(before.current_step, 1);
    h.restart().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let after = get(&mut client, &r.id, 10_000).await;
    assert_eq!(after.current_step, 1);
    assert_eq!(
        after.windows.len(),
        before.windows.len(),
        "closed windows are durable"
    );
    assert_eq!(after.decisions.len(), before.decisions.len());
    // The first window after a restart starts at the restart, then judging goes on.
    let mut last = after;
    for _ in 0..70 {
        if state(&last) != RolloutState::Running {
            break;
        }
        last = h
            .window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    assert_eq!(
        state(&last),
        RolloutState::Completed,
        "{:?}",
        reasons(&last)
    );
}
