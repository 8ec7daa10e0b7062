//! Runs `tests/vectors/histogram.json` (index.json's `"histogram"`) through
//! `flagwire_core::histogram`: the boundary constants, every bucket index, and every merge
//! (counts exactly, quantile indexes exactly, upper bounds to a relative 1e-9), both merging
//! in memory and through the wire form.

#[path = "support/vectors.rs"]
mod support;

use flagwire_core::histogram::{BOUNDARIES, Histogram, QuantileAt, bucket_index};
use serde_json::Value as Json;
use support::{read_json, vectors_dir};

fn load() -> Json {
    let dir = vectors_dir();
    let index = read_json(&dir.join("index.json"));
    let name = index["histogram"]
        .as_str()
        .expect("index.json names the histogram file");
    read_json(&dir.join(name))
}

fn u64_of(v: &Json) -> u64 {
    v.as_str()
        .expect("values are decimal strings")
        .parse()
        .unwrap()
}

fn index_of(v: &Json) -> Option<i32> {
    v.as_i64().map(|i| i32::try_from(i).unwrap())
}

fn check_quantile(what: &str, got: Option<QuantileAt>, want: &Json, problems: &mut Vec<String>) {
    match (got, want) {
        (None, Json::Null) => {}
        (Some(g), Json::Object(w)) => {
            let index = index_of(&w["index"]);
            let bound = w["upperBoundUs"].as_f64().unwrap();
            let close =
                (g.upper_bound_us - bound).abs() <= 1e-9 * bound.abs().max(f64::MIN_POSITIVE);
            if g.index != index || !close {
                problems.push(format!("{what}: got {g:?}, expected {want}"));
            }
        }
        _ => problems.push(format!("{what}: got {got:?}, expected {want}")),
    }
}

#[test]
fn boundaries_match_the_file() {
    let doc = load();
    let file: Vec<u64> = doc["boundaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(u64_of)
        .collect();
    assert_eq!(file, BOUNDARIES);
}

#[test]
fn every_index() {
    let doc = load();
    let indices = doc["indices"].as_array().unwrap();
    assert!(indices.len() >= 300, "only {} indices", indices.len());
    let failures: Vec<String> = indices
        .iter()
        .filter_map(|e| {
            let v = u64_of(&e["value"]);
            let want = index_of(&e["index"]);
            let got = bucket_index(v);
            (got != want).then(|| format!("index({v}) = {got:?}, expected {want:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_merge() {
    let doc = load();
    let mut problems = Vec::new();
    for case in doc["merges"].as_array().unwrap() {
        let d = case["description"].as_str().unwrap();
        let mut merged = Histogram::new();
        let mut via_wire = Histogram::new();
        for values in case["histograms"].as_array().unwrap() {
            let mut h = Histogram::new();
            for v in values.as_array().unwrap() {
                h.record(u64_of(v));
            }
            merged.merge(&h);
            via_wire.merge(&Histogram::from_proto(&h.to_proto()).unwrap());
        }
        assert_eq!(
            merged, via_wire,
            "{d}: merging through the wire form differs"
        );
        let e = &case["expected"];
        let counts: Vec<u64> = e["bucketCounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        let wire = merged.to_proto();
        let got = (wire.count, wire.zero_count, wire.offset, wire.bucket_counts);
        let want = (
            e["count"].as_u64().unwrap(),
            e["zeroCount"].as_u64().unwrap(),
            i32::try_from(e["offset"].as_i64().unwrap()).unwrap(),
            counts,
        );
        if got != want {
            problems.push(format!(
                "{d}: (count, zeroCount, offset, bucketCounts) = {got:?}, expected {want:?}"
            ));
        }
        // The sum is a double: exact while it stays below 2^53.
        let sum: u128 = e["sum"].as_str().unwrap().parse().unwrap();
        if sum < 1 << 53 && merged.sum() != sum as f64 {
            problems.push(format!("{d}: sum = {}, expected {sum}", merged.sum()));
        }
        for (name, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
            check_quantile(
                &format!("{d}: {name}"),
                merged.quantile(q),
                &e[name],
                &mut problems,
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
