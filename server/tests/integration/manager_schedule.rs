//! Scheduled changes and ramps on a manual clock: applied at their time and not before, exactly
//! once even when the time passes while the server is down, listed and cancellable; a ramp
//! stepping to its target on schedule, pausing and rolling back.

use crate::support::inproc::InProcess;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};
use tonic::Code;

const MIN: Duration = Duration::from_secs(60);

fn on(key: &str) -> Flag {
    let mut f = bool_flag(key, &["production"]);
    f.environments.get_mut("production").unwrap().enabled = true;
    f
}

async fn flag(admin: &mut Admin, key: &str) -> Flag {
    admin
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
}

fn disable(key: &str) -> PlanStep {
    PlanStep {
        action: Some(plan_step::Action::SetEnabled(SetEnabledAction {
            flag_key: key.into(),
            environment: "production".into(),
            enabled: false,
        })),
    }
}

async fn schedule(rollouts: &mut Rollouts, step: PlanStep, at: SystemTime) -> ScheduledChange {
    rollouts
        .schedule_change(ScheduleChangeRequest {
            change: Some(ScheduledChange {
                at: Some(at.into()),
                step: Some(step),
                reason: "launch window closes".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("schedule")
        .into_inner()
        .change
        .unwrap()
}

async fn list(rollouts: &mut Rollouts, done: bool) -> Vec<ScheduledChange> {
    rollouts
        .list_scheduled_changes(ListScheduledChangesRequest {
            flag_key: String::new(),
            include_done: done,
        })
        .await
        .unwrap()
        .into_inner()
        .changes
}

fn state(c: &ScheduledChange) -> ScheduledChangeState {
    ScheduledChangeState::try_from(c.state).unwrap()
}

#[tokio::test]
async fn scheduled_changes_apply_once_across_a_restart_and_can_be_cancelled() {
    let mut server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["promo", "banner", "legacy"] {
        create_flag(&mut admin, on(key)).await;
    }
    let mut rollouts = server.rollouts().await;
    let start = server.now();
    let soon = schedule(&mut rollouts, disable("promo"), start + 60 * MIN).await;
    let cancelled = schedule(&mut rollouts, disable("banner"), start + 30 * MIN).await;
    let whole = {
        let mut f = flag(&mut admin, "legacy").await;
        f.description = "replaced at a time".into();
        rollouts
            .schedule_change(ScheduleChangeRequest {
                change: Some(ScheduledChange {
                    at: Some((start + 60 * MIN).into()),
                    flag: Some(f),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .change
            .unwrap()
    };
    assert_eq!(state(&soon), ScheduledChangeState::Pending);
    let pending: Vec<_> = list(&mut rollouts, false)
        .await
        .iter()
        .map(|c| c.id.clone())
        .collect();
    // By time (ties by id).
    let mut same_time = [soon.id.clone(), whole.id.clone()];
    same_time.sort();
    assert_eq!(pending[0], cancelled.id);
    assert_eq!(pending[1..], same_time);
    rollouts
        .cancel_scheduled_change(CancelScheduledChangeRequest {
            id: cancelled.id.clone(),
            reason: "postponed".into(),
        })
        .await
        .unwrap();
    let err = rollouts
        .cancel_scheduled_change(CancelScheduledChangeRequest {
            id: cancelled.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let promo_version = flag(&mut admin, "promo").await.version;

    // A minute early nothing applies.
    server.advance(59 * MIN);
    server.caught_up().await;
    assert!(flag(&mut admin, "promo").await.environments["production"].enabled);
    assert_eq!(
        list(&mut rollouts, false).await.len(),
        2,
        "both still pending"
    );

    // The time passes while the server is down: applied once, when it comes back.
    server.shut_down().await;
    server.advance(2 * MIN);
    server.restart().await;
    server.caught_up().await;
    let mut admin = server.admin().await;
    assert!(!flag(&mut admin, "promo").await.environments["production"].enabled);
    assert_eq!(
        flag(&mut admin, "legacy").await.description,
        "replaced at a time"
    );
    // And it stays applied once across another restart and more time.
    server.restart().await;
    server.advance(60 * MIN);
    server.caught_up().await;
    let mut admin = server.admin().await;
    let mut rollouts = server.rollouts().await;
    assert_eq!(
        flag(&mut admin, "promo").await.version,
        promo_version + 1,
        "applied exactly once"
    );
    assert!(
        flag(&mut admin, "banner").await.environments["production"].enabled,
        "cancelled never applies"
    );
    let all = list(&mut rollouts, true).await;
    let by_id = |id: &str| all.iter().find(|c| c.id == id).unwrap().clone();
    assert_eq!(state(&by_id(&soon.id)), ScheduledChangeState::Applied);
    assert_eq!(state(&by_id(&whole.id)), ScheduledChangeState::Applied);
    assert_eq!(
        state(&by_id(&cancelled.id)),
        ScheduledChangeState::Cancelled
    );
    assert!(list(&mut rollouts, false).await.is_empty());
    let applied: Vec<_> = admin
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "promo".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .filter(|e| e.action == "flag.set_enabled")
        .collect();
    assert_eq!(applied.len(), 1, "audited once: {applied:?}");
    assert!(applied[0].reason.contains("launch window closes"));
    assert_eq!(
        applied[0].time,
        Some((start + 61 * MIN).into()),
        "stamped with the server's clock at the pass that applied it"
    );

    // Bad schedules are refused.
    let err = rollouts
        .schedule_change(ScheduleChangeRequest {
            change: Some(ScheduledChange {
                step: Some(disable("promo")),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("change.at"), "{err:?}");
    let err = rollouts
        .schedule_change(ScheduleChangeRequest {
            change: Some(ScheduledChange {
                at: Some(server.now().into()),
                step: Some(disable("nope")),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn a_ramp_steps_to_its_target_pauses_and_rolls_back() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, on("new-search")).await;
    create_flag(&mut admin, on("new-pricing")).await;
    let mut rollouts = server.rollouts().await;
    // An hour in four steps: one every 15 minutes.
    let ramp = |key: &str| Ramp {
        flag_key: key.into(),
        environment: "production".into(),
        variant: "on".into(),
        other_variant: "off".into(),
        from_basis_points: 0,
        to_basis_points: 10_000,
        duration: Some(prost_types::Duration {
            seconds: 3_600,
            nanos: 0,
        }),
        steps: 4,
        ..Default::default()
    };
    let weights = |f: &Flag| match f.environments["production"]
        .default_rule
        .clone()
        .unwrap()
        .kind
        .unwrap()
    {
        serve::Kind::Split(s) => s.entries.iter().map(|e| e.weight).collect::<Vec<_>>(),
        serve::Kind::Variant(v) => vec![if v == "on" { 10_000 } else { 0 }],
    };
    let r = rollouts
        .create_ramp(CreateRampRequest {
            ramp: Some(ramp("new-search")),
            reason: "gradual".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramp
        .unwrap();
    assert_eq!(RampState::try_from(r.state), Ok(RampState::Running));
    assert_eq!(weights(&flag(&mut admin, "new-search").await), [0, 10_000]);
    let reader = rollouts.clone();
    let get = |id: String| {
        let mut c = reader.clone();
        async move {
            c.get_ramp(GetRampRequest { id })
                .await
                .unwrap()
                .into_inner()
                .ramp
                .unwrap()
        }
    };
    for expected in [2_500, 5_000, 7_500, 10_000] {
        // A minute before the step the weight holds; at the step it moves.
        server.advance(14 * MIN);
        server.caught_up().await;
        assert_eq!(
            get(r.id.clone()).await.current_basis_points,
            expected - 2_500,
            "stepped early"
        );
        server.advance(MIN);
        server.caught_up().await;
        assert_eq!(get(r.id.clone()).await.current_basis_points, expected);
    }
    let done = get(r.id.clone()).await;
    assert_eq!(RampState::try_from(done.state), Ok(RampState::Completed));
    assert_eq!(weights(&flag(&mut admin, "new-search").await), [10_000, 0]);

    // Pause holds the weight; rollback serves the other variant to everyone.
    let r = rollouts
        .create_ramp(CreateRampRequest {
            ramp: Some(ramp("new-pricing")),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramp
        .unwrap();
    server.advance(15 * MIN);
    server.caught_up().await;
    assert_eq!(get(r.id.clone()).await.steps_done, 1);
    let paused = rollouts
        .pause_ramp(PauseRampRequest {
            id: r.id.clone(),
            reason: "hold".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramp
        .unwrap();
    assert_eq!(RampState::try_from(paused.state), Ok(RampState::Paused));
    server.advance(45 * MIN);
    server.caught_up().await;
    let held = get(r.id.clone()).await;
    assert_eq!(
        held.current_basis_points, paused.current_basis_points,
        "paused ramps do not step"
    );
    let err = rollouts
        .create_rollout(CreateRolloutRequest {
            rollout: Some(Rollout {
                flag_key: "new-pricing".into(),
                environment: "production".into(),
                treatment_variant: "on".into(),
                baseline_variant: "off".into(),
                steps: vec![RolloutStep {
                    basis_points: 500,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    let busy = rollouts
        .start_rollout(StartRolloutRequest { id: err.id })
        .await
        .unwrap_err();
    assert_eq!(
        busy.code(),
        Code::FailedPrecondition,
        "no rollout while a ramp moves the flag"
    );
    rollouts
        .resume_ramp(ResumeRampRequest {
            id: r.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap();
    let rolled = rollouts
        .rollback_ramp(RollbackRampRequest {
            id: r.id.clone(),
            reason: "errors".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramp
        .unwrap();
    assert_eq!(RampState::try_from(rolled.state), Ok(RampState::RolledBack));
    assert_eq!(weights(&flag(&mut admin, "new-pricing").await), [0]);
    let err = rollouts
        .pause_ramp(PauseRampRequest {
            id: r.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let listed = rollouts
        .list_ramps(ListRampsRequest {
            flag_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramps;
    assert_eq!(listed.len(), 2);
    // Bad ramps are refused with the field.
    let mut bad = ramp("new-pricing");
    bad.to_basis_points = 20_000;
    let err = rollouts
        .create_ramp(CreateRampRequest {
            ramp: Some(bad),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("ramp.toBasisPoints"), "{err:?}");
}
