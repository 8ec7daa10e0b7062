//! Gates end to end, on the real server binary with a real Prometheus (scraping an exporter
//! this test serves) and real traffic from SDK instances of every language, each request one
//! scope that reads a release's flags and records the team's own metrics: the seeds' release
//! files (`deploy/releases/`), defined as written with `flagwire release create -f` and run as
//! time-compressed copies (stages of seconds, windows of 1 s, minimums this traffic meets; the
//! same flags, stages, approvals, guardrails and gates), three at once, each in its own
//! environment:
//! - `healthy`: the mem0 epic completes its four stages, a person approving the two that ask,
//!   every gate holding on the SDKs' metrics;
//! - `faulty`: the mem0 epic again, but mem0 writes of requests served mem0 reads succeed 97 %
//!   of the time while errors and latency stay normal: at stage 3 (index 2) the `mem0-writes`
//!   gate rolls it back on its own (GATE_BREACHED, no built-in test flagged), and every
//!   instance acknowledges. Nobody approves its last stage, so the judge, which keeps judging
//!   a stage while the next awaits approval, decides when it has seen enough writes;
//! - `skillmeat`: the skillmeat plan's Prometheus gates hold it (GATE_UNAVAILABLE) through a
//!   Prometheus outage past its stage's minimums, it goes on once Prometheus is back, and it
//!   rolls back (GATE_BREACHED on `memory`) when the canary's memory passes 512 MB.
//!
//! Prometheus demands basic auth, and the server is given its credentials by
//! `--prometheus-basic-auth-user` and `--prometheus-password-file`.
//!
//! Rust instances run in this process. Python and TypeScript instances join when
//! `FLAGWIRE_E2E_PYTHON_TRAFFIC` / `FLAGWIRE_E2E_TS_TRAFFIC` name their traffic generator's
//! command line (`scripts/test` sets both); the binary is `FLAGWIRE_BIN` or this profile's,
//! Prometheus `PROMETHEUS_BIN` or `prometheus`.
//!
//! Ignored by a plain `cargo test`: it takes half a minute of real traffic, so `scripts/test`
//! runs it once, at the end (`cargo test -p flagwire --test integration -- --ignored
//! gates_e2e::`).

use crate::support::binary;
use crate::support::e2e;
use crate::support::gates;
use crate::support::prometheus;

use binary::auth;
use e2e::{Children, eventually, generator, get_release, progress, state};
use flagwire::Client;
use flagwire_proto::grpc::release_service_client::ReleaseServiceClient;
use flagwire_proto::v1::*;
use gates::{MEM0, MIN_OUTCOMES, Run, SKILLMEAT, compress, rust_traffic};
use prometheus::{Exporter, Prometheus};
use std::time::Duration;
use tonic::transport::Channel;

type Releases = ReleaseServiceClient<Channel>;

const HEALTHY: Run = Run {
    env: "healthy",
    flags: MEM0,
    faulty: false,
};
const FAULTY: Run = Run {
    env: "faulty",
    flags: MEM0,
    faulty: true,
};
const SKILLMEAT_RUN: Run = Run {
    env: "skillmeat",
    flags: SKILLMEAT,
    faulty: false,
};
const MB: f64 = 1024.0 * 1024.0;
/// The skillmeat canary's memory series, as its `memory` gate queries it.
const CANARY_MEMORY: &str = r#"container_memory_usage_bytes{cohort="canary"}"#;
/// The compressed skillmeat plan's first stage: the outage outlasts it.
const SKILLMEAT_STAGE_0: i64 = 4;

/// The skillmeat service as Prometheus sees it, both cohorts: 100 requests per scrape, none
/// failing, 95 % under 100 ms; 300 MB; a quarter of a core.
fn skillmeat_exporter(exporter: &Exporter) {
    for cohort in ["canary", "control"] {
        let at = |name: &str, more: &str| format!("{name}{{cohort=\"{cohort}\"{more}}}");
        exporter.grow(&at("skillmeat_api_requests_total", ""), 100.0);
        exporter.grow(&at("skillmeat_api_errors_total", ""), 0.0);
        let bucket = "skillmeat_api_request_duration_seconds_bucket";
        for (le, n) in [
            ("0.1", 95.0),
            ("0.25", 99.0),
            ("0.5", 100.0),
            ("+Inf", 100.0),
        ] {
            exporter.grow(&at(bucket, &format!(",le=\"{le}\"")), n);
        }
        exporter.set(&at("container_memory_usage_bytes", ""), 300.0 * MB);
        exporter.grow(&at("container_cpu_usage_seconds_total", ""), 0.05);
    }
}

