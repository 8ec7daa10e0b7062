//! `flagd.evaluation.v1.Service`, the API of flagd's RPC-mode providers.

use super::access::environment;
use super::events::{Events, events};
use super::resolve::{Resolved, error, resolve, to_value};
use crate::auth::principal;
use crate::catalog::Catalog;
use flagwire_proto::flagd::evaluation::v1::{self as pb, any_flag, service_server::Service};
use flagwire_proto::v1::{ErrorCode, ValueType, flag_value::Kind};
use futures::StreamExt;
use prost_types::{Struct, value};
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Evaluation shared by v1 and v2: the environment from the request, the catalog's snapshot.
#[derive(Clone)]
pub struct Evaluator {
    catalog: Arc<Catalog>,
}

impl Evaluator {
    /// Evaluates over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    /// Evaluates `key` for the environment of `request`.
    pub fn resolve<T>(
        &self,
        request: &Request<T>,
        key: &str,
        context: Option<Struct>,
        expected: ValueType,
    ) -> Result<Resolved, Status> {
        let engine = self.catalog.engine(&environment(request, "")?)?;
        resolve(&engine, key, context, Some(expected))
    }

    /// The event stream of the environment of `request`.
    pub fn events<T>(&self, request: &Request<T>) -> Result<Events, Status> {
        let env = environment(request, "")?;
        events(Arc::clone(&self.catalog), &env, &principal(request)?.id)
    }

    /// Every flag of the environment of `request` evaluated without an expected type; flags
    /// that evaluate to an error are left out, as flagd does.
    pub fn resolve_all<T>(
        &self,
        request: &Request<T>,
        context: Option<Struct>,
    ) -> Result<(Vec<(String, Resolved)>, u64), Status> {
        let engine = self.catalog.engine(&environment(request, "")?)?;
        let resolved = engine
            .flag_keys()
            .into_iter()
            .filter_map(|key| {
                resolve(&engine, key, context.clone(), None)
                    .ok()
                    .map(|r| (key.to_owned(), r))
            })
            .collect();
        Ok((resolved, engine.revision()))
    }
}

/// The value of a typed resolve; the engine checked the type, so another kind is a bug.
pub fn typed<T>(resolved: &Resolved, pick: impl FnOnce(&Kind) -> Option<T>) -> Result<T, Status> {
    pick(&resolved.value).ok_or_else(|| error(ErrorCode::General, "value of another type"))
}

/// The object value as a `Struct`.
pub fn object(kind: &Kind) -> Option<Struct> {
    match kind {
        Kind::ObjectValue(o) => Some(o.clone()),
        _ => None,
    }
}

/// The v1 service.
pub struct EvaluationV1(pub Evaluator);

type EventStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::EventStreamResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Service for EvaluationV1 {
    async fn resolve_all(
        &self,
        r: Request<pb::ResolveAllRequest>,
    ) -> Result<Response<pb::ResolveAllResponse>, Status> {
        let context = r.get_ref().context.clone();
        let (resolved, revision) = self.0.resolve_all(&r, context)?;
        let flags = resolved
            .into_iter()
            .map(|(key, r)| {
                let value = match to_value(&r.value).kind {
                    Some(value::Kind::BoolValue(b)) => any_flag::Value::BoolValue(b),
                    Some(value::Kind::StringValue(s)) => any_flag::Value::StringValue(s),
                    Some(value::Kind::StructValue(s)) => any_flag::Value::ObjectValue(s),
                    Some(value::Kind::NumberValue(n)) => any_flag::Value::DoubleValue(n),
                    _ => return None,
                };
                let flag = pb::AnyFlag {
                    reason: r.reason.to_owned(),
                    variant: r.variant,
                    value: Some(value),
                    metadata: Some(r.metadata),
                };
                Some((key, flag))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| error(ErrorCode::General, "unexpected value"))?;
        let mut metadata = Struct::default();
        metadata.fields.insert(
            "revision".into(),
            super::context::value(value::Kind::StringValue(revision.to_string())),
        );
        Ok(Response::new(pb::ResolveAllResponse {
            flags,
            metadata: Some(metadata),
        }))
    }

    async fn resolve_boolean(
        &self,
        r: Request<pb::ResolveBooleanRequest>,
    ) -> Result<Response<pb::ResolveBooleanResponse>, Status> {
        let (key, context) = (&r.get_ref().flag_key, r.get_ref().context.clone());
        let res = self.0.resolve(&r, key, context, ValueType::Boolean)?;
        Ok(Response::new(pb::ResolveBooleanResponse {
            value: typed(&res, |k| match k {
                Kind::BoolValue(b) => Some(*b),
                _ => None,
            })?,
            reason: res.reason.to_owned(),
            variant: res.variant,
            metadata: Some(res.metadata),
        }))
    }

    async fn resolve_string(
        &self,
        r: Request<pb::ResolveStringRequest>,
    ) -> Result<Response<pb::ResolveStringResponse>, Status> {
        let (key, context) = (&r.get_ref().flag_key, r.get_ref().context.clone());
        let res = self.0.resolve(&r, key, context, ValueType::String)?;
        Ok(Response::new(pb::ResolveStringResponse {
            value: typed(&res, |k| match k {
                Kind::StringValue(s) => Some(s.clone()),
                _ => None,
            })?,
            reason: res.reason.to_owned(),
            variant: res.variant,
            metadata: Some(res.metadata),
        }))
    }

    async fn resolve_float(
        &self,
        r: Request<pb::ResolveFloatRequest>,
    ) -> Result<Response<pb::ResolveFloatResponse>, Status> {
        let (key, context) = (&r.get_ref().flag_key, r.get_ref().context.clone());
        let res = self.0.resolve(&r, key, context, ValueType::Float)?;
        Ok(Response::new(pb::ResolveFloatResponse {
            value: typed(&res, |k| match k {
                Kind::FloatValue(f) => Some(*f),
                _ => None,
            })?,
            reason: res.reason.to_owned(),
            variant: res.variant,
            metadata: Some(res.metadata),
        }))
    }

    async fn resolve_int(
        &self,
        r: Request<pb::ResolveIntRequest>,
    ) -> Result<Response<pb::ResolveIntResponse>, Status> {
        let (key, context) = (&r.get_ref().flag_key, r.get_ref().context.clone());
        let res = self.0.resolve(&r, key, context, ValueType::Integer)?;
        Ok(Response::new(pb::ResolveIntResponse {
            value: typed(&res, |k| match k {
                Kind::IntValue(i) => Some(*i),
                _ => None,
            })?,
            reason: res.reason.to_owned(),
            variant: res.variant,
            metadata: Some(res.metadata),
        }))
    }

    async fn resolve_object(
        &self,
        r: Request<pb::ResolveObjectRequest>,
    ) -> Result<Response<pb::ResolveObjectResponse>, Status> {
        let (key, context) = (&r.get_ref().flag_key, r.get_ref().context.clone());
        let res = self.0.resolve(&r, key, context, ValueType::Object)?;
        Ok(Response::new(pb::ResolveObjectResponse {
            value: Some(typed(&res, object)?),
            reason: res.reason.to_owned(),
            variant: res.variant,
            metadata: Some(res.metadata),
        }))
    }

    type EventStreamStream = EventStream;

    async fn event_stream(
        &self,
        r: Request<pb::EventStreamRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let events = self.0.events(&r)?.map(|event| {
            event.map(|(kind, data)| pb::EventStreamResponse {
                r#type: kind.to_owned(),
                data,
            })
        });
        Ok(Response::new(Box::pin(events)))
    }
}
