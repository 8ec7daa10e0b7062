//! The process's `tracing` subscriber: log lines on stderr (text or JSON, filtered by
//! `RUST_LOG`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, span export over OTLP.

use super::otel::{self, OtelGuard};
use crate::config::LogFormat;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; keep the returned guard until shutdown (dropping it flushes
/// the spans still buffered). Call inside the tokio runtime.
pub fn init(format: LogFormat) -> anyhow::Result<Option<OtelGuard>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only the lines scripts parse (address, first token).
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let (otel, guard) = match otel::layer()? {
        Some((layer, guard)) => (Some(layer), Some(guard)),
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .init();
    match &guard {
        Some(_) => tracing::info!(
            endpoint = %std::env::var(otel::ENDPOINT_VAR).unwrap_or_default(),
            "OpenTelemetry on: exporting spans over OTLP/gRPC"
        ),
        None => tracing::info!("OpenTelemetry off ({} not set)", otel::ENDPOINT_VAR),
    }
    Ok(guard)
}
