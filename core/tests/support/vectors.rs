//! Loads the cross-language vector files of `tests/vectors/` (and any in `FLAGWIRE_VECTORS`)
//! into protobuf messages, and compares results with expectations. Shared by `core`'s runner
//! and the server's remote-evaluation test.
#![allow(dead_code)]

use flagwire_proto::v1::{
    ErrorCode, EvaluationContext, Flag, FlagValue, Reason, Segment, ValueType, flag_value,
};
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// One case file.
pub struct VectorFile {
    /// Where it came from.
    pub path: PathBuf,
    /// Environment evaluated.
    pub environment: String,
    /// Flags.
    pub flags: Vec<Flag>,
    /// Segments.
    pub segments: Vec<Segment>,
    /// Cases.
    pub cases: Vec<Case>,
}

/// One case.
pub struct Case {
    /// The failure message.
    pub description: String,
    /// Flag key.
    pub flag: String,
    /// Expected type, `None` for "any".
    pub expected_type: Option<ValueType>,
    /// The caller's default.
    pub default: Json,
    /// The context.
    pub context: EvaluationContext,
    /// The expectation.
    pub expected: Json,
}

/// The repository's `tests/vectors` directory.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn pool() -> &'static DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(flagwire_proto::FILE_DESCRIPTOR_SET).expect("descriptor set")
    })
}

/// Parses protobuf JSON of message `name` (e.g. `flagwire.v1.Flag`) into `M`.
pub fn from_json<M: prost::Message + Default>(name: &str, json: &Json) -> M {
    let desc = pool().get_message_by_name(name).expect("message in pool");
    let dynamic = DynamicMessage::deserialize(desc, json.clone())
        .unwrap_or_else(|e| panic!("bad {name} JSON {json}: {e}"));
    dynamic.transcode_to().expect("transcode")
}

fn value_type(name: &str) -> Option<ValueType> {
    match name {
        "boolean" => Some(ValueType::Boolean),
        "string" => Some(ValueType::String),
        "integer" => Some(ValueType::Integer),
        "float" => Some(ValueType::Float),
        "object" => Some(ValueType::Object),
        _ => None,
    }
}

/// Every case file named by `index.json`, then every file in `FLAGWIRE_VECTORS`.
pub fn load_all() -> Vec<VectorFile> {
    let dir = vectors_dir();
    let index: Json = read_json(&dir.join("index.json"));
    let mut paths: Vec<PathBuf> = index["files"]
        .as_array()
        .expect("index.json files")
        .iter()
        .map(|f| dir.join(f.as_str().unwrap()))
        .collect();
    if let Some(extra) = std::env::var_os("FLAGWIRE_VECTORS") {
        paths.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
    }
    paths.iter().map(|p| load(p)).collect()
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(path: &Path) -> VectorFile {
    let json = read_json(path);
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    VectorFile {
        path: path.to_owned(),
        environment: json["environment"].as_str().unwrap_or_default().to_owned(),
        flags: list("flags")
            .iter()
            .map(|f| from_json("flagwire.v1.Flag", f))
            .collect(),
        segments: list("segments")
            .iter()
            .map(|s| from_json("flagwire.v1.Segment", s))
            .collect(),
        cases: list("cases")
            .into_iter()
            .map(|c| Case {
                description: c["description"].as_str().unwrap().to_owned(),
                flag: c["flag"].as_str().unwrap().to_owned(),
                expected_type: value_type(c["type"].as_str().unwrap_or("any")),
                default: c["default"].clone(),
                context: from_json("flagwire.v1.EvaluationContext", &c["context"]),
                expected: c["expected"].clone(),
            })
            .collect(),
    }
}

/// A flag value as plain JSON (integers as JSON numbers).
pub fn value_json(value: &FlagValue) -> Json {
    match &value.kind {
        Some(flag_value::Kind::BoolValue(b)) => Json::Bool(*b),
        Some(flag_value::Kind::StringValue(s)) => Json::String(s.clone()),
        Some(flag_value::Kind::IntValue(i)) => Json::from(*i),
        Some(flag_value::Kind::FloatValue(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        Some(flag_value::Kind::ObjectValue(s)) => {
            let dynamic = s.transcode_to_dynamic();
            serde_json::to_value(&dynamic).expect("struct to JSON")
        }
        None => Json::Null,
    }
}

/// Numbers compare by value, so `1` and `1.0` agree.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A result in the vectors' terms, compared with a case's expectation; `Err` describes the
/// first mismatch.
pub struct Outcome {
    /// The value served, or `None` on error (the default then applies).
    pub value: Option<Json>,
    /// Variant.
    pub variant: String,
    /// Reason.
    pub reason: Reason,
    /// Error code.
    pub error_code: ErrorCode,
    /// Cohort.
    pub cohort: String,
    /// Rollout id of the split served.
    pub rollout_id: String,
    /// Flag version.
    pub flag_version: u64,
}

/// Checks `outcome` against `case`.
pub fn check(case: &Case, outcome: &Outcome) -> Result<(), String> {
    let e = &case.expected;
    let value = outcome
        .value
        .clone()
        .unwrap_or_else(|| case.default.clone());
    let reason = flagwire_core::evaluation::reason_name(outcome.reason);
    let code = flagwire_core::evaluation::error_code_name(outcome.error_code);
    let mut problems = Vec::new();
    if !same(&value, &e["value"]) {
        problems.push(format!("value {value} != {}", e["value"]));
    }
    if outcome.variant != e["variant"].as_str().unwrap_or_default() {
        problems.push(format!("variant {:?} != {}", outcome.variant, e["variant"]));
    }
    if Some(reason) != e["reason"].as_str() {
        problems.push(format!("reason {reason} != {}", e["reason"]));
    }
    if code != e["errorCode"].as_str() {
        problems.push(format!("errorCode {code:?} != {}", e["errorCode"]));
    }
    // An absent cohort means none was served.
    let cohort = e.get("cohort").and_then(Json::as_str).unwrap_or_default();
    if outcome.cohort != cohort {
        problems.push(format!("cohort {:?} != {cohort:?}", outcome.cohort));
    }
    // So does an absent rollout id.
    let rollout_id = e
        .get("rolloutId")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if outcome.rollout_id != rollout_id {
        problems.push(format!(
            "rolloutId {:?} != {rollout_id:?}",
            outcome.rollout_id
        ));
    }
    if let Some(version) = e.get("flagVersion").and_then(Json::as_u64)
        && outcome.flag_version != version
    {
        problems.push(format!("flagVersion {} != {version}", outcome.flag_version));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Collects case results and fails once, listing every mismatch, at the end.
#[derive(Default)]
pub struct Tally {
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Checks one case's outcome.
    pub fn check(&mut self, file: &VectorFile, case: &Case, outcome: &Outcome) {
        match check(case, outcome) {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!(
                "{}: {}: {why}",
                file.path.display(),
                case.description
            )),
        }
    }

    /// Panics with every failure, or when fewer than the required 400 cases ran.
    pub fn finish(self) -> usize {
        let Self { passed, failures } = self;
        assert!(
            failures.is_empty(),
            "{} failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(passed >= 400, "only {passed} cases ran");
        passed
    }
}
