//! Thin mode: ask the server to evaluate instead of holding a local copy. For callers that
//! evaluate rarely and must not keep a stream open (scripts, cron jobs, short-lived tasks).

use crate::context::Context;
use crate::details::EvaluationDetails;
use crate::error::Error;
use flagwire_proto::grpc::flag_service_client::FlagServiceClient;
use flagwire_proto::v1::{
    ErrorCode, EvaluateAllRequest, EvaluateRequest, EvaluationResult, Reason, flag_value::Kind,
};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

/// Evaluates on the server through `FlagService.Evaluate` / `EvaluateAll`. Never fails an
/// evaluation: a transport error returns the default with reason `ERROR` / `GENERAL`.
#[derive(Debug, Clone)]
pub struct RemoteEvaluator {
    client: FlagServiceClient<Channel>,
    token: String,
    environment: String,
}

fn json(result: &EvaluationResult) -> Option<serde_json::Value> {
    let value = result.value.as_ref()?;
    Some(match value.kind.as_ref()? {
        Kind::BoolValue(b) => (*b).into(),
        Kind::StringValue(s) => s.clone().into(),
        Kind::IntValue(i) => (*i).into(),
        Kind::FloatValue(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Kind::ObjectValue(o) => crate::client::struct_json(o),
    })
}

fn details(
    result: &EvaluationResult,
    default: serde_json::Value,
) -> EvaluationDetails<serde_json::Value> {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let code = ErrorCode::try_from(result.error_code).unwrap_or(ErrorCode::General);
    EvaluationDetails {
        value: json(result).unwrap_or(default),
        variant: non_empty(&result.variant),
        reason: Reason::try_from(result.reason).unwrap_or(Reason::Error),
        error_code: (code != ErrorCode::Unspecified).then_some(code),
        error_message: non_empty(&result.error_message),
        flag_version: result.flag_version,
        cohort: non_empty(&result.cohort),
        rollout_id: non_empty(&result.rollout_id),
    }
}

impl RemoteEvaluator {
    /// Connects lazily to `endpoint` with `token` (an sdk token, or another role plus
    /// [`RemoteEvaluator::environment`]).
    pub fn new(endpoint: &str, token: impl Into<String>) -> Result<Self, Error> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| Error::Config(format!("endpoint {endpoint:?}: {e}")))?
            .connect_lazy();
        Ok(Self {
            client: FlagServiceClient::new(channel),
            token: token.into(),
            environment: String::new(),
        })
    }

    /// The environment, for tokens not bound to one.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(v) = format!("Bearer {}", self.token).parse() {
            request.metadata_mut().insert("authorization", v);
        }
        request
    }

    /// One flag, untyped (JSON), with the facts behind it.
    pub async fn evaluate(
        &self,
        key: &str,
        ctx: &Context,
        default: serde_json::Value,
    ) -> EvaluationDetails<serde_json::Value> {
        let request = self.request(EvaluateRequest {
            environment: self.environment.clone(),
            flag_key: key.to_owned(),
            context: Some(ctx.inner.clone()),
            expected_type: 0,
        });
        match self.client.clone().evaluate(request).await {
            Ok(r) => details(&r.into_inner().result.unwrap_or_default(), default),
            Err(status) => EvaluationDetails {
                value: default,
                variant: None,
                reason: Reason::Error,
                error_code: Some(ErrorCode::General),
                error_message: Some(status.message().to_owned()),
                flag_version: 0,
                cohort: None,
                rollout_id: None,
            },
        }
    }

    /// Every flag for one context: (key, value, details) in key order; empty on a transport
    /// error (logged), like a client with no flags yet.
    pub async fn evaluate_all(
        &self,
        ctx: &Context,
    ) -> Vec<(String, EvaluationDetails<serde_json::Value>)> {
        let request = self.request(EvaluateAllRequest {
            environment: self.environment.clone(),
            context: Some(ctx.inner.clone()),
        });
        match self.client.clone().evaluate_all(request).await {
            Ok(r) => r
                .into_inner()
                .results
                .iter()
                .map(|r| (r.flag_key.clone(), details(r, serde_json::Value::Null)))
                .collect(),
            Err(status) => {
                tracing::warn!(%status, "flagwire: EvaluateAll failed");
                Vec::new()
            }
        }
    }
}
