//! `flagd.evaluation.v2.Service`: v1's calls with optional values and without `ResolveAll`
//! (PyPI `openfeature-provider-flagd` 0.6 calls this one). Errors are gRPC errors, as in v1, so
//! a success always carries a value and a variant.

use super::evaluation_v1::{Evaluator, object, typed};
use flagwire_proto::flagd::evaluation::v2::{self as pb, service_server::Service};
use flagwire_proto::v1::{ValueType, flag_value::Kind};
use futures::StreamExt;
use std::pin::Pin;
use tonic::{Request, Response, Status};

/// The v2 service.
pub struct EvaluationV2(pub Evaluator);

type EventStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::EventStreamResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Service for EvaluationV2 {
    async fn resolve_boolean(
        &self,
        r: Request<pb::ResolveBooleanRequest>,
    ) -> Result<Response<pb::ResolveBooleanResponse>, Status> {
        let (key, context) = (&r.get_ref().flag_key, r.get_ref().context.clone());
        let res = self.0.resolve(&r, key, context, ValueType::Boolean)?;
        Ok(Response::new(pb::ResolveBooleanResponse {
            value: Some(typed(&res, |k| match k {
                Kind::BoolValue(b) => Some(*b),
                _ => None,
            })?),
            reason: res.reason.to_owned(),
            variant: Some(res.variant),
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
            value: Some(typed(&res, |k| match k {
                Kind::StringValue(s) => Some(s.clone()),
                _ => None,
            })?),
            reason: res.reason.to_owned(),
            variant: Some(res.variant),
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
            value: Some(typed(&res, |k| match k {
                Kind::FloatValue(f) => Some(*f),
                _ => None,
            })?),
            reason: res.reason.to_owned(),
            variant: Some(res.variant),
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
            value: Some(typed(&res, |k| match k {
                Kind::IntValue(i) => Some(*i),
                _ => None,
            })?),
            reason: res.reason.to_owned(),
            variant: Some(res.variant),
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
            variant: Some(res.variant),
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
