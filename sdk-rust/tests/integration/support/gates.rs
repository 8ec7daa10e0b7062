//! The world of the gates end-to-end test (`tests/gates_e2e.rs`): the seeds' release files as
//! the CLI defines them, their time-compressed copies, one environment per run, and the traffic
//! of the mem0 service (requests that write and read mem0, take the fast path and get rated)
//! from the Rust SDK in process and from the Python and TypeScript generators.
#![allow(dead_code)]

use super::binary::{Binary, auth, bool_flag};
use flagwire::{Client, Context};
use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::grpc::release_service_client::ReleaseServiceClient;
use flagwire_proto::v1::*;
use prost_types::{Duration as PbDuration, Value, value};
use rand_distr::{Distribution, LogNormal};
use std::time::Duration;
use tonic::transport::Channel;

/// The mem0 epic's flags (deploy/releases/mem0-epic.yaml).
pub const MEM0: &[&str] = &["mem0-shadow", "fast-path", "mem0-reads"];
/// The skillmeat plan's flag (deploy/releases/skillmeat-memory.yaml).
pub const SKILLMEAT: &[&str] = &["skillmeat-memory-context"];
/// Where the files define their releases as written (drafts, never started).
pub const FILES: &str = "production";

/// Outcomes per cohort a compressed stage needs (the files ask 100 to 1000), and values an
/// absolute gate needs (100 by default): what a few seconds of this traffic give.
pub const MIN_OUTCOMES: u64 = 50;
/// See [`MIN_OUTCOMES`].
pub const GATE_MIN_COUNT: u64 = 50;

/// The healthy mem0 service: write and read success, fast-path hits, its latency (a lognormal
/// median, ms), satisfaction scores and the requests' own error rate.
pub const WRITE_OK: f64 = 0.999;
/// mem0 write success of the faulty run's requests served mem0 reads (its canary from stage
/// index 2 on).
pub const FAULTY_WRITE_OK: f64 = 0.97;
const READ_OK: f64 = 0.99;
const HIT: f64 = 0.85;
const FAST_PATH_MS: f64 = 120.0;
const SCORES: [f64; 3] = [3.0, 4.0, 5.0];
/// Requests that fail; the skillmeat plan allows 0.1 %, so its traffic has none.
const MEM0_ERRORS: f64 = 0.005;

/// One run's environment: its key, the flags its requests read, and whether mem0 writes of the
/// requests served mem0 reads fall to [`FAULTY_WRITE_OK`]. A run with mem0's flags records the
/// mem0 metrics.
#[derive(Clone, Copy)]
pub struct Run {
    /// The environment.
    pub env: &'static str,
    /// The flags each request reads.
    pub flags: &'static [&'static str],
    /// Writes fail for mem0 readers.
    pub faulty: bool,
}

impl Run {
    fn mem0(&self) -> bool {
        self.flags == MEM0
    }

    /// The generators' options for this run's traffic (Python's and TypeScript's are alike).
    pub fn generator_args(&self, url: &str) -> Vec<String> {
        let mut args: Vec<String> = ["--endpoint", url, "--rps", "40", "--instances", "1"]
            .map(String::from)
            .into();
        args.extend(["--flush-ms", "250", "--duration", "120"].map(String::from));
        for flag in self.flags {
            args.extend(["--flag".into(), flag.to_string()]);
        }
        let errors = if self.mem0() { MEM0_ERRORS } else { 0.0 };
        for variant in ["on", "off"] {
            args.extend(["--error-rate".into(), format!("{variant}={errors}")]);
        }
        if self.mem0() {
            let mut metric = |option: &str, value: String| {
                args.extend([option.to_string(), value]);
            };
            metric("--outcome", format!("mem0.write={WRITE_OK}"));
            if self.faulty {
                metric(
                    "--outcome-when",
                    format!("mem0.write:mem0-reads=on:{FAULTY_WRITE_OK}"),
                );
            }
            metric("--outcome", format!("mem0.read={READ_OK}"));
            metric("--outcome", format!("fast-path.hit={HIT}"));
            metric("--observe", format!("fast-path.ms={FAST_PATH_MS}"));
            metric("--track", "satisfaction=3,4,5".into());
        }
        args
    }

