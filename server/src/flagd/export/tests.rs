//! The export's shapes; that they evaluate as `flagwire-core` does is proven by the official
//! providers (tests/openfeature/flagd).

use super::{OMITTED_KEY, Options, Untranslatable, export};
use flagwire_proto::v1::{
    Clause, Flag, FlagConfig, FlagValue, Operator, Rule, Serve, Split, SplitEntry, ValueType,
    Variant, flag_value, serve,
};
use serde_json::json;

fn variant(key: &str, on: bool) -> Variant {
    Variant {
        key: key.into(),
        value: Some(FlagValue {
            kind: Some(flag_value::Kind::BoolValue(on)),
        }),
        ..Variant::default()
    }
}

fn flag(key: &str, config: FlagConfig) -> Flag {
    Flag {
        key: key.into(),
        r#type: ValueType::Boolean as i32,
        variants: vec![variant("on", true), variant("off", false)],
        environments: [("prod".to_owned(), config)].into(),
        version: 3,
        ..Flag::default()
    }
}

fn fixed(v: &str) -> Option<Serve> {
    Some(Serve {
        kind: Some(serve::Kind::Variant(v.into())),
    })
}

fn split() -> Option<Serve> {
    Some(Serve {
        kind: Some(serve::Kind::Split(Split {
            entries: vec![
                SplitEntry {
                    variant: "on".into(),
                    weight: 10,
                    ..SplitEntry::default()
                },
                SplitEntry {
                    variant: "off".into(),
                    weight: 90,
                    ..SplitEntry::default()
                },
            ],
            salt: "s1".into(),
            ..Split::default()
        })),
    })
}

fn enabled(default_rule: Option<Serve>) -> FlagConfig {
    FlagConfig {
        enabled: true,
        off_variant: "off".into(),
        default_rule,
        ..FlagConfig::default()
    }
}

#[test]
fn a_disabled_flag_is_exported_enabled_serving_its_off_variant() {
    let f = flag(
        "a",
        FlagConfig {
            enabled: false,
            ..enabled(fixed("on"))
        },
    );
    let doc = export("prod", 7, &[f], &[], Options::default()).document;
    assert_eq!(
        doc["flags"]["a"],
        json!({"state": "ENABLED", "variants": {"on": true, "off": false},
               "defaultVariant": "off", "metadata": {"flagVersion": 3}})
    );
    assert_eq!(
        doc["metadata"],
        json!({"flagSetId": "prod", "version": "7"})
    );
}

#[test]
fn a_split_is_left_out_and_listed_unless_the_client_asks_for_utf8_fractional() {
    let f = flag("b", enabled(split()));
    let out = export("prod", 1, std::slice::from_ref(&f), &[], Options::default());
    assert!(out.document["flags"].get("b").is_none());
    assert_eq!(out.document["metadata"][OMITTED_KEY], "b");
    assert_eq!(out.omitted, [("b".to_owned(), Untranslatable::Split)]);

    let utf8 = Options {
        fractional_utf8: true,
    };
    let doc = export("prod", 1, &[f], &[], utf8).document;
    let fractional = &doc["flags"]["b"]["targeting"]["if"][1]["fractional"];
    assert_eq!(
        fractional,
        &json!([{"cat": ["s1", {"var": "targetingKey"}]}, ["on", 10], ["off", 90]])
    );
    assert_eq!(
        doc["flags"]["b"]["targeting"]["if"][2],
        "flagwire:targeting-key-missing"
    );
}

#[test]
fn dates_and_dotted_attribute_names_cannot_be_exported() {
    let rule = |attribute: &str, operator: Operator| Rule {
        clauses: vec![Clause {
            attribute: attribute.into(),
            operator: operator as i32,
            values: vec![prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("x".into())),
            }],
            negate: false,
        }],
        serve: fixed("on"),
        ..Rule::default()
    };
    let with = |r: Rule| FlagConfig {
        rules: vec![r],
        ..enabled(fixed("off"))
    };
    let flags = [
        flag("c", with(rule("signup", Operator::Before))),
        flag("d", with(rule("user.plan", Operator::In))),
        flag("e", with(rule("plan", Operator::In))),
    ];
    let out = export("prod", 1, &flags, &[], Options::default());
    let omitted: Vec<&str> = out.omitted.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(omitted, ["c", "d"]);
    assert!(out.document["flags"]["e"]["targeting"].is_object());
}
