//! The evaluation algorithm of `docs/evaluation.md`, run over a snapshot's compiled flags and
//! segments: disabled, prerequisites, individual targets, rules in order, then the default.

use crate::bucket;
use crate::compile::{Clause, CompiledFlag, Serve, VariantIndex};
use crate::context::Attr;
use crate::evaluation::Evaluation;
use crate::operators::Test;
use crate::prepared::{Attributes, PreparedContext};
use crate::snapshot::{MAX_PREREQUISITE_DEPTH, Snapshot};
use flagwire_proto::v1::{ErrorCode, EvaluationContext, Reason, ValueType};

impl Snapshot {
    /// Evaluates flag `key` for `ctx`; `expected` is the type the caller wants, if any.
    /// Never panics: every problem is an [`Evaluation::error`].
    pub fn evaluate(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        expected: Option<ValueType>,
    ) -> Evaluation<'_> {
        self.evaluate_in(key, ctx, expected)
    }

    /// [`Snapshot::evaluate`] with a context prepared once for many evaluations: the same
    /// results, without re-checking the context or searching it by attribute name.
    pub fn evaluate_prepared(
        &self,
        key: &str,
        ctx: &PreparedContext,
        expected: Option<ValueType>,
    ) -> Evaluation<'_> {
        self.evaluate_in(key, ctx, expected)
    }

    fn evaluate_in<C: Attributes>(
        &self,
        key: &str,
        ctx: &C,
        expected: Option<ValueType>,
    ) -> Evaluation<'_> {
        let Some(flag) = self.flags.get(key).filter(|e| !e.flag.archived) else {
            return Evaluation::error(ErrorCode::FlagNotFound, "flag not found", 0);
        };
        let version = flag.flag.version;
        if expected.is_some_and(|t| t as i32 != flag.flag.r#type) {
            return Evaluation::error(ErrorCode::TypeMismatch, "flag holds another type", version);
        }
        if let Some(message) = ctx.invalid() {
            return Evaluation::error(ErrorCode::InvalidContext, message, version);
        }
        self.resolve(flag, ctx, 0)
    }

    fn resolve<'a>(
        &'a self,
        flag: &'a CompiledFlag,
        ctx: &impl Attributes,
        depth: usize,
    ) -> Evaluation<'a> {
        let config = &flag.config;
        if !config.enabled {
            return variant(flag, flag.off, Reason::Disabled, "", "");
        }
        for p in &config.prerequisites {
            if !self.prerequisite_met(&p.flag_key, &p.variant, ctx, depth + 1) {
                return variant(flag, flag.off, Reason::PrerequisiteFailed, "", "");
            }
        }
        let unit = ctx.targeting_key();
        if !unit.is_empty()
            && let Some((_, v)) = flag.targets.iter().find(|(keys, _)| keys.contains(unit))
        {
            return variant(flag, *v, Reason::TargetingMatch, "", "");
        }
        for rule in &flag.rules {
            if rule.clauses.iter().all(|c| self.clause_matches(c, ctx)) {
                return serve(flag, &rule.serve, ctx, Reason::TargetingMatch);
            }
        }
        serve(flag, &flag.default, ctx, Reason::Static)
    }

    fn prerequisite_met(&self, key: &str, want: &str, ctx: &impl Attributes, depth: usize) -> bool {
        if depth > MAX_PREREQUISITE_DEPTH {
            return false;
        }
        let Some(flag) = self.flags.get(key).filter(|e| !e.flag.archived) else {
            return false;
        };
        let result = self.resolve(flag, ctx, depth);
        !matches!(result.reason, Reason::Disabled | Reason::Error) && result.variant == want
    }

    fn clause_matches(&self, clause: &Clause, ctx: &impl Attributes) -> bool {
        let result = match &clause.test {
            Test::Nested => return false,
            Test::Segments { keys, member } => {
                keys.iter().any(|k| self.in_segment(k, ctx)) == *member
            }
            test => match clause.source.read(ctx) {
                None => return false,
                Some(attr) => test.holds(attr),
            },
        };
        result != clause.negate
    }

    fn in_segment(&self, key: &str, ctx: &impl Attributes) -> bool {
        let Some(segment) = self.segments.get(key) else {
            return false;
        };
        let unit = ctx.targeting_key();
        if !unit.is_empty() {
            if segment.excluded.contains(unit) {
                return false;
            }
            if segment.included.contains(unit) {
                return true;
            }
        }
        segment
            .rules
            .iter()
            .any(|clauses| clauses.iter().all(|c| self.clause_matches(c, ctx)))
    }
}

fn variant<'a>(
    flag: &'a CompiledFlag,
    index: VariantIndex,
    reason: Reason,
    cohort: &'a str,
    rollout_id: &'a str,
) -> Evaluation<'a> {
    match index.and_then(|i| flag.flag.variants.get(i)) {
        Some(v) => Evaluation {
            value: v.value.as_ref(),
            variant: &v.key,
            reason,
            error_code: ErrorCode::Unspecified,
            error_message: "",
            flag_version: flag.flag.version,
            cohort,
            rollout_id,
        },
        None => Evaluation::error(
            ErrorCode::General,
            "serves an unknown variant",
            flag.flag.version,
        ),
    }
}

/// Serves a rule's (`matched` = TARGETING_MATCH) or the default rule's (`matched` = STATIC)
/// `serve`; a split serves with reason SPLIT either way.
fn serve<'a>(
    flag: &'a CompiledFlag,
    serve: &'a Serve,
    ctx: &impl Attributes,
    matched: Reason,
) -> Evaluation<'a> {
    let version = flag.flag.version;
    match serve {
        Serve::Nothing => Evaluation::error(ErrorCode::General, "nothing to serve", version),
        Serve::Variant(v) => variant(flag, *v, matched, "", ""),
        Serve::Split(split) => {
            let Some(unit) = (match split.unit.read(ctx) {
                Some(Attr::Str(s)) if !s.is_empty() => Some(s),
                _ => None,
            }) else {
                return Evaluation::error(
                    ErrorCode::TargetingKeyMissing,
                    "the split needs a bucketing key",
                    version,
                );
            };
            if split.total == 0 {
                return Evaluation::error(
                    ErrorCode::General,
                    "split weights are all zero",
                    version,
                );
            }
            let b = bucket::bucket(split.salt.hash(unit), split.total);
            // The first entry whose running total passes the bucket; the last one's is the
            // total, so one always does.
            let i = split.entries.partition_point(|e| e.cumulative <= b);
            match split.entries.get(i) {
                Some(e) => variant(flag, e.variant, Reason::Split, &e.label, &split.rollout_id),
                None => {
                    Evaluation::error(ErrorCode::General, "split weights are all zero", version)
                }
            }
        }
    }
}
