//! The team's own metrics end to end on the real server binary (`FLAGWIRE_BIN` or this
//! profile's): a report carrying them is accepted, `GetUsage` rows show them per flag variant
//! (a rate for outcomes, a median/p95/p99 for observed values, else the mean), a release's
//! windows hold them per cohort with one request per scope, and a window the server refuses
//! is dropped rather than resent forever.

use flagwire::{Client, Context};
use flagwire_core::judge::MetricAgg;
use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::grpc::metrics_service_client::MetricsServiceClient;
use flagwire_proto::grpc::release_service_client::ReleaseServiceClient;
use flagwire_proto::v1::*;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::support::binary;
use binary::{auth, bool_flag, start};

const DEADLINE: Duration = Duration::from_secs(20);

/// Environment `prod` with boolean flags serving "off", and an sdk token for it.
async fn setup(channel: &Channel, flags: &[&str]) -> String {
    let mut admin = AdminServiceClient::new(channel.clone());
    let environment = Some(Environment {
        key: "prod".into(),
        ..Default::default()
    });
    let reason = String::new();
    let request = CreateEnvironmentRequest {
        environment,
        reason,
    };
    admin.create_environment(auth(request)).await.unwrap();
    for key in flags {
        let flag = Some(bool_flag(key, "prod", "off"));
        let request = CreateFlagRequest {
            flag,
            reason: String::new(),
        };
        admin.create_flag(auth(request)).await.unwrap();
    }
    let request = CreateApiTokenRequest {
        name: "svc".into(),
        role: Role::Sdk as i32,
        environment: "prod".into(),
        reason: String::new(),
    };
    let token = admin.create_api_token(auth(request)).await.unwrap();
    token.into_inner().secret
}

async fn connect(url: &str) -> Channel {
    let endpoint = Channel::from_shared(url.to_owned()).unwrap();
    endpoint.connect().await.unwrap()
}

/// A client that reports only when flushed, ready.
async fn client(url: &str, token: String) -> Client {
    let client = Client::builder(url, token)
        .metrics_flush_interval(Duration::from_secs(3_600))
        .build()
        .unwrap();
    client.wait_ready(DEADLINE).await.unwrap();
    client
}

