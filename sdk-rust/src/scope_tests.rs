//! Request scopes on a real client (a real snapshot of release-shaped flags, a real recorder,
//! reports to a closed port), checked on the protobuf messages a flush would send: one outcome
//! per (release, cohort) per scope, whatever the number of the release's flags it read.

use crate::builder::ClientBuilder;
use crate::client::{Client, Shared, State};
use crate::context::Context;
use crate::layer::FlagwireLayer;
use flagwire_core::Snapshot;
use flagwire_proto::v1::*;
use std::sync::Arc;
use tower::{Layer, Service, ServiceExt};

/// Nothing listens on port 1, so a report fails as it would with the server away.
const CLOSED: &str = "http://127.0.0.1:1";

fn variant(key: &str, kind: flag_value::Kind) -> Variant {
    Variant {
        key: key.into(),
        value: Some(FlagValue { kind: Some(kind) }),
        description: String::new(),
    }
}

fn flag(key: &str, serve: serve::Kind) -> Flag {
    let config = FlagConfig {
        enabled: true,
        off_variant: "off".into(),
        default_rule: Some(Serve { kind: Some(serve) }),
        ..Default::default()
    };
    Flag {
        key: key.into(),
        r#type: ValueType::Boolean as i32,
        variants: vec![
            variant("on", flag_value::Kind::BoolValue(true)),
            variant("off", flag_value::Kind::BoolValue(false)),
        ],
        environments: [("production".to_string(), config)].into(),
        version: 1,
        ..Default::default()
    }
}

/// [`flag`] with string values.
fn string_flag(flag: Flag) -> Flag {
    Flag {
        r#type: ValueType::String as i32,
        variants: vec![
            variant("on", flag_value::Kind::StringValue("new".into())),
            variant("off", flag_value::Kind::StringValue("old".into())),
        ],
        ..flag
    }
}

/// A flag of `release` at a 25 % stage, shaped as the server rewrites it: `[canary 25 %,
/// unlabelled 50 %, control 25 %]` on the release's salt.
fn release_flag(key: &str, release: &str) -> Flag {
    let entry = |variant: &str, weight, label: &str| SplitEntry {
        variant: variant.into(),
        weight,
        label: label.into(),
    };
    flag(
        key,
        serve::Kind::Split(Split {
            entries: vec![
                entry("on", 2_500, "canary"),
                entry("off", 5_000, ""),
                entry("off", 2_500, "control"),
            ],
            bucket_by: String::new(),
            salt: format!("salt-{release}"),
            rollout_id: release.into(),
        }),
    )
}

pub(crate) fn snapshot() -> Snapshot {
    let flags = vec![
        release_flag("a", "r1"),
        release_flag("b", "r1"),
        release_flag("c", "r1"),
        string_flag(release_flag("s", "r1")),
        release_flag("d", "r2"),
        flag("plain", serve::Kind::Variant("on".into())),
    ];
    Snapshot::new("production", 1, flags, [])
}

/// A client serving [`snapshot`] whose reports go nowhere.
pub(crate) fn client() -> Client {
    let options = ClientBuilder::new(CLOSED.into(), "-".into()).into_options();
    let channel = tonic::transport::Endpoint::from_static(CLOSED).connect_lazy();
    let shared = Shared::new(options, Some(snapshot()), State::Ready, Some(channel));
    Client::new(Arc::new(shared), None)
}

/// A unit whose cohort in `flag` is `cohort` ("" for the unlabelled middle).
pub(crate) fn user_in(flag: &str, cohort: &str) -> Context {
    let snapshot = snapshot();
    (0..)
        .map(|i| Context::new(format!("user-{i}")))
        .find(|ctx| snapshot.evaluate(flag, &ctx.inner, None).cohort == cohort)
        .expect("some user lands in every cohort")
}

/// (release, cohort, successes, errors) of every cohort outcome, sorted.
fn outcomes(client: &Client) -> Vec<(String, String, u64, u64)> {
    let mut out: Vec<_> = client
        .take_metrics()
        .cohort_outcomes
        .into_iter()
        .map(|c| {
            let latency = c.latency_us.expect("a latency histogram");
            let counted = latency.bucket_counts.iter().sum::<u64>() + latency.zero_count;
            assert_eq!(counted, c.successes + c.errors, "one latency per outcome");
            assert_eq!(latency.count, counted);
            (c.release_id, c.cohort, c.successes, c.errors)
        })
        .collect();
    out.sort();
    out
}

