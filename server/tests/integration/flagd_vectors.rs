//! flagd's RPC protocol (`flagd.evaluation.v1.Service`) agrees with `flagwire-core` on every
//! vector case: each case file is loaded over the store (as `evaluate_vectors` does, deliberately
//! invalid flags included) and every typed case goes through the typed `Resolve*` call. Cases of
//! type `any` go through `ResolveAll`, which leaves out flags that evaluate to an error. Cases
//! whose context has an attribute named `targetingKey` cannot be put in flagd's flat context.

use crate::evaluate_vectors::vectors::*;
use crate::evaluate_vectors::{TOKEN, serve};
use flagwire_proto::flagd::evaluation::v1::{self as pb, service_client::ServiceClient};
use flagwire_proto::v1::*;
use prost_types::{Struct, value::Kind};
use serde_json::{Value as Json, json};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

fn json_of(v: &prost_types::Value) -> Json {
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(json_of).collect()),
        Some(Kind::StructValue(s)) => struct_json(s),
    }
}

fn struct_json(s: &Struct) -> Json {
    Json::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), json_of(v)))
            .collect(),
    )
}

/// flagd's context for ours: `targetingKey` and the attributes side by side.
fn context(ctx: &EvaluationContext) -> Struct {
    let mut fields: std::collections::BTreeMap<_, _> = ctx.attributes.clone();
    if !ctx.targeting_key.is_empty() {
        fields.insert(
            "targetingKey".into(),
            prost_types::Value {
                kind: Some(Kind::StringValue(ctx.targeting_key.clone())),
            },
        );
    }
    Struct {
        fields: fields.into_iter().collect(),
    }
}

fn reason(name: &str) -> Reason {
    Reason::from_str_name(&format!("REASON_{name}")).unwrap_or(Reason::Unspecified)
}

/// A success: value, variant, reason and metadata.
fn success(value: Json, variant: String, r: &str, metadata: Option<Struct>) -> Outcome {
    let metadata = metadata.map(|m| struct_json(&m)).unwrap_or_default();
    Outcome {
        value: Some(value),
        variant,
        reason: reason(r),
        error_code: ErrorCode::Unspecified,
        cohort: metadata["cohort"].as_str().unwrap_or_default().to_owned(),
        rollout_id: metadata["rolloutId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        flag_version: metadata["flagVersion"].as_f64().unwrap_or(0.0) as u64,
    }
}

/// An error status, decoded as flagd's providers decode it, with our code from the message for
/// the ones they all read as GENERAL. The flagd protocol carries no flag version with an error:
/// the case's own is taken.
fn failure(status: &Status, case: &Case) -> Outcome {
    let code = match status.code() {
        Code::NotFound => ErrorCode::FlagNotFound,
        Code::InvalidArgument => ErrorCode::TypeMismatch,
        Code::DataLoss => ErrorCode::ParseError,
        Code::FailedPrecondition => ["TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]
            .into_iter()
            .find(|name| status.message().ends_with(&format!("({name})")))
            .and_then(|name| ErrorCode::from_str_name(&format!("ERROR_CODE_{name}")))
            .unwrap_or(ErrorCode::Unspecified),
        other => panic!(
            "{}: unexpected status {other:?}: {}",
            case.description,
            status.message()
        ),
    };
    Outcome {
        value: None,
        variant: String::new(),
        reason: Reason::Error,
        error_code: code,
        cohort: String::new(),
        rollout_id: String::new(),
        flag_version: case.expected["flagVersion"].as_u64().unwrap_or(0),
    }
}

/// An admin call (admin tokens name the environment in flagd's selector header).
fn request<T>(message: T, env: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request
        .metadata_mut()
        .insert("flagd-selector", env.parse().unwrap());
    request
}

async fn resolve(client: &mut ServiceClient<Channel>, env: &str, case: &Case) -> Option<Outcome> {
    let flag_key = case.flag.clone();
    let ctx = Some(context(&case.context));
    let result = match case.expected_type {
        Some(ValueType::Boolean) => client
            .resolve_boolean(request(
                pb::ResolveBooleanRequest {
                    flag_key,
                    context: ctx,
                },
                env,
            ))
            .await
            .map(|r| r.into_inner())
            .map(|r| success(json!(r.value), r.variant, &r.reason, r.metadata)),
        Some(ValueType::String) => client
            .resolve_string(request(
                pb::ResolveStringRequest {
                    flag_key,
                    context: ctx,
                },
                env,
            ))
            .await
            .map(|r| r.into_inner())
            .map(|r| success(json!(r.value), r.variant, &r.reason, r.metadata)),
        Some(ValueType::Integer) => client
            .resolve_int(request(
                pb::ResolveIntRequest {
                    flag_key,
                    context: ctx,
                },
                env,
            ))
            .await
            .map(|r| r.into_inner())
            .map(|r| success(json!(r.value), r.variant, &r.reason, r.metadata)),
        Some(ValueType::Float) => client
            .resolve_float(request(
                pb::ResolveFloatRequest {
                    flag_key,
                    context: ctx,
                },
                env,
            ))
            .await
            .map(|r| r.into_inner())
            .map(|r| success(json!(r.value), r.variant, &r.reason, r.metadata)),
        Some(ValueType::Object) => client
            .resolve_object(request(
                pb::ResolveObjectRequest {
                    flag_key,
                    context: ctx,
                },
                env,
            ))
            .await
            .map(|r| r.into_inner())
            .map(|r| {
                let value = r.value.as_ref().map_or(Json::Null, struct_json);
                success(value, r.variant, &r.reason, r.metadata)
            }),
        _ => {
            let all = client
                .resolve_all(request(pb::ResolveAllRequest { context: ctx }, env))
                .await
                .unwrap()
                .into_inner();
            // Errors are left out of ResolveAll: only successes can be compared.
            let flag = all.flags.get(&case.flag)?;
            let value = match flag.value.as_ref()? {
                pb::any_flag::Value::BoolValue(b) => json!(b),
                pb::any_flag::Value::StringValue(s) => json!(s),
                pb::any_flag::Value::DoubleValue(d) => json!(d),
                pb::any_flag::Value::ObjectValue(o) => struct_json(o),
            };
            return Some(success(
                value,
                flag.variant.clone(),
                &flag.reason,
                flag.metadata.clone(),
            ));
        }
    };
    Some(result.unwrap_or_else(|status| failure(&status, case)))
}

#[tokio::test]
async fn flagd_rpc_agrees_with_core_on_every_vector() {
    let mut tally = Tally::default();
    for file in load_all() {
        let (addr, stop) = serve(&file).await;
        let mut client = ServiceClient::connect(addr).await.unwrap();
        for case in &file.cases {
            // flagd's context is flat: an attribute named targetingKey is the targeting key
            // there, so these cases cannot be asked (tests/openfeature/flagd/CASES.md).
            if case.context.attributes.contains_key("targetingKey") {
                continue;
            }
            if let Some(outcome) = resolve(&mut client, &file.environment, case).await {
                tally.check(&file, case, &outcome);
            }
        }
        let _ = stop.send(());
    }
    tally.finish();
}
