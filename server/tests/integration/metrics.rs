//! MetricsService on the real server: reports merge into exact usage and quantiles, duplicates
//! and late windows are dropped, invalid reports are refused whole, and the instance registry
//! follows Watch streams and applied revisions. `ReportBatch` is in [`batch`].

mod batch;

use crate::support::eventually::DEADLINE;
use crate::support::*;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};
use tonic::Code;

const INSTANCE_A: &str = "2b7e1516-28ae-4d2a-abf7-158809cf4f3c";
const INSTANCE_B: &str = "3243f6a8-885a-4308-98d3-13198a2e0370";

/// A running server with environments `production` and `staging`, the flag `checkout`
/// (variants on/off, both environments), an sdk token of production and a read-only token.
struct Fixture {
    server: Server,
    admin: Admin,
    sdk: String,
    read_only: String,
}

async fn fixture() -> (tempfile::TempDir, Fixture) {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    create_flag(
        &mut admin,
        bool_flag("checkout", &["production", "staging"]),
    )
    .await;
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;
    let read_only = create_token(&mut admin, "viewer", Role::ReadOnly, "").await;
    let fixture = Fixture {
        server,
        admin,
        sdk,
        read_only,
    };
    (dir, fixture)
}

fn histogram(values: &[u64]) -> Histogram {
    let mut h = Histogram::new();
    values.iter().for_each(|v| h.record(*v));
    h
}

/// A series with `evaluations` SPLIT evaluations and one outcome per latency, the first
/// `errors` of them failed.
fn series(variant: &str, cohort: &str, evaluations: u64, latencies: &[u64], errors: u64) -> Series {
    Series {
        flag_key: "checkout".into(),
        variant: variant.into(),
        cohort: cohort.into(),
        rollout_id: String::new(),
        evaluations: vec![ReasonCount {
            reason: "SPLIT".into(),
            count: evaluations,
        }],
        successes: latencies.len() as u64 - errors,
        errors,
        latency_us: Some(histogram(latencies).to_proto()),
    }
}

/// A report of `series` for the 10 seconds ending `ago` before now.
fn report(instance: &str, sequence: u64, ago: Duration, series: Vec<Series>) -> ReportRequest {
    let end = SystemTime::now() - ago;
    ReportRequest {
        metrics: Vec::new(),
        cohort_outcomes: Vec::new(),
        instance_id: instance.into(),
        sequence,
        sdk_name: "flagwire-test".into(),
        sdk_version: "1.2.3".into(),
        environment: String::new(),
        applied_revision: 1,
        window_start: Some((end - Duration::from_secs(10)).into()),
        window_end: Some(end.into()),
        series,
        dropped_series: 0,
    }
}

