/**
 * The live client: a local copy of one environment kept current over `FlagService.Watch`,
 * typed getters over it, readiness, states and change events, applied-revision
 * acknowledgement, usage/outcome metrics and the team's own metrics (`track`, `trackOutcome`,
 * `observe`, `timer`; `tracking.ts`) flushed through `MetricsService.Report`.
 *
 * Runtime-neutral: it talks through a Connect `Transport`, which `@flagwire/sdk/node` (native
 * gRPC over HTTP/2) and `@flagwire/sdk/fetch` (gRPC-web over `fetch`) create.
 */

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { type Evaluation, Snapshot } from "./engine/snapshot.js";
import { FlagwireError } from "./errors.js";
import { rotateTransport } from "./failover.js";
import { Channel, type Unsubscribe } from "./events.js";
import { type Change, FlagService, SnapshotSchema } from "./gen/flagwire/v1/flag_service_pb.js";
import { MetricsService } from "./gen/flagwire/v1/metrics_pb.js";
import type { MetricTarget } from "./metric-agg.js";
import type { MetricWindow } from "./metric-window.js";
import { Recorder, type Served } from "./metrics.js";
import { type Expect, evaluateIn, FlagReader, NOT_READY } from "./reader.js";
import { type ReleaseCohort, releaseCohortOf, ScopedFlags } from "./scope.js";
import { recordUnscoped, ScopeMetrics, startTimer, type Timer, type Tracker, type TrackOptions } from "./tracking.js";
import type { ClientState, EvaluationContext, FlagChange } from "./types.js";
import { nowMs, randomUuid, sleep, unref } from "./util.js";

/** The SDK's name, as the server's instance registry shows it. */
export const SDK_NAME = "flagwire-ts";
/** The SDK's version. */
export const SDK_VERSION = "0.1.0";

/** Options of a `FlagwireClient`. Durations are in milliseconds. */
export interface ClientOptions {
  /**
   * How to reach the server: `createNodeTransport` (`@flagwire/sdk/node`) or
   * `createFetchTransport` (`@flagwire/sdk/fetch`), or a `FailoverTransport` over several
   * endpoints, which the client moves to the next endpoint after every session that ended or
   * could not start (a refusal excepted). Required unless `offline`.
   */
  readonly transport?: Transport;
  /** An sdk token (or another role's token plus `environment`). Required unless `offline`. */
  readonly token?: string;
  /** The environment to watch, for admin or read-only tokens; sdk tokens need none. */
  readonly environment?: string;
  /** A stream silent this long is treated as dead and reconnected (default 45,000). */
  readonly heartbeatTimeoutMs?: number;
  /** First reconnection delay; doubles per failure, with jitter, and starts over once READY (default 100). */
  readonly minBackoffMs?: number;
  /** Largest reconnection delay, and the wait after a refused token (default 30,000). */
  readonly maxBackoffMs?: number;
  /** How often usage and outcome metrics are sent (default 10,000). */
  readonly metricsFlushIntervalMs?: number;
  /** Count evaluations and outcomes and report them (default true; always off offline). */
  readonly metrics?: boolean;
  /**
   * Series (flag, variant, cohort, rollout id) held between flushes at most, and (release,
   * cohort) outcome keys per window at most (default 10,000 each).
   */
  readonly maxSeries?: number;
  /**
   * A serialized `flagwire.v1.Snapshot` (the Rust SDK's bootstrap-file format) to start from:
   * the client serves it (state `STALE`) until the server answers.
   */
  readonly bootstrap?: Uint8Array;
  /** Called with every applied snapshot, serialized like `bootstrap`, e.g. to persist it. */
  readonly onSnapshot?: (bytes: Uint8Array) => void | Promise<void>;
  /** Evaluate from `bootstrap` only; never connect (state `READY`). */
  readonly offline?: boolean;
  /**
   * The clock of measured durations and timers, in milliseconds (default `performance.now()`):
   * tests inject one instead of waiting on the wall clock.
   */
  readonly clock?: () => number;
  /**
   * @internal No stream and no timers: snapshots are installed by the owner (`ShortLivedFlags`),
   * metrics are flushed only when asked.
   */
  readonly manual?: boolean;
  /** @internal Called by `close()` after everything else (transports release connections). */
  readonly onClose?: () => void;
  /** @internal The name and version reported to the server. */
  readonly sdk?: { readonly name: string; readonly version: string };
}

