/**
 * The typed getters every way of reading flags shares (the live client, a short-lived snapshot,
 * a scope that remembers what it read). They never throw: any problem returns the caller's
 * default with reason `ERROR` and an error code.
 */

import { ErrorCode as ErrorCodeEnum, type Reason as ReasonEnum } from "./gen/flagwire/v1/evaluation_pb.js";
import { ValueType } from "./gen/flagwire/v1/flag_pb.js";
import { type Evaluation, errorEvaluation } from "./engine/evaluation.js";
import type { Snapshot } from "./engine/snapshot.js";
import { REASON_NAMES } from "./metrics.js";
import type { ErrorCode, EvaluationContext, EvaluationDetails, FlagType, JsonObject, JsonValue, Reason } from "./types.js";

const ERROR_CODE_NAMES: readonly (ErrorCode | undefined)[] = [
  undefined,
  "FLAG_NOT_FOUND",
  "TYPE_MISMATCH",
  "TARGETING_KEY_MISSING",
  "INVALID_CONTEXT",
  "GENERAL",
  "PROVIDER_NOT_READY",
  "PARSE_ERROR",
];

/** The OpenFeature name of a `flagwire.v1.Reason` value. */
export function reasonName(reason: ReasonEnum): Reason {
  return REASON_NAMES[reason] ?? "UNKNOWN";
}

/** The OpenFeature name of a `flagwire.v1.ErrorCode` value (`undefined` for none). */
export function errorCodeName(code: ErrorCodeEnum): ErrorCode | undefined {
  return ERROR_CODE_NAMES[code] ?? (code === ErrorCodeEnum.UNSPECIFIED ? undefined : "GENERAL");
}

const TYPES: Record<FlagType, ValueType> = {
  boolean: ValueType.BOOLEAN,
  string: ValueType.STRING,
  integer: ValueType.INTEGER,
  float: ValueType.FLOAT,
  object: ValueType.OBJECT,
};

/** What a reader asks for: one type, either numeric type, or any type. */
export type Expect = ValueType | "number" | undefined;

/** Evaluates in `snapshot`, resolving `"number"` to the flag's own numeric type. */
export function evaluateIn(snapshot: Snapshot, key: string, ctx: EvaluationContext, expect: Expect): Evaluation {
  if (expect !== "number") return snapshot.evaluate(key, ctx, expect);
  const t = snapshot.flagType(key);
  const numeric = t === undefined || t === ValueType.INTEGER || t === ValueType.FLOAT;
  return snapshot.evaluate(key, ctx, numeric ? t : ValueType.FLOAT);
}

export const NOT_READY: Evaluation = Object.freeze(
  errorEvaluation(ErrorCodeEnum.PROVIDER_NOT_READY, "no flags received yet", 0),
);

export function details<T>(key: string, r: Evaluation, value: T): EvaluationDetails<T> {
  const variant = r.variant?.key;
  return {
    flagKey: key,
    value,
    variant,
    reason: reasonName(r.reason),
    errorCode: errorCodeName(r.errorCode),
    errorMessage: r.errorMessage === "" ? undefined : r.errorMessage,
    flagVersion: r.flagVersion,
    cohort: r.cohort === "" ? undefined : r.cohort,
    rolloutId: r.rolloutId === "" ? undefined : r.rolloutId,
  };
}

function kindMatches(r: Evaluation, want: "boolean" | "string" | "number" | "object"): boolean {
  const js = r.variant?.js;
  if (want === "object") return r.variant?.kind === "objectValue";
  return typeof js === want;
}

/** Typed getters over an `evaluate` that subclasses provide. */
export abstract class FlagReader {
  /**
   * Evaluates `key` for `ctx` (recording it where the reader records), or returns why not.
   * Implementations never throw.
   */
  protected abstract evaluateFlag(key: string, ctx: EvaluationContext, expect: Expect): Evaluation;

