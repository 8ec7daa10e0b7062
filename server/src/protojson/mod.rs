//! The protobuf JSON mapping of Flagwire messages, for files and for `--json` output: the
//! same camelCase names, enum names, RFC 3339 times and string 64-bit integers that grpcurl
//! prints, read and written through `prost-reflect` and the contract's own descriptors.
//!
//! Values pass through [`serde_norway::Value`] because its mappings keep insertion order:
//! fields then come out in declaration order (`key` first), which a person reading an exported
//! file expects. prost-reflect keeps map fields in a `HashMap`, so [`to_value`] sorts their
//! entries: the same message always renders to the same bytes, which makes exports diffable.

use flagwire_proto::v1;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor};
use serde_norway::Value;
use std::sync::OnceLock;

pub mod yaml;

/// A generated message and its protobuf full name.
pub trait Named: Message + Default {
    /// E.g. `flagwire.v1.Flag`.
    const NAME: &'static str;
}

macro_rules! named {
    ($($t:ident),* $(,)?) => {$(
        impl Named for v1::$t {
            const NAME: &'static str = concat!("flagwire.v1.", stringify!($t));
        }
    )*};
}

named!(
    Bundle,
    BundleChange,
    Environment,
    Flag,
    Segment,
    Rollout,
    Release,
    CreateReleaseRequest,
    CreateReleaseResponse,
    ListReleasesResponse,
    GetReleaseResponse,
    RollbackPlan,
    AuditEvent,
    Execution,
    ImportBundleResponse,
    ListFlagsResponse,
    ListRolloutsResponse,
    ListAuditEventsResponse,
    GetFlagResponse,
    GetRolloutResponse,
    UpdateFlagResponse,
    SetFlagEnabledResponse,
    KillResponse,
    UndoKillResponse,
    BackupHeader,
    FlagValue,
    CreateEnvironmentResponse,
    GetEnvironmentResponse,
    ListEnvironmentsResponse,
    DeleteEnvironmentResponse,
    CreateFlagResponse,
    ArchiveFlagResponse,
    DeleteFlagResponse,
    ListFlagVersionsResponse,
    RevertFlagResponse,
    CreateSegmentResponse,
    GetSegmentResponse,
    ListSegmentsResponse,
    UpdateSegmentResponse,
    DeleteSegmentResponse,
    CreateApiTokenResponse,
    ListApiTokensResponse,
    RevokeApiTokenResponse,
    CreateRolloutRequest,
    CreateRolloutResponse,
    CreateRollbackPlanResponse,
    ListRollbackPlansResponse,
    ExecuteRollbackPlanResponse,
    GetExecutionResponse,
    ScheduledChange,
    ScheduleChangeResponse,
    ListScheduledChangesResponse,
    CancelScheduledChangeResponse,
    Ramp,
    CreateRampResponse,
    GetRampResponse,
    ListRampsResponse,
    GetUsageResponse,
    ListInstancesResponse,
    MetricDefinition,
    DefineMetricResponse,
    ListMetricsResponse,
    DeleteMetricResponse,
);

/// The descriptors of the whole contract, decoded once.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(flagwire_proto::FILE_DESCRIPTOR_SET)
            .expect("the built-in descriptor set decodes")
    })
}

fn descriptor<M: Named>() -> MessageDescriptor {
    pool()
        .get_message_by_name(M::NAME)
        .unwrap_or_else(|| panic!("{} is not in the descriptor set", M::NAME))
}

/// `message` in the protobuf JSON mapping (fields at their default value left out), with map
/// entries sorted by key.
pub fn to_value<M: Named>(message: &M) -> Value {
    let desc = descriptor::<M>();
    let dynamic = DynamicMessage::decode(desc.clone(), message.encode_to_vec().as_slice())
        .expect("a message re-decodes under its own descriptor");
    let mut value = serde_norway::to_value(&dynamic).expect("protobuf JSON always serialises");
    sort_maps(&mut value, &desc);
    value
}

/// `message` as pretty-printed protobuf JSON.
pub fn to_json<M: Named>(message: &M) -> String {
    serde_json::to_string_pretty(&to_value(message)).expect("a YAML value of strings serialises")
}

/// `message` as YAML (the same structure as [`to_json`]), readable by YAML 1.1 readers too
/// (see [`yaml`]).
pub fn to_yaml<M: Named>(message: &M) -> String {
    yaml::to_string(&to_value(message))
}

/// Parses protobuf JSON. Unknown fields are errors, so a typo does not pass silently.
pub fn from_json<M: Named>(text: &str) -> Result<M, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let dynamic =
        DynamicMessage::deserialize(descriptor::<M>(), &mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    dynamic.transcode_to::<M>().map_err(|e| e.to_string())
}

/// Parses YAML laid out as protobuf JSON (YAML's line and column in errors).
pub fn from_yaml<M: Named>(text: &str) -> Result<M, String> {
    let de = serde_norway::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize(descriptor::<M>(), de).map_err(|e| e.to_string())?;
    dynamic.transcode_to::<M>().map_err(|e| e.to_string())
}

fn sort_mapping(m: &mut serde_norway::Mapping) {
    let mut entries: Vec<(Value, Value)> = std::mem::take(m).into_iter().collect();
    entries.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
    m.extend(entries);
}

/// Sorts every mapping below `value` (inside `google.protobuf.Struct` and `Value`, all of
/// them are maps).
fn sort_all(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            sort_mapping(m);
            m.values_mut().for_each(sort_all);
        }
        Value::Sequence(s) => s.iter_mut().for_each(sort_all),
        _ => {}
    }
}

fn sort_maps(value: &mut Value, desc: &MessageDescriptor) {
    match desc.full_name() {
        "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue" => {
            return sort_all(value);
        }
        name if name.starts_with("google.protobuf.") => return,
        _ => {}
    }
    let Value::Mapping(mapping) = value else {
        return;
    };
    for field in desc.fields() {
        let Some(child) = mapping.get_mut(field.json_name()) else {
            continue;
        };
        if field.is_map() {
            let Value::Mapping(entries) = child else {
                continue;
            };
            sort_mapping(entries);
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            if let Kind::Message(value_desc) = entry.map_entry_value_field().kind() {
                entries.values_mut().for_each(|v| sort_maps(v, &value_desc));
            }
        } else if let Kind::Message(message) = field.kind() {
            match child {
                Value::Sequence(items) if field.is_list() => {
                    items.iter_mut().for_each(|v| sort_maps(v, &message));
                }
                _ => sort_maps(child, &message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_proto::v1::{Flag, FlagConfig};

    #[test]
    fn maps_come_out_sorted_and_fields_in_declaration_order() {
        let mut flag = Flag {
            key: "k".into(),
            version: 7,
            ..Flag::default()
        };
        for env in ["zeta", "alpha", "mid"] {
            flag.environments.insert(env.into(), FlagConfig::default());
        }
        let yaml = to_yaml(&flag);
        assert!(yaml.starts_with("key: k\n"), "{yaml}");
        let (a, m, z) = (
            yaml.find("alpha").unwrap(),
            yaml.find("mid").unwrap(),
            yaml.find("zeta").unwrap(),
        );
        assert!(a < m && m < z, "{yaml}");
        assert!(
            yaml.contains("version: '7'"),
            "64-bit integers are strings: {yaml}"
        );
        let back: Flag = from_yaml(&yaml).unwrap();
        assert_eq!(back, flag);
        assert_eq!(from_json::<Flag>(&to_json(&flag)).unwrap(), flag);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = from_yaml::<Flag>("key: k\nkee: typo\n").unwrap_err();
        assert!(err.contains("kee"), "{err}");
    }
}
