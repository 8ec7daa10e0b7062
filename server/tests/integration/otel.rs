//! OpenTelemetry on the real binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, a span per RPC (and
//! per rollout decision) reaches an OTLP/gRPC receiver running in the test, spans still
//! buffered at shutdown are flushed, and without the variable no exporter runs. Also the
//! start-up summary of flag states, one log line per environment.

use crate::support::eventually::DEADLINE;
use crate::support::*;
use flagwire_proto::v1::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Code, Request, Response, Status};

/// A span as received: name, kind, and its string attributes.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    kind: i32,
    service_name: String,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The OTLP trace receiver: keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn string(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service_name = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| string(kv.value.as_ref()))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Received {
                    name: span.name,
                    kind: span.kind,
                    service_name: service_name.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), string(kv.value.as_ref())))
                        .collect(),
                });
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves on a free loopback port; returns its endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    fn named(&self, name: &str) -> Vec<Received> {
        let spans = self.spans.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// Waits for a span named `name`.
    async fn wait_for(&self, name: &str) -> Received {
        eventually(DEADLINE, &format!("a span named {name:?}"), async || {
            self.named(name).pop()
        })
        .await
    }
}

async fn production_with_flag(server: &Server) -> Admin {
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("checkout", &["production"])).await;
    set_enabled(&mut admin, "checkout", "production", true).await;
    admin
}

#[tokio::test]
async fn rpc_and_rollout_decision_spans_reach_the_collector() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let dir = tempdir();
    let server = Server::start_env(
        dir.path(),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        None,
    );
    let mut admin = production_with_flag(&server).await;
    code(
        admin.get_flag(GetFlagRequest { key: "nope".into() }).await,
        Code::NotFound,
    );

    let span = collector
        .wait_for("flagwire.v1.AdminService/CreateEnvironment")
        .await;
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(span.service_name, "flagwire");
    assert_eq!(span.attribute("rpc.system"), Some("grpc"));
    assert_eq!(
        span.attribute("rpc.service"),
        Some("flagwire.v1.AdminService")
    );
    assert_eq!(span.attribute("rpc.method"), Some("CreateEnvironment"));
    assert_eq!(span.attribute("rpc.grpc.status_code"), Some("OK"));
    let missing = collector.wait_for("flagwire.v1.AdminService/GetFlag").await;
    assert_eq!(missing.attribute("rpc.grpc.status_code"), Some("NOT_FOUND"));

    // A rollout judged every second: its first HOLD is a decision the driver writes.
    let mut rollouts = server.rollouts().await;
    let steps = vec![crate::support::rollout::step(
        1_000,
        Duration::from_secs(60),
        100,
    )];
    let definition = crate::support::rollout::definition(
        "checkout",
        "production",
        steps,
        Duration::from_secs(1),
    );
    let r = crate::support::rollout::create_and_start(&mut rollouts, definition).await;
    let decision = collector.wait_for("rollout decision").await;
    assert_eq!(decision.attribute("rollout"), Some(r.id.as_str()));
    assert_eq!(decision.attribute("flag"), Some("checkout"));
    assert_eq!(decision.attribute("decision"), Some("Hold"));
}

// Multi-threaded: `terminate` blocks a thread while the in-test collector must still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_buffered_at_shutdown_are_flushed() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let dir = tempdir();
    // A batch delay far beyond the test: only the shutdown flush can deliver the spans.
    let mut server = Server::start_env(
        dir.path(),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
        None,
    );
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    // Batched for ten minutes: nothing is exported until the shutdown flushes it.
    assert!(
        collector
            .named("flagwire.v1.AdminService/CreateEnvironment")
            .is_empty()
    );
    drop(admin);
    assert!(server.terminate(), "clean exit");
    collector
        .wait_for("flagwire.v1.AdminService/CreateEnvironment")
        .await;
}

// Multi-threaded: `terminate` blocks a thread while the client must still answer GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_logs_flag_states_per_environment_and_no_exporter_by_default() {
    let dir = tempdir();
    let mut first = Server::start(dir.path(), &[]);
    let mut admin = production_with_flag(&first).await;
    create_env(&mut admin, "staging").await;
    create_flag(&mut admin, bool_flag("search", &["production", "staging"])).await;
    drop(admin);
    assert!(first.terminate());

    let lines = StderrLines::default();
    let server = Server::start_env(
        dir.path(),
        &["--log-format", "json"],
        &[("RUST_LOG", "info"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "")],
        Some(Arc::clone(&lines)),
    );
    // The server logs the summary before it listens; stderr may lag stdout a little.
    let messages = eventually(DEADLINE, "two flag-state lines on stderr", async || {
        let messages = lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect::<Vec<_>>();
        (messages.iter().filter(|m| is_flag_states(m)).count() == 2).then_some(messages)
    })
    .await;
    let states: Vec<(String, String)> = messages
        .iter()
        .filter(|m| is_flag_states(m))
        .map(|m| {
            let fields = &m["fields"];
            (
                fields["environment"].as_str().unwrap().to_owned(),
                fields["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (
                "production".to_owned(),
                "flag states: enabled=[checkout] disabled=[search]".to_owned()
            ),
            (
                "staging".to_owned(),
                "flag states: enabled=[] disabled=[search]".to_owned()
            ),
        ]
    );
    assert!(
        messages.iter().any(|m| m["fields"]["message"]
            .as_str()
            .is_some_and(|s| s.starts_with("OpenTelemetry off"))),
        "{messages:?}"
    );
    drop(server);
}

fn is_flag_states(m: &serde_json::Value) -> bool {
    m["fields"]["message"]
        .as_str()
        .is_some_and(|s| s.starts_with("flag states"))
}
