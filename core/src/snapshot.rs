//! An environment's flags and segments, indexed for evaluation, and the evaluation algorithm of
//! `docs/evaluation.md`.

use crate::bucket;
use crate::context::{self, Attr, TARGETING_KEY};
use crate::evaluation::Evaluation;
use crate::operators;
use crate::project::default_config;
use flagwire_proto::v1::{
    Change, Clause, ErrorCode, EvaluationContext, Flag, FlagConfig, Operator, Reason, Segment,
    Serve, ValueType, change, serve,
};
// foldhash instead of SipHash: flag and segment keys come from the operator, not from an
// attacker choosing collisions, and the lookup is on every evaluation.
use foldhash::HashMap;

/// A change that does not follow the snapshot's revision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("change {got} does not follow revision {}", expected - 1)]
pub struct ApplyError {
    /// The revision that would have followed.
    pub expected: u64,
    /// The revision received.
    pub got: u64,
}

/// Prerequisite chains deeper than this fail (writes reject cycles; this guards damaged data).
pub const MAX_PREREQUISITE_DEPTH: usize = 16;

#[derive(Clone)]
struct Entry {
    // The flag without its per-environment map; `config` is this environment's entry.
    flag: Flag,
    config: FlagConfig,
}

/// One environment, ready to evaluate. SDKs treat it as immutable: they clone it, apply a
/// change to the clone and swap it in, so readers never wait for writers.
#[derive(Clone)]
pub struct Snapshot {
    environment: String,
    revision: u64,
    flags: HashMap<String, Entry>,
    segments: HashMap<String, Segment>,
}

impl Snapshot {
    /// Indexes `flags` and `segments` of `environment` at `revision`.
    pub fn new(
        environment: &str,
        revision: u64,
        flags: impl IntoIterator<Item = Flag>,
        segments: impl IntoIterator<Item = Segment>,
    ) -> Self {
        let mut snapshot = Self {
            environment: environment.to_owned(),
            revision,
            flags: HashMap::default(),
            segments: HashMap::default(),
        };
        for flag in flags {
            snapshot.upsert_flag(flag);
        }
        for segment in segments {
            snapshot.upsert_segment(segment);
        }
        snapshot
    }

    /// The environment.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Inserts or replaces a flag (its config for this environment is extracted).
    pub fn upsert_flag(&mut self, mut flag: Flag) {
        let config = flag
            .environments
            .remove(&self.environment)
            .unwrap_or_else(|| default_config(&flag));
        flag.environments.clear();
        self.flags.insert(flag.key.clone(), Entry { flag, config });
    }

    /// Removes a flag.
    pub fn remove_flag(&mut self, key: &str) {
        self.flags.remove(key);
    }

    /// Inserts or replaces a segment; one of another environment is ignored (segments belong to
    /// one environment and are invisible elsewhere).
    pub fn upsert_segment(&mut self, segment: Segment) {
        if segment.environment.is_empty() || segment.environment == self.environment {
            self.segments.insert(segment.key.clone(), segment);
        }
    }

    /// Removes a segment.
    pub fn remove_segment(&mut self, key: &str) {
        self.segments.remove(key);
    }

    /// Sets the revision (after applying a change).
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Builds a snapshot from the wire form a Watch stream sends.
    pub fn from_proto(snapshot: flagwire_proto::v1::Snapshot) -> Self {
        Self::new(
            &snapshot.environment,
            snapshot.revision,
            snapshot.flags,
            snapshot.segments,
        )
    }

    /// The wire form, e.g. to persist as a bootstrap file.
    pub fn to_proto(&self) -> flagwire_proto::v1::Snapshot {
        let mut flags: Vec<Flag> = self
            .flags
            .values()
            .map(|e| {
                let mut flag = e.flag.clone();
                flag.environments
                    .insert(self.environment.clone(), e.config.clone());
                flag
            })
            .collect();
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        let mut segments: Vec<Segment> = self.segments.values().cloned().collect();
        segments.sort_by(|a, b| a.key.cmp(&b.key));
        flagwire_proto::v1::Snapshot {
            environment: self.environment.clone(),
            revision: self.revision,
            flags,
            segments,
        }
    }

