//! Whole-object validation of admin writes.
//!
//! Each check reports the first problem as a [`FieldError`] naming the field path in protobuf
//! JSON form (`environments.production.rules[2].clauses[0].values`) and the reason, so an
//! operator typing grpcurl can find it. Checks that need other objects (environments, segments,
//! prerequisite flags) ask a [`Catalog`].

use flagwire_proto::v1::{
    Clause, Flag, FlagConfig, FlagValue, Operator, Segment, Serve, ValueType, flag_value, serve,
};
use std::collections::HashSet;

/// The largest total weight of a split: bucketing multiplies it by a 32-bit hash in 64 bits.
pub const MAX_TOTAL_WEIGHT: u64 = (1 << 31) - 1;
/// The longest key, in characters.
pub const MAX_KEY_LEN: usize = 128;
/// The longest description, in bytes; descriptions are for people, not payloads.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// The first problem found in a request: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Field path in protobuf JSON names.
    pub field: String,
    /// Why it is rejected.
    pub reason: String,
}

fn err<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field: field.into(),
        reason: reason.into(),
    })
}

/// What validation needs to know about the rest of the store.
pub trait Catalog {
    /// Whether the environment exists.
    fn environment_exists(&self, environment: &str) -> bool;
    /// Whether the segment exists in the environment.
    fn segment_exists(&self, environment: &str, key: &str) -> bool;
    /// The stored flag with this key, if any.
    fn flag(&self, key: &str) -> Option<&Flag>;
}