/// Creates and starts `r`.
async fn launch(client: &mut Releases, r: Release) -> String {
    let request = CreateReleaseRequest { release: Some(r) };
    let created = client.create_release(auth(request)).await.unwrap();
    let id = created.into_inner().release.unwrap().id;
    let start = StartReleaseRequest {
        id: id.clone(),
        reason: "e2e".into(),
    };
    client.start_release(auth(start)).await.unwrap();
    id
}

/// Approves the stage `r` awaits, as a person who has done its checklist.
async fn approve(client: &mut Releases, r: &Release) -> Release {
    let request = ApproveStageRequest {
        id: r.id.clone(),
        stage: r.approval_stage,
        reason: "checklist done".into(),
    };
    let approved = client.approve_stage(auth(request)).await.unwrap();
    approved.into_inner().release.unwrap()
}

/// Waits until release `id` ends, approving the stages up to `approve_up_to` that await it.
async fn drive(mut client: Releases, id: &str, approve_up_to: u32) -> Release {
    let what = format!("release {id} to end");
    eventually(Duration::from_secs(60), &what, async || {
        let r = get_release(&mut client, id, false).await;
        match state(&r) {
            ReleaseState::Completed | ReleaseState::RolledBack => return Ok(r),
            ReleaseState::AwaitingApproval if r.approval_stage <= approve_up_to => {
                approve(&mut client, &r).await;
            }
            _ => {}
        }
        Err(progress(&r))
    })
    .await
}

/// The gate `name` of decision `d`.
fn gate<'a>(d: &'a Decision, name: &str) -> &'a GateResult {
    let found = d.gates.iter().find(|g| g.name == name);
    found.unwrap_or_else(|| panic!("no gate {name:?} in {d:#?}"))
}

/// Whether a gate was checked on enough values and kept its threshold (a gate with too few
/// values passes too, unchecked).
fn kept(g: &GateResult) -> bool {
    g.checked && g.passed
}

/// The healthy mem0 epic: it completes, a person approving stages 2 and 3, and each stage
/// moved on with every gate of the stage checked on the SDKs' metrics and kept.
async fn healthy(client: Releases, id: String) {
    let r = drive(client, &id, 3).await;
    assert_eq!(state(&r), ReleaseState::Completed, "{:#?}", r.decisions);
    let approved: Vec<u32> = r.approvals.iter().map(|a| a.stage).collect();
    assert_eq!(approved, [2, 3], "the stages that require approval");
    let judge = |d: &&Decision| d.actor == "judge";
    let promoted: Vec<u32> = r
        .decisions
        .iter()
        .filter(judge)
        .filter(|d| d.kind == DecisionKind::Promote as i32)
        .map(|d| d.step)
        .collect();
    assert_eq!(promoted, [0, 3], "stages 1 and 2 waited for a person");
    let fast_path = ["fast-path-p50", "fast-path-p95", "fast-path-hits"];
    let gates_of = [
        vec!["mem0-writes"],
        [&fast_path[..], &["mem0-writes"]].concat(),
        [&fast_path[..], &["mem0-reads", "mem0-writes"]].concat(),
        [&fast_path[..], &["mem0-reads", "mem0-writes"]].concat(),
    ];
    for (step, names) in gates_of.iter().enumerate() {
        let last = r
            .decisions
            .iter()
            .filter(judge)
            .rfind(|d| d.step == step as u32);
        let last = last.unwrap_or_else(|| panic!("no decision at stage {step}"));
        for name in names {
            let g = gate(last, name);
            assert!(kept(g), "stage {step} moved on with {name} kept: {g:?}");
        }
    }
}

