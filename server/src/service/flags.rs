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
        _: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        Err(Status::unimplemented(
            "Evaluate arrives with the evaluation engine",
        ))
    }

    async fn evaluate_all(
        &self,
        _: Request<EvaluateAllRequest>,
    ) -> Result<Response<EvaluateAllResponse>, Status> {
        Err(Status::unimplemented(
            "EvaluateAll arrives with the evaluation engine",
        ))
    }
}
