/**
 * `@flagwire/sdk/openfeature`: an OpenFeature provider for `@openfeature/server-sdk` (an
 * optional peer dependency: only this entry point imports it) over a `FlagwireClient`. Flags
 * are evaluated locally from the client's live copy.
 *
 * ```ts
 * import { OpenFeature } from "@openfeature/server-sdk";
 * import { createClient } from "@flagwire/sdk/node";
 * import { FlagwireProvider } from "@flagwire/sdk/openfeature";
 *
 * await OpenFeature.setProviderAndWait(new FlagwireProvider(createClient({ baseUrl, token })));
 * const flags = OpenFeature.getClient();
 * await flags.getBooleanValue("new-checkout", false, { targetingKey: "user-42" });
 * ```
 *
 * What maps to what:
 * - evaluation: OpenFeature's typed calls go to the client's `*Details` getters (numbers to
 *   `getNumberDetails`, which serves integer and float flags alike); reasons and error codes
 *   keep their names, which are OpenFeature's; `flagMetadata` carries `flagVersion`, and
 *   `cohort` / `rolloutId` when a rollout's or release's split served the value. A `Date`
 *   attribute becomes its RFC 3339 string; a value Flagwire cannot hold (a nested object)
 *   makes the evaluation return the default with `INVALID_CONTEXT`. Nothing throws.
 * - events, once `initialize` has resolved: the client's READY (after STALE or ERROR) ->
 *   `PROVIDER_READY`, STALE -> `PROVIDER_STALE`, ERROR (the token refused) -> `PROVIDER_ERROR`,
 *   and every applied revision that changed flags -> `PROVIDER_CONFIGURATION_CHANGED` with
 *   `flagsChanged` and the revision in `metadata`.
 * - tracking: `track(name, context, { value, kind, ok, flags })` is the client's
 *   `track(name, value ?? 1)`, or `trackOutcome(name, ok)` with `kind: "outcome"`, or
 *   `observe(name, value)` with `kind: "observe"`, attributed to what `flags` (a key or a list
 *   of keys) serve the tracking context. In a request scope, use the scope's own calls.
 */

import {
  ErrorCode as OFErrorCode,
  type EvaluationContext as OFContext,
  type JsonValue as OFJson,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  ProviderNotReadyError,
  GeneralError,
  type ResolutionDetails,
  type TrackingEventDetails,
} from "@openfeature/server-sdk";
import type { FlagwireClient } from "./client.js";
import type { Unsubscribe } from "./events.js";
import type { AttributeValue, ClientState, ErrorCode, EvaluationContext, EvaluationDetails, FlagChange } from "./types.js";

/** Options of a `FlagwireProvider`. */
export interface ProviderOptions {
  /** How long `initialize` waits for the first copy of the flags (default 5,000 ms). */
  readonly readyTimeoutMs?: number;
  /** Close the client when OpenFeature closes the provider (default true). */
  readonly closeClient?: boolean;
}

/** The Flagwire `EvaluationContext` of an OpenFeature one (`Date`s become RFC 3339 strings). */
export function toContext(context: OFContext): EvaluationContext {
  const attributes: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(context)) {
    if (name === "targetingKey") continue;
    // Anything else goes as is: the client rejects what it cannot hold with INVALID_CONTEXT.
    attributes[name] = (value instanceof Date ? value.toISOString() : value) as AttributeValue;
  }
  const key = context.targetingKey;
  return { targetingKey: typeof key === "string" ? key : "", attributes };
}

/** Our error codes, which carry OpenFeature's names, as its enum. */
const ERROR_CODES: Record<ErrorCode, OFErrorCode> = {
  FLAG_NOT_FOUND: OFErrorCode.FLAG_NOT_FOUND,
  TYPE_MISMATCH: OFErrorCode.TYPE_MISMATCH,
  TARGETING_KEY_MISSING: OFErrorCode.TARGETING_KEY_MISSING,
  INVALID_CONTEXT: OFErrorCode.INVALID_CONTEXT,
  GENERAL: OFErrorCode.GENERAL,
  PROVIDER_NOT_READY: OFErrorCode.PROVIDER_NOT_READY,
  PARSE_ERROR: OFErrorCode.PARSE_ERROR,
};

function resolution<T>(d: EvaluationDetails<T>): ResolutionDetails<T> {
  const flagMetadata: Record<string, string | number> = { flagVersion: d.flagVersion };
  if (d.cohort !== undefined && d.cohort !== "") flagMetadata.cohort = d.cohort;
  if (d.rolloutId !== undefined && d.rolloutId !== "") flagMetadata.rolloutId = d.rolloutId;
  return {
    value: d.value,
    reason: d.reason,
    flagMetadata,
    ...(d.variant !== undefined && { variant: d.variant }),
    ...(d.errorCode !== undefined && { errorCode: ERROR_CODES[d.errorCode] }),
    ...(d.errorMessage !== undefined && { errorMessage: d.errorMessage }),
  };
}

