//! Every vector case OFREP can carry, through `POST /ofrep/v1/evaluate/flags/{key}`, agrees
//! with `flagwire-core`: each case file is loaded into a server over its store by
//! `flagwire_server::vector_case` (some vector flags are deliberately invalid) and each case's
//! context is sent in OFREP's flat form. Left out, as tests/openfeature/ofrep/CASES.md says:
//! `TYPE_MISMATCH` cases (OFREP requests carry no type; providers check it) and contexts with
//! an attribute named `targetingKey` (OFREP's context has one `targetingKey`).

use super::*;
use prost_types::value::Kind;

use crate::evaluate_vectors::vectors::*;

/// The sdk token of every server `serve` starts.
const SDK: &str = "fw_ofrep_vectors_sdk";

async fn serve(file: &VectorFile) -> (Ofrep, String) {
    let store = Arc::new(MemoryStore::new());
    let json = std::fs::read_to_string(&file.path).unwrap();
    let batch = flagwire_server::vector_case::batch(&json, ADMIN, SDK).unwrap();
    store.commit(batch).unwrap();
    let server = Ofrep::on(store, OfrepOptions::per_second(0)).await;
    (server, SDK.into())
}

fn json(v: &prost_types::Value) -> Json {
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
        }
        Some(Kind::StringValue(s)) => Json::from(s.as_str()),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(json).collect()),
        Some(Kind::StructValue(s)) => {
            Json::Object(s.fields.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

/// The case's context in OFREP's flat form, or `None` when it cannot be written so.
fn flat_context(ctx: &EvaluationContext) -> Option<Json> {
    if ctx.attributes.contains_key("targetingKey") {
        return None;
    }
    let mut map = serde_json::Map::new();
    if !ctx.targeting_key.is_empty() {
        map.insert(
            "targetingKey".into(),
            Json::from(ctx.targeting_key.as_str()),
        );
    }
    for (k, v) in &ctx.attributes {
        map.insert(k.clone(), json(v));
    }
    Some(Json::Object(map))
}

fn reason(name: &str) -> Reason {
    Reason::from_str_name(&format!("REASON_{name}")).unwrap_or_else(|| panic!("reason {name}"))
}

fn error_code(name: &str) -> ErrorCode {
    ErrorCode::from_str_name(&format!("ERROR_CODE_{name}")).unwrap_or_else(|| panic!("code {name}"))
}

/// A response in the vectors' terms: OFREP's mapped reason undone through `flagwireReason`.
fn outcome(status: u16, body: &Json) -> Outcome {
    let meta = &body["metadata"];
    let text = |v: &Json| v.as_str().unwrap_or_default().to_owned();
    if let Some(code) = body["errorCode"].as_str() {
        let expected_status = if code == "FLAG_NOT_FOUND" { 404 } else { 400 };
        assert_eq!(status, expected_status, "{body}");
        return Outcome {
            value: None,
            variant: String::new(),
            reason: Reason::Error,
            error_code: error_code(code),
            cohort: String::new(),
            rollout_id: String::new(),
            flag_version: meta["flagVersion"].as_u64().unwrap_or_default(),
        };
    }
    assert_eq!(status, 200, "{body}");
    let name = meta["flagwireReason"]
        .as_str()
        .or(body["reason"].as_str())
        .unwrap();
    Outcome {
        value: Some(body["value"].clone()),
        variant: text(&body["variant"]),
        reason: reason(name),
        error_code: ErrorCode::Unspecified,
        cohort: text(&meta["cohort"]),
        rollout_id: text(&meta["rolloutId"]),
        flag_version: meta["flagVersion"].as_u64().unwrap_or_default(),
    }
}

#[tokio::test]
async fn single_flag_evaluation_agrees_with_core_on_every_vector_ofrep_can_carry() {
    let mut tally = Tally::default();
    let mut left_out = 0;
    for file in load_all() {
        let (server, sdk) = serve(&file).await;
        for case in &file.cases {
            let context = flat_context(&case.context);
            let type_mismatch = case.expected["errorCode"] == "TYPE_MISMATCH";
            let Some(context) = context.filter(|_| !type_mismatch) else {
                left_out += 1;
                continue;
            };
            let body = serde_json::json!({ "context": context }).to_string();
            let path = format!("/ofrep/v1/evaluate/flags/{}", case.flag);
            let r = post(&server.http, &path, &sdk, &body).await;
            tally.check(&file, case, &outcome(r.status, &r.json()));
        }
    }
    let passed = tally.finish();
    assert!(left_out < 40, "{left_out} cases left out, {passed} passed");
}
