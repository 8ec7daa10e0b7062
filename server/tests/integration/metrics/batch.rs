//! `ReportBatch` (docs/adr/0007-bulk-report.md): a batch lands exactly as its reports sent one
//! by one (usage, instances, release windows); duplicates are acknowledged and counted once;
//! one bad report refuses the whole batch, naming it, and changes nothing; a report for another
//! environment than the token's is refused; the batch size is bounded.

use super::{INSTANCE_A, INSTANCE_B, fixture, report, series, usage};
use crate::support::inproc::InProcess;
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::Duration;
use tonic::Code;

const MIN: Duration = Duration::from_secs(60);

async fn batch(
    metrics: &mut Metrics,
    reports: Vec<ReportRequest>,
) -> Result<Vec<bool>, tonic::Status> {
    let response = metrics
        .report_batch(ReportBatchRequest { reports })
        .await?
        .into_inner();
    Ok(response.results.iter().map(|r| r.accepted).collect())
}

async fn listed(metrics: &mut Metrics) -> Vec<Instance> {
    metrics
        .list_instances(ListInstancesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .instances
}

/// A server on a manual clock with flags `a` and `b` in `prod` and a running release of both.
async fn release_server() -> (InProcess, Release) {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "prod").await;
    flags(&mut admin, "prod", &["a", "b"]).await;
    let def = release(
        "prod",
        &["a", "b"],
        vec![stage(share(2_000), &["a", "b"], 10 * MIN)],
        MIN,
    );
    let r = launch(&mut server.releases().await, def).await;
    (server, r)
}

/// The reports one window brings: two instances, the second window of the first, and a retry.
fn window_reports(server: &InProcess, r: &Release) -> Vec<ReportRequest> {
    let now = server.now();
    let report = |instance, sequence, canary, control| {
        window_report(r, instance, sequence, now, MIN, canary, Some(control))
    };
    let first = report(INSTANCE_A, 1, Traffic::new(300, 9), Traffic::new(310, 3));
    vec![
        first.clone(),
        report(INSTANCE_B, 1, Traffic::new(120, 1), Traffic::new(100, 0)),
        report(INSTANCE_A, 2, Traffic::new(50, 5), Traffic::new(40, 0)),
        first,
    ]
}

/// What a server made of the reports: acknowledgements, the closed window (its end time, which
/// each server's own clock sets, left out), usage and the registry (without the times).
async fn outcome(server: &InProcess, r: &Release, acks: Vec<bool>) -> String {
    server.advance(MIN);
    server.caught_up().await;
    let mut window = get(&mut server.releases().await, &r.id, 1).await.windows;
    assert_eq!(window.len(), 1, "one closed window");
    window[0].end_time = None;
    let mut metrics = server.metrics().await;
    let usage = metrics
        .get_usage(GetUsageRequest {
            environment: "prod".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let instances: Vec<_> = listed(&mut metrics)
        .await
        .into_iter()
        .map(|i| (i.instance_id, i.sdk_name, i.applied_revision))
        .collect();
    format!("{acks:?}\n{window:?}\n{usage:?}\n{instances:?}")
}

#[tokio::test]
async fn a_batch_lands_exactly_as_its_reports_one_by_one() {
    let (one_by_one, r1) = release_server().await;
    let (batched, r2) = release_server().await;

    let mut metrics = one_by_one.metrics().await;
    let mut acks = Vec::new();
    for report in window_reports(&one_by_one, &r1) {
        acks.push(metrics.report(report).await.unwrap().into_inner().accepted);
    }
    assert_eq!(acks, [true, true, true, false], "the retry is a duplicate");
    let expected = outcome(&one_by_one, &r1, acks).await;

    let reports = window_reports(&batched, &r2);
    let acks = batch(&mut batched.metrics().await, reports).await.unwrap();
    let got = outcome(&batched, &r2, acks).await;
    assert_eq!(got, expected);
    // Not vacuous: the window holds the three accepted reports' outcomes.
    assert!(got.contains("reports: 3"), "{got}");
    assert!(got.contains("successes: 455, errors: 15"), "{got}");
}

#[tokio::test]
async fn duplicates_in_and_across_batches_are_acknowledged_and_counted_once() {
    let (_dir, f) = fixture().await;
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    let a = report(
        INSTANCE_A,
        1,
        Duration::ZERO,
        vec![series("on", "", 10, &[100, 200], 0)],
    );
    let b = report(
        INSTANCE_B,
        1,
        Duration::ZERO,
        vec![series("on", "", 5, &[300], 1)],
    );
    let acks = batch(&mut sdk, vec![a.clone(), a.clone(), b])
        .await
        .unwrap();
    assert_eq!(acks, [true, false, true]);
    // Retried whole (the relay missed the answer): every report acknowledged as a duplicate.
    let acks = batch(&mut sdk, vec![a.clone()]).await.unwrap();
    assert_eq!(acks, [false]);
    assert!(!sdk.report(a).await.unwrap().into_inner().accepted);
    let rows = usage(&f, "checkout").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].evaluations, rows[0].errors), (15, 1));
    // An empty batch is nothing to do.
    assert_eq!(
        batch(&mut sdk, Vec::new()).await.unwrap(),
        Vec::<bool>::new()
    );
}

