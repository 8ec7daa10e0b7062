//! The request body (`{"context": {"targetingKey": "...", ...}}`) into an evaluation context.
//!
//! OFREP puts the targeting key and every attribute side by side in one object; Flagwire keeps
//! the key apart. Attributes keep their JSON kind (objects and lists included): the evaluation
//! itself decides which kinds it accepts (`INVALID_CONTEXT`), exactly as it does over gRPC.
//! Lenient where the official clients differ: an empty body, `{}` (what the Python provider
//! sends for an empty context) and a `null` context all mean the empty context.

use flagwire_proto::v1::EvaluationContext;
use prost_types::{ListValue, Struct, Value, value::Kind};
use serde_json::Value as Json;

/// A parsed request context.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The evaluation context.
    pub context: EvaluationContext,
    /// The context as canonical JSON (keys sorted), which the bulk ETag covers.
    pub canonical: String,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not JSON, or not an object: OFREP's `PARSE_ERROR`.
    Parse(String),
    /// JSON, but the context is not an object or its targeting key is not a string:
    /// `INVALID_CONTEXT`.
    Invalid(String),
}

/// Parses a request body, with the canonical text the bulk endpoint's ETag covers.
pub fn parse(body: &[u8]) -> Result<Parsed, Refused> {
    let context = object(body)?;
    // serde_json's map is ordered by key (no `preserve_order` feature in this build; a unit
    // test below pins it), so equal contexts give equal text whatever order a client used.
    let canonical = serde_json::to_string(&context).expect("a JSON map always serialises");
    Ok(Parsed {
        context: into_context(context)?,
        canonical,
    })
}

/// Parses a request body into the context alone: the single-flag endpoint has no ETag, so it
/// skips the canonical text, and the attributes take the parsed strings instead of copies.
pub fn parse_context(body: &[u8]) -> Result<EvaluationContext, Refused> {
    into_context(object(body)?)
}

/// The body's `context` object (empty for an empty body, `{}` or a `null` context).
fn object(body: &[u8]) -> Result<serde_json::Map<String, Json>, Refused> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    let json: Json =
        serde_json::from_slice(body).map_err(|e| Refused::Parse(format!("body: {e}")))?;
    let Json::Object(mut body) = json else {
        return Err(Refused::Parse("body: must be a JSON object".into()));
    };
    match body.remove("context") {
        None | Some(Json::Null) => Ok(serde_json::Map::new()),
        Some(Json::Object(map)) => Ok(map),
        Some(_) => Err(Refused::Invalid("context: must be an object".into())),
    }
}

fn into_context(mut context: serde_json::Map<String, Json>) -> Result<EvaluationContext, Refused> {
    let targeting_key = match context.remove("targetingKey") {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(key)) => key,
        Some(_) => {
            return Err(Refused::Invalid(
                "context.targetingKey: must be a string".into(),
            ));
        }
    };
    let attributes = context.into_iter().map(|(k, v)| (k, value(v))).collect();
    Ok(EvaluationContext {
        targeting_key,
        attributes,
    })
}

fn value(json: Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        // Every JSON number fits an f64 (large integers round, as they do in JavaScript).
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(Struct {
            fields: map.into_iter().map(|(k, v)| (k, value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_attributes_are_split_and_kinds_kept() {
        let p =
            parse(br#"{"context":{"targetingKey":"u1","plan":"pro","n":2,"tags":["a"]}}"#).unwrap();
        assert_eq!(p.context.targeting_key, "u1");
        assert_eq!(p.context.attributes.len(), 3);
        assert!(matches!(
            p.context.attributes["n"].kind,
            Some(Kind::NumberValue(n)) if n == 2.0
        ));
        assert!(matches!(
            p.context.attributes["tags"].kind,
            Some(Kind::ListValue(_))
        ));
    }

    #[test]
    fn empty_forms_mean_the_empty_context() {
        for body in [
            &b""[..],
            b"  ",
            b"{}",
            br#"{"context":null}"#,
            br#"{"context":{}}"#,
        ] {
            let p = parse(body).unwrap();
            assert!(p.context.targeting_key.is_empty() && p.context.attributes.is_empty());
            assert_eq!(p.canonical, "{}");
        }
    }

    #[test]
    fn refusals() {
        assert!(matches!(parse(b"{nope"), Err(Refused::Parse(_))));
        assert!(matches!(parse(b"[1]"), Err(Refused::Parse(_))));
        assert!(matches!(
            parse(br#"{"context":5}"#),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            parse(br#"{"context":{"targetingKey":7}}"#),
            Err(Refused::Invalid(m)) if m.contains("targetingKey")
        ));
    }

    #[test]
    fn the_single_flag_parse_gives_the_same_context() {
        for body in [
            &br#"{"context":{"targetingKey":"u1","plan":"pro","n":2,"tags":["a"],"o":{"x":null}}}"#
                [..],
            b"",
            br#"{"context":null}"#,
        ] {
            assert_eq!(parse_context(body).unwrap(), parse(body).unwrap().context);
        }
        assert!(matches!(
            parse_context(br#"{"context":{"targetingKey":7}}"#),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(parse_context(b"{nope"), Err(Refused::Parse(_))));
    }

    #[test]
    fn canonical_text_ignores_key_order() {
        let a = parse(br#"{"context":{"b":1,"a":{"y":1,"x":2}}}"#).unwrap();
        let b = parse(br#"{"context":{"a":{"x":2,"y":1},"b":1}}"#).unwrap();
        assert_eq!(a.canonical, b.canonical);
    }
}
