//! The team's own metrics through the public API on a real client (a real snapshot of
//! release-shaped flags, real scopes, the tower layer, a real recorder, reports to a closed
//! port), checked on the `MetricSeries` a report would carry.

use crate::Client;
use crate::layer::FlagwireLayer;
use crate::metric_event::MAX_SCOPE_NAMES;
use crate::metric_window::MAX_METRIC_KEYS;
use crate::metrics::{Served, Taken};
use crate::scope_tests::{client, read, user_in};
use crate::track::Attribution;
use flagwire_proto::v1::MetricSeries;
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};

/// The series of `name` for `flag` ("" for the release cohort's).
fn series<'a>(taken: &'a Taken, flag: &str, name: &str) -> &'a MetricSeries {
    let found = taken
        .metrics
        .iter()
        .find(|m| m.flag_key == flag && m.name == name);
    found.unwrap_or_else(|| panic!("no series of {name} for {flag:?}: {:#?}", taken.metrics))
}

/// (flag, variant, cohort, rollout id, name) of every series, in the report's order.
fn keys(taken: &Taken) -> Vec<[&str; 5]> {
    fn key(m: &MetricSeries) -> [&str; 5] {
        [&m.flag_key, &m.variant, &m.cohort, &m.rollout_id, &m.name].map(String::as_str)
    }
    taken.metrics.iter().map(key).collect()
}

#[tokio::test]
async fn a_scope_attributes_each_event_to_every_flag_and_once_to_the_release_cohort() {
    let client = client();
    let ctx = user_in("a", "canary");
    let _ = client
        .scope(async {
            read(&client, &ctx, &["a", "b", "plain", "a"]);
            client.track("hits", 1);
            client.track("hits", 2.5);
            client.observe("render_ms", 12.5);
            client.track_outcome("saved", false);
            Ok::<_, ()>(())
        })
        .await;
    let taken = client.take_metrics();
    let mut expected = Vec::new();
    for [flag, variant, cohort, release] in [
        ["", "", "canary", "r1"],
        ["a", "on", "canary", "r1"],
        ["b", "on", "canary", "r1"],
        ["plain", "on", "", ""],
    ] {
        for name in ["hits", "render_ms", "saved"] {
            expected.push([flag, variant, cohort, release, name]);
        }
    }
    assert_eq!(keys(&taken), expected, "per flag, and once for r1's canary");
    for flag in ["", "a", "b", "plain"] {
        let hits = series(&taken, flag, "hits");
        assert_eq!((hits.count, hits.sum, hits.sum_of_squares), (2, 3.5, 7.25));
        assert_eq!((hits.requests, hits.request_sum_of_squares), (1, 12.25));
        let ms = series(&taken, flag, "render_ms");
        let h = ms
            .histogram
            .as_ref()
            .expect("observed values have a histogram");
        assert_eq!((ms.count, ms.sum, h.count, h.sum), (1, 12.5, 1, 12_500.0));
        assert_eq!((ms.requests, ms.request_sum_of_squares), (1, 0.0));
        let saved = series(&taken, flag, "saved");
        assert_eq!((saved.successes, saved.failures, saved.count), (0, 1, 0));
    }
    let evaluations: u64 = taken
        .series
        .iter()
        .flat_map(|s| &s.evaluations)
        .map(|e| e.count)
        .sum();
    assert_eq!(evaluations, 4, "tracking reads no flag");
}

#[tokio::test]
async fn the_tower_layer_attributes_each_requests_events_to_it() {
    let client = client();
    let handler = {
        let client = client.clone();
        tower::service_fn(move |(user, hits): (crate::Context, u32)| {
            let client = client.clone();
            async move {
                read(&client, &user, &["a"]);
                (0..hits).for_each(|_| client.track("faq.hits", 1));
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            }
        })
    };
    let mut service = FlagwireLayer::new(client.clone()).layer(handler);
    let canary = user_in("a", "canary");
    for hits in [2, 1, 0] {
        let request = (canary.clone(), hits);
        service.ready().await.unwrap().call(request).await.unwrap();
    }
    let taken = client.take_metrics();
    let release = series(&taken, "", "faq.hits");
    assert_eq!((release.count, release.sum), (3, 3.0));
    // A request that tracked nothing adds nothing: the judge divides by the cohort's outcomes.
    assert_eq!((release.requests, release.request_sum_of_squares), (2, 5.0));
    assert_eq!(taken.cohort_outcomes[0].successes, 3);
}

