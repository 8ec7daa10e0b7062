//! One flag as a flagd flag definition: `state`, `variants`, `defaultVariant`, `targeting`.

use super::clause::{Segments, and, clause, is_string, var};
use super::{Options, Untranslatable};
use flagwire_proto::v1::{Flag, FlagConfig, FlagValue, Prerequisite, Split, flag_value, serve};
use prost_types::{Value, value::Kind};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

/// The environment's flags (not archived), by key.
pub type Flags<'a> = BTreeMap<&'a str, &'a Flag>;

/// The deepest prerequisite chain that can be met (docs/evaluation.md, "Order of evaluation").
const MAX_DEPTH: usize = 16;

/// What a definition may refer to.
pub struct Context<'a> {
    /// The environment exported.
    pub env: &'a str,
    /// Its flags (prerequisites are looked up here).
    pub flags: &'a Flags<'a>,
    /// Its segments.
    pub segments: &'a Segments<'a>,
    /// How to export.
    pub options: Options,
}

/// What a split whose bucketing key is missing serves: no flag has this variant, so flagd's
/// engines answer with an error and the caller's default (ours: `TARGETING_KEY_MISSING`).
pub const NO_BUCKETING_KEY: &str = "flagwire:targeting-key-missing";

fn value_json(v: &Value) -> Json {
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
        }
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(value_json).collect()),
        Some(Kind::StructValue(s)) => Json::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
    }
}

fn flag_value_json(v: &FlagValue) -> Json {
    match v.kind.as_ref() {
        None => Json::Null,
        Some(flag_value::Kind::BoolValue(b)) => json!(b),
        Some(flag_value::Kind::StringValue(s)) => json!(s),
        Some(flag_value::Kind::IntValue(i)) => json!(i),
        // A float keeps its fraction mark (`2.0`), so typed providers still read a float.
        Some(flag_value::Kind::FloatValue(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        Some(flag_value::Kind::ObjectValue(s)) => value_json(&Value {
            kind: Some(Kind::StructValue(s.clone())),
        }),
    }
}

/// The flag's config in the environment and whether it is on; `None` serves the first variant
/// as disabled.
fn config<'f>(f: &'f Flag, env: &str) -> Option<&'f FlagConfig> {
    f.environments.get(env)
}

fn has_variant(f: &Flag, key: &str) -> Result<(), Untranslatable> {
    if f.variants.iter().any(|v| v.key == key) {
        Ok(())
    } else {
        Err(Untranslatable::Damaged("serves a variant it does not have"))
    }
}

/// What a rule or default rule serves, as an expression (a variant key, or a `fractional`), or
/// why it cannot be exported.
fn serves(
    cx: &Context<'_>,
    f: &Flag,
    c: &FlagConfig,
    s: Option<&serve::Kind>,
) -> Result<Json, Untranslatable> {
    match s {
        Some(serve::Kind::Variant(v)) => {
            has_variant(f, v)?;
            Ok(json!(v))
        }
        Some(serve::Kind::Split(split)) if cx.options.fractional_utf8 => fractional(f, c, split),
        Some(serve::Kind::Split(_)) => Err(Untranslatable::Split),
        None => Err(Untranslatable::Damaged("has a rule that serves nothing")),
    }
}

/// A split as flagd's pre-CBOR `fractional`: murmur3 of the UTF-8 bytes of `salt + key` and
/// `(hash × total) >> 32`, walking the entries in order, as docs/evaluation.md buckets.
fn fractional(f: &Flag, c: &FlagConfig, split: &Split) -> Result<Json, Untranslatable> {
    let total: u64 = split.entries.iter().map(|e| u64::from(e.weight)).sum();
    if total == 0 {
        return Err(Untranslatable::Damaged(
            "has a split whose weights are all zero",
        ));
    }
    for e in &split.entries {
        has_variant(f, &e.variant)?;
    }
    let key = match split.bucket_by.as_str() {
        "" | "targetingKey" => json!({"var": "targetingKey"}),
        name => var(name)?,
    };
    let salt = [&split.salt, &c.salt, &f.key]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    let mut args = vec![json!({"cat": [salt, key]})];
    args.extend(split.entries.iter().map(|e| json!([e.variant, e.weight])));
    // The key must be a non-empty string (numbers are not converted).
    let usable = and(vec![
        json!({"!==": [key, null]}),
        is_string(&key),
        json!({"!==": [key, ""]}),
    ]);
    Ok(json!({"if": [usable, {"fractional": args}, NO_BUCKETING_KEY]}))
}

