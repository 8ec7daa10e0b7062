//! Authentication and each role's permissions against the real server.

use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

#[tokio::test]
async fn roles() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    create_flag(&mut admin, bool_flag("f", &["production"])).await;
    let sdk = create_token(&mut admin, "sdk-prod", Role::Sdk, "production").await;
    let reader = create_token(&mut admin, "reader", Role::ReadOnly, "").await;

    // No token / malformed / unknown token: UNAUTHENTICATED, on every service.
    for token in [None, Some("fw_not_a_real_token")] {
        let mut a = server.admin_as(token).await;
        code(
            a.list_environments(ListEnvironmentsRequest {}).await,
            Code::Unauthenticated,
        );
        let mut f = server.flags_as(token).await;
        let w = f
            .watch(WatchRequest {
                environment: "production".into(),
                ..Default::default()
            })
            .await;
        code(w, Code::Unauthenticated);
    }
    let mut basic = server.admin_as(None).await;
    let mut request = tonic::Request::new(ListEnvironmentsRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {ADMIN}").parse().unwrap());
    code(
        basic.list_environments(request).await,
        Code::Unauthenticated,
    );

    // sdk: its own environment's Watch; nothing administrative; no other environment.
    let mut f = server.flags_as(Some(&sdk)).await;
    let mut stream = watch(&mut f, "", 0).await;
    match next(&mut stream).await {
        watch_response::Event::Snapshot(s) => assert_eq!(s.environment, "production"),
        other => panic!("expected a snapshot, got {other:?}"),
    }
    let other = f
        .watch(WatchRequest {
            environment: "staging".into(),
            ..Default::default()
        })
        .await;
    assert!(code(other, Code::PermissionDenied).contains("bound to environment"));
    let mut a = server.admin_as(Some(&sdk)).await;
    code(
        a.get_flag(GetFlagRequest { key: "f".into() }).await,
        Code::PermissionDenied,
    );
    code(
        a.create_flag(CreateFlagRequest {
            flag: Some(bool_flag("g", &[])),
            reason: String::new(),
        })
        .await,
        Code::PermissionDenied,
    );

    // read-only: get, list, watch (naming the environment); no writes, no token listing.
    let mut a = server.admin_as(Some(&reader)).await;
    assert_eq!(
        a.get_flag(GetFlagRequest { key: "f".into() })
            .await
            .unwrap()
            .into_inner()
            .flag
            .unwrap()
            .key,
        "f"
    );
    a.list_flags(ListFlagsRequest::default()).await.unwrap();
    a.list_audit_events(ListAuditEventsRequest::default())
        .await
        .unwrap();
    code(
        a.create_flag(CreateFlagRequest {
            flag: Some(bool_flag("g", &[])),
            reason: String::new(),
        })
        .await,
        Code::PermissionDenied,
    );
    code(
        a.set_flag_enabled(SetFlagEnabledRequest {
            key: "f".into(),
            environment: "production".into(),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
    );
    code(
        a.list_api_tokens(ListApiTokensRequest::default()).await,
        Code::PermissionDenied,
    );
    let mut f = server.flags_as(Some(&reader)).await;
    let mut stream = watch(&mut f, "staging", 0).await;
    assert!(matches!(
        next(&mut stream).await,
        watch_response::Event::Snapshot(_)
    ));
    let unnamed = f.watch(WatchRequest::default()).await;
    assert!(code(unnamed, Code::InvalidArgument).contains("environment"));

    // admin: everything, including tokens.
    admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap();
    let mut f = server.flags_as(Some(ADMIN)).await;
    watch(&mut f, "production", 0).await;
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "flagwire.v1.AdminService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn revoking_a_token_ends_its_open_watch() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--heartbeat-secs", "0.1"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;
    let id = admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tokens
        .into_iter()
        .find(|t| t.name == "sdk")
        .unwrap()
        .id;
    let mut f = server.flags_as(Some(&sdk)).await;
    let mut stream = watch(&mut f, "", 0).await;
    assert!(matches!(
        next(&mut stream).await,
        watch_response::Event::Snapshot(_)
    ));
    admin
        .revoke_api_token(RevokeApiTokenRequest {
            id,
            reason: String::new(),
        })
        .await
        .unwrap();
    // Within a heartbeat interval the stream fails and ends.
    let end = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    let status = end.expect_err("the stream ends with an error");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[test]
fn a_short_or_empty_configured_admin_token_is_refused_at_start() {
    for token in ["", "short"] {
        let dir = tempdir();
        let out = std::process::Command::new(flagwire_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path())
            .env("FLAGWIRE_ADMIN_TOKEN", token)
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with admin token {token:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("FLAGWIRE_ADMIN_TOKEN"), "{stderr}");
    }
}
