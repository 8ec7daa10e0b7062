/**
 * Remote mode, for the thinnest clients: the server evaluates (`FlagService.Evaluate` /
 * `EvaluateAll`) and nothing is held locally. `evaluateAll(ctx)` asks once for every flag of
 * the environment and returns a `RemoteFlags` whose getters read the answers synchronously.
 * Never rejects: a transport error gives defaults with reason `ERROR` / `GENERAL`.
 */

import { create, fromJson, type JsonValue as PbJsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { compileVariantValue, type Evaluation, errorEvaluation } from "./engine/evaluation.js";
import {
  ErrorCode as ErrorCodeEnum,
  type EvaluationContext as EvaluationContextProto,
  EvaluationContextSchema,
  type EvaluationResult,
  Reason as ReasonEnum,
} from "./gen/flagwire/v1/evaluation_pb.js";
import { ValueType } from "./gen/flagwire/v1/flag_pb.js";
import { FlagService } from "./gen/flagwire/v1/flag_service_pb.js";
import { details, type Expect, FlagReader } from "./reader.js";
import type { EvaluationContext, EvaluationDetails, FlagType } from "./types.js";

/** Options of `RemoteEvaluator`. */
export interface RemoteOptions {
  readonly transport: Transport;
  readonly token: string;
  /** The environment, for tokens not bound to one. */
  readonly environment?: string;
  /** Deadline of each call (default 5,000 ms). */
  readonly timeoutMs?: number;
}

/** The wire form of a context; throws a `TypeError` for values JSON cannot hold. */
export function contextToProto(ctx: EvaluationContext): EvaluationContextProto {
  const attributes: EvaluationContextProto["attributes"] = {};
  for (const [name, value] of Object.entries(ctx.attributes ?? {})) {
    if (value === undefined) continue;
    attributes[name] = fromJson(ValueSchema, value as PbJsonValue);
  }
  return create(EvaluationContextSchema, { targetingKey: ctx.targetingKey ?? "", attributes });
}

const KIND_TYPES: Record<string, ValueType> = {
  boolValue: ValueType.BOOLEAN,
  stringValue: ValueType.STRING,
  intValue: ValueType.INTEGER,
  floatValue: ValueType.FLOAT,
  objectValue: ValueType.OBJECT,
};

function fromResult(r: EvaluationResult): Evaluation {
  const ok = r.reason !== ReasonEnum.ERROR && r.variant !== "";
  return {
    variant: ok ? compileVariantValue(r.variant, r.value) : undefined,
    reason: r.reason,
    errorCode: ok ? ErrorCodeEnum.UNSPECIFIED : r.errorCode === ErrorCodeEnum.UNSPECIFIED ? ErrorCodeEnum.GENERAL : r.errorCode,
    errorMessage: r.errorMessage,
    flagVersion: Number(r.flagVersion),
    cohort: r.cohort,
    rolloutId: r.rolloutId,
  };
}

/**
 * Every flag's result for one context, as `EvaluateAll` answered. The getters take a context
 * for symmetry with the other readers but answer for the context the results were computed for.
 */
export class RemoteFlags extends FlagReader {
  private readonly results: ReadonlyMap<string, Evaluation>;

  constructor(
    results: readonly EvaluationResult[],
    /** The environment revision the results reflect (0 after an error). */
    readonly revision: number,
    /** Why the call failed, if it did (every getter then returns its default). */
    readonly error?: string,
  ) {
    super();
    this.results = new Map(results.map((r) => [r.flagKey, fromResult(r)]));
  }

  /** Keys of the flags answered, sorted. */
  flagKeys(): string[] {
    return [...this.results.keys()].sort();
  }

  protected evaluateFlag(key: string, _ctx: EvaluationContext, expect: Expect): Evaluation {
    if (this.error !== undefined) return errorEvaluation(ErrorCodeEnum.GENERAL, this.error, 0);
    const r = this.results.get(key);
    if (r === undefined) return errorEvaluation(ErrorCodeEnum.FLAG_NOT_FOUND, "flag not found", 0);
    const kind = r.variant?.kind;
    if (kind !== undefined && expect !== undefined) {
      const t = KIND_TYPES[kind];
      const fits = expect === "number" ? t === ValueType.INTEGER || t === ValueType.FLOAT : t === expect;
      if (!fits) return errorEvaluation(ErrorCodeEnum.TYPE_MISMATCH, "flag holds another type", r.flagVersion);
    }
    return r;
  }
}

/** Asks the server to evaluate. */
export class RemoteEvaluator {
  private readonly client: Client<typeof FlagService>;
  private readonly headers: Record<string, string>;
  private readonly environment: string;
  private readonly timeoutMs: number;

  constructor(options: RemoteOptions) {
    this.client = createClient(FlagService, options.transport);
    this.headers = { authorization: `Bearer ${options.token}` };
    this.environment = options.environment ?? "";
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** One flag, checked against `type` when given, with the facts behind it. */
  async evaluate(key: string, ctx: EvaluationContext, defaultValue: unknown, type?: FlagType): Promise<EvaluationDetails<unknown>> {
    let context: EvaluationContextProto;
    try {
      context = contextToProto(ctx);
    } catch (e) {
      return details(key, errorEvaluation(ErrorCodeEnum.INVALID_CONTEXT, String(e), 0), defaultValue);
    }
    const expectedType = type === undefined ? ValueType.UNSPECIFIED : (TYPE_OF[type] ?? ValueType.UNSPECIFIED);
    try {
      const response = await this.client.evaluate(
        { environment: this.environment, flagKey: key, context, expectedType },
        { headers: this.headers, timeoutMs: this.timeoutMs },
      );
      const r = response.result === undefined ? errorEvaluation(ErrorCodeEnum.GENERAL, "no result", 0) : fromResult(response.result);
      return details(key, r, r.variant === undefined ? defaultValue : r.variant.js);
    } catch (e) {
      return details(key, errorEvaluation(ErrorCodeEnum.GENERAL, ConnectError.from(e).message, 0), defaultValue);
    }
  }

  /** Every flag for one context, in one call. Never rejects (see `RemoteFlags.error`). */
  async evaluateAll(ctx: EvaluationContext): Promise<RemoteFlags> {
    try {
      const response = await this.client.evaluateAll(
        { environment: this.environment, context: contextToProto(ctx) },
        { headers: this.headers, timeoutMs: this.timeoutMs },
      );
      return new RemoteFlags(response.results, Number(response.revision));
    } catch (e) {
      return new RemoteFlags([], 0, e instanceof ConnectError ? e.message : String(e));
    }
  }
}

const TYPE_OF: Record<FlagType, ValueType> = {
  boolean: ValueType.BOOLEAN,
  string: ValueType.STRING,
  integer: ValueType.INTEGER,
  float: ValueType.FLOAT,
  object: ValueType.OBJECT,
};
