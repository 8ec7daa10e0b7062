//! The bundled traffic generator: SDK instances sending real traffic, each request one
//! measured scope (`Client::scope`) that reads every `--flag` in order, with an error rate and
//! a latency per variant of the first flag and errors for combinations of variants
//! (`--error-when`), so a canary rollout or a release has something to judge; and the team's own
//! metrics recorded in the scope (`--outcome`, `--outcome-when`, `--observe`, `--track`), so a
//! release's gates have something to judge too. The Python and TypeScript SDKs ship the same
//! generator with the same options.
//!
//! ```sh
//! FLAGWIRE_TOKEN=fw_sdk_... cargo run -p flagwire --example traffic -- \
//!   --flag new-checkout --rps 400 --instances 3 --error-rate on=0.05 --latency-ms on=30
//! FLAGWIRE_TOKEN=fw_sdk_... cargo run -p flagwire --example traffic -- \
//!   --flag search --flag ranker --error-when search=on,ranker=on:0.3
//! FLAGWIRE_TOKEN=fw_sdk_... cargo run -p flagwire --example traffic -- \
//!   --flag mem0-reads --outcome mem0.write=0.999 --outcome-when mem0.write:mem0-reads=on:0.97 \
//!   --observe fast-path.ms=120 --track satisfaction=3,4,5
//! ```

