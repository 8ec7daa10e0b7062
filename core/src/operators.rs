//! Clause operators on present attributes (segment operators live with the snapshot, which
//! knows the segments).

use crate::context::Attr;
use crate::rfc3339;
use flagwire_proto::v1::Operator;
use prost_types::Value;
use prost_types::value::Kind;

fn string(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match &v.kind {
        Some(Kind::NumberValue(n)) => Some(*n),
        _ => None,
    }
}

fn equals(attr: Attr<'_>, v: &Value) -> bool {
    match (attr, &v.kind) {
        (Attr::Str(a), Some(Kind::StringValue(b))) => a == b,
        (Attr::Num(a), Some(Kind::NumberValue(b))) => a == *b,
        (Attr::Bool(a), Some(Kind::BoolValue(b))) => a == *b,
        (Attr::List(items), _) => items
            .iter()
            .any(|i| string(i).is_some() && i.kind == v.kind),
        _ => false,
    }
}

fn semver(s: &str) -> Option<semver::Version> {
    semver::Version::parse(s).ok()
}

fn instant(attr: Attr<'_>) -> Option<i64> {
    match attr {
        Attr::Str(s) => rfc3339::parse_millis(s),
        // Seconds since the epoch; floor to milliseconds like the string form.
        Attr::Num(n) if n.is_finite() => Some((n * 1000.0).floor() as i64),
        _ => None,
    }
}

/// Whether `op` holds for the present attribute and at least one of `values` (before negation).
pub fn holds(op: Operator, attr: Attr<'_>, values: &[Value]) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        Operator::In => values.iter().any(|v| equals(attr, v)),
        Operator::NotIn => !values.iter().any(|v| equals(attr, v)),
        Operator::StartsWith | Operator::EndsWith | Operator::Contains => {
            let found = |s: &str, v: &str| match op {
                Operator::StartsWith => s.starts_with(v),
                Operator::EndsWith => s.ends_with(v),
                _ => s.contains(v),
            };
            match attr {
                Attr::Str(s) => values.iter().filter_map(string).any(|v| found(s, v)),
                Attr::List(items) if op == Operator::Contains => items
                    .iter()
                    .filter_map(string)
                    .any(|i| values.iter().filter_map(string).any(|v| i == v)),
                _ => false,
            }
        }
        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
            let Attr::Num(a) = attr else { return false };
            values.iter().filter_map(number).any(|b| match op {
                Operator::Lt => a < b,
                Operator::Lte => a <= b,
                Operator::Gt => a > b,
                _ => a >= b,
            })
        }
        Operator::SemverEq | Operator::SemverLt | Operator::SemverGt => {
            let Some(a) = (match attr {
                Attr::Str(s) => semver(s),
                _ => None,
            }) else {
                return false;
            };
            let want = match op {
                Operator::SemverEq => Equal,
                Operator::SemverLt => Less,
                _ => Greater,
            };
            values
                .iter()
                .filter_map(string)
                .filter_map(semver)
                .any(|b| a.cmp_precedence(&b) == want)
        }
        Operator::Before | Operator::After => {
            let Some(a) = instant(attr) else { return false };
            values
                .iter()
                .filter_map(string)
                .filter_map(rfc3339::parse_millis)
                .any(|b| if op == Operator::Before { a < b } else { a > b })
        }
        Operator::InSegment | Operator::NotInSegment | Operator::Unspecified => false,
    }
}