    /// Applies the change that follows this snapshot's revision. A change that does not
    /// (a gap, or an old one) is refused and nothing changes: the caller resynchronises.
    pub fn apply(&mut self, change: &Change) -> Result<(), ApplyError> {
        if change.revision != self.revision + 1 {
            return Err(ApplyError {
                expected: self.revision + 1,
                got: change.revision,
            });
        }
        match &change.kind {
            Some(change::Kind::FlagUpserted(f)) => self.upsert_flag(f.clone()),
            Some(change::Kind::FlagsUpserted(batch)) => {
                for f in &batch.flags {
                    self.upsert_flag(f.clone());
                }
            }
            Some(change::Kind::FlagDeleted(k)) => self.remove_flag(k),
            Some(change::Kind::SegmentUpserted(s)) => self.upsert_segment(s.clone()),
            Some(change::Kind::SegmentDeleted(k)) => self.remove_segment(k),
            None => {}
        }
        self.revision = change.revision;
        Ok(())
    }

    /// Keys of flags that differ between `self` and `newer` (added, removed, or another
    /// version), sorted: what change listeners are told after a snapshot replaces another.
    pub fn changed_flags(&self, newer: &Snapshot) -> Vec<String> {
        let mut keys: Vec<String> = newer
            .flags
            .iter()
            .filter(|(k, e)| {
                self.flags
                    .get(*k)
                    .is_none_or(|o| o.flag.version != e.flag.version)
            })
            .map(|(k, _)| k.clone())
            .chain(
                self.flags
                    .keys()
                    .filter(|k| !newer.flags.contains_key(*k))
                    .cloned(),
            )
            .collect();
        keys.sort();
        keys
    }

    /// Keys of every flag that is not archived, sorted.
    pub fn flag_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .flags
            .values()
            .filter(|e| !e.flag.archived)
            .map(|e| e.flag.key.as_str())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Evaluates flag `key` for `ctx`; `expected` is the type the caller wants, if any.
    /// Never panics: every problem is an [`Evaluation::error`].
    pub fn evaluate(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        expected: Option<ValueType>,
    ) -> Evaluation<'_> {
        let Some(entry) = self.flags.get(key).filter(|e| !e.flag.archived) else {
            return Evaluation::error(ErrorCode::FlagNotFound, "flag not found", 0);
        };
        let version = entry.flag.version;
        if expected.is_some_and(|t| t as i32 != entry.flag.r#type) {
            return Evaluation::error(ErrorCode::TypeMismatch, "flag holds another type", version);
        }
        if let Err(message) = context::validate(ctx) {
            return Evaluation::error(ErrorCode::InvalidContext, message, version);
        }
        self.resolve(entry, ctx, 0)
    }

    fn resolve<'a>(
        &'a self,
        entry: &'a Entry,
        ctx: &EvaluationContext,
        depth: usize,
    ) -> Evaluation<'a> {
        let config = &entry.config;
        if !config.enabled {
            return variant(entry, &config.off_variant, Reason::Disabled, "", "");
        }
        for p in &config.prerequisites {
            if !self.prerequisite_met(&p.flag_key, &p.variant, ctx, depth + 1) {
                return variant(
                    entry,
                    &config.off_variant,
                    Reason::PrerequisiteFailed,
                    "",
                    "",
                );
            }
        }
        if !ctx.targeting_key.is_empty()
            && let Some(t) = config
                .targets
                .iter()
                .find(|t| t.values.contains(&ctx.targeting_key))
        {
            return variant(entry, &t.variant, Reason::TargetingMatch, "", "");
        }
        for rule in &config.rules {
            if rule.clauses.iter().all(|c| self.clause_matches(c, ctx)) {
                return serve(entry, rule.serve.as_ref(), ctx, Reason::TargetingMatch);
            }
        }
        serve(entry, config.default_rule.as_ref(), ctx, Reason::Static)
    }

    fn prerequisite_met(
        &self,
        key: &str,
        want: &str,
        ctx: &EvaluationContext,
        depth: usize,
    ) -> bool {
        if depth > MAX_PREREQUISITE_DEPTH {
            return false;
        }
        let Some(entry) = self.flags.get(key).filter(|e| !e.flag.archived) else {
            return false;
        };
        let result = self.resolve(entry, ctx, depth);
        !matches!(result.reason, Reason::Disabled | Reason::Error) && result.variant == want
    }

    fn clause_matches(&self, clause: &Clause, ctx: &EvaluationContext) -> bool {
        let op = Operator::try_from(clause.operator).unwrap_or(Operator::Unspecified);
        let result = match op {
            Operator::InSegment | Operator::NotInSegment => {
                let any = clause.values.iter().any(|v| match &v.kind {
                    Some(prost_types::value::Kind::StringValue(s)) => self.in_segment(s, ctx),
                    _ => false,
                });
                any == (op == Operator::InSegment)
            }
            _ => match context::attribute(ctx, &clause.attribute) {
                None => return false,
                Some(attr) => operators::holds(op, attr, &clause.values),
            },
        };
        result != clause.negate
    }

    fn in_segment(&self, key: &str, ctx: &EvaluationContext) -> bool {
        let Some(segment) = self.segments.get(key) else {
            return false;
        };
        let unit = ctx.targeting_key.as_str();
        if !unit.is_empty() {
            if segment.excluded.iter().any(|k| k == unit) {
                return false;
            }
            if segment.included.iter().any(|k| k == unit) {
                return true;
            }
        }
        segment.rules.iter().any(|r| {
            r.clauses.iter().all(|c| {
                // Segment rules cannot nest segments (rejected on write; false if present).
                let op = Operator::try_from(c.operator).unwrap_or(Operator::Unspecified);
                !matches!(op, Operator::InSegment | Operator::NotInSegment)
                    && self.clause_matches(c, ctx)
            })
        })
    }
}

