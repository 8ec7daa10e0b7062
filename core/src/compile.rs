//! Flags and segments compiled for evaluation when they enter a snapshot: operators decoded,
//! clause values parsed, variants resolved to indexes, split weights summed and salts chosen,
//! so that evaluating touches no `prost_types::Value` and compares no variant keys.

use crate::bucket::SaltedHash;
use crate::context::{Attr, TARGETING_KEY};
use crate::operators::{Strings, Test};
use crate::prepared::{Attributes, name_hash};
use crate::project::default_config;
use flagwire_proto::v1::{
    Clause as WireClause, Flag, FlagConfig, Segment, Serve as WireServe, serve,
};

/// Where a clause or a split reads its attribute.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The context's targeting key.
    TargetingKey,
    /// A named attribute, with the hash a prepared context indexes it by.
    Named(String, u64),
}

impl Source {
    fn new(name: &str) -> Self {
        if name == TARGETING_KEY {
            Source::TargetingKey
        } else {
            Source::Named(name.to_owned(), name_hash(name))
        }
    }

    /// The attribute in `ctx`, if present (`null` counts as absent).
    pub(crate) fn read<'c, C: Attributes>(&self, ctx: &'c C) -> Option<Attr<'c>> {
        match self {
            Source::TargetingKey => {
                let key = ctx.targeting_key();
                (!key.is_empty()).then_some(Attr::Str(key))
            }
            Source::Named(name, hash) => ctx.named(name, *hash),
        }
    }
}

/// One clause: where its attribute comes from, the compiled test, and whether it is negated.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    pub(crate) source: Source,
    pub(crate) test: Test,
    pub(crate) negate: bool,
}

impl Clause {
    fn compile(c: &WireClause, in_segment_rule: bool) -> Self {
        Self {
            source: Source::new(&c.attribute),
            test: Test::compile(c.operator, &c.values, in_segment_rule),
            negate: c.negate,
        }
    }
}

/// A variant resolved to its index in the flag's variants; `None` names no variant (an error
/// when served).
pub(crate) type VariantIndex = Option<usize>;

/// One entry of a split, with the running total of weights up to and including it.
#[derive(Debug, Clone)]
pub(crate) struct SplitEntry {
    pub(crate) cumulative: u64,
    pub(crate) variant: VariantIndex,
    pub(crate) label: String,
}

/// A split ready to bucket: its unit's source, its salt, and its entries' running totals.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) unit: Source,
    pub(crate) salt: SaltedHash,
    pub(crate) total: u64,
    pub(crate) entries: Vec<SplitEntry>,
    pub(crate) rollout_id: String,
}

/// What a rule or the default serves.
#[derive(Debug, Clone)]
pub(crate) enum Serve {
    /// Nothing configured (an error when reached).
    Nothing,
    /// One variant.
    Variant(VariantIndex),
    /// A weighted split.
    Split(Box<Split>),
}

/// A targeting rule: all its clauses match, then it serves.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) clauses: Vec<Clause>,
    pub(crate) serve: Serve,
}

/// One flag as one environment evaluates it.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFlag {
    /// The flag without its per-environment map (values and keys are served from here).
    pub(crate) flag: Flag,
    /// This environment's configuration, as received (for the wire form and prerequisites).
    pub(crate) config: FlagConfig,
    pub(crate) off: VariantIndex,
    /// Targeting key → the variant of the first target listing it.
    pub(crate) targets: Vec<(Strings, VariantIndex)>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Serve,
}

impl CompiledFlag {
    /// Compiles `flag`'s configuration for `environment` (the default one if it has none).
    pub(crate) fn new(mut flag: Flag, environment: &str) -> Self {
        let config = flag
            .environments
            .remove(environment)
            .unwrap_or_else(|| default_config(&flag));
        flag.environments.clear();
        let index = |key: &str| flag.variants.iter().position(|v| v.key == key);
        let serve = |s: Option<&WireServe>| compile_serve(s, &flag, &config, &index);
        Self {
            off: index(&config.off_variant),
            targets: config
                .targets
                .iter()
                .map(|t| (Strings::new(t.values.iter().cloned()), index(&t.variant)))
                .collect(),
            rules: config
                .rules
                .iter()
                .map(|r| Rule {
                    clauses: r
                        .clauses
                        .iter()
                        .map(|c| Clause::compile(c, false))
                        .collect(),
                    serve: serve(r.serve.as_ref()),
                })
                .collect(),
            default: serve(config.default_rule.as_ref()),
            flag,
            config,
        }
    }
}

fn compile_serve(
    s: Option<&WireServe>,
    flag: &Flag,
    config: &FlagConfig,
    index: &impl Fn(&str) -> VariantIndex,
) -> Serve {
    match s.and_then(|s| s.kind.as_ref()) {
        None => Serve::Nothing,
        Some(serve::Kind::Variant(v)) => Serve::Variant(index(v)),
        Some(serve::Kind::Split(split)) => {
            let salt = [split.salt.as_str(), config.salt.as_str()]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or(&flag.key);
            let mut cumulative = 0u64;
            let entries = split
                .entries
                .iter()
                .map(|e| {
                    cumulative += u64::from(e.weight);
                    SplitEntry {
                        cumulative,
                        variant: index(&e.variant),
                        label: e.label.clone(),
                    }
                })
                .collect();
            let unit = if split.bucket_by.is_empty() {
                Source::TargetingKey
            } else {
                Source::new(&split.bucket_by)
            };
            Serve::Split(Box::new(Split {
                unit,
                salt: SaltedHash::new(salt),
                total: cumulative,
                entries,
                rollout_id: split.rollout_id.clone(),
            }))
        }
    }
}

/// A segment, compiled: its key lists as sets and its rules' clauses.
#[derive(Debug, Clone)]
pub(crate) struct CompiledSegment {
    /// The segment as received (for the wire form).
    pub(crate) segment: Segment,
    pub(crate) included: Strings,
    pub(crate) excluded: Strings,
    /// Each rule's clauses; the segment holds a context matching any rule.
    pub(crate) rules: Vec<Vec<Clause>>,
}

impl CompiledSegment {
    /// Compiles `segment`.
    pub(crate) fn new(segment: Segment) -> Self {
        Self {
            included: Strings::new(segment.included.iter().cloned()),
            excluded: Strings::new(segment.excluded.iter().cloned()),
            rules: segment
                .rules
                .iter()
                .map(|r| r.clauses.iter().map(|c| Clause::compile(c, true)).collect())
                .collect(),
            segment,
        }
    }
}