/// Checks a key (flag, variant, environment, segment, tag, token name).
pub fn validate_key(field: &str, key: &str) -> Result<(), FieldError> {
    if key.is_empty() {
        return err(field, "must not be empty");
    }
    if key.chars().count() > MAX_KEY_LEN {
        return err(field, format!("must be at most {MAX_KEY_LEN} characters"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return err(
            field,
            format!("invalid character {c:?}: use lowercase letters, digits, '-', '_', '.'"),
        );
    }
    Ok(())
}

fn validate_description(field: &str, text: &str) -> Result<(), FieldError> {
    if text.len() > MAX_DESCRIPTION_LEN {
        return err(
            field,
            format!("must be at most {MAX_DESCRIPTION_LEN} bytes"),
        );
    }
    Ok(())
}

/// Checks a whole flag against itself and the catalog.
pub fn validate_flag(flag: &Flag, catalog: &dyn Catalog) -> Result<(), FieldError> {
    validate_key("flag.key", &flag.key)?;
    validate_description("flag.description", &flag.description)?;
    let mut tags = HashSet::new();
    for (i, tag) in flag.tags.iter().enumerate() {
        validate_key(&format!("flag.tags[{i}]"), tag)?;
        if !tags.insert(tag) {
            return err(format!("flag.tags[{i}]"), format!("duplicate tag {tag:?}"));
        }
    }
    let ty = ValueType::try_from(flag.r#type).unwrap_or(ValueType::Unspecified);
    if ty == ValueType::Unspecified {
        return err(
            "flag.type",
            "must be one of VALUE_TYPE_BOOLEAN, _STRING, _INTEGER, _FLOAT, _OBJECT",
        );
    }
    if flag.variants.is_empty() {
        return err("flag.variants", "a flag needs at least one variant");
    }
    let mut variants = HashSet::new();
    for (i, v) in flag.variants.iter().enumerate() {
        let field = format!("flag.variants[{i}]");
        validate_key(&format!("{field}.key"), &v.key)?;
        if !variants.insert(v.key.as_str()) {
            return err(
                format!("{field}.key"),
                format!("duplicate variant {:?}", v.key),
            );
        }
        validate_value(&format!("{field}.value"), v.value.as_ref(), ty)?;
        validate_description(&format!("{field}.description"), &v.description)?;
    }
    for (env, config) in &flag.environments {
        let field = format!("flag.environments.{env}");
        if !catalog.environment_exists(env) {
            return err(field, format!("unknown environment {env:?}"));
        }
        validate_config(&field, flag, env, config, &variants, catalog)?;
    }
    Ok(())
}

fn validate_value(field: &str, value: Option<&FlagValue>, ty: ValueType) -> Result<(), FieldError> {
    let Some(kind) = value.and_then(|v| v.kind.as_ref()) else {
        return err(field, "a variant needs a value");
    };
    let matches = matches!(
        (kind, ty),
        (flag_value::Kind::BoolValue(_), ValueType::Boolean)
            | (flag_value::Kind::StringValue(_), ValueType::String)
            | (flag_value::Kind::IntValue(_), ValueType::Integer)
            | (flag_value::Kind::ObjectValue(_), ValueType::Object)
    ) || matches!((kind, ty), (flag_value::Kind::FloatValue(f), ValueType::Float) if f.is_finite());
    if !matches {
        return err(
            field,
            format!("value does not match the flag type {}", ty.as_str_name()),
        );
    }
    Ok(())
}

fn validate_config(
    field: &str,
    flag: &Flag,
    env: &str,
    config: &FlagConfig,
    variants: &HashSet<&str>,
    catalog: &dyn Catalog,
) -> Result<(), FieldError> {
    let known = |f: String, v: &str| -> Result<(), FieldError> {
        if variants.contains(v) {
            Ok(())
        } else {
            err(f, format!("unknown variant {v:?}"))
        }
    };
    known(format!("{field}.offVariant"), &config.off_variant)?;
    let mut targeted = HashSet::new();
    for (i, t) in config.targets.iter().enumerate() {
        known(format!("{field}.targets[{i}].variant"), &t.variant)?;
        for (j, key) in t.values.iter().enumerate() {
            if key.is_empty() {
                return err(
                    format!("{field}.targets[{i}].values[{j}]"),
                    "must not be empty",
                );
            }
            if !targeted.insert(key.as_str()) {
                return err(
                    format!("{field}.targets[{i}].values[{j}]"),
                    format!("targeting key {key:?} is targeted twice"),
                );
            }
        }
    }
    let mut rule_ids = HashSet::new();
    for (i, rule) in config.rules.iter().enumerate() {
        let rf = format!("{field}.rules[{i}]");
        if !rule.id.is_empty() && !rule_ids.insert(rule.id.as_str()) {
            return err(
                format!("{rf}.id"),
                format!("duplicate rule id {:?}", rule.id),
            );
        }
        validate_description(&format!("{rf}.description"), &rule.description)?;
        validate_clauses(&format!("{rf}.clauses"), env, &rule.clauses, catalog)?;
        validate_serve(&format!("{rf}.serve"), rule.serve.as_ref(), variants)?;
    }
    validate_serve(
        &format!("{field}.defaultRule"),
        config.default_rule.as_ref(),
        variants,
    )?;
    validate_prerequisites(field, flag, env, config, catalog)
}

fn validate_serve(
    field: &str,
    serve: Option<&Serve>,
    variants: &HashSet<&str>,
) -> Result<(), FieldError> {
    match serve.and_then(|s| s.kind.as_ref()) {
        None => err(field, "must serve a variant or a split"),
        Some(serve::Kind::Variant(v)) if variants.contains(v.as_str()) => Ok(()),
        Some(serve::Kind::Variant(v)) => {
            err(format!("{field}.variant"), format!("unknown variant {v:?}"))
        }
        Some(serve::Kind::Split(split)) => {
            if split.entries.is_empty() {
                return err(
                    format!("{field}.split.entries"),
                    "a split needs at least one entry",
                );
            }
            let mut total: u64 = 0;
            for (i, e) in split.entries.iter().enumerate() {
                if !variants.contains(e.variant.as_str()) {
                    return err(
                        format!("{field}.split.entries[{i}].variant"),
                        format!("unknown variant {:?}", e.variant),
                    );
                }
                total += u64::from(e.weight);
            }
            if total == 0 {
                return err(
                    format!("{field}.split.entries"),
                    "weights must not all be zero",
                );
            }
            if total > MAX_TOTAL_WEIGHT {
                return err(
                    format!("{field}.split.entries"),
                    format!("weights sum to {total}, more than 2^31-1"),
                );
            }
            Ok(())
        }
    }
}

/// Checks clauses (of a flag rule or a segment rule) in one environment.
pub fn validate_clauses(
    field: &str,
    env: &str,
    clauses: &[Clause],
    catalog: &dyn Catalog,
) -> Result<(), FieldError> {
    for (i, c) in clauses.iter().enumerate() {
        let cf = format!("{field}[{i}]");
        let op = Operator::try_from(c.operator).unwrap_or(Operator::Unspecified);
        if op == Operator::Unspecified {
            return err(format!("{cf}.operator"), "must be set (e.g. OPERATOR_IN)");
        }
        if c.values.is_empty() {
            return err(format!("{cf}.values"), "a clause needs at least one value");
        }
        let segment_op = matches!(op, Operator::InSegment | Operator::NotInSegment);
        if c.attribute.is_empty() && !segment_op {
            return err(format!("{cf}.attribute"), "must name an attribute");
        }
        for (j, v) in c.values.iter().enumerate() {
            let vf = format!("{cf}.values[{j}]");
            use prost_types::value::Kind;
            let kind = v.kind.as_ref();
            let numeric = matches!(
                op,
                Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte
            );
            let needs_string = segment_op
                || matches!(
                    op,
                    Operator::StartsWith
                        | Operator::EndsWith
                        | Operator::SemverEq
                        | Operator::SemverLt
                        | Operator::SemverGt
                        | Operator::Before
                        | Operator::After
                );
            match kind {
                Some(Kind::NumberValue(n)) if numeric && n.is_finite() => {}
                _ if numeric => return err(vf, format!("{} needs a number", op.as_str_name())),
                Some(Kind::StringValue(s)) if needs_string => {
                    if segment_op && !catalog.segment_exists(env, s) {
                        return err(vf, format!("unknown segment {s:?} in environment {env:?}"));
                    }
                }
                _ if needs_string => {
                    return err(vf, format!("{} needs a string", op.as_str_name()));
                }
                Some(Kind::StringValue(_) | Kind::NumberValue(_) | Kind::BoolValue(_)) => {}
                _ => return err(vf, "must be a string, number or boolean"),
            }
        }
    }
    Ok(())
}

fn validate_prerequisites(
    field: &str,
    flag: &Flag,
    env: &str,
    config: &FlagConfig,
    catalog: &dyn Catalog,
) -> Result<(), FieldError> {
    for (i, p) in config.prerequisites.iter().enumerate() {
        let pf = format!("{field}.prerequisites[{i}]");
        if p.flag_key == flag.key {
            return err(
                format!("{pf}.flagKey"),
                "a flag cannot be its own prerequisite",
            );
        }
        let Some(pre) = catalog.flag(&p.flag_key) else {
            return err(
                format!("{pf}.flagKey"),
                format!("unknown flag {:?}", p.flag_key),
            );
        };
        if !pre.variants.iter().any(|v| v.key == p.variant) {
            return err(
                format!("{pf}.variant"),
                format!("flag {:?} has no variant {:?}", p.flag_key, p.variant),
            );
        }
        if reaches(catalog, &p.flag_key, &flag.key, env, &mut HashSet::new()) {
            return err(
                format!("{pf}.flagKey"),
                format!(
                    "prerequisite {:?} leads back to {:?}: a cycle",
                    p.flag_key, flag.key
                ),
            );
        }
    }
    Ok(())
}

/// Whether following prerequisites from `from` in `env` reaches `target`.
fn reaches<'a>(
    catalog: &'a dyn Catalog,
    from: &'a str,
    target: &str,
    env: &str,
    seen: &mut HashSet<&'a str>,
) -> bool {
    if from == target {
        return true;
    }
    if !seen.insert(from) {
        return false;
    }
    let Some(config) = catalog.flag(from).and_then(|f| f.environments.get(env)) else {
        return false;
    };
    config
        .prerequisites
        .iter()
        .any(|p| reaches(catalog, &p.flag_key, target, env, seen))
}

/// Checks a whole segment.
pub fn validate_segment(segment: &Segment, catalog: &dyn Catalog) -> Result<(), FieldError> {
    validate_key("segment.key", &segment.key)?;
    if !catalog.environment_exists(&segment.environment) {
        return err(
            "segment.environment",
            format!("unknown environment {:?}", segment.environment),
        );
    }
    validate_description("segment.description", &segment.description)?;
    for (name, keys) in [
        ("included", &segment.included),
        ("excluded", &segment.excluded),
    ] {
        if let Some(j) = keys.iter().position(String::is_empty) {
            return err(format!("segment.{name}[{j}]"), "must not be empty");
        }
    }
    for (i, rule) in segment.rules.iter().enumerate() {
        let field = format!("segment.rules[{i}].clauses");
        if rule.clauses.is_empty() {
            return err(field, "a segment rule needs at least one clause");
        }
        if let Some(j) = rule.clauses.iter().position(|c| {
            matches!(
                Operator::try_from(c.operator),
                Ok(Operator::InSegment | Operator::NotInSegment)
            )
        }) {
            return err(
                format!("{field}[{j}].operator"),
                "segments cannot refer to segments",
            );
        }
        validate_clauses(&field, &segment.environment, &rule.clauses, catalog)?;
    }
    Ok(())
}