    /// Records what one request of the mem0 service measured, in the scope of `client`, for
    /// the variants it was `served` (one per flag of the run).
    fn record(&self, client: &Client, served: &[String]) {
        let reads = served[2] == "on";
        let write_ok = if self.faulty && reads {
            FAULTY_WRITE_OK
        } else {
            WRITE_OK
        };
        let chance = |p: f64| rand::random::<f64>() < p;
        client.track_outcome("mem0.write", chance(write_ok));
        client.track_outcome("mem0.read", chance(READ_OK));
        client.track_outcome("fast-path.hit", chance(HIT));
        let latency = LogNormal::new(FAST_PATH_MS.ln(), 0.5).unwrap();
        client.observe("fast-path.ms", latency.sample(&mut rand::rng()));
        client.track("satisfaction", SCORES[rand::random_range(0..SCORES.len())]);
    }
}

/// Rust traffic of `run`: `rps` requests per second over `clients`, each reading the run's
/// flags in one scope, sleeping 5 to 14 ms, recording the mem0 metrics (a mem0 run) and
/// failing as often as the generators' requests do.
pub fn rust_traffic(run: Run, clients: Vec<Client>, rps: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
        for i in 0u64.. {
            tick.tick().await;
            let client = clients[(i as usize) % clients.len()].clone();
            let ctx = Context::new(format!("user-{}", rand::random_range(0..100_000)));
            tokio::spawn(async move {
                let scoped = client.clone();
                let _ = client
                    .scope(async move {
                        let served: Vec<String> = run
                            .flags
                            .iter()
                            .map(|k| {
                                let d = scoped.value_details(k, &ctx, serde_json::Value::Null);
                                d.variant.unwrap_or_default()
                            })
                            .collect();
                        tokio::time::sleep(Duration::from_millis(5 + i % 10)).await;
                        if run.mem0() {
                            run.record(&scoped, &served);
                        }
                        let errors = if run.mem0() { MEM0_ERRORS } else { 0.0 };
                        if rand::random::<f64>() < errors {
                            Err(())
                        } else {
                            Ok(())
                        }
                    })
                    .await;
            });
        }
    })
}

fn seconds(s: i64) -> Option<PbDuration> {
    Some(PbDuration {
        seconds: s,
        nanos: 0,
    })
}

/// `file` (a release as its file defines it) for environment `env` on compressed time: stage
/// `i` lasts at least `min_seconds[i]` (its maximum, if any, as many times that as the file
/// says), windows of 1 s, and the minimum outcomes and absolute gates' values of
/// [`MIN_OUTCOMES`] and [`GATE_MIN_COUNT`]. Flags, audiences, variants, approvals, guardrails
/// and the gates' metrics, queries and thresholds stay as written.
pub fn compress(file: &Release, env: &str, min_seconds: &[i64]) -> Release {
    let few = |gates: &mut Vec<Gate>| {
        for g in gates {
            if let Some(gate::Kind::Absolute(a)) = &mut g.kind {
                a.min_count = GATE_MIN_COUNT;
            }
        }
    };
    let mut stages = file.stages.clone();
    assert_eq!(
        stages.len(),
        min_seconds.len(),
        "{}: a minimum per stage",
        file.name
    );
    for (s, &min) in stages.iter_mut().zip(min_seconds) {
        let was = s.min_duration.map_or(1, |d| d.seconds.max(1));
        if let Some(max) = &mut s.max_duration {
            max.seconds = min * max.seconds / was;
        }
        s.min_duration = seconds(min);
        if s.min_outcomes_per_cohort > 0 {
            s.min_outcomes_per_cohort = MIN_OUTCOMES;
        }
        few(&mut s.gates);
    }
    let mut gates = file.gates.clone();
    few(&mut gates);
    let policy = RolloutPolicy {
        window: seconds(1),
        ..file.policy.clone().unwrap_or_default()
    };
    Release {
        name: format!("{} (compressed, {env})", file.name),
        description: file.description.clone(),
        environment: env.into(),
        flags: file.flags.clone(),
        stages,
        guardrails: file.guardrails.clone(),
        policy: Some(policy),
        gates,
        ..Default::default()
    }
}

