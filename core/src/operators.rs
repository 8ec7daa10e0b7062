//! Clause operators, compiled: when a flag or segment is indexed, each clause's operator is
//! decoded and its values parsed once (numbers, versions, instants, string sets), so a test on
//! a present attribute compares native values only. Segment membership lives with the
//! snapshot, which knows the segments.

use crate::context::{self, Attr};
use crate::rfc3339;
use flagwire_proto::v1::Operator;
use foldhash::HashSet;
use prost_types::Value;
use prost_types::value::Kind;
use std::cmp::Ordering;

/// Up to this many strings are compared one by one (lengths first, so most misses cost one
/// integer compare); more go into a hash set.
const SCAN: usize = 8;

/// A set of strings, scanned when small and hashed when large.
#[derive(Debug, Clone)]
pub(crate) enum Strings {
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl Strings {
    pub(crate) fn new(values: impl IntoIterator<Item = String>) -> Self {
        let all: Vec<String> = values.into_iter().collect();
        if all.len() > SCAN {
            // Hashed without a quadratic de-duplication first: an `IN` of thousands of keys
            // compiles in linear time.
            return Strings::Many(all.into_iter().collect());
        }
        let mut few: Vec<String> = Vec::with_capacity(all.len());
        for v in all {
            if !few.contains(&v) {
                few.push(v);
            }
        }
        Strings::Few(few)
    }

    pub(crate) fn contains(&self, s: &str) -> bool {
        match self {
            Strings::Few(v) => v.iter().any(|x| context::same(x, s)),
            Strings::Many(set) => set.contains(s),
        }
    }
}

/// A clause's operator with its values parsed.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// `IN` (`member`) or `NOT_IN`: the attribute equals one of the values.
    In {
        strings: Strings,
        numbers: Vec<f64>,
        bools: [bool; 2],
        member: bool,
    },
    /// `STARTS_WITH`, `ENDS_WITH` or `CONTAINS` on a string; `CONTAINS` on a list is
    /// membership of one of its items.
    Text(Text, Vec<String>),
    /// `LT`, `LTE`, `GT`, `GTE` on numbers.
    Compare(Operator, Vec<f64>),
    /// `SEMVER_*`: the attribute's precedence against each version is `want` for one.
    Semver(Ordering, Vec<semver::Version>),
    /// `BEFORE` (`before`) or `AFTER`, in milliseconds since the epoch.
    Instant { before: bool, millis: Vec<i64> },
    /// `IN_SEGMENT` (`member`) or `NOT_IN_SEGMENT`: the string values are segment keys.
    Segments { keys: Vec<String>, member: bool },
    /// An unknown operator: holds for no present attribute.
    Never,
    /// A segment operator inside a segment's rule (rejected on write): the clause fails,
    /// negated or not.
    Nested,
}

/// The three string operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    StartsWith,
    EndsWith,
    Contains,
}

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

fn strings(values: &[Value]) -> impl Iterator<Item = String> + '_ {
    values.iter().filter_map(string).map(str::to_owned)
}

