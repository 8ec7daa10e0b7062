/**
 * Checking an evaluation context, and the prepared context that is checked once (issue 18).
 *
 * Every evaluation with a plain `EvaluationContext` checks its attributes again (a caller may
 * change the object between calls). `prepareContext` copies and checks one once and freezes the
 * copy, so evaluations with it skip the check: worth it when one context is read for many flags
 * (a request that reads ten flags), and exactly the same results, since the copy holds what the
 * check saw.
 */

import type { AttributeValue, EvaluationContext } from "../types.js";

/** Checks the context holds only strings, finite numbers, booleans, lists of strings and nulls. */
export function validateContext(ctx: EvaluationContext): string | undefined {
  if (ctx === null || typeof ctx !== "object") return "the context is not an object";
  if (ctx.targetingKey !== undefined && typeof ctx.targetingKey !== "string") return "the targeting key is not a string";
  const attrs = ctx.attributes;
  if (attrs === undefined || attrs === null) return undefined;
  if (typeof attrs !== "object") return "attributes is not an object";
  for (const name in attrs) {
    const v: unknown = attrs[name];
    switch (typeof v) {
      case "string":
      case "boolean":
      case "undefined":
        break;
      case "number":
        if (!Number.isFinite(v)) return "an attribute holds a non-finite number";
        break;
      case "object":
        if (v === null) break;
        if (Array.isArray(v)) {
          for (const item of v as unknown[]) {
            if (typeof item !== "string") return "a list attribute holds something other than strings";
          }
          break;
        }
        return "an attribute holds an object";
      default:
        return "an attribute holds an unsupported value";
    }
  }
  return undefined;
}

/**
 * An evaluation context checked once and frozen, accepted wherever an `EvaluationContext` is
 * (it is one). Make it with `prepareContext`.
 */
export class PreparedContext implements EvaluationContext {
  readonly targetingKey: string | undefined;
  readonly attributes: Readonly<Record<string, AttributeValue>> | undefined;
  /** @internal Why evaluations with it fail with `INVALID_CONTEXT`, or `undefined`. */
  readonly invalid: string | undefined;

  private constructor(ctx: EvaluationContext) {
    this.invalid = validateContext(ctx);
    let key: string | undefined;
    let copy: Record<string, AttributeValue> | undefined;
    if (ctx !== null && typeof ctx === "object") {
      key = typeof ctx.targetingKey === "string" ? ctx.targetingKey : undefined;
      const attrs = ctx.attributes;
      if (attrs !== undefined && attrs !== null && typeof attrs === "object") {
        copy = {};
        // The names evaluation can find: the ones `validateContext` walks (for...in, inherited
        // enumerable ones too); inherited non-enumerable ones (`toString`) never count as present.
        for (const name in attrs) {
          const v = attrs[name];
          const value = Array.isArray(v) ? Object.freeze([...(v as readonly string[])]) : v;
          // defineProperty: a `__proto__` attribute stays an attribute, not the copy's prototype.
          if (name === "__proto__") Object.defineProperty(copy, name, { value, enumerable: true });
          else copy[name] = value;
        }
        Object.freeze(copy);
      }
    }
    this.targetingKey = key;
    this.attributes = copy;
    Object.freeze(this);
  }

  /** @internal See `prepareContext`. */
  static of(ctx: EvaluationContext): PreparedContext {
    return ctx instanceof PreparedContext ? ctx : new PreparedContext(ctx);
  }
}

/**
 * `ctx` checked once, for many evaluations: a frozen copy (lists copied too) that the getters
 * evaluate without checking it again, with the same results as `ctx` itself. Changing `ctx`
 * afterwards does not change the prepared copy. A context the spec does not allow stays so:
 * every evaluation with it returns the default with `INVALID_CONTEXT`.
 *
 *     const user = prepareContext({ targetingKey: "user-42", attributes: { plan: "pro" } });
 *     client.getBoolean("new-checkout", user, false);
 */
export function prepareContext(ctx: EvaluationContext): PreparedContext {
  return PreparedContext.of(ctx);
}
