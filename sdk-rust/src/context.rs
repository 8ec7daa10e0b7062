//! Evaluation contexts: a targeting key and typed attributes.

use flagwire_proto::v1::EvaluationContext;
use prost_types::{ListValue, Value, value::Kind};

/// Who a flag is evaluated for. Build it once per request and evaluate many flags with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub(crate) inner: EvaluationContext,
}

/// An attribute value: string, number, boolean or list of strings.
pub trait IntoAttribute {
    /// The protobuf value.
    fn into_attribute(self) -> Value;
}

fn kind(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

impl IntoAttribute for &str {
    fn into_attribute(self) -> Value {
        kind(Kind::StringValue(self.to_owned()))
    }
}
impl IntoAttribute for String {
    fn into_attribute(self) -> Value {
        kind(Kind::StringValue(self))
    }
}
impl IntoAttribute for bool {
    fn into_attribute(self) -> Value {
        kind(Kind::BoolValue(self))
    }
}
impl IntoAttribute for f64 {
    fn into_attribute(self) -> Value {
        kind(Kind::NumberValue(self))
    }
}
impl IntoAttribute for i64 {
    fn into_attribute(self) -> Value {
        kind(Kind::NumberValue(self as f64))
    }
}
impl IntoAttribute for i32 {
    fn into_attribute(self) -> Value {
        kind(Kind::NumberValue(f64::from(self)))
    }
}
impl IntoAttribute for Vec<String> {
    fn into_attribute(self) -> Value {
        let values = self
            .into_iter()
            .map(|s| kind(Kind::StringValue(s)))
            .collect();
        kind(Kind::ListValue(ListValue { values }))
    }
}
impl IntoAttribute for &[&str] {
    fn into_attribute(self) -> Value {
        self.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_attribute()
    }
}

impl Context {
    /// A context for `targeting_key` (a user id, tenant id, ...).
    pub fn new(targeting_key: impl Into<String>) -> Self {
        Self {
            inner: EvaluationContext {
                targeting_key: targeting_key.into(),
                attributes: Default::default(),
            },
        }
    }

    /// Adds an attribute.
    pub fn with(mut self, name: impl Into<String>, value: impl IntoAttribute) -> Self {
        self.inner
            .attributes
            .insert(name.into(), value.into_attribute());
        self
    }

    /// The wire form.
    pub fn as_proto(&self) -> &EvaluationContext {
        &self.inner
    }
}

impl From<EvaluationContext> for Context {
    fn from(inner: EvaluationContext) -> Self {
        Self { inner }
    }
}