#[tokio::test]
async fn one_bad_report_refuses_the_batch_and_changes_nothing() {
    let (_dir, f) = fixture().await;
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    let good = |instance, sequence| {
        report(
            instance,
            sequence,
            Duration::ZERO,
            vec![series("on", "canary", 10, &[100, 200], 0)],
        )
    };
    let mut unknown_flag = good(INSTANCE_B, 1);
    unknown_flag.series.push(series("off", "", 1, &[], 0));
    unknown_flag.series[1].flag_key = "nope".into();
    let other_env = ReportRequest {
        environment: "staging".into(),
        ..good(INSTANCE_B, 2)
    };
    let cases = [
        (
            vec![good(INSTANCE_A, 1), good(INSTANCE_A, 2), unknown_flag],
            Code::InvalidArgument,
            "reports[2].series[1].flagKey",
        ),
        (
            vec![
                good(INSTANCE_A, 1),
                report("relay-7", 1, Duration::ZERO, vec![]),
            ],
            Code::InvalidArgument,
            "reports[1].instanceId",
        ),
        (
            vec![good(INSTANCE_A, 1), other_env],
            Code::PermissionDenied,
            "reports[1]: token \"sdk\" is bound to environment \"production\"",
        ),
    ];
    for (reports, want, mention) in cases {
        let message = code(batch(&mut sdk, reports).await, want);
        assert!(
            message.contains(mention),
            "{message:?} should mention {mention:?}"
        );
    }
    assert!(usage(&f, "").await.is_empty(), "nothing may be merged");
    let mut admin = f.server.metrics().await;
    assert!(listed(&mut admin).await.is_empty(), "nobody registered");
    // The good reports' sequence numbers were not consumed: they are accepted now.
    let acks = batch(&mut sdk, vec![good(INSTANCE_A, 1), good(INSTANCE_A, 2)]).await;
    assert_eq!(acks.unwrap(), [true, true]);
    assert_eq!(usage(&f, "").await[0].evaluations, 20);

    // Admin tokens name the environment in every report; read-only tokens may not report.
    let unnamed = batch(&mut admin, vec![good(INSTANCE_B, 1)]).await;
    let message = code(unnamed, Code::InvalidArgument);
    assert!(message.contains("reports[0].environment"), "{message}");
    let named = ReportRequest {
        environment: "staging".into(),
        ..good(INSTANCE_B, 1)
    };
    assert_eq!(batch(&mut admin, vec![named]).await.unwrap(), [true]);
    let mut viewer = f.server.metrics_as(Some(&f.read_only)).await;
    code(
        batch(&mut viewer, vec![good(INSTANCE_B, 2)]).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn the_batch_size_is_bounded() {
    let (_dir, f) = fixture().await;
    let mut sdk = f.server.metrics_as(Some(&f.sdk)).await;
    // Reports without a window: each only says which revision its instance applied.
    let bare = |n: u64| {
        (1..=n)
            .map(|sequence| ReportRequest {
                instance_id: INSTANCE_A.into(),
                sequence,
                applied_revision: 1,
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let message = code(batch(&mut sdk, bare(1_001)).await, Code::InvalidArgument);
    assert!(
        message.contains("reports") && message.contains("at most 1000 per call"),
        "{message}"
    );
    let mut admin = f.server.metrics().await;
    assert!(listed(&mut admin).await.is_empty(), "nothing registered");
    let acks = batch(&mut sdk, bare(1_000)).await.unwrap();
    assert_eq!((acks.len(), acks.iter().all(|a| *a)), (1_000, true));
}
