/**
 * Flags and segments compiled for one environment (the Python SDK's `_flags.py`): variants
 * resolved, every fixed outcome (off, prerequisite failed, each target, each single-variant
 * serve) built once as a shared `Evaluation`, each rule's clauses compiled and joined into one
 * matcher, and the split salt chosen, so that evaluating a flag is lookups and comparisons.
 */

import { create } from "@bufbuild/protobuf";
import { Reason } from "../gen/flagwire/v1/evaluation_pb.js";
import { type Flag, type FlagConfig, FlagConfigSchema, type Segment, type ValueType } from "../gen/flagwire/v1/flag_pb.js";
import { type CompiledClause, compileClause } from "./clauses.js";
import { type CompiledVariant, type Evaluation, compileVariantValue, served } from "./evaluation.js";
import { type Matcher, ruleMatcher } from "./matchers.js";
import { type CompiledServe, compileServe } from "./splits.js";

interface CompiledRule {
  readonly clauses: readonly CompiledClause[];
  /** The clauses compiled into one closure (see `matchers.ts`). */
  readonly match: Matcher<CompiledClause>;
  readonly serve: CompiledServe;
}

/** @internal A flag compiled for one environment: every fixed outcome precomputed. */
export interface CompiledFlag {
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

/** @internal A segment compiled for one environment: its keys as sets, its rules' clauses compiled. */
export interface CompiledSegment {
  readonly included: ReadonlySet<string>;
  readonly excluded: ReadonlySet<string>;
  readonly rules: readonly (readonly CompiledClause[])[];
  readonly proto: Segment;
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

/** @internal `flag` as `environment` sees it (the default config when it has none of its own). */
export function compileFlag(flag: Flag, environment: string): CompiledFlag {
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

/** @internal Compiles segment `s` (the caller keeps only the environment's own and shared ones). */
export function compileSegment(s: Segment): CompiledSegment {
  return {
    included: new Set(s.included),
    excluded: new Set(s.excluded),
    rules: s.rules.map((r) => r.clauses.map(compileClause)),
    proto: s,
  };
}
