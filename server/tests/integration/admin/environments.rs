//! Environments: create, get, list, and delete only what nothing uses.

use crate::support::inproc::InProcess;
use crate::support::table::{assert_table, row};
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

fn delete(key: &str) -> DeleteEnvironmentRequest {
    DeleteEnvironmentRequest {
        key: key.into(),
        reason: String::new(),
    }
}

#[tokio::test]
async fn environments() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    let env = create_env(&mut admin, "production").await;
    assert_eq!((env.name.as_str(), env.revision), ("production", 0));
    let got = admin
        .get_environment(GetEnvironmentRequest {
            key: "production".into(),
        })
        .await;
    assert_eq!(
        got.unwrap().into_inner().environment.unwrap().key,
        "production"
    );
    create_env(&mut admin, "staging").await;
    // An environment nothing uses can be deleted, and is gone from the list.
    create_env(&mut admin, "retired").await;
    admin.delete_environment(delete("retired")).await.unwrap();
    let list = admin
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = list.environments.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["production", "staging"]);

    // What keeps an environment busy: a flag configured in it, a segment in it, a live sdk
    // token bound to it.
    create_flag(&mut admin, bool_flag("f", &["staging"])).await;
    create_env(&mut admin, "qa").await;
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                key: "testers".into(),
                environment: "qa".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    create_env(&mut admin, "edge").await;
    create_token(&mut admin, "edge-sdk", Role::Sdk, "edge").await;

    let production = CreateEnvironmentRequest {
        environment: Some(Environment {
            key: "production".into(),
            ..Default::default()
        }),
        reason: String::new(),
    };
    let rows = vec![
        row("creating production again").sends(production).answers(
            Code::AlreadyExists,
            "environment \"production\" already exists",
        ),
        row("getting an unknown environment")
            .sends(GetEnvironmentRequest { key: "nope".into() })
            .answers(Code::NotFound, "environment \"nope\""),
        row("deleting one a flag is configured in")
            .sends(delete("staging"))
            .answers(Code::FailedPrecondition, "still used by flag \"f\""),
        row("deleting one a segment is in")
            .sends(delete("qa"))
            .answers(
                Code::FailedPrecondition,
                "still used by segment \"testers\"",
            ),
        row("deleting one an sdk token is bound to")
            .sends(delete("edge"))
            .answers(Code::FailedPrecondition, "still used by token \"edge-sdk\""),
        row("deleting a deleted environment")
            .sends(delete("retired"))
            .answers(Code::NotFound, "environment \"retired\""),
    ];
    assert_table(&mut admin, &rows).await;
}
