//! `import --from-env FILE.env`: flags from environment variables, which is how many services
//! flag today (pydantic `BaseSettings` classes reading `.env` files).
//!
//! Each variable becomes a flag keyed by its lowercased name with `_` as `-`
//! (`FEATURE_TTS_CACHE_ENABLED` → `feature-tts-cache-enabled`), enabled in the environment and
//! serving the file's value. The type comes from the value:
//! - `true`/`false`/`yes`/`no`/`on`/`off`, any case (what pydantic reads as booleans):
//!   boolean, variants `off`=false and `on`=true;
//! - digits with an optional sign and no leading zero: integer (`1` and `0` too: use
//!   `true`/`false` for switches);
//! - a decimal number with `.` or an exponent: float;
//! - `{...}`: a JSON object;
//! - anything else, and every single-quoted value: string, in a variant named after the value
//!   when that is a valid key (`sqlite`), else `default`.
//!
//! Refused, naming the line, with nothing created: unreadable lines, empty values, `$`
//! references, integers beyond 64 bits, JSON that does not parse or is not an object, two
//! variables mapping to one key, and a variable whose flag exists with another type. An
//! existing flag keeps its other environments and rules: only this environment's default and
//! on/off state change, and a variant is added when none holds the value.
//!
//! The flags go to the server as one bundle (`ImportBundle`), so they land all together or not
//! at all, and `--dry-run` shows the mapping with what would be created or updated.

use super::dotenv::{self, Entry, Quote};
use super::output::{self, Table, type_name};
use super::parse;
use super::{Failure, Outcome};
use flagwire_proto::v1::{FlagValue, ValueType, flag_value};

/// A variable and what it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Where it is.
    pub entry: Entry,
    /// The flag key.
    pub key: String,
    /// The type.
    pub value_type: ValueType,
    /// The value.
    pub value: FlagValue,
}

fn refuse(e: &Entry, why: impl std::fmt::Display) -> Failure {
    Failure::Local(anyhow::anyhow!("line {}: {}: {why}", e.line, e.name))
}

/// The flag key of a variable name.
pub fn flag_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

fn is_decimal(v: &str) -> bool {
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (mantissa.contains('.') || exponent.is_some())
        && !(int.is_empty() && frac.is_empty())
        && digits(int)
        && digits(frac)
        && exponent.is_none_or(|e| !e.is_empty() && digits(e))
}

/// The type and value of one entry (see the module documentation).
pub fn typed(e: &Entry) -> Result<(ValueType, FlagValue), Failure> {
    use flag_value::Kind;
    let v = e.value.as_str();
    let kind = |k| FlagValue { kind: Some(k) };
    if e.quote == Quote::Single {
        return Ok((ValueType::String, kind(Kind::StringValue(v.into()))));
    }
    if v.is_empty() {
        return Err(refuse(
            e,
            "no value, so no type: write NAME='' for an empty string",
        ));
    }
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Ok((ValueType::Boolean, kind(Kind::BoolValue(true)))),
        "false" | "no" | "off" => return Ok((ValueType::Boolean, kind(Kind::BoolValue(false)))),
        _ => {}
    }
    if is_integer(v) {
        let i: i64 = v.parse().map_err(|_| {
            refuse(
                e,
                format!("{v} does not fit a 64-bit integer: single-quote it to import a string"),
            )
        })?;
        return Ok((ValueType::Integer, kind(Kind::IntValue(i))));
    }
    if is_decimal(v) {
        let f: f64 = v.parse().map_err(|err| refuse(e, err))?;
        if f.is_finite() {
            return Ok((ValueType::Float, kind(Kind::FloatValue(f))));
        }
        return Err(refuse(e, format!("{v} is out of a double's range")));
    }
    if v.starts_with('{') {
        let value = parse::value(ValueType::Object, v).map_err(|err| refuse(e, err))?;
        return Ok((ValueType::Object, value));
    }
    if v.starts_with('[') {
        return Err(refuse(
            e,
            "a list: flags hold one value or a JSON object; single-quote it to import a string",
        ));
    }
    Ok((ValueType::String, kind(Kind::StringValue(v.into()))))
}

