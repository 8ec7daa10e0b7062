//! Bad flags: CreateFlag of a valid flag `f` with one thing broken, UpdateFlag of the stored
//! `a`, and SetFlagEnabled.

use super::Case;
use crate::support::table::row;
use crate::support::*;
use flagwire_proto::v1::*;
use prost_types::value::Kind;

fn string(s: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn number(n: f64) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn serve_variant(v: &str) -> Option<Serve> {
    Some(Serve {
        kind: Some(serve::Kind::Variant(v.into())),
    })
}

fn split(entries: &[(&str, u32)]) -> Option<Serve> {
    Some(Serve {
        kind: Some(serve::Kind::Split(Split {
            entries: entries
                .iter()
                .map(|(v, w)| SplitEntry {
                    variant: v.to_string(),
                    weight: *w,
                    label: String::new(),
                })
                .collect(),
            ..Default::default()
        })),
    })
}

fn rule(clause: Clause) -> Rule {
    Rule {
        id: "r".into(),
        clauses: vec![clause],
        serve: serve_variant("on"),
        ..Default::default()
    }
}

fn clause(attribute: &str, op: Operator, values: Vec<prost_types::Value>) -> Clause {
    Clause {
        attribute: attribute.into(),
        operator: op as i32,
        values,
        negate: false,
    }
}

/// The `production` configuration of a flag.
pub fn prod(f: &mut Flag) -> &mut FlagConfig {
    f.environments.get_mut("production").unwrap()
}

/// Sets the `production` rules of a flag to one rule with one clause.
fn one_rule(f: &mut Flag, attribute: &str, op: Operator, values: Vec<prost_types::Value>) {
    prod(f).rules = vec![rule(clause(attribute, op, values))];
}

fn prerequisite(flag_key: &str, variant: &str) -> Vec<Prerequisite> {
    vec![Prerequisite {
        flag_key: flag_key.into(),
        variant: variant.into(),
    }]
}

fn target(variant: &str, value: &str) -> Target {
    Target {
        variant: variant.into(),
        values: vec![value.into()],
    }
}

/// Creates a valid flag `f` (a boolean, configured in production), changed by `edit`.
fn create(edit: impl FnOnce(&mut Flag)) -> CreateFlagRequest {
    let mut flag = bool_flag("f", &["production"]);
    edit(&mut flag);
    CreateFlagRequest {
        flag: Some(flag),
        reason: String::new(),
    }
}

/// Updates the stored flag `a` (at version 1) to itself changed by `edit`.
fn update(edit: impl FnOnce(&mut Flag)) -> UpdateFlagRequest {
    let mut flag = bool_flag("a", &["production"]);
    edit(&mut flag);
    UpdateFlagRequest {
        force: false,
        flag: Some(flag),
        expected_version: 1,
        reason: String::new(),
    }
}

/// The path of `rest` in the production configuration of a flag.
fn at(rest: &str) -> String {
    format!("flag.environments.production.{rest}")
}

/// The flag cases.
pub fn cases() -> Vec<Case> {
    let float = |n: f64| FlagValue {
        kind: Some(flag_value::Kind::FloatValue(n)),
    };
    vec![
        row("a flag without a key")
            .sends(create(|f| f.key.clear()))
            .names("flag.key", "must not be empty"),
        row("a flag key with capitals")
            .sends(create(|f| f.key = "Bad".into()))
            .names("flag.key", "invalid character 'B'"),
        row("a flag key with a space")
            .sends(create(|f| f.key = "a b".into()))
            .names("flag.key", "invalid character ' '"),
        row("a flag key of 129 characters")
            .sends(create(|f| f.key = "k".repeat(129)))
            .names("flag.key", "at most 128 characters"),
        row("a description over 4096 bytes")
            .sends(create(|f| f.description = "x".repeat(5000)))
            .names("flag.description", "at most 4096 bytes"),
        row("a flag without a type")
            .sends(create(|f| f.r#type = 0))
            .names("flag.type", "must be one of"),
        row("a type the enum does not have")
            .sends(create(|f| f.r#type = 99))
            .names("flag.type", "must be one of"),
        row("a flag without variants")
            .sends(create(|f| f.variants.clear()))
            .names("flag.variants", "at least one variant"),
        row("two variants with one key")
            .sends(create(|f| f.variants[1].key = "on".into()))
            .names("flag.variants[1].key", "duplicate variant \"on\""),
        row("a variant key with capitals")
            .sends(create(|f| f.variants[0].key = "ON!".into()))
            .names("flag.variants[0].key", "invalid character 'O'"),
        row("a variant without a value")
            .sends(create(|f| f.variants[0].value = None))
            .names("flag.variants[0].value", "needs a value"),
        row("a string variant in a boolean flag")
            .sends(create(|f| {
                f.variants[0].value = Some(FlagValue {
                    kind: Some(flag_value::Kind::StringValue("yes".into())),
                })
            }))
            .names(
                "flag.variants[0].value",
                "does not match the flag type VALUE_TYPE_BOOLEAN",
            ),
        row("a NaN variant in a float flag")
            .sends(create(|f| {
                f.r#type = ValueType::Float as i32;
                f.variants[0].value = Some(float(f64::NAN));
                f.variants[1].value = Some(float(0.5));
            }))
            .names(
                "flag.variants[0].value",
                "does not match the flag type VALUE_TYPE_FLOAT",
            ),
        row("a variant description over 4096 bytes")
            .sends(create(|f| f.variants[1].description = "x".repeat(4097)))
            .names("flag.variants[1].description", "at most 4096 bytes"),
        row("a tag with capitals and spaces")
            .sends(create(|f| f.tags = vec!["Not A Tag".into()]))
            .names("flag.tags[0]", "invalid character 'N'"),
        row("an empty tag")
            .sends(create(|f| f.tags = vec![String::new()]))
            .names("flag.tags[0]", "must not be empty"),
        row("a tag twice")
            .sends(create(|f| f.tags = vec!["t".into(), "t".into()]))
            .names("flag.tags[1]", "duplicate tag \"t\""),
        row("a configuration for an unknown environment")
            .sends(create(|f| {
                let c = prod(f).clone();
                f.environments.insert("mars".into(), c);
            }))
            .names("flag.environments.mars", "unknown environment \"mars\""),
        row("an unknown off variant")
            .sends(create(|f| prod(f).off_variant = "maybe".into()))
            .names(at("offVariant"), "unknown variant \"maybe\""),
        row("a target serving an unknown variant")
            .sends(create(|f| prod(f).targets = vec![target("maybe", "u1")]))
            .names(at("targets[0].variant"), "unknown variant \"maybe\""),
        row("an empty targeting key")
            .sends(create(|f| prod(f).targets = vec![target("on", "")]))
            .names(at("targets[0].values[0]"), "must not be empty"),
        row("one key in two targets")
            .sends(create(|f| {
                prod(f).targets = vec![target("on", "u1"), target("off", "u1")]
            }))
            .names(at("targets[1].values[0]"), "\"u1\" is targeted twice"),
        row("no default rule")
            .sends(create(|f| prod(f).default_rule = None))
            .names(at("defaultRule"), "must serve a variant or a split"),
        row("a default rule serving an unknown variant")
            .sends(create(|f| prod(f).default_rule = serve_variant("maybe")))
            .names(at("defaultRule.variant"), "unknown variant \"maybe\""),
        row("a split without entries")
            .sends(create(|f| prod(f).default_rule = split(&[])))
            .names(at("defaultRule.split.entries"), "at least one entry"),
        row("a split of zero weights")
            .sends(create(|f| {
                prod(f).default_rule = split(&[("on", 0), ("off", 0)])
            }))
            .names(at("defaultRule.split.entries"), "must not all be zero"),
        row("a split weighing over 2^31-1")
            .sends(create(|f| {
                prod(f).default_rule = split(&[("on", 1 << 31), ("off", 1)])
            }))
            .names(at("defaultRule.split.entries"), "more than 2^31-1"),
        row("a split into an unknown variant")
            .sends(create(|f| {
                prod(f).default_rule = split(&[("on", 1), ("maybe", 1)])
            }))
            .names(
                at("defaultRule.split.entries[1].variant"),
                "unknown variant \"maybe\"",
            ),
        row("a rule serving nothing")
            .sends(create(|f| {
                one_rule(f, "plan", Operator::In, vec![string("pro")]);
                prod(f).rules[0].serve = None;
            }))
            .names(at("rules[0].serve"), "must serve a variant or a split"),
        row("two rules with one id")
            .sends(create(|f| {
                prod(f).rules = vec![rule(clause("plan", Operator::In, vec![string("pro")])); 2]
            }))
            .names(at("rules[1].id"), "duplicate rule id \"r\""),
        row("a rule description over 4096 bytes")
            .sends(create(|f| {
                one_rule(f, "plan", Operator::In, vec![string("pro")]);
                prod(f).rules[0].description = "x".repeat(4097);
            }))
            .names(at("rules[0].description"), "at most 4096 bytes"),
        row("a clause without an operator")
            .sends(create(|f| {
                one_rule(f, "plan", Operator::Unspecified, vec![string("pro")])
            }))
            .names(at("rules[0].clauses[0].operator"), "must be set"),
        row("a clause without values")
            .sends(create(|f| one_rule(f, "plan", Operator::In, vec![])))
            .names(at("rules[0].clauses[0].values"), "at least one value"),
        row("a clause without an attribute")
            .sends(create(|f| {
                one_rule(f, "", Operator::In, vec![string("pro")])
            }))
            .names(
                at("rules[0].clauses[0].attribute"),
                "must name an attribute",
            ),
        row("a word where GT needs a number")
            .sends(create(|f| {
                one_rule(f, "age", Operator::Gt, vec![string("thirty")])
            }))
            .names(
                at("rules[0].clauses[0].values[0]"),
                "OPERATOR_GT needs a number",
            ),
        row("NaN where GT needs a number")
            .sends(create(|f| {
                one_rule(f, "age", Operator::Gt, vec![number(f64::NAN)])
            }))
            .names(
                at("rules[0].clauses[0].values[0]"),
                "OPERATOR_GT needs a number",
            ),
        row("a number where STARTS_WITH needs a string")
            .sends(create(|f| {
                one_rule(f, "email", Operator::StartsWith, vec![number(1.0)])
            }))
            .names(
                at("rules[0].clauses[0].values[0]"),
                "OPERATOR_STARTS_WITH needs a string",
            ),
        row("a null in an IN clause")
            .sends(create(|f| {
                one_rule(
                    f,
                    "plan",
                    Operator::In,
                    vec![prost_types::Value { kind: None }],
                )
            }))
            .names(
                at("rules[0].clauses[0].values[0]"),
                "must be a string, number or boolean",
            ),
        row("an unknown segment")
            .sends(create(|f| {
                one_rule(f, "", Operator::InSegment, vec![string("gamma")])
            }))
            .names(
                at("rules[0].clauses[0].values[0]"),
                "unknown segment \"gamma\"",
            ),
        row("an unknown prerequisite flag")
            .sends(create(|f| {
                prod(f).prerequisites = prerequisite("ghost", "on")
            }))
            .names(at("prerequisites[0].flagKey"), "unknown flag \"ghost\""),
        row("a prerequisite variant the flag lacks")
            .sends(create(|f| {
                prod(f).prerequisites = prerequisite("a", "maybe")
            }))
            .names(at("prerequisites[0].variant"), "has no variant \"maybe\""),
        row("a flag its own prerequisite")
            .sends(create(|f| prod(f).prerequisites = prerequisite("f", "on")))
            .names(at("prerequisites[0].flagKey"), "its own prerequisite"),
        row("a create without a flag")
            .sends(CreateFlagRequest::default())
            .names("flag", "required"),
        // Updates of `a`, which `b` requires.
        row("a prerequisite cycle a -> b -> a")
            .sends(update(|a| prod(a).prerequisites = prerequisite("b", "on")))
            .names(at("prerequisites[0].flagKey"), "a cycle"),
        row("an update with an unknown off variant")
            .sends(update(|a| prod(a).off_variant = "maybe".into()))
            .names(at("offVariant"), "unknown variant \"maybe\""),
        row("an update without the version read")
            .sends(UpdateFlagRequest {
                expected_version: 0,
                ..update(|_| {})
            })
            .names("expectedVersion", "required"),
        row("an update without a flag")
            .sends(UpdateFlagRequest {
                flag: None,
                ..update(|_| {})
            })
            .names("flag", "required"),
        row("a toggle in an environment with capitals")
            .sends(SetFlagEnabledRequest {
                key: "a".into(),
                environment: "Production".into(),
                enabled: true,
                ..Default::default()
            })
            .names("environment", "invalid character 'P'"),
    ]
}
