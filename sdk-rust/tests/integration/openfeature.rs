//! `flagwire::openfeature::FlagwireProvider` through the official `open-feature` 0.3 client
//! against a real server: the provider's status following the sync states, changes reaching
//! the client, mapped error codes, a hook, readiness after the timeout, and the example.
//! (`openfeature_vectors.rs` runs every vector case.)

use crate::support::{ADMIN, TestServer};
use flagwire::openfeature::FlagwireProvider;
use flagwire_proto::v1::*;
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationDetails, EvaluationError,
    EvaluationErrorCode, EvaluationReason, FlagMetadataValue, OpenFeature, Value,
};
use open_feature::{Hook, HookContext, HookHints};
use prost_types::value::Kind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server with environment `production`, flag `new-checkout` (disabled: serves `off`), and a
/// provider over a client with fast reconnects, registered under `name`.
async fn live(
    name: &str,
) -> (
    TestServer,
    crate::support::Admin,
    FlagwireProvider,
    open_feature::Client,
) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.bool_flag("new-checkout", "production").await;
    let token = admin.sdk_token("svc", "production").await;
    let client = flagwire::Client::builder(server.url(), token)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .unwrap();
    let provider = FlagwireProvider::new(client);
    OpenFeature::singleton_mut()
        .await
        .set_named_provider(name, provider.clone())
        .await;
    let of = OpenFeature::singleton().await.create_named_client(name);
    (server, admin, provider, of)
}

fn auth<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    r
}

#[tokio::test]
async fn status_follows_the_sync_states_and_changes_reach_the_client() {
    let (mut server, mut admin, provider, of) = live("states").await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    let ctx = EvaluationContext::default().with_targeting_key("user-1");
    assert!(
        !of.get_bool_value("new-checkout", Some(&ctx), None)
            .await
            .unwrap()
    );

    // open-feature 0.3 has no provider events: changes come from the Flagwire client.
    let mut changes = provider.client().changes();
    admin.set("new-checkout", "production", true).await;
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.flags, vec!["new-checkout".to_string()]);
    assert!(
        of.get_bool_value("new-checkout", Some(&ctx), None)
            .await
            .unwrap()
    );

    server.stop().await;
    eventually("STALE", || provider.status() == ProviderStatus::STALE).await;
    assert!(
        of.get_bool_value("new-checkout", Some(&ctx), None)
            .await
            .unwrap(),
        "serves the last copy"
    );
    server.restart().await;
    eventually("READY again", || provider.status() == ProviderStatus::Ready).await;

    // A refused token: revoke it, restart so the stream reconnects: ERROR.
    let mut admin = server.admin().await;
    let tokens = admin
        .0
        .list_api_tokens(auth(ListApiTokensRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let svc = tokens.tokens.iter().find(|t| t.name == "svc").unwrap();
    admin
        .0
        .revoke_api_token(auth(RevokeApiTokenRequest {
            id: svc.id.clone(),
            reason: "test".into(),
        }))
        .await
        .unwrap();
    server.restart().await;
    eventually("ERROR", || provider.status() == ProviderStatus::Error).await;
    assert!(
        of.get_bool_value("new-checkout", Some(&ctx), None)
            .await
            .unwrap()
    );
    provider.client().close().await;
}

#[tokio::test]
async fn errors_map_to_openfeature_codes() {
    let (_server, _admin, provider, of) = live("errors").await;
    let ctx = EvaluationContext::default().with_targeting_key("user-1");
    let mismatch = of
        .get_string_details("new-checkout", Some(&ctx), None)
        .await;
    assert_eq!(
        mismatch.unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    let missing = of.get_int_value("no-such-flag", Some(&ctx), None).await;
    assert_eq!(missing.unwrap_err().code, EvaluationErrorCode::FlagNotFound);
    let nested = ctx
        .clone()
        .with_custom_field("nested", EvaluationContextFieldValue::new_struct(1u8));
    let invalid = of.get_bool_value("new-checkout", Some(&nested), None).await;
    assert_eq!(
        invalid.unwrap_err().code,
        EvaluationErrorCode::InvalidContext
    );
    let d = of
        .get_bool_details("new-checkout", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason),
        (false, Some("off"), Some(EvaluationReason::Disabled))
    );
    assert_eq!(
        d.flag_metadata.values.get("flagVersion"),
        Some(&FlagMetadataValue::Int(1))
    );
    provider.client().close().await;
}

/// (flag key, value, variant) as an `after` hook sees them.
type Seen = (String, Value, Option<String>);

/// Adds a `plan` attribute before evaluation and records what it saw after.
#[derive(Clone, Default)]
struct Recording {
    seen: Arc<Mutex<Vec<Seen>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl Hook for Recording {
    async fn before<'a>(
        &self,
        context: &HookContext<'a>,
        _hints: Option<&'a HookHints>,
    ) -> Result<Option<EvaluationContext>, EvaluationError> {
        let ctx = context
            .evaluation_context
            .clone()
            .with_custom_field("plan", "pro");
        Ok(Some(ctx))
    }

    async fn after<'a>(
        &self,
        context: &HookContext<'a>,
        details: &EvaluationDetails<Value>,
        _hints: Option<&'a HookHints>,
    ) -> Result<(), EvaluationError> {
        self.seen.lock().unwrap().push((
            context.flag_key.to_string(),
            details.value.clone(),
            details.variant.clone(),
        ));
        Ok(())
    }

    async fn error<'a>(
        &self,
        context: &HookContext<'a>,
        _error: &EvaluationError,
        _hints: Option<&'a HookHints>,
    ) {
        self.errors
            .lock()
            .unwrap()
            .push(context.flag_key.to_string());
    }

    async fn finally<'a>(
        &self,
        _context: &HookContext<'a>,
        _details: &EvaluationDetails<Value>,
        _hints: Option<&'a HookHints>,
    ) {
    }
}

