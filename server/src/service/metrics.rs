//! `flagwire.v1.MetricsService`.

use crate::auth::principal;
use crate::catalog::Catalog;
use crate::catalog::tokens::Principal;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::{Ingested, Metrics, report};
use flagwire_proto::grpc::metrics_service_server::MetricsService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::time::SystemTime;
use tonic::{Request, Response, Status};

/// Most reports one `ReportBatch` call may carry: at ~1.5 KB a report (20 series), 1,000 stay
/// well under the 4 MiB message limit, and one call holds the catalog's read lock (for
/// validation) for about a millisecond at most.
pub const MAX_BATCH: usize = 1_000;

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

    /// Authorises, validates and ingests `reports` (one unary `Report`, or a `ReportBatch`):
    /// every report is authorised and validated against one catalog snapshot before any is
    /// ingested, so a bad one changes nothing; then each is ingested in order, exactly as a
    /// unary call would. Answers per report whether it was merged. `batch` prefixes error
    /// paths with `reports[i].`.
    fn ingest(
        &self,
        principal: &Principal,
        reports: Vec<ReportRequest>,
        batch: bool,
    ) -> Result<Vec<bool>, Status> {
        let now = self.clock.now();
        let valid = {
            let state = self.catalog.read();
            let check = |r: ReportRequest| {
                let env = principal.environment_for(&r.environment)?;
                report::validate(&state, &env, r, now)
            };
            reports
                .into_iter()
                .enumerate()
                .map(|(i, r)| check(r).map_err(|e| if batch { within(i, e) } else { e }))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(valid
            .iter()
            .map(|v| self.metrics.ingest(v, now) == Ingested::Accepted)
            .collect())
    }

    /// Counts and logs a refused call of `reports` reports.
    fn refused(&self, reports: usize, status: Status) -> Status {
        self.metrics.rejected(reports as u64);
        tracing::debug!(error = %status.message(), reports, "report rejected");
        status
    }
}

/// `e`, raised by the batch's report `i`, naming that report.
fn within(i: usize, e: Error) -> Error {
    match e {
        Error::Invalid(f) => Error::invalid(format!("reports[{i}].{}", f.field), f.reason),
        Error::NotFound(what) => Error::NotFound(format!("{what} (reports[{i}])")),
        Error::PermissionDenied(why) => Error::PermissionDenied(format!("reports[{i}]: {why}")),
        other => other,
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
        let principal = principal(&r).map_err(|s| self.refused(1, s))?;
        let accepted = self
            .ingest(&principal, vec![r.into_inner()], false)
            .map_err(|s| self.refused(1, s))?;
        Ok(Response::new(ReportResponse {
            accepted: accepted[0],
        }))
    }

    async fn report_batch(
        &self,
        r: Request<ReportBatchRequest>,
    ) -> Result<Response<ReportBatchResponse>, Status> {
        let reports = r.get_ref().reports.len();
        let principal = principal(&r).map_err(|s| self.refused(reports, s))?;
        if reports > MAX_BATCH {
            let e = Error::invalid(
                "reports",
                format!("{reports} reports; at most {MAX_BATCH} per call (split the batch)"),
            );
            return Err(self.refused(reports, e.into()));
        }
        let results = self
            .ingest(&principal, r.into_inner().reports, true)
            .map_err(|s| self.refused(reports, s))?
            .into_iter()
            .map(|accepted| ReportResponse { accepted })
            .collect();
        Ok(Response::new(ReportBatchResponse { results }))
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
