//! Rollback plans on the server in process and its manual clock: every step kind, a failure midway, running a plan twice,
//! cancelling a running and a scheduled execution, a rollout running its plan when it rolls
//! back, and the seeds' partial rollbacks shipped in `deploy/plans/`.

use crate::support::eventually::DEADLINE;
use crate::support::inproc::InProcess;
use crate::support::*;
use flagwire_proto::v1::*;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::time::{Duration, SystemTime};
use tonic::Code;

fn on(key: &str, tags: &[&str]) -> Flag {
    let mut f = bool_flag(key, &["production"]);
    f.tags = tags.iter().map(|t| t.to_string()).collect();
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

fn config(f: &Flag) -> &FlagConfig {
    &f.environments["production"]
}

fn step(action: plan_step::Action) -> PlanStep {
    PlanStep {
        action: Some(action),
    }
}

fn enable_step(key: &str, enabled: bool) -> PlanStep {
    step(plan_step::Action::SetEnabled(SetEnabledAction {
        flag_key: key.into(),
        environment: "production".into(),
        enabled,
    }))
}

async fn create(rollouts: &mut Rollouts, name: &str, steps: Vec<PlanStep>) -> RollbackPlan {
    rollouts
        .create_rollback_plan(CreateRollbackPlanRequest {
            plan: Some(RollbackPlan {
                name: name.into(),
                steps,
                ..Default::default()
            }),
        })
        .await
        .expect("create plan")
        .into_inner()
        .plan
        .unwrap()
}

async fn execute(rollouts: &mut Rollouts, plan: &str, at: Option<SystemTime>) -> Execution {
    rollouts
        .execute_rollback_plan(ExecuteRollbackPlanRequest {
            force: false,
            plan_id: plan.into(),
            at: at.map(Into::into),
            reason: "incident 42".into(),
        })
        .await
        .expect("execute")
        .into_inner()
        .execution
        .unwrap()
}

async fn execution(rollouts: &mut Rollouts, id: &str) -> Execution {
    rollouts
        .get_execution(GetExecutionRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap()
}

/// Waits until an execution has recorded `steps` step outcomes.
async fn recorded(rollouts: &mut Rollouts, id: &str, steps: usize) -> Execution {
    eventually(DEADLINE, "the execution's steps", async || {
        let e = execution(rollouts, id).await;
        (e.steps.len() >= steps).then_some(e)
    })
    .await
}

/// Waits until an execution is neither scheduled nor running.
async fn settle(rollouts: &mut Rollouts, id: &str) -> Execution {
    eventually(DEADLINE, "the execution to finish", async || {
        let e = execution(rollouts, id).await;
        let s = ExecutionState::try_from(e.state).unwrap();
        (!matches!(s, ExecutionState::Running | ExecutionState::Scheduled)).then_some(e)
    })
    .await
}

fn state(e: &Execution) -> ExecutionState {
    ExecutionState::try_from(e.state).unwrap()
}

#[tokio::test]
async fn every_step_kind_runs_in_order_and_running_twice_is_safe() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["a", "b", "c"] {
        create_flag(&mut admin, on(key, &[])).await;
    }
    let v2 = flag(&mut admin, "c").await.version; // enabled, default on
    set_enabled(&mut admin, "c", "production", false).await; // version 3
    let mut rollouts = server.rollouts().await;
    let weights = [("on".to_string(), 2_000), ("off".to_string(), 8_000)].into();
    let plan = create(
        &mut rollouts,
        "everything",
        vec![
            enable_step("a", false),
            step(plan_step::Action::SetVariant(SetVariantAction {
                flag_key: "b".into(),
                environment: "production".into(),
                variant: "off".into(),
            })),
            step(plan_step::Action::Wait(prost_types::Duration {
                seconds: 0,
                nanos: 50_000_000,
            })),
            step(plan_step::Action::Revert(RevertAction {
                flag_key: "c".into(),
                version: v2,
            })),
            step(plan_step::Action::SetWeights(SetWeightsAction {
                flag_key: "b".into(),
                environment: "production".into(),
                weights,
            })),
        ],
    )
    .await;
    for round in 0..2 {
        let e = execute(&mut rollouts, &plan.id, None).await;
        // The wait step waits on the server's clock: two steps done, then nothing until it moves.
        let waiting = recorded(&mut rollouts, &e.id, 2).await;
        assert_eq!(state(&waiting), ExecutionState::Running);
        assert_eq!(waiting.steps.len(), 2, "round {round}: still waiting");
        server.advance(Duration::from_millis(50));
        let e = settle(&mut rollouts, &e.id).await;
        assert_eq!(state(&e), ExecutionState::Succeeded, "round {round}: {e:?}");
        assert_eq!(e.steps.len(), 5);
        assert!(e.steps.iter().all(|s| s.ok));
        assert!(e.steps[2].detail.starts_with("waited"));
        assert!(!config(&flag(&mut admin, "a").await).enabled);
        assert!(
            config(&flag(&mut admin, "c").await).enabled,
            "reverted to the enabled version"
        );
        let b = flag(&mut admin, "b").await;
        let Some(serve::Kind::Split(split)) = config(&b).default_rule.clone().unwrap().kind else {
            panic!("b serves a split")
        };
        let w: Vec<_> = split
            .entries
            .iter()
            .map(|e| (e.variant.as_str(), e.weight))
            .collect();
        assert_eq!(w, [("on", 2_000), ("off", 8_000)]);
        assert!(
            e.acknowledgements
                .iter()
                .any(|a| a.environment == "production" && a.revision > 0)
        );
    }
    let events = admin
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        events
            .iter()
            .any(|e| e.reason.contains("incident 42") && e.action == "flag.set_enabled")
    );
}

