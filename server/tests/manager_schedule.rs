//! Scheduled changes and ramps on the real binary: applied at their time, exactly once even
//! across a kill -9 and restart, listed and cancellable; a ramp stepping to its target, pausing
//! and rolling back.

mod common;

use common::*;
use flagwire_proto::v1::*;
use std::time::{Duration, Instant, SystemTime};
use tonic::Code;

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

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn scheduled_changes_apply_once_across_a_crash_and_can_be_cancelled() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &["--shutdown-grace-secs", "0.5"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["promo", "banner", "legacy"] {
        create_flag(&mut admin, on(key)).await;
    }
    let mut rollouts = server.rollouts().await;
    let now = SystemTime::now();
    let soon = schedule(
        &mut rollouts,
        disable("promo"),
        now + Duration::from_millis(1_500),
    )
    .await;
    let cancelled = schedule(
        &mut rollouts,
        disable("banner"),
        now + Duration::from_millis(1_000),
    )
    .await;
    let whole = {
        let mut f = flag(&mut admin, "legacy").await;
        f.description = "replaced at a time".into();
        rollouts
            .schedule_change(ScheduleChangeRequest {
                change: Some(ScheduledChange {
                    at: Some((now + Duration::from_millis(1_500)).into()),
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
    assert_eq!(
        ScheduledChangeState::try_from(soon.state),
        Ok(ScheduledChangeState::Pending)
    );
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

    // The server dies before the time and comes back after it: applied once, on restart.
    server.kill9();
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    server = server.restart();
    let mut admin = server.admin().await;
    until("the scheduled change", async || {
        !flag(&mut admin, "promo").await.environments["production"].enabled
    })
    .await;
    until("the whole-flag change", async || {
        flag(&mut admin, "legacy").await.description == "replaced at a time"
    })
    .await;
    // And it stays applied once across another restart.
    server.terminate();
    server = server.restart();
    let mut admin = server.admin().await;
    let mut rollouts2 = server.rollouts().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        flag(&mut admin, "promo").await.version,
        promo_version + 1,
        "applied exactly once"
    );
    assert!(
        flag(&mut admin, "banner").await.environments["production"].enabled,
        "cancelled never applies"
    );
    let all = list(&mut rollouts2, true).await;
    let by_id = |id: &str| all.iter().find(|c| c.id == id).unwrap().clone();
    assert_eq!(
        ScheduledChangeState::try_from(by_id(&soon.id).state),
        Ok(ScheduledChangeState::Applied)
    );
    assert_eq!(
        ScheduledChangeState::try_from(by_id(&cancelled.id).state),
        Ok(ScheduledChangeState::Cancelled)
    );
    assert!(list(&mut rollouts2, false).await.is_empty());
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

    // Bad schedules are refused.
    let err = rollouts2
        .schedule_change(ScheduleChangeRequest {
            change: Some(ScheduledChange {
                step: Some(disable("promo")),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("change.at"), "{err:?}");
    let err = rollouts2
        .schedule_change(ScheduleChangeRequest {
            change: Some(ScheduledChange {
                at: Some(SystemTime::now().into()),
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
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, on("new-search")).await;
    create_flag(&mut admin, on("new-pricing")).await;
    let mut rollouts = server.rollouts().await;
    let ramp = |key: &str, secs| Ramp {
        flag_key: key.into(),
        environment: "production".into(),
        variant: "on".into(),
        other_variant: "off".into(),
        from_basis_points: 0,
        to_basis_points: 10_000,
        duration: Some(prost_types::Duration {
            seconds: secs,
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
    let started = Instant::now();
    let r = rollouts
        .create_ramp(CreateRampRequest {
            ramp: Some(ramp("new-search", 2)),
            reason: "gradual".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramp
        .unwrap();
    assert_eq!(RampState::try_from(r.state), Ok(RampState::Running));
    assert_eq!(weights(&flag(&mut admin, "new-search").await), [0, 10_000]);
    let mut seen = Vec::new();
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
    loop {
        let now = get(r.id.clone()).await;
        if seen.last() != Some(&now.current_basis_points) {
            seen.push(now.current_basis_points);
        }
        if RampState::try_from(now.state) == Ok(RampState::Completed) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "ramp stuck: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, [0, 2_500, 5_000, 7_500, 10_000]);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "steps follow the schedule"
    );
    assert_eq!(weights(&flag(&mut admin, "new-search").await), [10_000, 0]);

    // Pause holds the weight; rollback serves the other variant to everyone.
    let r = rollouts
        .create_ramp(CreateRampRequest {
            ramp: Some(ramp("new-pricing", 2)),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .ramp
        .unwrap();
    until("the first step", async || {
        get(r.id.clone()).await.steps_done >= 1
    })
    .await;
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
    tokio::time::sleep(Duration::from_millis(1_200)).await;
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
    let mut bad = ramp("new-pricing", 2);
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