impl Test {
    /// Decodes `operator` and parses `values`; `in_segment_rule` marks a segment's own rules,
    /// where segment operators cannot nest.
    pub(crate) fn compile(operator: i32, values: &[Value], in_segment_rule: bool) -> Self {
        let op = Operator::try_from(operator).unwrap_or(Operator::Unspecified);
        match op {
            Operator::In | Operator::NotIn => {
                let bools = |b: bool| {
                    values
                        .iter()
                        .any(|v| matches!(v.kind, Some(Kind::BoolValue(x)) if x == b))
                };
                Test::In {
                    strings: Strings::new(strings(values)),
                    numbers: values.iter().filter_map(number).collect(),
                    bools: [bools(false), bools(true)],
                    member: op == Operator::In,
                }
            }
            Operator::StartsWith => Test::Text(Text::StartsWith, strings(values).collect()),
            Operator::EndsWith => Test::Text(Text::EndsWith, strings(values).collect()),
            Operator::Contains => Test::Text(Text::Contains, strings(values).collect()),
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
                Test::Compare(op, values.iter().filter_map(number).collect())
            }
            Operator::SemverEq | Operator::SemverLt | Operator::SemverGt => {
                let want = match op {
                    Operator::SemverEq => Ordering::Equal,
                    Operator::SemverLt => Ordering::Less,
                    _ => Ordering::Greater,
                };
                let parsed = values.iter().filter_map(string).filter_map(semver);
                Test::Semver(want, parsed.collect())
            }
            Operator::Before | Operator::After => Test::Instant {
                before: op == Operator::Before,
                millis: values
                    .iter()
                    .filter_map(string)
                    .filter_map(rfc3339::parse_millis)
                    .collect(),
            },
            Operator::InSegment | Operator::NotInSegment if in_segment_rule => Test::Nested,
            Operator::InSegment | Operator::NotInSegment => Test::Segments {
                keys: strings(values).collect(),
                member: op == Operator::InSegment,
            },
            Operator::Unspecified => Test::Never,
        }
    }

    /// Whether the test holds for the present attribute (before negation). Segment tests are
    /// the snapshot's and never reach here.
    pub(crate) fn holds(&self, attr: Attr<'_>) -> bool {
        match self {
            Test::In {
                strings,
                numbers,
                bools,
                member,
            } => {
                let found = match attr {
                    Attr::Str(s) => strings.contains(s),
                    Attr::Num(n) => numbers.contains(&n),
                    Attr::Bool(b) => bools[usize::from(b)],
                    Attr::List(items) => {
                        items.iter().filter_map(string).any(|i| strings.contains(i))
                    }
                };
                found == *member
            }
            Test::Text(text, values) => match attr {
                Attr::Str(s) => values.iter().any(|v| match text {
                    Text::StartsWith => s.starts_with(v.as_str()),
                    Text::EndsWith => s.ends_with(v.as_str()),
                    Text::Contains => s.contains(v.as_str()),
                }),
                Attr::List(items) if *text == Text::Contains => items
                    .iter()
                    .filter_map(string)
                    .any(|i| values.iter().any(|v| context::same(v, i))),
                _ => false,
            },
            Test::Compare(op, values) => {
                let Attr::Num(a) = attr else { return false };
                values.iter().any(|&b| match op {
                    Operator::Lt => a < b,
                    Operator::Lte => a <= b,
                    Operator::Gt => a > b,
                    _ => a >= b,
                })
            }
            Test::Semver(want, values) => {
                let Attr::Str(s) = attr else { return false };
                if values.is_empty() {
                    return false;
                }
                let Some(a) = semver(s) else { return false };
                values.iter().any(|b| a.cmp_precedence(b) == *want)
            }
            Test::Instant { before, millis } => {
                if millis.is_empty() {
                    return false;
                }
                let Some(a) = instant(attr) else { return false };
                millis.iter().any(|&b| if *before { a < b } else { a > b })
            }
            Test::Segments { .. } | Test::Never | Test::Nested => false,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(v.into())),
        }
    }

    #[test]
    fn in_answers_the_same_scanned_or_hashed() {
        let many: Vec<Value> = (0..40).map(|i| s(&format!("c{i}"))).collect();
        for (values, hashed) in [(&many[..3], false), (&many[..], true)] {
            let test = Test::compile(Operator::In as i32, values, false);
            assert!(
                matches!(
                    &test,
                    Test::In {
                        strings: Strings::Many(_),
                        ..
                    }
                ) == hashed
            );
            let list = [s("x"), s("c2")];
            assert!(test.holds(Attr::Str("c2")));
            assert!(!test.holds(Attr::Str("c2 ")));
            assert!(test.holds(Attr::List(&list)));
            assert!(!test.holds(Attr::List(&list[..1])));
            assert!(!test.holds(Attr::Num(2.0)));
            let not_in = Test::compile(Operator::NotIn as i32, values, false);
            assert!(!not_in.holds(Attr::Str("c1")) && not_in.holds(Attr::Str("d")));
        }
    }
}