/// Polls `GetUsage` for `flag` until a row carries metrics.
async fn usage_with_metrics(channel: &Channel, flag: &str) -> UsageRow {
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = SystemTime::now();
        let request = GetUsageRequest {
            environment: "prod".into(),
            flag_key: flag.into(),
            start_time: Some((now - Duration::from_secs(3_600)).into()),
            end_time: Some((now + Duration::from_secs(3_600)).into()),
        };
        let rows = metrics
            .get_usage(auth(request))
            .await
            .unwrap()
            .into_inner()
            .rows;
        if let Some(row) = rows.into_iter().find(|r| !r.metrics.is_empty()) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "no usage row of {flag} with metrics"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const RENDER_MS: [f64; 4] = [3.0, 12.5, 40.0, 250.0];

#[tokio::test]
async fn usage_rows_show_a_rate_a_distribution_and_a_mean_and_a_refused_window_is_dropped() {
    let server = start();
    let channel = connect(&server.url).await;
    let token = setup(&channel, &["checkout", "ghost"]).await;
    let client = client(&server.url, token).await;
    let ctx = Context::new("user-1");
    for (i, ms) in RENDER_MS.into_iter().enumerate() {
        let _ = client
            .scope(async {
                assert!(!client.bool_value("checkout", &ctx, true));
                client.track_outcome("payment", i != 3);
                client.observe("render_ms", ms);
                client.track("satisfaction", 4 + i as u32 % 2);
                Ok::<_, ()>(())
            })
            .await;
    }
    client.attribute_to(&ctx, &["checkout"]).track("signup", 1);
    assert!(client.flush().await, "the report with metrics was accepted");

    let row = usage_with_metrics(&channel, "checkout").await;
    assert_eq!(
        (row.variant.as_str(), row.evaluations, row.successes),
        ("off", 4, 4)
    );
    let stats: BTreeMap<_, _> = row.metrics.iter().map(|m| (m.name.as_str(), m)).collect();
    let names: Vec<_> = stats.keys().copied().collect();
    assert_eq!(names, ["payment", "render_ms", "satisfaction", "signup"]);
    let payment = stats["payment"];
    assert_eq!(
        (payment.n, payment.value, payment.p95),
        (4, 0.75, 0.0),
        "a rate"
    );
    let satisfaction = stats["satisfaction"];
    assert_eq!((satisfaction.n, satisfaction.value), (4, 4.5), "a mean");
    let signup = stats["signup"];
    assert_eq!(
        (signup.n, signup.value),
        (1, 1.0),
        "attributed outside any scope"
    );
    // A distribution: the upper bounds of the buckets the values fell in (ms observed are
    // µs buckets), i.e. the judge's own quantiles of what the SDK recorded.
    let mut observed = MetricAgg::default();
    for ms in RENDER_MS {
        observed.histogram.record((ms * 1000.0) as u64);
    }
    let render = stats["render_ms"];
    let quantiles = [0.5, 0.95, 0.99].map(|q| observed.quantile(q).unwrap());
    assert_eq!(render.n, 4);
    assert_eq!([render.value, render.p95, render.p99], quantiles);
    assert!(
        render.value >= 12.5 && render.value < 12.5 * 1.1,
        "{render:?}"
    );
    assert!(
        render.p99 >= 250.0 && render.p99 < 250.0 * 1.1,
        "{render:?}"
    );

    // A window naming a flag deleted since it was served is refused (INVALID_ARGUMENT): it is
    // dropped, not merged back, or every later report would be refused with it.
    client.attribute_to(&ctx, &["ghost"]).track("x", 1);
    let mut admin = AdminServiceClient::new(channel.clone());
    let request = DeleteFlagRequest {
        key: "ghost".into(),
        reason: String::new(),
    };
    admin.delete_flag(auth(request)).await.unwrap();
    assert!(!client.flush().await, "the server refused the window");
    client.track("lonely", 1); // dropped: no scope, no flags; only the count is sent
    assert!(client.flush().await, "the refused window was not kept");
    client.close().await;
}

/// Starts a release of `flag` that holds at a 25 % stage (25 % canary, 25 % control) for the
/// whole test, its windows closing every second; returns its id.
async fn release(channel: &Channel, flag: &str) -> String {
    let seconds = |seconds| Some(prost_types::Duration { seconds, nanos: 0 });
    let stage = Stage {
        name: "a quarter".into(),
        audience: Some(Audience {
            kind: Some(audience::Kind::BasisPoints(2_500)),
        }),
        variants: [(flag.to_string(), "on".into())].into(),
        min_duration: seconds(3_600),
        min_outcomes_per_cohort: 1_000_000,
        ..Default::default()
    };
    let release = Release {
        name: "metrics".into(),
        environment: "prod".into(),
        flags: vec![ReleaseFlag {
            flag_key: flag.into(),
            baseline_variant: "off".into(),
        }],
        stages: vec![stage],
        guardrails: Some(Guardrails {
            relative_error_rate: false,
            ..Default::default()
        }),
        policy: Some(RolloutPolicy {
            window: seconds(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut releases = ReleaseServiceClient::new(channel.clone());
    let request = CreateReleaseRequest {
        release: Some(release),
    };
    let created = releases.create_release(auth(request)).await.unwrap();
    let id = created.into_inner().release.unwrap().id;
    let reason = "test".into();
    let request = StartReleaseRequest {
        id: id.clone(),
        reason,
    };
    releases.start_release(auth(request)).await.unwrap();
    id
}

/// What one cohort's scopes recorded, as the test counts it and the windows sum it.
#[derive(Debug, Default, PartialEq)]
struct Cohort {
    writes: (u64, u64, u64),    // successes, failures, requests
    hits: (u64, f64, u64, f64), // count, sum, requests, request sum of squares
}

/// The release's closed windows, per cohort, polled until they hold `scopes` writes.
async fn windows_holding(channel: &Channel, id: &str, scopes: u64) -> BTreeMap<String, Cohort> {
    let mut releases = ReleaseServiceClient::new(channel.clone());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let request = GetReleaseRequest {
            id: id.into(),
            window_limit: 1_000,
        };
        let r = releases.get_release(auth(request)).await.unwrap();
        let mut seen: BTreeMap<String, Cohort> = BTreeMap::new();
        for m in r
            .into_inner()
            .release
            .unwrap()
            .windows
            .iter()
            .flat_map(|w| &w.metrics)
        {
            let c = seen.entry(m.cohort.clone()).or_default();
            match m.name.as_str() {
                "write" => {
                    c.writes.0 += m.successes;
                    c.writes.1 += m.failures;
                    c.writes.2 += m.requests;
                }
                "hits" => {
                    c.hits.0 += m.count;
                    c.hits.1 += m.sum;
                    c.hits.2 += m.requests;
                    c.hits.3 += m.request_sum_of_squares;
                }
                other => panic!("a metric nobody recorded: {other}"),
            }
        }
        if seen.values().map(|c| c.writes.0 + c.writes.1).sum::<u64>() >= scopes {
            return seen;
        }
        assert!(Instant::now() < deadline, "the windows hold {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_releases_windows_hold_each_cohorts_metrics_with_one_request_per_scope() {
    let server = start();
    let channel = connect(&server.url).await;
    let token = setup(&channel, &["search"]).await;
    let client = client(&server.url, token).await;
    let id = release(&channel, "search").await;
    // Wait for the release's rewrite to reach the client (without reading the flag, which
    // would count an evaluation).
    let mut admin = AdminServiceClient::new(channel.clone());
    let request = GetEnvironmentRequest { key: "prod".into() };
    let env = admin.get_environment(auth(request)).await.unwrap();
    let revision = env.into_inner().environment.unwrap().revision;
    let deadline = Instant::now() + DEADLINE;
    while client.revision() < revision {
        assert!(Instant::now() < deadline, "never applied r{revision}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut expected: BTreeMap<String, Cohort> = BTreeMap::new();
    for i in 0..200u64 {
        let ctx = Context::new(format!("user-{i}"));
        let hits = i % 3;
        let cohort = client
            .scope(async {
                let d = client.bool_details("search", &ctx, false);
                assert_eq!(d.rollout_id.as_deref(), Some(id.as_str()));
                client.track_outcome("write", i % 4 != 0);
                (0..hits).for_each(|_| client.track("hits", 1));
                Ok::<_, ()>(d.cohort.unwrap_or_default())
            })
            .await
            .unwrap();
        let c = expected.entry(cohort).or_default();
        c.writes.0 += u64::from(i % 4 != 0);
        c.writes.1 += u64::from(i % 4 == 0);
        c.writes.2 += 1;
        if hits > 0 {
            c.hits.0 += hits;
            c.hits.1 += hits as f64;
            c.hits.2 += 1;
            c.hits.3 += (hits * hits) as f64;
        }
    }
    expected.remove("");
    assert!(
        client.flush().await,
        "the report with release cohorts' metrics was accepted"
    );
    let scopes = expected.values().map(|c| c.writes.2).sum();
    let seen = windows_holding(&channel, &id, scopes).await;
    assert_eq!(
        seen, expected,
        "per cohort, once per scope, whatever else it read"
    );
    assert!(expected["canary"].writes.1 > 0 && expected["control"].hits.2 > 0);
    client.close().await;
}
