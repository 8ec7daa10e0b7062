/**
 * An environment's flags and segments, compiled for evaluation, and the evaluation algorithm of
 * `docs/evaluation.md` (the same order of steps as the Rust engine in `core/src/snapshot.rs`).
 *
 * Flags are compiled once when a snapshot or change arrives (variants resolved, clause values
 * sorted by type, SemVer and RFC 3339 values parsed, salts chosen), so evaluating is lookups and
 * comparisons. A `Snapshot` is never mutated once built: applying a change returns a new one.
 */

import { create } from "@bufbuild/protobuf";
import { ErrorCode, Reason } from "../gen/flagwire/v1/evaluation_pb.js";
import {
  type Clause,
  type Flag,
  type FlagConfig,
  FlagConfigSchema,
  type FlagValue,
  Operator,
  type Segment,
  type Serve,
  ValueType,
} from "../gen/flagwire/v1/flag_pb.js";
import { type Change, type Snapshot as SnapshotProto, SnapshotSchema } from "../gen/flagwire/v1/flag_service_pb.js";
import type { EvaluationContext } from "../types.js";
import { PreparedContext, validateContext } from "./context.js";

export { validateContext };
import { type Matcher, ruleMatcher } from "./matchers.js";
import { type HashState, bucketOf, hashFrom, saltState } from "./murmur3.js";
import { parseRfc3339Millis } from "./rfc3339.js";
import { compareSemver, parseSemver, type SemVer } from "./semver.js";

/** Prerequisite chains deeper than this fail (writes reject cycles; this guards damaged data). */
export const MAX_PREREQUISITE_DEPTH = 16;
const TARGETING_KEY = "targetingKey";

/** A variant with its value converted to a plain JS value once. */
export interface CompiledVariant {
  readonly key: string;
  readonly value: FlagValue | undefined;
  /** boolean | string | number (integers too) | frozen JSON object; `undefined` if unset. */
  readonly js: unknown;
  /** The value's kind (`boolValue`, `stringValue`, ...), `undefined` if unset. */
  readonly kind: FlagValue["kind"]["case"];
}

interface CompiledEntry {
  readonly weight: number;
  /** What serving this entry returns (precomputed; an error for an unknown variant). */
  readonly result: Evaluation;
}

type CompiledServe =
  | { readonly split: false; readonly result: Evaluation }
  | {
      readonly split: true;
      readonly entries: readonly CompiledEntry[];
      /** Each entry's running total of weights, and the result it serves, in entry order. */
      readonly thresholds: readonly number[];
      readonly results: readonly Evaluation[];
      readonly total: number;
      readonly bucketBy: string; // "" = targeting key
      readonly salt: string;
      /** The murmur3 state after the salt's bytes: an evaluation hashes only the unit's. */
      readonly state: HashState;
    }
  | undefined; // nothing to serve

/** @internal A clause with its values sorted by type. */
export interface CompiledClause {
  readonly op: Operator;
  readonly attribute: string;
  /** The attribute is the targeting key. */
  readonly tk: boolean;
  readonly negate: boolean;
  readonly strings: readonly string[];
  readonly numbers: readonly number[];
  readonly bools: readonly boolean[];
  readonly semvers: readonly SemVer[];
  readonly instants: readonly number[];
}

interface CompiledRule {
  readonly clauses: readonly CompiledClause[];
  /** The clauses compiled into one closure (see `matchers.ts`). */
  readonly match: Matcher<CompiledClause>;
  readonly serve: CompiledServe;
}

interface CompiledFlag {
  readonly key: string;
  readonly type: ValueType;
  readonly version: number;
  readonly archived: boolean;
  readonly enabled: boolean;
  /** The off variant served as DISABLED and as PREREQUISITE_FAILED (precomputed). */
  readonly disabled: Evaluation;
  readonly prerequisiteFailed: Evaluation;
  readonly targets: readonly { readonly result: Evaluation; readonly keys: ReadonlySet<string> }[];
  readonly rules: readonly CompiledRule[];
  readonly prerequisites: readonly { readonly flag: string; readonly variant: string }[];
  readonly fallback: CompiledServe;
  /** The flag as received, carrying only this environment's config (if it had one). */
  readonly proto: Flag;
}

