//! `flagd.sync.v1.FlagSyncService`: the environment's flags as flagd JSON ([`super::export`]),
//! for in-process providers. `SyncFlags` sends the whole document at once and again after every
//! revision; `FetchAllFlags` sends it once; `GetMetadata` (deprecated upstream, still called by
//! some providers) has nothing to add to the evaluation context.

use super::access::{environment, parse, selector};
use super::export::{Options, export};
use super::revisions::revisions;
use crate::auth::principal;
use crate::catalog::Catalog;
use flagwire_proto::flagd::sync::v1::{self as pb, flag_sync_service_server::FlagSyncService};
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The sync handlers.
pub struct Sync {
    catalog: Arc<Catalog>,
}

impl Sync {
    /// Handlers over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }
}

/// The flagd document of `env` as it is now.
pub fn document(catalog: &Catalog, env: &str, options: Options) -> Result<String, Status> {
    let exported = {
        let state = catalog.read();
        let revision = state
            .envs
            .get(env)
            .ok_or_else(|| Status::not_found(format!("environment {env:?} not found")))?
            .revision;
        let flags: Vec<_> = state.flags.values().cloned().collect();
        let segments: Vec<_> = state.segments.values().cloned().collect();
        export(env, revision, &flags, &segments, options)
    };
    for (key, why) in &exported.omitted {
        tracing::debug!(env, flag = key.as_str(), reason = %why, "flag left out of the flagd sync");
    }
    serde_json::to_string(&exported.document).map_err(|e| Status::internal(e.to_string()))
}

type SyncStream = Pin<Box<dyn Stream<Item = Result<pb::SyncFlagsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FlagSyncService for Sync {
    type SyncFlagsStream = SyncStream;

    async fn sync_flags(
        &self,
        r: Request<pb::SyncFlagsRequest>,
    ) -> Result<Response<SyncStream>, Status> {
        #[allow(deprecated)]
        let env = environment(&r, &r.get_ref().selector)?;
        #[allow(deprecated)]
        let options = Options::from(parse(selector(&r, &r.get_ref().selector)));
        let catalog = Arc::clone(&self.catalog);
        let stream =
            revisions(Arc::clone(&catalog), &env, &principal(&r)?.id)?.map(move |snapshot| {
                snapshot?;
                Ok(pb::SyncFlagsResponse {
                    flag_configuration: document(&catalog, &env, options)?,
                    sync_context: None,
                })
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn fetch_all_flags(
        &self,
        r: Request<pb::FetchAllFlagsRequest>,
    ) -> Result<Response<pb::FetchAllFlagsResponse>, Status> {
        #[allow(deprecated)]
        let env = environment(&r, &r.get_ref().selector)?;
        #[allow(deprecated)]
        let options = Options::from(parse(selector(&r, &r.get_ref().selector)));
        Ok(Response::new(pb::FetchAllFlagsResponse {
            flag_configuration: document(&self.catalog, &env, options)?,
        }))
    }

    #[allow(deprecated)]
    async fn get_metadata(
        &self,
        r: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::GetMetadataResponse>, Status> {
        environment(&r, "")?;
        Ok(Response::new(pb::GetMetadataResponse {
            metadata: Some(prost_types::Struct::default()),
        }))
    }
}
