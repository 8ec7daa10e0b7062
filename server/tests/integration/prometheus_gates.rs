//! Prometheus gates against a real Prometheus (started on a free port with a temp TSDB,
//! scraping an exporter this test serves) and the server in process on a manual clock: a
//! memory gauge of the canary past 512 MB rolls the release back, with the query, the value
//! and the time in the decision log; a gate comparing canary with control; an outage HOLDs
//! without promoting (and rolls back after the failures a gate allows); a query that hangs
//! times out.

use crate::support::inproc::InProcess;
use crate::support::promserver::{Exporter, Prometheus};
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use flagwire_server::releases::prometheus::PrometheusOptions;
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(10);
const INSTANCE: &str = "00000000-0000-4000-8000-0000000000b2";
const MEMORY: &str = r#"max(app_memory_bytes{cohort="{cohort}"})"#;
const MB: f64 = 1024.0 * 1024.0;

fn memory(cohort: &str) -> String {
    format!(r#"app_memory_bytes{{cohort="{cohort}"}}"#)
}

fn prometheus_gate(name: &str, query: &str, threshold: f64, failures: u32) -> Gate {
    Gate {
        name: name.into(),
        kind: Some(gate::Kind::Prometheus(PrometheusGate {
            query: query.into(),
            comparison: Comparison::LessThan as i32,
            threshold,
            compare_cohorts: false,
            rollback_after_failures: failures,
        })),
    }
}

/// The exporter (both cohorts at 300 MB and 40 % CPU), Prometheus scraping it, and the server
/// pointed at it (`timeout` per query) with environment `prod`.
async fn setup(timeout: Duration) -> (Exporter, Prometheus, InProcess) {
    let exporter = Exporter::start().await;
    for cohort in ["canary", "control"] {
        exporter.set(&memory(cohort), 300.0 * MB);
        exporter.set(&format!(r#"app_cpu_ratio{{cohort="{cohort}"}}"#), 0.4);
    }
    let prometheus = Prometheus::start(&exporter).await;
    prometheus.wait_for(&memory("canary"), 300.0 * MB).await;
    let options = PrometheusOptions {
        url: prometheus.url.clone(),
        timeout,
        auth: Default::default(),
    };
    let server = InProcess::start_with(Some(options)).await;
    create_env(&mut server.admin().await, "prod").await;
    (exporter, prometheus, server)
}

/// A release of `flag` at 5 % then 25 % (one window each), gated by `gates`.
async fn start(server: &InProcess, flag: &str, gates: Vec<Gate>) -> Release {
    flags(&mut server.admin().await, "prod", &[flag]).await;
    let stages = vec![
        stage(share(500), &[flag], WINDOW),
        stage(share(2_500), &[flag], WINDOW),
    ];
    let r = Release {
        gates,
        ..release("prod", &[flag], stages, WINDOW)
    };
    launch(&mut server.releases().await, r).await
}

/// One healthy window for each of `releases`, then the clock moves on and the driver judges.
async fn window(server: &InProcess, releases: &[&Release], sequence: u64) -> Vec<Release> {
    let mut metrics = server.metrics().await;
    for (i, r) in releases.iter().enumerate() {
        let traffic = Traffic::new(500, 2);
        let instance = format!("{}{i}", &INSTANCE[..INSTANCE.len() - 1]);
        let report = window_report(
            r,
            &instance,
            sequence,
            server.now(),
            WINDOW,
            traffic,
            Some(traffic),
        );
        send(&mut metrics, report).await;
    }
    server.advance(WINDOW);
    server.caught_up().await;
    let mut client = server.releases().await;
    let mut now = Vec::new();
    for r in releases {
        now.push(get(&mut client, &r.id, 0).await);
    }
    now
}

fn latest(r: &Release) -> &Decision {
    r.latest_decision.as_ref().expect("a decision")
}

#[tokio::test]
async fn the_canary_memory_past_512_mb_rolls_the_release_back() {
    let (exporter, prometheus, server) = setup(Duration::from_secs(5)).await;
    let cpu = Gate {
        name: "cpu".into(),
        kind: Some(gate::Kind::Prometheus(PrometheusGate {
            query: r#"max(app_cpu_ratio{cohort="{cohort}"})"#.into(),
            comparison: Comparison::LessThan as i32,
            threshold: 0.2,
            compare_cohorts: true,
            rollback_after_failures: 0,
        })),
    };
    let gates = vec![prometheus_gate("memory", MEMORY, 512.0 * MB, 0), cpu];
    let r = start(&server, "skillmeat-memory", gates).await;
    let r = window(&server, &[&r], 1).await.remove(0);
    let d = latest(&r);
    assert_eq!(r.current_stage, 1, "promoted past the healthy stage: {d:?}");
    let memory_gate = &d.gates[0];
    assert_eq!(
        memory_gate.detail, r#"max(app_memory_bytes{cohort="canary"})"#,
        "the query as sent"
    );
    assert_eq!(
        (
            memory_gate.kind.as_str(),
            memory_gate.value,
            memory_gate.passed
        ),
        ("prometheus", 300.0 * MB, true)
    );
    assert_eq!(memory_gate.time, d.time, "evaluated at the window's close");
    let cpu_gate = &d.gates[1];
    assert_eq!(
        (cpu_gate.control_value, cpu_gate.value),
        (0.4, 0.0),
        "{cpu_gate:?}"
    );

    exporter.set(&memory("canary"), 600.0 * MB);
    prometheus.wait_for(&memory("canary"), 600.0 * MB).await;
    let r = window(&server, &[&r], 2).await.remove(0);
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:?}", latest(&r));
    let d = r.decisions.last().unwrap();
    assert_eq!(d.reason_code, "GATE_BREACHED");
    assert_eq!((d.gates[0].value, d.gates[0].passed), (600.0 * MB, false));
    assert!(d.detail.contains("memory"), "{}", d.detail);
}

#[tokio::test]
async fn an_outage_holds_without_promoting_and_rolls_back_after_the_allowed_failures() {
    let (_exporter, mut prometheus, server) = setup(Duration::from_secs(5)).await;
    let patient = start(
        &server,
        "patient",
        vec![prometheus_gate("memory", MEMORY, 512.0 * MB, 0)],
    )
    .await;
    let strict = start(
        &server,
        "strict",
        vec![prometheus_gate("memory", MEMORY, 512.0 * MB, 3)],
    )
    .await;
    prometheus.stop();
    let (mut patient, mut strict) = (patient, strict);
    for sequence in 1..=3 {
        let now = window(&server, &[&patient, &strict], sequence).await;
        (patient, strict) = (now[0].clone(), now[1].clone());
        let d = latest(&patient);
        assert_eq!(
            (
                state(&patient),
                patient.current_stage,
                d.reason_code.as_str()
            ),
            (ReleaseState::Running, 0, "GATE_UNAVAILABLE"),
            "{d:?}"
        );
        assert!(!d.gates[0].passed, "{d:?}");
    }
    assert_eq!(
        state(&strict),
        ReleaseState::RolledBack,
        "{:?}",
        latest(&strict)
    );
    let d = strict.decisions.last().unwrap();
    assert_eq!(d.reason_code, "GATE_UNAVAILABLE");
    assert!(d.detail.contains("failed 3 times in a row"), "{}", d.detail);

    // Prometheus is back: the patient release goes on.
    prometheus.restart().await;
    prometheus.wait_for(&memory("canary"), 300.0 * MB).await;
    let patient = window(&server, &[&patient], 4).await.remove(0);
    assert_eq!(patient.current_stage, 1, "{:?}", latest(&patient));
}

#[tokio::test]
async fn a_query_that_hangs_times_out_and_holds() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let options = PrometheusOptions {
        url,
        timeout: Duration::from_millis(200),
        auth: Default::default(),
    };
    let server = InProcess::start_with(Some(options)).await;
    create_env(&mut server.admin().await, "prod").await;
    let r = start(
        &server,
        "hangs",
        vec![prometheus_gate("memory", MEMORY, 1.0, 0)],
    )
    .await;
    let r = window(&server, &[&r], 1).await.remove(0);
    let d = latest(&r);
    assert_eq!(
        (r.current_stage, d.reason_code.as_str()),
        (0, "GATE_UNAVAILABLE")
    );
    assert!(d.detail.contains("timed out after 200ms"), "{}", d.detail);
}
