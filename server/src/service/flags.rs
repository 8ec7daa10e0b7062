//! `flagwire.v1.FlagService`.

use super::watch_stream::WatchStream;
use crate::auth::principal;
use crate::catalog::Catalog;
use crate::metrics::{instances::Registry, report::instance_id};
use flagwire_proto::grpc::flag_service_server::FlagService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The FlagService handlers.
pub struct Flags {
    catalog: Arc<Catalog>,
    heartbeat: Duration,
    instances: Arc<Registry>,
}

impl Flags {
    /// Handlers over `catalog`; idle Watch streams get a heartbeat every `heartbeat`, and
    /// Watch calls that name an SDK instance register it in `instances` while they are open.
    pub fn new(catalog: Arc<Catalog>, heartbeat: Duration, instances: Arc<Registry>) -> Self {
        Self {
            catalog,
            heartbeat,
            instances,
        }
    }

    /// Opens a Watch stream for the caller (the one implementation behind both Watch paths).
    pub async fn open_watch(
        &self,
        r: Request<WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let principal = principal(&r)?;
        let r = r.get_ref();
        let env = principal.environment_for(&r.environment)?;
        let id = match r.instance_id.as_str() {
            "" => None,
            id => Some(instance_id("instanceId", id)?),
        };
        let catalog = Arc::clone(&self.catalog);
        let stream = WatchStream::open(
            catalog,
            &principal.id,
            &env,
            r.since_revision,
            self.heartbeat,
        )?;
        // Registered once the stream exists; the guard travels with it, so the instance shows
        // as disconnected as soon as the stream is dropped, however it ends.
        let stream = match id {
            None => stream,
            Some(id) => stream.holding(self.instances.connect(
                &env,
                &id,
                &r.sdk_name,
                &r.sdk_version,
                self.catalog.clock().now(),
            )),
        };
        Ok(Response::new(stream))
    }
}

#[tonic::async_trait]
impl FlagService for Flags {
    type WatchStream = WatchStream;

    /// Served by [`super::watch_route::FlagRoutes`] in the server; this path stays for
    /// embedders that register the generated `FlagServiceServer` directly.
    async fn watch(&self, r: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        self.open_watch(r).await
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