/// The faulty mem0 epic: rolled back by the judge at stage index 2 on the mem0-writes gate,
/// with errors and latency as healthy as control's; every instance serves the baselines.
async fn faulty(mut client: Releases, id: String, instances: u32) {
    let r = drive(client.clone(), &id, 2).await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:#?}", r.decisions);
    let d = r.decisions.last().unwrap();
    assert_eq!(
        (d.actor.as_str(), d.reason_code.as_str(), d.step),
        ("judge", "GATE_BREACHED", 2),
        "{d:#?}"
    );
    assert!(d.detail.contains("mem0-writes"), "{}", d.detail);
    let writes = gate(d, "mem0-writes");
    assert!(!writes.passed && writes.value < 0.99, "{writes:?}");
    // A breached gate decides before the relative tests run: they are in the judge's earlier
    // decisions at this stage, and none of them ever flagged a regression.
    let judged = || r.decisions.iter().filter(|d| d.actor == "judge");
    let tests: Vec<&TestResult> = judged().flat_map(|d| &d.tests).collect();
    assert!(
        tests.iter().all(|t| !t.flagged),
        "errors and latency are as healthy as control's: {tests:#?}"
    );
    let at_2: Vec<&str> = judged()
        .filter(|d| d.step == 2)
        .flat_map(|d| d.tests.iter().map(|t| t.name.as_str()))
        .collect();
    // (p99 is tested once control has 1,000 latencies, which a fast rollback may not reach.)
    for name in ["error_rate", "latency_p50", "latency_p95"] {
        assert!(at_2.contains(&name), "{name} tested at stage 2: {at_2:?}");
    }
    let approved: Vec<u32> = r.approvals.iter().map(|a| a.stage).collect();
    assert_eq!(approved, [2], "stage 2 was approved, then judged");
    eventually(
        Duration::from_secs(15),
        "every instance to acknowledge",
        async || {
            let r = get_release(&mut client, &id, false).await;
            let ack = r.acknowledgement.clone().unwrap();
            assert_eq!(ack.revision, r.final_revision);
            if ack.connected >= instances && ack.acknowledged == ack.connected {
                return Ok(());
            }
            Err(format!("{ack:?}, expected {instances} instances"))
        },
    )
    .await;
}