interface CompiledSegment {
  readonly included: ReadonlySet<string>;
  readonly excluded: ReadonlySet<string>;
  readonly rules: readonly (readonly CompiledClause[])[];
  readonly proto: Segment;
}

/** The result of evaluating one flag. */
export interface Evaluation {
  /** The variant served; `undefined` on error. */
  readonly variant: CompiledVariant | undefined;
  readonly reason: Reason;
  readonly errorCode: ErrorCode;
  readonly errorMessage: string;
  readonly flagVersion: number;
  readonly cohort: string;
  /**
   * The rollout owning the split served ("" otherwise): every entry of a rollout's canary split
   * carries it, so metrics can tell the rollout's evaluations from the flag's other ones.
   */
  readonly rolloutId: string;
}

export function errorEvaluation(code: ErrorCode, message: string, flagVersion: number): Evaluation {
  return { variant: undefined, reason: Reason.ERROR, errorCode: code, errorMessage: message, flagVersion, cohort: "", rolloutId: "" };
}

const NOT_FOUND = Object.freeze(errorEvaluation(ErrorCode.FLAG_NOT_FOUND, "flag not found", 0));

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

export function compileVariantValue(key: string, value: FlagValue | undefined): CompiledVariant {
  const kind = value?.kind;
  let js: unknown;
  switch (kind?.case) {
    case "intValue":
      js = Number(kind.value);
      break;
    case "objectValue":
      js = deepFreeze(kind.value);
      break;
    case "boolValue":
    case "stringValue":
    case "floatValue":
      js = kind.value;
      break;
    default:
      js = undefined;
  }
  return { key, value, js, kind: kind?.case };
}

/** @internal A clause with its values sorted by type (exported for the matcher tests). */
export function compileClause(c: Clause): CompiledClause {
  const strings: string[] = [];
  const numbers: number[] = [];
  const bools: boolean[] = [];
  const semvers: SemVer[] = [];
  const instants: number[] = [];
  for (const v of c.values) {
    switch (v.kind.case) {
      case "stringValue": {
        strings.push(v.kind.value);
        const sv = parseSemver(v.kind.value);
        if (sv !== undefined) semvers.push(sv);
        const t = parseRfc3339Millis(v.kind.value);
        if (t !== undefined) instants.push(t);
        break;
      }
      case "numberValue":
        numbers.push(v.kind.value);
        break;
      case "boolValue":
        bools.push(v.kind.value);
        break;
      default:
        break;
    }
  }
  return {
    op: c.operator,
    attribute: c.attribute,
    tk: c.attribute === TARGETING_KEY,
    negate: c.negate,
    strings,
    numbers,
    bools,
    semvers,
    instants,
  };
}

function compileServe(
  serve: Serve | undefined,
  variants: ReadonlyMap<string, CompiledVariant>,
  defaultSalt: string,
  matched: Reason,
  version: number,
): CompiledServe {
  const kind = serve?.kind;
  if (kind === undefined || kind.case === undefined) return undefined;
  if (kind.case === "variant") return { split: false, result: served(variants.get(kind.value), matched, version, "", "") };
  const split = kind.value;
  let total = 0;
  const entries = split.entries.map((e) => {
    total += e.weight;
    return { weight: e.weight, result: served(variants.get(e.variant), Reason.SPLIT, version, e.label, split.rolloutId) };
  });
  let running = 0;
  const thresholds = entries.map((e) => (running += e.weight));
  const salt = split.salt !== "" ? split.salt : defaultSalt;
  return {
    split: true,
    entries,
    thresholds,
    results: entries.map((e) => e.result),
    total,
    bucketBy: split.bucketBy === TARGETING_KEY ? "" : split.bucketBy,
    salt,
    state: saltState(salt),
  };
}

