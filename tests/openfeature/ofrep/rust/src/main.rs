//! Drives the official Rust OFREP provider (`open-feature-ofrep` 0.1.2, `open-feature` 0.3)
//! for `../harness.py`: JSON requests on stdin, answers on stdout, one per line. Each request
//! goes through the SDK's typed `get_*_details` call its `type` names.

use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    OpenFeature, StructValue, Value,
};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, BufReader};

fn context(json: &Json) -> EvaluationContext {
    let mut ctx = EvaluationContext::default();
    for (k, v) in json.as_object().into_iter().flatten() {
        if k == "targetingKey" {
            ctx = ctx.with_targeting_key(v.as_str().unwrap_or_default());
            continue;
        }
        // The SDK's context holds no lists, objects or nulls: the harness never sends them.
        let field = match v {
            Json::Bool(b) => EvaluationContextFieldValue::Bool(*b),
            Json::Number(n) if n.is_i64() => EvaluationContextFieldValue::Int(n.as_i64().unwrap()),
            Json::Number(n) => EvaluationContextFieldValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => EvaluationContextFieldValue::String(s.clone()),
            other => panic!("the Rust SDK's context cannot hold {other}"),
        };
        ctx = ctx.with_custom_field(k.clone(), field);
    }
    ctx
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::String(s) => json!(s),
        Value::Array(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Struct(s) => struct_json(s),
    }
}

fn struct_json(s: &StructValue) -> Json {
    Json::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

fn code_name(code: &EvaluationErrorCode) -> &'static str {
    match code {
        EvaluationErrorCode::ParseError => "PARSE_ERROR",
        EvaluationErrorCode::TypeMismatch => "TYPE_MISMATCH",
        EvaluationErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        EvaluationErrorCode::InvalidContext => "INVALID_CONTEXT",
        EvaluationErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
        EvaluationErrorCode::ProviderNotReady => "PROVIDER_NOT_READY",
        EvaluationErrorCode::General(_) => "GENERAL",
    }
}

/// The answer for a result: the details, or the caller's default with the error's code.
fn answer(result: Result<(Json, Option<String>), EvaluationError>, default: &Json) -> Json {
    match result {
        Ok((value, variant)) => json!({
            "value": value, "variant": variant.unwrap_or_default(), "reason": null,
            "errorCode": null,
        }),
        Err(e) => json!({
            "value": default, "variant": "", "reason": "ERROR",
            "errorCode": code_name(&e.code),
        }),
    }
}

async fn evaluate(client: &open_feature::Client, request: &Json) -> Json {
    let flag = request["flag"].as_str().unwrap_or_default();
    let ctx = context(&request["context"]);
    let default = &request["default"];
    let result = match request["type"].as_str().unwrap_or_default() {
        "boolean" => client
            .get_bool_details(flag, Some(&ctx), None)
            .await
            .map(|d| (json!(d.value), d.variant)),
        "string" => client
            .get_string_details(flag, Some(&ctx), None)
            .await
            .map(|d| (json!(d.value), d.variant)),
        "integer" => client
            .get_int_details(flag, Some(&ctx), None)
            .await
            .map(|d| (json!(d.value), d.variant)),
        "float" => client
            .get_float_details(flag, Some(&ctx), None)
            .await
            .map(|d| (json!(d.value), d.variant)),
        _ => client
            .get_struct_details::<StructValue>(flag, Some(&ctx), None)
            .await
            .map(|d| (struct_json(&d.value), d.variant)),
    };
    answer(result, default)
}

#[tokio::main]
async fn main() {
    let url = std::env::var("OFREP_URL").expect("OFREP_URL");
    let token = std::env::var("OFREP_TOKEN").expect("OFREP_TOKEN");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: url,
        headers,
        ..Default::default()
    })
    .await
    .expect("provider");
    let client = {
        let mut api = OpenFeature::singleton_mut().await;
        api.set_provider(provider).await;
        api.create_client()
    };
    println!("{}", json!({"ready": true}));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.expect("stdin") {
        let request: Json = serde_json::from_str(&line).expect("request");
        let answer = match request["op"].as_str() {
            // The provider has no cache and emits no events: each call asks the server.
            Some("events") => json!({"changed": 0}),
            _ => evaluate(&client, &request).await,
        };
        println!("{answer}");
    }
}