fn row(release: &str, cohort: &str, successes: u64, errors: u64) -> (String, String, u64, u64) {
    (release.into(), cohort.into(), successes, errors)
}

/// Reads `flags` as booleans.
pub(crate) fn read(client: &Client, ctx: &Context, flags: &[&str]) {
    for f in flags {
        client.bool_value(f, ctx, false);
    }
}

#[tokio::test]
async fn three_flags_of_one_release_in_one_scope_are_one_outcome() {
    let client = client();
    let ctx = user_in("a", "canary");
    let r: Result<(), ()> = client
        .scope(async {
            read(&client, &ctx, &["a", "b", "c", "a"]);
            Ok(())
        })
        .await;
    assert!(r.is_ok());
    let taken = client.take_metrics();
    let outcomes: Vec<_> = taken
        .cohort_outcomes
        .iter()
        .map(|c| (c.release_id.as_str(), c.cohort.as_str(), c.successes))
        .collect();
    assert_eq!(outcomes, [("r1", "canary", 1)]);
    // The per-flag series still get the outcome each: usage is per flag.
    let mut per_flag: Vec<_> = taken
        .series
        .iter()
        .map(|s| (s.flag_key.as_str(), s.successes))
        .collect();
    per_flag.sort();
    assert_eq!(per_flag, [("a", 1), ("b", 1), ("c", 1)]);
}

#[tokio::test]
async fn two_scopes_are_two_outcomes_and_errors_count_as_errors() {
    let client = client();
    let ctx = user_in("a", "canary");
    let _ = client
        .scope(async {
            read(&client, &ctx, &["a", "b"]);
            Ok::<_, ()>(())
        })
        .await;
    let _ = client
        .scope(async {
            read(&client, &ctx, &["c"]);
            Err::<(), _>("boom")
        })
        .await;
    assert_eq!(outcomes(&client), [row("r1", "canary", 1, 1)]);
}

#[tokio::test]
async fn flags_of_two_releases_are_one_outcome_each_and_a_control_unit_is_control() {
    let client = client();
    let ctx = user_in("a", "control");
    let r2 = client.bool_details("d", &ctx, false).cohort;
    let _ = client
        .scope(async {
            read(&client, &ctx, &["a", "d", "b", "plain"]);
            Ok::<_, ()>(())
        })
        .await;
    let mut expected = vec![row("r1", "control", 1, 0)];
    expected.extend(r2.map(|cohort| row("r2", &cohort, 1, 0)));
    expected.sort();
    assert_eq!(outcomes(&client), expected);
    // And a unit in both releases' labelled cohorts is one outcome for each.
    let both = (0..)
        .map(|i| Context::new(format!("user-{i}")))
        .find(|ctx| {
            let s = snapshot();
            s.evaluate("a", &ctx.inner, None).cohort == "canary"
                && s.evaluate("d", &ctx.inner, None).cohort == "control"
        })
        .unwrap();
    let _ = client
        .scope(async {
            read(&client, &both, &["d", "a", "c"]);
            Ok::<_, ()>(())
        })
        .await;
    assert_eq!(
        outcomes(&client),
        [row("r1", "canary", 1, 0), row("r2", "control", 1, 0)]
    );
}

#[tokio::test]
async fn unlabelled_and_unscoped_evaluations_record_no_release_outcome() {
    let client = client();
    let middle = user_in("a", "");
    let _ = client
        .scope(async {
            read(&client, &middle, &["a", "b", "plain"]);
            Ok::<_, ()>(())
        })
        .await;
    // Outside any scope, even a canary unit's reads are usage only.
    read(&client, &user_in("a", "canary"), &["a", "b", "c"]);
    let taken = client.take_metrics();
    assert!(taken.cohort_outcomes.is_empty(), "{taken:?}");
    assert_eq!(
        taken.series.iter().map(|s| s.successes).sum::<u64>(),
        3,
        "the scope's outcome is on each of its three flags"
    );
}