/// Reads and types `text`: every entry whose name starts with `prefix`.
pub fn mappings(text: &str, prefix: &str) -> Result<Vec<Mapping>, Failure> {
    let entries = dotenv::parse(text)
        .map_err(|e| Failure::Local(anyhow::anyhow!("line {}: {}", e.line, e.message)))?;
    let mut out: Vec<Mapping> = Vec::new();
    for entry in entries.into_iter().filter(|e| e.name.starts_with(prefix)) {
        let key = flag_key(&entry.name);
        if let Some(other) = out.iter().find(|m| m.key == key) {
            return Err(refuse(
                &entry,
                format!(
                    "maps to the key {key} as {} on line {} does",
                    other.entry.name, other.entry.line
                ),
            ));
        }
        if key.len() > 128 {
            return Err(refuse(&entry, "longer than a flag key may be (128)"));
        }
        let (value_type, value) = typed(&entry)?;
        out.push(Mapping {
            entry,
            key,
            value_type,
            value,
        });
    }
    Ok(out)
}

/// The mapping as a table; `actions` gives each key's ACTION column when known.
pub fn table(mappings: &[Mapping], action: impl Fn(&str) -> String) -> Table {
    let mut t = Table::new(&["LINE", "VARIABLE", "FLAG", "TYPE", "VALUE", "ACTION"]);
    for m in mappings {
        t.row(vec![
            m.entry.line.to_string(),
            m.entry.name.clone(),
            m.key.clone(),
            type_name(m.value_type as i32),
            output::value(Some(&m.value)),
            action(&m.key),
        ]);
    }
    t
}

/// Parses and types the file at `path`, failing with exit code 1 on any refusal.
pub fn read(path: &std::path::Path, prefix: &str) -> Result<Vec<Mapping>, Failure> {
    let text = super::files::text(path)?;
    mappings(&text, prefix).map_err(|f| match f {
        Failure::Local(e) => Failure::Local(anyhow::anyhow!("{}: {e:#}", path.display())),
        other => other,
    })
}

/// Whether nothing in the file was selected.
pub fn check_nonempty(mappings: &[Mapping], prefix: &str) -> Outcome {
    if mappings.is_empty() {
        let which = if prefix.is_empty() {
            String::new()
        } else {
            format!(" starting with {prefix}")
        };
        return Err(Failure::Local(anyhow::anyhow!(
            "no variables{which} in the file: nothing to import"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(value: &str) -> Result<String, String> {
        let e = dotenv::parse(&format!("X={value}")).unwrap().remove(0);
        typed(&e)
            .map(|(t, v)| format!("{} {}", type_name(t as i32), output::value(Some(&v))))
            .map_err(|f| f.message())
    }

    #[test]
    fn values_are_typed_from_their_text() {
        for (value, expected) in [
            ("true", "boolean true"),
            ("No", "boolean false"),
            ("ON", "boolean true"),
            ("42", "integer 42"),
            ("-7", "integer -7"),
            ("0", "integer 0"),
            ("007", "string \"007\""),
            ("1.5", "float 1.5"),
            ("1e3", "float 1000"),
            (".25", "float 0.25"),
            ("1.2.3", "string \"1.2.3\""),
            ("sqlite", "string \"sqlite\""),
            ("'true'", "string \"true\""),
            ("\"true\"", "boolean true"),
            ("{\"a\": 1}", "object {…}"),
            ("''", "string \"\""),
        ] {
            assert_eq!(type_of(value).as_deref(), Ok(expected), "{value}");
        }
    }

    #[test]
    fn untypable_values_are_refused_with_their_line() {
        for (value, fragment) in [
            ("", "no value"),
            ("99999999999999999999", "64-bit"),
            ("{not json", "not JSON"),
            ("[1, 2]", "a list"),
        ] {
            let err = type_of(value).unwrap_err();
            assert!(err.starts_with("line 1: X: "), "{value}: {err}");
            assert!(err.contains(fragment), "{value}: {err}");
        }
        let err = mappings("FOO_BAR=1\nfoo_bar=2\n", "")
            .unwrap_err()
            .message();
        assert!(
            err.contains("line 2: foo_bar: maps to the key foo-bar"),
            "{err}"
        );
    }

    #[test]
    fn names_map_to_keys_and_a_prefix_selects() {
        let m = mappings(
            "FEATURE_TTS_CACHE_ENABLED=true\nDATABASE_URL=x\n",
            "FEATURE_",
        )
        .unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].key, "feature-tts-cache-enabled");
        assert_eq!(m[0].entry.line, 1);
    }
}
