//! Values of command-line arguments: times, durations, percentages, `name=value` pairs and
//! typed variant values. Each parser returns the message clap prints after `error: invalid
//! value`, so a bad value is a usage error (exit 2) naming the argument.

use crate::protojson;
use flagwire_proto::v1::{FlagValue, ValueType, flag_value};
use prost_types::{Duration as PbDuration, Timestamp};
use std::time::{Duration, SystemTime};

/// A duration such as `90s`, `10m`, `1h30m` or `2d` (humantime's syntax).
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 90s, 10m, 1h30m)"))
}

/// A protobuf duration of `d`.
pub fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// An RFC 3339 time such as `2026-05-01T09:00:00Z`.
pub fn time(s: &str) -> Result<Timestamp, String> {
    humantime::parse_rfc3339_weak(s)
        .map(Timestamp::from)
        .map_err(|e| format!("{e} (write e.g. 2026-05-01T09:00:00Z)"))
}

/// The time `d` from now.
pub fn from_now(d: Duration) -> Timestamp {
    Timestamp::from(SystemTime::now() + d)
}

/// The time `d` before now.
pub fn ago(d: Duration) -> Timestamp {
    Timestamp::from(
        SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    )
}

/// A percentage (`12.5` or `12.5%`, 0 to 100, at most two decimals) in basis points.
pub fn percent(s: &str) -> Result<u32, String> {
    let number = s.trim().trim_end_matches('%');
    let pct: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (write e.g. 5 or 12.5%)"))?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(format!("{s:?} is not between 0 and 100"));
    }
    let bp = pct * 100.0;
    if (bp - bp.round()).abs() > 1e-6 {
        return Err(format!("{s:?} has more than two decimals"));
    }
    Ok(bp.round() as u32)
}

/// `name=value`, split at the first `=`.
pub fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// `variant=weight`, the weight a non-negative integer.
pub fn weight(s: &str) -> Result<(String, u32), String> {
    let (k, v) = pair(s)?;
    let w = v
        .parse()
        .map_err(|_| format!("{s:?}: the weight {v:?} is not a whole number"))?;
    Ok((k, w))
}

/// The value types as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TypeArg {
    /// true / false.
    Bool,
    /// Text.
    String,
    /// A 64-bit integer.
    Int,
    /// A double.
    Float,
    /// A JSON object.
    Json,
}

impl TypeArg {
    /// The protobuf value type.
    pub fn value_type(self) -> ValueType {
        match self {
            TypeArg::Bool => ValueType::Boolean,
            TypeArg::String => ValueType::String,
            TypeArg::Int => ValueType::Integer,
            TypeArg::Float => ValueType::Float,
            TypeArg::Json => ValueType::Object,
        }
    }
}

/// `raw` as a value of type `t`; the error says what was expected.
pub fn value(t: ValueType, raw: &str) -> Result<FlagValue, String> {
    use flag_value::Kind;
    let kind = match t {
        ValueType::Boolean => match raw {
            "true" => Kind::BoolValue(true),
            "false" => Kind::BoolValue(false),
            _ => return Err(format!("{raw:?} is not a boolean (true or false)")),
        },
        ValueType::String => Kind::StringValue(raw.to_owned()),
        ValueType::Integer => Kind::IntValue(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not a 64-bit integer"))?,
        ),
        ValueType::Float => {
            let f: f64 = raw
                .parse()
                .map_err(|_| format!("{raw:?} is not a number"))?;
            if !f.is_finite() {
                return Err(format!("{raw:?} is not a finite number"));
            }
            Kind::FloatValue(f)
        }
        ValueType::Object => {
            let json: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| format!("{raw:?} is not JSON: {e}"))?;
            if !json.is_object() {
                return Err(format!("{raw:?} is not a JSON object"));
            }
            // The contract's own mapping turns JSON into a google.protobuf.Struct.
            let text = serde_json::json!({ "objectValue": json }).to_string();
            return protojson::from_json::<FlagValue>(&text);
        }
        ValueType::Unspecified => return Err("the flag has no type".into()),
    };
    Ok(FlagValue { kind: Some(kind) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(percent("5"), Ok(500));
        assert_eq!(percent("12.5%"), Ok(1250));
        assert_eq!(percent("0.01"), Ok(1));
        assert_eq!(percent("100"), Ok(10_000));
        assert!(percent("101").is_err());
        assert!(percent("0.001").unwrap_err().contains("two decimals"));
        assert!(percent("half").is_err());
    }

    #[test]
    fn values_are_typed_by_the_flag() {
        let b = value(ValueType::Boolean, "true").unwrap();
        assert_eq!(b.kind, Some(flag_value::Kind::BoolValue(true)));
        assert!(value(ValueType::Boolean, "yes").is_err());
        assert!(value(ValueType::Integer, "1.5").is_err());
        assert!(value(ValueType::Float, "NaN").is_err());
        let o = value(ValueType::Object, r#"{"a": [1, "x"]}"#).unwrap();
        assert!(matches!(o.kind, Some(flag_value::Kind::ObjectValue(_))));
        assert!(
            value(ValueType::Object, "[1]")
                .unwrap_err()
                .contains("object")
        );
    }

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(pair("=x").is_err());
        assert_eq!(weight("on=30"), Ok(("on".into(), 30)));
        assert!(weight("on=x").is_err());
    }
}
