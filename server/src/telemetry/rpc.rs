//! The tower layer that counts and times every gRPC call by method and status code, and opens
//! the call's tracing span (exported over OTLP when OpenTelemetry is on).
//!
//! It sits inside the gRPC-web layer, so gRPC-web calls are seen as plain gRPC, and outside the
//! auth layer, so refused calls are counted too. The status of a call is where tonic puts it:
//! in the response headers for a trailers-only response (every error, including the auth
//! layer's refusals), otherwise in the trailers at the end of the body, which is why the body is
//! wrapped and a call ends (is counted, timed and its span closed) only when its body does. A
//! body dropped before its trailers (the client went away, e.g. a Watch stream closed by the
//! SDK) ends the call as `CANCELLED`.

use http_body::{Body, Frame};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prost::Message;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::Instrument;

/// Label set of the RPC series: `[("method", "pkg.Service/Method"), ("code", "OK")]`.
pub type RpcLabels = [(&'static str, &'static str); 2];

/// gRPC status code names by number, as the gRPC spec spells them.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The label of a `grpc-status` value (`UNKNOWN` for anything unparseable).
fn code_name(value: Option<&http::HeaderValue>) -> &'static str {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .and_then(|i| CODES.get(i).copied())
        .unwrap_or("UNKNOWN")
}

/// Latency buckets in seconds: sub-millisecond evaluations up to minute-long streams (a Watch
/// stream's whole life lands in `+Inf`).
const BUCKETS: [f64; 16] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 60.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The RPC series, registered once and shared by every call.
#[derive(Debug)]
pub struct RpcMetrics {
    /// Calls finished, by method and code.
    pub requests: Family<RpcLabels, Counter>,
    /// Call durations, by method and code.
    pub duration: Family<RpcLabels, Histogram, fn() -> Histogram>,
    // Label values of the methods the server offers; any other path is labelled "other", so a
    // client inventing paths cannot grow the series without bound.
    methods: HashSet<&'static str>,
}

/// The services whose methods get their own label: ours, health and reflection.
fn known_methods() -> HashSet<&'static str> {
    let mut methods = HashSet::new();
    for set in [
        flagwire_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
            continue;
        };
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    let label = format!("{}.{}/{}", file.package(), service.name(), method.name());
                    // Leaked once at start-up: a fixed, small set of strings.
                    methods.insert(&*Box::leak(label.into_boxed_str()));
                }
            }
        }
    }
    methods.insert("grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    methods.insert("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
    methods
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram as fn() -> Histogram),
            methods: known_methods(),
        }
    }
}

impl RpcMetrics {
    /// The `method` label of a request path.
    pub fn method_label(&self, path: &str) -> &'static str {
        let name = path.strip_prefix('/').unwrap_or(path);
        self.methods.get(name).copied().unwrap_or("other")
    }

    fn record(&self, method: &'static str, code: &'static str, seconds: f64) {
        let labels = [("method", method), ("code", code)];
        self.requests.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(seconds);
    }
}

/// The layer, given to tonic's `Server::layer`.
#[derive(Clone)]
pub struct RpcLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<RpcMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;
    fn layer(&self, inner: S) -> Rpc<S> {
        Rpc {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`RpcLayer`] produces.
#[derive(Clone)]
pub struct Rpc<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

/// One call in flight: records it exactly once, when it ends.
struct Call {
    metrics: Arc<RpcMetrics>,
    method: &'static str,
    start: Instant,
    span: tracing::Span,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.metrics
            .record(self.method, code, self.start.elapsed().as_secs_f64());
        self.span.record("rpc.grpc.status_code", code);
        // OpenTelemetry marks a server span failed only for server-side faults.
        let failed = matches!(
            code,
            "UNKNOWN"
                | "DEADLINE_EXCEEDED"
                | "UNIMPLEMENTED"
                | "INTERNAL"
                | "UNAVAILABLE"
                | "DATA_LOSS"
        );
        self.span
            .record("otel.status_code", if failed { "ERROR" } else { "OK" });
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("CANCELLED");
    }
}

/// A span for the call when spans are exported, or a disabled one (no cost) when not.
fn span_for(method: &'static str) -> tracing::Span {
    if !super::otel::enabled() {
        return tracing::Span::none();
    }
    let (service, name) = method.split_once('/').unwrap_or((method, ""));
    tracing::info_span!(
        target: "flagwire::rpc",
        "rpc",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = name,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

impl<S, B, R> tower::Service<http::Request<B>> for Rpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Body + Send + 'static,
{
    type Response = http::Response<RpcBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The clone was readied by nobody: swap so the readied one handles this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if req.method() == http::Method::OPTIONS {
            // CORS preflights are no RPC.
            let future = inner.call(req);
            return Box::pin(async move {
                Ok(future.await?.map(|body| RpcBody {
                    inner: body,
                    call: None,
                }))
            });
        }
        let method = self.metrics.method_label(req.uri().path());
        let span = span_for(method);
        let mut call = Call {
            metrics: Arc::clone(&self.metrics),
            method,
            start: Instant::now(),
            span: span.clone(),
            done: false,
        };
        let future = inner.call(req).instrument(span);
        Box::pin(async move {
            let response = match future.await {
                Ok(response) => response,
                Err(e) => {
                    call.finish("UNKNOWN");
                    return Err(e);
                }
            };
            if let Some(status) = response.headers().get("grpc-status") {
                // Trailers-only: the call is over once these headers are out.
                call.finish(code_name(Some(status)));
            }
            Ok(response.map(|body| RpcBody {
                inner: body,
                call: Some(call),
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its call at the trailers (or at its end, or when dropped).
    pub struct RpcBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for RpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Some(call) = this.call.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        call.finish(code_name(trailers.get("grpc-status")));
                    }
                }
                Poll::Ready(Some(Err(_))) => call.finish("UNKNOWN"),
                // The end without trailers: tonic always sends a status, so this is a body
                // someone else produced (e.g. a plain HTTP error).
                Poll::Ready(None) => call.finish("UNKNOWN"),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
