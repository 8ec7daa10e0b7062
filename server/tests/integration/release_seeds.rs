//! The seeds' procedures as release files (`deploy/releases/`, with the metric definitions of
//! `metrics.yaml`): each is accepted as written and runs to completion on compressed time (the
//! server in process on a manual clock), with synthetic healthy traffic from an SDK instance
//! (the teams' own metrics its gates name included) and a person approving the stages that say
//! so; the skillmeat plan's Prometheus gates ask a real Prometheus scraping a test exporter. A
//! stage without control (a segment, everyone) is judged and logged as such. Then the gates
//! at work: mem0 rolls back at stage 3 when its write success falls to 97 %, skillmeat when
//! the canary's memory passes 512 MB.

use crate::support::inproc::InProcess;
use crate::support::promserver::{Exporter, Prometheus};
use crate::support::release::*;
use crate::support::*;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use flagwire_server::releases::prometheus::PrometheusOptions;
use std::time::Duration;

const INSTANCE: &str = "00000000-0000-4000-8000-00000000000f";
const MEM0: [&str; 3] = ["mem0-shadow", "fast-path", "mem0-reads"];

/// `production` with `keys` as flags and the metric definitions of `deploy/releases`.
async fn production(server: &InProcess, keys: &[&str]) {
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    flags(&mut admin, "production", keys).await;
    let path = format!(
        "{}/../deploy/releases/metrics.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let bundle = flagwire_server::bundle::file::read(std::path::Path::new(&path)).unwrap();
    let request = ImportBundleRequest {
        bundle: Some(bundle),
        ..Default::default()
    };
    admin.import_bundle(request).await.unwrap();
}

/// What a healthy SDK records of the seeds' metrics for `n` requests of one cohort, as
/// release-cohort series; `mem0_write` is the share of mem0 writes that succeed.
fn recorded(r: &Release, cohort: &str, n: u64, mem0_write: f64) -> Vec<MetricSeries> {
    let series = |name: &str| MetricSeries {
        name: name.into(),
        cohort: cohort.into(),
        rollout_id: r.id.clone(),
        requests: n,
        ..Default::default()
    };
    let rate = |name: &str, ok: f64| {
        let successes = (n as f64 * ok).round() as u64;
        MetricSeries {
            successes,
            failures: n - successes,
            ..series(name)
        }
    };
    let mut latency = Histogram::new();
    latency.record_n(120_000, n);
    vec![
        rate("mem0.write", mem0_write),
        rate("mem0.read", 0.99),
        rate("fast-path.hit", 0.8),
        MetricSeries {
            count: n,
            sum: 120.0 * n as f64,
            sum_of_squares: 14_400.0 * n as f64,
            histogram: Some(latency.to_proto()),
            ..series("fast-path.ms")
        },
        MetricSeries {
            count: n,
            sum: 4.2 * n as f64,
            sum_of_squares: (4.2 * 4.2 + 0.25) * n as f64,
            ..series("satisfaction")
        },
        rate("agent.request", 0.999),
        rate("workflow.completed", 0.999),
    ]
}

/// Starts `r` and drives it to its end with healthy traffic (see [`drive`]).
async fn run(server: &InProcess, r: Release) -> Release {
    drive(server, r, async |_| 0.999).await
}

/// Starts `r` and drives it until it ends: a window of traffic per step of the clock (a third
/// of the stage's minimum, at least one window), approving what awaits approval. Before each
/// window, `canary(r)` may change the world and says what share of the canary's mem0 writes
/// succeed.
async fn drive(server: &InProcess, r: Release, canary: impl AsyncFn(&Release) -> f64) -> Release {
    let (mut client, mut metrics) = (server.releases().await, server.metrics().await);
    let window = Duration::from_secs(60);
    let mut r = launch(&mut client, r).await;
    let mut sequence = 0;
    for _ in 0..200 {
        match state(&r) {
            ReleaseState::Completed | ReleaseState::RolledBack => return r,
            ReleaseState::AwaitingApproval => {
                r = client
                    .approve_stage(ApproveStageRequest {
                        id: r.id.clone(),
                        stage: r.approval_stage,
                        reason: "checklist done".into(),
                    })
                    .await
                    .expect("approve")
                    .into_inner()
                    .release
                    .unwrap();
                continue;
            }
            ReleaseState::Running => {}
            other => panic!("{other:?}: {:#?}", r.decisions),
        }
        let stage = &r.stages[r.current_stage as usize];
        let min = stage.min_duration.map_or(0, |d| d.seconds as u64);
        let step = Duration::from_secs((min / 3).max(60));
        let control = controlled(&r).then(|| Traffic::new(2_000, 0));
        sequence += 1;
        let mut report = window_report(
            &r,
            INSTANCE,
            sequence,
            server.now(),
            window,
            Traffic::new(2_000, 0),
            control,
        );
        report.metrics = recorded(&r, "canary", 2_000, canary(&r).await);
        if control.is_some() {
            report.metrics.extend(recorded(&r, "control", 2_000, 0.999));
        }
        send(&mut metrics, report).await;
        server.advance(step);
        server.caught_up().await;
        r = get(&mut client, &r.id, 0).await;
    }
    panic!("the release did not end: {:#?}", r.decisions)
}

async fn served(server: &InProcess, key: &str) -> Option<serve::Kind> {
    let flag = server
        .admin()
        .await
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    flag.environments["production"]
        .default_rule
        .clone()
        .and_then(|s| s.kind)
}

#[tokio::test]
async fn the_mem0_epic_runs_its_four_stages_with_approvals() {
    let server = InProcess::start().await;
    production(&server, &MEM0).await;
    let r = run(&server, load("mem0-epic.yaml")).await;
    assert_eq!(state(&r), ReleaseState::Completed, "{:#?}", r.decisions);
    let approved: Vec<u32> = r.approvals.iter().map(|a| a.stage).collect();
    assert_eq!(approved, [2, 3], "the stages that require approval");
    assert!(
        r.approvals
            .iter()
            .all(|a| a.reason == "checklist done" && a.actor == "admin")
    );
    let on = Some(serve::Kind::Variant("on".into()));
    assert_eq!(served(&server, "fast-path").await, on);
    assert_eq!(served(&server, "mem0-reads").await, on);
    assert_eq!(
        served(&server, "mem0-shadow").await,
        Some(serve::Kind::Variant("off".into())),
        "stage 3 turned shadow writes off, and they stay off"
    );
    let promoted: Vec<u32> = r
        .decisions
        .iter()
        .filter(|d| d.actor == "judge" && d.kind == DecisionKind::Promote as i32)
        .map(|d| d.step)
        .collect();
    // Stage 0 → 1 and the completion after stage 3; stages 2 and 3 waited for a person.
    assert_eq!(
        promoted,
        [0, 3],
        "the judge promoted what needed no approval"
    );
    let awaiting = r
        .decisions
        .iter()
        .filter(|d| d.reason_code == "AWAITING_APPROVAL")
        .count();
    assert_eq!(awaiting, 2);
}

#[tokio::test]
async fn the_skillmeat_plan_starts_with_internal_users_without_control() {
    let (_exporter, _prometheus, server) = skillmeat().await;
    let r = run(&server, load("skillmeat-memory.yaml")).await;
    assert_eq!(state(&r), ReleaseState::Completed, "{:#?}", r.decisions);
    let memory = r
        .decisions
        .iter()
        .flat_map(|d| &d.gates)
        .find(|g| g.name == "memory");
    let memory = memory.expect("the memory gate was checked");
    assert_eq!(
        (memory.value, memory.detail.as_str()),
        (
            300.0 * MB,
            r#"max(container_memory_usage_bytes{cohort="canary"})"#
        )
    );
    let internal: Vec<&Decision> = r
        .decisions
        .iter()
        .filter(|d| d.actor == "judge" && d.step == 0)
        .collect();
    assert!(!internal.is_empty());
    assert!(
        internal.iter().all(|d| d.detail.contains("no control")),
        "judged on absolute limits only: {internal:#?}"
    );
    assert_eq!(r.approvals.len(), 1);
    assert_eq!(
        served(&server, "skillmeat-memory-context").await,
        Some(serve::Kind::Variant("on".into()))
    );
}

/// The skillmeat service as Prometheus sees it (both cohorts: 100 requests per scrape, none
/// failing, 95 % under 100 ms; 300 MB; a quarter of a core), Prometheus scraping it, and the
/// server asking that Prometheus, with `production`, its `internal` segment and the flag.
async fn skillmeat() -> (Exporter, Prometheus, InProcess) {
    let exporter = Exporter::start().await;
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
    let prometheus = Prometheus::start(&exporter).await;
    // Two scrapes of each counter: rate() has something to say.
    let rated = "count(rate(container_cpu_usage_seconds_total[5m]) > 0)";
    prometheus.wait_for(rated, 2.0).await;
    let options = PrometheusOptions {
        url: prometheus.url.clone(),
        timeout: Duration::from_secs(5),
        auth: Default::default(),
    };
    let server = InProcess::start_with(Some(options)).await;
    production(&server, &["skillmeat-memory-context"]).await;
    let segment = Segment {
        key: "internal".into(),
        environment: "production".into(),
        included: vec!["alice".into(), "bob".into()],
        ..Default::default()
    };
    let request = CreateSegmentRequest {
        segment: Some(segment),
        reason: String::new(),
    };
    server.admin().await.create_segment(request).await.unwrap();
    (exporter, prometheus, server)
}

const MB: f64 = 1024.0 * 1024.0;

#[tokio::test]
async fn skillmeat_rolls_back_when_the_canary_memory_passes_512_mb() {
    let (exporter, prometheus, server) = skillmeat().await;
    let canary = r#"container_memory_usage_bytes{cohort="canary"}"#;
    let r = drive(
        &server,
        load("skillmeat-memory.yaml"),
        async |r: &Release| {
            if r.current_stage == 1 {
                exporter.set(canary, 600.0 * MB);
                prometheus.wait_for(canary, 600.0 * MB).await;
            }
            0.999
        },
    )
    .await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:#?}", r.decisions);
    let d = r.decisions.last().unwrap();
    assert_eq!(
        (d.reason_code.as_str(), d.step),
        ("GATE_BREACHED", 1),
        "{d:?}"
    );
    let memory = d.gates.iter().find(|g| g.name == "memory").unwrap();
    assert_eq!((memory.value, memory.passed), (600.0 * MB, false));
}

#[tokio::test]
async fn mem0_rolls_back_at_stage_3_when_its_writes_fall_to_97_percent() {
    let server = InProcess::start().await;
    production(&server, &MEM0).await;
    let r = drive(&server, load("mem0-epic.yaml"), async |r: &Release| {
        if r.current_stage == 2 { 0.97 } else { 0.999 }
    })
    .await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:#?}", r.decisions);
    let d = r.decisions.last().unwrap();
    assert_eq!(
        (d.reason_code.as_str(), d.step),
        ("GATE_BREACHED", 2),
        "{d:?}"
    );
    assert!(d.detail.contains("mem0-writes"), "{}", d.detail);
    // The gate decided, at step 1 of the judge, before the relative tests run: what shows
    // that errors and latency stayed normal is the cohorts' own numbers.
    let rate = |c: &str| {
        let s = d.cohorts.iter().find(|s| s.cohort == c).unwrap();
        (s.error_rate, s.p95_us)
    };
    assert_eq!(rate("canary"), rate("control"), "{:?}", d.cohorts);
    assert_eq!(r.approvals.len(), 1, "stage 3 was approved, then judged");
}

#[tokio::test]
async fn the_convex_guide_turns_five_flags_on_in_order() {
    let server = InProcess::start().await;
    let keys = [
        "enable-retry-with-backoff",
        "enable-prompt-message-id",
        "enable-message-compression",
        "log-provider-enabled",
        "enable-workflow",
    ];
    production(&server, &keys).await;
    let r = run(&server, load("convex-agent.yaml")).await;
    for key in keys {
        assert_eq!(
            served(&server, key).await,
            Some(serve::Kind::Variant("on".into())),
            "{key}"
        );
    }
    // Judged stage by stage (soaks, no control), the last one approved by a person.
    let judged: Vec<u32> = r
        .decisions
        .iter()
        .filter(|d| d.actor == "judge" && d.kind == DecisionKind::Promote as i32)
        .map(|d| d.step)
        .collect();
    assert_eq!(judged, [0, 1, 2, 4], "{judged:?}");
    assert_eq!(r.approvals.iter().map(|a| a.stage).collect::<Vec<_>>(), [4]);
}

#[test]
fn every_release_file_names_its_seed_and_parses() {
    for name in [
        "mem0-epic.yaml",
        "skillmeat-memory.yaml",
        "convex-agent.yaml",
    ] {
        let r = load(name);
        assert!(!r.name.is_empty() && !r.stages.is_empty(), "{name}");
    }
}
