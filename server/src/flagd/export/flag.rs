//! One flag as a flagd flag definition: `state`, `variants`, `defaultVariant`, `targeting`.

use super::Untranslatable;
use super::clause::{Segments, and, clause};
use flagwire_proto::v1::{Flag, FlagConfig, FlagValue, Prerequisite, flag_value, serve};
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
}

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

/// The variant a rule or default rule serves, or why it cannot be exported.
fn fixed<'f>(f: &Flag, s: Option<&'f serve::Kind>) -> Result<&'f str, Untranslatable> {
    match s {
        Some(serve::Kind::Variant(v)) => {
            has_variant(f, v)?;
            Ok(v)
        }
        Some(serve::Kind::Split(_)) => Err(Untranslatable::Split),
        None => Err(Untranslatable::Damaged("has a rule that serves nothing")),
    }
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
        let variant = fixed(f, r.serve.as_ref().and_then(|s| s.kind.as_ref()))?;
        let clauses = r
            .clauses
            .iter()
            .map(|cl| clause(cl, Some(cx.segments)))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(and(clauses));
        out.push(json!(variant));
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
    let default = fixed(f, c.default_rule.as_ref().and_then(|s| s.kind.as_ref()))?;
    let body = chain(branches(cx, f, c)?, json!(default));
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
    let default = fixed(f, c.default_rule.as_ref().and_then(|s| s.kind.as_ref()))?;
    let branches = branches(cx, f, c)?;
    let mut definition = json!({
        "state": "ENABLED", "variants": variants, "defaultVariant": default, "metadata": metadata,
    });
    let targeting = if c.prerequisites.is_empty() {
        (!branches.is_empty()).then(|| chain(branches, Json::Null))
    } else {
        let ok = prerequisites(cx, &c.prerequisites, 1)?;
        Some(json!({"if": [ok, chain(branches, Json::Null), c.off_variant]}))
    };
    if let Some(targeting) = targeting {
        definition["targeting"] = targeting;
    }
    Ok(definition)
}
