//! Three replicas of the real server binary on one real PostgreSQL 15 (started here, as the
//! integration tests do): durable writes per second with p50/p99, the time from an acknowledged
//! write on replica A to its arrival at watchers spread over all three replicas, each replica's
//! memory, and the leader failover time after `kill -9`. Prints Markdown rows for BENCHMARKS.md.
//!
//! `cargo bench -p flagwire-server --bench replicas` (env `WATCHERS=10000`, `WRITES=20`,
//! `FLAGS=2000`).

#[path = "../tests/integration/support/binary.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests; a bench uses part of it"
)]
mod common;
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
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    format!(
        "p50 {} · p99 {} · max {} (n = {})",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap()),
        samples.len()
    )
}

/// `flagwire_leader` of a replica's `/metrics` (plain HTTP/1.0 GET, no client library needed).
fn leads(server: &Server) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(&server.http) else {
        return false;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines().any(|l| l.trim() == "flagwire_leader 1")
}

async fn writes(server: &Server, prefix: &str, flags: usize, concurrency: usize) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let mut admin = server.admin().await;
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (w..flags).step_by(concurrency) {
                let t = Instant::now();
                create_flag(
                    &mut admin,
                    bool_flag(&format!("{prefix}-{i:05}"), &["production"]),
                )
                .await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "| durable CreateFlag on PostgreSQL, {concurrency} concurrent clients | {rate:.0} writes/s · {} |",
        percentiles(latencies)
    );
}

#[tokio::main]
async fn main() {
    let (watchers, writes_n, flags) = (
        env("WATCHERS", 10_000),
        env("WRITES", 20),
        env("FLAGS", 2000),
    );
    let cluster = postgres::Cluster::start();
    let url = cluster.create_db();
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let mut servers: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start(d.path(), &["--store", &url, "--heartbeat-secs", "300"]))
        .collect();
    let mut admin = servers[0].admin().await;
    create_env(&mut admin, "production").await;
    let sdk = create_token(&mut admin, "bench", Role::Sdk, "production").await;
    println!("| measurement (three replicas, one PostgreSQL 15) | result |\n|---|---|");
    writes(&servers[0], "warm", flags / 10, 1).await;
    writes(&servers[0], "one", flags, 1).await;
    writes(&servers[0], "eight", flags, 8).await;

    // Watchers round-robin over the replicas, each its own connection.
    let revision = servers[0]
        .admin()
        .await
        .get_environment(GetEnvironmentRequest {
            key: "production".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
        .revision;
    let mut tasks = Vec::new();
    for i in 0..watchers {
        let mut client = servers[i % 3].flags_as(Some(&sdk)).await;
        let mut stream = watch(&mut client, "", revision).await;
        tasks.push(tokio::spawn(async move {
            let _client = client;
            let mut arrivals = Vec::new();
            while arrivals.len() < writes_n {
                if let Event::Change(c) = next(&mut stream).await {
                    arrivals.push((c.revision, Instant::now()));
                }
            }
            arrivals
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss: Vec<f64> = servers
        .iter()
        .map(|s| s.rss_kib() as f64 / 1024.0)
        .collect();
    let mut acked = Vec::new();
    for i in 0..writes_n {
        set_enabled(&mut admin, "one-00000", "production", i % 2 == 0).await;
        acked.push(Instant::now());
        tokio::time::sleep(
            Duration::from_millis(300) + Duration::from_micros(30 * watchers as u64),
        )
        .await;
    }
    let mut arrival = Vec::new();
    for t in tasks {
        for (rev, at) in t.await.unwrap() {
            arrival.push(at.saturating_duration_since(acked[(rev - revision - 1) as usize]));
        }
    }
    println!(
        "| arrival after ack on A, {watchers} watchers over 3 replicas | {} |",
        percentiles(arrival)
    );
    println!(
        "| RSS per replica with {} watchers each | {} |",
        watchers / 3,
        rss.iter()
            .map(|m| format!("{m:.1} MiB"))
            .collect::<Vec<_>>()
            .join(" · ")
    );

    // Leader failover: kill -9 the leader, time until another replica reports leading.
    let leader = (0..3).find(|&i| leads(&servers[i])).expect("a leader");
    let killed = Instant::now();
    servers[leader].kill9();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    while !others.iter().any(|&i| leads(&servers[i])) {
        assert!(killed.elapsed() < Duration::from_secs(30), "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "| leader failover after kill -9 (until `flagwire_leader 1` elsewhere) | {:.2} s |",
        killed.elapsed().as_secs_f64()
    );
}