#[tokio::test]
async fn a_failing_step_stops_the_plan_and_says_which_steps_ran() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["a", "b", "gone"] {
        create_flag(&mut admin, on(key, &[])).await;
    }
    let mut rollouts = server.rollouts().await;
    let plan = create(
        &mut rollouts,
        "breaks",
        vec![
            enable_step("a", false),
            enable_step("gone", false),
            enable_step("b", false),
        ],
    )
    .await;
    admin
        .delete_flag(DeleteFlagRequest {
            key: "gone".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let e = execute(&mut rollouts, &plan.id, None).await;
    let e = settle(&mut rollouts, &e.id).await;
    assert_eq!(state(&e), ExecutionState::Failed);
    let outcomes: Vec<_> = e.steps.iter().map(|s| (s.index, s.ok)).collect();
    assert_eq!(outcomes, [(0, true), (1, false)]);
    assert!(e.steps[1].detail.contains("gone"), "{}", e.steps[1].detail);
    assert!(!config(&flag(&mut admin, "a").await).enabled);
    assert!(
        config(&flag(&mut admin, "b").await).enabled,
        "the step after the failure did not run"
    );
}

#[tokio::test]
async fn running_and_scheduled_executions_can_be_cancelled() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, on("a", &[])).await;
    create_flag(&mut admin, on("b", &[])).await;
    let mut rollouts = server.rollouts().await;
    let wait = step(plan_step::Action::Wait(prost_types::Duration {
        seconds: 30,
        nanos: 0,
    }));
    let plan = create(
        &mut rollouts,
        "slow",
        vec![
            enable_step("a", false),
            wait.clone(),
            enable_step("b", false),
        ],
    )
    .await;
    // A twin of the plan on other flags, left to run: when it has finished its wait, the
    // cancelled one would have too.
    create_flag(&mut admin, on("a2", &[])).await;
    create_flag(&mut admin, on("b2", &[])).await;
    let twin = create(
        &mut rollouts,
        "slow twin",
        vec![
            enable_step("a2", false),
            wait.clone(),
            enable_step("b2", false),
        ],
    )
    .await;
    let e = execute(&mut rollouts, &plan.id, None).await;
    let control = execute(&mut rollouts, &twin.id, None).await;
    // The first step is recorded: the plan is now waiting on the clock.
    recorded(&mut rollouts, &e.id, 1).await;
    recorded(&mut rollouts, &control.id, 1).await;
    assert!(!config(&flag(&mut admin, "a").await).enabled);
    let cancelled = rollouts
        .cancel_execution(CancelExecutionRequest { id: e.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    assert_eq!(state(&cancelled), ExecutionState::Cancelled);
    server.advance(Duration::from_secs(30));
    let control = settle(&mut rollouts, &control.id).await;
    assert_eq!(state(&control), ExecutionState::Succeeded);
    assert!(!config(&flag(&mut admin, "b2").await).enabled);
    let after = execution(&mut rollouts, &e.id).await;
    assert_eq!(state(&after), ExecutionState::Cancelled);
    assert_eq!(after.steps.len(), 1, "{after:?}");
    assert!(
        config(&flag(&mut admin, "b").await).enabled,
        "steps after the cancel did not run"
    );
    let err = rollouts
        .cancel_execution(CancelExecutionRequest { id: e.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Scheduled: runs at its time, unless cancelled before.
    let quick = create(&mut rollouts, "quick", vec![enable_step("b", false)]).await;
    let later = execute(
        &mut rollouts,
        &quick.id,
        Some(server.now() + Duration::from_secs(600)),
    )
    .await;
    assert_eq!(state(&later), ExecutionState::Scheduled);
    rollouts
        .cancel_execution(CancelExecutionRequest {
            id: later.id.clone(),
        })
        .await
        .unwrap();
    let soon = execute(
        &mut rollouts,
        &quick.id,
        Some(server.now() + Duration::from_secs(60)),
    )
    .await;
    assert_eq!(state(&soon), ExecutionState::Scheduled);
    server.advance(Duration::from_secs(59));
    server.caught_up().await;
    assert_eq!(
        state(&execution(&mut rollouts, &soon.id).await),
        ExecutionState::Scheduled
    );
    assert!(
        config(&flag(&mut admin, "b").await).enabled,
        "not before its time"
    );
    server.advance(Duration::from_secs(1));
    let done = settle(&mut rollouts, &soon.id).await;
    assert_eq!(state(&done), ExecutionState::Succeeded);
    assert!(!config(&flag(&mut admin, "b").await).enabled);
    let cancelled = settle(&mut rollouts, &later.id).await;
    assert_eq!(state(&cancelled), ExecutionState::Cancelled);
    assert!(cancelled.steps.is_empty());
}

#[tokio::test]
async fn a_rollout_runs_its_rollback_plan_when_it_rolls_back() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, on("checkout", &[])).await;
    create_flag(&mut admin, on("payments-v2", &[])).await;
    let mut rollouts = server.rollouts().await;
    let plan = create(
        &mut rollouts,
        "payments off",
        vec![enable_step("payments-v2", false)],
    )
    .await;
    let mut def = Rollout {
        flag_key: "checkout".into(),
        environment: "production".into(),
        treatment_variant: "on".into(),
        baseline_variant: "off".into(),
        steps: vec![RolloutStep {
            basis_points: 500,
            ..Default::default()
        }],
        policy: Some(RolloutPolicy {
            rollback_plan_id: "plan-missing".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = rollouts
        .create_rollout(CreateRolloutRequest {
            rollout: Some(def.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    def.policy.as_mut().unwrap().rollback_plan_id = plan.id.clone();
    let r = rollouts
        .create_rollout(CreateRolloutRequest { rollout: Some(def) })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    rollouts
        .start_rollout(StartRolloutRequest { id: r.id.clone() })
        .await
        .unwrap();
    rollouts
        .rollback_rollout(RollbackRolloutRequest {
            id: r.id.clone(),
            reason: "errors".into(),
        })
        .await
        .unwrap();
    eventually(DEADLINE, "the rollout's rollback plan to run", async || {
        (!config(&flag(&mut admin, "payments-v2").await).enabled).then_some(())
    })
    .await;
}

/// `deploy/plans/*.json` as a CreateRollbackPlanRequest, through the canonical JSON mapping.
fn load(name: &str) -> CreateRollbackPlanRequest {
    let pool = DescriptorPool::decode(flagwire_proto::FILE_DESCRIPTOR_SET).unwrap();
    let desc = pool
        .get_message_by_name("flagwire.v1.CreateRollbackPlanRequest")
        .unwrap();
    let path = format!("{}/../deploy/plans/{name}", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).unwrap();
    let mut de = serde_json::Deserializer::from_str(&json);
    let dynamic = DynamicMessage::deserialize(desc, &mut de).unwrap();
    CreateRollbackPlanRequest::decode(dynamic.encode_to_vec().as_slice()).unwrap()
}

#[tokio::test]
async fn the_seeds_partial_rollbacks_as_plans() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["fast-path", "mem0-reads", "canary"] {
        create_flag(&mut admin, on(key, &["mem0-epic"])).await;
    }
    let mut shadow = on("mem0-shadow", &["mem0-epic"]);
    shadow.environments.get_mut("production").unwrap().enabled = false;
    create_flag(&mut admin, shadow).await;
    let mut rollouts = server.rollouts().await;
    let mut ids = Vec::new();
    for file in ["partial.json", "mem0-only.json"] {
        let plan = rollouts
            .create_rollback_plan(load(file))
            .await
            .unwrap()
            .into_inner()
            .plan
            .unwrap();
        ids.push(plan.id);
    }
    // --mem0-only: reads off, shadow writes on, fast-path untouched.
    let e = execute(&mut rollouts, &ids[1], None).await;
    assert_eq!(
        state(&settle(&mut rollouts, &e.id).await),
        ExecutionState::Succeeded
    );
    assert!(!config(&flag(&mut admin, "mem0-reads").await).enabled);
    assert!(config(&flag(&mut admin, "mem0-shadow").await).enabled);
    assert!(config(&flag(&mut admin, "fast-path").await).enabled);
    // --partial: fast-path off, shadow writes kept, canary at 0.
    let e = execute(&mut rollouts, &ids[0], None).await;
    assert_eq!(
        state(&settle(&mut rollouts, &e.id).await),
        ExecutionState::Succeeded
    );
    assert!(!config(&flag(&mut admin, "fast-path").await).enabled);
    assert!(config(&flag(&mut admin, "mem0-shadow").await).enabled);
    let canary = flag(&mut admin, "canary").await;
    let Some(serve::Kind::Split(split)) = config(&canary).default_rule.clone().unwrap().kind else {
        panic!("canary serves a split")
    };
    assert!(
        split
            .entries
            .iter()
            .all(|e| e.variant == "off" || e.weight == 0)
    );
    let plans = rollouts
        .list_rollback_plans(ListRollbackPlansRequest {})
        .await
        .unwrap()
        .into_inner()
        .plans;
    let names: Vec<_> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["mem0-epic-mem0-only", "mem0-epic-partial"]);
    // Bad plans are refused with the field.
    let err = rollouts
        .create_rollback_plan(CreateRollbackPlanRequest {
            plan: Some(RollbackPlan {
                name: "x".into(),
                steps: vec![PlanStep { action: None }],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("plan.steps[0]"), "{}", err.message());
    let err = rollouts
        .create_rollback_plan(load("partial.json"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
}
