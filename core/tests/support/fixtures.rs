//! The flags the allocation test and the criterion benchmark evaluate: a boolean flag with no
//! rules, and a string flag with five rules (none matching the context) and a 3-way split.
#![allow(dead_code)]

use flagwire_core::Snapshot;
use flagwire_proto::v1::*;
use prost_types::value::Kind;

fn value(s: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn number(n: f64) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn variant(key: &str, v: flag_value::Kind) -> Variant {
    Variant {
        key: key.into(),
        value: Some(FlagValue { kind: Some(v) }),
        description: String::new(),
    }
}

/// `bool-flag`: enabled, default `on`.
pub fn bool_flag(key: &str) -> Flag {
    let config = FlagConfig {
        enabled: true,
        off_variant: "off".into(),
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Variant("on".into())),
        }),
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

/// `split-flag`: five rules the benchmark context does not match, then a 3-way split.
pub fn split_flag() -> Flag {
    let rule = |id: &str, attribute: &str, op: Operator, values: Vec<prost_types::Value>| Rule {
        id: id.into(),
        description: String::new(),
        clauses: vec![Clause {
            attribute: attribute.into(),
            operator: op as i32,
            values,
            negate: false,
        }],
        serve: Some(Serve {
            kind: Some(serve::Kind::Variant("red".into())),
        }),
    };
    let config = FlagConfig {
        enabled: true,
        off_variant: "red".into(),
        rules: vec![
            rule(
                "countries",
                "country",
                Operator::In,
                vec![value("US"), value("CA"), value("GB")],
            ),
            rule(
                "staff",
                "email",
                Operator::EndsWith,
                vec![value("@flagwire.dev")],
            ),
            rule("seniors", "age", Operator::Gte, vec![number(65.0)]),
            rule(
                "free",
                "plan",
                Operator::In,
                vec![value("free"), value("trial")],
            ),
            rule("beta", "groups", Operator::Contains, vec![value("beta")]),
        ],
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Split(Split {
                entries: ["red", "green", "blue"]
                    .iter()
                    .map(|v| SplitEntry {
                        variant: v.to_string(),
                        weight: 3333,
                        label: String::new(),
                    })
                    .collect(),
                ..Default::default()
            })),
        }),
        ..Default::default()
    };
    Flag {
        key: "split-flag".into(),
        r#type: ValueType::String as i32,
        variants: ["red", "green", "blue"]
            .iter()
            .map(|v| variant(v, flag_value::Kind::StringValue(v.to_string())))
            .collect(),
        environments: [("production".to_string(), config)].into(),
        version: 1,
        ..Default::default()
    }
}

/// A snapshot holding both flags plus `extra` boolean flags `flag-0000`...
pub fn snapshot(extra: usize) -> Snapshot {
    let flags = [bool_flag("bool-flag"), split_flag()]
        .into_iter()
        .chain((0..extra).map(|i| bool_flag(&format!("flag-{i:04}"))));
    Snapshot::new("production", 1, flags, [])
}

/// A typical context: a targeting key and five attributes.
pub fn context() -> EvaluationContext {
    EvaluationContext {
        targeting_key: "user-1234567".into(),
        attributes: [
            ("country".to_string(), value("NL")),
            ("email".to_string(), value("ada@example.com")),
            ("age".to_string(), number(31.0)),
            ("plan".to_string(), value("pro")),
            (
                "groups".to_string(),
                prost_types::Value {
                    kind: Some(Kind::ListValue(prost_types::ListValue {
                        values: vec![value("staff")],
                    })),
                },
            ),
        ]
        .into(),
    }
}
