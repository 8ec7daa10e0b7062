//! flagd's evaluation context (a `google.protobuf.Struct`) as a Flagwire context.

use flagwire_proto::v1::EvaluationContext;
use prost_types::{Struct, Value, value::Kind};

/// The attribute flagd (and OpenFeature) name the targeting key with.
const TARGETING_KEY: &str = "targetingKey";

/// Our context for flagd's `context`: `targetingKey` becomes the targeting key, every other
/// field an attribute (the engine then checks the attributes' types, as for any caller).
/// `Err` when `targetingKey` is neither a string nor null.
pub fn from_struct(context: Option<Struct>) -> Result<EvaluationContext, &'static str> {
    let mut attributes = context.unwrap_or_default().fields;
    let targeting_key = match attributes.remove(TARGETING_KEY).and_then(|v| v.kind) {
        None | Some(Kind::NullValue(_)) => String::new(),
        Some(Kind::StringValue(key)) => key,
        Some(_) => return Err("targetingKey must be a string"),
    };
    Ok(EvaluationContext {
        targeting_key,
        attributes: attributes
            .into_iter()
            .filter(|(name, _)| !name.starts_with("$flagd"))
            .collect(),
    })
}

/// A `Value` holding `kind`.
pub fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(fields: Vec<(&str, Kind)>) -> Option<Struct> {
        Some(Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), value(v)))
                .collect(),
        })
    }

    #[test]
    fn the_targeting_key_leaves_the_attributes() {
        let ctx = from_struct(context(vec![
            ("targetingKey", Kind::StringValue("user-1".into())),
            ("plan", Kind::StringValue("pro".into())),
        ]))
        .unwrap();
        assert_eq!(ctx.targeting_key, "user-1");
        assert_eq!(ctx.attributes.keys().collect::<Vec<_>>(), ["plan"]);
    }

    #[test]
    fn a_null_targeting_key_is_absent_and_a_number_is_refused() {
        let null = from_struct(context(vec![("targetingKey", Kind::NullValue(0))])).unwrap();
        assert_eq!(null.targeting_key, "");
        assert!(from_struct(context(vec![("targetingKey", Kind::NumberValue(1.0))])).is_err());
    }
}
