/**
 * What evaluating a flag returns: the `Evaluation` record, and the variant it serves with its
 * value converted to a plain JS value once, when the flag is compiled (the Python SDK keeps the
 * same two things in `_values.py` and `_result.py`). Successful results are built once per flag
 * and shared by every evaluation, which is why they are frozen and never copied.
 */

import { ErrorCode, Reason } from "../gen/flagwire/v1/evaluation_pb.js";
import type { FlagValue } from "../gen/flagwire/v1/flag_pb.js";

/** A variant with its value converted to a plain JS value once. */
export interface CompiledVariant {
  readonly key: string;
  readonly value: FlagValue | undefined;
  /** boolean | string | number (integers too) | frozen JSON object; `undefined` if unset. */
  readonly js: unknown;
  /** The value's kind (`boolValue`, `stringValue`, ...), `undefined` if unset. */
  readonly kind: FlagValue["kind"]["case"];
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

/** A failed evaluation: the caller gets its default, and `code` and `message` say why. */
export function errorEvaluation(code: ErrorCode, message: string, flagVersion: number): Evaluation {
  return { variant: undefined, reason: Reason.ERROR, errorCode: code, errorMessage: message, flagVersion, cohort: "", rolloutId: "" };
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

/** A variant's value as a plain JS value, converted once (remote evaluations use it too). */
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

/** A served result, built once per flag when it is compiled and shared by every evaluation. */
export function served(
  variant: CompiledVariant | undefined,
  reason: Reason,
  flagVersion: number,
  cohort: string,
  rolloutId: string,
): Evaluation {
  if (variant === undefined) return Object.freeze(errorEvaluation(ErrorCode.GENERAL, "serves an unknown variant", flagVersion));
  return Object.freeze({ variant, reason, errorCode: ErrorCode.UNSPECIFIED, errorMessage: "", flagVersion, cohort, rolloutId });
}
