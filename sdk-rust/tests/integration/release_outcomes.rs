//! Release outcomes end to end on the real server binary (`FLAGWIRE_BIN` or this profile's):
//! a three-flag release at a 25 % stage (25 % canary, 25 % control, 50 % neither), request
//! scopes that each read all three flags, and the release's closed windows as `GetRelease`
//! shows them. Each cohort counts one outcome per scope (with the scope's errors), and its size
//! one unit per scope, not one per flag read. The scopes come from this test, then
//! from the traffic generator (`examples/traffic.rs`, this profile's build of it).

use flagwire::{Client, Context};
use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::grpc::release_service_client::ReleaseServiceClient;
use flagwire_proto::v1::*;
use prost_types::Duration as PbDuration;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tonic::transport::Channel;

use crate::support::binary;
use binary::{auth, bool_flag, start};

const FLAGS: [&str; 3] = ["search", "ranker", "snippets"];
const SCOPES: usize = 200;
const DEADLINE: Duration = Duration::from_secs(20);

fn seconds(s: i64) -> Option<PbDuration> {
    Some(PbDuration {
        seconds: s,
        nanos: 0,
    })
}

/// Environment `prod` with the three flags serving "off", and an sdk token for it.
async fn setup(admin: &mut AdminServiceClient<Channel>) -> String {
    let environment = Environment {
        key: "prod".into(),
        ..Default::default()
    };
    admin
        .create_environment(auth(CreateEnvironmentRequest {
            environment: Some(environment),
            reason: String::new(),
        }))
        .await
        .unwrap();
    for key in FLAGS {
        let flag = Some(bool_flag(key, "prod", "off"));
        let reason = String::new();
        let request = CreateFlagRequest { flag, reason };
        admin.create_flag(auth(request)).await.unwrap();
    }
    let request = CreateApiTokenRequest {
        name: "svc".into(),
        role: Role::Sdk as i32,
        environment: "prod".into(),
        reason: String::new(),
    };
    admin
        .create_api_token(auth(request))
        .await
        .unwrap()
        .into_inner()
        .secret
}