/** The config of a flag with no entry for the environment: disabled, serving the first variant. */
function defaultConfig(flag: Flag): FlagConfig {
  const first = flag.variants[0]?.key ?? "";
  return create(FlagConfigSchema, {
    enabled: false,
    offVariant: first,
    defaultRule: { kind: { case: "variant", value: first } },
  });
}

function compileFlag(flag: Flag, environment: string): CompiledFlag {
  const own = flag.environments[environment];
  const config = own ?? defaultConfig(flag);
  const proto: Flag = { ...flag, environments: own === undefined ? {} : { [environment]: own } };
  const variants = new Map<string, CompiledVariant>();
  for (const v of flag.variants) if (!variants.has(v.key)) variants.set(v.key, compileVariantValue(v.key, v.value));
  const salt = config.salt !== "" ? config.salt : flag.key;
  const version = Number(flag.version);
  const off = variants.get(config.offVariant);
  return {
    key: flag.key,
    type: flag.type,
    version,
    archived: flag.archived,
    enabled: config.enabled,
    disabled: served(off, Reason.DISABLED, version, "", ""),
    prerequisiteFailed: served(off, Reason.PREREQUISITE_FAILED, version, "", ""),
    targets: config.targets.map((t) => ({
      result: served(variants.get(t.variant), Reason.TARGETING_MATCH, version, "", ""),
      keys: new Set(t.values),
    })),
    rules: config.rules.map((r) => {
      const clauses = r.clauses.map(compileClause);
      return {
        clauses,
        match: ruleMatcher(clauses),
        serve: compileServe(r.serve, variants, salt, Reason.TARGETING_MATCH, version),
      };
    }),
    prerequisites: config.prerequisites.map((p) => ({ flag: p.flagKey, variant: p.variant })),
    fallback: compileServe(config.defaultRule, variants, salt, Reason.STATIC, version),
    proto,
  };
}

function compileSegment(s: Segment): CompiledSegment {
  return {
    included: new Set(s.included),
    excluded: new Set(s.excluded),
    rules: s.rules.map((r) => r.clauses.map(compileClause)),
    proto: s,
  };
}

/** The attribute `name` (or the targeting key) of a valid context; `undefined` when absent. */
function attribute(ctx: EvaluationContext, name: string): string | number | boolean | readonly string[] | undefined {
  if (name === TARGETING_KEY) {
    const k = ctx.targetingKey;
    return k === undefined || k === "" ? undefined : k;
  }
  const attrs = ctx.attributes;
  if (attrs === undefined || attrs === null) return undefined;
  const v: unknown = attrs[name];
  switch (typeof v) {
    case "string":
    case "number":
    case "boolean":
      return v;
    case "object":
      // Own values were validated; anything else reached here is inherited (`__proto__`).
      return Array.isArray(v) ? (v as readonly string[]) : undefined;
    default:
      return undefined; // absent, null, or inherited (e.g. `toString`)
  }
}

function instantOf(a: string | number | boolean | readonly string[]): number | undefined {
  if (typeof a === "string") return parseRfc3339Millis(a);
  if (typeof a === "number") return Math.floor(a * 1000);
  return undefined;
}

function includesAny(items: readonly string[], values: readonly string[]): boolean {
  for (const item of items) if (values.includes(item)) return true;
  return false;
}

function startsWithAny(a: string, values: readonly string[]): boolean {
  for (const v of values) if (a.startsWith(v)) return true;
  return false;
}

function endsWithAny(a: string, values: readonly string[]): boolean {
  for (const v of values) if (a.endsWith(v)) return true;
  return false;
}

function containsAny(a: string, values: readonly string[]): boolean {
  for (const v of values) if (a.includes(v)) return true;
  return false;
}

function compareAny(a: number, values: readonly number[], op: Operator): boolean {
  for (const b of values) {
    if (op === Operator.LT ? a < b : op === Operator.LTE ? a <= b : op === Operator.GT ? a > b : a >= b) return true;
  }
  return false;
}

/**
 * Whether `op` holds for the present attribute and at least one value (before negation).
 * Plain loops, no closures: this is the hot path.
 */
