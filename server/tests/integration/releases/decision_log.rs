//! What a release's decision log says: what happened, not what was wished. A judge's PROMOTE
//! while the next stage awaits approval is the HOLD it is; a start whose first stage needs
//! approval logs the start and then the wait; a kill of a release logs its rollback with the
//! kill's reason, nothing else; a stage without control is judged (and logged) on its canary
//! alone; refusals name states as the wire does.

use super::*;

fn everyone() -> Option<flagwire_proto::v1::Audience> {
    Some(flagwire_proto::v1::Audience {
        kind: Some(audience::Kind::Everyone(true)),
    })
}

fn codes(r: &Release) -> Vec<(i32, &str)> {
    r.decisions
        .iter()
        .map(|d| (d.kind, d.reason_code.as_str()))
        .collect()
}

#[tokio::test]
async fn while_a_stage_awaits_approval_the_judge_s_wish_to_promote_is_logged_as_a_hold() {
    let server = InProcess::start().await;
    let mut def = setup(&server).await;
    def.stages[1].require_approval = true;
    let mut client = server.releases().await;
    let mut r = launch(&mut client, def).await;
    let mut driver = Driver {
        server: &server,
        sequence: 0,
    };
    while state(&r) == ReleaseState::Running {
        r = driver.window(&r, |_, _| 20).await;
    }
    assert_eq!(state(&r), ReleaseState::AwaitingApproval);
    let logged = r.decisions.len();
    // The judge still finds stage 0 healthy at every window; nothing is promoted.
    for _ in 0..3 {
        r = driver.window(&r, |_, _| 20).await;
    }
    assert_eq!(state(&r), ReleaseState::AwaitingApproval);
    assert_eq!(
        r.decisions.len(),
        logged,
        "the same wait, repeated: {:#?}",
        &r.decisions[logged - 1..]
    );
    let last = r.decisions.last().unwrap();
    assert_eq!(
        (last.kind, last.reason_code.as_str(), last.repeats),
        (DecisionKind::Hold as i32, "AWAITING_APPROVAL", 4),
        "{last:#?}"
    );
    assert_eq!(
        last.detail, "minimums met, no regression; stage 1 requires approval",
        "the judge's detail, and what it awaits"
    );
    let latest = r.latest_decision.as_ref().unwrap();
    assert_eq!(latest.kind, DecisionKind::Hold as i32, "{:?}", codes(&r));
}

