//! Releases on compressed time (the server in process on a manual clock): several flags over
//! one cohort, every stage change one revision; an interaction between two flags caught at the
//! stage where both are first on and rolled back whole in one revision; a partial rollback that
//! lets the rest go on; approvals; what the release owns refused to other writes unless forced;
//! the kill switch's release scope; bad definitions refused with the field. What the decision
//! log says of each is in [`decision_log`].

mod decision_log;
mod partial_plan;

use crate::support::inproc::InProcess;
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::Duration;
use tonic::Code;

const MIN: Duration = Duration::from_secs(60);
const INSTANCE: &str = "00000000-0000-4000-8000-00000000000e";
const FLAGS: [&str; 3] = ["shadow", "fast-path", "reads"];

/// Environment `prod` with the three flags, and a three-stage release of them: shadow at 10 %,
/// shadow + fast-path at 25 %, fast-path + reads (shadow off) at 50 %.
async fn setup(server: &InProcess) -> Release {
    let mut admin = server.admin().await;
    create_env(&mut admin, "prod").await;
    flags(&mut admin, "prod", &FLAGS).await;
    release(
        "prod",
        &FLAGS,
        vec![
            stage(share(1_000), &["shadow"], 5 * MIN),
            stage(share(2_500), &["shadow", "fast-path"], 5 * MIN),
            stage(share(5_000), &["fast-path", "reads"], 5 * MIN),
        ],
        MIN,
    )
}

async fn revision(server: &InProcess) -> u64 {
    server
        .admin()
        .await
        .get_environment(GetEnvironmentRequest { key: "prod".into() })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
        .revision
}

async fn default_rule(server: &InProcess, key: &str) -> serve::Kind {
    let flag = server
        .admin()
        .await
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    flag.environments["prod"]
        .default_rule
        .clone()
        .unwrap()
        .kind
        .unwrap()
}

/// The variant the canary (audience) entry of `key`'s split serves, or the fixed variant.
async fn canary_variant(server: &InProcess, key: &str) -> String {
    match default_rule(server, key).await {
        serve::Kind::Split(s) => s.entries[0].variant.clone(),
        serve::Kind::Variant(v) => v,
    }
}

/// One window: traffic per cohort (`errors_when` decides a cohort's errors from what it is
/// served), reported, then the clock moves one window on and the driver judges it.
struct Driver<'a> {
    server: &'a InProcess,
    sequence: u64,
}

impl Driver<'_> {
    async fn window(&mut self, r: &Release, errors: impl Fn(&Release, &str) -> u64) -> Release {
        let (mut client, mut metrics) = (self.server.releases().await, self.server.metrics().await);
        self.sequence += 1;
        let canary = Traffic::new(2_000, errors(r, "canary"));
        let control = Traffic::new(2_000, errors(r, "control"));
        let report = window_report(
            r,
            INSTANCE,
            self.sequence,
            self.server.now(),
            MIN,
            canary,
            Some(control),
        );
        send(&mut metrics, report).await;
        self.server.advance(MIN);
        self.server.caught_up().await;
        get(&mut client, &r.id, 0).await
    }
}

/// 1 % errors everywhere, 20 % in the canary when fast-path and reads are both on there.
fn interaction(r: &Release, cohort: &str) -> u64 {
    let stage = r.stages.get(r.current_stage as usize);
    let on = |k: &str| stage.is_some_and(|s| s.variants.get(k).is_some_and(|v| v == "on"));
    if cohort == "canary" && on("fast-path") && on("reads") && r.stage_start_time.is_some() {
        400
    } else {
        20
    }
}

