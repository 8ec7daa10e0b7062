//! What a release makes each flag serve, as a rewrite of the flag's configuration in the
//! release's environment. Targets, and rules that match first, keep serving what they serve;
//! the release owns the default rule and, for a segment audience, one rule of its own at the
//! top of the list (id `release:<release id>`).
//!
//! Splits and the release rule carry `rollout_id` = the release id and the cohort labels, so
//! SDKs report every request of the audience as "canary" and of the control as "control",
//! whichever flags of the release it read.

use crate::error::{Error, Result};
use flagwire_core::release::{Audience, EVERYONE, Serving};
use flagwire_proto::v1::{Clause, Flag, Operator, Release, Rule, Serve, Split, SplitEntry, serve};

/// The id of a release's own rule in its flags.
pub fn rule_id(release: &str) -> String {
    format!("release:{release}")
}

fn entry(variant: &str, weight: u32, label: &str) -> SplitEntry {
    SplitEntry {
        variant: variant.to_owned(),
        weight,
        label: label.to_owned(),
    }
}

fn split(r: &Release, entries: Vec<SplitEntry>) -> Serve {
    Serve {
        kind: Some(serve::Kind::Split(Split {
            entries,
            bucket_by: String::new(),
            salt: r.salt.clone(),
            rollout_id: r.id.clone(),
        })),
    }
}

fn fixed(variant: &str) -> Serve {
    Serve {
        kind: Some(serve::Kind::Variant(variant.to_owned())),
    }
}

/// `flag` with the release's environment serving `serving`.
pub fn rewrite(flag: &Flag, r: &Release, serving: &Serving) -> Result<Flag> {
    let mut next = flag.clone();
    let config = next.environments.get_mut(&r.environment).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "flag {:?} has no configuration in environment {:?}",
            flag.key, r.environment
        ))
    })?;
    let own = rule_id(&r.id);
    config.rules.retain(|rule| rule.id != own);
    config.default_rule = Some(match serving {
        Serving::Fixed(v) => fixed(v),
        Serving::Stage {
            variant,
            baseline,
            audience,
        } => match audience {
            // `[audience w, rest, control w]`: the audience is `bucket < w` and control the top
            // `w` of the range, so the cohorts are equal, nested as `w` grows, and a unit never
            // moves from one to the other.
            Audience::Share(bp) if *bp < EVERYONE => split(
                r,
                vec![
                    entry(variant, *bp, "canary"),
                    entry(baseline, EVERYONE - 2 * bp, ""),
                    entry(baseline, *bp, "control"),
                ],
            ),
            Audience::Share(_) | Audience::Everyone => split(r, vec![entry(variant, 1, "canary")]),
            Audience::Segment(segment) => {
                config.rules.insert(
                    0,
                    Rule {
                        id: own,
                        description: format!("release {}: its stage's audience", r.id),
                        clauses: vec![Clause {
                            attribute: String::new(),
                            operator: Operator::InSegment as i32,
                            values: vec![prost_types::Value {
                                kind: Some(prost_types::value::Kind::StringValue(segment.clone())),
                            }],
                            negate: false,
                        }],
                        serve: Some(split(r, vec![entry(variant, 1, "canary")])),
                    },
                );
                fixed(baseline)
            }
        },
    });
    Ok(next)
}
