//! What the SDK reports reaches the real server: applied revisions, evaluation counts, measured
//! outcomes with their latency buckets, and the tower layer's per-request attribution.

use crate::support::*;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use flagwire::{Client, Context, FlagwireLayer};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_server_learns_each_applied_revision() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.bool_flag("f", "production").await;
    let token = admin.sdk_token("svc", "production").await;
    let client = Client::builder(server.url(), &token).build().unwrap();
    client.wait_ready(WAIT).await.unwrap();
    admin.set("f", "production", true).await;
    let revision = admin.revision("production").await;
    let started = Instant::now();
    let deadline = started + WAIT;
    while admin.applied("production", revision).await != (1, 1) {
        assert!(
            Instant::now() < deadline,
            "the instance never acknowledged revision {revision}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "acknowledged {:?} after the write returned",
        started.elapsed()
    );
    client.close().await;
}

#[tokio::test]
async fn counts_outcomes_and_latency_buckets_arrive() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.bool_flag("f", "production").await;
    admin.set("f", "production", true).await;
    let token = admin.sdk_token("svc", "production").await;
    let client = Client::builder(server.url(), &token)
        .metrics_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    let ctx = Context::new("user-1");
    for _ in 0..10 {
        assert!(client.bool_value("f", &ctx, false));
    }
    for i in 0..4 {
        let result = client
            .measure("f", &ctx, |variant| async move {
                assert_eq!(variant, "on");
                tokio::time::sleep(Duration::from_millis(20)).await;
                if i == 3 { Err("boom") } else { Ok(()) }
            })
            .await;
        assert_eq!(result.is_ok(), i != 3);
    }
    assert!(client.flush().await, "the window was delivered");
    let rows = admin.usage("production", "f").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (
            row.variant.as_str(),
            row.evaluations,
            row.successes,
            row.errors
        ),
        ("on", 14, 3, 1)
    );
    // 20 ms sleeps land in the buckets just above 20,000 µs (each bucket spans 9%).
    assert!(
        row.p50_us >= 20_000.0 && row.p50_us < 40_000.0,
        "p50 {}",
        row.p50_us
    );
    assert!(row.p99_us >= row.p50_us, "{row:?}");
    client.close().await;
}

async fn checkout(
    State(client): State<Client>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<&'static str, StatusCode> {
    let ctx = Context::new(query["user"].clone());
    let on = client.bool_value("new-checkout", &ctx, false);
    if query.contains_key("fail") {
        Err(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        Ok(if on { "new" } else { "old" })
    }
}

#[tokio::test]
async fn the_tower_layer_attributes_errors_to_the_variant_served() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.split_flag("new-checkout", "production").await;
    let token = admin.sdk_token("svc", "production").await;
    let client = Client::builder(server.url(), &token)
        .metrics_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    let app = Router::new()
        .route("/checkout", get(checkout))
        .with_state(client.clone())
        .layer(FlagwireLayer::new(client.clone()));
    // Users on "on" fail every third request; users on "off" never fail.
    let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
    for i in 0..60 {
        let user = format!("user-{i}");
        let variant = if client.bool_value("new-checkout", &Context::new(user.clone()), false) {
            "on"
        } else {
            "off"
        };
        let fail = variant == "on" && i % 3 == 0;
        let uri = format!("/checkout?user={user}{}", if fail { "&fail=1" } else { "" });
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::get(uri)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status().is_server_error(), fail);
        let e = expected.entry(variant.into()).or_default();
        if fail { e.1 += 1 } else { e.0 += 1 }
    }
    assert!(client.flush().await);
    let rows = admin.usage("production", "new-checkout").await;
    for row in &rows {
        let (successes, errors) = expected[&row.variant];
        assert_eq!(
            (row.successes, row.errors),
            (successes, errors),
            "variant {}",
            row.variant
        );
        assert_eq!(
            row.evaluations,
            2 * (successes + errors),
            "the test's own read plus the handler's"
        );
    }
    assert_eq!(rows.len(), 2, "both variants were served: {rows:?}");
    assert!(expected["on"].1 > 0 && expected["off"].1 == 0);
    client.close().await;
}
