//! OpenTelemetry trace export over OTLP/gRPC, on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Spans come from `tracing`: one per RPC (target `flagwire::rpc`, opened by the RPC layer) and
//! one per rollout decision the driver acts on (target `flagwire::rollout`). They are exported
//! whatever `RUST_LOG` says (it governs the log lines only), in batches on the exporter's own
//! thread; the standard `OTEL_*` variables tune it (`OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`, ...). With the variable unset no exporter
//! runs and the RPC layer opens no spans at all.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// The variable that turns export on (the OTLP collector's gRPC endpoint).
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

// Set once export is on; read by the RPC layer on every call, hence an atomic.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Flushes and stops the exporter when dropped (or by [`OtelGuard::shutdown`]), so the spans of
/// the last moments before shutdown are not lost.
pub struct OtelGuard {
    provider: Option<SdkTracerProvider>,
}

impl OtelGuard {
    /// Exports what is still buffered and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            ENABLED.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "OpenTelemetry exporter did not shut down cleanly");
            }
        }
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `tracing` layer exporting Flagwire's spans, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
/// (non-empty); `None` otherwise. Must be called inside the tokio runtime (the gRPC channel
/// starts there). Fails on an endpoint the exporter cannot use.
pub fn layer<S>() -> anyhow::Result<Option<(impl Layer<S>, OtelGuard)>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_default();
    if endpoint.trim().is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| anyhow::anyhow!("{ENDPOINT_VAR}={endpoint:?}: {e}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("flagwire");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("flagwire");
    // Only our own spans, independent of RUST_LOG: the RPC and rollout spans are what operators
    // trace; h2/hyper internals would drown them.
    let targets = Targets::new()
        .with_target("flagwire", LevelFilter::INFO)
        .with_target("flagwire_server", LevelFilter::INFO);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(targets);
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((
        layer,
        OtelGuard {
            provider: Some(provider),
        },
    )))
}
