//! API tokens (create, list, revoke, what a read-only one may not do) and the audit log the
//! story leaves: actor, action, reason, before and after, filters and paging.

use crate::support::inproc::InProcess;
use crate::support::table::{assert_table, row};
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::Duration;
use tonic::Code;

fn create(name: &str, role: Role) -> CreateApiTokenRequest {
    CreateApiTokenRequest {
        name: name.into(),
        role: role as i32,
        ..Default::default()
    }
}

fn revoke(id: &str) -> RevokeApiTokenRequest {
    RevokeApiTokenRequest {
        id: id.into(),
        reason: String::new(),
    }
}

async fn audit(admin: &mut Admin, filter: ListAuditEventsRequest) -> ListAuditEventsResponse {
    admin.list_audit_events(filter).await.unwrap().into_inner()
}

#[tokio::test]
async fn tokens_and_audit() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    // Tokens list oldest first: on the stopped clock, ci-reader is younger than the bootstrap
    // admin token only once the clock moves.
    server.advance(Duration::from_secs(1));
    let created = admin
        .create_api_token(CreateApiTokenRequest {
            reason: "dashboards".into(),
            ..create("ci-reader", Role::ReadOnly)
        })
        .await
        .unwrap()
        .into_inner();
    let token = created.token.unwrap();
    assert!(created.secret.starts_with("fw_") && created.secret.len() == 67);
    assert!(created.secret.starts_with(&token.prefix));
    let listed = admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["admin", "ci-reader"]);
    let admin_id = listed.tokens[0].id.clone();

    // The secret works until revoked, then UNAUTHENTICATED.
    let reader = server.admin_as(Some(&created.secret)).await;
    reader
        .clone()
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap();
    let rows = vec![
        row("a second live token named ci-reader")
            .sends(create("ci-reader", Role::ReadOnly))
            .answers(Code::AlreadyExists, "token named \"ci-reader\""),
        row("a read-only token creating an admin token")
            .sends(create("escalated", Role::Admin))
            .answers(Code::PermissionDenied, "may not call")
            .by(&reader),
        row("a read-only token revoking the admin token")
            .sends(revoke(&admin_id))
            .answers(Code::PermissionDenied, "may not call")
            .by(&reader),
        // That would lock every operator out.
        row("revoking the last live admin token")
            .sends(revoke(&admin_id))
            .answers(Code::FailedPrecondition, "last admin token"),
        row("revoking an unknown token")
            .sends(revoke("nope"))
            .answers(Code::NotFound, "token \"nope\""),
    ];
    assert_table(&mut admin, &rows).await;
    let revoked = admin.revoke_api_token(revoke(&token.id)).await.unwrap();
    assert!(revoked.into_inner().token.unwrap().revoke_time.is_some());
    let rows = vec![
        row("the revoked secret")
            .sends(ListEnvironmentsRequest {})
            .answers(Code::Unauthenticated, "unknown or revoked token")
            .by(&reader),
        row("revoking it again")
            .sends(revoke(&token.id))
            .answers(Code::FailedPrecondition, "already revoked"),
    ];
    assert_table(&mut admin, &rows).await;
    let all = admin
        .list_api_tokens(ListApiTokensRequest {
            include_revoked: true,
        })
        .await
        .unwrap();
    assert_eq!(all.into_inner().tokens.len(), 2);

    // Audit: actor, action, reason (field or metadata), before/after, filters and paging.
    create_flag(&mut admin, bool_flag("audited", &["production"])).await;
    let mut request = tonic::Request::new(SetFlagEnabledRequest {
        key: "audited".into(),
        environment: "production".into(),
        enabled: true,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-flagwire-reason", "incident 42".parse().unwrap());
    admin.set_flag_enabled(request).await.unwrap();
    let events = audit(
        &mut admin,
        ListAuditEventsRequest {
            flag_key: "audited".into(),
            ..Default::default()
        },
    )
    .await
    .events;
    assert_eq!(events.len(), 2);
    let enable = &events[0];
    assert_eq!(
        (enable.action.as_str(), enable.actor.as_str()),
        ("flag.enable", "admin")
    );
    assert_eq!(enable.reason, "incident 42");
    assert_eq!(enable.revisions["production"], 2);
    let before = |e: &AuditEvent| match e.before.as_ref().and_then(|s| s.kind.clone()) {
        Some(audit_subject::Kind::Flag(f)) => f,
        other => panic!("expected a flag, got {other:?}"),
    };
    assert!(!before(enable).environments["production"].enabled);
    assert!(events[1].before.is_none() && events[1].after.is_some());

    let by_actor = ListAuditEventsRequest {
        actor: "bootstrap".into(),
        ..Default::default()
    };
    let by_actor = audit(&mut admin, by_actor).await.events;
    assert_eq!(by_actor.len(), 1);
    assert_eq!(by_actor[0].action, "token.create");
    let future = prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    let from_the_future = ListAuditEventsRequest {
        start_time: Some(future),
        ..Default::default()
    };
    assert!(audit(&mut admin, from_the_future).await.events.is_empty());
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = ListAuditEventsRequest {
            page_size: 2,
            page_token,
            ..Default::default()
        };
        let page = audit(&mut admin, page).await;
        seen.extend(page.events.iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        seen.len(),
        6,
        "bootstrap, env, token, revoke, flag, enable: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );
}
