//! `flagwire.v1.FlagService`.

use super::watch_stream::WatchStream;
use crate::auth::principal;
use crate::catalog::Catalog;
use flagwire_proto::grpc::flag_service_server::FlagService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The FlagService handlers.
pub struct Flags {
    catalog: Arc<Catalog>,
    heartbeat: Duration,
}

impl Flags {
    /// Handlers over `catalog`; idle Watch streams get a heartbeat every `heartbeat`.
    pub fn new(catalog: Arc<Catalog>, heartbeat: Duration) -> Self {
        Self { catalog, heartbeat }
    }
}

#[tonic::async_trait]
impl FlagService for Flags {
    type WatchStream = WatchStream;

    async fn watch(&self, r: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let principal = principal(&r)?;
        let env = principal.environment_for(&r.get_ref().environment)?;
        let since = r.get_ref().since_revision;
        let catalog = Arc::clone(&self.catalog);
        let stream = WatchStream::open(catalog, &principal.id, &env, since, self.heartbeat)?;
        Ok(Response::new(stream))
    }

    async fn evaluate(
        &self,
        r: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let env = principal(&r)?.environment_for(&r.get_ref().environment)?;
        let r = r.into_inner();
        let expected = match ValueType::try_from(r.expected_type) {
            Ok(ValueType::Unspecified) => None,
            Ok(t) => Some(t),
            Err(_) => {
                return Err(Status::invalid_argument(
                    "invalid argument: expectedType: unknown type",
                ));
            }
        };
        let engine = self.catalog.engine(&env)?;
        let context = r.context.unwrap_or_default();
        let result = engine
            .evaluate(&r.flag_key, &context, expected)
            .to_proto(&r.flag_key);
        Ok(Response::new(EvaluateResponse {
            result: Some(result),
        }))
    }

    async fn evaluate_all(
        &self,
        r: Request<EvaluateAllRequest>,
    ) -> Result<Response<EvaluateAllResponse>, Status> {
        let env = principal(&r)?.environment_for(&r.get_ref().environment)?;
        let context = r.into_inner().context.unwrap_or_default();
        let engine = self.catalog.engine(&env)?;
        let results = engine
            .flag_keys()
            .into_iter()
            .map(|key| engine.evaluate(key, &context, None).to_proto(key))
            .collect();
        Ok(Response::new(EvaluateAllResponse {
            results,
            revision: engine.revision(),
        }))
    }
}
