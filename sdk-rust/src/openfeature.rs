//! An OpenFeature provider (crate `open-feature` 0.3; cargo feature `openfeature`) over a
//! [`Client`]: flags are evaluated locally from the client's live copy.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flagwire::Error> {
//! use flagwire::openfeature::FlagwireProvider;
//! use open_feature::{EvaluationContext, OpenFeature};
//!
//! let client = flagwire::Client::builder("http://127.0.0.1:7070", "fw_…sdk token…").build()?;
//! let mut api = OpenFeature::singleton_mut().await;
//! api.set_provider(FlagwireProvider::new(client)).await; // waits for the flags (5 s at most)
//! let flags = api.create_client();
//! let ctx = EvaluationContext::default().with_targeting_key("user-42");
//! let on = flags.get_bool_value("new-checkout", Some(&ctx), None).await.unwrap_or(false);
//! # Ok(()) }
//! ```
//!
//! What maps to what:
//! - **Evaluation**: `resolve_*_value` are the client's `*_details` getters. A value comes back
//!   with its variant, its reason (`PREREQUISITE_FAILED`, which OpenFeature's enum lacks, as
//!   `Other`) and flag metadata `flagVersion`, and `cohort` / `rolloutId` when a rollout's or
//!   release's split served it; an error is `Err` with OpenFeature's code (`GENERAL` as
//!   `General("GENERAL")`) and our message. The caller's default is applied by OpenFeature's
//!   client (`unwrap_or`), since `open-feature` 0.3 does not pass it to providers.
//! - **Context**: the targeting key is ours; `Bool`, `Int`, `Float`, `String` attributes as
//!   they are; `DateTime` as its RFC 3339 text (the form the date operators compare); a list
//!   of strings as `EvaluationContextFieldValue::new_struct(Vec<String>)` (0.3 has no list
//!   type). Any other struct makes the evaluation fail with `INVALID_CONTEXT`.
//! - **State**: [`FeatureProvider::status`] is the client's state (CONNECTING → `NotReady`,
//!   READY, STALE, ERROR). `open-feature` 0.3 has no provider events and no `track`: read
//!   changes and states from [`FlagwireProvider::client`] (`changes()`, `states()`) and record
//!   the team's metrics with its `track`, `track_outcome` and `observe`.

use crate::{Client, Context, EvaluationDetails, State};
use async_trait::async_trait;
use flagwire_proto::v1::{ErrorCode, Reason};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue, Value,
};
use prost_types::value::Kind;
use std::time::Duration;

/// An OpenFeature provider evaluating from a Flagwire [`Client`] (a cheap clone of it: the
/// copy of the flags is shared).
#[derive(Clone)]
pub struct FlagwireProvider {
    client: Client,
    metadata: ProviderMetadata,
    ready_timeout: Duration,
}

impl FlagwireProvider {
    /// A provider over `client`; `initialize` waits up to 5 s for the first copy of the flags.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            metadata: ProviderMetadata::new("flagwire"),
            ready_timeout: Duration::from_secs(5),
        }
    }

    /// How long `initialize` waits for the flags (past it, `status()` says why not).
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The Flagwire client: its change stream, states, scopes and tracking calls.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The Flagwire context of an OpenFeature one.
pub fn to_context(ctx: &EvaluationContext) -> Context {
    let mut out = Context::new(ctx.targeting_key.clone().unwrap_or_default());
    for (name, value) in &ctx.custom_fields {
        let kind = match value {
            EvaluationContextFieldValue::Bool(b) => Kind::BoolValue(*b),
            EvaluationContextFieldValue::Int(i) => Kind::NumberValue(*i as f64),
            EvaluationContextFieldValue::Float(f) => Kind::NumberValue(*f),
            EvaluationContextFieldValue::String(s) => Kind::StringValue(s.clone()),
            EvaluationContextFieldValue::DateTime(t) => {
                let utc = t.to_offset(time::UtcOffset::UTC);
                match utc.format(&time::format_description::well_known::Rfc3339) {
                    Ok(text) => Kind::StringValue(text),
                    // Out of RFC 3339's range (before year 0 or after 9999): not a timestamp.
                    Err(_) => invalid(),
                }
            }
            EvaluationContextFieldValue::Struct(any) => match any.downcast_ref::<Vec<String>>() {
                Some(list) => Kind::ListValue(prost_types::ListValue {
                    values: list
                        .iter()
                        .map(|s| prost_types::Value {
                            kind: Some(Kind::StringValue(s.clone())),
                        })
                        .collect(),
                }),
                None => invalid(),
            },
        };
        out.inner
            .attributes
            .insert(name.clone(), prost_types::Value { kind: Some(kind) });
    }
    out
}

