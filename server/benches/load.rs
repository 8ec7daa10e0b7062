//! Load benchmark of the real server binary on loopback: durable admin writes, and the time
//! from an acknowledged write to its arrival at 1,000 and 10,000 concurrent watchers, plus the
//! server's memory per watcher, and how many production watchers a staging write wakes (none
//! expected: changes are per environment). Prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p flagwire-server --bench load` (env `WATCHERS=1000,10000`, `FLAGS=10000`,
//! `WATCHERS_PER_CONNECTION=1`; `PERF_RECORD=file` records the server with `perf` during the
//! fan-out).

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
use common::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use std::time::{Duration, Instant};

/// A flag configured in production and staging: the staging writes toggle it there.
const STAGING_PROBE: &str = "staging-probe";
const STAGING_WRITES: usize = 10;
/// The production write after the staging writes, so each watcher knows it has seen them.
const MARKER: &str = "flag-00001";

fn is_marker(change: &Change) -> bool {
    matches!(&change.kind, Some(change::Kind::FlagUpserted(f)) if f.key == MARKER)
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
        "| durable CreateFlag, {concurrency} concurrent clients | {rate:.0} writes/s · {} |",
        percentiles(latencies)
    );
}

/// Opens `n` more watcher clients, `per_connection` of them sharing one HTTP/2 connection
/// (1 = every watcher its own connection, as separate SDK processes have).
async fn connect_watchers(
    server: &Server,
    sdk: &str,
    n: usize,
    per_connection: usize,
) -> Vec<Flags> {
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let client = server.flags_as(Some(sdk)).await;
        for _ in 0..per_connection.min(n - clients.len()) {
            clients.push(client.clone());
        }
    }
    clients
}

async fn fanout(server: &Server, admin: &mut Admin, clients: &mut [Flags], writes: u64) {
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
    let mut tasks = Vec::new();
    for client in clients.iter_mut() {
        let mut stream = watch(client, "", revision).await;
        tasks.push(tokio::spawn(async move {
            // The timed writes, then the staging writes, then the marker: anything but a
            // heartbeat between the last timed write and the marker is a staging write that
            // woke a production watcher.
            let (mut arrivals, mut woken) = (Vec::new(), 0_usize);
            loop {
                match next(&mut stream).await {
                    Event::Change(c) if is_marker(&c) => break,
                    Event::Change(c) if arrivals.len() < writes as usize => {
                        arrivals.push((c.revision, Instant::now()));
                    }
                    Event::Heartbeat(_) => {}
                    _ => woken += 1,
                }
            }
            (arrivals, woken)
        }));
    }
    // Let every stream reach the server before writing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = server.rss_kib();
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let (server_cpu, own_cpu) = (cpu(server.pid()), cpu(std::process::id()));
    let perf = std::env::var("PERF_RECORD").ok().map(|out| {
        std::process::Command::new("perf")
            .args(["record", "-g", "-o", &out, "-p", &server.pid().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    });
    let mut acked = Vec::new();
    for i in 0..writes {
        let t = Instant::now();
        set_enabled(admin, "flag-00000", "production", i % 2 == 0).await;
        acked.push((t, Instant::now()));
        // Space writes so one fan-out finishes before the next begins (about 20 µs of server
        // CPU per watcher here): the figure is arrival latency, not queueing behind a backlog.
        let n = clients.len() as u64;
        tokio::time::sleep(Duration::from_millis(200) + Duration::from_micros(30 * n)).await;
    }
    for i in 0..STAGING_WRITES {
        set_enabled(admin, STAGING_PROBE, "staging", i % 2 == 0).await;
    }
    // Toggled: a write that changes nothing produces no change.
    static ROUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let round = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    set_enabled(admin, MARKER, "production", round.is_multiple_of(2)).await;
    if let Some(perf) = perf {
        std::process::Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status()
            .unwrap();
        perf.wait_with_output().unwrap();
    }
    eprintln!(
        "cpu ticks during {writes} writes: server {} client {}",
        cpu(server.pid()) - server_cpu,
        cpu(std::process::id()) - own_cpu
    );
    let (mut from_ack, mut from_send, mut woken) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (arrivals, messages) = t.await.unwrap();
        woken += messages;
        for (rev, at) in arrivals {
            let (sent, ack) = acked[(rev - revision - 1) as usize];
            from_ack.push(at.saturating_duration_since(ack));
            from_send.push(at.duration_since(sent));
        }
    }
    let n = clients.len();
    let mut sorted = from_ack.clone();
    sorted.sort();
    let p99 = sorted[((sorted.len() as f64 - 1.0) * 0.99).round() as usize];
    // For scripts/bench (parsed, unlike the table rows).
    println!(
        "BENCH load.arrival_p99.{n}={:.2} ms",
        p99.as_secs_f64() * 1e3
    );
    println!(
        "| arrival after ack, {n} watchers | {} |",
        percentiles(from_ack)
    );
    println!(
        "| arrival after request sent, {n} watchers | {} |",
        percentiles(from_send)
    );
    println!("BENCH load.staging.production_messages={woken} messages");
    println!(
        "| production messages after {STAGING_WRITES} staging writes, {n} watchers | {woken} |"
    );
    println!(
        "| server RSS with {n} watchers | {:.1} MiB |",
        rss as f64 / 1024.0
    );
}

#[tokio::main]
async fn main() {
    let env_list = |name: &str, default: &str| -> Vec<usize> {
        std::env::var(name)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect()
    };
    let watchers = env_list("WATCHERS", "1000,10000");
    let flags = env_list("FLAGS", "10000")[0];
    let per_connection = env_list("WATCHERS_PER_CONNECTION", "1")[0];
    println!("watchers per connection: {per_connection}\n");
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--heartbeat-secs", "300"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    create_flag(
        &mut admin,
        bool_flag(STAGING_PROBE, &["production", "staging"]),
    )
    .await;
    let sdk = create_token(&mut admin, "bench", Role::Sdk, "production").await;
    println!("| measurement | result |\n|---|---|");
    writes(&server, "warm", flags / 10, 1).await;
    writes(&server, "flag", flags, 8).await;
    let base = server.rss_kib();
    println!(
        "| server RSS with {flags} flags, no watchers | {:.1} MiB |",
        base as f64 / 1024.0
    );
    let mut clients = Vec::new();
    for n in watchers {
        let more = n - clients.len();
        clients.extend(connect_watchers(&server, &sdk, more, per_connection).await);
        fanout(&server, &mut admin, &mut clients, 20).await;
        let per = (server.rss_kib().saturating_sub(base)) as f64 / n as f64;
        println!("| server memory per watcher ({n} watchers, RSS delta / n) | {per:.1} KiB |");
        println!("BENCH load.kib_per_watcher.{n}={per:.1} KiB");
    }
}
