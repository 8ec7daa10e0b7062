//! Sending metrics windows (series, release cohort outcomes and the team's own metrics)
//! through `MetricsService.Report` every flush interval and on close.

use crate::client::Shared;
use crate::sync::{self, SDK_NAME};
use flagwire_proto::grpc::metrics_service_client::MetricsServiceClient;
use flagwire_proto::v1::ReportRequest;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tonic::transport::Channel;

/// A report of this instance with its next sequence number, carrying nothing but the applied
/// revision: what an acknowledgement sends, and what a metrics window fills in.
pub(crate) fn report_base(shared: &Shared, applied_revision: u64) -> ReportRequest {
    ReportRequest {
        instance_id: shared.instance_id.to_string(),
        sequence: shared.sequence.fetch_add(1, Ordering::Relaxed) + 1,
        sdk_name: SDK_NAME.into(),
        sdk_version: env!("CARGO_PKG_VERSION").into(),
        environment: shared.options.environment.clone(),
        applied_revision,
        ..Default::default()
    }
}

/// Sends one window; on failure merges it back for the next flush. Returns whether it was
/// delivered (or there was nothing to send).
pub(crate) async fn flush(shared: &Shared, channel: &Channel) -> bool {
    let Some(recorder) = &shared.recorder else {
        return true;
    };
    let taken = recorder.take();
    if taken.is_empty() {
        return true;
    }
    let now = SystemTime::now();
    let started = *shared.window_start.lock().expect("poisoned");
    let applied = shared.snapshot.load().as_ref().map_or(0, |s| s.revision());
    let report = ReportRequest {
        window_start: Some(started.into()),
        window_end: Some(now.into()),
        series: taken.series.clone(),
        cohort_outcomes: taken.cohort_outcomes.clone(),
        metrics: taken.metrics.clone(),
        dropped_series: taken.dropped,
        ..report_base(shared, applied)
    };
    let request = sync::request(shared, report);
    match MetricsServiceClient::new(channel.clone())
        .report(request)
        .await
    {
        Ok(_) => {
            *shared.window_start.lock().expect("poisoned") = now;
            true
        }
        // The server refused this window's content (e.g. a flag deleted since it was read):
        // resending it would be refused forever, so it is dropped, not merged back.
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            tracing::warn!(%status, "flagwire: metrics window refused by the server; dropped");
            false
        }
        Err(status) => {
            tracing::debug!(%status, "flagwire: metrics flush failed; kept for the next one");
            recorder.merge_back(taken);
            false
        }
    }
}

/// Flushes every interval until the client closes, through the current endpoint's channel.
pub(crate) async fn flush_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut ticks = tokio::time::interval(shared.options.metrics_flush_interval);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if let Some(channel) = shared.reports_channel() {
            flush(&shared, &channel).await;
        }
    }
}
