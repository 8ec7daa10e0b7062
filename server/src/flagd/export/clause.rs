//! Clauses and segments as JsonLogic, keeping Flagwire's meaning (docs/evaluation.md).
//!
//! Type guards stand in for JsonLogic's missing `typeof`, built only from operations no engine
//! throws on (JavaScript's `json-logic-engine` throws on `+` of text, `*` of a list, `in` with a
//! number for haystack): `x` is a scalar when `{"in": [x, {"merge": [x]}]}` (a list is not an
//! element of itself), a string when `{"===": [{"cat": [x]}, x]}`, a boolean when its text is
//! `true` or `false` (`True` / `False` in Python, whose engine also takes booleans for numbers),
//! and a number when it is a scalar and neither. Numbers are compared after `* 1.0`, so every
//! engine compares IEEE doubles, as Flagwire does, even Python's exact integers. `and` stops at
//! the first false guard, so an operator only ever sees the type it expects. A missing attribute
//! never matches, negated or not: every clause on an attribute is `present && (op xor negate)`.

use super::Untranslatable;
use flagwire_proto::v1::{Clause, Operator, Segment};
use prost_types::{Value, value::Kind};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// The segments of the environment, by key.
pub type Segments<'a> = BTreeMap<&'a str, &'a Segment>;

/// `{"var": name}`, for an attribute name JsonLogic reads as one field.
pub fn var(name: &str) -> Result<Json, Untranslatable> {
    // `var` walks dotted paths, so `a.b` would read a nested field instead.
    if name.contains('.') || name.is_empty() {
        return Err(Untranslatable::AttributeName(name.to_owned()));
    }
    Ok(json!({ "var": name }))
}

/// `x` is a string (see the module documentation).
pub fn is_string(x: &Json) -> Json {
    json!({"===": [{"cat": [x]}, x]})
}

fn is_boolean(x: &Json) -> Json {
    // JavaScript and Rust write `true`, Python `True`.
    json!({"in": [{"cat": [x]}, ["true", "false", "True", "False"]]})
}

fn is_scalar(x: &Json) -> Json {
    json!({"in": [x, {"merge": [x]}]})
}

fn is_number(x: &Json) -> Json {
    json!({"and": [is_scalar(x), {"!": is_string(x)}, {"!": is_boolean(x)}]})
}

/// `x` as an IEEE double.
fn double(x: &Json) -> Json {
    json!({"*": [x, 1.0]})
}

fn present(x: &Json) -> Json {
    json!({"!==": [x, null]})
}

fn or(mut terms: Vec<Json>) -> Json {
    match terms.len() {
        0 => json!(false),
        1 => terms.remove(0),
        _ => json!({ "or": terms }),
    }
}

/// `{"and": terms}`, simplified.
pub fn and(mut terms: Vec<Json>) -> Json {
    match terms.len() {
        0 => json!(true),
        1 => terms.remove(0),
        _ => json!({ "and": terms }),
    }
}

fn scalar(v: &Value) -> Option<Json> {
    match v.kind.as_ref()? {
        Kind::StringValue(s) => Some(json!(s)),
        Kind::NumberValue(n) => serde_json::Number::from_f64(*n).map(Json::Number),
        Kind::BoolValue(b) => Some(json!(b)),
        _ => None,
    }
}

