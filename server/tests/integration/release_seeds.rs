//! The seeds' procedures as release files (`deploy/releases/`): each is accepted as written and
//! runs to completion on compressed time (the server in process on a manual clock), with
//! synthetic healthy traffic from an SDK instance and a person approving the stages that say
//! so. A stage without control (a segment, everyone) is judged and logged as such.

use crate::support::inproc::InProcess;
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::Duration;

const INSTANCE: &str = "00000000-0000-4000-8000-00000000000f";

/// Starts `r` and drives it to its end: a healthy window of traffic per step of the clock (a
/// third of the stage's minimum, at least one window), approving what awaits approval.
async fn run(server: &InProcess, r: Release) -> Release {
    let (mut client, mut metrics) = (server.releases().await, server.metrics().await);
    let window = Duration::from_secs(60);
    let mut r = launch(&mut client, r).await;
    let mut sequence = 0;
    for _ in 0..200 {
        match state(&r) {
            ReleaseState::Completed => return r,
            ReleaseState::AwaitingApproval => {
                r = client
                    .approve_stage(ApproveStageRequest {
                        id: r.id.clone(),
                        stage: r.approval_stage,
                        reason: "checklist done".into(),
                    })
                    .await
                    .expect("approve")
                    .into_inner()
                    .release
                    .unwrap();
                continue;
            }
            ReleaseState::Running => {}
            other => panic!("{other:?}: {:#?}", r.decisions),
        }
        let stage = &r.stages[r.current_stage as usize];
        let min = stage.min_duration.map_or(0, |d| d.seconds as u64);
        let step = Duration::from_secs((min / 3).max(60));
        let control = controlled(&r).then(|| Traffic::new(2_000, 0));
        sequence += 1;
        let report = window_report(
            &r,
            INSTANCE,
            sequence,
            server.now(),
            window,
            Traffic::new(2_000, 0),
            control,
        );
        send(&mut metrics, report).await;
        server.advance(step);
        server.caught_up().await;
        r = get(&mut client, &r.id, 0).await;
    }
    panic!("the release did not end: {:#?}", r.decisions)
}

async fn served(server: &InProcess, key: &str) -> Option<serve::Kind> {
    let flag = server
        .admin()
        .await
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    flag.environments["production"]
        .default_rule
        .clone()
        .and_then(|s| s.kind)
}

#[tokio::test]
async fn the_mem0_epic_runs_its_four_stages_with_approvals() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    flags(
        &mut admin,
        "production",
        &["mem0-shadow", "fast-path", "mem0-reads"],
    )
    .await;
    let r = run(&server, load("mem0-epic.yaml")).await;
    let approved: Vec<u32> = r.approvals.iter().map(|a| a.stage).collect();
    assert_eq!(approved, [2, 3], "the stages that require approval");
    assert!(
        r.approvals
            .iter()
            .all(|a| a.reason == "checklist done" && a.actor == "admin")
    );
    let on = Some(serve::Kind::Variant("on".into()));
    assert_eq!(served(&server, "fast-path").await, on);
    assert_eq!(served(&server, "mem0-reads").await, on);
    assert_eq!(
        served(&server, "mem0-shadow").await,
        Some(serve::Kind::Variant("off".into())),
        "stage 3 turned shadow writes off, and they stay off"
    );
    let promoted: Vec<u32> = r
        .decisions
        .iter()
        .filter(|d| d.actor == "judge" && d.kind == DecisionKind::Promote as i32)
        .map(|d| d.step)
        .collect();
    // Stage 0 → 1 and the completion after stage 3; stages 2 and 3 waited for a person.
    assert_eq!(
        promoted,
        [0, 3],
        "the judge promoted what needed no approval"
    );
    let awaiting = r
        .decisions
        .iter()
        .filter(|d| d.reason_code == "AWAITING_APPROVAL")
        .count();
    assert_eq!(awaiting, 2);
}

#[tokio::test]
async fn the_skillmeat_plan_starts_with_internal_users_without_control() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                key: "internal".into(),
                environment: "production".into(),
                included: vec!["alice".into(), "bob".into()],
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    flags(&mut admin, "production", &["skillmeat-memory-context"]).await;
    let r = run(&server, load("skillmeat-memory.yaml")).await;
    let internal: Vec<&Decision> = r
        .decisions
        .iter()
        .filter(|d| d.actor == "judge" && d.step == 0)
        .collect();
    assert!(!internal.is_empty());
    assert!(
        internal.iter().all(|d| d.detail.contains("no control")),
        "judged on absolute limits only: {internal:#?}"
    );
    assert_eq!(r.approvals.len(), 1);
    assert_eq!(
        served(&server, "skillmeat-memory-context").await,
        Some(serve::Kind::Variant("on".into()))
    );
}

#[tokio::test]
async fn the_convex_guide_turns_five_flags_on_in_order() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let keys = [
        "enable-retry-with-backoff",
        "enable-prompt-message-id",
        "enable-message-compression",
        "log-provider-enabled",
        "enable-workflow",
    ];
    flags(&mut admin, "production", &keys).await;
    let r = run(&server, load("convex-agent.yaml")).await;
    for key in keys {
        assert_eq!(
            served(&server, key).await,
            Some(serve::Kind::Variant("on".into())),
            "{key}"
        );
    }
    // Judged stage by stage (soaks, no control), the last one approved by a person.
    let judged: Vec<u32> = r
        .decisions
        .iter()
        .filter(|d| d.actor == "judge" && d.kind == DecisionKind::Promote as i32)
        .map(|d| d.step)
        .collect();
    assert_eq!(judged, [0, 1, 2, 4], "{judged:?}");
    assert_eq!(r.approvals.iter().map(|a| a.stage).collect::<Vec<_>>(), [4]);
}

#[test]
fn every_release_file_names_its_seed_and_parses() {
    for name in [
        "mem0-epic.yaml",
        "skillmeat-memory.yaml",
        "convex-agent.yaml",
    ] {
        let r = load(name);
        assert!(!r.name.is_empty() && !r.stages.is_empty(), "{name}");
    }
}
