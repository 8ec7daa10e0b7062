//! Remote `Evaluate` throughput against the real release server over 4 connections, next to
//! the same server's bare unary `grpc.health.v1.Health/Check` as the tonic baseline.
//!
//! `cargo bench -p flagwire-server --bench evaluate_rpc` (env `SECONDS=5`, `IN_FLIGHT=64`).

#[path = "../tests/integration/support/binary.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod common;
// `common` puts its servers on PostgreSQL under FLAGWIRE_TEST_STORE=postgres.
#[path = "../../core/tests/support/fixtures.rs"]
mod fixtures;
// The postgres module takes its cluster ports from `super::ports`.
#[path = "../tests/integration/support/ports.rs"]
mod ports;
#[path = "../tests/integration/support/postgres.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod postgres;

use common::*;
use flagwire_proto::grpc::flag_service_client::FlagServiceClient;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

async fn measure<F, Fut>(channels: &[Channel], in_flight: usize, seconds: u64, call: F) -> f64
where
    F: Fn(Channel) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for channel in channels {
        for _ in 0..in_flight / channels.len() {
            let (channel, done, call) = (channel.clone(), Arc::clone(&done), call.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    call(channel.clone()).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let in_flight = std::env::var("IN_FLIGHT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, fixtures::split_flag()).await;
    let sdk = Arc::new(create_token(&mut admin, "bench", Role::Sdk, "production").await);
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(server.channel().await);
    }
    let context = fixtures::context();
    let evaluate = {
        let sdk = Arc::clone(&sdk);
        move |channel: Channel| {
            let (sdk, context) = (Arc::clone(&sdk), context.clone());
            async move {
                let mut client =
                    FlagServiceClient::with_interceptor(channel, Bearer(Some(sdk.to_string())));
                let r = client
                    .evaluate(EvaluateRequest {
                        flag_key: "split-flag".into(),
                        context: Some(context),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(r.result.unwrap().reason, Reason::Split as i32);
            }
        }
    };
    let health = |channel: Channel| async move {
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
    };
    let eval_rate = measure(&channels, in_flight, seconds, evaluate).await;
    let bare_rate = measure(&channels, in_flight, seconds, health).await;
    println!("BENCH rpc.evaluate_rps.{in_flight}={eval_rate:.0} req/s");
    println!("BENCH rpc.health_rps.{in_flight}={bare_rate:.0} req/s");
    println!("BENCH rpc.ratio.{in_flight}={:.3} x", eval_rate / bare_rate);
    println!("| measurement | result |\n|---|---|");
    println!(
        "| remote Evaluate (5 rules + 3-way split), 4 connections, {in_flight} in flight | {eval_rate:.0} requests/s |"
    );
    println!(
        "| bare unary Health/Check, same server and connections | {bare_rate:.0} requests/s |"
    );
    println!(
        "| ratio Evaluate / bare unary | {:.2} |",
        eval_rate / bare_rate
    );
}
