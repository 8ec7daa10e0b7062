//! `/metrics` (on the real binary; for rollouts, on the server in process and its manual clock),
//! parsed by a strict OpenMetrics parser: RPC counts and
//! latencies per method and status code (refusals, errors and cancelled streams included),
//! connected watchers and instances, revisions, store size, SDK-reported usage per flag,
//! variant and cohort, rollout state and decisions.

use crate::support::eventually::DEADLINE;
use crate::support::inproc::InProcess;
use crate::support::scrape::Scrape;
use crate::support::*;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};
use tonic::Code;

const INSTANCE: &str = "2b7e1516-28ae-4d2a-abf7-158809cf4f3c";

async fn scrape(server: &impl Connect) -> Scrape {
    let response = crate::support::http::get(&server.http_address(), "/metrics").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    Scrape::parse(&response.body)
}

fn series(variant: &str, evaluations: u64, latencies: &[u64], errors: u64) -> Series {
    let mut h = Histogram::new();
    latencies.iter().for_each(|v| h.record(*v));
    Series {
        flag_key: "checkout".into(),
        variant: variant.into(),
        cohort: String::new(),
        rollout_id: String::new(),
        evaluations: vec![ReasonCount {
            reason: "SPLIT".into(),
            count: evaluations,
        }],
        successes: latencies.len() as u64 - errors,
        errors,
        latency_us: Some(h.to_proto()),
    }
}

fn rpc<'a>(method: &'a str, code: &'a str) -> [(&'a str, &'a str); 2] {
    [("method", method), ("code", code)]
}

/// Polls `/metrics` until `ok` holds (scrape-time values follow the server's state).
async fn scraped(server: &impl Connect, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    eventually(DEADLINE, &format!("/metrics to show {what}"), async || {
        let s = scrape(server).await;
        ok(&s).then_some(s)
    })
    .await
}

