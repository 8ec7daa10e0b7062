/**
 * An environment's flags and segments at one revision, and the evaluation algorithm of
 * `docs/evaluation.md` (the same order of steps as the Rust engine in `core/src/snapshot.rs`).
 *
 * Flags are compiled once when a snapshot or change arrives (variants resolved, clause values
 * sorted by type, SemVer and RFC 3339 values parsed, salts chosen), so evaluating is lookups and
 * comparisons. A `Snapshot` is never mutated once built: applying a change returns a new one.
 *
 * The engine's modules, each importing only those before it: `evaluation.ts` (what an evaluation
 * returns, variant values as JS), `clauses.ts` (clauses compiled, operators tested),
 * `matchers.ts` (a rule's clauses as one closure), `splits.ts` (what a rule serves, and choosing a
 * split's entry), `flags.ts` (compiled flags and segments), and this one (`Snapshot`: building,
 * applying changes, evaluating). `context.ts`, `murmur3.ts`, `semver.ts` and `rfc3339.ts` are the
 * leaves they use. Where a lower module needs the snapshot (a segment clause), it asks through a
 * small interface (`General` in `matchers.ts`) that `Snapshot` implements.
 */

import { create } from "@bufbuild/protobuf";
import { ErrorCode, Reason } from "../gen/flagwire/v1/evaluation_pb.js";
import { type Flag, Operator, type Segment, type ValueType } from "../gen/flagwire/v1/flag_pb.js";
import { type Change, type Snapshot as SnapshotProto, SnapshotSchema } from "../gen/flagwire/v1/flag_service_pb.js";
import type { EvaluationContext } from "../types.js";
import { type CompiledClause, holds } from "./clauses.js";
import { PreparedContext, validateContext } from "./context.js";
import { type Evaluation, errorEvaluation } from "./evaluation.js";
import { type CompiledFlag, type CompiledSegment, compileFlag, compileSegment } from "./flags.js";
import { evaluateServe } from "./splits.js";

/** Prerequisite chains deeper than this fail (writes reject cycles; this guards damaged data). */
export const MAX_PREREQUISITE_DEPTH = 16;

const NOT_FOUND = Object.freeze(errorEvaluation(ErrorCode.FLAG_NOT_FOUND, "flag not found", 0));

/** One environment at one revision, ready to evaluate. Immutable. */
export class Snapshot {
  private constructor(
    readonly environment: string,
    readonly revision: number,
    private readonly flags: ReadonlyMap<string, CompiledFlag>,
    private readonly segments: ReadonlyMap<string, CompiledSegment>,
  ) {}

  /** Compiles `flags` and `segments` of `environment` at `revision`. */
  static of(environment: string, revision: number, flags: Iterable<Flag>, segments: Iterable<Segment>): Snapshot {
    const f = new Map<string, CompiledFlag>();
    for (const flag of flags) f.set(flag.key, compileFlag(flag, environment));
    const s = new Map<string, CompiledSegment>();
    for (const seg of segments) {
      if (seg.environment === "" || seg.environment === environment) s.set(seg.key, compileSegment(seg));
    }
    return new Snapshot(environment, revision, f, s);
  }

  /** From the wire form a Watch stream (or a bootstrap file) carries. */
  static fromProto(p: SnapshotProto): Snapshot {
    return Snapshot.of(p.environment, Number(p.revision), p.flags, p.segments);
  }

  /** The wire form (flags and segments sorted by key), e.g. to persist as a bootstrap file. */
  toProto(): SnapshotProto {
    const flags = [...this.flags.values()].map((f) => f.proto).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const segments = [...this.segments.values()]
      .map((s) => s.proto)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return create(SnapshotSchema, { environment: this.environment, revision: BigInt(this.revision), flags, segments });
  }

  /**
   * Applies the change that follows this revision, returning the new snapshot; throws a
   * `RangeError` for a change that does not follow (a gap or an old one): the caller resyncs.
   */
  apply(change: Change): Snapshot {
    const revision = Number(change.revision);
    if (revision !== this.revision + 1) {
      throw new RangeError(`change ${revision} does not follow revision ${this.revision}`);
    }
    let flags = this.flags;
    let segments = this.segments;
    const kind = change.kind;
    switch (kind.case) {
      case "flagUpserted": {
        const next = new Map(flags);
        next.set(kind.value.key, compileFlag(kind.value, this.environment));
        flags = next;
        break;
      }
      case "flagsUpserted": {
        // Several flags in one revision (the kill switch): all land in the one new snapshot,
        // which the client swaps in at once, so no evaluation sees half of the batch.
        const next = new Map(flags);
        for (const f of kind.value.flags) next.set(f.key, compileFlag(f, this.environment));
        flags = next;
        break;
      }
      case "flagDeleted": {
        const next = new Map(flags);
        next.delete(kind.value);
        flags = next;
        break;
      }
      case "segmentUpserted": {
        const seg = kind.value;
        if (seg.environment === "" || seg.environment === this.environment) {
          const next = new Map(segments);
          next.set(seg.key, compileSegment(seg));
          segments = next;
        }
        break;
      }
      case "segmentDeleted": {
        const next = new Map(segments);
        next.delete(kind.value);
        segments = next;
        break;
      }
      default:
        break;
    }
    return new Snapshot(this.environment, revision, flags, segments);
  }