#[tokio::test]
async fn a_start_whose_first_stage_needs_approval_logs_the_start_then_the_wait() {
    let server = InProcess::start().await;
    let mut def = setup(&server).await;
    def.stages[0].require_approval = true;
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
    assert_eq!(state(&r), ReleaseState::AwaitingApproval);
    let log: Vec<_> = r
        .decisions
        .iter()
        .map(|d| {
            (
                d.kind,
                d.reason_code.as_str(),
                d.detail.as_str(),
                d.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            (DecisionKind::Promote as i32, "STARTED", "go", "admin"),
            (
                DecisionKind::Hold as i32,
                "AWAITING_APPROVAL",
                "stage 0 requires approval",
                "admin"
            ),
        ]
    );
    assert_eq!(
        r.state_reason,
        "AWAITING_APPROVAL: stage 0 requires approval"
    );
    assert!(r.start_time.is_some() && r.stage_start_time.is_none());
}

#[tokio::test]
async fn a_kill_of_a_release_logs_its_rollback_with_the_kill_s_reason_in_one_revision() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
    let logged = r.decisions.len();
    let before = revision(&server).await;
    let e = server
        .rollouts()
        .await
        .kill(KillRequest {
            scope: Some(Scope {
                kind: Some(scope::Kind::ReleaseId(r.id.clone())),
                environment: String::new(),
            }),
            reason: "pager".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    let r = get(&mut client, &r.id, 0).await;
    assert_eq!(state(&r), ReleaseState::RolledBack);
    let added: Vec<_> = r.decisions[logged..]
        .iter()
        .map(|d| (d.kind, d.reason_code.as_str(), d.detail.clone()))
        .collect();
    assert_eq!(
        added,
        [(
            DecisionKind::Rollback as i32,
            "MANUAL_ROLLBACK",
            format!("kill switch {}: pager", e.id)
        )],
        "only the kill, with its reason"
    );
    assert_eq!(
        revision(&server).await,
        before + 1,
        "the kill and the rollback: one revision"
    );
    assert_eq!(r.final_revision, before + 1);
    assert_eq!(e.acknowledgements[0].revision, before + 1);
    assert!(
        e.steps.iter().all(|s| s.ok) && e.steps.len() == 2,
        "{:?}",
        e.steps
    );
    for key in FLAGS {
        assert_eq!(
            default_rule(&server, key).await,
            serve::Kind::Variant("off".into()),
            "{key} back at its baseline, and off"
        );
    }
    let audit = server
        .admin()
        .await
        .list_audit_events(ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        !audit.iter().any(|e| e.action == "flag.forced_write"),
        "{audit:#?}"
    );
    // Killing it again finds it over.
    let again = server
        .rollouts()
        .await
        .kill(KillRequest {
            scope: Some(Scope {
                kind: Some(scope::Kind::ReleaseId(r.id.clone())),
                environment: String::new(),
            }),
            reason: "pager again".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    assert!(
        again.steps[1].ok && again.steps[1].detail.contains("had already ended"),
        "{:?}",
        again.steps
    );
}

#[tokio::test]
async fn a_kill_whose_release_cannot_roll_back_still_turns_the_flags_off_and_says_why() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
    let mut admin = server.admin().await;
    // A forced archive pauses the release; an archived flag cannot be rewritten to its baseline.
    admin
        .archive_flag(ArchiveFlagRequest {
            key: "reads".into(),
            archived: true,
            reason: "gone".into(),
            force: true,
        })
        .await
        .unwrap();
    let e = server
        .rollouts()
        .await
        .kill(KillRequest {
            scope: Some(Scope {
                kind: Some(scope::Kind::ReleaseId(r.id.clone())),
                environment: String::new(),
            }),
            reason: "pager".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    assert!(e.steps[0].ok, "{:?}", e.steps);
    assert!(
        !e.steps[1].ok && e.steps[1].detail.contains("did not roll back"),
        "{:?}",
        e.steps
    );
    let r = get(&mut client, &r.id, 0).await;
    assert_eq!(state(&r), ReleaseState::Paused, "{:#?}", r.decisions);
    for key in ["shadow", "fast-path"] {
        let f = admin
            .get_flag(GetFlagRequest { key: key.into() })
            .await
            .unwrap()
            .into_inner()
            .flag
            .unwrap();
        assert!(!f.environments["prod"].enabled, "{key} killed");
    }
}

#[tokio::test]
async fn a_stage_without_control_is_logged_with_the_canary_numbers_it_was_judged_on() {
    let server = InProcess::start().await;
    let mut def = setup(&server).await;
    def.stages[2].audience = everyone();
    let mut client = server.releases().await;
    let mut r = launch(&mut client, def).await;
    let mut driver = Driver {
        server: &server,
        sequence: 0,
    };
    while r.current_stage < 2 {
        r = driver.window(&r, |_, _| 20).await;
        assert_eq!(state(&r), ReleaseState::Running, "{:#?}", r.decisions);
    }
    // SDKs still report the last control requests of stage 1 in the soak's first windows; the
    // judge does not use them, and the log does not show them.
    for windows in 1..=2u64 {
        r = driver.window(&r, |_, _| 20).await;
        let d = r.latest_decision.clone().unwrap();
        assert_eq!(d.actor, "judge");
        let cohorts: Vec<_> = d.cohorts.iter().map(|c| (c.cohort.as_str(), c.n)).collect();
        assert_eq!(
            cohorts,
            [("canary", 2_000 * windows)],
            "the stage's own canary: {d:#?}"
        );
        assert!(d.detail.contains("no control"), "{}", d.detail);
    }
}

#[tokio::test]
async fn refusals_name_the_release_state_as_the_wire_does() {
    let server = InProcess::start().await;
    let mut def = setup(&server).await;
    def.stages[1].require_approval = true;
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
    let approve = |stage| ApproveStageRequest {
        id: r.id.clone(),
        stage,
        reason: "ok".into(),
    };
    let err = client.approve_stage(approve(1)).await.unwrap_err();
    assert!(
        err.message()
            .ends_with("the release is RUNNING: cannot approve a stage"),
        "{}",
        err.message()
    );
    client
        .rollback_release(RollbackReleaseRequest {
            id: r.id.clone(),
            reason: "errors".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for (result, state) in [
        (
            client.approve_stage(approve(1)).await.map(|_| ()),
            "ROLLED_BACK",
        ),
        (
            client
                .promote_release(PromoteReleaseRequest {
                    id: r.id.clone(),
                    reason: String::new(),
                })
                .await
                .map(|_| ()),
            "ROLLED_BACK",
        ),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(
            err.message()
                .contains(&format!("the release is {state}: cannot")),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("RolledBack"), "{}", err.message());
    }
}
