//! `flagwire.v1.AdminService`.

use super::{meta, page_size, required};
use crate::bundle::import::{Options, import};
use crate::catalog::{Catalog, audit::AuditFilter, flags::FlagFilter};
use flagwire_proto::grpc::admin_service_server::AdminService;
use flagwire_proto::v1::*;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The AdminService handlers.
pub struct Admin {
    catalog: Arc<Catalog>,
}

impl Admin {
    /// Handlers over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(value: T) -> Reply<T> {
    Ok(Response::new(value))
}

fn page_after(token: &str, field: &str) -> Result<u64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    token.parse().map_err(|_| {
        Status::invalid_argument(format!("invalid argument: {field}: not a page token"))
    })
}

/// The stream `Backup` answers with.
pub type BackupStream =
    Pin<Box<dyn futures::Stream<Item = Result<BackupResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AdminService for Admin {
    type BackupStream = BackupStream;

    async fn create_environment(
        &self,
        r: Request<CreateEnvironmentRequest>,
    ) -> Reply<CreateEnvironmentResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let env = required(r.into_inner().environment, "environment")?;
        let environment = Some(self.catalog.create_environment(&m, env).await?);
        ok(CreateEnvironmentResponse { environment })
    }

    async fn get_environment(
        &self,
        r: Request<GetEnvironmentRequest>,
    ) -> Reply<GetEnvironmentResponse> {
        let environment = Some(self.catalog.get_environment(&r.get_ref().key)?);
        ok(GetEnvironmentResponse { environment })
    }

    async fn list_environments(
        &self,
        _: Request<ListEnvironmentsRequest>,
    ) -> Reply<ListEnvironmentsResponse> {
        ok(ListEnvironmentsResponse {
            environments: self.catalog.list_environments(),
        })
    }

    async fn delete_environment(
        &self,
        r: Request<DeleteEnvironmentRequest>,
    ) -> Reply<DeleteEnvironmentResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        self.catalog
            .delete_environment(&m, &r.get_ref().key)
            .await?;
        ok(DeleteEnvironmentResponse {})
    }

    async fn create_flag(&self, r: Request<CreateFlagRequest>) -> Reply<CreateFlagResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let flag = required(r.into_inner().flag, "flag")?;
        ok(CreateFlagResponse {
            flag: Some(self.catalog.create_flag(&m, flag).await?),
        })
    }

    async fn get_flag(&self, r: Request<GetFlagRequest>) -> Reply<GetFlagResponse> {
        ok(GetFlagResponse {
            flag: Some(self.catalog.get_flag(&r.get_ref().key)?),
        })
    }

    async fn list_flags(&self, r: Request<ListFlagsRequest>) -> Reply<ListFlagsResponse> {
        let r = r.into_inner();
        let filter = FlagFilter {
            tags: r.tags,
            key_prefix: r.key_prefix,
            include_archived: r.include_archived,
            after: r.page_token,
            limit: page_size(r.page_size),
        };
        let (flags, next_page_token) = self.catalog.list_flags(&filter);
        ok(ListFlagsResponse {
            flags,
            next_page_token,
        })
    }

    async fn update_flag(&self, r: Request<UpdateFlagRequest>) -> Reply<UpdateFlagResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let flag = required(r.flag, "flag")?;
        ok(UpdateFlagResponse {
            flag: Some(
                self.catalog
                    .update_flag(&m, flag, r.expected_version, r.force)
                    .await?,
            ),
        })
    }

    async fn set_flag_enabled(
        &self,
        r: Request<SetFlagEnabledRequest>,
    ) -> Reply<SetFlagEnabledResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let flag = self
            .catalog
            .set_flag_enabled(
                &m,
                &r.key,
                &r.environment,
                r.enabled,
                r.expected_version,
                r.force,
            )
            .await?;
        ok(SetFlagEnabledResponse { flag: Some(flag) })
    }

    async fn archive_flag(&self, r: Request<ArchiveFlagRequest>) -> Reply<ArchiveFlagResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        ok(ArchiveFlagResponse {
            flag: Some(
                self.catalog
                    .archive_flag(&m, &r.key, r.archived, r.force)
                    .await?,
            ),
        })
    }

    async fn delete_flag(&self, r: Request<DeleteFlagRequest>) -> Reply<DeleteFlagResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        self.catalog.delete_flag(&m, &r.get_ref().key).await?;
        ok(DeleteFlagResponse {})
    }

    async fn list_flag_versions(
        &self,
        r: Request<ListFlagVersionsRequest>,
    ) -> Reply<ListFlagVersionsResponse> {
        ok(ListFlagVersionsResponse {
            versions: self.catalog.flag_versions(&r.get_ref().key)?,
        })
    }

    async fn revert_flag(&self, r: Request<RevertFlagRequest>) -> Reply<RevertFlagResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let flag = self
            .catalog
            .revert_flag(&m, &r.key, r.version, r.expected_version, r.force)
            .await?;
        ok(RevertFlagResponse { flag: Some(flag) })
    }

    async fn create_segment(
        &self,
        r: Request<CreateSegmentRequest>,
    ) -> Reply<CreateSegmentResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let segment = required(r.into_inner().segment, "segment")?;
        ok(CreateSegmentResponse {
            segment: Some(self.catalog.create_segment(&m, segment).await?),
        })
    }

    async fn get_segment(&self, r: Request<GetSegmentRequest>) -> Reply<GetSegmentResponse> {
        let r = r.get_ref();
        ok(GetSegmentResponse {
            segment: Some(self.catalog.get_segment(&r.environment, &r.key)?),
        })
    }

    async fn list_segments(&self, r: Request<ListSegmentsRequest>) -> Reply<ListSegmentsResponse> {
        ok(ListSegmentsResponse {
            segments: self.catalog.list_segments(&r.get_ref().environment)?,
        })
    }

    async fn update_segment(
        &self,
        r: Request<UpdateSegmentRequest>,
    ) -> Reply<UpdateSegmentResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let segment = required(r.segment, "segment")?;
        ok(UpdateSegmentResponse {
            segment: Some(
                self.catalog
                    .update_segment(&m, segment, r.expected_version)
                    .await?,
            ),
        })
    }

    async fn delete_segment(
        &self,
        r: Request<DeleteSegmentRequest>,
    ) -> Reply<DeleteSegmentResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.get_ref();
        self.catalog
            .delete_segment(&m, &r.environment, &r.key)
            .await?;
        ok(DeleteSegmentResponse {})
    }

    async fn create_api_token(
        &self,
        r: Request<CreateApiTokenRequest>,
    ) -> Reply<CreateApiTokenResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let role = Role::try_from(r.role).unwrap_or(Role::Unspecified);
        let (token, secret) = self
            .catalog
            .create_token(&m, &r.name, role, &r.environment)
            .await?;
        ok(CreateApiTokenResponse {
            token: Some(token),
            secret,
        })
    }

    async fn list_api_tokens(
        &self,
        r: Request<ListApiTokensRequest>,
    ) -> Reply<ListApiTokensResponse> {
        ok(ListApiTokensResponse {
            tokens: self.catalog.list_tokens(r.get_ref().include_revoked),
        })
    }

    async fn revoke_api_token(
        &self,
        r: Request<RevokeApiTokenRequest>,
    ) -> Reply<RevokeApiTokenResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        ok(RevokeApiTokenResponse {
            token: Some(self.catalog.revoke_token(&m, &r.get_ref().id).await?),
        })
    }

    async fn list_audit_events(
        &self,
        r: Request<ListAuditEventsRequest>,
    ) -> Reply<ListAuditEventsResponse> {
        let r = r.into_inner();
        let filter = AuditFilter {
            flag_key: r.flag_key,
            actor: r.actor,
            start: r.start_time,
            end: r.end_time,
            before_id: page_after(&r.page_token, "pageToken")?,
            limit: page_size(r.page_size),
        };
        let (events, next_page_token) = self.catalog.list_audit(&filter)?;
        ok(ListAuditEventsResponse {
            events,
            next_page_token,
        })
    }

    async fn import_bundle(&self, r: Request<ImportBundleRequest>) -> Reply<ImportBundleResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let bundle = required(r.bundle, "bundle")?;
        let options = Options {
            dry_run: r.dry_run,
            prune: r.prune,
            force: r.force,
        };
        let outcome = import(&self.catalog, &m, &bundle, options).await?;
        ok(ImportBundleResponse {
            changes: outcome.changes,
            unchanged: outcome.unchanged,
            applied: outcome.applied,
            revisions: outcome.revisions.into_iter().collect(),
        })
    }

    async fn backup(&self, r: Request<BackupRequest>) -> Reply<BackupStream> {
        let actor = crate::auth::principal(&r)?.name;
        let batch = match r.get_ref().batch_size {
            0 => 512,
            n => n.min(8192) as usize,
        };
        let snapshot = self.catalog.store_snapshot().await?;
        tracing::info!(actor = %actor, entries = snapshot.entries.len(), "backup");
        let messages = crate::backup::responses(snapshot, batch).map(Ok);
        ok(Box::pin(futures::stream::iter(messages)))
    }

    async fn define_metric(&self, r: Request<DefineMetricRequest>) -> Reply<DefineMetricResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let metric = required(r.metric, "metric")?;
        let metric = self
            .catalog
            .define_metric(&m, metric, r.expected_version)
            .await?;
        ok(DefineMetricResponse {
            metric: Some(metric),
        })
    }

    async fn list_metrics(&self, r: Request<ListMetricsRequest>) -> Reply<ListMetricsResponse> {
        ok(ListMetricsResponse {
            metrics: self.catalog.list_metrics(&r.get_ref().environment)?,
        })
    }

    async fn delete_metric(&self, r: Request<DeleteMetricRequest>) -> Reply<DeleteMetricResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.get_ref();
        self.catalog
            .delete_metric(&m, &r.environment, &r.name)
            .await?;
        ok(DeleteMetricResponse {})
    }
}
