/**
 * Short-lived runtimes (Convex actions, serverless functions): no long-lived stream, no
 * background timers. Each invocation loads a snapshot, through a `Watch` that is closed after
 * its first message, or reuses the one a warm instance already holds while it is younger than
 * `maxAgeMs` (past that, a cheap revalidation: resuming at the held revision answers with an
 * immediate heartbeat when nothing changed). Flags are evaluated locally, and metrics are flushed
 * before the invocation returns.
 *
 * `withFlags(flags, handler)` wraps a Convex action handler (or any `(ctx, args) => Promise`):
 * it loads the flags, hands the handler a request scope (`ScopedFlags`, `scope.ts`) that
 * remembers every flag it read, measures the handler's duration and whether it threw against
 * each of those flags' variants and once per release cohort it was served, and flushes before
 * returning.
 */

import type { Transport } from "@connectrpc/connect";
import { FlagwireClient } from "./client.js";
import { SDK_NAME, SDK_VERSION } from "./client-options.js";
import { Snapshot } from "./engine/snapshot.js";
import { rotateTransport } from "./failover.js";
import type { ScopedFlags } from "./scope.js";
import type { ClientState } from "./types.js";
import { nowMs } from "./util.js";

/** Options of `ShortLivedFlags`. Durations in milliseconds. */
export interface ShortLivedOptions {
  /**
   * How to reach the server (`createFetchTransport` in Convex's default runtime, or a
   * `FailoverTransport` over several endpoints: a load that fails moves it to the next one).
   */
  readonly transport: Transport;
  /** An sdk token (or another role's token plus `environment`). */
  readonly token: string;
  /** The environment, for tokens not bound to one. */
  readonly environment?: string;
  /**
   * Reuse a loaded snapshot across warm invocations for this long without asking the server
   * (default 0: revalidate on every `load()`, which costs one round trip and, when nothing
   * changed, no snapshot transfer).
   */
  readonly maxAgeMs?: number;
  /** How long one load may take before the invocation goes on with what it holds (default 5,000). */
  readonly loadTimeoutMs?: number;
  /** Count evaluations and outcomes and report them on `flush()` (default true). */
  readonly metrics?: boolean;
  /** Series held between flushes at most (default 10,000). */
  readonly maxSeries?: number;
}

/**
 * Flags for short-lived runtimes; create one per module (it survives across warm invocations)
 * and call `load()` at the start of each invocation and `flush()` before it returns, or let
 * `withFlags` do both.
 */
export class ShortLivedFlags {
  /** The reader over the loaded snapshot (its getters never throw; defaults before a load). */
  readonly client: FlagwireClient;
  private readonly maxAgeMs: number;
  private readonly loadTimeoutMs: number;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<FlagwireClient> | undefined;
  private readonly transport: Transport;
  /** Why the last load failed, if it did (the invocation then used what it held, or defaults). */
  lastError: string | undefined;

  constructor(options: ShortLivedOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 0;
    this.loadTimeoutMs = options.loadTimeoutMs ?? 5_000;
    this.transport = options.transport;
    this.client = new FlagwireClient({
      transport: options.transport,
      token: options.token,
      ...(options.environment !== undefined && { environment: options.environment }),
      ...(options.metrics !== undefined && { metrics: options.metrics }),
      ...(options.maxSeries !== undefined && { maxSeries: options.maxSeries }),
      manual: true,
      sdk: { name: `${SDK_NAME}-short-lived`, version: SDK_VERSION },
    });
  }

  /** `READY` after a successful load, `STALE` when the last load failed but a copy is held. */
  get state(): ClientState {
    return this.client.state;
  }

  /** The revision loaded (0 before the first load). */
  get revision(): number {
    return this.client.revision;
  }

  /**
   * Makes sure a snapshot no older than `maxAgeMs` is held, and returns the reader. Never
   * rejects: when the server cannot be reached the reader serves what it holds (or defaults,
   * with `PROVIDER_NOT_READY`), and `lastError` says why.
   */
  load(): Promise<FlagwireClient> {
    if (this.client.revision > 0 && nowMs() - this.loadedAt < this.maxAgeMs) return Promise.resolve(this.client);
    this.loading ??= this.refresh().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async refresh(): Promise<FlagwireClient> {
    try {
      const held = this.client.revision;
      const first = await this.firstMessage(held);
      if (first === "current") {
        this.client.install(this.client.currentSnapshot!);
      } else if (first !== undefined) {
        this.client.install(first);
      } else {
        // Behind: the server resumed with changes. One more round trip for a whole snapshot.
        const snapshot = await this.firstMessage(0);
        if (!(snapshot instanceof Snapshot)) throw new Error("the server sent no snapshot");
        this.client.install(snapshot);
      }
      this.loadedAt = nowMs();
      this.lastError = undefined;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.client.markStale();
      // The next load tries the next endpoint, when there are several.
      rotateTransport(this.transport);
    }
    return this.client;
  }

  /** Opens a Watch at `since`, reads one message and closes it. */
  private async firstMessage(since: number): Promise<Snapshot | "current" | undefined> {
    const flags = this.client.flagService!;
    const abort = new AbortController();
    try {
      const stream = flags.watch(
        {
          environment: this.client.environment,
          sinceRevision: BigInt(since),
          instanceId: this.client.instanceId,
          sdkName: this.client.sdk.name,
          sdkVersion: this.client.sdk.version,
        },
        { headers: this.client.requestHeaders(), signal: abort.signal, timeoutMs: this.loadTimeoutMs },
      );
      for await (const message of stream) {
        const event = message.event;
        if (event.case === "snapshot") return Snapshot.fromProto(event.value);
        if (event.case === "heartbeat" && since > 0 && Number(event.value.revision) <= since) return "current";
        return undefined;
      }
      throw new Error("the stream ended before its first message");
    } finally {
      abort.abort();
    }
  }

  /** Sends the metrics gathered so far; resolves to whether they were delivered. Never rejects. */
  flush(): Promise<boolean> {
    return this.client.flush();
  }
}

/**
 * Wraps a handler `(ctx, args, flags) => Promise<R>` (a Convex action's handler plus the flags)
 * into `(ctx, args) => Promise<R>`: loads the flags first, runs the handler as one request
 * scope (its duration and whether it threw are recorded against every flag it read, and once
 * per release cohort it was served), and flushes metrics before returning (or rethrowing).
 *
 * ```ts
 * const flags = new ShortLivedFlags({ transport: createFetchTransport({ baseUrl }), token });
 * export const checkout = action({
 *   args: { user: v.string() },
 *   handler: withFlags(flags, async (ctx, { user }, f) =>
 *     f.getBoolean("new-checkout", { targetingKey: user }, false) ? newFlow(ctx) : oldFlow(ctx)),
 * });
 * ```
 */
export function withFlags<Ctx, Args, R>(
  flags: ShortLivedFlags,
  handler: (ctx: Ctx, args: Args, flags: ScopedFlags) => R | Promise<R>,
): (ctx: Ctx, args: Args) => Promise<R> {
  return async (ctx: Ctx, args: Args): Promise<R> => {
    const client = await flags.load();
    try {
      return await client.scope((scope) => handler(ctx, args, scope));
    } finally {
      await flags.flush();
    }
  };
}