#[tokio::test]
async fn hooks_run_and_their_context_reaches_the_provider() {
    let (_server, mut admin, provider, _) = live("hooks").await;
    // `pro-only` serves `on` only to plan=pro, which only the hook adds.
    let mut flag = Flag {
        key: "pro-only".into(),
        r#type: ValueType::Boolean as i32,
        variants: ["on", "off"]
            .iter()
            .map(|k| Variant {
                key: (*k).into(),
                value: Some(FlagValue {
                    kind: Some(flag_value::Kind::BoolValue(*k == "on")),
                }),
                description: String::new(),
            })
            .collect(),
        ..Default::default()
    };
    let rule = Rule {
        id: "pro".into(),
        clauses: vec![Clause {
            attribute: "plan".into(),
            operator: Operator::In as i32,
            values: vec![prost_types::Value {
                kind: Some(Kind::StringValue("pro".into())),
            }],
            ..Default::default()
        }],
        serve: Some(Serve {
            kind: Some(serve::Kind::Variant("on".into())),
        }),
        ..Default::default()
    };
    flag.environments.insert(
        "production".into(),
        FlagConfig {
            enabled: true,
            off_variant: "off".into(),
            rules: vec![rule],
            default_rule: Some(Serve {
                kind: Some(serve::Kind::Variant("off".into())),
            }),
            ..Default::default()
        },
    );
    let mut changes = provider.client().changes();
    admin
        .0
        .create_flag(auth(CreateFlagRequest {
            flag: Some(flag),
            reason: String::new(),
        }))
        .await
        .unwrap();
    let ctx = EvaluationContext::default().with_targeting_key("user-1");
    loop {
        let change = tokio::time::timeout(WAIT, changes.recv())
            .await
            .unwrap()
            .unwrap();
        if change.flags.contains(&"pro-only".to_string()) {
            break;
        }
    }
    let plain = OpenFeature::singleton().await.create_named_client("hooks");
    assert!(
        !plain
            .get_bool_value("pro-only", Some(&ctx), None)
            .await
            .unwrap()
    );
    let hook = Recording::default();
    let hooked = OpenFeature::singleton()
        .await
        .create_named_client("hooks")
        .with_hook(hook.clone());
    assert!(
        hooked
            .get_bool_value("pro-only", Some(&ctx), None)
            .await
            .unwrap()
    );
    assert!(
        hooked
            .get_bool_value("missing", Some(&ctx), None)
            .await
            .is_err()
    );
    assert_eq!(
        *hook.seen.lock().unwrap(),
        vec![(
            "pro-only".to_string(),
            Value::Bool(true),
            Some("on".to_string())
        )]
    );
    assert_eq!(*hook.errors.lock().unwrap(), vec!["missing".to_string()]);
    provider.client().close().await;
}

#[tokio::test]
async fn the_example_runs() {
    let (server, mut admin, provider, _) = live("example").await;
    admin.set("new-checkout", "production", true).await;
    let token = admin.sdk_token("example", "production").await;
    // target/<profile>/deps/<test> -> target/<profile>/examples/openfeature
    let exe = std::env::current_exe().unwrap();
    let path = exe.ancestors().nth(2).unwrap().join("examples/openfeature");
    assert!(path.exists(), "no example at {}", path.display());
    let out = tokio::process::Command::new(&path)
        .env("FLAGWIRE_URL", server.url())
        .env("FLAGWIRE_TOKEN", token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "new-checkout for user-42: true (reason STATIC, variant on)\n"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = admin.usage("production", "new-checkout").await;
        if rows
            .iter()
            .any(|r| r.metrics.iter().any(|m| m.name == "checkout"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the example's metric never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    provider.client().close().await;
}

#[tokio::test]
async fn flags_arriving_after_the_ready_timeout_make_the_provider_ready() {
    let mut server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.bool_flag("new-checkout", "production").await;
    let token = admin.sdk_token("late", "production").await;
    server.stop().await;
    let client = flagwire::Client::builder(server.url(), token)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .unwrap();
    let provider = FlagwireProvider::new(client).with_ready_timeout(Duration::from_millis(200));
    OpenFeature::singleton_mut()
        .await
        .set_named_provider("late", provider.clone())
        .await;
    let of = OpenFeature::singleton().await.create_named_client("late");
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let ctx = EvaluationContext::default().with_targeting_key("user-1");
    let early = of.get_bool_value("new-checkout", Some(&ctx), None).await;
    assert_eq!(
        early.unwrap_err().code,
        EvaluationErrorCode::ProviderNotReady
    );
    server.restart().await;
    eventually("READY after the timeout", || {
        provider.status() == ProviderStatus::Ready
    })
    .await;
    assert!(
        !of.get_bool_value("new-checkout", Some(&ctx), None)
            .await
            .unwrap()
    );
    provider.client().close().await;
}
