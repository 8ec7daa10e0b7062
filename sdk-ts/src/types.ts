/**
 * Public value types shared by every entry point.
 */

/** An attribute value: string, number, boolean or list of strings (`null`/`undefined` = absent). */
export type AttributeValue = string | number | boolean | readonly string[] | null | undefined;

/**
 * Who a flag is evaluated for: the wire's `flagwire.v1.EvaluationContext` as a plain object,
 * e.g. `{ targetingKey: "user-42", attributes: { country: "NL", plan: "pro", age: 31 } }`.
 * An empty or missing targeting key means *absent*.
 */
export interface EvaluationContext {
  readonly targetingKey?: string;
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

/** JSON values, as object flags hold them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Why a value was served (OpenFeature names). `UNKNOWN` only for a remote result without one. */
export type Reason =
  | "STATIC"
  | "TARGETING_MATCH"
  | "SPLIT"
  | "DISABLED"
  | "PREREQUISITE_FAILED"
  | "ERROR"
  | "UNKNOWN";

/** Why evaluation failed (OpenFeature names). */
export type ErrorCode =
  | "FLAG_NOT_FOUND"
  | "TYPE_MISMATCH"
  | "TARGETING_KEY_MISSING"
  | "INVALID_CONTEXT"
  | "GENERAL"
  | "PROVIDER_NOT_READY"
  | "PARSE_ERROR";

/** The types a flag can hold, as the getters name them. */
export type FlagType = "boolean" | "string" | "integer" | "float" | "object";

/** A value with the facts behind it, as the `*Details` getters return it. */
export interface EvaluationDetails<T> {
  /** The flag evaluated. */
  readonly flagKey: string;
  /** The value served, or the caller's default on error. */
  readonly value: T;
  /** The variant served; `undefined` on error. */
  readonly variant: string | undefined;
  /** Why the value was served. */
  readonly reason: Reason;
  /** Set when `reason` is `ERROR`. */
  readonly errorCode: ErrorCode | undefined;
  /** Detail of an error. */
  readonly errorMessage: string | undefined;
  /** The version of the flag evaluated (0 when not found). */
  readonly flagVersion: number;
  /** The split entry's label (canary cohorts), if a labelled entry was served. */
  readonly cohort: string | undefined;
  /**
   * The rollout owning the split served, if any: set on every entry of a rollout's canary split
   * (the unlabelled rest too), never on a fixed variant or an error.
   */
  readonly rolloutId: string | undefined;
}

/** Where a client's copy of the flags stands. */
export type ClientState = "CONNECTING" | "READY" | "STALE" | "ERROR";

/** Flags that changed with one applied revision. */
export interface FlagChange {
  /** The revision now applied. */
  readonly revision: number;
  /** Keys of the flags added, changed or removed (sorted). */
  readonly flags: readonly string[];
}
