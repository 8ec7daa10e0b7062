//! Reading attributes out of an evaluation context.

use flagwire_proto::v1::EvaluationContext;
use prost_types::value::Kind;

/// The name that clause attributes and `bucketBy` use for the targeting key.
pub const TARGETING_KEY: &str = "targetingKey";

/// A present attribute value, borrowed from the context.
#[derive(Debug, Clone, Copy)]
pub enum Attr<'a> {
    /// A string.
    Str(&'a str),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// A list (of strings, in a valid context).
    List(&'a [prost_types::Value]),
}

/// The attribute `name` (or the targeting key), if present. `null` counts as absent.
pub fn attribute<'a>(ctx: &'a EvaluationContext, name: &str) -> Option<Attr<'a>> {
    if name == TARGETING_KEY {
        return (!ctx.targeting_key.is_empty()).then_some(Attr::Str(&ctx.targeting_key));
    }
    named(ctx, name)
}

/// The attribute `name` (not the targeting key), if present.
pub(crate) fn named<'a>(ctx: &'a EvaluationContext, name: &str) -> Option<Attr<'a>> {
    attr(lookup(ctx, name)?)
}

/// A value as an attribute; `null` (and an object, which validation refuses) is absent.
pub(crate) fn attr(value: &prost_types::Value) -> Option<Attr<'_>> {
    match value.kind.as_ref()? {
        Kind::StringValue(s) => Some(Attr::Str(s)),
        Kind::NumberValue(n) => Some(Attr::Num(*n)),
        Kind::BoolValue(b) => Some(Attr::Bool(*b)),
        Kind::ListValue(l) => Some(Attr::List(&l.values)),
        Kind::NullValue(_) | Kind::StructValue(_) => None,
    }
}

/// String equality by a byte loop rather than `memcmp`: attribute names and clause values are
/// a few bytes long, and on the benchmark machine (AMD EPYC, glibc's AVX-512 `memcmp`) `perf`
/// showed the library call's masked loads costing far more than the comparison (issue 18).
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Contexts are small (a handful of attributes): a scan that compares lengths before bytes
/// beats the ordered map's search, whose every step is a `memcmp` call. Large ones use it.
fn lookup<'a>(ctx: &'a EvaluationContext, name: &str) -> Option<&'a prost_types::Value> {
    const SCAN: usize = 12;
    if ctx.attributes.len() > SCAN {
        return ctx.attributes.get(name);
    }
    ctx.attributes
        .iter()
        .find(|(k, _)| same(k, name))
        .map(|(_, v)| v)
}

/// Checks the context holds only strings, numbers, booleans, lists of strings and nulls.
/// Returns a description of the first offending attribute.
pub fn validate(ctx: &EvaluationContext) -> Result<(), &'static str> {
    for value in ctx.attributes.values() {
        match value.kind.as_ref() {
            Some(Kind::StructValue(_)) => return Err("an attribute holds an object"),
            Some(Kind::NumberValue(n)) if !n.is_finite() => {
                return Err("an attribute holds a non-finite number");
            }
            Some(Kind::ListValue(l))
                if !l
                    .values
                    .iter()
                    .all(|v| matches!(v.kind, Some(Kind::StringValue(_)))) =>
            {
                return Err("a list attribute holds something other than strings");
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(n: usize) -> EvaluationContext {
        EvaluationContext {
            targeting_key: "k".into(),
            attributes: (0..n)
                .map(|i| {
                    let v = prost_types::Value {
                        kind: Some(Kind::NumberValue(i as f64)),
                    };
                    (format!("attr-{i}"), v)
                })
                .collect(),
        }
    }

    #[test]
    fn small_and_large_contexts_find_every_attribute() {
        for n in [1, 5, 12, 13, 40] {
            let c = ctx(n);
            for i in 0..n {
                assert!(
                    matches!(attribute(&c, &format!("attr-{i}")), Some(Attr::Num(x)) if x == i as f64)
                );
            }
            assert!(attribute(&c, "attr-x").is_none());
            assert!(matches!(attribute(&c, TARGETING_KEY), Some(Attr::Str("k"))));
        }
    }
}