  private safely(key: string, ctx: EvaluationContext, expect: Expect): Evaluation {
    try {
      return this.evaluateFlag(key, ctx, expect);
    } catch (e) {
      return errorEvaluation(ErrorCodeEnum.GENERAL, e instanceof Error ? e.message : "evaluation failed", 0);
    }
  }

  private typed<T>(
    key: string,
    ctx: EvaluationContext,
    expect: Expect,
    want: "boolean" | "string" | "number" | "object",
    defaultValue: T,
  ): EvaluationDetails<T> {
    const r = this.safely(key, ctx, expect);
    if (r.variant === undefined) return details(key, r, defaultValue);
    if (!kindMatches(r, want)) {
      return details(key, errorEvaluation(ErrorCodeEnum.TYPE_MISMATCH, "value of another type", r.flagVersion), defaultValue);
    }
    return details(key, r, r.variant.js as T);
  }

  /** A boolean flag's value, or `defaultValue` on any problem. */
  getBoolean(key: string, ctx: EvaluationContext, defaultValue: boolean): boolean {
    const js = this.safely(key, ctx, ValueType.BOOLEAN).variant?.js;
    return typeof js === "boolean" ? js : defaultValue;
  }

  /** A string flag's value, or `defaultValue` on any problem. */
  getString(key: string, ctx: EvaluationContext, defaultValue: string): string {
    const js = this.safely(key, ctx, ValueType.STRING).variant?.js;
    return typeof js === "string" ? js : defaultValue;
  }

  /**
   * A number flag's value (integer or float flags; integers beyond 2^53 lose precision), or
   * `defaultValue` on any problem.
   */
  getNumber(key: string, ctx: EvaluationContext, defaultValue: number): number {
    const js = this.safely(key, ctx, "number").variant?.js;
    return typeof js === "number" ? js : defaultValue;
  }

  /** An object flag's value (frozen), or `defaultValue` on any problem. */
  getObject<T extends JsonValue = JsonObject>(key: string, ctx: EvaluationContext, defaultValue: T): T {
    return this.getObjectDetails(key, ctx, defaultValue).value;
  }

  /** `getBoolean` with the facts behind it. */
  getBooleanDetails(key: string, ctx: EvaluationContext, defaultValue: boolean): EvaluationDetails<boolean> {
    return this.typed(key, ctx, ValueType.BOOLEAN, "boolean", defaultValue);
  }

  /** `getString` with the facts behind it. */
  getStringDetails(key: string, ctx: EvaluationContext, defaultValue: string): EvaluationDetails<string> {
    return this.typed(key, ctx, ValueType.STRING, "string", defaultValue);
  }

  /** `getNumber` with the facts behind it. */
  getNumberDetails(key: string, ctx: EvaluationContext, defaultValue: number): EvaluationDetails<number> {
    return this.typed(key, ctx, "number", "number", defaultValue);
  }

  /** `getObject` with the facts behind it. */
  getObjectDetails<T extends JsonValue = JsonObject>(
    key: string,
    ctx: EvaluationContext,
    defaultValue: T,
  ): EvaluationDetails<T> {
    return this.typed(key, ctx, ValueType.OBJECT, "object", defaultValue);
  }

  /**
   * Any flag's value, checked against `type` when given (`"integer"` and `"float"` are distinct
   * types here), without a check otherwise: for generic tools. Integers come back as numbers.
   */
  getValueDetails(key: string, ctx: EvaluationContext, defaultValue: unknown, type?: FlagType): EvaluationDetails<unknown> {
    const expect = type === undefined ? undefined : TYPES[type];
    if (type !== undefined && expect === undefined) {
      return details(key, errorEvaluation(ErrorCodeEnum.TYPE_MISMATCH, "unknown type", 0), defaultValue);
    }
    const r = this.safely(key, ctx, expect);
    if (r.variant === undefined || r.variant.kind === undefined) {
      return details(
        key,
        r.variant === undefined ? r : errorEvaluation(ErrorCodeEnum.TYPE_MISMATCH, "variant holds no value", r.flagVersion),
        defaultValue,
      );
    }
    return details(key, r, r.variant.js);
  }
}