#[tokio::test]
async fn measure_is_a_scope_over_its_flag_and_what_its_work_reads() {
    let client = client();
    let ctx = user_in("a", "canary");
    let (c, x) = (&client, &ctx);
    let r = client
        .measure("a", &ctx, |variant| async move {
            assert_eq!(variant, "on");
            // A string read counts as well as a boolean one.
            assert_eq!(c.string_value("s", x, "default"), "new");
            read(c, x, &["c"]);
            Err::<(), _>("failed")
        })
        .await;
    assert!(r.is_err());
    let m = client.start_measure("c", &ctx);
    assert_eq!(m.variant(), "on");
    m.finish(true);
    let unfinished = client.start_measure("plain", &ctx);
    drop(unfinished);
    let taken = client.take_metrics();
    let errors: u64 = taken.series.iter().map(|s| s.errors).sum();
    assert_eq!(errors, 3, "a, s and c each got measure's error");
    let mut rows: Vec<_> = taken
        .cohort_outcomes
        .iter()
        .map(|c| (c.release_id.as_str(), c.successes, c.errors))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [("r1", 1, 1)],
        "measure's error, start_measure's success"
    );
}

#[tokio::test]
async fn nested_scopes_each_record_once_and_the_outer_sees_the_inner_flags() {
    let client = client();
    let ctx = user_in("a", "canary");
    let _ = client
        .scope(async {
            client
                .measure("a", &ctx, |_| async {
                    read(&client, &ctx, &["b"]);
                    Ok::<_, ()>(())
                })
                .await?;
            Err::<(), ()>(())
        })
        .await;
    let taken = client.take_metrics();
    let per_flag = |flag: &str| {
        let s = taken.series.iter().find(|s| s.flag_key == flag).unwrap();
        (s.successes, s.errors)
    };
    assert_eq!(per_flag("a"), (1, 1), "the inner success, the outer error");
    assert_eq!(per_flag("b"), (1, 1));
    let c = &taken.cohort_outcomes[..];
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].successes, c[0].errors), (1, 1));
}

#[tokio::test]
async fn a_panicking_scope_is_an_error_and_a_cancelled_one_nothing() {
    let client = client();
    let ctx = user_in("a", "control");
    let (c, x) = (client.clone(), ctx.clone());
    let panicked = tokio::spawn(async move {
        c.scope(async {
            read(&c, &x, &["a"]);
            if x.inner.targeting_key.starts_with("user-") {
                panic!("the handler panicked");
            }
            Ok::<_, ()>(())
        })
        .await
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    assert_eq!(outcomes(&client), [row("r1", "control", 0, 1)]);

    let (c, x) = (client.clone(), ctx.clone());
    let (read_it, has_read) = tokio::sync::oneshot::channel();
    let cancelled = tokio::spawn(async move {
        c.scope(async {
            read(&c, &x, &["a"]);
            let _ = read_it.send(());
            std::future::pending::<Result<(), ()>>().await
        })
        .await
    });
    // Cancelled once it has read the flag and waits.
    has_read.await.unwrap();
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(outcomes(&client), []);
}

#[tokio::test]
async fn the_tower_layer_makes_each_request_a_scope() {
    let client = client();
    let canary = user_in("a", "canary");
    let handler = {
        let client = client.clone();
        tower::service_fn(move |user: Context| {
            let client = client.clone();
            async move {
                read(&client, &user, &["a", "b", "c"]);
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            }
        })
    };
    let mut service = FlagwireLayer::new(client.clone()).layer(handler);
    for user in [&canary, &canary, &user_in("a", "control")] {
        service
            .ready()
            .await
            .unwrap()
            .call(user.clone())
            .await
            .unwrap();
    }
    assert_eq!(
        outcomes(&client),
        [row("r1", "canary", 2, 0), row("r1", "control", 1, 0)]
    );
}

#[tokio::test]
async fn a_failed_report_puts_the_cohort_outcomes_back() {
    let client = client();
    let ctx = user_in("a", "canary");
    for ok in [true, false, true] {
        let _ = client
            .scope(async {
                read(&client, &ctx, &["a", "b"]);
                if ok { Ok(()) } else { Err(()) }
            })
            .await;
    }
    assert!(!client.flush().await, "nobody listens on port 1");
    assert_eq!(
        outcomes(&client),
        [row("r1", "canary", 2, 1)],
        "kept for the next report"
    );
}
