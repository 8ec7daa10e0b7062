//! A partial rollback that names a rollback plan: the plan runs once the flag is back at its
//! baseline, and a plan that does not exist, or a plan without a flag, is refused before
//! anything changes.

use super::{revision, setup};
use crate::support::eventually::{DEADLINE, eventually};
use crate::support::inproc::InProcess;
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

async fn enabled(admin: &mut Admin, key: &str) -> bool {
    let flag = admin.get_flag(GetFlagRequest { key: key.into() }).await;
    flag.unwrap().into_inner().flag.unwrap().environments["prod"].enabled
}

#[tokio::test]
async fn a_partial_rollback_runs_the_plan_it_names_and_bad_plans_change_nothing() {
    let server = InProcess::start().await;
    let def = setup(&server).await;
    let mut admin = server.admin().await;
    // A flag outside the release that the plan turns off (a cache in front of the shadow path).
    let mut cache = bool_flag("shadow-cache", &["prod"]);
    cache.environments.get_mut("prod").unwrap().enabled = true;
    create_flag(&mut admin, cache).await;
    let plan = server
        .rollouts()
        .await
        .create_rollback_plan(CreateRollbackPlanRequest {
            plan: Some(RollbackPlan {
                name: "shadow cache off".into(),
                steps: vec![PlanStep {
                    action: Some(plan_step::Action::SetEnabled(SetEnabledAction {
                        flag_key: "shadow-cache".into(),
                        environment: "prod".into(),
                        enabled: false,
                    })),
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    let mut client = server.releases().await;
    let r = launch(&mut client, def).await;
    let partial = |flag: &str, plan: &str| RollbackReleaseRequest {
        id: r.id.clone(),
        reason: "shadow writes time out".into(),
        flag_key: flag.into(),
        hold: false,
        plan_id: plan.into(),
    };
    let before = revision(&server).await;
    for (request, code, why) in [
        (
            partial("", &plan.id),
            Code::InvalidArgument,
            "a plan needs a flag",
        ),
        (
            partial("shadow", "plan-missing"),
            Code::NotFound,
            "no such plan",
        ),
    ] {
        let err = client.rollback_release(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{why}: {err:?}");
        let now = get(&mut client, &r.id, 0).await;
        assert_eq!(now.state, r.state, "{why}: the release is untouched");
        assert!(now.rolled_back_flags.is_empty(), "{why}");
        assert_eq!(revision(&server).await, before, "{why}: no flag changed");
        assert!(
            enabled(&mut admin, "shadow-cache").await,
            "{why}: no plan ran"
        );
    }
    let r = client
        .rollback_release(partial("shadow", &plan.id))
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    assert_eq!(r.rolled_back_flags, ["shadow"]);
    assert_eq!(r.state, ReleaseState::Running as i32, "the rest goes on");
    eventually(DEADLINE, "the partial rollback's plan to run", async || {
        (!enabled(&mut admin, "shadow-cache").await).then_some(())
    })
    .await;
    let still = get(&mut client, &r.id, 0).await;
    assert_eq!(still.state, ReleaseState::Running as i32);
}
