//! Bad environments, segments, tokens and audit page tokens.

use super::Case;
use crate::support::table::row;
use flagwire_proto::v1::*;

fn environment(key: &str) -> CreateEnvironmentRequest {
    CreateEnvironmentRequest {
        environment: Some(Environment {
            key: key.into(),
            ..Default::default()
        }),
        reason: String::new(),
    }
}

/// A valid segment `s` in production, changed by `edit`.
fn segment(edit: impl FnOnce(&mut Segment)) -> Segment {
    let mut segment = Segment {
        key: "s".into(),
        environment: "production".into(),
        ..Default::default()
    };
    edit(&mut segment);
    segment
}

fn create(edit: impl FnOnce(&mut Segment)) -> CreateSegmentRequest {
    CreateSegmentRequest {
        segment: Some(segment(edit)),
        reason: String::new(),
    }
}

/// Updates the stored segment `beta` (at version 1) to itself changed by `edit`.
fn update(edit: impl FnOnce(&mut Segment)) -> UpdateSegmentRequest {
    UpdateSegmentRequest {
        segment: Some(segment(|s| {
            s.key = "beta".into();
            edit(s);
        })),
        expected_version: 1,
        reason: String::new(),
    }
}

fn rule(operator: Operator, values: &[&str]) -> SegmentRule {
    SegmentRule {
        clauses: vec![Clause {
            attribute: "plan".into(),
            operator: operator as i32,
            values: values
                .iter()
                .map(|v| prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue(v.to_string())),
                })
                .collect(),
            negate: false,
        }],
    }
}

fn token(name: &str, role: Role, environment: &str) -> CreateApiTokenRequest {
    CreateApiTokenRequest {
        name: name.into(),
        role: role as i32,
        environment: environment.into(),
        reason: String::new(),
    }
}

/// Defines metric `m` in production (a valid rate metric) changed by `edit`.
fn metric(edit: impl FnOnce(&mut MetricDefinition)) -> DefineMetricRequest {
    let mut metric = MetricDefinition {
        environment: "production".into(),
        name: "mem0.write".into(),
        kind: MetricKind::Rate as i32,
        direction: MetricDirection::HigherIsBetter as i32,
        ..Default::default()
    };
    edit(&mut metric);
    DefineMetricRequest {
        metric: Some(metric),
        ..Default::default()
    }
}

/// The environment, segment, token, metric and audit cases.
pub fn cases() -> Vec<Case> {
    vec![
        row("an environment key with capitals")
            .sends(environment("Prod!"))
            .names("environment.key", "invalid character 'P'"),
        row("an environment without a key")
            .sends(environment(""))
            .names("environment.key", "must not be empty"),
        row("an environment key of 129 characters")
            .sends(environment(&"e".repeat(129)))
            .names("environment.key", "at most 128 characters"),
        row("a create without an environment")
            .sends(CreateEnvironmentRequest::default())
            .names("environment", "required"),
        row("a segment without a key")
            .sends(create(|s| s.key.clear()))
            .names("segment.key", "must not be empty"),
        row("a segment in an unknown environment")
            .sends(create(|s| s.environment = "mars".into()))
            .names("segment.environment", "unknown environment \"mars\""),
        row("a segment description over 4096 bytes")
            .sends(create(|s| s.description = "x".repeat(4097)))
            .names("segment.description", "at most 4096 bytes"),
        row("an empty included key")
            .sends(create(|s| s.included = vec![String::new()]))
            .names("segment.included[0]", "must not be empty"),
        row("an empty excluded key")
            .sends(create(|s| s.excluded = vec!["u1".into(), String::new()]))
            .names("segment.excluded[1]", "must not be empty"),
        row("a segment rule without clauses")
            .sends(create(|s| s.rules = vec![SegmentRule { clauses: vec![] }]))
            .names("segment.rules[0].clauses", "at least one clause"),
        row("a segment referring to a segment")
            .sends(create(|s| {
                s.rules = vec![rule(Operator::InSegment, &["beta"])]
            }))
            .names(
                "segment.rules[0].clauses[0].operator",
                "cannot refer to segments",
            ),
        row("a segment clause without an operator")
            .sends(create(|s| {
                s.rules = vec![rule(Operator::Unspecified, &["pro"])]
            }))
            .names("segment.rules[0].clauses[0].operator", "must be set"),
        row("a segment clause without values")
            .sends(create(|s| s.rules = vec![rule(Operator::In, &[])]))
            .names("segment.rules[0].clauses[0].values", "at least one value"),
        row("a create without a segment")
            .sends(CreateSegmentRequest::default())
            .names("segment", "required"),
        row("a segment update with an empty included key")
            .sends(update(|s| s.included = vec![String::new()]))
            .names("segment.included[0]", "must not be empty"),
        row("a segment update without the version read")
            .sends(UpdateSegmentRequest {
                expected_version: 0,
                ..update(|_| {})
            })
            .names("expectedVersion", "required"),
        row("an update without a segment")
            .sends(UpdateSegmentRequest {
                segment: None,
                ..update(|_| {})
            })
            .names("segment", "required"),
        row("a token name with a space")
            .sends(token("has space", Role::Admin, ""))
            .names("name", "invalid character ' '"),
        row("a token without a name")
            .sends(token("", Role::Admin, ""))
            .names("name", "must not be empty"),
        row("a token without a role")
            .sends(token("x", Role::Unspecified, ""))
            .names("role", "must be ROLE_ADMIN, ROLE_SDK or ROLE_READ_ONLY"),
        row("an sdk token without an environment")
            .sends(token("sdk", Role::Sdk, ""))
            .names("environment", "required for ROLE_SDK tokens"),
        row("an sdk token for an unknown environment")
            .sends(token("sdk", Role::Sdk, "mars"))
            .names("environment", "unknown environment \"mars\""),
        row("an admin token bound to an environment")
            .sends(token("ops", Role::Admin, "production"))
            .names("environment", "only ROLE_SDK tokens"),
        row("a metric without a definition")
            .sends(DefineMetricRequest::default())
            .names("metric", "required"),
        row("a metric name with capitals")
            .sends(metric(|m| m.name = "Mem0".into()))
            .names("metric.name", "lowercase letters"),
        row("a metric name of 65 characters")
            .sends(metric(|m| m.name = "m".repeat(65)))
            .names("metric.name", "at most 64"),
        row("a metric in an unknown environment")
            .sends(metric(|m| m.environment = "mars".into()))
            .names("metric.environment", "no environment \"mars\""),
        row("a metric without a kind")
            .sends(metric(|m| m.kind = 0))
            .names("metric.kind", "required"),
        row("a metric of an unknown kind")
            .sends(metric(|m| m.kind = 99))
            .names("metric.kind", "required"),
        row("a metric without a direction")
            .sends(metric(|m| m.direction = 0))
            .names("metric.direction", "required"),
        row("a metric unit of 33 characters")
            .sends(metric(|m| m.unit = "u".repeat(33)))
            .names("metric.unit", "at most 32"),
        row("an audit page token that is not one")
            .sends(ListAuditEventsRequest {
                page_token: "x".into(),
                ..Default::default()
            })
            .names("pageToken", "not a page token"),
    ]
}