fn variant<'a>(
    entry: &'a Entry,
    key: &str,
    reason: Reason,
    cohort: &'a str,
    rollout_id: &'a str,
) -> Evaluation<'a> {
    match entry.flag.variants.iter().find(|v| v.key == key) {
        Some(v) => Evaluation {
            value: v.value.as_ref(),
            variant: &v.key,
            reason,
            error_code: ErrorCode::Unspecified,
            error_message: "",
            flag_version: entry.flag.version,
            cohort,
            rollout_id,
        },
        None => Evaluation::error(
            ErrorCode::General,
            "serves an unknown variant",
            entry.flag.version,
        ),
    }
}

/// Serves a rule's (`matched` = TARGETING_MATCH) or the default rule's (`matched` = STATIC)
/// `serve`; a split serves with reason SPLIT either way.
fn serve<'a>(
    entry: &'a Entry,
    serve: Option<&'a Serve>,
    ctx: &EvaluationContext,
    matched: Reason,
) -> Evaluation<'a> {
    let version = entry.flag.version;
    match serve.and_then(|s| s.kind.as_ref()) {
        None => Evaluation::error(ErrorCode::General, "nothing to serve", version),
        Some(serve::Kind::Variant(v)) => variant(entry, v, matched, "", ""),
        Some(serve::Kind::Split(split)) => {
            let unit = if split.bucket_by.is_empty() || split.bucket_by == TARGETING_KEY {
                Some(ctx.targeting_key.as_str()).filter(|k| !k.is_empty())
            } else {
                match context::attribute(ctx, &split.bucket_by) {
                    Some(Attr::Str(s)) if !s.is_empty() => Some(s),
                    _ => None,
                }
            };
            let Some(unit) = unit else {
                return Evaluation::error(
                    ErrorCode::TargetingKeyMissing,
                    "the split needs a bucketing key",
                    version,
                );
            };
            let salt = [split.salt.as_str(), entry.config.salt.as_str()]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or(&entry.flag.key);
            match bucket::choose(split, salt, unit) {
                Some(e) => variant(
                    entry,
                    &e.variant,
                    Reason::Split,
                    &e.label,
                    &split.rollout_id,
                ),
                None => {
                    Evaluation::error(ErrorCode::General, "split weights are all zero", version)
                }
            }
        }
    }
}
