//! What the server tells operators about itself: Prometheus metrics on the HTTP port's
//! `/metrics`, OpenTelemetry traces over OTLP, and the start-up summary of flag states.
//!
//! - [`rpc`]: the tower layer counting and timing every gRPC call (and opening its span).
//! - [`scrape`]: series read at scrape time from the catalog, store, hub, registry and usage.
//! - [`custom_metrics`]: the team's own metrics SDKs reported, per variant and cohort.
//! - [`families`]: writing those series sample by sample.
//! - [`otel`]: the OTLP exporter, on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`flag_states`]: one log line per environment at start-up.
//! - [`logging`]: the `tracing` subscriber (log lines, plus the OTLP layer when on).
//!
//! The exposition is OpenMetrics text (what prometheus-client writes; Prometheus asks for it
//! first). Counters end in `_total`; every series name starts with `flagwire_`. Help texts end
//! without a full stop: the encoder adds one.

pub mod custom_metrics;
pub mod families;
pub mod flag_states;
pub mod logging;
pub mod otel;
pub mod rpc;
pub mod scrape;

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use rpc::{RpcLayer, RpcMetrics};
use scrape::Scrape;
use std::sync::Arc;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics registry of one running server.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    rpc: Arc<RpcMetrics>,
}

impl Telemetry {
    /// The registry: the RPC series, build information and the scrape-time `scrape` series.
    pub fn new(scrape: Scrape) -> Self {
        let rpc = Arc::new(RpcMetrics::default());
        let mut registry = Registry::default();
        registry.register(
            "flagwire_build",
            "The running server's version",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "flagwire_grpc_requests",
            "gRPC calls finished, by method and status code (gRPC-web included)",
            rpc.requests.clone(),
        );
        registry.register(
            "flagwire_grpc_request_duration_seconds",
            "gRPC call durations from request to final status, by method and status code (a Watch stream's whole life)",
            rpc.duration.clone(),
        );
        registry.register(
            "flagwire_store_commit_duration_seconds",
            "Catalog writes' time in the store: taking the writer lock, catching up and the durable commit",
            scrape.catalog().commit_latency().clone(),
        );
        registry.register_collector(Box::new(scrape));
        Self { registry, rpc }
    }

    /// The layer that feeds the RPC series.
    pub fn rpc_layer(&self) -> RpcLayer {
        RpcLayer::new(Arc::clone(&self.rpc))
    }

    /// The exposition, as `/metrics` serves it.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Only a formatter error, which writing to a String never raises; say so anyway.
            tracing::error!(error = %e, "could not encode /metrics");
        }
        text
    }
}