#[tokio::test]
async fn a_healthy_release_moves_every_flag_in_one_revision_per_stage_and_completes() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let created = create(&mut client, def).await;
    assert_eq!(state(&created), ReleaseState::Draft);
    assert_eq!(created.salt, created.id, "one salt for every flag");
    let before = revision(&server).await;
    let mut r = start(&mut client, &created.id).await;
    assert_eq!(
        revision(&server).await,
        before + 1,
        "stage 0: one revision for three flags"
    );
    // Every flag carries the same split on the release's salt: the same units are the canary.
    for key in FLAGS {
        let serve::Kind::Split(s) = default_rule(&server, key).await else {
            panic!("{key} serves a split")
        };
        assert_eq!(
            (s.salt.as_str(), s.rollout_id.as_str()),
            (r.id.as_str(), r.id.as_str())
        );
        let weights: Vec<_> = s
            .entries
            .iter()
            .map(|e| (e.weight, e.label.as_str()))
            .collect();
        assert_eq!(
            weights,
            [(1_000, "canary"), (8_000, ""), (1_000, "control")]
        );
    }
    assert_eq!(canary_variant(&server, "shadow").await, "on");
    assert_eq!(canary_variant(&server, "fast-path").await, "off");
    let mut driver = Driver {
        server: &server,
        sequence: 0,
    };
    let mut revisions = vec![revision(&server).await];
    while state(&r) == ReleaseState::Running {
        let stage = r.current_stage;
        r = driver.window(&r, |_, _| 20).await;
        if r.current_stage != stage || state(&r) != ReleaseState::Running {
            revisions.push(revision(&server).await);
        }
        assert!(revisions.len() < 10, "{:#?}", r.decisions);
    }
    assert_eq!(state(&r), ReleaseState::Completed, "{:#?}", r.decisions);
    assert_eq!(
        revisions
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect::<Vec<_>>(),
        [1, 1, 1],
        "each promotion and the completion: one revision each"
    );
    assert_eq!(
        canary_variant(&server, "shadow").await,
        "off",
        "stage 2 turned shadow off"
    );
    assert_eq!(canary_variant(&server, "reads").await, "on");
    assert_eq!(r.blast_radius_basis_points, 10_000);
}

#[tokio::test]
async fn an_interaction_of_two_flags_rolls_back_where_both_are_first_on_in_one_revision() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let mut r = launch(&mut client, def).await;
    let mut driver = Driver {
        server: &server,
        sequence: 0,
    };
    let mut last_revision = revision(&server).await;
    for _ in 0..40 {
        if state(&r) != ReleaseState::Running {
            break;
        }
        last_revision = revision(&server).await;
        r = driver.window(&r, interaction).await;
    }
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:#?}", r.decisions);
    assert_eq!(
        r.current_stage, 2,
        "caught at the stage where fast-path and reads are both on"
    );
    let rollback = r.decisions.last().unwrap();
    assert_eq!(rollback.actor, "judge");
    assert_eq!(rollback.kind, DecisionKind::Rollback as i32);
    assert_eq!(
        revision(&server).await,
        last_revision + 1,
        "every flag back in one revision"
    );
    for key in FLAGS {
        assert_eq!(
            default_rule(&server, key).await,
            serve::Kind::Variant("off".into()),
            "{key}"
        );
    }
    assert_eq!(r.final_revision, last_revision + 1);
    assert!(r.blast_radius_requests > 0 && r.time_to_detect.is_some());
}

