//! Every case of `tests/metrics/encoding.json` through this SDK: each scope of a case is a real
//! request scope (the scope machinery, seeded with what the case says it served) on a real
//! client, its events recorded through the public API; events outside scopes go through an
//! [`Attribution`] to the flags the case names. The window taken is compared with the case's
//! `metrics` field by field: order as given, doubles with a relative tolerance of 1e-12,
//! absent fields as zero.

use crate::Client;
use crate::metrics::Served;
use crate::scope_tests::client;
use crate::track::Attribution;
use flagwire_proto::v1::{ExponentialHistogram, MetricSeries};
use serde_json::Value;

const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/metrics/encoding.json"
));

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// A uint64 (a string in protobuf JSON).
fn as_uint(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("a uint64"),
        n => n.as_u64().expect("a uint64"),
    }
}

/// A uint64 field; absent is zero.
fn uint(v: &Value, field: &str) -> u64 {
    v.get(field).map_or(0, as_uint)
}

fn double(v: &Value, field: &str) -> f64 {
    v.get(field).map_or(0.0, |n| n.as_f64().expect("a double"))
}

fn served(list: &Value) -> Vec<Served> {
    let list = list.as_array().expect("a list of served flags");
    list.iter()
        .map(|s| Served {
            flag: text(s, "flag").into(),
            variant: text(s, "variant").into(),
            cohort: text(s, "cohort").into(),
            rollout_id: text(s, "rolloutId").into(),
        })
        .collect()
}

/// Records one event of the fixture: into the current scope, or through `to`.
fn record(client: &Client, to: Option<&Attribution>, e: &Value) {
    let value = e.get("value").map(|v| v.as_f64().expect("a number"));
    if let Some(name) = e.get("track").and_then(Value::as_str) {
        match to {
            Some(a) => a.track(name, value.unwrap_or(1.0)),
            None => client.track(name, value.unwrap_or(1.0)),
        }
    } else if let Some(name) = e.get("observe").and_then(Value::as_str) {
        let value = value.expect("observe has a value");
        match to {
            Some(a) => a.observe(name, value),
            None => client.observe(name, value),
        }
    } else if let Some(name) = e.get("outcome").and_then(Value::as_str) {
        let ok = e["ok"].as_bool().expect("ok is a boolean");
        match to {
            Some(a) => a.track_outcome(name, ok),
            None => client.track_outcome(name, ok),
        }
    } else {
        panic!("an event of an unknown kind: {e}");
    }
}

fn close(at: &str, expected: f64, actual: f64) {
    let tolerance = 1e-12 * expected.abs().max(actual.abs());
    assert!(
        (expected - actual).abs() <= tolerance,
        "{at}: expected {expected}, got {actual}"
    );
}

fn same_histogram(at: &str, expected: Option<&Value>, actual: Option<&ExponentialHistogram>) {
    let (e, a) = match (expected, actual) {
        (None, None) => return,
        (Some(e), Some(a)) => (e, a),
        (e, a) => panic!("{at}: expected {e:?}, got {a:?}"),
    };
    let counts: Vec<u64> = match e.get("bucketCounts").and_then(Value::as_array) {
        None => Vec::new(),
        Some(list) => list.iter().map(as_uint).collect(),
    };
    assert_eq!(a.scale as i64, e["scale"].as_i64().unwrap(), "{at}.scale");
    assert_eq!(a.count, uint(e, "count"), "{at}.count");
    close(&format!("{at}.sum"), double(e, "sum"), a.sum);
    assert_eq!(a.zero_count, uint(e, "zeroCount"), "{at}.zeroCount");
    assert_eq!(
        i64::from(a.offset),
        e.get("offset").map_or(0, |o| o.as_i64().unwrap()),
        "{at}.offset"
    );
    assert_eq!(a.bucket_counts, counts, "{at}.bucketCounts");
}

const FIELDS: [&str; 13] = [
    "name",
    "flagKey",
    "variant",
    "cohort",
    "rolloutId",
    "count",
    "sum",
    "sumOfSquares",
    "histogram",
    "successes",
    "failures",
    "requests",
    "requestSumOfSquares",
];

fn same_series(at: &str, e: &Value, a: &MetricSeries) {
    for field in e.as_object().expect("a MetricSeries").keys() {
        assert!(
            FIELDS.contains(&field.as_str()),
            "{at}: unknown field {field}"
        );
    }
    let strings = [
        ("name", &a.name),
        ("flagKey", &a.flag_key),
        ("variant", &a.variant),
        ("cohort", &a.cohort),
        ("rolloutId", &a.rollout_id),
    ];
    for (field, actual) in strings {
        assert_eq!(actual, text(e, field), "{at}.{field}");
    }
    let uints = [
        ("count", a.count),
        ("successes", a.successes),
        ("failures", a.failures),
        ("requests", a.requests),
    ];
    for (field, actual) in uints {
        assert_eq!(actual, uint(e, field), "{at}.{field}");
    }
    let doubles = [
        ("sum", a.sum),
        ("sumOfSquares", a.sum_of_squares),
        ("requestSumOfSquares", a.request_sum_of_squares),
    ];
    for (field, actual) in doubles {
        close(&format!("{at}.{field}"), double(e, field), actual);
    }
    let histogram = e.get("histogram");
    same_histogram(&format!("{at}.histogram"), histogram, a.histogram.as_ref());
}

#[tokio::test]
async fn every_case_of_the_shared_fixture() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("encoding.json parses");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8, "the fixture has its cases");
    for case in cases {
        let description = text(case, "description");
        let client = client();
        for scope in case
            .get("scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let events = scope["events"].as_array().expect("events");
            let work = async {
                events.iter().for_each(|e| record(&client, None, e));
            };
            crate::scope::run(&client, served(&scope["served"]), work, |_| true).await;
        }
        for e in case
            .get("unscoped")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let to = Attribution::of(&client, served(&e["flags"]));
            record(&client, Some(&to), e);
        }
        let taken = client.take_metrics();
        assert_eq!(taken.dropped, 0, "{description}: nothing dropped");
        let expected = case["metrics"].as_array().expect("metrics");
        let names: Vec<_> = taken
            .metrics
            .iter()
            .map(|m| (&m.flag_key, &m.name))
            .collect();
        assert_eq!(
            taken.metrics.len(),
            expected.len(),
            "{description}: got {names:?}"
        );
        for (i, (e, a)) in expected.iter().zip(&taken.metrics).enumerate() {
            same_series(&format!("{description}: metrics[{i}]"), e, a);
        }
    }
}
