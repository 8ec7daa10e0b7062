//! Segments: create, get, list, update, and delete only when no flag uses them.

use crate::support::inproc::InProcess;
use crate::support::table::{assert_table, row};
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

fn get(key: &str) -> GetSegmentRequest {
    GetSegmentRequest {
        environment: "production".into(),
        key: key.into(),
    }
}

fn delete(key: &str) -> DeleteSegmentRequest {
    DeleteSegmentRequest {
        environment: "production".into(),
        key: key.into(),
        reason: String::new(),
    }
}

fn update(segment: Segment, expected_version: u64) -> UpdateSegmentRequest {
    UpdateSegmentRequest {
        segment: Some(segment),
        expected_version,
        reason: String::new(),
    }
}

/// A flag `key` whose production rule serves `on` to the segment `segment`.
fn flag_using(key: &str, segment: &str) -> Flag {
    let mut flag = bool_flag(key, &["production"]);
    flag.environments.get_mut("production").unwrap().rules = vec![Rule {
        id: "beta".into(),
        clauses: vec![Clause {
            operator: Operator::InSegment as i32,
            values: vec![prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(segment.into())),
            }],
            ..Default::default()
        }],
        serve: Some(Serve {
            kind: Some(serve::Kind::Variant("on".into())),
        }),
        ..Default::default()
    }];
    flag
}

#[tokio::test]
async fn segments() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let seg = Segment {
        key: "beta-testers".into(),
        environment: "production".into(),
        included: vec!["user-1".into()],
        ..Default::default()
    };
    let create = CreateSegmentRequest {
        segment: Some(seg.clone()),
        reason: String::new(),
    };
    let created = admin.create_segment(create.clone()).await.unwrap();
    assert_eq!(created.into_inner().segment.unwrap().version, 1);
    let got = admin.get_segment(get("beta-testers")).await.unwrap();
    assert_eq!(got.into_inner().segment.unwrap().included, ["user-1"]);
    let listed = admin
        .list_segments(ListSegmentsRequest {
            environment: "production".into(),
        })
        .await
        .unwrap();
    assert_eq!(listed.into_inner().segments.len(), 1);

    let mut next = seg.clone();
    next.excluded = vec!["user-2".into()];
    let updated = admin.update_segment(update(next.clone(), 1)).await.unwrap();
    assert_eq!(updated.into_inner().segment.unwrap().version, 2);

    // A flag using the segment blocks its deletion.
    create_flag(&mut admin, flag_using("beta-ui", "beta-testers")).await;
    let ghost = Segment {
        key: "ghost".into(),
        ..seg.clone()
    };
    let rows = vec![
        row("creating it again").sends(create).answers(
            Code::AlreadyExists,
            "segment \"beta-testers\" already exists",
        ),
        row("getting an unknown segment")
            .sends(get("nope"))
            .answers(
                Code::NotFound,
                "segment \"nope\" in environment \"production\"",
            ),
        row("listing an unknown environment")
            .sends(ListSegmentsRequest {
                environment: "nope".into(),
            })
            .answers(Code::NotFound, "environment \"nope\""),
        row("an update from a stale version")
            .sends(update(next, 1))
            .answers(
                Code::FailedPrecondition,
                "is at version 2, the request expected 1",
            ),
        row("updating an unknown segment")
            .sends(update(ghost, 1))
            .answers(Code::NotFound, "segment \"ghost\""),
        row("deleting a segment a flag uses")
            .sends(delete("beta-testers"))
            .answers(Code::FailedPrecondition, "used by flag \"beta-ui\""),
    ];
    assert_table(&mut admin, &rows).await;

    let unused = DeleteFlagRequest {
        key: "beta-ui".into(),
        reason: String::new(),
    };
    admin.delete_flag(unused).await.unwrap();
    admin.delete_segment(delete("beta-testers")).await.unwrap();
    let rows = vec![
        row("deleting a deleted segment")
            .sends(delete("beta-testers"))
            .answers(Code::NotFound, "segment \"beta-testers\""),
    ];
    assert_table(&mut admin, &rows).await;
}
