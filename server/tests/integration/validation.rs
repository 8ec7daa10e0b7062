//! Bad input gets INVALID_ARGUMENT naming the field path and the reason, and changes nothing.

use crate::support::*;
use flagwire_proto::v1::*;
use prost_types::value::Kind;
use tonic::Code;

/// Everything an admin can observe of the store.
async fn fingerprint(admin: &mut Admin) -> String {
    let flags = admin
        .list_flags(ListFlagsRequest {
            include_archived: true,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .flags;
    let envs = admin
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let segments = admin
        .list_segments(ListSegmentsRequest {
            environment: "production".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let tokens = admin
        .list_api_tokens(ListApiTokensRequest {
            include_revoked: true,
        })
        .await
        .unwrap()
        .into_inner();
    let audit = admin
        .list_audit_events(ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    format!(
        "{flags:?}{envs:?}{segments:?}{tokens:?}{}",
        audit.events.len()
    )
}

fn string(s: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(Kind::StringValue(s.into())),
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

/// A valid flag `f`, changed by `edit`.
fn flag(edit: impl FnOnce(&mut Flag)) -> Flag {
    let mut f = bool_flag("f", &["production"]);
    edit(&mut f);
    f
}

fn prod(f: &mut Flag) -> &mut FlagConfig {
    f.environments.get_mut("production").unwrap()
}

#[tokio::test]
async fn bad_input_is_rejected_whole_and_changes_nothing() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                key: "beta".into(),
                environment: "production".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    create_flag(&mut admin, bool_flag("a", &["production"])).await;
    let mut b = bool_flag("b", &["production"]);
    prod(&mut b).prerequisites = vec![Prerequisite {
        flag_key: "a".into(),
        variant: "on".into(),
    }];
    create_flag(&mut admin, b).await;
    let before = fingerprint(&mut admin).await;

    let p = "flag.environments.production";
    let creates: Vec<(String, Flag)> = vec![
        ("flag.key".into(), flag(|f| f.key = String::new())),
        ("flag.key".into(), flag(|f| f.key = "Bad Key".into())),
        ("flag.key".into(), flag(|f| f.key = "k".repeat(129))),
        (
            "flag.description".into(),
            flag(|f| f.description = "x".repeat(5000)),
        ),
        ("flag.type".into(), flag(|f| f.r#type = 0)),
        ("flag.variants".into(), flag(|f| f.variants.clear())),
        (
            "flag.variants[1].key".into(),
            flag(|f| f.variants[1].key = "on".into()),
        ),
        (
            "flag.variants[0].key".into(),
            flag(|f| f.variants[0].key = "ON!".into()),
        ),
        (
            "flag.variants[0].value".into(),
            flag(|f| f.variants[0].value = None),
        ),
        (
            "flag.variants[0].value".into(),
            flag(|f| {
                f.variants[0].value = Some(FlagValue {
                    kind: Some(flag_value::Kind::StringValue("yes".into())),
                })
            }),
        ),
        (
            "flag.variants[0].value".into(),
            flag(|f| {
                f.r#type = ValueType::Float as i32;
                for v in &mut f.variants {
                    v.value = Some(FlagValue {
                        kind: Some(flag_value::Kind::FloatValue(f64::NAN)),
                    });
                }
            }),
        ),
        (
            "flag.tags[0]".into(),
            flag(|f| f.tags = vec!["Not A Tag".into()]),
        ),
        (
            "flag.tags[1]".into(),
            flag(|f| f.tags = vec!["t".into(), "t".into()]),
        ),
        (
            "flag.environments.mars".into(),
            flag(|f| {
                let c = prod(f).clone();
                f.environments.insert("mars".into(), c);
            }),
        ),
        (
            format!("{p}.offVariant"),
            flag(|f| prod(f).off_variant = "maybe".into()),
        ),
        (
            format!("{p}.targets[0].variant"),
            flag(|f| {
                prod(f).targets = vec![Target {
                    variant: "maybe".into(),
                    values: vec!["u1".into()],
                }]
            }),
        ),
        (
            format!("{p}.targets[1].values[0]"),
            flag(|f| {
                prod(f).targets = vec![
                    Target {
                        variant: "on".into(),
                        values: vec!["u1".into()],
                    },
                    Target {
                        variant: "off".into(),
                        values: vec!["u1".into()],
                    },
                ]
            }),
        ),
        (
            format!("{p}.defaultRule"),
            flag(|f| prod(f).default_rule = None),
        ),
        (
            format!("{p}.defaultRule.variant"),
            flag(|f| prod(f).default_rule = serve_variant("maybe")),
        ),
        (
            format!("{p}.defaultRule.split.entries"),
            flag(|f| prod(f).default_rule = split(&[])),
        ),
        (
            format!("{p}.defaultRule.split.entries"),
            flag(|f| prod(f).default_rule = split(&[("on", 0), ("off", 0)])),
        ),
        (
            format!("{p}.defaultRule.split.entries"),
            flag(|f| prod(f).default_rule = split(&[("on", 1 << 31), ("off", 1)])),
        ),
        (
            format!("{p}.defaultRule.split.entries[1].variant"),
            flag(|f| prod(f).default_rule = split(&[("on", 1), ("maybe", 1)])),
        ),
        (
            format!("{p}.rules[0].serve"),
            flag(|f| {
                prod(f).rules = vec![Rule {
                    serve: None,
                    ..rule(clause("plan", Operator::In, vec![string("pro")]))
                }]
            }),
        ),
        (
            format!("{p}.rules[1].id"),
            flag(|f| {
                prod(f).rules = vec![rule(clause("plan", Operator::In, vec![string("pro")])); 2]
            }),
        ),
        (
            format!("{p}.rules[0].clauses[0].operator"),
            flag(|f| {
                prod(f).rules = vec![rule(clause(
                    "plan",
                    Operator::Unspecified,
                    vec![string("pro")],
                ))]
            }),
        ),
        (
            format!("{p}.rules[0].clauses[0].values"),
            flag(|f| prod(f).rules = vec![rule(clause("plan", Operator::In, vec![]))]),
        ),
        (
            format!("{p}.rules[0].clauses[0].attribute"),
            flag(|f| prod(f).rules = vec![rule(clause("", Operator::In, vec![string("pro")]))]),
        ),
        (
            format!("{p}.rules[0].clauses[0].values[0]"),
            flag(|f| {
                prod(f).rules = vec![rule(clause("age", Operator::Gt, vec![string("thirty")]))]
            }),
        ),
        (
            format!("{p}.rules[0].clauses[0].values[0]"),
            flag(|f| {
                prod(f).rules = vec![rule(clause("", Operator::InSegment, vec![string("gamma")]))]
            }),
        ),
        (
            format!("{p}.prerequisites[0].flagKey"),
            flag(|f| {
                prod(f).prerequisites = vec![Prerequisite {
                    flag_key: "ghost".into(),
                    variant: "on".into(),
                }]
            }),
        ),
        (
            format!("{p}.prerequisites[0].variant"),
            flag(|f| {
                prod(f).prerequisites = vec![Prerequisite {
                    flag_key: "a".into(),
                    variant: "maybe".into(),
                }]
            }),
        ),
        (
            format!("{p}.prerequisites[0].flagKey"),
            flag(|f| {
                prod(f).prerequisites = vec![Prerequisite {
                    flag_key: "f".into(),
                    variant: "on".into(),
                }]
            }),
        ),
    ];
    for (field, bad) in creates {
        let result = admin
            .create_flag(CreateFlagRequest {
                flag: Some(bad.clone()),
                reason: String::new(),
            })
            .await;
        let message = code(result, Code::InvalidArgument);
        assert!(
            message.contains(&format!("{field}:")),
            "expected field {field} in {message:?}"
        );
        assert_eq!(
            fingerprint(&mut admin).await,
            before,
            "{field} changed the store"
        );
    }

    // A prerequisite cycle through an update: a -> b -> a.
    let mut a = admin
        .get_flag(GetFlagRequest { key: "a".into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    prod(&mut a).prerequisites = vec![Prerequisite {
        flag_key: "b".into(),
        variant: "on".into(),
    }];
    let result = admin
        .update_flag(UpdateFlagRequest {
            flag: Some(a),
            expected_version: 1,
            reason: String::new(),
        })
        .await;
    let message = code(result, Code::InvalidArgument);
    assert!(
        message.contains(&format!("{p}.prerequisites[0].flagKey")) && message.contains("cycle"),
        "{message}"
    );

    // Other objects.
    let message = code(
        admin
            .create_flag(CreateFlagRequest {
                flag: None,
                reason: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert!(message.contains("flag: required"), "{message}");
    let env = admin
        .create_environment(CreateEnvironmentRequest {
            environment: Some(Environment {
                key: "Prod!".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await;
    assert!(code(env, Code::InvalidArgument).contains("environment.key"));
    let bad_segments = [
        (
            "segment.key",
            Segment {
                key: String::new(),
                environment: "production".into(),
                ..Default::default()
            },
        ),
        (
            "segment.environment",
            Segment {
                key: "s".into(),
                environment: "mars".into(),
                ..Default::default()
            },
        ),
        (
            "segment.rules[0].clauses[0].operator",
            Segment {
                key: "s".into(),
                environment: "production".into(),
                rules: vec![SegmentRule {
                    clauses: vec![clause("", Operator::InSegment, vec![string("beta")])],
                }],
                ..Default::default()
            },
        ),
        (
            "segment.rules[0].clauses",
            Segment {
                key: "s".into(),
                environment: "production".into(),
                rules: vec![SegmentRule { clauses: vec![] }],
                ..Default::default()
            },
        ),
    ];
    for (field, segment) in bad_segments {
        let result = admin
            .create_segment(CreateSegmentRequest {
                segment: Some(segment),
                reason: String::new(),
            })
            .await;
        let message = code(result, Code::InvalidArgument);
        assert!(
            message.contains(&format!("{field}:")),
            "expected {field} in {message}"
        );
    }
    let token = admin
        .create_api_token(CreateApiTokenRequest {
            name: "has space".into(),
            role: Role::Admin as i32,
            ..Default::default()
        })
        .await;
    assert!(code(token, Code::InvalidArgument).contains("name"));
    assert_eq!(fingerprint(&mut admin).await, before, "nothing changed");
}
