//! Remote evaluation on the real server: results follow writes at once, EvaluateAll lists every
//! live flag in key order, and tokens keep to their environment.

use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

fn request(env: &str, key: &str, unit: &str) -> EvaluateRequest {
    EvaluateRequest {
        environment: env.into(),
        flag_key: key.into(),
        context: Some(EvaluationContext {
            targeting_key: unit.into(),
            attributes: Default::default(),
        }),
        expected_type: ValueType::Boolean as i32,
    }
}

#[tokio::test]
async fn evaluate_follows_writes_and_evaluate_all_lists_live_flags() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    for key in ["b-flag", "a-flag", "c-flag"] {
        create_flag(&mut admin, bool_flag(key, &["production"])).await;
    }
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;
    let mut flags = server.flags_as(Some(&sdk)).await;

    let off = flags
        .evaluate(request("", "a-flag", "u1"))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        (off.variant.as_str(), off.reason),
        ("off", Reason::Disabled as i32)
    );
    set_enabled(&mut admin, "a-flag", "production", true).await;
    let on = flags
        .evaluate(request("", "a-flag", "u1"))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        (on.variant.as_str(), on.reason, on.flag_version),
        ("on", Reason::Static as i32, 2)
    );

    admin
        .archive_flag(ArchiveFlagRequest {
            force: false,
            key: "c-flag".into(),
            archived: true,
            reason: String::new(),
        })
        .await
        .unwrap();
    let missing = flags
        .evaluate(request("", "c-flag", "u1"))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(missing.error_code, ErrorCode::FlagNotFound as i32);
    let all = flags
        .evaluate_all(EvaluateAllRequest {
            environment: String::new(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = all.results.iter().map(|r| r.flag_key.as_str()).collect();
    assert_eq!(keys, ["a-flag", "b-flag"]);
    assert_eq!(all.revision, 5);

    let other = flags.evaluate(request("staging", "a-flag", "u1")).await;
    code(other, Code::PermissionDenied);
    let mut reader = server.flags_as(Some(ADMIN)).await;
    let unnamed = reader.evaluate(request("", "a-flag", "u1")).await;
    code(unnamed, Code::InvalidArgument);
    let unknown_env = reader.evaluate(request("mars", "a-flag", "u1")).await;
    code(unknown_env, Code::NotFound);
    // Staging has no config for a-flag: disabled, serving the first variant.
    let staging = reader
        .evaluate(request("staging", "a-flag", "u1"))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        (staging.variant.as_str(), staging.reason),
        ("on", Reason::Disabled as i32)
    );
}