fn strings(values: &[Value]) -> Vec<&str> {
    values
        .iter()
        .filter_map(|v| match v.kind.as_ref() {
            Some(Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

fn numbers(values: &[Value]) -> Vec<f64> {
    values
        .iter()
        .filter_map(|v| match v.kind.as_ref() {
            Some(Kind::NumberValue(n)) if n.is_finite() => Some(*n),
            _ => None,
        })
        .collect()
}

/// The attribute equals `value` (a list attribute: holds it). `merge` makes a list of a scalar
/// and leaves a list as it is, so one `in` covers both without reading a string as a list of
/// characters. Numbers and booleans are only equal to their own type.
fn equals(x: &Json, value: Json) -> Json {
    match value {
        Json::Number(_) => json!({"and": [is_number(x), {"===": [double(x), value.as_f64()]}]}),
        Json::Bool(_) => json!({"and": [is_boolean(x), {"in": [value, {"merge": [x]}]}]}),
        _ => json!({"in": [value, {"merge": [x]}]}),
    }
}

fn operator(op: Operator, x: &Json, values: &[Value]) -> Result<Json, Untranslatable> {
    let numeric = |cmp: &str| {
        let terms = numbers(values)
            .into_iter()
            .map(|n| json!({ cmp: [double(x), n] }))
            .collect();
        and(vec![is_number(x), or(terms)])
    };
    let semver = |cmp: &str| {
        let terms = strings(values)
            .into_iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            // Build metadata never counts in precedence; the Rust engine compares it, so it is
            // not exported.
            .map(|v| semver::Version {
                build: semver::BuildMetadata::EMPTY,
                ..v
            })
            .map(|v| json!({"sem_ver": [x, cmp, v.to_string()]}))
            .collect();
        // flagd's engines read `v1.2.3` (and JavaScript's ` 1.2.3 `) as versions; Flagwire
        // does not.
        let lenient = json!({"or": [
            {"starts_with": [x, "v"]}, {"starts_with": [x, "V"]},
            {"in": [" ", x]}, {"in": ["\t", x]}, {"in": ["\n", x]}, {"in": ["\r", x]}
        ]});
        and(vec![is_string(x), json!({ "!": lenient }), or(terms)])
    };
    let text = |name: &str| {
        let terms = strings(values)
            .into_iter()
            .map(|v| json!({ name: [x, v] }))
            .collect();
        and(vec![is_string(x), or(terms)])
    };
    Ok(match op {
        Operator::In => or(values
            .iter()
            .filter_map(scalar)
            .map(|v| equals(x, v))
            .collect()),
        Operator::NotIn => json!({"!": operator(Operator::In, x, values)?}),
        Operator::StartsWith => text("starts_with"),
        Operator::EndsWith => text("ends_with"),
        Operator::Contains => {
            let terms = strings(values)
                .into_iter()
                .map(|v| match v {
                    // Every string contains "" (JavaScript's engine says no); a list must hold it.
                    "" => json!({"or": [is_string(x), {"in": ["", x]}]}),
                    v => json!({"in": [v, x]}),
                })
                .collect();
            // A string (substring) or a list (element); `in` throws on other haystacks.
            let haystack = json!({"or": [is_string(x), {"!": is_scalar(x)}]});
            and(vec![haystack, or(terms)])
        }
        Operator::Lt => numeric("<"),
        Operator::Lte => numeric("<="),
        Operator::Gt => numeric(">"),
        Operator::Gte => numeric(">="),
        Operator::SemverEq => semver("="),
        Operator::SemverLt => semver("<"),
        Operator::SemverGt => semver(">"),
        Operator::Before | Operator::After => {
            return Err(Untranslatable::Operator(op.as_str_name()));
        }
        Operator::InSegment | Operator::NotInSegment | Operator::Unspecified => {
            unreachable!("handled by the caller")
        }
    })
}

/// A clause as JsonLogic; `segments` resolves segment operators (`None` inside a segment,
/// where they never match).
pub fn clause(c: &Clause, segments: Option<&Segments<'_>>) -> Result<Json, Untranslatable> {
    let op = Operator::try_from(c.operator).unwrap_or(Operator::Unspecified);
    match op {
        Operator::InSegment | Operator::NotInSegment => {
            let Some(segments) = segments else {
                return Ok(json!(false));
            };
            let member = or(strings(&c.values)
                .into_iter()
                .map(|key| segments.get(key).map_or(Ok(json!(false)), |s| segment(s)))
                .collect::<Result<_, _>>()?);
            let holds = if op == Operator::InSegment {
                member
            } else {
                json!({ "!": member })
            };
            Ok(if c.negate {
                json!({ "!": holds })
            } else {
                holds
            })
        }
        Operator::Unspecified => Ok(json!(false)),
        _ => {
            let x = var(&c.attribute)?;
            let holds = operator(op, &x, &c.values)?;
            let holds = if c.negate {
                json!({ "!": holds })
            } else {
                holds
            };
            let mut present = vec![present(&x)];
            if c.attribute == "targetingKey" {
                // An empty targeting key is an absent one.
                present.push(json!({"!==": [x, ""]}));
            }
            present.push(holds);
            Ok(and(present))
        }
    }
}

/// Membership of a segment: excluded keys never, included keys always, else any rule.
pub fn segment(s: &Segment) -> Result<Json, Untranslatable> {
    let key = json!({"var": "targetingKey"});
    let rules = s
        .rules
        .iter()
        .map(|r| {
            let clauses = r
                .clauses
                .iter()
                .map(|c| clause(c, None))
                .collect::<Result<Vec<_>, _>>()?;
            // A segment rule without clauses is refused on write; one found anyway matches
            // every context, as the engine reads it.
            Ok(and(clauses))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"if": [
        {"in": [key, s.excluded]}, false,
        {"in": [key, s.included]}, true,
        or(rules)
    ]}))
}