use clap::Parser;
use flagwire::{Client, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends measured traffic: every request reads every `--flag` in one scope.
#[derive(Parser, Debug)]
struct Args {
    /// gRPC endpoint of the server.
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    endpoint: String,
    /// An sdk token.
    #[arg(long, env = "FLAGWIRE_TOKEN", hide_env_values = true)]
    token: String,
    /// A flag every request evaluates, in order (repeatable; at least one). Error rates and
    /// latencies by variant are the first flag's.
    #[arg(long, required = true)]
    flag: Vec<String>,
    /// Requests per second, across all instances.
    #[arg(long, default_value_t = 200.0)]
    rps: f64,
    /// Independent SDK clients in this process.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Seconds to run; 0 runs until interrupted.
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Failure probability of a variant of the first flag, `VARIANT=P` (repeatable; others
    /// fail with 0.01).
    #[arg(long = "error-rate", value_parser = pair)]
    error_rate: Vec<(String, f64)>,
    /// Median latency of a variant of the first flag in ms, `VARIANT=MS` (repeatable; others
    /// 20).
    #[arg(long = "latency-ms", value_parser = pair)]
    latency_ms: Vec<(String, f64)>,
    /// Failure probability of requests served all of some variants together,
    /// `FLAG=VARIANT[,FLAG=VARIANT...]:P` (repeatable): when every pair matches what the
    /// request was served it fails with probability P instead of its `--error-rate` (the
    /// largest P of the matching conditions).
    #[arg(long = "error-when", value_parser = Condition::parse)]
    error_when: Vec<Condition>,
    /// One of the team's metrics every request records in its scope, `NAME=P`:
    /// `track_outcome(NAME, ok)`, ok with probability P (repeatable).
    #[arg(long, value_parser = metric_pair)]
    outcome: Vec<(String, f64)>,
    /// The success probability of `--outcome` NAME for requests served all of some variants,
    /// `NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P` (repeatable; the smallest P of the matching
    /// conditions replaces the `--outcome`).
    #[arg(long = "outcome-when", value_parser = OutcomeCondition::parse)]
    outcome_when: Vec<OutcomeCondition>,
    /// `NAME=MEDIAN`: every request observes a lognormal value of NAME around MEDIAN (sigma
    /// 0.5; a latency in ms), in its scope (repeatable).
    #[arg(long, value_parser = metric_pair)]
    observe: Vec<(String, f64)>,
    /// `NAME=V[,V...]`: every request tracks one of the values of NAME, at random, in its
    /// scope (repeatable; a score).
    #[arg(long, value_parser = track_values)]
    track: Vec<(String, Vec<f64>)>,
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

/// A metric name as the SDKs accept it (tests/metrics/README.md): refused here rather than
/// dropped silently by the SDK.
fn metric_name(name: &str) -> Result<String, String> {
    let first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if first && rest && name.len() <= 64 {
        return Ok(name.to_owned());
    }
    Err(format!(
        "{name:?} is not a metric name (lowercase letters, digits, '.', '_', '-', starting \
         with a letter or digit, at most 64)"
    ))
}

fn metric_pair(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=NUMBER")?;
    let v: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    Ok((metric_name(k)?, v))
}

fn track_values(s: &str) -> Result<(String, Vec<f64>), String> {
    let (k, vs) = s.split_once('=').ok_or("expected NAME=VALUE[,VALUE...]")?;
    let values = vs
        .split(',')
        .map(|v| match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(format!("{v:?} is not a finite number")),
        })
        .collect::<Result<_, String>>()?;
    Ok((metric_name(k)?, values))
}

/// An `--outcome-when` condition: the metric, and its success probability when it matches.
#[derive(Debug, Clone)]
struct OutcomeCondition {
    name: String,
    when: Condition,
}

impl OutcomeCondition {
    fn parse(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once(':')
            .ok_or("expected NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P")?;
        Ok(Self {
            name: metric_name(name)?,
            when: Condition::parse(rest)?,
        })
    }
}

/// The team's metrics every request records in its scope, from draws made with its others.
struct Metrics {
    outcome: Vec<(String, f64)>,
    outcome_when: Vec<OutcomeCondition>,
    observe: Vec<(String, f64)>,
    track: Vec<(String, Vec<f64>)>,
}

impl Metrics {
    /// A request's draws: one per metric, in order.
    fn draws(&self, rng: &mut StdRng) -> Vec<f64> {
        (0..self.outcome.len() + self.observe.len() + self.track.len())
            .map(|_| rng.random())
            .collect()
    }

    /// Records them in the scope of `client` (the request's), for what it was served; returns
    /// each event's metric and whether it was a success (only outcomes fail).
    fn record(
        &self,
        client: &Client,
        flags: &[String],
        variants: &[String],
        draws: &[f64],
    ) -> Vec<(String, bool)> {
        let mut events = Vec::with_capacity(draws.len());
        let mut at = draws.iter().copied();
        let mut next = || at.next().expect("a draw per metric");
        for (name, p) in &self.outcome {
            let p = self
                .outcome_when
                .iter()
                .filter(|c| &c.name == name && c.when.matches(flags, variants))
                .map(|c| c.when.p)
                .reduce(f64::min)
                .unwrap_or(*p);
            let ok = next() < p;
            client.track_outcome(name, ok);
            events.push((name.clone(), ok));
        }
        for (name, median) in &self.observe {
            let dist = LogNormal::new(median.max(0.001).ln(), 0.5).expect("valid lognormal");
            // The draw seeds the value: the same for a seed whatever the distribution needs.
            let mut rng = StdRng::seed_from_u64(next().to_bits());
            client.observe(name, dist.sample(&mut rng));
            events.push((name.clone(), true));
        }
        for (name, values) in &self.track {
            let i = ((next() * values.len() as f64) as usize).min(values.len() - 1);
            client.track(name, values[i]);
            events.push((name.clone(), true));
        }
        events
    }
}

/// The last of each name's options (as the other SDKs' generators keep it).
fn last_per_name<T>(options: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut out: Vec<(String, T)> = Vec::new();
    for (name, v) in options {
        out.retain(|(n, _)| n != &name);
        out.push((name, v));
    }
    out
}

/// An `--error-when` condition.
#[derive(Debug, Clone)]
struct Condition {
    served: Vec<(String, String)>,
    p: f64,
}

impl Condition {
    fn parse(s: &str) -> Result<Self, String> {
        let usage = "expected FLAG=VARIANT[,FLAG=VARIANT...]:P";
        let (pairs, p) = s.rsplit_once(':').ok_or(usage)?;
        let p: f64 = p.parse().map_err(|_| format!("{p:?} is not a number"))?;
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("the probability {p} is not in [0, 1]"));
        }
        let served = pairs
            .split(',')
            .map(|pair| match pair.split_once('=') {
                Some((f, v)) if !f.is_empty() && !v.is_empty() => Ok((f.into(), v.into())),
                _ => Err(format!("{pair:?}: {usage}")),
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { served, p })
    }

    /// Whether a request served `variants` (one per `flags`) matches.
    fn matches(&self, flags: &[String], variants: &[String]) -> bool {
        self.served
            .iter()
            .all(|(f, v)| flags.iter().zip(variants).any(|(k, s)| k == f && s == v))
    }
}

/// What one request was served by one flag.
struct Read {
    variant: String,
    cohort: String,
    rollout_id: String,
}

/// Per variant of the first flag, and per `release/cohort`: (requests, failures); per metric:
/// (events, failed outcomes).
#[derive(Default)]
struct Counts {
    by_variant: BTreeMap<String, (u64, u64)>,
    by_cohort: BTreeMap<String, (u64, u64)>,
    by_metric: BTreeMap<String, (u64, u64)>,
}

impl Counts {
    fn add_metrics(&mut self, events: Vec<(String, bool)>) {
        for (name, ok) in events {
            let entry = self.by_metric.entry(name).or_default();
            entry.0 += 1;
            entry.1 += u64::from(!ok);
        }
    }

    fn add(&mut self, reads: &[Read], failed: bool) {
        let count = |map: &mut BTreeMap<String, (u64, u64)>, key: String| {
            let entry = map.entry(key).or_default();
            entry.0 += 1;
            entry.1 += u64::from(failed);
        };
        count(&mut self.by_variant, reads[0].variant.clone());
        // One per release cohort, however many of its flags the request read (as the SDK
        // reports it).
        let mut seen = Vec::new();
        for r in reads.iter().filter(|r| !r.rollout_id.is_empty()) {
            let key = format!("{}/{}", r.rollout_id, r.cohort);
            if matches!(r.cohort.as_str(), "canary" | "control") && !seen.contains(&key) {
                seen.push(key.clone());
                count(&mut self.by_cohort, key);
            }
        }
    }
}

type Tally = Arc<Mutex<Counts>>;

/// What clap cannot check alone: conditions name `--flag`s (and `--outcome`s), numbers are in
/// range.
fn check(args: &Args) -> Result<(), String> {
    let conditions = args.error_when.iter().map(|c| ("--error-when", c));
    let outcomes = args
        .outcome_when
        .iter()
        .map(|c| ("--outcome-when", &c.when));
    for (option, c) in conditions.chain(outcomes) {
        if let Some((f, _)) = c.served.iter().find(|(f, _)| !args.flag.contains(f)) {
            return Err(format!(
                "{option} names {f:?}, which is not one of the --flag options"
            ));
        }
    }
    for c in &args.outcome_when {
        if !args.outcome.iter().any(|(n, _)| n == &c.name) {
            return Err(format!(
                "--outcome-when {0}: no --outcome {0}=P to replace",
                c.name
            ));
        }
    }
    if let Some((name, p)) = args.outcome.iter().find(|(_, p)| !(0.0..=1.0).contains(p)) {
        return Err(format!(
            "--outcome {name}={p}: a probability is between 0 and 1"
        ));
    }
    if let Some((name, m)) = args
        .observe
        .iter()
        .find(|(_, m)| !(*m > 0.0 && m.is_finite()))
    {
        return Err(format!("--observe {name}={m}: the median must be positive"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Err(why) = check(&args) {
        eprintln!("traffic: {why}");
        std::process::exit(2);
    }
    let error_rate: HashMap<_, _> = args.error_rate.iter().cloned().collect();
    let latency_ms: HashMap<_, _> = args.latency_ms.iter().cloned().collect();
    let (flags, conditions) = (
        Arc::new(args.flag.clone()),
        Arc::new(args.error_when.clone()),
    );
    let metrics = Arc::new(Metrics {
        outcome: last_per_name(args.outcome.clone()),
        outcome_when: args.outcome_when.clone(),
        observe: last_per_name(args.observe.clone()),
        track: last_per_name(args.track.clone()),
    });
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
        // The metrics' draws come after, so a seed replays the same requests with or without.
        let draws = metrics.draws(&mut rng);
        let (flags, conditions, metrics) = (
            Arc::clone(&flags),
            Arc::clone(&conditions),
            Arc::clone(&metrics),
        );
        let (rates, latencies, counts) =
            (error_rate.clone(), latency_ms.clone(), Arc::clone(&tally));
        tokio::spawn(async move {
            let _ = client
                .scope(async {
                    let reads: Vec<Read> = flags
                        .iter()
                        .map(|f| {
                            let d = client.value_details(f, &ctx, serde_json::Value::Null);
                            Read {
                                variant: d.variant.unwrap_or_default(),
                                cohort: d.cohort.unwrap_or_default(),
                                rollout_id: d.rollout_id.unwrap_or_default(),
                            }
                        })
                        .collect();
                    let first = &reads[0].variant;
                    let median = latencies.get(first).copied().unwrap_or(20.0);
                    let dist =
                        LogNormal::new(median.max(0.001).ln(), 0.5).expect("valid lognormal");
                    let ms = dist.sample(&mut StdRng::seed_from_u64(z_seed));
                    tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                    let variants: Vec<String> = reads.iter().map(|r| r.variant.clone()).collect();
                    let events = metrics.record(&client, &flags, &variants, &draws);
                    let rate = conditions
                        .iter()
                        .filter(|c| c.matches(&flags, &variants))
                        .map(|c| c.p)
                        .reduce(f64::max)
                        .unwrap_or_else(|| rates.get(first).copied().unwrap_or(0.01));
                    let failed = roll < rate;
                    let mut counts = counts.lock().expect("tally poisoned");
                    counts.add(&reads, failed);
                    counts.add_metrics(events);
                    if failed { Err(()) } else { Ok(()) }
                })
                .await;
        });
        if started.elapsed() >= report_at {
            let counts = tally.lock().expect("tally poisoned");
            let t = report_at.as_secs();
            eprintln!("t={t}s sent={sent} by_variant={:?}", counts.by_variant);
            if !counts.by_cohort.is_empty() {
                eprintln!("t={t}s by_cohort={:?}", counts.by_cohort);
            }
            report_at += Duration::from_secs(1);
        }
    }
    // Let requests in flight finish, then flush everything they measured.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for client in &clients {
        client.flush().await;
        client.close().await;
    }
    let counts = tally.lock().expect("tally poisoned");
    eprintln!(
        "done: sent={sent} seed={seed} by_variant={:?}",
        counts.by_variant
    );
    if !counts.by_cohort.is_empty() {
        eprintln!("by_cohort={:?}", counts.by_cohort);
    }
    for (name, (events, failed)) in &counts.by_metric {
        let outcome = metrics.outcome.iter().any(|(n, _)| n == name);
        let failed = if outcome {
            format!(" failed={failed}")
        } else {
            String::new()
        };
        eprintln!("  metric {name}: events={events}{failed}");
    }
    Ok(())
}
