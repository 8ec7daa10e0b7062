//! The bundled traffic generator: SDK instances sending real traffic through `measure` to one
//! flag, with an error rate and a latency per variant, so a canary rollout has something to
//! judge. The Python and TypeScript SDKs ship the same generator with the same options.
//!
//! ```sh
//! FLAGWIRE_TOKEN=fw_sdk_... cargo run -p flagwire --example traffic -- \
//!   --flag new-checkout --rps 400 --instances 3 --error-rate on=0.05 --latency-ms on=30
//! ```

use clap::Parser;
use flagwire::{Client, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends measured traffic for one flag.
#[derive(Parser, Debug)]
struct Args {
    /// gRPC endpoint of the server.
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    endpoint: String,
    /// An sdk token.
    #[arg(long, env = "FLAGWIRE_TOKEN", hide_env_values = true)]
    token: String,
    /// The flag to evaluate.
    #[arg(long)]
    flag: String,
    /// Requests per second, across all instances.
    #[arg(long, default_value_t = 200.0)]
    rps: f64,
    /// Independent SDK clients in this process.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Seconds to run; 0 runs until interrupted.
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Failure probability of a variant, `VARIANT=P` (repeatable; others fail with 0.01).
    #[arg(long = "error-rate", value_parser = pair)]
    error_rate: Vec<(String, f64)>,
    /// Median latency of a variant in ms, `VARIANT=MS` (repeatable; others 20).
    #[arg(long = "latency-ms", value_parser = pair)]
    latency_ms: Vec<(String, f64)>,
    /// Metrics flush interval of each client, ms.
    #[arg(long = "flush-ms", default_value_t = 1000)]
    flush_ms: u64,
    /// Seed of user ids, failures and latencies.
    #[arg(long)]
    seed: Option<u64>,
}

fn pair(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s.split_once('=').ok_or("expected VARIANT=NUMBER")?;
    let v: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    Ok((k.to_owned(), v))
}

/// Per variant: (requests, failures).
type Tally = Arc<Mutex<BTreeMap<String, (u64, u64)>>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let error_rate: HashMap<_, _> = args.error_rate.iter().cloned().collect();
    let latency_ms: HashMap<_, _> = args.latency_ms.iter().cloned().collect();
    let mut clients = Vec::new();
    for _ in 0..args.instances.max(1) {
        let client = Client::builder(args.endpoint.clone(), args.token.clone())
            .metrics_flush_interval(Duration::from_millis(args.flush_ms.max(10)))
            .build()?;
        if let Err(e) = client.wait_ready(Duration::from_secs(10)).await {
            eprintln!("traffic: the SDK did not become ready: {e}");
            std::process::exit(2);
        }
        clients.push(client);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let tally: Tally = Arc::default();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rps.max(0.001));
    let mut next = tokio::time::Instant::now();
    let mut report_at = Duration::from_secs(1);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut sent: u64 = 0;
    loop {
        if args.duration > 0.0 && started.elapsed().as_secs_f64() >= args.duration {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep_until(next) => {}
        }
        next += interval;
        let client = clients[(sent as usize) % clients.len()].clone();
        sent += 1;
        let ctx = Context::new(format!("user-{}", rng.random_range(0..100_000)));
        let (roll, z_seed): (f64, u64) = (rng.random(), rng.random());
        let flag = args.flag.clone();
        let (rates, latencies, counts) =
            (error_rate.clone(), latency_ms.clone(), Arc::clone(&tally));
        tokio::spawn(async move {
            let _ = client
                .measure(&flag, &ctx, |variant| async move {
                    let median = latencies.get(&variant).copied().unwrap_or(20.0);
                    let dist =
                        LogNormal::new(median.max(0.001).ln(), 0.5).expect("valid lognormal");
                    let ms = dist.sample(&mut StdRng::seed_from_u64(z_seed));
                    tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                    let failed = roll < rates.get(&variant).copied().unwrap_or(0.01);
                    let mut t = counts.lock().expect("tally poisoned");
                    let entry = t.entry(variant).or_default();
                    entry.0 += 1;
                    entry.1 += u64::from(failed);
                    if failed { Err(()) } else { Ok(()) }
                })
                .await;
        });
        if started.elapsed() >= report_at {
            eprintln!(
                "t={}s sent={sent} by_variant={:?}",
                report_at.as_secs(),
                tally.lock().expect("tally poisoned")
            );
            report_at += Duration::from_secs(1);
        }
    }
    // Let requests in flight finish, then flush everything they measured.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for client in &clients {
        client.flush().await;
        client.close().await;
    }
    eprintln!(
        "done: sent={sent} seed={seed} by_variant={:?}",
        tally.lock().expect("tally poisoned")
    );
    Ok(())
}