/// The world: environment [`FILES`] with every flag, the `internal` segment (the seeds'
/// alice and bob) and the metrics of deploy/releases/metrics.yaml (`flagwire import`), where
/// `flagwire release create -f` defines mem0-epic.yaml and skillmeat-memory.yaml as written;
/// then each run's environment with its flags, the metrics and, for skillmeat, an `internal`
/// segment of a tenth of the users (keys ending in 7). Returns the two files' releases and an
/// sdk token per run.
pub async fn setup(server: &Binary, runs: &[Run]) -> (Release, Release, Vec<String>) {
    let channel = Channel::from_shared(server.url.clone()).unwrap();
    let mut admin = AdminServiceClient::new(channel.connect().await.unwrap());
    let envs: Vec<&str> = std::iter::once(FILES)
        .chain(runs.iter().map(|r| r.env))
        .collect();
    for key in &envs {
        let environment = Some(Environment {
            key: key.to_string(),
            ..Default::default()
        });
        let request = CreateEnvironmentRequest {
            environment,
            reason: String::new(),
        };
        admin.create_environment(auth(request)).await.unwrap();
    }
    for (keys, in_runs) in [(MEM0, true), (SKILLMEAT, false)] {
        for key in keys {
            let mut flag = bool_flag(key, FILES, "off");
            let config = flag.environments[FILES].clone();
            for r in runs.iter().filter(|r| (r.flags == MEM0) == in_runs) {
                flag.environments.insert(r.env.into(), config.clone());
            }
            let request = CreateFlagRequest {
                flag: Some(flag),
                reason: String::new(),
            };
            admin.create_flag(auth(request)).await.unwrap();
        }
    }
    let internal = |env: &str, included: &[&str], rules| Segment {
        key: "internal".into(),
        environment: env.into(),
        included: included.iter().map(|s| s.to_string()).collect(),
        rules,
        ..Default::default()
    };
    let mut segments = vec![internal(FILES, &["alice", "bob"], vec![])];
    for r in runs.iter().filter(|r| r.flags == SKILLMEAT) {
        let ends_in_7 = Clause {
            attribute: "targetingKey".into(),
            operator: Operator::EndsWith as i32,
            values: vec![Value {
                kind: Some(value::Kind::StringValue("7".into())),
            }],
            negate: false,
        };
        let rule = SegmentRule {
            clauses: vec![ends_in_7],
        };
        segments.push(internal(r.env, &[], vec![rule]));
    }
    for segment in segments {
        let request = CreateSegmentRequest {
            segment: Some(segment),
            reason: String::new(),
        };
        admin.create_segment(auth(request)).await.unwrap();
    }

    let releases_dir = format!("{}/../deploy/releases", env!("CARGO_MANIFEST_DIR"));
    server.cli(&["import", &format!("{releases_dir}/metrics.yaml")]);
    let request = ListMetricsRequest {
        environment: FILES.into(),
    };
    let defined = admin.list_metrics(auth(request)).await.unwrap();
    for r in runs {
        for m in &defined.get_ref().metrics {
            let metric = Some(MetricDefinition {
                environment: r.env.into(),
                version: 0,
                ..m.clone()
            });
            let request = DefineMetricRequest {
                metric,
                ..Default::default()
            };
            admin.define_metric(auth(request)).await.unwrap();
        }
    }
    for file in ["mem0-epic.yaml", "skillmeat-memory.yaml"] {
        server.cli(&["release", "create", "-f", &format!("{releases_dir}/{file}")]);
    }
    let mut client = ReleaseServiceClient::new(channel.connect().await.unwrap());
    let request = ListReleasesRequest {
        environment: FILES.into(),
        flag_key: String::new(),
    };
    let listed = client.list_releases(auth(request)).await.unwrap();
    let named = |name: &str| {
        let found = listed.get_ref().releases.iter().find(|r| r.name == name);
        found.unwrap_or_else(|| panic!("release {name:?}")).clone()
    };
    let (mem0, skillmeat) = (named("mem0 epic"), named("skillmeat memory context"));

    let mut tokens = Vec::new();
    for r in runs {
        let request = CreateApiTokenRequest {
            name: format!("traffic-{}", r.env),
            role: Role::Sdk as i32,
            environment: r.env.into(),
            reason: String::new(),
        };
        let created = admin.create_api_token(auth(request)).await.unwrap();
        tokens.push(created.into_inner().secret);
    }
    (mem0, skillmeat, tokens)
}
