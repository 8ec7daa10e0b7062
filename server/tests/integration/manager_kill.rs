//! The kill switch (on the server in process): every scope, one revision per environment, durable
//! before the answer, acknowledgements from connected instances, and an exact undo.

use crate::support::inproc::InProcess;
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

const INSTANCE: &str = "00000000-0000-4000-8000-0000000000aa";

fn tagged(key: &str, tags: &[&str]) -> Flag {
    let mut f = bool_flag(key, &["prod", "staging"]);
    f.tags = tags.iter().map(|t| t.to_string()).collect();
    for c in f.environments.values_mut() {
        c.enabled = true;
    }
    f
}

async fn setup(server: &InProcess) -> Admin {
    let mut admin = server.admin().await;
    create_env(&mut admin, "prod").await;
    create_env(&mut admin, "staging").await;
    create_flag(&mut admin, tagged("fast-path", &["mem0-epic"])).await;
    create_flag(&mut admin, tagged("mem0-reads", &["mem0-epic"])).await;
    create_flag(&mut admin, tagged("search", &[])).await;
    admin
}

async fn enabled(admin: &mut Admin, key: &str, env: &str) -> bool {
    admin
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
        .environments[env]
        .enabled
}

async fn revision(admin: &mut Admin, env: &str) -> u64 {
    admin
        .get_environment(GetEnvironmentRequest { key: env.into() })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
        .revision
}

async fn kill(rollouts: &mut Rollouts, kind: scope::Kind, env: &str) -> Execution {
    rollouts
        .kill(KillRequest {
            scope: Some(Scope {
                kind: Some(kind),
                environment: env.into(),
            }),
            reason: "pager: checkout errors".into(),
        })
        .await
        .expect("kill")
        .into_inner()
        .execution
        .unwrap()
}

