//! Every case of `tests/vectors/` (and `FLAGWIRE_VECTORS`) through the SDK's public API: each
//! file becomes a bootstrap snapshot for an offline client, and each case calls the typed
//! `*_details` getter for its type.

#[path = "../../core/tests/support/vectors.rs"]
mod vectors;

use flagwire::{Client, Context, EvaluationDetails};
use flagwire_proto::v1::{ErrorCode, Snapshot, ValueType};
use prost::Message;
use serde_json::Value as Json;
use vectors::*;

fn outcome<T>(d: EvaluationDetails<T>, json: impl Fn(T) -> Json) -> Outcome {
    Outcome {
        reason: d.reason,
        error_code: d.error_code.unwrap_or(ErrorCode::Unspecified),
        variant: d.variant.clone().unwrap_or_default(),
        cohort: d.cohort.clone().unwrap_or_default(),
        rollout_id: d.rollout_id.clone().unwrap_or_default(),
        flag_version: d.flag_version,
        value: Some(json(d.value)),
    }
}

#[tokio::test]
async fn every_vector_case_through_the_public_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    for (n, file) in load_all().into_iter().enumerate() {
        let path = dir.path().join(format!("{n}.bin"));
        let snapshot = Snapshot {
            environment: file.environment.clone(),
            revision: 1,
            flags: file.flags.clone(),
            segments: file.segments.clone(),
        };
        std::fs::write(&path, snapshot.encode_to_vec()).unwrap();
        let client = Client::builder("http://offline.invalid", "-")
            .bootstrap_file(&path)
            .offline(true)
            .build()
            .unwrap();
        for case in &file.cases {
            let ctx = Context::from(case.context.clone());
            let d = &case.default;
            let result = match case.expected_type {
                Some(ValueType::Boolean) => outcome(
                    client.bool_details(&case.flag, &ctx, d.as_bool().unwrap_or(false)),
                    Json::from,
                ),
                Some(ValueType::String) => outcome(
                    client.string_details(&case.flag, &ctx, d.as_str().unwrap_or("")),
                    Json::from,
                ),
                Some(ValueType::Integer) => outcome(
                    client.int_details(&case.flag, &ctx, d.as_i64().unwrap_or(0)),
                    Json::from,
                ),
                Some(ValueType::Float) => outcome(
                    client.float_details(&case.flag, &ctx, d.as_f64().unwrap_or(0.0)),
                    Json::from,
                ),
                Some(_) => outcome(client.json_details(&case.flag, &ctx, d.clone()), |v| v),
                None => outcome(client.value_details(&case.flag, &ctx, d.clone()), |v| v),
            };
            tally.check(&file, case, &result);
        }
    }
    tally.finish();
}
