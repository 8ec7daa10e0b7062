//! `flagwire.v1.MetricsService`.

use crate::auth::principal;
use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::{Ingested, Metrics, report};
use flagwire_proto::grpc::metrics_service_server::MetricsService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::time::SystemTime;
use tonic::{Request, Response, Status};

/// The MetricsService handlers.
pub struct MetricsApi {
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl MetricsApi {
    /// Handlers over `catalog` (for validation) and `metrics` (what they read and write),
    /// judging report windows against `clock`.
    pub fn new(catalog: Arc<Catalog>, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Self {
        Self {
            catalog,
            metrics,
            clock,
        }
    }

    /// Authorises, validates and ingests a report; whether it was merged.
    fn ingest(&self, r: Request<ReportRequest>) -> Result<bool, Status> {
        let env = principal(&r)?.environment_for(&r.get_ref().environment)?;
        let now = self.clock.now();
        let valid = report::validate(&self.catalog.read(), &env, r.into_inner(), now)?;
        Ok(self.metrics.ingest(&valid, now) == Ingested::Accepted)
    }
}

fn time(field: &str, ts: Option<prost_types::Timestamp>) -> Result<Option<SystemTime>> {
    ts.map(|ts| {
        SystemTime::try_from(ts).map_err(|_| Error::invalid(field, "not a valid timestamp"))
    })
    .transpose()
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn report(&self, r: Request<ReportRequest>) -> Result<Response<ReportResponse>, Status> {
        match self.ingest(r) {
            Ok(accepted) => Ok(Response::new(ReportResponse { accepted })),
            Err(status) => {
                self.metrics.rejected();
                tracing::debug!(error = %status.message(), "report rejected");
                Err(status)
            }
        }
    }

    async fn get_usage(
        &self,
        r: Request<GetUsageRequest>,
    ) -> Result<Response<GetUsageResponse>, Status> {
        let env = principal(&r)?.environment_for(&r.get_ref().environment)?;
        self.catalog.get_environment(&env)?;
        let r = r.into_inner();
        let start = time("startTime", r.start_time)?;
        let end = time("endTime", r.end_time)?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(Error::invalid("endTime", "before startTime").into());
        }
        let flag = (!r.flag_key.is_empty()).then_some(r.flag_key.as_str());
        let rows = self.metrics.usage().query(&env, flag, start, end);
        Ok(Response::new(GetUsageResponse { rows }))
    }

    async fn list_instances(
        &self,
        r: Request<ListInstancesRequest>,
    ) -> Result<Response<ListInstancesResponse>, Status> {
        let env = &r.get_ref().environment;
        let env = (!env.is_empty()).then_some(env.as_str());
        let instances = self.metrics.registry().list(env, self.clock.now());
        Ok(Response::new(ListInstancesResponse { instances }))
    }

    async fn count_applied_instances(
        &self,
        r: Request<CountAppliedInstancesRequest>,
    ) -> Result<Response<CountAppliedInstancesResponse>, Status> {
        let env = principal(&r)?.environment_for(&r.get_ref().environment)?;
        self.catalog.get_environment(&env)?;
        let count = self
            .metrics
            .registry()
            .count_applied(&env, r.get_ref().revision);
        Ok(Response::new(CountAppliedInstancesResponse {
            connected: count.connected,
            applied: count.applied,
            last_applied_time: count.last_applied.map(Into::into),
        }))
    }
}
