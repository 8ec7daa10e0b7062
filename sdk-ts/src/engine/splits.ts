/**
 * What rules serve, compiled: a single variant's precomputed result, or a weighted split with the
 * running totals of its weights and its salt already hashed (`saltState`), so choosing an entry
 * hashes only the unit's bytes and scans a few numbers. The hash and bucket math is `murmur3.ts`'s,
 * pinned by tests/vectors/bucketing.json.
 */

import { ErrorCode, Reason } from "../gen/flagwire/v1/evaluation_pb.js";
import type { Serve } from "../gen/flagwire/v1/flag_pb.js";
import type { EvaluationContext } from "../types.js";
import { TARGETING_KEY } from "./clauses.js";
import { type CompiledVariant, type Evaluation, errorEvaluation, served } from "./evaluation.js";
import { type HashState, bucketOf, hashFrom, saltState } from "./murmur3.js";

interface CompiledEntry {
  readonly weight: number;
  /** What serving this entry returns (precomputed; an error for an unknown variant). */
  readonly result: Evaluation;
}

/** What a rule or the default rule serves: one precomputed result, or a weighted split. */
export type CompiledServe =
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

/**
 * Compiles `serve`; a split without a salt of its own hashes with `defaultSalt` (the flag's), and
 * `matched` is the reason a single variant is served with.
 */
export function compileServe(
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

/**
 * What `serve` serves to `ctx`: the fixed result, or the split entry its unit falls in; an error
 * when there is nothing to serve, no unit to bucket, or no weight.
 */
export function evaluateServe(version: number, serve: CompiledServe, ctx: EvaluationContext): Evaluation {
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