#[tokio::test]
async fn nested_scopes_attribute_an_event_once_to_the_request() {
    let client = client();
    let ctx = user_in("a", "control");
    let _ = client
        .scope(async {
            read(&client, &ctx, &["a"]);
            client
                .measure("b", &ctx, |_| async {
                    client.track("x", 2);
                    Ok::<_, ()>(())
                })
                .await?;
            client.track("x", 3);
            Ok::<_, ()>(())
        })
        .await;
    // A measure with no enclosing scope is the request itself.
    let _ = client
        .measure("plain", &ctx, |_| async {
            client.track("y", 1);
            Ok::<_, ()>(())
        })
        .await;
    let taken = client.take_metrics();
    for flag in ["", "a", "b"] {
        let x = series(&taken, flag, "x");
        let got = (x.count, x.sum, x.requests, x.request_sum_of_squares);
        assert_eq!(got, (2, 5.0, 1, 25.0), "{flag:?}: one request totalling 5");
    }
    assert_eq!(series(&taken, "plain", "y").requests, 1);
    assert_eq!(taken.metrics.len(), 4);
}

#[tokio::test]
async fn outside_a_scope_events_go_to_the_flags_named_without_counting_evaluations() {
    let client = client();
    let ctx = user_in("a", "canary");
    let to = client.attribute_to(&ctx, &["a", "plain", "missing", "a"]);
    let served: Vec<_> = to.served().iter().map(|s| s.flag.as_str()).collect();
    assert_eq!(
        served,
        ["a", "plain"],
        "unknown flags are left out, repeats once"
    );
    to.track_outcome("payment", true);
    to.observe("job_ms", 40);
    to.track("signup", 1);
    let taken = client.take_metrics();
    assert!(
        taken.series.is_empty(),
        "no evaluation counted: {:?}",
        taken.series
    );
    assert_eq!(taken.metrics.len(), 3 * 3, "a, plain and r1's canary");
    assert!(taken.metrics.iter().all(|m| m.requests == 0), "no request");
    assert_eq!(series(&taken, "", "payment").successes, 1);
    assert_eq!(series(&taken, "plain", "job_ms").count, 1);

    // Inside a scope, an attribution still goes to its own flags only.
    let _ = client
        .scope(async {
            read(&client, &ctx, &["d"]);
            client.attribute_to(&ctx, &["plain"]).track("z", 1);
            Ok::<_, ()>(())
        })
        .await;
    let taken = client.take_metrics();
    let flags: Vec<_> = taken.metrics.iter().map(|m| m.flag_key.as_str()).collect();
    assert_eq!(flags, ["plain"]);
}

#[tokio::test]
async fn with_nothing_to_attribute_to_events_are_dropped_and_counted() {
    let client = client();
    let ctx = user_in("a", "canary");
    client.track("lonely", 1);
    client
        .attribute_to(&ctx, &["missing"])
        .track_outcome("lonely", true);
    // A scope that read no flag has nothing to attribute its three events to.
    let _ = client
        .scope(async {
            client.track("lonely", 1);
            client.track("lonely", 1);
            client.observe("lonely_ms", 3);
            Ok::<_, ()>(())
        })
        .await;
    let taken = client.take_metrics();
    assert_eq!((taken.metrics.len(), taken.dropped), (0, 5));
}

