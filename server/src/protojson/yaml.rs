//! YAML that readers of YAML 1.1 (PyYAML, Go's yaml.v2, Ruby's Psych) read back as written.
//!
//! serde_norway writes YAML 1.2 and quotes only the strings a YAML 1.2 reader would take for
//! something else (`true`, `null`, `12`, `1e3`). YAML 1.1 readers also resolve `yes`, `no`,
//! `on`, `off`, `y`, `n`, `0b101`, `017`, `1_000`, `1:30` (base 60), `.5`, `2026-01-01` (a
//! date), `<<` and `=`: a string variant `on` written plain comes back from PyYAML as the
//! boolean `True`. [`to_string`] quotes those strings as well.
//!
//! serde_norway offers no way to ask for a quoted scalar, so each such string is first swapped
//! for a placeholder made of letters and digits (which serde_norway writes plain, as it is) and
//! each placeholder is then replaced in the text by the string in single quotes. Everything
//! else (indentation, block scalars, escapes) stays serde_norway's, rather than a hand-written
//! emitter's.

use regex::Regex;
use serde_norway::Value;
use std::sync::OnceLock;

/// Plain scalars a YAML 1.1 reader resolves to something other than a string: PyYAML's
/// implicit resolvers (resolver.py), with the YAML 1.1 spec's `y`/`n` booleans and YAML 1.2
/// numbers (`1e3`, `0o17`) added.
fn ambiguous() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let forms = [
            // bool
            r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            // int: binary, octal, decimal, hexadecimal, base 60
            r"[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            // float, PyYAML's and YAML 1.2's
            r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?",
            r"[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+",
            r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            // null, merge, value
            r"~|null|Null|NULL|<<|=",
            // timestamp
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
            r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?",
        ];
        let joined: Vec<String> = forms.iter().map(|f| format!("(?:{f})")).collect();
        Regex::new(&format!("^(?:{})$", joined.join("|"))).expect("the patterns compile")
    })
}

/// Whether a YAML 1.1 reader would not read `s`, written plain, as the string `s`.
pub fn needs_quotes(s: &str) -> bool {
    s.is_empty() || ambiguous().is_match(s)
}

/// Every string below `value`, keys included.
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

/// Swaps each string needing quotes for `{prefix}{index}x`, collecting the originals.
fn swap(value: &mut Value, prefix: &str, originals: &mut Vec<String>) {
    match value {
        Value::String(s) if needs_quotes(s) => {
            originals.push(std::mem::take(s));
            *s = format!("{prefix}{}x", originals.len() - 1);
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| swap(v, prefix, originals)),
        Value::Mapping(m) => {
            let entries: Vec<(Value, Value)> = std::mem::take(m).into_iter().collect();
            for (mut k, mut v) in entries {
                swap(&mut k, prefix, originals);
                swap(&mut v, prefix, originals);
                m.insert(k, v);
            }
        }
        Value::Tagged(t) => swap(&mut t.value, prefix, originals),
        _ => {}
    }
}

/// `value` as YAML in which every string reads back as a string under YAML 1.1 too.
pub fn to_string(value: &Value) -> String {
    let mut all = Vec::new();
    strings(value, &mut all);
    // A prefix no string contains, so a placeholder cannot be mistaken for text.
    let mut prefix = String::from("fwq");
    while all.iter().any(|s| s.contains(&prefix)) {
        prefix.push('q');
    }
    let mut value = value.clone();
    let mut originals = Vec::new();
    swap(&mut value, &prefix, &mut originals);
    let text = serde_norway::to_string(&value).expect("a YAML value serialises");
    if originals.is_empty() {
        return text;
    }
    let placeholder = Regex::new(&format!("{prefix}([0-9]+)x")).expect("a literal pattern");
    placeholder
        .replace_all(&text, |c: &regex::Captures| {
            let i: usize = c[1].parse().expect("digits");
            format!("'{}'", originals[i].replace('\'', "''"))
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_scalars_are_quoted_and_read_back_as_strings() {
        let cases = [
            "on",
            "Off",
            "yes",
            "NO",
            "y",
            "N",
            "true",
            "~",
            "null",
            "",
            "1e3",
            "1.5",
            ".5",
            "+12",
            "0b101",
            "017",
            "0o17",
            "0x1F",
            "1_000",
            "1:30",
            "190:20:30.15",
            ".inf",
            "-.Inf",
            ".NaN",
            "2026-01-01",
            "2026-1-2 10:00:00",
            "2001-12-14t21:59:43.10-05:00",
            "<<",
            "=",
        ];
        for s in cases {
            assert!(needs_quotes(s), "{s:?} should be quoted");
            let value = Value::Sequence(vec![Value::String(s.into())]);
            let text = to_string(&value);
            assert_eq!(text, format!("- '{s}'\n"), "{s:?}");
            let back: Value = serde_norway::from_str(&text).unwrap();
            assert_eq!(back, value, "{s:?}");
        }
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in [
            "production",
            "on-call",
            "1.2.3",
            "v1",
            "yes please",
            "0.1.0-beta",
            "fwq0x",
            "o",
            "2026-01",
            "12:30pm",
        ] {
            assert!(!needs_quotes(s), "{s:?} should stay plain");
        }
        let mut m = serde_norway::Mapping::new();
        m.insert("on".into(), "fwq0x".into());
        m.insert("key".into(), "it's off".into());
        m.insert("plain".into(), "off".into());
        let value = Value::Mapping(m);
        let text = to_string(&value);
        assert_eq!(text, "'on': fwq0x\nkey: it's off\nplain: 'off'\n");
        assert_eq!(serde_norway::from_str::<Value>(&text).unwrap(), value);
    }
}
