/**
 * Clauses compiled for evaluation: each `flagwire.v1.Clause` with its values sorted by type
 * (SemVer and RFC 3339 values parsed once, when the flag arrives), and `holds`, the general test
 * of an operator against a present attribute. `matchers.ts` turns the everyday clauses into
 * closures; the rest go through the snapshot's `clauseMatches`, which reads the attribute, looks
 * up segments, applies negation and calls `holds`. The operators' semantics are
 * docs/evaluation.md's.
 */

import { type Clause, Operator } from "../gen/flagwire/v1/flag_pb.js";
import type { ClauseParts } from "./matchers.js";
import { parseRfc3339Millis } from "./rfc3339.js";
import { compareSemver, parseSemver, type SemVer } from "./semver.js";

/** The attribute name that stands for the context's targeting key (in clauses and `bucketBy`). */
export const TARGETING_KEY = "targetingKey";

/** @internal A clause with its values sorted by type: what the matchers read, and more. */
export interface CompiledClause extends ClauseParts {
  readonly semvers: readonly SemVer[];
  readonly instants: readonly number[];
}

/** @internal A clause with its values sorted by type (exported for `flags.ts` and the matcher tests). */
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
 * @internal Whether `op` holds for the present attribute and at least one value (before negation).
 * Plain loops, no closures: this is the hot path.
 */
export function holds(c: CompiledClause, a: string | number | boolean | readonly string[]): boolean {
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
