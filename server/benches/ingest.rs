//! Metrics ingestion throughput: `Report` calls per second, each one window of one SDK instance
//! with 20 series (10 flags × 2 variants, latency histograms included), against the real
//! release server over 4 connections, with a canary rollout running on one of the flags so the
//! per-rollout evidence path is taken too. The load generator runs on the same machine.
//!
//! `cargo bench -p flagwire-server --bench ingest` (env `SECONDS=5`, `IN_FLIGHT=64`,
//! `INSTANCES=1000`).

#[path = "../tests/integration/support/binary.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod common;
// `common` puts its servers on PostgreSQL under FLAGWIRE_TEST_STORE=postgres.
#[path = "../tests/integration/support/postgres.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod postgres;

use common::*;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

// The generator shares the two cores with the server; it should not be slowed by glibc malloc
// any more than the server is.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The 20 series of one report.
fn series() -> Vec<Series> {
    let mut latency = Histogram::new();
    for v in [800, 1_200, 2_000, 5_000, 9_000, 20_000, 45_000] {
        latency.record_n(v, 3);
    }
    let mut out = Vec::new();
    for f in 0..10 {
        for (variant, cohort) in [("on", "canary"), ("off", "control")] {
            out.push(Series {
                flag_key: format!("flag-{f}"),
                variant: variant.into(),
                cohort: if f == 0 { cohort.into() } else { String::new() },
                evaluations: vec![ReasonCount {
                    reason: "SPLIT".into(),
                    count: 21,
                }],
                successes: 20,
                errors: 1,
                latency_us: Some(latency.to_proto()),
                ..Default::default()
            });
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let seconds = env_or("SECONDS", 5);
    let in_flight = env_or("IN_FLIGHT", 64) as usize;
    let instances = env_or("INSTANCES", 1_000).max(1);
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "prod").await;
    for f in 0..10 {
        let mut flag = bool_flag(&format!("flag-{f}"), &["prod"]);
        flag.environments.get_mut("prod").unwrap().enabled = true;
        create_flag(&mut admin, flag).await;
    }
    let mut rollouts = server.rollouts().await;
    let step = RolloutStep {
        basis_points: 500,
        min_duration: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        ..Default::default()
    };
    let rollout = rollouts
        .create_rollout(CreateRolloutRequest {
            rollout: Some(Rollout {
                flag_key: "flag-0".into(),
                environment: "prod".into(),
                treatment_variant: "on".into(),
                baseline_variant: "off".into(),
                steps: vec![step],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    rollouts
        .start_rollout(StartRolloutRequest { id: rollout.id })
        .await
        .unwrap();
    let sdk = create_token(&mut admin, "bench", Role::Sdk, "prod").await;

    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(server.channel().await);
    }
    let series = Arc::new(series());
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, channel) in channels.iter().enumerate() {
        for t in 0..in_flight / channels.len() {
            let mut client = metrics_client(channel.clone(), &sdk);
            let (series, sent) = (Arc::clone(&series), Arc::clone(&sent));
            let worker = (c * in_flight + t) as u64;
            tasks.push(tokio::spawn(async move {
                let mut sequence = 0;
                while Instant::now() < deadline {
                    sequence += 1;
                    let instance = (worker * 7_919 + sequence) % instances;
                    let end = SystemTime::now();
                    let request = ReportRequest {
                        metrics: Vec::new(),
                        cohort_outcomes: Vec::new(),
                        instance_id: format!("00000000-0000-4000-8000-{instance:012x}"),
                        // Unique per (instance, call): worker and sequence interleaved.
                        sequence: sequence * 1_000 + worker,
                        sdk_name: "bench".into(),
                        sdk_version: "0".into(),
                        environment: String::new(),
                        applied_revision: 1,
                        window_start: Some((end - Duration::from_secs(10)).into()),
                        window_end: Some(end.into()),
                        series: series.to_vec(),
                        dropped_series: 0,
                    };
                    client.report(request).await.unwrap();
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("BENCH ingest.reports_per_s={rate:.0} reports/s");
    println!("| measurement | result |\n|---|---|");
    println!(
        "| Report calls with 20 series each, 4 connections, {in_flight} in flight, {instances} instances | {rate:.0} reports/s ({:.0} series/s) |",
        rate * 20.0
    );
}

fn metrics_client(channel: tonic::transport::Channel, token: &str) -> Metrics {
    flagwire_proto::grpc::metrics_service_client::MetricsServiceClient::with_interceptor(
        channel,
        Bearer(Some(token.to_owned())),
    )
}