function holds(c: CompiledClause, a: string | number | boolean | readonly string[]): boolean {
  switch (c.op) {
    case Operator.IN:
    case Operator.NOT_IN: {
      let found: boolean;
      if (typeof a === "string") found = c.strings.includes(a);
      else if (typeof a === "number") found = c.numbers.includes(a);
      else if (typeof a === "boolean") found = c.bools.includes(a);
      else found = includesAny(a, c.strings);
      return c.op === Operator.IN ? found : !found;
    }
    case Operator.STARTS_WITH:
      return typeof a === "string" && startsWithAny(a, c.strings);
    case Operator.ENDS_WITH:
      return typeof a === "string" && endsWithAny(a, c.strings);
    case Operator.CONTAINS:
      if (typeof a === "string") return containsAny(a, c.strings);
      if (Array.isArray(a)) return includesAny(a as readonly string[], c.strings);
      return false;
    case Operator.LT:
    case Operator.LTE:
    case Operator.GT:
    case Operator.GTE:
      return typeof a === "number" && compareAny(a, c.numbers, c.op);
    case Operator.SEMVER_EQ:
    case Operator.SEMVER_LT:
    case Operator.SEMVER_GT: {
      if (typeof a !== "string" || c.semvers.length === 0) return false;
      const v = parseSemver(a);
      if (v === undefined) return false;
      const want = c.op === Operator.SEMVER_EQ ? 0 : c.op === Operator.SEMVER_LT ? -1 : 1;
      for (const b of c.semvers) if (compareSemver(v, b) === want) return true;
      return false;
    }
    case Operator.BEFORE:
    case Operator.AFTER: {
      const t = instantOf(a);
      if (t === undefined) return false;
      for (const b of c.instants) if (c.op === Operator.BEFORE ? t < b : t > b) return true;
      return false;
    }
    default:
      return false;
  }
}

/** A served result, built once per flag when it is compiled and shared by every evaluation. */
function served(
  variant: CompiledVariant | undefined,
  reason: Reason,
  flagVersion: number,
  cohort: string,
  rolloutId: string,
): Evaluation {
  if (variant === undefined) return Object.freeze(errorEvaluation(ErrorCode.GENERAL, "serves an unknown variant", flagVersion));
  return Object.freeze({ variant, reason, errorCode: ErrorCode.UNSPECIFIED, errorMessage: "", flagVersion, cohort, rolloutId });
}

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
      if (rule.match(ctx, this)) return this.serve(version, rule.serve, ctx);
    }
    return this.serve(version, flag.fallback, ctx);
  }

  private prerequisiteMet(key: string, want: string, ctx: EvaluationContext, depth: number): boolean {
    if (depth > MAX_PREREQUISITE_DEPTH) return false;
    const flag = this.flags.get(key);
    if (flag === undefined || flag.archived) return false;
    const r = this.resolve(flag, ctx, depth);
    return r.reason !== Reason.DISABLED && r.reason !== Reason.ERROR && r.variant?.key === want;
  }

  private serve(version: number, serve: CompiledServe, ctx: EvaluationContext): Evaluation {
    if (serve === undefined) return errorEvaluation(ErrorCode.GENERAL, "nothing to serve", version);
    if (!serve.split) return serve.result;
    let unit: string | undefined;
    if (serve.bucketBy === "") {
      unit = ctx.targetingKey;
    } else {
      const a = attribute(ctx, serve.bucketBy);
      unit = typeof a === "string" ? a : undefined;
    }
    if (unit === undefined || unit === "") {
      return errorEvaluation(ErrorCode.TARGETING_KEY_MISSING, "the split needs a bucketing key", version);
    }
    if (serve.total === 0) return errorEvaluation(ErrorCode.GENERAL, "split weights are all zero", version);
    const bucket = bucketOf(hashFrom(serve.state, unit), serve.total);
    const thresholds = serve.thresholds;
    for (let i = 0; i < thresholds.length; i++) if (thresholds[i]! > bucket) return serve.results[i]!;
    return errorEvaluation(ErrorCode.GENERAL, "split weights are all zero", version);
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
