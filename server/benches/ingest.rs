//! Metrics ingestion throughput: `Report` calls per second, each one window of one SDK instance
//! with 20 series (10 flags × 2 variants, latency histograms included), against the real
//! release server over 4 connections, with a canary rollout running on one of the flags so the
//! per-rollout evidence path is taken too. The load generator runs on the same machine.
//!
//! `cargo bench -p flagwire-server --bench ingest` (env `SECONDS=5`, `IN_FLIGHT=64`,
//! `INSTANCES=1000`; `BATCH=50` sends `ReportBatch` calls of 50 reports instead of `Report`).
//! `FLAGWIRE_BIN` measures another build of the server with the same generator. The generator
//! encodes the series once and sends those bytes in every report (only the instance, sequence
//! and window change), so the two cores go to the server rather than to re-encoding.

#[path = "../tests/integration/support/binary.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod common;
// `common` puts its servers on PostgreSQL under FLAGWIRE_TEST_STORE=postgres.
// The postgres module takes its cluster ports from `super::ports`.
#[path = "../tests/integration/support/ports.rs"]
mod ports;
#[path = "../tests/integration/support/postgres.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod postgres;

use bytes::{Buf, BufMut, Bytes};
use common::*;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use http::uri::PathAndQuery;
use prost::Message;
use prost::encoding::WireType;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic_prost::ProstCodec;

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
    // 0: unary `Report`; n: `ReportBatch` calls of n reports each.
    let batch = env_or("BATCH", 0);
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
    let auth: MetadataValue<Ascii> = format!("Bearer {sdk}").parse().unwrap();
    let series = Bytes::from(encoded_series());
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, channel) in channels.iter().enumerate() {
        for t in 0..in_flight / channels.len() {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            let (series, auth) = (series.clone(), auth.clone());
            let (sent, accepted) = (Arc::clone(&sent), Arc::clone(&accepted));
            let worker = (c * in_flight + t) as u64;
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let end = SystemTime::now();
                    let mut report = || {
                        n += 1;
                        let instance = (worker * 7_919 + n) % instances;
                        // Unique per (instance, report): worker and count interleaved.
                        report_bytes(instance, n * 1_000 + worker, end, &series)
                    };
                    grpc.ready().await.unwrap();
                    let ok = if batch == 0 {
                        let mut request = Request::new(Raw(report()));
                        request.metadata_mut().insert("authorization", auth.clone());
                        let path = PathAndQuery::from_static("/flagwire.v1.MetricsService/Report");
                        let codec = ProstCodec::<Raw, ReportResponse>::default();
                        let response = grpc.unary(request, path, codec).await.unwrap();
                        u64::from(response.into_inner().accepted)
                    } else {
                        let mut body = Vec::new();
                        for _ in 0..batch {
                            let r = report();
                            // Field 1 (`reports`), length-delimited.
                            prost::encoding::encode_key(1, WireType::LengthDelimited, &mut body);
                            prost::encoding::encode_varint(r.len() as u64, &mut body);
                            body.extend_from_slice(&r);
                        }
                        let mut request = Request::new(Raw(body.into()));
                        request.metadata_mut().insert("authorization", auth.clone());
                        let path =
                            PathAndQuery::from_static("/flagwire.v1.MetricsService/ReportBatch");
                        let codec = ProstCodec::<Raw, ReportBatchResponse>::default();
                        let response = grpc.unary(request, path, codec).await.unwrap();
                        let results = response.into_inner().results;
                        assert_eq!(results.len() as u64, batch);
                        results.iter().filter(|r| r.accepted).count() as u64
                    };
                    sent.fetch_add(batch.max(1), Ordering::Relaxed);
                    accepted.fetch_add(ok, Ordering::Relaxed);
                }
            }));
        }
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = sent.load(Ordering::Relaxed) as f64 / elapsed;
    let accepted = accepted.load(Ordering::Relaxed);
    assert_eq!(
        accepted,
        sent.load(Ordering::Relaxed),
        "every report should be new"
    );
    let calls = if batch == 0 {
        "Report calls".to_owned()
    } else {
        format!("ReportBatch calls of {batch} reports")
    };
    // For scripts/bench (parsed, unlike the table row).
    if batch == 0 {
        println!("BENCH ingest.reports_per_s={rate:.0} reports/s");
    } else {
        println!(
            "BENCH ingest.batched.series_per_s={:.0} series/s",
            rate * 20.0
        );
    }
    println!("| measurement | result |\n|---|---|");
    println!(
        "| {calls} with 20 series each, 4 connections, {in_flight} calls in flight, {instances} instances | {rate:.0} reports/s ({:.0} series/s) |",
        rate * 20.0
    );
}

/// A message already encoded: the generator sends the 20 series' bytes it encoded once, so
/// its own cost per report is a small header, not the re-encoding of every series (the
/// server under test decodes all of it as usual).
#[derive(Debug, Clone, Default)]
struct Raw(Bytes);

impl prost::Message for Raw {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        _tag: u32,
        _wire_type: WireType,
        _buf: &mut impl Buf,
        _ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        unreachable!("the generator never decodes a Raw")
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The 20 series as the `series` field (9) of a `ReportRequest`, encoded.
fn encoded_series() -> Vec<u8> {
    let mut out = Vec::new();
    for s in series() {
        prost::encoding::message::encode(9, &s, &mut out);
    }
    out
}

/// One encoded `ReportRequest`: its scalar fields, then the pre-encoded series (protobuf
/// fields may come in any order).
fn report_bytes(instance: u64, sequence: u64, end: SystemTime, series: &[u8]) -> Bytes {
    let header = ReportRequest {
        instance_id: format!("00000000-0000-4000-8000-{instance:012x}"),
        sequence,
        sdk_name: "bench".into(),
        sdk_version: "0".into(),
        applied_revision: 1,
        window_start: Some((end - Duration::from_secs(10)).into()),
        window_end: Some(end.into()),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(header.encoded_len() + series.len());
    header.encode_raw(&mut out);
    out.extend_from_slice(series);
    out.into()
}