#[tokio::test]
async fn metrics_cover_rpcs_watchers_usage_and_state() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    create_flag(
        &mut admin,
        bool_flag("checkout", &["production", "staging"]),
    )
    .await;
    create_flag(&mut admin, bool_flag("search", &["production"])).await;
    set_enabled(&mut admin, "checkout", "production", true).await;
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;

    // An error, a refusal and a success of the same method.
    let missing = admin.get_flag(GetFlagRequest { key: "nope".into() }).await;
    code(missing, Code::NotFound);
    let mut anonymous = server.admin_as(None).await;
    code(
        anonymous.get_flag(GetFlagRequest::default()).await,
        Code::Unauthenticated,
    );
    admin
        .get_flag(GetFlagRequest {
            key: "checkout".into(),
        })
        .await
        .unwrap();

    // A connected SDK instance with an open Watch stream.
    let mut flags = server.flags_as(Some(&sdk)).await;
    let mut stream = flags
        .watch(WatchRequest {
            instance_id: INSTANCE.into(),
            sdk_name: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    next(&mut stream).await;

    // Its report: 100 evaluations of on (2 of 4 outcomes failed), 40 of off.
    let end = SystemTime::now();
    let revision = admin
        .get_environment(GetEnvironmentRequest {
            key: "production".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
        .revision;
    let mut metrics = server.metrics_as(Some(&sdk)).await;
    let accepted = metrics
        .report(ReportRequest {
            instance_id: INSTANCE.into(),
            sequence: 1,
            applied_revision: revision,
            window_start: Some((end - Duration::from_secs(10)).into()),
            window_end: Some(end.into()),
            series: vec![
                series("on", 100, &[800, 1_500, 20_000, 3_000_000], 2),
                series("off", 40, &[], 0),
            ],
            metrics: vec![
                MetricSeries {
                    name: "mem0.write".into(),
                    flag_key: "checkout".into(),
                    variant: "on".into(),
                    successes: 97,
                    failures: 3,
                    ..Default::default()
                },
                MetricSeries {
                    name: "score".into(),
                    flag_key: "checkout".into(),
                    variant: "on".into(),
                    count: 4,
                    sum: 18.5,
                    sum_of_squares: 90.0,
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(accepted.accepted);

    let s = scrape(&server).await;
    let get_flag = "flagwire.v1.AdminService/GetFlag";
    assert_eq!(s.value("flagwire_grpc_requests", &rpc(get_flag, "OK")), 1.0);
    assert_eq!(
        s.value("flagwire_grpc_requests", &rpc(get_flag, "NOT_FOUND")),
        1.0
    );
    assert_eq!(
        s.value("flagwire_grpc_requests", &rpc(get_flag, "UNAUTHENTICATED")),
        1.0
    );
    let report = "flagwire.v1.MetricsService/Report";
    assert_eq!(s.value("flagwire_grpc_requests", &rpc(report, "OK")), 1.0);
    let (count, sum, buckets) = s.histogram(
        "flagwire_grpc_request_duration_seconds",
        &rpc(get_flag, "OK"),
    );
    assert_eq!(count, 1);
    assert!(sum > 0.0 && sum < 5.0, "{sum}");
    assert_eq!(
        buckets.last().map(|b| b.1),
        Some(1.0),
        "+Inf holds every call"
    );
    assert!(s.has("flagwire_build"), "build info");

    assert_eq!(
        s.value("flagwire_watch_streams", &[("environment", "production")]),
        1.0
    );
    let production = [("environment", "production")];
    assert_eq!(
        s.value("flagwire_sdk_instances_connected", &production),
        1.0
    );
    assert_eq!(s.value("flagwire_sdk_instances_known", &production), 1.0);
    assert_eq!(
        s.value("flagwire_sdk_instances_up_to_date", &production),
        1.0
    );
    assert_eq!(
        s.value("flagwire_environment_revision", &production),
        revision as f64
    );
    assert!(
        s.value(
            "flagwire_environment_revision",
            &[("environment", "staging")]
        ) >= 1.0
    );
    assert!(
        s.value("flagwire_store_size_bytes", &[]) > 0.0,
        "sled on disk"
    );
    let enabled = [("environment", "production"), ("state", "enabled")];
    let disabled = [("environment", "production"), ("state", "disabled")];
    assert_eq!(s.value("flagwire_flags", &enabled), 1.0);
    assert_eq!(s.value("flagwire_flags", &disabled), 1.0);

    let on = [
        ("environment", "production"),
        ("flag", "checkout"),
        ("variant", "on"),
        ("cohort", ""),
    ];
    assert_eq!(s.value("flagwire_evaluations", &on), 100.0);
    let off = [
        ("environment", "production"),
        ("flag", "checkout"),
        ("variant", "off"),
    ];
    assert_eq!(s.value("flagwire_evaluations", &off), 40.0);
    let with = |result| {
        [
            ("environment", "production"),
            ("variant", "on"),
            ("result", result),
        ]
    };
    assert_eq!(s.value("flagwire_outcomes", &with("success")), 2.0);
    assert_eq!(s.value("flagwire_outcomes", &with("error")), 2.0);
    let (count, sum, buckets) = s.histogram("flagwire_outcome_latency_seconds", &on);
    assert_eq!(count, 4);
    assert!((sum - 3.0223).abs() < 1e-9, "sum in seconds: {sum}");
    // 800 µs and 1.5 ms are at most 2.5 ms; 20 ms at most 25 ms; 3 s only under 5 s.
    let le = |bound: f64| buckets.iter().find(|b| b.0 == bound).unwrap().1;
    assert_eq!(
        (le(0.0025), le(0.025), le(2.5), le(5.0)),
        (2.0, 3.0, 3.0, 4.0)
    );
    assert_eq!(
        s.value("flagwire_sdk_reports", &[("outcome", "accepted")]),
        1.0
    );
    // The team's own metrics, per variant.
    let metric = |name, result| [("variant", "on"), ("metric", name), ("result", result)];
    assert_eq!(
        s.value("flagwire_metric_outcomes", &metric("mem0.write", "success")),
        97.0
    );
    assert_eq!(
        s.value("flagwire_metric_outcomes", &metric("mem0.write", "failure")),
        3.0
    );
    let score = [("flag", "checkout"), ("variant", "on"), ("metric", "score")];
    assert_eq!(s.value("flagwire_metric_values", &score), 4.0);
    assert_eq!(s.value("flagwire_metric_value_sum", &score), 18.5);

    // The stream ends: its call is counted as cancelled and the watcher leaves.
    drop(stream);
    drop(flags);
    let watch = "flagwire.v1.FlagService/Watch";
    let s = scraped(&server, "the Watch stream ended", |s| {
        s.find("flagwire_grpc_requests", &rpc(watch, "CANCELLED"))
            .is_some()
            && s.value("flagwire_watch_streams", &production) == 0.0
    })
    .await;
    assert_eq!(
        s.value("flagwire_sdk_instances_connected", &production),
        0.0
    );
    assert_eq!(s.value("flagwire_sdk_instances_known", &production), 1.0);
}

#[tokio::test]
async fn rollout_state_and_decisions() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("checkout", &["production"])).await;
    set_enabled(&mut admin, "checkout", "production", true).await;
    let mut rollouts = server.rollouts().await;
    let steps = vec![
        crate::support::rollout::step(1_000, Duration::from_secs(60), 100),
        crate::support::rollout::step(10_000, Duration::from_secs(60), 100),
    ];
    let definition = crate::support::rollout::definition(
        "checkout",
        "production",
        steps,
        Duration::from_secs(1),
    );
    let r = crate::support::rollout::create_and_start(&mut rollouts, definition).await;

    let labels = [("rollout", r.id.as_str()), ("flag", "checkout")];
    let s = scrape(&server).await;
    let running = [("environment", "production"), ("state", "running")];
    assert_eq!(s.value("flagwire_rollouts", &running), 1.0);
    assert_eq!(s.value("flagwire_rollout_canary_ratio", &labels), 0.1);

    // A window closes: the judge logs a HOLD (no data yet, minimum not met).
    server.advance(Duration::from_secs(1));
    server.caught_up().await;
    let s = scraped(&server, "a rollout decision", |s| {
        s.find("flagwire_rollout_decisions", &[("kind", "hold")])
            .is_some()
    })
    .await;
    assert!(
        s.value(
            "flagwire_rollout_decisions",
            &[("environment", "production")]
        ) >= 1.0
    );
    assert_eq!(s.value("flagwire_kill_switch_executions", &[]), 0.0);

    // The kill switch: one execution, succeeded, then undone.
    let killed = rollouts
        .kill(KillRequest {
            scope: Some(Scope {
                kind: Some(scope::Kind::FlagKey("checkout".into())),
                environment: "production".into(),
            }),
            reason: "pager".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    let s = scrape(&server).await;
    assert_eq!(s.value("flagwire_kill_switch_executions", &[]), 1.0);
    let kills = |state| [("kind", "kill"), ("state", state)];
    assert_eq!(s.value("flagwire_executions", &kills("succeeded")), 1.0);
    assert_eq!(s.value("flagwire_executions", &kills("undone")), 0.0);
    rollouts
        .undo_kill(UndoKillRequest {
            execution_id: killed.id,
            reason: "fixed".into(),
        })
        .await
        .unwrap();
    let s = scrape(&server).await;
    assert_eq!(s.value("flagwire_kill_switch_executions", &[]), 1.0);
    assert_eq!(s.value("flagwire_executions", &kills("succeeded")), 0.0);
    assert_eq!(s.value("flagwire_executions", &kills("undone")), 1.0);
}

/// Every metric name an expression of `value` (the dashboard, recursively) mentions.
fn metric_names(value: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if let ("expr" | "definition", serde_json::Value::String(expr)) = (key.as_str(), v)
                {
                    let mut rest = expr.as_str();
                    while let Some(at) = rest.find("flagwire_") {
                        let name: String = rest[at..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        rest = &rest[at + name.len()..];
                        names.insert(name);
                    }
                }
                metric_names(v, names);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| metric_names(v, names)),
        _ => {}
    }
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_exported_series() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/flagwire.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut wanted = std::collections::BTreeSet::new();
    metric_names(&dashboard, &mut wanted);
    assert!(wanted.len() >= 15, "{wanted:?}");

    // A server with every kind of series: a watcher, a report, a judged rollout.
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("checkout", &["production"])).await;
    set_enabled(&mut admin, "checkout", "production", true).await;
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;
    let mut flags = server.flags_as(Some(&sdk)).await;
    let mut stream = flags
        .watch(WatchRequest {
            instance_id: INSTANCE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    next(&mut stream).await;
    let end = server.now();
    let mut metrics = server.metrics_as(Some(&sdk)).await;
    metrics
        .report(ReportRequest {
            instance_id: INSTANCE.into(),
            sequence: 1,
            window_start: Some((end - Duration::from_secs(10)).into()),
            window_end: Some(end.into()),
            series: vec![series("on", 10, &[500, 900], 1)],
            ..Default::default()
        })
        .await
        .unwrap();
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
    crate::support::rollout::create_and_start(&mut rollouts, definition).await;
    server.advance(Duration::from_secs(1));
    server.caught_up().await;
    scraped(&server, "a rollout decision", |s| {
        s.has("flagwire_rollout_decisions")
    })
    .await;

    let text = crate::support::http::get(&server.http_address(), "/metrics")
        .await
        .body;
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries series /metrics does not have: {missing:?}"
    );
}