/// Creates and starts the release; it holds at its first stage for the whole test (an hour's
/// minimum, no relative tests that chance could trip).
async fn release(releases: &mut ReleaseServiceClient<Channel>) -> String {
    let stage = Stage {
        name: "a quarter".into(),
        audience: Some(Audience {
            kind: Some(audience::Kind::BasisPoints(2_500)),
        }),
        variants: FLAGS.iter().map(|f| (f.to_string(), "on".into())).collect(),
        min_duration: seconds(3_600),
        min_outcomes_per_cohort: 1_000_000,
        ..Default::default()
    };
    let release = Release {
        name: "search revamp".into(),
        environment: "prod".into(),
        flags: FLAGS
            .iter()
            .map(|f| ReleaseFlag {
                flag_key: f.to_string(),
                baseline_variant: "off".into(),
            })
            .collect(),
        stages: vec![stage],
        guardrails: Some(Guardrails {
            relative_error_rate: false,
            relative_latency_quantiles: Vec::new(),
            ..Default::default()
        }),
        policy: Some(RolloutPolicy {
            window: seconds(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let request = CreateReleaseRequest {
        release: Some(release),
    };
    let created = releases.create_release(auth(request)).await.unwrap();
    let id = created.into_inner().release.unwrap().id;
    let request = StartReleaseRequest {
        id: id.clone(),
        reason: "test".into(),
    };
    releases.start_release(auth(request)).await.unwrap();
    id
}

async fn get(releases: &mut ReleaseServiceClient<Channel>, id: &str) -> Release {
    let request = GetReleaseRequest {
        id: id.into(),
        window_limit: 1_000,
    };
    let response = releases.get_release(auth(request)).await.unwrap();
    response.into_inner().release.unwrap()
}

/// Per cohort: (outcomes, errors, evaluations) over every closed window.
fn totals(r: &Release) -> BTreeMap<String, (u64, u64, u64)> {
    let mut out = BTreeMap::new();
    for s in r.windows.iter().flat_map(|w| &w.series) {
        let t: &mut (u64, u64, u64) = out.entry(s.cohort.clone()).or_default();
        t.0 += s.successes + s.errors;
        t.1 += s.errors;
        t.2 += s.evaluations.iter().map(|e| e.count).sum::<u64>();
    }
    out
}

/// Polls the release until its closed windows hold `outcomes` canary and control outcomes
/// (or more), and returns their totals; the release must keep running meanwhile.
async fn windows_holding(
    releases: &mut ReleaseServiceClient<Channel>,
    id: &str,
    outcomes: u64,
) -> BTreeMap<String, (u64, u64, u64)> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let r = get(releases, id).await;
        assert_eq!(
            ReleaseState::try_from(r.state),
            Ok(ReleaseState::Running),
            "{:?}",
            r.latest_decision
        );
        let t = totals(&r);
        let seen = |c: &str| t.get(c).map_or(0, |t| t.0);
        if seen("canary") + seen("control") >= outcomes {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the windows hold {t:?}, expected {outcomes} outcomes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(url: &str) -> (AdminServiceClient<Channel>, ReleaseServiceClient<Channel>) {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (
        AdminServiceClient::new(channel.clone()),
        ReleaseServiceClient::new(channel),
    )
}

#[tokio::test]
async fn a_release_cohort_counts_one_outcome_per_scope_not_per_flag() {
    let server = start();
    let (mut admin, mut releases) = connect(&server.url).await;
    let token = setup(&mut admin).await;
    let client = Client::builder(server.url.clone(), token)
        .metrics_flush_interval(Duration::from_secs(3_600))
        .build()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let id = release(&mut releases).await;

    // Wait for the release's rewrite to reach the client (without reading a flag, which would
    // count an evaluation).
    let request = GetEnvironmentRequest { key: "prod".into() };
    let env = admin.get_environment(auth(request)).await.unwrap();
    let revision = env.into_inner().environment.unwrap().revision;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while client.revision() < revision {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never applied r{revision}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every scope reads the three flags; one in five fails. Expected per cohort: (scopes,
    // failed scopes), from what the scope itself was served.
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for i in 0..SCOPES {
        let ctx = Context::new(format!("user-{i}"));
        let fails = i % 5 == 0;
        let cohort = client
            .scope(async {
                let mut cohorts = Vec::new();
                for flag in FLAGS {
                    let d = client.bool_details(flag, &ctx, false);
                    assert_eq!(d.rollout_id.as_deref(), Some(id.as_str()), "{flag}");
                    cohorts.push(d.cohort.unwrap_or_default());
                }
                assert!(cohorts.iter().all(|c| c == &cohorts[0]), "{cohorts:?}");
                let cohort = cohorts.swap_remove(0);
                if fails { Err(cohort) } else { Ok(cohort) }
            })
            .await
            .unwrap_or_else(|cohort| cohort);
        let e = expected.entry(cohort).or_default();
        e.0 += 1;
        e.1 += u64::from(fails);
    }
    let (canary, control) = (expected["canary"], expected["control"]);
    assert!(canary.1 > 0 && control.1 > 0, "{expected:?}");
    assert!(expected[""].0 > 0, "some units are in neither cohort");
    assert!(
        client.flush().await,
        "the report with cohort outcomes was accepted"
    );

    // The report lands in the open window; poll until the windows that closed hold it all.
    let seen = windows_holding(&mut releases, &id, canary.0 + control.0).await;
    for (cohort, (scopes, failed)) in [("canary", canary), ("control", control)] {
        assert_eq!(
            seen[cohort],
            (scopes, failed, scopes),
            "{cohort}: outcomes, errors and the cohort's size are per scope, not per flag read"
        );
    }
    client.close().await;
}

/// The traffic generator of this profile: `cargo test` builds the examples with the tests.
fn traffic_example() -> PathBuf {
    // target/<profile>/deps/<test> -> target/<profile>/examples/traffic
    let exe = std::env::current_exe().unwrap();
    let path = exe.ancestors().nth(2).unwrap().join("examples/traffic");
    assert!(
        path.exists(),
        "no traffic generator at {}: build it (cargo build -p flagwire --example traffic)",
        path.display()
    );
    path
}

/// `(requests, failures)` of `key` in the generator's `by_cohort={...}` summary line.
fn summary_count(log: &str, key: &str) -> (u64, u64) {
    let line = log
        .lines()
        .find(|l| l.starts_with("by_cohort="))
        .unwrap_or_else(|| panic!("no by_cohort summary in:\n{log}"));
    let at = line.find(&format!("{key:?}: (")).map(|i| i + key.len() + 5);
    let numbers = at.map(|i| &line[i..]).and_then(|s| s.split_once(')'));
    let (requests, failures) = numbers
        .and_then(|(n, _)| n.split_once(", "))
        .unwrap_or_else(|| panic!("no {key:?} in {line}"));
    (requests.parse().unwrap(), failures.parse().unwrap())
}

#[tokio::test]
async fn the_traffic_generator_reads_every_flag_in_one_scope_and_errors_when_told() {
    let server = start();
    let (mut admin, mut releases) = connect(&server.url).await;
    let token = setup(&mut admin).await;
    let id = release(&mut releases).await;
    // Requests served the new search and the new ranker together all fail (the largest P of
    // the two conditions they match): the canary cohort, served every flag's "on". The old
    // search would fail always, but requests served the old snippets never do (a matching
    // condition wins over the rate of the first flag's variant): the control, served "off".
    let generator = tokio::process::Command::new(traffic_example())
        .args(["--endpoint", &server.url, "--rps", "200", "--duration", "2"])
        .args(FLAGS.iter().flat_map(|f| ["--flag", f]))
        .args(["--error-rate", "on=0", "--error-rate", "off=1"])
        .args(["--latency-ms", "on=1", "--latency-ms", "off=1"])
        .args(["--error-when", "search=on:0.2"])
        .args(["--error-when", "search=on,ranker=on:1"])
        .args(["--error-when", "snippets=off:0"])
        .args(["--flush-ms", "250", "--seed", "13"])
        .kill_on_drop(true)
        .env("FLAGWIRE_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let output = tokio::time::timeout(DEADLINE, generator)
        .await
        .expect("the generator ran for longer than its --duration")
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("done: sent="), "{log}");
    let canary = summary_count(&log, &format!("{id}/canary"));
    let control = summary_count(&log, &format!("{id}/control"));
    assert!(canary.0 > 0 && control.0 > 0, "{log}");
    assert_eq!(canary.1, canary.0, "every canary request failed: {log}");
    assert_eq!(control.1, 0, "no control request failed: {log}");

    let seen = windows_holding(&mut releases, &id, canary.0 + control.0).await;
    assert_eq!(seen["canary"], (canary.0, canary.1, canary.0));
    assert_eq!(seen["control"], (control.0, 0, control.0));
}