/// Targets then rules as `(condition, variant)` pairs.
fn branches(cx: &Context<'_>, f: &Flag, c: &FlagConfig) -> Result<Vec<Json>, Untranslatable> {
    let mut out = Vec::new();
    for t in &c.targets {
        has_variant(f, &t.variant)?;
        out.push(json!({"in": [{"var": "targetingKey"}, t.values]}));
        out.push(json!(t.variant));
    }
    for r in &c.rules {
        let variant = serves(cx, f, c, r.serve.as_ref().and_then(|s| s.kind.as_ref()))?;
        let clauses = r
            .clauses
            .iter()
            .map(|cl| clause(cl, Some(cx.segments)))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(and(clauses));
        out.push(variant);
    }
    Ok(out)
}

fn chain(mut branches: Vec<Json>, otherwise: Json) -> Json {
    if branches.is_empty() {
        return otherwise;
    }
    branches.push(otherwise);
    json!({ "if": branches })
}

/// All prerequisites of `c` met, `depth` hops from the evaluated flag.
fn prerequisites(
    cx: &Context<'_>,
    prerequisites: &[Prerequisite],
    depth: usize,
) -> Result<Json, Untranslatable> {
    let met = prerequisites
        .iter()
        .map(|p| met(cx, p, depth))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(and(met))
}

fn met(cx: &Context<'_>, p: &Prerequisite, depth: usize) -> Result<Json, Untranslatable> {
    if depth > MAX_DEPTH {
        return Ok(json!(false));
    }
    let Some(f) = cx.flags.get(p.flag_key.as_str()) else {
        return Ok(json!(false));
    };
    let Some(c) = config(f, cx.env).filter(|c| c.enabled) else {
        // Disabled (or unconfigured): served with reason DISABLED, which never meets it.
        return Ok(json!(false));
    };
    let served = served(cx, f, c, depth)
        .map_err(|why| Untranslatable::Prerequisite(format!("{}: {why}", p.flag_key)))?;
    Ok(json!({"===": [served, p.variant]}))
}

/// The variant an enabled flag serves, as an expression (for prerequisites).
fn served(
    cx: &Context<'_>,
    f: &Flag,
    c: &FlagConfig,
    depth: usize,
) -> Result<Json, Untranslatable> {
    has_variant(f, &c.off_variant)?;
    let default = serves(
        cx,
        f,
        c,
        c.default_rule.as_ref().and_then(|s| s.kind.as_ref()),
    )?;
    let body = chain(branches(cx, f, c)?, default);
    if c.prerequisites.is_empty() {
        return Ok(body);
    }
    let ok = prerequisites(cx, &c.prerequisites, depth + 1)?;
    Ok(json!({"if": [ok, body, c.off_variant]}))
}

/// The flagd definition of `f`, or why it has none.
pub fn definition(cx: &Context<'_>, f: &Flag) -> Result<Json, Untranslatable> {
    let variants: Map<String, Json> = f
        .variants
        .iter()
        .map(|v| {
            let value = v.value.as_ref().map_or(Json::Null, flag_value_json);
            (v.key.clone(), value)
        })
        .collect();
    let metadata = json!({ "flagVersion": f.version });
    let enabled = config(f, cx.env).filter(|c| c.enabled);
    let Some(c) = enabled else {
        let off = match config(f, cx.env) {
            Some(c) => c.off_variant.as_str(),
            None => f.variants.first().map_or("", |v| v.key.as_str()),
        };
        has_variant(f, off)?;
        return Ok(json!({
            "state": "ENABLED", "variants": variants, "defaultVariant": off, "metadata": metadata,
        }));
    };
    has_variant(f, &c.off_variant)?;
    let default = serves(
        cx,
        f,
        c,
        c.default_rule.as_ref().and_then(|s| s.kind.as_ref()),
    )?;
    let branches = branches(cx, f, c)?;
    // A fixed default is flagd's defaultVariant (targeting returns null to reach it); a split
    // default ends the targeting, and defaultVariant, which it then never reaches, is the off
    // variant.
    let (default_variant, otherwise) = match default {
        Json::String(v) => (v, Json::Null),
        split => (c.off_variant.clone(), split),
    };
    let mut definition = json!({
        "state": "ENABLED", "variants": variants, "defaultVariant": default_variant,
        "metadata": metadata,
    });
    let targeting = if c.prerequisites.is_empty() {
        (!branches.is_empty() || !otherwise.is_null()).then(|| chain(branches, otherwise))
    } else {
        let ok = prerequisites(cx, &c.prerequisites, 1)?;
        Some(json!({"if": [ok, chain(branches, otherwise), c.off_variant]}))
    };
    if let Some(targeting) = targeting {
        definition["targeting"] = targeting;
    }
    Ok(definition)
}