/// An attribute value the evaluation rejects with `INVALID_CONTEXT` (an object).
fn invalid() -> Kind {
    Kind::StructValue(prost_types::Struct::default())
}

fn reason(r: Reason) -> EvaluationReason {
    match r {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => EvaluationReason::Error,
        other => EvaluationReason::Other(flagwire_core::evaluation::reason_name(other).into()),
    }
}

fn error_code(code: ErrorCode) -> EvaluationErrorCode {
    match code {
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
        ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        ErrorCode::ProviderNotReady => EvaluationErrorCode::ProviderNotReady,
        ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        _ => EvaluationErrorCode::General("GENERAL".into()),
    }
}

/// Our details as OpenFeature's result, the value converted by `convert`.
fn resolve<T, U>(
    d: EvaluationDetails<T>,
    convert: impl FnOnce(T) -> U,
) -> EvaluationResult<ResolutionDetails<U>> {
    if let Some(code) = d.error_code {
        return Err(EvaluationError {
            code: error_code(code),
            message: d.error_message,
        });
    }
    let mut metadata = FlagMetadata::default().with_value("flagVersion", d.flag_version as i64);
    if let Some(cohort) = d.cohort.filter(|c| !c.is_empty()) {
        metadata.add_value("cohort", cohort);
    }
    if let Some(rollout_id) = d.rollout_id.filter(|r| !r.is_empty()) {
        metadata.add_value("rolloutId", rollout_id);
    }
    Ok(ResolutionDetails {
        value: convert(d.value),
        variant: d.variant,
        reason: Some(reason(d.reason)),
        flag_metadata: Some(metadata),
    })
}

/// OpenFeature's value of a JSON value (integers stay integers).
pub fn json_to_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(json_to_value).collect())
        }
        serde_json::Value::Object(fields) => Value::Struct(StructValue {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect(),
        }),
        // OpenFeature has no null: an absent value is the closest (a struct field is dropped).
        serde_json::Value::Null => Value::Struct(StructValue::default()),
    }
}

fn struct_of(v: serde_json::Value) -> StructValue {
    match v {
        serde_json::Value::Object(fields) => StructValue {
            fields: fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, json_to_value(v)))
                .collect(),
        },
        _ => StructValue::default(),
    }
}

#[async_trait]
impl FeatureProvider for FlagwireProvider {
    async fn initialize(&mut self, _context: &EvaluationContext) {
        // A refused token or a timeout leaves the state saying so; status() reports it and
        // evaluations fail with PROVIDER_NOT_READY until the flags arrive.
        let _ = self.client.wait_ready(self.ready_timeout).await;
    }

    fn status(&self) -> ProviderStatus {
        match self.client.state() {
            State::Connecting => ProviderStatus::NotReady,
            State::Ready => ProviderStatus::Ready,
            State::Stale => ProviderStatus::STALE,
            State::Error(_) => ProviderStatus::Error,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        resolve(
            self.client.bool_details(flag_key, &to_context(ctx), false),
            |v| v,
        )
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        resolve(
            self.client.int_details(flag_key, &to_context(ctx), 0),
            |v| v,
        )
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        resolve(
            self.client.float_details(flag_key, &to_context(ctx), 0.0),
            |v| v,
        )
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        resolve(
            self.client.string_details(flag_key, &to_context(ctx), ""),
            |v| v,
        )
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let d = self
            .client
            .json_details(flag_key, &to_context(ctx), serde_json::Value::Null);
        resolve(d, struct_of)
    }
}
