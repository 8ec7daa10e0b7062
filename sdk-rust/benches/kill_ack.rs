//! Time from the kill-switch call to its acknowledgement by 1,000 connected SDK instances: real
//! Rust SDK clients (each its own connection, Watch stream and acknowledgement loop) against
//! the real release server, all on this machine.
//!
//! `cargo bench -p flagwire --bench kill_ack` (env `INSTANCES=1000`, `ROUNDS=20`).

#[path = "../tests/integration/support/binary.rs"]
mod binary;

use binary::{auth, bool_flag, start};
use flagwire::{Client, Context};
use flagwire_proto::grpc::{
    admin_service_client::AdminServiceClient, metrics_service_client::MetricsServiceClient,
    rollout_service_client::RolloutServiceClient,
};
use flagwire_proto::v1::*;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let instances = env_or("INSTANCES", 1_000);
    let rounds = env_or("ROUNDS", 20);
    let server = start();
    let channel = tonic::transport::Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut rollouts = RolloutServiceClient::new(channel.clone());
    let mut metrics = MetricsServiceClient::new(channel);
    admin
        .create_environment(auth(CreateEnvironmentRequest {
            environment: Some(Environment {
                key: "prod".into(),
                ..Default::default()
            }),
            reason: String::new(),
        }))
        .await
        .unwrap();
    admin
        .create_flag(auth(CreateFlagRequest {
            flag: Some(bool_flag("checkout", "prod", "on")),
            reason: String::new(),
        }))
        .await
        .unwrap();
    let token = admin
        .create_api_token(auth(CreateApiTokenRequest {
            name: "bench".into(),
            role: Role::Sdk as i32,
            environment: "prod".into(),
            reason: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let mut clients = Vec::with_capacity(instances);
    for _ in 0..instances {
        let c = Client::builder(server.url.clone(), token.clone())
            .build()
            .unwrap();
        clients.push(c);
    }
    for c in &clients {
        c.wait_ready(Duration::from_secs(60)).await.unwrap();
    }
    let ctx = Context::new("user-1");
    let (mut p50s, mut p99s, mut alls) = (Vec::new(), Vec::new(), Vec::new());
    let mut applied_in_sdk = Vec::new();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let e = rollouts
            .kill(auth(KillRequest {
                scope: Some(Scope {
                    kind: Some(scope::Kind::FlagKey("checkout".into())),
                    environment: "prod".into(),
                }),
                reason: format!("bench round {round}"),
            }))
            .await
            .unwrap()
            .into_inner()
            .execution
            .unwrap();
        let revision = e.acknowledgements[0].revision;
        let (mut half, mut p99, mut served) = (None, None, None);
        let all = loop {
            if served.is_none()
                && clients
                    .iter()
                    .all(|c| !c.bool_value("checkout", &ctx, true))
            {
                served = Some(started.elapsed().as_secs_f64() * 1e3);
            }
            let count = metrics
                .count_applied_instances(auth(CountAppliedInstancesRequest {
                    environment: "prod".into(),
                    revision,
                }))
                .await
                .unwrap()
                .into_inner();
            let t = started.elapsed().as_secs_f64() * 1e3;
            let applied = count.applied as usize;
            if half.is_none() && applied * 2 >= instances {
                half = Some(t);
            }
            if p99.is_none() && applied * 100 >= instances * 99 {
                p99 = Some(t);
            }
            if applied >= instances {
                break t;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "only {applied} acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        assert!(
            !clients[0].bool_value("checkout", &ctx, true),
            "served the off variant"
        );
        applied_in_sdk.push(served.unwrap_or(all));
        p50s.push(half.unwrap());
        p99s.push(p99.unwrap());
        alls.push(all);
        rollouts
            .undo_kill(auth(UndoKillRequest {
                execution_id: e.id,
                reason: "bench".into(),
            }))
            .await
            .unwrap();
    }
    for v in [&mut p50s, &mut p99s, &mut alls, &mut applied_in_sdk] {
        v.sort_by(f64::total_cmp);
    }
    println!("BENCH kill_ack.p99={:.1} ms", percentile(&p99s, 0.5));
    println!(
        "| measurement ({instances} instances, {rounds} kills) | median over kills | worst kill |\n|---|---|---|"
    );
    println!(
        "| every instance serves the off variant (checked in process) | {:.1} ms | {:.1} ms |",
        percentile(&applied_in_sdk, 0.5),
        percentile(&applied_in_sdk, 1.0)
    );
    println!(
        "| half of the instances acknowledged | {:.1} ms | {:.1} ms |",
        percentile(&p50s, 0.5),
        percentile(&p50s, 1.0)
    );
    println!(
        "| 99 % acknowledged (p99 instance) | {:.1} ms | {:.1} ms |",
        percentile(&p99s, 0.5),
        percentile(&p99s, 1.0)
    );
    println!(
        "| all acknowledged | {:.1} ms | {:.1} ms |",
        percentile(&alls, 0.5),
        percentile(&alls, 1.0)
    );
    for c in clients {
        c.close().await;
    }
}
