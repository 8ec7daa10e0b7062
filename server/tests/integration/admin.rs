//! Every AdminService RPC against the real server: success and each failure code.

use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

#[tokio::test]
async fn environments() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    let env = create_env(&mut admin, "production").await;
    assert_eq!((env.name.as_str(), env.revision), ("production", 0));
    let dup = admin
        .create_environment(CreateEnvironmentRequest {
            environment: Some(Environment {
                key: "production".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await;
    code(dup, Code::AlreadyExists);
    let got = admin
        .get_environment(GetEnvironmentRequest {
            key: "production".into(),
        })
        .await;
    assert_eq!(
        got.unwrap().into_inner().environment.unwrap().key,
        "production"
    );
    code(
        admin
            .get_environment(GetEnvironmentRequest { key: "nope".into() })
            .await,
        Code::NotFound,
    );
    create_env(&mut admin, "staging").await;
    let list = admin
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = list.environments.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["production", "staging"]);

    create_flag(&mut admin, bool_flag("f", &["staging"])).await;
    let busy = admin
        .delete_environment(DeleteEnvironmentRequest {
            key: "staging".into(),
            reason: String::new(),
        })
        .await;
    assert!(code(busy, Code::FailedPrecondition).contains("flag \"f\""));
    admin
        .delete_environment(DeleteEnvironmentRequest {
            key: "production".into(),
            reason: String::new(),
        })
        .await
        .unwrap();
    code(
        admin
            .delete_environment(DeleteEnvironmentRequest {
                key: "production".into(),
                reason: String::new(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn flags_lifecycle() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let flag = create_flag(&mut admin, bool_flag("new-checkout", &["production"])).await;
    assert_eq!(flag.version, 1);
    assert!(flag.create_time.is_some());
    let dup = admin
        .create_flag(CreateFlagRequest {
            flag: Some(flag.clone()),
            reason: String::new(),
        })
        .await;
    code(dup, Code::AlreadyExists);
    code(
        admin
            .get_flag(GetFlagRequest {
                key: "missing".into(),
            })
            .await,
        Code::NotFound,
    );

    // Update: needs the version read; a stale one names both versions.
    let mut next = flag.clone();
    next.description = "checkout v2".into();
    let missing_version = admin
        .update_flag(UpdateFlagRequest {
            flag: Some(next.clone()),
            expected_version: 0,
            reason: String::new(),
        })
        .await;
    assert!(code(missing_version, Code::InvalidArgument).contains("expectedVersion"));
    let updated = admin
        .update_flag(UpdateFlagRequest {
            flag: Some(next.clone()),
            expected_version: 1,
            reason: "copy".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert_eq!(
        (updated.version, updated.description.as_str()),
        (2, "checkout v2")
    );
    let stale = admin
        .update_flag(UpdateFlagRequest {
            flag: Some(next.clone()),
            expected_version: 1,
            reason: String::new(),
        })
        .await;
    let msg = code(stale, Code::FailedPrecondition);
    assert!(
        msg.contains("version 2") && msg.contains("expected 1"),
        "{msg}"
    );
    let unknown = admin
        .update_flag(UpdateFlagRequest {
            flag: Some(bool_flag("ghost", &[])),
            expected_version: 1,
            reason: String::new(),
        })
        .await;
    code(unknown, Code::NotFound);

    // Toggle, archive, unarchive.
    let on = set_enabled(&mut admin, "new-checkout", "production", true).await;
    assert!(on.environments["production"].enabled);
    assert_eq!(on.version, 3);
    let bad_env = admin
        .set_flag_enabled(SetFlagEnabledRequest {
            key: "new-checkout".into(),
            environment: "mars".into(),
            enabled: true,
            ..Default::default()
        })
        .await;
    code(bad_env, Code::NotFound);
    let stale_toggle = admin
        .set_flag_enabled(SetFlagEnabledRequest {
            key: "new-checkout".into(),
            environment: "production".into(),
            enabled: false,
            expected_version: 1,
            reason: String::new(),
        })
        .await;
    code(stale_toggle, Code::FailedPrecondition);
    let archived = admin
        .archive_flag(ArchiveFlagRequest {
            key: "new-checkout".into(),
            archived: true,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert!(archived.archived);
    let listed = admin
        .list_flags(ListFlagsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.flags.is_empty(),
        "archived flags are hidden by default"
    );
    let listed = admin
        .list_flags(ListFlagsRequest {
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.flags.len(), 1);
    admin
        .archive_flag(ArchiveFlagRequest {
            key: "new-checkout".into(),
            archived: false,
            reason: String::new(),
        })
        .await
        .unwrap();
    code(
        admin
            .archive_flag(ArchiveFlagRequest {
                key: "nope".into(),
                archived: true,
                reason: String::new(),
            })
            .await,
        Code::NotFound,
    );

    // History and revert.
    let versions = admin
        .list_flag_versions(ListFlagVersionsRequest {
            key: "new-checkout".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        versions.iter().map(|f| f.version).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    code(
        admin
            .list_flag_versions(ListFlagVersionsRequest { key: "nope".into() })
            .await,
        Code::NotFound,
    );
    let reverted = admin
        .revert_flag(RevertFlagRequest {
            key: "new-checkout".into(),
            version: 1,
            expected_version: 5,
            reason: "bad".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert_eq!(reverted.version, 6);
    assert_eq!(reverted.description, "");
    assert!(!reverted.environments["production"].enabled);
    code(
        admin
            .revert_flag(RevertFlagRequest {
                key: "new-checkout".into(),
                version: 99,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    code(
        admin
            .revert_flag(RevertFlagRequest {
                key: "new-checkout".into(),
                version: 1,
                expected_version: 2,
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );

    // Delete: refused while another flag depends on it.
    let mut dependent = bool_flag("dependent", &["production"]);
    dependent
        .environments
        .get_mut("production")
        .unwrap()
        .prerequisites = vec![Prerequisite {
        flag_key: "new-checkout".into(),
        variant: "on".into(),
    }];
    create_flag(&mut admin, dependent).await;
    let refused = admin
        .delete_flag(DeleteFlagRequest {
            key: "new-checkout".into(),
            reason: String::new(),
        })
        .await;
    assert!(code(refused, Code::FailedPrecondition).contains("dependent"));
    admin
        .delete_flag(DeleteFlagRequest {
            key: "dependent".into(),
            reason: String::new(),
        })
        .await
        .unwrap();
    admin
        .delete_flag(DeleteFlagRequest {
            key: "new-checkout".into(),
            reason: String::new(),
        })
        .await
        .unwrap();
    code(
        admin
            .delete_flag(DeleteFlagRequest {
                key: "new-checkout".into(),
                reason: String::new(),
            })
            .await,
        Code::NotFound,
    );
    // Re-created flags continue the version sequence, so history stays unambiguous.
    let again = create_flag(&mut admin, bool_flag("new-checkout", &[])).await;
    assert_eq!(again.version, 7);
}

#[tokio::test]
async fn list_flags_pages_and_filters() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    for i in 0u32..25 {
        let mut flag = bool_flag(&format!("flag-{i:02}"), &[]);
        flag.tags = if i.is_multiple_of(2) {
            vec!["even".into()]
        } else {
            vec!["odd".into()]
        };
        create_flag(&mut admin, flag).await;
    }
    create_flag(&mut admin, bool_flag("other", &[])).await;
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_flags(ListFlagsRequest {
                page_size: 10,
                page_token: token,
                key_prefix: "flag-".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.flags.len() <= 10);
        keys.extend(page.flags.into_iter().map(|f| f.key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(keys.len(), 25);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let even = admin
        .list_flags(ListFlagsRequest {
            tags: vec!["even".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(even.flags.len(), 13);
}

#[tokio::test]
async fn segments() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let seg = Segment {
        key: "beta-testers".into(),
        environment: "production".into(),
        included: vec!["user-1".into()],
        ..Default::default()
    };
    let created = admin
        .create_segment(CreateSegmentRequest {
            segment: Some(seg.clone()),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .segment
        .unwrap();
    assert_eq!(created.version, 1);
    code(
        admin
            .create_segment(CreateSegmentRequest {
                segment: Some(seg.clone()),
                reason: String::new(),
            })
            .await,
        Code::AlreadyExists,
    );
    let get = |key: &str| GetSegmentRequest {
        environment: "production".into(),
        key: key.into(),
    };
    assert_eq!(
        admin
            .get_segment(get("beta-testers"))
            .await
            .unwrap()
            .into_inner()
            .segment
            .unwrap()
            .included,
        ["user-1"]
    );
    code(admin.get_segment(get("nope")).await, Code::NotFound);
    let listed = admin
        .list_segments(ListSegmentsRequest {
            environment: "production".into(),
        })
        .await
        .unwrap();
    assert_eq!(listed.into_inner().segments.len(), 1);
    code(
        admin
            .list_segments(ListSegmentsRequest {
                environment: "nope".into(),
            })
            .await,
        Code::NotFound,
    );

    let mut next = seg.clone();
    next.excluded = vec!["user-2".into()];
    let updated = admin
        .update_segment(UpdateSegmentRequest {
            segment: Some(next.clone()),
            expected_version: 1,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .segment
        .unwrap();
    assert_eq!(updated.version, 2);
    code(
        admin
            .update_segment(UpdateSegmentRequest {
                segment: Some(next),
                expected_version: 1,
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );

    // A flag using the segment blocks its deletion.
    let mut flag = bool_flag("beta-ui", &["production"]);
    flag.environments.get_mut("production").unwrap().rules = vec![Rule {
        id: "beta".into(),
        clauses: vec![Clause {
            operator: Operator::InSegment as i32,
            values: vec![prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("beta-testers".into())),
            }],
            ..Default::default()
        }],
        serve: Some(Serve {
            kind: Some(serve::Kind::Variant("on".into())),
        }),
        ..Default::default()
    }];
    create_flag(&mut admin, flag).await;
    let del = |key: &str| DeleteSegmentRequest {
        environment: "production".into(),
        key: key.into(),
        reason: String::new(),
    };
    assert!(
        code(
            admin.delete_segment(del("beta-testers")).await,
            Code::FailedPrecondition
        )
        .contains("beta-ui")
    );
    admin
        .delete_flag(DeleteFlagRequest {
            key: "beta-ui".into(),
            reason: String::new(),
        })
        .await
        .unwrap();
    admin.delete_segment(del("beta-testers")).await.unwrap();
    code(
        admin.delete_segment(del("beta-testers")).await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn tokens_and_audit() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let created = admin
        .create_api_token(CreateApiTokenRequest {
            name: "ci-reader".into(),
            role: Role::ReadOnly as i32,
            environment: String::new(),
            reason: "dashboards".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = created.token.unwrap();
    assert!(created.secret.starts_with("fw_") && created.secret.len() == 67);
    assert!(created.secret.starts_with(&token.prefix));
    let dup = admin
        .create_api_token(CreateApiTokenRequest {
            name: "ci-reader".into(),
            role: Role::ReadOnly as i32,
            ..Default::default()
        })
        .await;
    code(dup, Code::AlreadyExists);
    let no_env = admin
        .create_api_token(CreateApiTokenRequest {
            name: "sdk".into(),
            role: Role::Sdk as i32,
            ..Default::default()
        })
        .await;
    assert!(code(no_env, Code::InvalidArgument).contains("environment"));
    let bad_env = admin
        .create_api_token(CreateApiTokenRequest {
            name: "sdk".into(),
            role: Role::Sdk as i32,
            environment: "mars".into(),
            reason: String::new(),
        })
        .await;
    code(bad_env, Code::InvalidArgument);
    let no_role = admin
        .create_api_token(CreateApiTokenRequest {
            name: "x".into(),
            ..Default::default()
        })
        .await;
    assert!(code(no_role, Code::InvalidArgument).contains("role"));

    let listed = admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["admin", "ci-reader"]);

    // The secret works until revoked, then UNAUTHENTICATED.
    let mut reader = server.admin_as(Some(&created.secret)).await;
    reader
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap();
    let revoked = admin
        .revoke_api_token(RevokeApiTokenRequest {
            id: token.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap();
    assert!(revoked.revoke_time.is_some());
    code(
        reader.list_environments(ListEnvironmentsRequest {}).await,
        Code::Unauthenticated,
    );
    code(
        admin
            .revoke_api_token(RevokeApiTokenRequest {
                id: token.id.clone(),
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
    code(
        admin
            .revoke_api_token(RevokeApiTokenRequest {
                id: "nope".into(),
                reason: String::new(),
            })
            .await,
        Code::NotFound,
    );
    // The last live admin token cannot be revoked: that would lock every operator out.
    let admin_id = listed.tokens[0].id.clone();
    let last = admin
        .revoke_api_token(RevokeApiTokenRequest {
            id: admin_id,
            reason: String::new(),
        })
        .await;
    assert!(code(last, Code::FailedPrecondition).contains("last admin token"));
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
    let events = admin
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "audited".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
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

    let by_actor = admin
        .list_audit_events(ListAuditEventsRequest {
            actor: "bootstrap".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(by_actor.len(), 1);
    assert_eq!(by_actor[0].action, "token.create");
    let future = prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    let none = admin
        .list_audit_events(ListAuditEventsRequest {
            start_time: Some(future),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(none.is_empty());
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_audit_events(ListAuditEventsRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.events.iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let total = seen.len();
    assert_eq!(
        total, 6,
        "bootstrap, env, token, revoke, flag, enable: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );
    code(
        admin
            .list_audit_events(ListAuditEventsRequest {
                page_token: "x".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
}
