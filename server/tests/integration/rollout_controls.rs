//! People steering rollouts on compressed time (the harness of `rollout_clock`): pause, resume,
//! promote and roll back by hand, a policy that waits for a human at each promotion, and bad
//! definitions refused with the field and the reason, changing nothing.

use crate::support::Connect;
use crate::support::rollout::*;
use crate::support::rollout_harness::*;
use flagwire_proto::v1::*;
use std::time::Duration;
use tonic::Code;

#[tokio::test]
async fn people_pause_resume_promote_and_roll_back() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    let reason = |s: &str| s.to_owned();
    let paused = client
        .pause_rollout(PauseRolloutRequest {
            id: r.id.clone(),
            reason: reason("looking at dashboards"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(state(&paused), RolloutState::Paused);
    let d = paused.decisions.last().unwrap();
    assert_eq!(
        (d.reason_code.as_str(), d.detail.as_str(), d.actor.as_str()),
        ("MANUAL_PAUSE", "looking at dashboards", "admin")
    );
    // Paused: windows still close, but nothing is decided, even past the minimum.
    for _ in 0..31 {
        h.window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    let still = get(&mut client, &r.id, 0).await;
    assert_eq!(
        (state(&still), still.current_step),
        (RolloutState::Paused, 0)
    );
    let resumed = client
        .resume_rollout(ResumeRolloutRequest {
            id: r.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(state(&resumed), RolloutState::Running);
    let promoted = client
        .promote_rollout(PromoteRolloutRequest {
            id: r.id.clone(),
            reason: reason("ship it"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(promoted.current_step, 1);
    assert_eq!(
        promoted.decisions.last().unwrap().reason_code,
        "MANUAL_PROMOTE"
    );
    let rolled = client
        .rollback_rollout(RollbackRolloutRequest {
            id: r.id.clone(),
            reason: reason("pager"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(state(&rolled), RolloutState::RolledBack);
    assert_eq!(
        rolled.decisions.last().unwrap().reason_code,
        "MANUAL_ROLLBACK"
    );
    assert_eq!(rolled.blast_radius_basis_points, 2_500);
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );
    // A rolled-back flag can get a new rollout.
    let again = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    assert_eq!(state(&again), RolloutState::Running);
    let listed = client
        .list_rollouts(ListRolloutsRequest {
            environment: "prod".into(),
            flag_key: "checkout".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollouts;
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn pause_for_a_human_waits_at_each_promotion() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let mut def = definition("checkout", "prod", steps(), MIN);
    def.policy.as_mut().unwrap().pause_for_human = true;
    let r = create_and_start(&mut client, def).await;
    let mut last = r.clone();
    for _ in 0..30 {
        last = h
            .window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    assert_eq!(state(&last), RolloutState::Paused);
    assert_eq!(
        last.decisions.last().unwrap().reason_code,
        "AWAITING_APPROVAL"
    );
    assert_eq!(last.current_step, 0);
    let promoted = client
        .promote_rollout(PromoteRolloutRequest {
            id: r.id.clone(),
            reason: "approved".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(
        (state(&promoted), promoted.current_step),
        (RolloutState::Running, 1)
    );
}

#[tokio::test]
async fn bad_definitions_are_refused_with_the_field_and_change_nothing() {
    let h = Harness::start().await;
    h.checkout().await;
    let mut client = h.rollouts().await;
    let good = || definition("checkout", "prod", steps(), MIN);
    let cases: Vec<(Rollout, Code, &str)> = vec![
        (
            Rollout {
                flag_key: String::new(),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.flagKey",
        ),
        (
            Rollout {
                flag_key: "nope".into(),
                ..good()
            },
            Code::NotFound,
            "flag",
        ),
        (
            Rollout {
                environment: "staging".into(),
                ..good()
            },
            Code::NotFound,
            "environment",
        ),
        (
            Rollout {
                treatment_variant: "maybe".into(),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.treatmentVariant",
        ),
        (
            Rollout {
                baseline_variant: "on".into(),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.baselineVariant",
        ),
        (
            Rollout {
                steps: vec![],
                ..good()
            },
            Code::InvalidArgument,
            "rollout.steps",
        ),
        (
            Rollout {
                steps: vec![step(6_000, MIN, 0)],
                ..good()
            },
            Code::InvalidArgument,
            "rollout.steps[0].basisPoints",
        ),
        (
            Rollout {
                steps: vec![step(500, MIN, 0), step(500, MIN, 0)],
                ..good()
            },
            Code::InvalidArgument,
            "rollout.steps[1].basisPoints",
        ),
        (
            Rollout {
                guardrails: Some(Guardrails {
                    alpha: 2.0,
                    ..Default::default()
                }),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.guardrails.alpha",
        ),
        (
            Rollout {
                guardrails: Some(Guardrails {
                    relative_latency_quantiles: vec![1.5],
                    ..Default::default()
                }),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.guardrails.relativeLatencyQuantiles[0]",
        ),
        (
            definition("checkout", "prod", steps(), Duration::from_millis(500)),
            Code::InvalidArgument,
            "rollout.policy.window",
        ),
    ];
    for (r, code, field) in cases {
        let err = client
            .create_rollout(CreateRolloutRequest { rollout: Some(r) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    assert!(
        client
            .list_rollouts(ListRolloutsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .rollouts
            .is_empty()
    );
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );

    // Defaults are filled in and shown.
    let created = create(&mut client, good()).await;
    assert_eq!(state(&created), RolloutState::Draft);
    let g = created.guardrails.clone().unwrap();
    assert_eq!(
        (
            g.alpha,
            g.latency_ratio_threshold,
            g.relative_latency_quantiles.clone()
        ),
        (0.03, 1.1, vec![0.5, 0.95, 0.99])
    );
    assert!(g.relative_error_rate);
    // Step minimums are whole windows (the judge decides at window closes).
    let mut odd = good();
    odd.steps[0].min_duration = Some(prost_types::Duration {
        seconds: 90,
        nanos: 0,
    });
    let odd = create(&mut client, odd).await;
    assert_eq!(odd.steps[0].min_duration.unwrap().seconds, 120);
    assert_eq!(odd.steps[1].min_duration.unwrap().seconds, 1_800);
    // A draft changes nothing until started; one active rollout per flag and environment.
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );
    let other = create(&mut client, good()).await;
    client
        .start_rollout(StartRolloutRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    let err = client
        .start_rollout(StartRolloutRequest {
            id: other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = client
        .start_rollout(StartRolloutRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = client
        .get_rollout(GetRolloutRequest {
            id: "ro-missing".into(),
            window_limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .resume_rollout(ResumeRolloutRequest {
            id: String::new(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
