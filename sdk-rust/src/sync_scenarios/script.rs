//! The scenario files of `tests/sync/` (their README and `schema.json` describe them), and the
//! protobuf messages their steps stand for.

use flagwire_proto::v1::{
    Change, Flag, FlagBatch, FlagConfig, FlagValue, Heartbeat, Serve, Snapshot, ValueType, Variant,
    WatchResponse, change, flag_value, serve, watch_response::Event,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The environment every scenario's flags belong to.
pub const ENVIRONMENT: &str = "production";

/// Boolean flags by key: `true` serves `on`, `false` is disabled and serves `off`.
pub type Flags = BTreeMap<String, bool>;

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    pub options: Options,
    #[serde(default)]
    pub bootstrap: Option<SnapshotSpec>,
    pub steps: Vec<Step>,
}

/// The client's options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub heartbeat_timeout_ms: u64,
}

/// A snapshot (a `send`, or the bootstrap copy).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    pub revision: u64,
    pub flags: Flags,
}

/// A change: `set` (one flag, or a batch of several) or `delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSpec {
    pub revision: u64,
    #[serde(default)]
    pub set: Option<Flags>,
    #[serde(default)]
    pub delete: Option<String>,
}

/// What a `send` step sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    Snapshot(SnapshotSpec),
    Change(ChangeSpec),
    Heartbeat { revision: u64 },
}

/// One step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    ExpectWatch {
        since_revision: u64,
        delay_ms: [u64; 2],
    },
    Send(Message),
    End {
        code: String,
        #[serde(default)]
        message: String,
    },
    ExpectAck {
        revision: u64,
        delay_ms: [u64; 2],
        #[serde(default)]
        reply: Option<String>,
    },
    ReleaseAck {},
    Advance {
        ms: u64,
    },
    ExpectState {
        state: String,
        revision: u64,
        #[serde(default)]
        values: Flags,
    },
}

/// gRPC's code names, in code order.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code named `name` (`UNAVAILABLE`, ...).
pub fn code(name: &str) -> tonic::Code {
    let index = CODES.iter().position(|c| *c == name);
    let index = index.unwrap_or_else(|| panic!("unknown gRPC code {name}"));
    tonic::Code::from(i32::try_from(index).expect("17 codes"))
}

fn bool_value(b: bool) -> Option<FlagValue> {
    Some(FlagValue {
        kind: Some(flag_value::Kind::BoolValue(b)),
    })
}

/// A boolean flag of version `revision`.
pub fn flag(key: &str, enabled: bool, revision: u64) -> Flag {
    let config = FlagConfig {
        enabled,
        off_variant: "off".into(),
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Variant("on".into())),
        }),
        ..Default::default()
    };
    Flag {
        key: key.into(),
        r#type: ValueType::Boolean.into(),
        version: revision,
        variants: vec![
            Variant {
                key: "on".into(),
                value: bool_value(true),
                ..Default::default()
            },
            Variant {
                key: "off".into(),
                value: bool_value(false),
                ..Default::default()
            },
        ],
        environments: [(ENVIRONMENT.to_owned(), config)].into_iter().collect(),
        ..Default::default()
    }
}

fn flags(flags: &Flags, revision: u64) -> Vec<Flag> {
    flags.iter().map(|(k, v)| flag(k, *v, revision)).collect()
}

impl SnapshotSpec {
    /// The protobuf snapshot.
    pub fn proto(&self) -> Snapshot {
        Snapshot {
            environment: ENVIRONMENT.into(),
            revision: self.revision,
            flags: flags(&self.flags, self.revision),
            segments: Vec::new(),
        }
    }
}

impl Message {
    /// The Watch message.
    pub fn proto(&self) -> WatchResponse {
        let event = match self {
            Self::Snapshot(s) => Event::Snapshot(s.proto()),
            Self::Heartbeat { revision } => Event::Heartbeat(Heartbeat {
                revision: *revision,
                server_time: None,
            }),
            Self::Change(c) => {
                let set = flags(c.set.as_ref().unwrap_or(&Flags::new()), c.revision);
                let kind = match (&c.delete, set.len()) {
                    (Some(key), _) => change::Kind::FlagDeleted(key.clone()),
                    (None, 1) => change::Kind::FlagUpserted(set.into_iter().next().expect("one")),
                    (None, _) => change::Kind::FlagsUpserted(FlagBatch { flags: set }),
                };
                Event::Change(Change {
                    revision: c.revision,
                    commit_time: None,
                    kind: Some(kind),
                })
            }
        };
        WatchResponse { event: Some(event) }
    }
}