async fn usage(f: &Fixture, flag: &str) -> Vec<UsageRow> {
    let mut metrics = f.server.metrics_as(Some(&f.read_only)).await;
    metrics
        .get_usage(GetUsageRequest {
            environment: "production".into(),
            flag_key: flag.into(),
            start_time: None,
            end_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .rows
}

fn quantile(h: &Histogram, q: f64) -> f64 {
    h.quantile(q).unwrap().upper_bound_us
}

#[tokio::test]
async fn reports_merge_into_exact_usage_and_duplicates_count_once() {
    let (_dir, f) = fixture().await;
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    let canary_a = [120, 130, 150, 900, 40_000];
    let canary_b = [110, 0, 2_000_000];
    let control = [100, 105, 300];
    let first = report(
        INSTANCE_A,
        1,
        Duration::ZERO,
        vec![
            series("on", "canary", 50, &canary_a, 1),
            series("off", "control", 40, &control, 0),
        ],
    );
    let accepted = sdk.report(first.clone()).await.unwrap().into_inner();
    assert!(accepted.accepted);
    // A second instance, and a second window of the first one.
    let b = report(
        INSTANCE_B,
        1,
        Duration::ZERO,
        vec![series("on", "canary", 30, &canary_b, 2)],
    );
    assert!(sdk.report(b).await.unwrap().into_inner().accepted);
    // Retried: same instance and sequence. Ignored, not an error.
    let again = sdk.report(first).await.unwrap().into_inner();
    assert!(!again.accepted, "a duplicate must not be accepted");

    let rows = usage(&f, "").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (off, on) = (&rows[0], &rows[1]);
    assert_eq!(
        (off.variant.as_str(), off.cohort.as_str(), off.evaluations),
        ("off", "control", 40)
    );
    assert_eq!((off.successes, off.errors, off.error_rate), (3, 0, 0.0));
    assert_eq!(
        (on.variant.as_str(), on.cohort.as_str(), on.evaluations),
        ("on", "canary", 80)
    );
    assert_eq!((on.successes, on.errors), (5, 3));
    assert!((on.error_rate - 3.0 / 8.0).abs() < 1e-12);
    let mut merged = histogram(&canary_a);
    merged.merge(&histogram(&canary_b));
    assert_eq!(on.p50_us, quantile(&merged, 0.5));
    assert_eq!(on.p95_us, quantile(&merged, 0.95));
    assert_eq!(on.p99_us, quantile(&merged, 0.99));
    // Spelled out: 8 values [0, 110, 120, 130, 150, 900, 40000, 2000000]; p50 is rank 4 (130,
    // in bucket 56: 2^(56/8) = 128 < 130 <= 2^(57/8)); p95 and p99 are rank 8 (2 s).
    assert_eq!(on.p50_us, 2f64.powf(57.0 / 8.0));
    assert!(on.p99_us >= 2_000_000.0 && on.p99_us < 2_000_000.0 * 1.091);
    let off_p99 = quantile(&histogram(&control), 0.99);
    assert_eq!(off.p99_us, off_p99);

    // The flag filter and the time range.
    assert_eq!(usage(&f, "checkout").await.len(), 2);
    assert!(usage(&f, "other").await.is_empty());
    let mut metrics = f.server.metrics().await;
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let before = metrics
        .get_usage(GetUsageRequest {
            environment: "production".into(),
            flag_key: String::new(),
            start_time: Some((hour_ago - Duration::from_secs(60)).into()),
            end_time: Some(hour_ago.into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.rows.is_empty());
    let reversed = metrics
        .get_usage(GetUsageRequest {
            environment: "production".into(),
            flag_key: String::new(),
            start_time: Some(SystemTime::now().into()),
            end_time: Some(hour_ago.into()),
        })
        .await;
    code(reversed, Code::InvalidArgument);
    // Staging saw nothing.
    let staging = metrics
        .get_usage(GetUsageRequest {
            environment: "staging".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(staging.rows.is_empty());
}

#[tokio::test]
async fn invalid_reports_are_refused_whole() {
    let (_dir, f) = fixture().await;
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    let good = || series("on", "canary", 10, &[100, 200], 0);
    let cases: Vec<(&str, ReportRequest, Code, &str)> = vec![
        (
            "unknown flag",
            report(
                INSTANCE_A,
                1,
                Duration::ZERO,
                vec![
                    good(),
                    Series {
                        flag_key: "nope".into(),
                        ..good()
                    },
                ],
            ),
            Code::InvalidArgument,
            "series[1].flagKey",
        ),
        (
            "unknown variant",
            report(
                INSTANCE_A,
                2,
                Duration::ZERO,
                vec![
                    good(),
                    Series {
                        variant: "maybe".into(),
                        ..good()
                    },
                ],
            ),
            Code::InvalidArgument,
            "series[1].variant",
        ),
        (
            "bad scale",
            report(
                INSTANCE_A,
                3,
                Duration::ZERO,
                vec![good(), good(), {
                    let mut s = good();
                    s.latency_us.as_mut().unwrap().scale = 4;
                    s
                }],
            ),
            Code::InvalidArgument,
            "series[2].latencyUs.scale",
        ),
        (
            "histogram count differs from its buckets",
            report(
                INSTANCE_A,
                4,
                Duration::ZERO,
                vec![{
                    let mut s = good();
                    s.latency_us.as_mut().unwrap().count = 3;
                    s.successes = 3;
                    s
                }],
            ),
            Code::InvalidArgument,
            "series[0].latencyUs.count",
        ),
        (
            "outcomes differ from the histogram count",
            report(
                INSTANCE_A,
                5,
                Duration::ZERO,
                vec![Series {
                    errors: 1,
                    ..good()
                }],
            ),
            Code::InvalidArgument,
            "series[0].successes",
        ),
        (
            "bad instance id",
            report("instance-1", 6, Duration::ZERO, vec![good()]),
            Code::InvalidArgument,
            "instanceId",
        ),
        (
            "applied revision the environment never reached",
            ReportRequest {
                applied_revision: 99,
                ..report(INSTANCE_A, 7, Duration::ZERO, vec![good()])
            },
            Code::InvalidArgument,
            "appliedRevision",
        ),
        (
            "another environment than the token's",
            ReportRequest {
                environment: "staging".into(),
                ..report(INSTANCE_A, 8, Duration::ZERO, vec![good()])
            },
            Code::PermissionDenied,
            "bound to environment",
        ),
    ];
    for (what, request, want, mention) in cases {
        let message = code(sdk.report(request).await, want);
        assert!(
            message.contains(mention),
            "{what}: {message:?} should mention {mention:?}"
        );
    }
    assert!(usage(&f, "").await.is_empty(), "nothing may be merged");
    let mut metrics = f.server.metrics().await;
    let instances = metrics
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .instances;
    assert!(instances.is_empty(), "refused reports register nobody");

    // Roles: read-only tokens may not report, sdk tokens may not query.
    let mut viewer = f.server.metrics_as(Some(&f.read_only)).await;
    let r = viewer
        .report(report(INSTANCE_A, 9, Duration::ZERO, vec![good()]))
        .await;
    code(r, Code::PermissionDenied);
    let q = sdk
        .get_usage(GetUsageRequest {
            environment: "production".into(),
            ..Default::default()
        })
        .await;
    code(q, Code::PermissionDenied);
    // Admin tokens report for an environment they name, and must name one.
    let mut admin = f.server.metrics().await;
    let unnamed = admin
        .report(report(INSTANCE_A, 10, Duration::ZERO, vec![good()]))
        .await;
    code(unnamed, Code::InvalidArgument);
    let named = ReportRequest {
        environment: "staging".into(),
        ..report(INSTANCE_A, 11, Duration::ZERO, vec![good()])
    };
    assert!(admin.report(named).await.unwrap().into_inner().accepted);
}

#[tokio::test]
async fn late_windows_are_dropped() {
    let (_dir, f) = fixture().await;
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    // The default watermark is 10 minutes.
    let late = report(
        INSTANCE_A,
        1,
        Duration::from_secs(2 * 3600),
        vec![series("on", "", 5, &[100], 0)],
    );
    assert!(!sdk.report(late).await.unwrap().into_inner().accepted);
    assert!(usage(&f, "").await.is_empty());
    let recent = report(
        INSTANCE_A,
        2,
        Duration::from_secs(300),
        vec![series("on", "", 5, &[100], 0)],
    );
    assert!(sdk.report(recent).await.unwrap().into_inner().accepted);
    assert_eq!(usage(&f, "").await[0].evaluations, 5);
}

async fn count(metrics: &mut Metrics, revision: u64) -> CountAppliedInstancesResponse {
    metrics
        .count_applied_instances(CountAppliedInstancesRequest {
            environment: "production".into(),
            revision,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn instances(metrics: &mut Metrics) -> Vec<Instance> {
    metrics
        .list_instances(ListInstancesRequest {
            environment: "production".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .instances
}

#[tokio::test]
async fn the_registry_follows_watch_streams_and_applied_revisions() {
    let (_dir, mut f) = fixture().await;
    set_enabled(&mut f.admin, "checkout", "production", true).await;
    let applied = 2; // production's revision: flag created (1), enabled (2)
    let mut viewer = f.server.metrics_as(Some(&f.read_only)).await;
    assert_eq!(count(&mut viewer, applied).await.connected, 0);

    let mut flags = f.server.flags_as(Some(&f.sdk)).await;
    let mut stream = flags
        .watch(WatchRequest {
            instance_id: INSTANCE_A.into(),
            sdk_name: "flagwire-rust".into(),
            sdk_version: "0.1.0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        next(&mut stream).await,
        watch_response::Event::Snapshot(_)
    ));
    let listed = instances(&mut viewer).await;
    assert_eq!(listed.len(), 1);
    let a = &listed[0];
    assert_eq!(a.instance_id, INSTANCE_A);
    assert_eq!(
        (a.sdk_name.as_str(), a.sdk_version.as_str()),
        ("flagwire-rust", "0.1.0")
    );
    assert!(a.connected && a.connected_since.is_some() && a.last_seen.is_some());
    let c = count(&mut viewer, applied).await;
    assert_eq!((c.connected, c.applied, c.last_applied_time), (1, 0, None));

    // The SDK reports the revision it applied: a report without window or series.
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    let before = SystemTime::now();
    let ack = sdk
        .report(ReportRequest {
            instance_id: INSTANCE_A.into(),
            sequence: 1,
            applied_revision: applied,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ack.accepted);
    let c = count(&mut viewer, applied).await;
    assert_eq!((c.connected, c.applied), (1, 1));
    let at = SystemTime::try_from(c.last_applied_time.unwrap()).unwrap();
    assert!(at >= before - Duration::from_secs(1) && at <= SystemTime::now());
    // The applied revision never goes back.
    let older = ReportRequest {
        instance_id: INSTANCE_A.into(),
        sequence: 2,
        applied_revision: 1,
        ..Default::default()
    };
    assert!(sdk.report(older).await.unwrap().into_inner().accepted);
    assert_eq!(instances(&mut viewer).await[0].applied_revision, applied);
    assert_eq!(count(&mut viewer, applied + 1).await.applied, 0);

    // An instance that only reports, without a stream, is known but not connected.
    let lone = ReportRequest {
        instance_id: INSTANCE_B.into(),
        sequence: 1,
        applied_revision: applied,
        ..Default::default()
    };
    assert!(sdk.report(lone).await.unwrap().into_inner().accepted);
    assert_eq!(instances(&mut viewer).await.len(), 2);
    assert_eq!(count(&mut viewer, applied).await.connected, 1);

    // The stream ends: the instance is no longer connected (but still listed).
    drop(stream);
    eventually(
        DEADLINE,
        "the instance to show as disconnected",
        async || (count(&mut viewer, applied).await.connected == 0).then_some(()),
    )
    .await;
    let listed = instances(&mut viewer).await;
    let a = listed.iter().find(|i| i.instance_id == INSTANCE_A).unwrap();
    assert!(!a.connected && a.connected_since.is_none());
    assert_eq!(a.applied_revision, applied);

    // A Watch naming a malformed instance id is refused.
    let bad = flags
        .watch(WatchRequest {
            instance_id: "not-a-uuid".into(),
            ..Default::default()
        })
        .await;
    let message = code(bad.map(|_| ()), Code::InvalidArgument);
    assert!(message.contains("instanceId"), "{message}");
}