/**
 * An outcome being measured by hand; see `FlagwireClient.startMeasure`. It is a request scope
 * of one flag, so it is a `Tracker`: metrics recorded through it are attributed to the variant
 * served (and its release cohort) when it finishes.
 */
export interface Measurement extends Tracker {
  /** The variant served ("" when the flag could not be evaluated). */
  readonly variant: string;
  /** The cohort label served, if any (""). */
  readonly cohort: string;
  /** The rollout owning the split served, if any (""). */
  readonly rolloutId: string;
  /** Records the outcome (once; later calls are ignored). */
  finish(ok: boolean): void;
}

/** How a session ended; `ready` when it reached READY (which resets the backoff). */
type SessionEnd = { kind: "refused"; message: string } | { kind: "failed"; reason: string; ready: boolean } | { kind: "closed" };

const REFUSED = new Set([Code.Unauthenticated, Code.PermissionDenied]);
/** Wait before resending an acknowledgement that failed for a reason other than a refusal. */
const ACK_RETRY_MS = 250;

function changedKeys(old: Snapshot, change: Change): string[] {
  switch (change.kind.case) {
    case "flagUpserted":
      return [change.kind.value.key];
    case "flagsUpserted":
      // Every flag of the batch, each once (a key repeated in a batch: the last one applies).
      return [...new Set(change.kind.value.flags.map((f) => f.key))];
    case "flagDeleted":
      return [change.kind.value];
    case "segmentUpserted":
    case "segmentDeleted":
      // A segment change can alter any flag that uses it; listeners re-read what they need.
      return old.flagKeys();
    default:
      return [];
  }
}

/**
 * A Flagwire client. Evaluation is local and synchronous, never blocks and never throws.
 *
 * ```ts
 * const client = new FlagwireClient({ transport, token });
 * await client.waitReady(5000);
 * client.getBoolean("new-checkout", { targetingKey: "user-42" }, false);
 * ```
 */
export class FlagwireClient extends FlagReader {
  /** This instance's id (a random UUID), as the server's instance registry shows it. */
  readonly instanceId: string = randomUuid();

  private readonly options: Required<
    Pick<ClientOptions, "heartbeatTimeoutMs" | "minBackoffMs" | "maxBackoffMs" | "metricsFlushIntervalMs" | "environment">
  >;
  private readonly token: string;
  /** @internal The SDK name and version reported to the server. */
  readonly sdk: { readonly name: string; readonly version: string };
  private snapshot: Snapshot | undefined;
  private currentState: ClientState;
  private message: string | undefined;
  private readonly stateEvents = new Channel<ClientState>();
  private readonly changeEvents = new Channel<FlagChange>();
  private readonly recorder: Recorder | undefined;
  private readonly flags: Client<typeof FlagService> | undefined;
  private readonly metricsService: Client<typeof MetricsService> | undefined;
  private readonly transport: Transport | undefined;
  private readonly shutdown = new AbortController();
  private readonly syncLoop: Promise<void> | undefined;
  private readonly flushTimer: ReturnType<typeof setInterval> | undefined;
  private readonly onSnapshot: ClientOptions["onSnapshot"];
  private readonly onClose: ClientOptions["onClose"];
  private readonly clock: () => number;
  private sequence = 0;
  private windowStart = new Date();
  private closing: Promise<void> | undefined;
  /** The newest revision to acknowledge, and the last one acknowledged (or given up on). */
  private ackWanted = 0;
  private acked = 0;
  private acking: Promise<void> | undefined;
  private persisting: Promise<void> = Promise.resolve();

