//! Evaluation results in OFREP's shapes (`evaluationSuccess`, `evaluationFailure`,
//! `flagNotFound`, and the bodies of request-level errors), and our reasons and error codes
//! in OFREP's vocabulary.
//!
//! OFREP's reasons are `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DISABLED` and `UNKNOWN`.
//! Flagwire's `PREREQUISITE_FAILED` (the off variant served because a prerequisite was not
//! met) is sent as `DISABLED`, the nearest in meaning, with the exact reason in the metadata
//! as `flagwireReason`: official clients refuse reasons outside OpenFeature's list (the Python
//! provider turns one into a `GENERAL` error).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flagwire_core::Evaluation;
use flagwire_core::evaluation::error_code_name;
use flagwire_proto::v1::{ErrorCode, FlagValue, Reason, flag_value::Kind};
use serde_json::{Map, Value, json};

/// Metadata key holding Flagwire's own reason when OFREP's differs.
pub const FLAGWIRE_REASON: &str = "flagwireReason";

/// The OFREP reason for a successful evaluation, and Flagwire's when it had to be mapped.
pub fn reason(reason: Reason) -> (&'static str, Option<&'static str>) {
    match reason {
        Reason::Static => ("STATIC", None),
        Reason::TargetingMatch => ("TARGETING_MATCH", None),
        Reason::Split => ("SPLIT", None),
        Reason::Disabled => ("DISABLED", None),
        Reason::PrerequisiteFailed => ("DISABLED", Some("PREREQUISITE_FAILED")),
        Reason::Unspecified | Reason::Error => ("UNKNOWN", None),
    }
}

/// A flag value as plain JSON; `None` for a float that JSON cannot hold (NaN, infinities).
pub fn value(v: &FlagValue) -> Option<Value> {
    Some(match v.kind.as_ref()? {
        Kind::BoolValue(b) => Value::Bool(*b),
        Kind::StringValue(s) => Value::String(s.clone()),
        Kind::IntValue(i) => Value::from(*i),
        Kind::FloatValue(f) => Value::Number(serde_json::Number::from_f64(*f)?),
        Kind::ObjectValue(s) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| Some((k.clone(), struct_value(v)?)))
                .collect::<Option<Map<_, _>>>()?,
        ),
    })
}

fn struct_value(v: &prost_types::Value) -> Option<Value> {
    use prost_types::value::Kind as K;
    Some(match v.kind.as_ref()? {
        K::NullValue(_) => Value::Null,
        K::BoolValue(b) => Value::Bool(*b),
        K::NumberValue(n) => Value::Number(serde_json::Number::from_f64(*n)?),
        K::StringValue(s) => Value::String(s.clone()),
        K::ListValue(l) => Value::Array(l.values.iter().map(struct_value).collect::<Option<_>>()?),
        K::StructValue(s) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| Some((k.clone(), struct_value(v)?)))
                .collect::<Option<Map<_, _>>>()?,
        ),
    })
}

/// The flag's metadata: its version, and the cohort and rollout a split entry belongs to.
fn metadata(e: &Evaluation<'_>, flagwire_reason: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if e.flag_version > 0 {
        m.insert("flagVersion".into(), Value::from(e.flag_version));
    }
    if !e.cohort.is_empty() {
        m.insert("cohort".into(), Value::from(e.cohort));
    }
    if !e.rollout_id.is_empty() {
        m.insert("rolloutId".into(), Value::from(e.rollout_id));
    }
    if let Some(r) = flagwire_reason {
        m.insert(FLAGWIRE_REASON.into(), Value::from(r));
    }
    m
}

/// One flag's result: `Ok` with an `evaluationSuccess`, or `Err` with the error code and an
/// `evaluationFailure` / `flagNotFound` body.
pub fn result(key: &str, e: &Evaluation<'_>) -> Result<Value, (ErrorCode, Value)> {
    if e.reason != Reason::Error {
        let (reason, flagwire_reason) = reason(e.reason);
        if let Some(value) = e.value.and_then(value) {
            return Ok(json!({
                "key": key,
                "value": value,
                "reason": reason,
                "variant": e.variant,
                "metadata": metadata(e, flagwire_reason),
            }));
        }
        let details = "the value served cannot be written as JSON";
        return Err((ErrorCode::General, failure(key, "GENERAL", details, e)));
    }
    let code = error_code_name(e.error_code).unwrap_or("GENERAL");
    let details = format!("flag {key:?}: {}", e.error_message);
    Err((e.error_code, failure(key, code, &details, e)))
}

fn failure(key: &str, code: &str, details: &str, e: &Evaluation<'_>) -> Value {
    json!({
        "key": key,
        "errorCode": code,
        "errorDetails": details,
        "metadata": metadata(e, None),
    })
}

/// The response of the single-flag endpoint: 200, 404 for `FLAG_NOT_FOUND`, 400 for any other
/// evaluation error.
pub fn single(key: &str, e: &Evaluation<'_>) -> Response {
    match result(key, e) {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err((ErrorCode::FlagNotFound, body)) => (StatusCode::NOT_FOUND, Json(body)).into_response(),
        Err((_, body)) => (StatusCode::BAD_REQUEST, Json(body)).into_response(),
    }
}

/// A request-level error: `{"key"?, "errorCode"?, "errorDetails"}` with `status`.
pub fn error(status: StatusCode, key: Option<&str>, code: Option<&str>, details: &str) -> Response {
    let mut body = Map::new();
    if let Some(key) = key {
        body.insert("key".into(), Value::from(key));
    }
    if let Some(code) = code {
        body.insert("errorCode".into(), Value::from(code));
    }
    body.insert("errorDetails".into(), Value::from(details));
    (status, Json(Value::Object(body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_one_of_ofreps() {
        let ofrep = ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"];
        for r in [
            Reason::Unspecified,
            Reason::Static,
            Reason::TargetingMatch,
            Reason::Split,
            Reason::Disabled,
            Reason::PrerequisiteFailed,
        ] {
            assert!(ofrep.contains(&reason(r).0), "{r:?}");
        }
        assert_eq!(
            reason(Reason::PrerequisiteFailed),
            ("DISABLED", Some("PREREQUISITE_FAILED"))
        );
    }

    #[test]
    fn values_keep_their_json_kind() {
        let int = FlagValue {
            kind: Some(Kind::IntValue(42)),
        };
        assert_eq!(value(&int).unwrap().to_string(), "42");
        let float = FlagValue {
            kind: Some(Kind::FloatValue(2.0)),
        };
        assert_eq!(value(&float).unwrap().to_string(), "2.0");
        let nan = FlagValue {
            kind: Some(Kind::FloatValue(f64::NAN)),
        };
        assert!(value(&nan).is_none());
    }
}