/// The skillmeat plan: held through a Prometheus outage past its first stage's minimums, on
/// once Prometheus is back, rolled back when the canary's memory passes 512 MB at stage 1.
async fn skillmeat(
    mut client: Releases,
    id: String,
    prometheus: &mut Prometheus,
    exporter: &Exporter,
) {
    let limit = Duration::from_secs(30);
    // Prometheus answers the first window's gates; then it goes away.
    let first = eventually(limit, "a first decision on the memory gate", async || {
        let r = get_release(&mut client, &id, false).await;
        let d = r.latest_decision.clone().ok_or(progress(&r))?;
        let memory = d
            .gates
            .iter()
            .find(|g| g.name == "memory")
            .ok_or(progress(&r))?;
        Ok(memory.clone())
    })
    .await;
    prometheus.stop();
    assert_eq!((first.value, first.passed), (300.0 * MB, true), "{first:?}");

    let held = eventually(limit, "an outage past the stage's minimums", async || {
        let r = get_release(&mut client, &id, false).await;
        assert_eq!(
            (state(&r), r.current_stage),
            (ReleaseState::Running, 0),
            "no promotion without Prometheus: {:#?}",
            r.decisions
        );
        let d = r.latest_decision.clone().unwrap();
        let at = |t: Option<prost_types::Timestamp>| t.unwrap().seconds as f64;
        let elapsed = at(d.time) - at(r.stage_start_time);
        let canary = d.cohorts.iter().find(|c| c.cohort == "canary");
        let outcomes = canary.map_or(0, |c| c.n);
        if d.reason_code == "GATE_UNAVAILABLE"
            && elapsed >= (SKILLMEAT_STAGE_0 + 2) as f64
            && outcomes >= MIN_OUTCOMES
        {
            return Ok(d);
        }
        Err(format!(
            "{elapsed} s, {outcomes} outcomes: {}",
            progress(&r)
        ))
    })
    .await;
    assert_eq!(held.kind, DecisionKind::Hold as i32, "{held:#?}");
    let memory = gate(&held, "memory");
    assert!(
        !memory.passed,
        "an unanswered gate does not pass: {memory:?}"
    );

    prometheus.restart().await;
    let on = eventually(limit, "the release to go on", async || {
        let r = get_release(&mut client, &id, false).await;
        match state(&r) {
            ReleaseState::AwaitingApproval => Ok(r),
            _ => Err(progress(&r)),
        }
    })
    .await;
    assert_eq!((on.current_stage, on.approval_stage), (0, 1));
    approve(&mut client, &on).await;
    exporter.set(CANARY_MEMORY, 600.0 * MB);

    let r = eventually(limit, "the release to roll back", async || {
        let r = get_release(&mut client, &id, false).await;
        match state(&r) {
            ReleaseState::RolledBack | ReleaseState::Completed => Ok(r),
            _ => Err(progress(&r)),
        }
    })
    .await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:#?}", r.decisions);
    let d = r.decisions.last().unwrap();
    assert_eq!(
        (d.reason_code.as_str(), d.step),
        ("GATE_BREACHED", 1),
        "{d:#?}"
    );
    let memory = gate(d, "memory");
    assert_eq!((memory.value, memory.passed), (600.0 * MB, false));
    assert_eq!(
        memory.detail,
        r#"max(container_memory_usage_bytes{cohort="canary"})"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "half a minute of real traffic: scripts/test runs it once, with every SDK's generator"]
async fn gates_judge_the_sdks_metrics_and_prometheus_on_the_seeds_releases() {
    let exporter = Exporter::start().await;
    skillmeat_exporter(&exporter);
    // Prometheus demands basic auth, as a shared one would: the gates pass only if
    // `flagwire serve` sends what its flags name.
    let mut prometheus = Prometheus::spawn_with_basic_auth(&exporter);
    let secrets = tempfile::tempdir().unwrap();
    let password = secrets.path().join("prometheus-password");
    std::fs::write(&password, format!("{}\n", prometheus::basic_auth::PASSWORD)).unwrap();
    let server = binary::start_with(&[
        "--prometheus-url",
        &prometheus.url,
        "--prometheus-basic-auth-user",
        prometheus::basic_auth::USER,
        "--prometheus-password-file",
        password.to_str().unwrap(),
    ]);
    let runs = [HEALTHY, FAULTY, SKILLMEAT_RUN];
    let (mem0_file, skillmeat_file, tokens) = gates::setup(&server, &runs).await;

    let mut generators = Children::default();
    let mut traffic = Vec::new();
    let mut instances = Vec::new();
    for (run, token) in runs.iter().zip(&tokens) {
        let args = run.generator_args(&server.url);
        let before = generators.len();
        for var in ["FLAGWIRE_E2E_PYTHON_TRAFFIC", "FLAGWIRE_E2E_TS_TRAFFIC"] {
            generators.extend(generator(var, token, &args));
        }
        let mut clients = Vec::new();
        for _ in 0..2 {
            let c = Client::builder(server.url.clone(), token.clone())
                .metrics_flush_interval(Duration::from_millis(250))
                .build()
                .unwrap();
            c.wait_ready(Duration::from_secs(10)).await.unwrap();
            clients.push(c);
        }
        instances.push((clients.len() + generators.len() - before) as u32);
        let rps = if run.flags == MEM0 { 200 } else { 100 };
        traffic.push(rust_traffic(*run, clients, rps));
    }
    prometheus.ready().await;
    // Two scrapes of each counter: rate() has something to say.
    let rated = "count(rate(container_cpu_usage_seconds_total[5m]) > 0)";
    prometheus.wait_for(rated, 2.0).await;

    let channel = Channel::from_shared(server.url.clone()).unwrap();
    let client = ReleaseServiceClient::new(channel.connect().await.unwrap());
    let mem0 = |run: Run| compress(&mem0_file, run.env, &[3, 3, 3, 3]);
    // Skillmeat's stage 1 lasts until the test raises the canary's memory.
    let stages = [SKILLMEAT_STAGE_0, 60, 3];
    let ids = [
        launch(&mut client.clone(), mem0(HEALTHY)).await,
        launch(&mut client.clone(), mem0(FAULTY)).await,
        launch(
            &mut client.clone(),
            compress(&skillmeat_file, SKILLMEAT_RUN.env, &stages),
        )
        .await,
    ];
    let [h, f, s] = ids;
    tokio::join!(
        healthy(client.clone(), h),
        faulty(client.clone(), f, instances[1]),
        skillmeat(client.clone(), s, &mut prometheus, &exporter),
    );
    generators.assert_running();
    for t in traffic {
        t.abort();
    }
}
