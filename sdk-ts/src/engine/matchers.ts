/**
 * A flag rule's clauses compiled into closures specialised for their operator and values
 * (issue 18): the everyday clauses (IN / NOT_IN, STARTS_WITH, ENDS_WITH, CONTAINS, LT / LTE /
 * GT / GTE on an attribute) read their attribute and test it without the operator `switch`,
 * the per-type value arrays or the generic attribute accessor; every other clause (the
 * targeting key, SemVer, dates, segments) calls the snapshot's general `clauseMatches`, so
 * the semantics stay in one place. No `new Function`: Convex and edge runtimes forbid it.
 *
 * Same semantics as `holds` in `clauses.ts`: a missing attribute never matches, negated or
 * not; a present attribute of a type the operator does not take does not hold (so a negated
 * clause matches it).
 */

import { Operator } from "../gen/flagwire/v1/flag_pb.js";
import type { EvaluationContext } from "../types.js";

/** What the matchers need from a clause (`CompiledClause` in `clauses.ts`). */
export interface ClauseParts {
  readonly op: Operator;
  readonly attribute: string;
  /** The attribute is the targeting key. */
  readonly tk: boolean;
  readonly negate: boolean;
  readonly strings: readonly string[];
  readonly numbers: readonly number[];
  readonly bools: readonly boolean[];
}

/** Whether the context matches; `general` evaluates a clause the usual way. */
export type Matcher<C extends ClauseParts = ClauseParts> = (ctx: EvaluationContext, general: General<C>) => boolean;

/** The snapshot's general clause evaluation (segments need the snapshot). */
export interface General<C extends ClauseParts> {
  clauseMatches(c: C, ctx: EvaluationContext, inSegment: boolean): boolean;
}

/** A present attribute (validated: a string, number, boolean or list of strings). */
function present(v: unknown): boolean {
  const t = typeof v;
  return t === "string" || t === "number" || t === "boolean" || Array.isArray(v);
}

function includesAny(items: readonly string[], values: readonly string[]): boolean {
  for (const item of items) if (values.includes(item)) return true;
  return false;
}

function inMatcher(c: ClauseParts): Matcher {
  const { attribute, negate, strings, numbers, bools } = c;
  const set = new Set(strings);
  const isIn = c.op === Operator.IN;
  return (ctx) => {
    const v: unknown = ctx.attributes?.[attribute];
    let found: boolean;
    if (typeof v === "string") found = set.has(v);
    else if (typeof v === "number") found = numbers.includes(v);
    else if (typeof v === "boolean") found = bools.includes(v);
    else if (Array.isArray(v)) found = includesAny(v as readonly string[], strings);
    else return false;
    return (isIn ? found : !found) !== negate;
  };
}

function stringMatcher(c: ClauseParts, test: (a: string) => boolean): Matcher {
  const { attribute, negate } = c;
  return (ctx) => {
    const v: unknown = ctx.attributes?.[attribute];
    if (typeof v === "string") return test(v) !== negate;
    return present(v) && negate;
  };
}

function containsMatcher(c: ClauseParts): Matcher {
  const { attribute, negate, strings } = c;
  return (ctx) => {
    const v: unknown = ctx.attributes?.[attribute];
    if (typeof v === "string") {
      let found = false;
      for (const s of strings) {
        if (v.includes(s)) {
          found = true;
          break;
        }
      }
      return found !== negate;
    }
    if (Array.isArray(v)) return includesAny(v as readonly string[], strings) !== negate;
    return present(v) && negate;
  };
}

function compareMatcher(c: ClauseParts): Matcher {
  const { attribute, negate } = c;
  // "Compares so with at least one value" = with the largest (LT/LTE) or the smallest (GT/GTE);
  // NaN values compare with nothing.
  const values = c.numbers.filter((n) => !Number.isNaN(n));
  if (values.length === 0) return (ctx) => present(ctx.attributes?.[attribute]) && negate;
  const op = c.op;
  const bound = op === Operator.LT || op === Operator.LTE ? Math.max(...values) : Math.min(...values);
  const test =
    op === Operator.LT
      ? (a: number) => a < bound
      : op === Operator.LTE
        ? (a: number) => a <= bound
        : op === Operator.GT
          ? (a: number) => a > bound
          : (a: number) => a >= bound;
  return (ctx) => {
    const v: unknown = ctx.attributes?.[attribute];
    if (typeof v === "number") return test(v) !== negate;
    return present(v) && negate;
  };
}

function endsWith(strings: readonly string[]): (a: string) => boolean {
  if (strings.length === 1) {
    const s = strings[0]!;
    return (a) => a.endsWith(s);
  }
  return (a) => strings.some((s) => a.endsWith(s));
}

function startsWith(strings: readonly string[]): (a: string) => boolean {
  if (strings.length === 1) {
    const s = strings[0]!;
    return (a) => a.startsWith(s);
  }
  return (a) => strings.some((s) => a.startsWith(s));
}

/** One clause as a matcher. */
export function clauseMatcher<C extends ClauseParts>(c: C): Matcher<C> {
  if (!c.tk) {
    switch (c.op) {
      case Operator.IN:
      case Operator.NOT_IN:
        return inMatcher(c);
      case Operator.STARTS_WITH:
        return stringMatcher(c, startsWith(c.strings));
      case Operator.ENDS_WITH:
        return stringMatcher(c, endsWith(c.strings));
      case Operator.CONTAINS:
        return containsMatcher(c);
      case Operator.LT:
      case Operator.LTE:
      case Operator.GT:
      case Operator.GTE:
        return compareMatcher(c);
      default:
        break;
    }
  }
  return (ctx, general) => general.clauseMatches(c, ctx, false);
}

const always = (): boolean => true;

/** A rule's clauses as one matcher: all of them match (an empty rule matches every context). */
export function ruleMatcher<C extends ClauseParts>(clauses: readonly C[]): Matcher<C> {
  if (clauses.length === 0) return always;
  const matchers = clauses.map((c) => clauseMatcher(c));
  if (matchers.length === 1) return matchers[0]!;
  return (ctx, general) => {
    for (const m of matchers) if (!m(ctx, general)) return false;
    return true;
  };
}
