//! A context prepared for many evaluations: checked once, and its attributes indexed by a hash
//! of their names that compiled clauses computed when their flag entered the snapshot, so each
//! clause finds its attribute with an integer compare instead of a string-keyed search.

use crate::context::{self, Attr};
use flagwire_proto::v1::EvaluationContext;
use prost_types::value::Kind;
use std::hash::BuildHasher;

/// The hash of an attribute name: foldhash with a fixed seed, so a clause's hash (computed
/// when compiled) and a prepared context's (computed when prepared) agree in one process.
pub(crate) fn name_hash(name: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0).hash_one(name)
}

/// Where attributes come from during one evaluation: a plain context or a prepared one.
pub(crate) trait Attributes {
    /// The targeting key (empty when absent).
    fn targeting_key(&self) -> &str;
    /// The attribute `name` (whose [`name_hash`] is `hash`), if present.
    fn named(&self, name: &str, hash: u64) -> Option<Attr<'_>>;
    /// Why the context cannot be evaluated, if it cannot.
    fn invalid(&self) -> Option<&'static str>;
}

impl Attributes for EvaluationContext {
    fn targeting_key(&self) -> &str {
        &self.targeting_key
    }

    fn named(&self, name: &str, _hash: u64) -> Option<Attr<'_>> {
        context::named(self, name)
    }

    fn invalid(&self) -> Option<&'static str> {
        context::validate(self).err()
    }
}

/// An evaluation context checked once and indexed for evaluating many flags (see
/// [`crate::Snapshot::evaluate_prepared`]). Results are those of the context it was made from,
/// bit for bit; preparing pays when the context is evaluated against several rules or flags.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedContext {
    targeting_key: String,
    // (name hash, name, value) of each present attribute, sorted by hash.
    attributes: Vec<(u64, String, prost_types::Value)>,
    invalid: Option<&'static str>,
}

/// Up to this many attributes are scanned (one integer compare each); more are binary-searched.
const SCAN: usize = 12;

impl PreparedContext {
    /// Checks and indexes `ctx` (its strings are moved, not copied).
    pub fn new(ctx: EvaluationContext) -> Self {
        let invalid = context::validate(&ctx).err();
        let mut attributes: Vec<(u64, String, prost_types::Value)> = ctx
            .attributes
            .into_iter()
            .filter(|(_, v)| present(v))
            .map(|(k, v)| (name_hash(&k), k, v))
            .collect();
        attributes.sort_by_key(|(hash, _, _)| *hash);
        Self {
            targeting_key: ctx.targeting_key,
            attributes,
            invalid,
        }
    }
}

impl From<EvaluationContext> for PreparedContext {
    fn from(ctx: EvaluationContext) -> Self {
        Self::new(ctx)
    }
}

fn present(v: &prost_types::Value) -> bool {
    !matches!(
        v.kind,
        None | Some(Kind::NullValue(_)) | Some(Kind::StructValue(_))
    )
}

impl Attributes for PreparedContext {
    fn targeting_key(&self) -> &str {
        &self.targeting_key
    }

    fn named(&self, name: &str, hash: u64) -> Option<Attr<'_>> {
        let found = if self.attributes.len() <= SCAN {
            self.attributes
                .iter()
                .find(|(h, k, _)| *h == hash && context::same(k, name))
        } else {
            let first = self.attributes.partition_point(|(h, _, _)| *h < hash);
            self.attributes[first..]
                .iter()
                .take_while(|(h, _, _)| *h == hash)
                .find(|(_, k, _)| context::same(k, name))
        };
        context::attr(&found?.2)
    }

    fn invalid(&self) -> Option<&'static str> {
        self.invalid
    }
}