/** An OpenFeature server provider evaluating from a `FlagwireClient`'s live copy. */
export class FlagwireProvider implements Provider {
  /** The provider's name. */
  readonly metadata = { name: "flagwire" } as const;
  /** Server-side. */
  readonly runsOn = "server" as const;
  /** Where the provider's events go (OpenFeature listens here). */
  readonly events = new OpenFeatureEventEmitter();
  private started = false;
  private unsubscribe: Unsubscribe[] = [];
  private readonly readyTimeoutMs: number;
  private readonly closeClient: boolean;

  /** A provider over `client` (closed with the provider unless `closeClient: false`). */
  constructor(
    readonly client: FlagwireClient,
    options: ProviderOptions = {},
  ) {
    this.readyTimeoutMs = options.readyTimeoutMs ?? 5_000;
    this.closeClient = options.closeClient ?? true;
  }

  /**
   * Waits for the first copy of the flags. Rejects (OpenFeature reports ERROR) when the token
   * is refused or nothing arrived within `readyTimeoutMs`; READY follows when the flags do.
   */
  async initialize(): Promise<void> {
    const client = this.client;
    this.unsubscribe = [
      client.on("state", (s) => {
        this.onState(s);
      }),
      client.on("change", (c) => {
        this.onChange(c);
      }),
    ];
    try {
      if (client.state !== "STALE") await client.waitReady(this.readyTimeoutMs);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw client.state === "ERROR" ? new GeneralError(message) : new ProviderNotReadyError(message);
    } finally {
      this.started = true;
    }
    if (client.state === "STALE") this.events.emit(ProviderEvents.Stale, { message: "serving a bootstrap copy" });
  }

  /** Stops forwarding events; closes the client unless told not to (flushing its metrics). */
  async onClose(): Promise<void> {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.started = false;
    if (this.closeClient) await this.client.close();
  }

  private onState(state: ClientState): void {
    if (!this.started) return; // initialize() reports the first state
    if (state === "READY") this.events.emit(ProviderEvents.Ready);
    else if (state === "STALE") this.events.emit(ProviderEvents.Stale, { message: "disconnected: serving the last copy" });
    else if (state === "ERROR") {
      this.events.emit(ProviderEvents.Error, { message: this.client.stateMessage ?? "the server refused the token" });
    }
  }

  private onChange(change: FlagChange): void {
    if (!this.started || change.flags.length === 0) return;
    this.events.emit(ProviderEvents.ConfigurationChanged, {
      flagsChanged: [...change.flags],
      metadata: { revision: change.revision },
    });
  }

  private resolve<T>(get: () => EvaluationDetails<T>, defaultValue: T): ResolutionDetails<T> {
    try {
      return resolution(get());
    } catch (e) {
      // The getters never throw; this guards the mapping itself.
      return { value: defaultValue, reason: "ERROR", errorCode: OFErrorCode.GENERAL, errorMessage: String(e) };
    }
  }

  /** A boolean flag (`getBooleanDetails`). */
  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: OFContext): Promise<ResolutionDetails<boolean>> {
    return Promise.resolve(this.resolve(() => this.client.getBooleanDetails(flagKey, toContext(context), defaultValue), defaultValue));
  }

  /** A string flag (`getStringDetails`). */
  resolveStringEvaluation(flagKey: string, defaultValue: string, context: OFContext): Promise<ResolutionDetails<string>> {
    return Promise.resolve(this.resolve(() => this.client.getStringDetails(flagKey, toContext(context), defaultValue), defaultValue));
  }

  /** An integer or float flag (`getNumberDetails`). */
  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: OFContext): Promise<ResolutionDetails<number>> {
    return Promise.resolve(this.resolve(() => this.client.getNumberDetails(flagKey, toContext(context), defaultValue), defaultValue));
  }

  /** An object flag (`getObjectDetails`). */
  resolveObjectEvaluation<T extends OFJson>(flagKey: string, defaultValue: T, context: OFContext): Promise<ResolutionDetails<T>> {
    return Promise.resolve(
      this.resolve(
        () => this.client.getObjectDetails<T>(flagKey, toContext(context), defaultValue),
        defaultValue,
      ),
    );
  }

  /** Records one of the team's metrics (see the module's comment). Never throws. */
  track(name: string, context: OFContext, details: TrackingEventDetails): void {
    try {
      const f = details.flags;
      const flags = typeof f === "string" ? [f] : Array.isArray(f) ? f.filter((k) => typeof k === "string") : undefined;
      const opts = { context: toContext(context), ...(flags !== undefined && { flags }) };
      if (details.kind === "outcome") this.client.trackOutcome(name, details.ok as boolean, opts);
      else if (details.kind === "observe") this.client.observe(name, details.value ?? Number.NaN, opts); // no value: dropped, counted
      else this.client.track(name, details.value ?? 1, opts);
    } catch {
      // Tracking never throws; the client counts what it drops.
    }
  }
}