  /** Keys of flags that differ between this and `newer` (added, removed, other version), sorted. */
  changedFlags(newer: Snapshot): string[] {
    const keys: string[] = [];
    for (const [k, f] of newer.flags) {
      const old = this.flags.get(k);
      if (old === undefined || old.version !== f.version) keys.push(k);
    }
    for (const k of this.flags.keys()) if (!newer.flags.has(k)) keys.push(k);
    return keys.sort();
  }

  /** Keys of every flag that is not archived, sorted. */
  flagKeys(): string[] {
    const keys: string[] = [];
    for (const f of this.flags.values()) if (!f.archived) keys.push(f.key);
    return keys.sort();
  }

  /** The type flag `key` holds, or `undefined` when it does not exist (or is archived). */
  flagType(key: string): ValueType | undefined {
    const f = this.flags.get(key);
    return f === undefined || f.archived ? undefined : f.type;
  }

  /** Evaluates flag `key` for `ctx`; `expected` is the type the caller wants, if any. Never throws. */
  evaluate(key: string, ctx: EvaluationContext, expected?: ValueType): Evaluation {
    const flag = this.flags.get(key);
    if (flag === undefined || flag.archived) return NOT_FOUND;
    if (expected !== undefined && expected !== flag.type) {
      return errorEvaluation(ErrorCode.TYPE_MISMATCH, "flag holds another type", flag.version);
    }
    // A prepared context was checked once, when it was made (and cannot change since).
    const invalid = ctx instanceof PreparedContext ? ctx.invalid : validateContext(ctx);
    if (invalid !== undefined) return errorEvaluation(ErrorCode.INVALID_CONTEXT, invalid, flag.version);
    try {
      return this.resolve(flag, ctx, 0);
    } catch {
      // Unreachable with a valid context; evaluation must never throw.
      return errorEvaluation(ErrorCode.GENERAL, "evaluation failed", flag.version);
    }
  }

  private resolve(flag: CompiledFlag, ctx: EvaluationContext, depth: number): Evaluation {
    const version = flag.version;
    if (!flag.enabled) return flag.disabled;
    for (const p of flag.prerequisites) {
      if (!this.prerequisiteMet(p.flag, p.variant, ctx, depth + 1)) return flag.prerequisiteFailed;
    }
    const unit = ctx.targetingKey;
    if (unit !== undefined && unit !== "") {
      for (const t of flag.targets) if (t.keys.has(unit)) return t.result;
    }
    for (const rule of flag.rules) {
      if (rule.match(ctx, this)) return evaluateServe(version, rule.serve, ctx);
    }
    return evaluateServe(version, flag.fallback, ctx);
  }

  private prerequisiteMet(key: string, want: string, ctx: EvaluationContext, depth: number): boolean {
    if (depth > MAX_PREREQUISITE_DEPTH) return false;
    const flag = this.flags.get(key);
    if (flag === undefined || flag.archived) return false;
    const r = this.resolve(flag, ctx, depth);
    return r.reason !== Reason.DISABLED && r.reason !== Reason.ERROR && r.variant?.key === want;
  }

  private allMatch(clauses: readonly CompiledClause[], ctx: EvaluationContext, inSegment: boolean): boolean {
    for (const c of clauses) if (!this.clauseMatches(c, ctx, inSegment)) return false;
    return true;
  }

  /** @internal One clause, the general way (the matchers of `matchers.ts` call it for the rare ones). */
  clauseMatches(c: CompiledClause, ctx: EvaluationContext, inSegment: boolean): boolean {
    let result: boolean;
    if (c.op === Operator.IN_SEGMENT || c.op === Operator.NOT_IN_SEGMENT) {
      // Segment rules cannot nest segments (rejected on write; never matches if present).
      if (inSegment) return false;
      let any = false;
      for (const key of c.strings) {
        if (this.inSegment(key, ctx)) {
          any = true;
          break;
        }
      }
      result = any === (c.op === Operator.IN_SEGMENT);
    } else {
      let a: string | number | boolean | readonly string[] | undefined;
      if (c.tk) {
        a = ctx.targetingKey === "" ? undefined : ctx.targetingKey;
      } else {
        const v: unknown = ctx.attributes?.[c.attribute];
        const t = typeof v;
        // Own values were validated; objects other than arrays, and functions, are inherited.
        a = t === "string" || t === "number" || t === "boolean" || Array.isArray(v) ? (v as string) : undefined;
      }
      if (a === undefined) return false; // a missing attribute never matches, negated or not
      result = holds(c, a);
    }
    return result !== c.negate;
  }

  private inSegment(key: string, ctx: EvaluationContext): boolean {
    const s = this.segments.get(key);
    if (s === undefined) return false;
    const unit = ctx.targetingKey;
    if (unit !== undefined && unit !== "") {
      if (s.excluded.has(unit)) return false;
      if (s.included.has(unit)) return true;
    }
    for (const clauses of s.rules) if (this.allMatch(clauses, ctx, true)) return true;
    return false;
  }
}