#[tokio::test]
async fn a_partial_rollback_returns_one_flag_and_the_release_goes_on() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let mut r = launch(&mut client, def).await;
    let mut driver = Driver {
        server: &server,
        sequence: 0,
    };
    while r.current_stage < 1 {
        r = driver.window(&r, |_, _| 20).await;
    }
    let err = client
        .rollback_release(RollbackReleaseRequest {
            id: r.id.clone(),
            flag_key: "fast-path".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "a reason is required");
    let before = revision(&server).await;
    r = client
        .rollback_release(RollbackReleaseRequest {
            id: r.id.clone(),
            flag_key: "fast-path".into(),
            reason: "fast-path answers are wrong".into(),
            hold: false,
            plan_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    assert_eq!(state(&r), ReleaseState::Running);
    assert_eq!(r.rolled_back_flags, ["fast-path"]);
    assert_eq!(revision(&server).await, before + 1);
    assert_eq!(
        default_rule(&server, "fast-path").await,
        serve::Kind::Variant("off".into())
    );
    assert_eq!(
        canary_variant(&server, "shadow").await,
        "on",
        "the rest still serves"
    );
    while state(&r) == ReleaseState::Running {
        r = driver.window(&r, |_, _| 20).await;
    }
    assert_eq!(state(&r), ReleaseState::Completed);
    assert_eq!(
        default_rule(&server, "fast-path").await,
        serve::Kind::Variant("off".into())
    );
    assert_eq!(
        default_rule(&server, "reads").await,
        serve::Kind::Variant("on".into())
    );
    let err = client
        .rollback_release(RollbackReleaseRequest {
            id: r.id.clone(),
            flag_key: "reads".into(),
            reason: "too late".into(),
            hold: false,
            plan_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_stage_that_requires_approval_waits_for_an_admin_with_a_reason() {
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
    assert_eq!(
        (r.current_stage, r.approval_stage),
        (0, 1),
        "stage 0 keeps serving"
    );
    assert!(
        r.state_reason.starts_with("AWAITING_APPROVAL"),
        "{}",
        r.state_reason
    );
    // More windows change nothing until someone approves.
    r = driver.window(&r, |_, _| 20).await;
    assert_eq!(state(&r), ReleaseState::AwaitingApproval);
    let reader = create_token(&mut server.admin().await, "viewer", Role::ReadOnly, "").await;
    let approve = |stage, reason: &str| ApproveStageRequest {
        id: r.id.clone(),
        stage,
        reason: reason.into(),
    };
    let refused = [
        (
            server
                .releases_as(Some(&reader))
                .await
                .approve_stage(approve(1, "ok"))
                .await,
            Code::PermissionDenied,
        ),
        (
            client.approve_stage(approve(1, " ")).await,
            Code::InvalidArgument,
        ),
        (
            client.approve_stage(approve(2, "ok")).await,
            Code::FailedPrecondition,
        ),
    ];
    for (result, code) in refused {
        assert_eq!(result.unwrap_err().code(), code);
    }
    let r = client
        .approve_stage(approve(1, "dashboards green"))
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    assert_eq!((state(&r), r.current_stage), (ReleaseState::Running, 1));
    let a = &r.approvals[0];
    assert_eq!(
        (a.stage, a.actor.as_str(), a.reason.as_str()),
        (1, "admin", "dashboards green")
    );
    assert_eq!(r.decisions.last().unwrap().reason_code, "APPROVED");
}

#[tokio::test]
async fn writes_to_a_flag_the_release_owns_are_refused_unless_forced() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
    let mut admin = server.admin().await;
    let flag = admin
        .get_flag(GetFlagRequest {
            key: "reads".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    let mut changed = flag.clone();
    changed.environments.get_mut("prod").unwrap().default_rule = Some(Serve {
        kind: Some(serve::Kind::Variant("on".into())),
    });
    let update = |force| UpdateFlagRequest {
        flag: Some(changed.clone()),
        expected_version: flag.version,
        reason: "hotfix".into(),
        force,
    };
    let err = admin.update_flag(update(false)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains(&r.id),
        "names the release: {}",
        err.message()
    );
    let toggle = SetFlagEnabledRequest {
        key: "reads".into(),
        environment: "prod".into(),
        enabled: false,
        ..Default::default()
    };
    assert_eq!(
        admin.set_flag_enabled(toggle).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let delete = DeleteFlagRequest {
        key: "reads".into(),
        reason: String::new(),
    };
    assert_eq!(
        admin.delete_flag(delete).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // The description is no part of what it serves.
    let mut described = flag.clone();
    described.description = "mem0 reads".into();
    admin
        .update_flag(UpdateFlagRequest {
            flag: Some(described),
            expected_version: flag.version,
            ..Default::default()
        })
        .await
        .expect("a description change is not refused");
    assert_eq!(
        state(&get(&mut client, &r.id, 0).await),
        ReleaseState::Running
    );
    // Forced: written, audited, and the release pauses with the reason.
    let mut forced = changed.clone();
    forced.version = 0;
    let current = admin
        .get_flag(GetFlagRequest {
            key: "reads".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    admin
        .update_flag(UpdateFlagRequest {
            flag: Some(forced),
            expected_version: current.version,
            reason: "hotfix".into(),
            force: true,
        })
        .await
        .expect("forced");
    let paused = get(&mut client, &r.id, 0).await;
    assert_eq!(state(&paused), ReleaseState::Paused);
    assert!(
        paused.state_reason.starts_with("FORCED_WRITE"),
        "{}",
        paused.state_reason
    );
    let audit = admin
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "reads".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        audit.iter().any(|e| e.action == "flag.forced_write"),
        "{audit:#?}"
    );
    // Resuming gives the release its flags back as its stage says.
    client
        .resume_release(ResumeReleaseRequest {
            id: r.id.clone(),
            reason: "hotfix reverted".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        state(&get(&mut client, &r.id, 0).await),
        ReleaseState::Running
    );
    assert!(
        matches!(default_rule(&server, "reads").await, serve::Kind::Split(_)),
        "the forced value is replaced by the stage's split again"
    );
    // A second release cannot take a flag this one owns.
    let other = release(
        "prod",
        &["reads"],
        vec![stage(share(500), &["reads"], MIN)],
        MIN,
    );
    let other = create(&mut client, other).await;
    let err = client
        .start_release(StartReleaseRequest {
            id: other.id,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&r.id), "{}", err.message());
}

#[tokio::test]
async fn the_kill_switch_on_a_release_turns_its_flags_off_and_rolls_it_back() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
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
    assert_eq!(e.previous.len(), 3, "every flag of the release");
    assert!(e.steps.iter().all(|s| s.ok), "{:?}", e.steps);
    assert!(
        e.steps.iter().any(|s| s.detail.contains("rolled back")),
        "{:?}",
        e.steps
    );
    assert_eq!(
        state(&get(&mut client, &r.id, 0).await),
        ReleaseState::RolledBack
    );
    let admin = &mut server.admin().await;
    for key in FLAGS {
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

/// A change that makes a good release definition bad.
type Edit = Box<dyn Fn(&mut Release)>;

#[tokio::test]
async fn bad_releases_are_refused_with_the_field_and_change_nothing() {
    let server = InProcess::start().await;
    let good = setup(&server).await;
    let mut client = server.releases().await;
    let cases: Vec<(&str, Edit)> = vec![
        ("release.environment", Box::new(|r| r.environment.clear())),
        ("release.flags", Box::new(|r| r.flags.clear())),
        (
            "release.flags[1].flagKey",
            Box::new(|r| r.flags[1].flag_key = "shadow".into()),
        ),
        (
            "release.flags[0].baselineVariant",
            Box::new(|r| r.flags[0].baseline_variant = "maybe".into()),
        ),
        ("release.stages", Box::new(|r| r.stages.clear())),
        (
            "release.stages[0].audience.basisPoints",
            Box::new(|r| r.stages[0].audience = share(6_000)),
        ),
        (
            "release.stages[0].audience.segment",
            Box::new(|r| {
                r.stages[0].audience = Some(flagwire_proto::v1::Audience {
                    kind: Some(audience::Kind::Segment("nobody".into())),
                })
            }),
        ),
        (
            "release.stages[1].variants[\"other\"]",
            Box::new(|r| {
                r.stages[1].variants.insert("other".into(), "on".into());
            }),
        ),
        (
            "release.stages[1].variants[\"reads\"]",
            Box::new(|r| {
                r.stages[1].variants.insert("reads".into(), "maybe".into());
            }),
        ),
        (
            "release.stages[2].guardrails",
            Box::new(|r| {
                r.stages[2].guardrails = Some(Guardrails {
                    alpha: 0.1,
                    ..Default::default()
                });
            }),
        ),
        (
            "release.policy.window",
            Box::new(|r| {
                r.policy.as_mut().unwrap().window = Some(prost_types::Duration {
                    seconds: 7_200,
                    nanos: 0,
                });
            }),
        ),
    ];
    for (field, edit) in cases {
        let mut bad = good.clone();
        edit(&mut bad);
        let err = client
            .create_release(CreateReleaseRequest { release: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().contains(&format!("{field}:")),
            "{field}: {}",
            err.message()
        );
    }
    let listed = client
        .list_releases(ListReleasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .releases;
    assert!(listed.is_empty(), "nothing was stored");
}
