//! `flagwire::openfeature::FlagwireProvider` through the official `open-feature` 0.3 client
//! against a real server: every vector case (each case file seeded into its own server's
//! store, as a restore would write it), the provider's status following the sync states,
//! changes reaching the client, mapped error codes, a hook, and the example.

#[path = "../../core/tests/support/vectors.rs"]
mod vectors;

mod support;

use flagwire::openfeature::FlagwireProvider;
use flagwire_proto::v1::*;
use flagwire_server::store::{Batch, keys};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationDetails, EvaluationError,
    EvaluationErrorCode, EvaluationReason, EvaluationResult, FlagMetadataValue, OpenFeature,
    StructValue, Value,
};
use open_feature::{Hook, HookContext, HookHints};
use prost::Message;
use prost_types::value::Kind;
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ADMIN, TestServer};
use vectors::*;

const WAIT: Duration = Duration::from_secs(10);

/// The store entries of a case file (server/src/store/keys.rs's layout).
fn seed(file: &VectorFile) -> Batch {
    let mut batch = Batch::default();
    let env = Environment {
        key: file.environment.clone(),
        revision: 1,
        ..Default::default()
    };
    batch.put(keys::environment(&env.key), env.encode_to_vec());
    for flag in &file.flags {
        batch.put(keys::flag(&flag.key), flag.encode_to_vec());
    }
    for segment in &file.segments {
        let mut segment = segment.clone();
        if segment.environment.is_empty() {
            segment.environment = file.environment.clone();
        }
        batch.put(
            keys::segment(&segment.environment, &segment.key),
            segment.encode_to_vec(),
        );
    }
    batch
}

