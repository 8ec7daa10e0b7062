//! One evaluation in flagd's terms: `flagwire-core` decides, this module only translates.
//!
//! Successes keep our reason names (`STATIC`, `TARGETING_MATCH`, `SPLIT`, `DISABLED`,
//! `PREREQUISITE_FAILED`: OpenFeature reasons are open strings) and carry `flagVersion`,
//! `cohort` and `rolloutId` in the response metadata. Errors become gRPC errors the way flagd
//! maps its own (`flagd/pkg/service/flag-evaluation/flag_evaluator.go`, `errFormat`), which is
//! what every RPC-mode provider decodes: `FLAG_NOT_FOUND` → `NOT_FOUND`, `TYPE_MISMATCH` →
//! `INVALID_ARGUMENT`, `PARSE_ERROR` → `DATA_LOSS`. Providers read every other status as
//! `GENERAL`. flagd sends `GENERAL` (and, unmapped, `INVALID_CONTEXT`) as `UNKNOWN`, but the
//! providers' gRPC retry policy retries `UNKNOWN` with a backoff of a second or more, so an
//! evaluation error would cost the caller seconds for an answer that cannot change: `GENERAL`,
//! `INVALID_CONTEXT` and `TARGETING_KEY_MISSING` (which flagd does not have) are
//! `FAILED_PRECONDITION` here, which no provider retries and all read as `GENERAL`. The message
//! names our error code.

use super::context::{from_struct, value};
use flagwire_core::Snapshot;
use flagwire_core::evaluation::{error_code_name, reason_name};
use flagwire_proto::v1::{ErrorCode, FlagValue, Reason, ValueType, flag_value};
use prost_types::{Struct, value::Kind};
use tonic::{Code, Status};

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The value served.
    pub value: flag_value::Kind,
    /// The variant served.
    pub variant: String,
    /// Our reason's OpenFeature name.
    pub reason: &'static str,
    /// `flagVersion`, and `cohort` / `rolloutId` when set.
    pub metadata: Struct,
}

/// Evaluates `key` for flagd's `context` with `engine`, expecting `expected` (none for
/// `ResolveAll`).
pub fn resolve(
    engine: &Snapshot,
    key: &str,
    context: Option<Struct>,
    expected: Option<ValueType>,
) -> Result<Resolved, Status> {
    let context =
        from_struct(context).map_err(|detail| error(ErrorCode::InvalidContext, detail))?;
    let result = engine.evaluate(key, &context, expected);
    if result.reason == Reason::Error {
        return Err(error(result.error_code, result.error_message));
    }
    let Some(FlagValue { kind: Some(kind) }) = result.value else {
        return Err(error(ErrorCode::General, "no value served"));
    };
    let mut metadata = Struct::default();
    let mut put = |name: &str, kind: Kind| {
        metadata.fields.insert(name.to_owned(), value(kind));
    };
    // A JSON number: flag versions stay far below 2^53.
    put("flagVersion", Kind::NumberValue(result.flag_version as f64));
    if !result.cohort.is_empty() {
        put("cohort", Kind::StringValue(result.cohort.to_owned()));
    }
    if !result.rollout_id.is_empty() {
        put("rolloutId", Kind::StringValue(result.rollout_id.to_owned()));
    }
    Ok(Resolved {
        value: kind.clone(),
        variant: result.variant.to_owned(),
        reason: reason_name(result.reason),
        metadata,
    })
}

/// The gRPC error flagd would send for `code`.
pub fn error(code: ErrorCode, detail: &str) -> Status {
    let name = error_code_name(code).unwrap_or("GENERAL");
    let (status, readable) = match code {
        ErrorCode::FlagNotFound => (Code::NotFound, "Flag not found"),
        ErrorCode::TypeMismatch => (Code::InvalidArgument, "Type mismatch error"),
        ErrorCode::ParseError => (Code::DataLoss, "Error parsing input or configuration"),
        _ => (Code::FailedPrecondition, name),
    };
    Status::new(status, format!("{readable}: {detail} ({name})"))
}

/// A flag value as a `google.protobuf.Value` (integers become JSON numbers).
pub fn to_value(kind: &flag_value::Kind) -> prost_types::Value {
    value(match kind {
        flag_value::Kind::BoolValue(b) => Kind::BoolValue(*b),
        flag_value::Kind::StringValue(s) => Kind::StringValue(s.clone()),
        flag_value::Kind::IntValue(i) => Kind::NumberValue(*i as f64),
        flag_value::Kind::FloatValue(f) => Kind::NumberValue(*f),
        flag_value::Kind::ObjectValue(o) => Kind::StructValue(o.clone()),
    })
}