  constructor(options: ClientOptions) {
    super();
    const min = options.minBackoffMs ?? 100;
    this.options = {
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 45_000,
      minBackoffMs: min,
      maxBackoffMs: Math.max(options.maxBackoffMs ?? 30_000, min),
      metricsFlushIntervalMs: options.metricsFlushIntervalMs ?? 10_000,
      environment: options.environment ?? "",
    };
    this.token = options.token ?? "";
    this.sdk = options.sdk ?? { name: SDK_NAME, version: SDK_VERSION };
    this.onSnapshot = options.onSnapshot;
    this.onClose = options.onClose;
    this.clock = options.clock ?? nowMs;
    if (options.bootstrap !== undefined) {
      try {
        this.snapshot = Snapshot.fromProto(fromBinary(SnapshotSchema, options.bootstrap));
      } catch (e) {
        throw new FlagwireError("BOOTSTRAP", `not a flagwire.v1.Snapshot: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (options.offline === true) {
      if (this.snapshot === undefined) throw new FlagwireError("CONFIG", "offline mode needs a bootstrap snapshot");
      this.currentState = "READY";
      return;
    }
    if (options.transport === undefined) throw new FlagwireError("CONFIG", "a transport is required unless offline");
    if (this.token === "") throw new FlagwireError("CONFIG", "a token is required unless offline");
    this.currentState = this.snapshot === undefined ? "CONNECTING" : "STALE";
    this.transport = options.transport;
    this.flags = createClient(FlagService, options.transport);
    this.metricsService = createClient(MetricsService, options.transport);
    if (options.metrics !== false) this.recorder = new Recorder(options.maxSeries);
    if (options.manual === true) return;
    if (this.recorder !== undefined) {
      this.flushTimer = setInterval(() => void this.flush(), this.options.metricsFlushIntervalMs);
      unref(this.flushTimer);
    }
    this.syncLoop = this.run();
  }

  /** @internal The FlagService client (short-lived mode fetches snapshots through it). */
  get flagService(): Client<typeof FlagService> | undefined {
    return this.flags;
  }

  /** The environment option ("" = the sdk token's own). */
  get environment(): string {
    return this.options.environment;
  }

  /** @internal The request headers (authorization). */
  requestHeaders(): Record<string, string> {
    return this.headers();
  }

  /** @internal Installs a snapshot fetched by the owner (manual mode). */
  install(next: Snapshot): void {
    const current = this.snapshot;
    if (current !== undefined && current.revision === next.revision && current.environment === next.environment) {
      this.setState("READY");
      return;
    }
    this.snapshot = next;
    this.changeEvents.emit({
      revision: next.revision,
      flags: current === undefined ? next.flagKeys() : current.changedFlags(next),
    });
    this.setState("READY");
  }

  /** @internal The snapshot being served, if any. */
  get currentSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  /** @internal Marks the copy stale (manual mode, after a failed refresh). */
  markStale(): void {
    this.setState(this.snapshot === undefined ? "CONNECTING" : "STALE");
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** @internal Evaluates with the current snapshot and counts what it served. */
  evaluate(key: string, ctx: EvaluationContext, expect: Expect): Evaluation {
    const s = this.snapshot;
    if (s === undefined) return NOT_READY;
    const r = evaluateIn(s, key, ctx, expect);
    if (r.variant !== undefined && this.recorder !== undefined) {
      this.recorder.evaluation(key, r.variant.key, r.cohort, r.rolloutId, r.reason);
    }
    return r;
  }

  protected evaluateFlag(key: string, ctx: EvaluationContext, expect: Expect): Evaluation {
    return this.evaluate(key, ctx, expect);
  }

  /** The current state. */
  get state(): ClientState {
    return this.currentState;
  }

  /** Why the state is `ERROR` (the server's message), if it is. */
  get stateMessage(): string | undefined {
    return this.message;
  }

  /** The revision of the copy being served (0 before the first snapshot). */
  get revision(): number {
    return this.snapshot?.revision ?? 0;
  }

  /** Keys of every flag held (not archived), sorted. */
  flagKeys(): string[] {
    return this.snapshot?.flagKeys() ?? [];
  }

  /** The copy being served, serialized as a `flagwire.v1.Snapshot` (a bootstrap), if any. */
  snapshotBytes(): Uint8Array | undefined {
    return this.snapshot === undefined ? undefined : toBinary(SnapshotSchema, this.snapshot.toProto());
  }

  /**
   * Resolves once a snapshot is applied (state `READY`); rejects with a `FlagwireError` on
   * timeout (`TIMEOUT`), a refused token (`UNAUTHORIZED`) or `close()` (`CLOSED`).
   */
  waitReady(timeoutMs = 5_000): Promise<void> {
    if (this.currentState === "READY") return Promise.resolve();
    if (this.currentState === "ERROR") {
      return Promise.reject(new FlagwireError("UNAUTHORIZED", this.message ?? "token refused"));
    }
    if (this.closing !== undefined) return Promise.reject(new FlagwireError("CLOSED", "the client is closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new FlagwireError("TIMEOUT", `not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        stop();
        reject(new FlagwireError("CLOSED", "the client is closed"));
      };
      const unsubscribe = this.stateEvents.on((state) => {
        if (state === "READY") {
          stop();
          resolve();
        } else if (state === "ERROR") {
          stop();
          reject(new FlagwireError("UNAUTHORIZED", this.message ?? "token refused"));
        }
      });
      const stop = (): void => {
        clearTimeout(timer);
        unsubscribe();
        this.shutdown.signal.removeEventListener("abort", onAbort);
      };
      this.shutdown.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Calls `listener` with every change (one per applied revision) or state transition. */
  on(event: "change", listener: (change: FlagChange) => void): Unsubscribe;
  on(event: "state", listener: (state: ClientState) => void): Unsubscribe;
  on(event: "change" | "state", listener: ((change: FlagChange) => void) | ((state: ClientState) => void)): Unsubscribe {
    return event === "change"
      ? this.changeEvents.on(listener as (change: FlagChange) => void)
      : this.stateEvents.on(listener as (state: ClientState) => void);
  }

  /** Every change from now on, as an async iterator (ends when the client closes). */
  changes(): AsyncIterableIterator<FlagChange> {
    return this.changeEvents.iterate();
  }

  /** Every state transition from now on, as an async iterator (ends when the client closes). */
  states(): AsyncIterableIterator<ClientState> {
    return this.stateEvents.iterate();
  }

  // ---------------------------------------------------------------------------------------
  // Outcomes

  /**
   * Evaluates `flag` (any type), runs `work` with the variant served, and records its duration
   * and whether it succeeded (returned, or threw) against that variant, cohort and rollout. It
   * is a request scope of one flag: when the flag is in a release's canary or control cohort,
   * the outcome is also that release cohort's (see `scope` for requests reading several flags).
   * Returns (or rethrows) what `work` does.
   *
   * `work` also gets a `Tracker` for the request's own metrics (`t.track("hits")`).
   *
   * ```ts
   * await client.measure("new-checkout", ctx, async (variant) => variant === "on" ? newFlow() : oldFlow());
   * ```
   */
  async measure<T>(
    flag: string,
    ctx: EvaluationContext,
    work: (variant: string, metrics: Tracker) => T | Promise<T>,
  ): Promise<T> {
    const m = this.startMeasure(flag, ctx);
    try {
      const result = await work(m.variant, m);
      m.finish(true);
      return result;
    } catch (e) {
      m.finish(false);
      throw e;
    }
  }

  /** Starts measuring an outcome under `flag` by hand: read `variant`, work, then `finish(ok)`. */
  startMeasure(flag: string, ctx: EvaluationContext): Measurement {
    let r: Evaluation;
    try {
      r = this.evaluate(flag, ctx, undefined);
    } catch {
      r = NOT_READY;
    }
    const served: Served = { flag, variant: r.variant?.key ?? "", cohort: r.cohort, rolloutId: r.rolloutId };
    const release = served.variant === "" ? undefined : releaseCohortOf(served);
    const metrics = new ScopeMetrics(this.metricWindow, this.clock);
    const started = this.clock();
    let finished = false;
    return {
      variant: served.variant,
      cohort: served.cohort,
      rolloutId: served.rolloutId,
      track: (name, value) => { metrics.track(name, value); },
      trackOutcome: (name, ok) => { metrics.trackOutcome(name, ok); },
      observe: (name, value) => { metrics.observe(name, value); },
      timer: (name) => metrics.timer(name),
      finish: (ok: boolean) => {
        if (finished) return;
        finished = true;
        metrics.close(served.variant === "" ? [] : [served]);
        if (served.variant !== "") this.recordOutcome([served], release === undefined ? [] : [release], ok, this.clock() - started);
      },
    };
  }

  /**
   * Runs `work` as one request scope: every flag it reads through the `ScopedFlags` it is
   * handed is counted as usual, and when `work` returns or throws, its duration and whether it
   * succeeded are recorded against every (flag, variant) it was served, and ONCE per release
   * cohort it was served, however many of the release's flags it read. Returns (or rethrows)
   * what `work` does. Flags read through the client itself inside `work` are not the scope's.
   *
   * ```ts
   * await client.scope(async (f) => {
   *   const ctx = { targetingKey: user };
   *   return f.getBoolean("new-search", ctx, false) && f.getString("ranker", ctx, "v1") === "v2" ? v2(q) : v1(q);
   * });
   * ```
   */
  async scope<T>(work: (flags: ScopedFlags) => T | Promise<T>): Promise<T> {
    const s = this.startScope();
    let ok = false;
    try {
      const result = await work(s);
      ok = true;
      return result;
    } finally {
      s.finish(ok);
    }
  }

  /**
   * Opens a request scope by hand, for code that is not one function (a middleware's before
   * and after): read flags through it, then call `finish(ok)` once the request's outcome is
   * known. Timing starts now.
   */
  startScope(): ScopedFlags {
    return new ScopedFlags(this);
  }

  /**
   * @internal Records one outcome that took `elapsedMs` against every served series and once
   * against every release cohort in `releases` (the caller passes each pair once).
   */
  recordOutcome(served: readonly Served[], releases: readonly ReleaseCohort[], ok: boolean, elapsedMs: number): void {
    if (this.recorder === undefined) return;
    const micros = Math.max(0, Math.floor(elapsedMs * 1000));
    for (const s of served) this.recorder.outcome(s, ok, micros);
    for (const r of releases) this.recorder.cohortOutcome(r.releaseId, r.cohort, ok, micros);
  }

  /** @internal The clock of durations and timers (the `clock` option), in milliseconds. */
  now(): number {
    return this.clock();
  }

  /** @internal Where the team's own metrics are aggregated (`undefined`: metrics are off). */
  get metricWindow(): MetricWindow | undefined {
    return this.recorder?.metrics;
  }

  // ---------------------------------------------------------------------------------------
  // The team's own metrics, outside any request scope (inside one, use the scope's methods)

  /** What `flag` serves `ctx`, evaluated without counting an evaluation (nobody read it). */
  private servedFor(flag: string, ctx: EvaluationContext): MetricTarget | undefined {
    const s = this.snapshot;
    if (s === undefined) return undefined;
    const r = evaluateIn(s, flag, ctx, undefined);
    const variant = r.variant?.key;
    return variant === undefined ? undefined : { flag, variant, cohort: r.cohort, rolloutId: r.rolloutId };
  }

  /**
   * Records an event of the team's metric `name` (a count, or a value such as a satisfaction
   * score) outside any request scope, for what `opts.flags` serve `opts.context` (each flag's
   * variant, and once each release cohort among them). Without flags that serve anything it
   * is dropped and counted in `droppedSeries`, as are invalid names and values; it never
   * throws. The name and the context follow OpenFeature's `track(event, context, details)`.
   *
   * ```ts
   * client.track("signup", 1, { context: { targetingKey: user }, flags: ["onboarding"] });
   * ```
   */
  track(name: string, value: number = 1, opts?: TrackOptions): void {
    recordUnscoped(this.metricWindow, (f, c) => this.servedFor(f, c), name, { kind: "track", value }, opts);
  }

  /** Records a sub-operation's success or failure outside any scope; see `track` for `opts`. */
  trackOutcome(name: string, ok: boolean, opts?: TrackOptions): void {
    recordUnscoped(this.metricWindow, (f, c) => this.servedFor(f, c), name, { kind: "outcome", ok }, opts);
  }

  /** Records a value of a distribution (≥ 0, e.g. ms) outside any scope; see `track` for `opts`. */
  observe(name: string, value: number, opts?: TrackOptions): void {
    recordUnscoped(this.metricWindow, (f, c) => this.servedFor(f, c), name, { kind: "observe", value }, opts);
  }

  /** Starts a timer whose `stop()` observes the elapsed milliseconds under `name`, with `opts`. */
  timer(name: string, opts?: TrackOptions): Timer {
    return startTimer(this.clock, (ms) => {
      this.observe(name, ms, opts);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Reports

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` };
  }

  /**
   * Sends the metrics gathered so far now (they are also sent every flush interval and on
   * close). Resolves to whether they were delivered (or there was nothing to send); a window
   * the transport failed to deliver is kept for the next flush, one the server refused as
   * invalid is dropped.
   */
  async flush(): Promise<boolean> {
    const recorder = this.recorder;
    const metrics = this.metricsService;
    if (recorder === undefined || metrics === undefined) return true;
    const { series, dropped, cohortOutcomes, metrics: ownMetrics } = recorder.take();
    if (series.length === 0 && dropped === 0 && cohortOutcomes.length === 0 && ownMetrics.length === 0) return true;
    const now = new Date();
    try {
      await metrics.report(
        {
          instanceId: this.instanceId,
          sequence: BigInt(++this.sequence),
          sdkName: this.sdk.name,
          sdkVersion: this.sdk.version,
          environment: this.options.environment,
          appliedRevision: BigInt(this.revision),
          windowStart: timestampFromDate(this.windowStart),
          windowEnd: timestampFromDate(now),
          series,
          droppedSeries: BigInt(dropped),
          cohortOutcomes,
          metrics: ownMetrics,
        },
        { headers: this.headers(), timeoutMs: 10_000 },
      );
      this.windowStart = now;
      return true;
    } catch (e) {
      // The server refused this window's content (e.g. a flag deleted since it was read):
      // resending it would be refused forever, so it is dropped, not merged back.
      if (ConnectError.from(e).code !== Code.InvalidArgument) recorder.mergeBack(series, dropped, cohortOutcomes, ownMetrics);
      return false;
    }
  }

  /**
   * Tells the server which revision this instance applied (docs/reference/sync.md,
   * "Applied-revision acknowledgements"): at once, without a timer, one `Report` in flight at a
   * time; whatever was applied meanwhile is sent as soon as it returns.
   */
  private applied(revision: number): void {
    this.ackWanted = revision;
    if (this.acking !== undefined || this.ackWanted === this.acked || this.closing !== undefined) return;
    this.acking = this.acknowledge().finally(() => {
      this.acking = undefined;
    });
  }

  private async acknowledge(): Promise<void> {
    const metrics = this.metricsService;
    if (metrics === undefined) return;
    const signal = this.shutdown.signal;
    // "Differs", not "is greater": a server restored from a backup sends a lower revision.
    while (this.ackWanted !== this.acked && !signal.aborted) {
      const revision = this.ackWanted;
      try {
        await metrics.report(
          {
            instanceId: this.instanceId,
            sequence: BigInt(++this.sequence),
            sdkName: this.sdk.name,
            sdkVersion: this.sdk.version,
            environment: this.options.environment,
            appliedRevision: BigInt(revision),
          },
          { headers: this.headers(), signal, timeoutMs: 10_000 },
        );
        this.acked = revision;
      } catch (e) {
        const code = ConnectError.from(e).code;
        if (code === Code.Unimplemented || code === Code.InvalidArgument) {
          // Resending would be refused the same way: give this revision up.
          this.acked = revision;
        } else {
          await sleep(REFUSED.has(code) ? this.options.maxBackoffMs : ACK_RETRY_MS, signal);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Sync

  private setState(state: ClientState, message?: string): void {
    this.message = state === "ERROR" ? message : undefined;
    if (state === this.currentState) return;
    this.currentState = state;
    this.stateEvents.emit(state);
  }

  private async run(): Promise<void> {
    const signal = this.shutdown.signal;
    let delay = this.options.minBackoffMs;
    while (!signal.aborted) {
      const end = await this.session();
      if (end.kind === "closed" || signal.aborted) return;
      let wait: number;
      if (end.kind === "refused") {
        this.setState("ERROR", end.message);
        wait = this.options.maxBackoffMs;
      } else {
        this.setState(this.snapshot === undefined ? "CONNECTING" : "STALE");
        // The next session goes to the next endpoint (replica), if there are several; a
        // refusal would be the same on every replica, so it stays.
        rotateTransport(this.transport);
        if (end.ready) delay = this.options.minBackoffMs;
        const current = delay;
        delay = Math.min(delay * 2, this.options.maxBackoffMs);
        // Jitter in [d/2, d]: spreads a fleet reconnecting after a server restart.
        wait = current / 2 + Math.random() * (current / 2);
      }
      await sleep(wait, signal);
    }
  }

  private async session(): Promise<SessionEnd> {
    const flags = this.flags;
    if (flags === undefined) return { kind: "closed" };
    const abort = new AbortController();
    // close() ends the session itself rather than waiting for the transport to honour the
    // abort: a fetch whose body is being read can miss it (seen under load with Node's fetch),
    // and close() would then wait out the heartbeat timeout.
    let closed!: () => void;
    const shutdown = new Promise<"closed">((resolve) => { closed = () => { resolve("closed"); }; });
    const onShutdown = (): void => {
      closed();
      abort.abort();
    };
    this.shutdown.signal.addEventListener("abort", onShutdown, { once: true });
    let ready = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const stream = flags.watch(
        {
          environment: this.options.environment,
          sinceRevision: BigInt(this.revision),
          instanceId: this.instanceId,
          sdkName: this.sdk.name,
          sdkVersion: this.sdk.version,
        },
        { headers: this.headers(), signal: abort.signal },
      );
      const messages = stream[Symbol.asyncIterator]();
      for (;;) {
        const silent = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => { resolve("timeout"); }, this.options.heartbeatTimeoutMs);
        });
        const next = await Promise.race([messages.next(), silent, shutdown]);
        clearTimeout(timer);
        if (next === "closed") return { kind: "closed" };
        if (next === "timeout") {
          abort.abort();
          return { kind: "failed", reason: "no message within the heartbeat timeout", ready };
        }
        if (next.done === true) return { kind: "failed", reason: "stream ended", ready };
        const event = next.value.event;
        const current = this.snapshot;
        let nextSnapshot: Snapshot;
        let changed: string[];
        if (event.case === "snapshot") {
          nextSnapshot = Snapshot.fromProto(event.value);
          changed = current === undefined ? nextSnapshot.flagKeys() : current.changedFlags(nextSnapshot);
        } else if (event.case === "change") {
          if (current === undefined) return { kind: "failed", reason: "a change arrived before any snapshot", ready };
          try {
            nextSnapshot = current.apply(event.value);
          } catch (e) {
            // A gap: reconnecting resumes from what we hold, and the server fills it.
            return { kind: "failed", reason: e instanceof Error ? e.message : "gap", ready };
          }
          changed = changedKeys(current, event.value);
        } else if (event.case === "heartbeat") {
          const held = current?.revision ?? 0;
          if (Number(event.value.revision) > held) {
            return { kind: "failed", reason: `heartbeat at ${event.value.revision} but holding ${held}`, ready };
          }
          if (current !== undefined) {
            // The copy is confirmed current: the session is healthy, and a copy never
            // acknowledged (a bootstrap) is acknowledged now.
            ready = true;
            this.setState("READY");
            this.applied(current.revision);
          }
          continue;
        } else {
          continue;
        }
        ready = true;
        this.snapshot = nextSnapshot;
        // Announce before declaring READY, so whoever subscribes after waitReady resolves sees
        // only later revisions.
        this.changeEvents.emit({ revision: nextSnapshot.revision, flags: changed });
        this.setState("READY");
        this.applied(nextSnapshot.revision);
        this.persist(nextSnapshot);
      }
    } catch (e) {
      if (this.shutdown.signal.aborted) return { kind: "closed" };
      const err = ConnectError.from(e);
      if (REFUSED.has(err.code)) return { kind: "refused", message: err.rawMessage };
      return { kind: "failed", reason: err.message, ready };
    } finally {
      clearTimeout(timer);
      abort.abort();
      this.shutdown.signal.removeEventListener("abort", onShutdown);
    }
  }

  private persist(snapshot: Snapshot): void {
    const save = this.onSnapshot;
    if (save === undefined) return;
    const bytes = toBinary(SnapshotSchema, snapshot.toProto());
    this.persisting = this.persisting
      .then(() => save(bytes))
      .catch(() => {
        // Persisting is best effort: the next applied revision tries again.
      });
  }

  /**
   * Flushes metrics, stops the stream and the timers, and waits for them. Idempotent. The
   * client keeps serving its last copy afterwards, but no longer updates it.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
      await this.flush();
      this.shutdown.abort();
      await this.syncLoop;
      await this.acking;
      await this.persisting;
      this.changeEvents.close();
      this.stateEvents.close();
      this.onClose?.();
    })();
    return this.closing;
  }
}