/// The OpenFeature context of a vector case's context. A list of strings goes as
/// `new_struct(Vec<String>)` (0.3 has no list type); a null is absent; an object or a list of
/// anything else as a struct the provider cannot read (so, as in the vector, INVALID_CONTEXT).
fn of_context(ctx: &flagwire_proto::v1::EvaluationContext) -> EvaluationContext {
    let mut out = EvaluationContext::default();
    if !ctx.targeting_key.is_empty() {
        out = out.with_targeting_key(ctx.targeting_key.clone());
    }
    for (name, value) in &ctx.attributes {
        let field = match &value.kind {
            Some(Kind::StringValue(s)) => EvaluationContextFieldValue::String(s.clone()),
            Some(Kind::BoolValue(b)) => EvaluationContextFieldValue::Bool(*b),
            Some(Kind::NumberValue(n)) => EvaluationContextFieldValue::Float(*n),
            Some(Kind::NullValue(_)) | None => continue,
            Some(Kind::ListValue(list)) => {
                let strings: Option<Vec<String>> = list
                    .values
                    .iter()
                    .map(|v| match &v.kind {
                        Some(Kind::StringValue(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                match strings {
                    Some(strings) => EvaluationContextFieldValue::new_struct(strings),
                    None => EvaluationContextFieldValue::new_struct(()),
                }
            }
            Some(Kind::StructValue(_)) => EvaluationContextFieldValue::new_struct(()),
        };
        out.add_custom_field(name.clone(), field);
    }
    out
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => s.clone().into(),
        Value::Array(items) => items.iter().map(value_json).collect(),
        Value::Struct(s) => struct_json(s),
    }
}

fn struct_json(s: &StructValue) -> Json {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_json(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// JSON without its object members that are null: OpenFeature 0.3's values have no null.
fn without_nulls(v: &Json) -> Json {
    match v {
        Json::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), without_nulls(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Json::Array(items) => items.iter().map(without_nulls).collect(),
        other => other.clone(),
    }
}

fn reason_back(r: Option<&EvaluationReason>) -> Reason {
    match r.map(ToString::to_string).as_deref() {
        Some("STATIC") => Reason::Static,
        Some("TARGETING_MATCH") => Reason::TargetingMatch,
        Some("SPLIT") => Reason::Split,
        Some("DISABLED") => Reason::Disabled,
        Some("PREREQUISITE_FAILED") => Reason::PrerequisiteFailed,
        Some("ERROR") => Reason::Error,
        other => panic!("a reason Flagwire does not give: {other:?}"),
    }
}

fn code_back(code: &EvaluationErrorCode) -> ErrorCode {
    match code {
        EvaluationErrorCode::FlagNotFound => ErrorCode::FlagNotFound,
        EvaluationErrorCode::TypeMismatch => ErrorCode::TypeMismatch,
        EvaluationErrorCode::TargetingKeyMissing => ErrorCode::TargetingKeyMissing,
        EvaluationErrorCode::InvalidContext => ErrorCode::InvalidContext,
        EvaluationErrorCode::ProviderNotReady => ErrorCode::ProviderNotReady,
        EvaluationErrorCode::ParseError => ErrorCode::ParseError,
        EvaluationErrorCode::General(g) => {
            assert_eq!(g, "GENERAL");
            ErrorCode::General
        }
    }
}

fn meta_str(d: &EvaluationDetails<Value>, key: &str) -> String {
    match d.flag_metadata.values.get(key) {
        Some(FlagMetadataValue::String(s)) => s.clone(),
        None => String::new(),
        Some(other) => panic!("{key}: {other:?}"),
    }
}

/// A case's outcome through OpenFeature. An error is `Err` in 0.3, with no metadata, so the
/// flag version an error case expects cannot come back: it is taken as given there.
fn outcome(case: &Case, result: EvaluationResult<EvaluationDetails<Value>>) -> Outcome {
    let expected_version = case.expected["flagVersion"].as_u64().unwrap_or(0);
    match result {
        Ok(d) => Outcome {
            value: Some(value_json(&d.value)),
            variant: d.variant.clone().unwrap_or_default(),
            reason: reason_back(d.reason.as_ref()),
            error_code: ErrorCode::Unspecified,
            cohort: meta_str(&d, "cohort"),
            rollout_id: meta_str(&d, "rolloutId"),
            flag_version: match d.flag_metadata.values.get("flagVersion") {
                Some(FlagMetadataValue::Int(v)) => *v as u64,
                other => panic!("flagVersion: {other:?}"),
            },
        },
        Err(EvaluationError { code, .. }) => Outcome {
            value: None,
            variant: String::new(),
            reason: Reason::Error,
            error_code: code_back(&code),
            cohort: String::new(),
            rollout_id: String::new(),
            flag_version: expected_version,
        },
    }
}

/// The typed call of a case; `any` (OpenFeature has no untyped call) uses the flag's own type,
/// or for a missing flag the type of the default.
fn call_type(file: &VectorFile, case: &Case) -> ValueType {
    if let Some(t) = case.expected_type {
        return t;
    }
    if let Some(flag) = file.flags.iter().find(|f| f.key == case.flag) {
        return flag.r#type();
    }
    match &case.default {
        Json::Bool(_) => ValueType::Boolean,
        Json::Number(n) if n.is_i64() => ValueType::Integer,
        Json::Number(_) => ValueType::Float,
        Json::String(_) => ValueType::String,
        _ => ValueType::Object,
    }
}

async fn evaluate(
    client: &open_feature::Client,
    kind: ValueType,
    key: &str,
    ctx: &EvaluationContext,
) -> EvaluationResult<EvaluationDetails<Value>> {
    let ctx = Some(ctx);
    match kind {
        ValueType::Boolean => client
            .get_bool_details(key, ctx, None)
            .await
            .map(|d| d.into_value()),
        ValueType::String => client
            .get_string_details(key, ctx, None)
            .await
            .map(|d| d.into_value()),
        ValueType::Integer => client
            .get_int_details(key, ctx, None)
            .await
            .map(|d| d.into_value()),
        ValueType::Float => client
            .get_float_details(key, ctx, None)
            .await
            .map(|d| d.into_value()),
        _ => client
            .get_struct_details::<StructValue>(key, ctx, None)
            .await
            .map(|d| d.into_value()),
    }
}

/// Object values holding a null, which OpenFeature 0.3 cannot carry (they come back without
/// that member). Kept here with that reason; the test checks the list.
const WITHOUT_NULLS: &[&str] = &[
    "object as any: nested value",
    "object: nested objects, lists, booleans, null and numbers",
];

#[tokio::test]
async fn every_vector_case_through_openfeature() {
    let mut tally = Tally::default();
    let mut nulls = Vec::new();
    for file in load_all() {
        let name = file.path.file_name().unwrap().to_string_lossy().to_string();
        let server = TestServer::start_seeded(seed(&file)).await;
        let token = server
            .admin()
            .await
            .sdk_token("openfeature", &file.environment)
            .await;
        let flagwire = flagwire::Client::builder(server.url(), token)
            .build()
            .unwrap();
        OpenFeature::singleton_mut()
            .await
            .set_named_provider(&name, FlagwireProvider::new(flagwire.clone()))
            .await;
        let client = OpenFeature::singleton().await.create_named_client(&name);
        for case in &file.cases {
            let ctx = of_context(&case.context);
            let kind = call_type(&file, case);
            let result = evaluate(&client, kind, &case.flag, &ctx).await;
            let mut expected = case.expected.clone();
            if kind == ValueType::Object && result.is_ok() {
                let stripped = without_nulls(&case.expected["value"]);
                if stripped != case.expected["value"] {
                    nulls.push(case.description.clone());
                    expected["value"] = stripped;
                }
            }
            let checked = Case {
                description: case.description.clone(),
                flag: case.flag.clone(),
                expected_type: case.expected_type,
                default: case.default.clone(),
                context: case.context.clone(),
                expected,
            };
            tally.check(&file, &checked, &outcome(case, result));
        }
        flagwire.close().await;
    }
    nulls.sort();
    assert_eq!(nulls, WITHOUT_NULLS, "the cases with null members changed");
    tally.finish();
}

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
    support::Admin,
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
type Seen = (String, Json, Option<String>);

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
            value_json(&details.value),
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
            Json::Bool(true),
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