#[tokio::test]
async fn bad_names_and_values_are_dropped_and_counted_never_a_panic() {
    let client = client();
    let ctx = user_in("a", "canary");
    let longest = "x".repeat(64);
    let too_long = "x".repeat(65);
    let _ = client
        .scope(async {
            read(&client, &ctx, &["plain"]);
            for bad in [
                "", "Upper", "_lead", ".lead", "a b", "ms/s", "ünï", &too_long,
            ] {
                client.track(bad, 1);
            }
            drop(client.timer("Bad Timer"));
            for bad in [-1.0, -0.001, f64::NAN, f64::INFINITY] {
                client.observe("ms", bad);
            }
            for bad in [f64::NAN, f64::NEG_INFINITY, 1e200] {
                client.track("score", bad);
            }
            for ok in ["0k", "mem0.write", "a-b_c", &longest] {
                client.track(ok, -2);
            }
            client.observe("ms", -0.0);
            Ok::<_, ()>(())
        })
        .await;
    let taken = client.take_metrics();
    assert_eq!(taken.dropped, 8 + 1 + 4 + 3);
    let names: Vec<_> = taken.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["0k", "a-b_c", "mem0.write", "ms", &longest]);
    assert_eq!(
        series(&taken, "plain", "ms")
            .histogram
            .as_ref()
            .unwrap()
            .zero_count,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_timer_observes_the_elapsed_milliseconds_where_it_stops() {
    let client = client();
    let ctx = user_in("a", "canary");
    let _ = client
        .scope(async {
            read(&client, &ctx, &["plain"]);
            let _t = client.timer("render_ms");
            tokio::time::advance(Duration::from_millis(250)).await;
            let t = client.timer("render_ms");
            tokio::time::advance(Duration::from_micros(1_500)).await;
            assert_eq!(t.stop(), Duration::from_micros(1_500));
            Ok::<_, ()>(())
        })
        .await;
    let job = client.attribute_to(&ctx, &["plain"]).timer("job_ms");
    tokio::time::advance(Duration::from_secs(2)).await;
    drop(job);
    drop(client.timer("nowhere_ms")); // no scope, no flags: dropped
    let taken = client.take_metrics();
    let render = series(&taken, "plain", "render_ms");
    let h = render.histogram.as_ref().unwrap();
    // `_t` ran 251.5 ms (to the end of the scope), `t` 1.5 ms.
    assert_eq!(
        (render.count, render.sum, h.count, h.sum),
        (2, 253.0, 2, 253_000.0)
    );
    assert_eq!(render.requests, 1);
    let job = series(&taken, "plain", "job_ms");
    assert_eq!((job.sum, job.requests), (2_000.0, 0));
    assert_eq!(taken.dropped, 1);
}

fn flag(i: usize) -> Served {
    Served {
        flag: format!("f{i}"),
        variant: "on".into(),
        cohort: String::new(),
        rollout_id: String::new(),
    }
}

#[tokio::test]
async fn metric_keys_are_bounded_and_what_falls_beyond_is_counted() {
    let client = client();
    for i in 0..MAX_METRIC_KEYS + 2 {
        Attribution::of(&client, vec![flag(i)]).track("m", 1);
    }
    let taken = client.take_metrics();
    assert_eq!((taken.metrics.len(), taken.dropped), (MAX_METRIC_KEYS, 2));
    // One scope holds a bounded number of names too.
    let _ = client
        .scope(async {
            read(&client, &user_in("a", ""), &["plain"]);
            for i in 0..MAX_SCOPE_NAMES + 3 {
                client.track(&format!("n{i}"), 1);
            }
            client.track("n0", 1);
            Ok::<_, ()>(())
        })
        .await;
    let taken = client.take_metrics();
    assert_eq!((taken.metrics.len(), taken.dropped), (MAX_SCOPE_NAMES, 3));
    assert_eq!(series(&taken, "plain", "n0").count, 2);
}

/// Two scopes and an attributed event, as two clients record them alike.
async fn some_metrics(client: &Client) {
    let ctx = user_in("a", "canary");
    for ok in [true, false] {
        let _ = client
            .scope(async {
                read(client, &ctx, &["a", "b"]);
                client.track_outcome("write", ok);
                client.observe("ms", 7.25);
                Ok::<_, ()>(())
            })
            .await;
    }
    client.attribute_to(&ctx, &["plain"]).track("signup", 3);
}

#[tokio::test]
async fn a_failed_report_merges_the_metrics_back_into_the_next_window() {
    let (failed, direct) = (client(), client());
    some_metrics(&failed).await;
    some_metrics(&direct).await;
    assert!(!failed.flush().await, "nobody listens on port 1");
    some_metrics(&failed).await;
    let (kept, expected) = (failed.take_metrics().metrics, direct.take_metrics().metrics);
    assert_eq!(kept.len(), expected.len());
    for (k, e) in kept.iter().zip(&expected) {
        assert_eq!(k.name, e.name);
        assert_eq!(
            (k.flag_key.as_str(), k.count),
            (e.flag_key.as_str(), 2 * e.count)
        );
        assert_eq!((k.successes, k.requests), (2 * e.successes, 2 * e.requests));
        let (kh, eh) = (k.histogram.as_ref(), e.histogram.as_ref());
        assert_eq!(kh.map(|h| h.count), eh.map(|h| 2 * h.count));
    }
}