#[tokio::test]
async fn a_tag_kill_is_one_revision_acknowledged_and_undone_exactly() {
    let server = InProcess::start().await;
    let mut admin = setup(&server).await;
    // `mem0-reads` was already off in staging: the undo must leave it off there.
    set_enabled(&mut admin, "mem0-reads", "staging", false).await;
    let mut rollouts = server.rollouts().await;
    let mut flags = server.flags_as(Some(ADMIN)).await;
    let before = revision(&mut admin, "prod").await;
    // An SDK instance watching prod.
    let mut stream = flags
        .watch(WatchRequest {
            environment: "prod".into(),
            since_revision: before,
            instance_id: INSTANCE.into(),
            sdk_name: "test".into(),
            sdk_version: "0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        next(&mut stream).await,
        watch_response::Event::Heartbeat(_)
    ));

    let e = kill(&mut rollouts, scope::Kind::Tag("mem0-epic".into()), "").await;
    assert_eq!(e.kind, "kill");
    assert_eq!(
        ExecutionState::try_from(e.state),
        Ok(ExecutionState::Succeeded)
    );
    assert_eq!(e.previous.len(), 2);
    // Durable and visible when the call answers; one revision per environment.
    assert!(!enabled(&mut admin, "fast-path", "prod").await);
    assert!(!enabled(&mut admin, "mem0-reads", "prod").await);
    assert!(!enabled(&mut admin, "fast-path", "staging").await);
    assert!(
        enabled(&mut admin, "search", "prod").await,
        "untagged flags stay on"
    );
    assert_eq!(revision(&mut admin, "prod").await, before + 1);
    let ack = e
        .acknowledgements
        .iter()
        .find(|a| a.environment == "prod")
        .unwrap();
    assert_eq!(ack.revision, before + 1);
    // The watcher gets both flags in one change.
    let watch_response::Event::Change(change) = next(&mut stream).await else {
        panic!("expected a change")
    };
    assert_eq!(change.revision, before + 1);
    let Some(change::Kind::FlagsUpserted(batch)) = change.kind else {
        panic!("expected a batch: {change:?}")
    };
    let mut keys: Vec<_> = batch.flags.iter().map(|f| f.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["fast-path", "mem0-reads"]);
    assert!(batch.flags.iter().all(|f| !f.environments["prod"].enabled));

    // The instance acknowledges the revision: GetExecution counts it.
    let get = |rollouts: &mut Rollouts| {
        let mut r = rollouts.clone();
        let id = e.id.clone();
        async move {
            r.get_execution(GetExecutionRequest { id })
                .await
                .unwrap()
                .into_inner()
                .execution
                .unwrap()
        }
    };
    let prod = |x: &Execution| {
        x.acknowledgements
            .iter()
            .find(|a| a.environment == "prod")
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            prod(&get(&mut rollouts).await).connected,
            prod(&get(&mut rollouts).await).acknowledged
        ),
        (1, 0)
    );
    let mut metrics = server.metrics().await;
    metrics
        .report(ReportRequest {
            instance_id: INSTANCE.into(),
            sequence: 1,
            environment: "prod".into(),
            applied_revision: before + 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let a = prod(&get(&mut rollouts).await);
    assert_eq!((a.connected, a.acknowledged), (1, 1));
    assert!(a.last_acknowledged_time.is_some());

    // Undo restores exactly what the kill turned off.
    let undone = rollouts
        .undo_kill(UndoKillRequest {
            execution_id: e.id.clone(),
            reason: "fixed".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    assert_eq!(
        ExecutionState::try_from(undone.state),
        Ok(ExecutionState::Undone)
    );
    assert!(enabled(&mut admin, "fast-path", "prod").await);
    assert!(enabled(&mut admin, "mem0-reads", "prod").await);
    assert!(enabled(&mut admin, "fast-path", "staging").await);
    assert!(
        !enabled(&mut admin, "mem0-reads", "staging").await,
        "was off before the kill"
    );
    assert_eq!(revision(&mut admin, "prod").await, before + 2);
    let err = rollouts
        .undo_kill(UndoKillRequest {
            execution_id: e.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Audited with the reason.
    let events = admin
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "fast-path".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let kill = events
        .iter()
        .find(|ev| ev.action == "flag.kill" && ev.reason == "pager: checkout errors")
        .expect("the kill is audited");
    // With the flag before and after, so the console can show what the kill turned off.
    let prod_enabled = |s: &Option<AuditSubject>| match s.as_ref().and_then(|s| s.kind.as_ref()) {
        Some(audit_subject::Kind::Flag(f)) => f.environments.get("prod").map(|c| c.enabled),
        _ => None,
    };
    assert_eq!(prod_enabled(&kill.before), Some(true));
    assert_eq!(prod_enabled(&kill.after), Some(false));
    let undo = events
        .iter()
        .find(|ev| ev.action == "flag.undo_kill")
        .expect("the undo is audited");
    assert_eq!(prod_enabled(&undo.before), Some(false));
    assert_eq!(prod_enabled(&undo.after), Some(true));
}

#[tokio::test]
async fn kills_by_flag_environment_system_and_rollout() {
    let server = InProcess::start().await;
    let mut admin = setup(&server).await;
    let mut rollouts = server.rollouts().await;

    // One flag in one environment.
    let e = kill(&mut rollouts, scope::Kind::FlagKey("search".into()), "prod").await;
    assert!(!enabled(&mut admin, "search", "prod").await);
    assert!(enabled(&mut admin, "search", "staging").await);
    let envs: Vec<_> = e
        .acknowledgements
        .iter()
        .map(|a| a.environment.as_str())
        .collect();
    assert_eq!(
        envs,
        ["prod"],
        "acknowledgements are counted where the kill applies"
    );
    rollouts
        .undo_kill(UndoKillRequest {
            execution_id: e.id,
            reason: "ok".into(),
        })
        .await
        .unwrap();

    // Everything in one environment.
    let e = kill(&mut rollouts, scope::Kind::SystemWide(true), "staging").await;
    for f in ["fast-path", "mem0-reads", "search"] {
        assert!(!enabled(&mut admin, f, "staging").await, "{f}");
        assert!(enabled(&mut admin, f, "prod").await, "{f}");
    }
    rollouts
        .undo_kill(UndoKillRequest {
            execution_id: e.id,
            reason: "ok".into(),
        })
        .await
        .unwrap();

    // Everything everywhere: one revision per environment.
    let (p, s) = (
        revision(&mut admin, "prod").await,
        revision(&mut admin, "staging").await,
    );
    kill(&mut rollouts, scope::Kind::SystemWide(true), "").await;
    for f in ["fast-path", "mem0-reads", "search"] {
        for env in ["prod", "staging"] {
            assert!(!enabled(&mut admin, f, env).await, "{f} {env}");
        }
    }
    assert_eq!(
        (
            revision(&mut admin, "prod").await,
            revision(&mut admin, "staging").await
        ),
        (p + 1, s + 1)
    );

    // A rollout: its flag goes off and the rollout ends.
    set_enabled(&mut admin, "search", "prod", true).await;
    let created = rollouts
        .create_rollout(CreateRolloutRequest {
            rollout: Some(Rollout {
                flag_key: "search".into(),
                environment: "prod".into(),
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
    rollouts
        .start_rollout(StartRolloutRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    kill(
        &mut rollouts,
        scope::Kind::RolloutId(created.id.clone()),
        "",
    )
    .await;
    assert!(!enabled(&mut admin, "search", "prod").await);
    let r = rollouts
        .get_rollout(GetRolloutRequest {
            id: created.id,
            window_limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(
        RolloutState::try_from(r.state),
        Ok(RolloutState::RolledBack)
    );
}

#[tokio::test]
async fn bad_kills_are_refused_and_change_nothing() {
    let server = InProcess::start().await;
    let mut admin = setup(&server).await;
    let mut rollouts = server.rollouts().await;
    let before = revision(&mut admin, "prod").await;
    let scope = |kind| {
        Some(Scope {
            kind: Some(kind),
            environment: String::new(),
        })
    };
    let cases = [
        (
            KillRequest {
                scope: scope(scope::Kind::Tag("mem0-epic".into())),
                reason: " ".into(),
            },
            Code::InvalidArgument,
            "reason",
        ),
        (
            KillRequest {
                scope: None,
                reason: "x".into(),
            },
            Code::InvalidArgument,
            "scope",
        ),
        (
            KillRequest {
                scope: Some(Scope::default()),
                reason: "x".into(),
            },
            Code::InvalidArgument,
            "scope",
        ),
        (
            KillRequest {
                scope: scope(scope::Kind::FlagKey("nope".into())),
                reason: "x".into(),
            },
            Code::NotFound,
            "nope",
        ),
        (
            KillRequest {
                scope: scope(scope::Kind::Tag("none".into())),
                reason: "x".into(),
            },
            Code::NotFound,
            "none",
        ),
        (
            KillRequest {
                scope: scope(scope::Kind::SystemWide(false)),
                reason: "x".into(),
            },
            Code::InvalidArgument,
            "systemWide",
        ),
        (
            KillRequest {
                scope: Some(Scope {
                    kind: Some(scope::Kind::SystemWide(true)),
                    environment: "qa".into(),
                }),
                reason: "x".into(),
            },
            Code::NotFound,
            "qa",
        ),
    ];
    for (request, code, needle) in cases {
        let err = rollouts.kill(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(needle),
            "{needle}: {}",
            err.message()
        );
    }
    assert_eq!(revision(&mut admin, "prod").await, before);
    // A read-only token cannot kill.
    let ro = create_token(&mut admin, "viewer", Role::ReadOnly, "").await;
    let mut viewer =
        flagwire_proto::grpc::rollout_service_client::RolloutServiceClient::with_interceptor(
            server.channel().await,
            Bearer(Some(ro)),
        );
    let err = viewer
        .kill(KillRequest {
            scope: scope(scope::Kind::SystemWide(true)),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}
