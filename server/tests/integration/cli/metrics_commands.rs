//! `usage` and `instances` on the real binary, after an SDK instance has reported.

use super::fixtures::*;
use crate::support::*;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};

/// An SDK instance's id (a UUID, as SDKs make them).
const INSTANCE: &str = "7f9c2ba4-e88f-4c2b-9a1d-3c6f0e5b8d21";

fn series(flag: &str, variant: &str, n: u64, errors: u64, latency_us: u64) -> Series {
    let mut h = Histogram::new();
    h.record_n(latency_us, n);
    Series {
        flag_key: flag.into(),
        variant: variant.into(),
        evaluations: vec![ReasonCount {
            reason: "TARGETING_MATCH".into(),
            count: n,
        }],
        successes: n - errors,
        errors,
        latency_us: Some(h.to_proto()),
        ..Default::default()
    }
}

#[tokio::test]
async fn usage_and_instances_show_what_sdks_reported() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    cli(&server, &["flags", "create", "checkout", "--type", "bool"]).ok();
    let now = SystemTime::now();
    let mut metrics = server.metrics().await;
    metrics
        .report(ReportRequest {
            metrics: Vec::new(),
            cohort_outcomes: Vec::new(),
            instance_id: INSTANCE.into(),
            sequence: 1,
            sdk_name: "flagwire-python".into(),
            sdk_version: "0.1.0".into(),
            environment: "production".into(),
            applied_revision: 1,
            window_start: Some((now - Duration::from_secs(10)).into()),
            window_end: Some(now.into()),
            series: vec![
                series("checkout", "on", 200, 10, 20_000),
                series("checkout", "off", 100, 0, 10_000),
            ],
            dropped_series: 0,
        })
        .await
        .unwrap();

    let out = cli(&server, &["usage", "--env", "production", "--since", "1h"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "FLAG      VARIANT  COHORT  EVALUATIONS  SUCCESSES  ERRORS  ERROR RATE  P50 MS  P95 MS  P99 MS"
    );
    assert!(
        lines[1].starts_with("checkout  off      -       100          100        0       0%"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("checkout  on       -       200          190        10      5%"),
        "{out}"
    );
    let j = cli(
        &server,
        &[
            "usage",
            "--env",
            "production",
            "--flag",
            "checkout",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(j["rows"][1]["errors"], "10");
    let future = cli(
        &server,
        &[
            "usage",
            "--env",
            "production",
            "--from",
            "2100-01-01T00:00:00Z",
        ],
    )
    .ok();
    assert_eq!(future.lines().count(), 1, "nothing reported then: {future}");

    let out = cli(&server, &["instances", "--env", "production"]).ok();
    let row = out.lines().nth(1).unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.starts_with(&format!(
            "{INSTANCE}  flagwire-python 0.1.0  production   no         1         20"
        )),
        "{out}"
    );
    let y = yaml(cli(&server, &["instances", "-o", "yaml"]));
    assert_eq!(y["instances"][0]["instanceId"], INSTANCE);
}

#[tokio::test]
async fn metric_definitions_and_the_metrics_sdks_recorded() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    cli(&server, &["flags", "create", "checkout", "--type", "bool"]).ok();
    let define = |name: &'static str, kind: &'static str, direction: &'static str| {
        let args = [
            "metrics",
            "define",
            name,
            "--env",
            "production",
            "--kind",
            kind,
            "--direction",
            direction,
        ];
        cli(&server, &args)
    };
    let out = define("mem0.write", "rate", "higher").ok();
    assert_eq!(out, "defined metric mem0.write in production, version 1\n");
    define("fast-path.ms", "distribution", "lower").ok();
    let out = cli(&server, &["metrics", "list", "--env", "production"]).ok();
    assert_eq!(
        out,
        "NAME          ENVIRONMENT  KIND          DIRECTION         UNIT  VERSION  DESCRIPTION\n\
         fast-path.ms  production   DISTRIBUTION  LOWER_IS_BETTER   -     1\n\
         mem0.write    production   RATE          HIGHER_IS_BETTER  -     1\n"
    );
    let err = define("Mem0", "rate", "higher").fails(3);
    assert!(
        err.contains("INVALID_ARGUMENT: invalid argument: metric.name:"),
        "{err}"
    );
    let j = cli(&server, &["metrics", "list", "-o", "json"]).json();
    assert_eq!(j["metrics"][1]["kind"], "METRIC_KIND_RATE");
    cli(
        &server,
        &["metrics", "delete", "fast-path.ms", "--env", "production"],
    )
    .ok();
    let err = cli(
        &server,
        &["metrics", "delete", "fast-path.ms", "--env", "production"],
    )
    .fails(3);
    assert!(err.contains("NOT_FOUND"), "{err}");

    // What an SDK recorded for a variant shows under the usage table.
    let now = SystemTime::now();
    let mut write = MetricSeries {
        name: "mem0.write".into(),
        flag_key: "checkout".into(),
        variant: "on".into(),
        successes: 997,
        failures: 3,
        ..Default::default()
    };
    let mut metrics = server.metrics().await;
    let mut report = ReportRequest {
        instance_id: INSTANCE.into(),
        sequence: 1,
        sdk_name: "flagwire-python".into(),
        sdk_version: "0.1.0".into(),
        environment: "production".into(),
        window_start: Some((now - Duration::from_secs(10)).into()),
        window_end: Some(now.into()),
        series: vec![series("checkout", "on", 1_000, 0, 20_000)],
        ..Default::default()
    };
    report.metrics.push(write.clone());
    write.name = "latency.ms".into();
    (write.successes, write.failures, write.count) = (0, 0, 2);
    let mut h = Histogram::new();
    h.record_n(420_000, 2);
    write.histogram = Some(h.to_proto());
    report.metrics.push(write);
    metrics.report(report).await.unwrap();
    let out = cli(&server, &["usage", "--env", "production"]).ok();
    let table: Vec<&str> = out
        .split("\n\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .lines()
        .collect();
    assert_eq!(
        table[0],
        "FLAG      VARIANT  COHORT  METRIC      N     VALUE     P95       P99"
    );
    assert!(
        table[1].starts_with("checkout  on       -       latency.ms  2     440.8719  440.8719"),
        "{out}"
    );
    assert_eq!(
        table[2],
        "checkout  on       -       mem0.write  1000  0.997     -         -"
    );
}
