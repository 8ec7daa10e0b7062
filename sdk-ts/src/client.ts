/**
 * The live client: a local copy of one environment kept current over `FlagService.Watch`,
 * typed getters over it, readiness, states and change events, applied-revision
 * acknowledgement, usage/outcome metrics and the team's own metrics (`track`, `trackOutcome`,
 * `observe`, `timer`; `tracking.ts`) flushed through `MetricsService.Report`.
 *
 * Runtime-neutral: it talks through a Connect `Transport`, which `@flagwire/sdk/node` (native
 * gRPC over HTTP/2) and `@flagwire/sdk/fetch` (gRPC-web over `fetch`) create.
 *
 * Layout: this file is the public class and the wiring of its parts, which know the client
 * only through what it hands them, so none of them imports this module: `client-options.ts`
 * checks the options and applies the defaults, `live-copy.ts` holds the snapshot served, the
 * state and their events, `watch.ts` is the Watch loop that keeps the copy current,
 * `reports.ts` sends metrics and acknowledgements, and `measurement.ts` is `startMeasure`'s
 * one-flag scope.
 */

import { toBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { authHeaders, type ClientOptions, parseOptions, type Settings } from "./client-options.js";
import type { Evaluation } from "./engine/evaluation.js";
import type { Snapshot } from "./engine/snapshot.js";
import type { Unsubscribe } from "./events.js";
import { FlagService, SnapshotSchema } from "./gen/flagwire/v1/flag_service_pb.js";
import { MetricsService } from "./gen/flagwire/v1/metrics_pb.js";
import { LiveCopy } from "./live-copy.js";
import { type Measurement, startMeasurement } from "./measurement.js";
import type { MetricTarget } from "./metric-agg.js";
import type { MetricWindow } from "./metric-window.js";
import { Recorder, type Served } from "./metrics.js";
import { type Expect, evaluateIn, FlagReader, NOT_READY } from "./reader.js";
import { Reporter } from "./reports.js";
import { type ReleaseCohort, ScopedFlags } from "./scope.js";
import { recordUnscoped, startTimer, type Timer, type Tracker, type TrackOptions } from "./tracking.js";
import type { ClientState, EvaluationContext, FlagChange } from "./types.js";
import { randomUuid, unref } from "./util.js";
import { WatchLoop } from "./watch.js";

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

  private readonly settings: Settings;
  /** @internal The SDK name and version reported to the server. */
  readonly sdk: { readonly name: string; readonly version: string };
  private readonly copy: LiveCopy;
  private readonly recorder: Recorder | undefined;
  private readonly flags: Client<typeof FlagService> | undefined;
  private readonly reporter: Reporter | undefined;
  private readonly shutdown = new AbortController();
  private readonly watch: WatchLoop | undefined;
  private readonly flushTimer: ReturnType<typeof setInterval> | undefined;
  private readonly onClose: ClientOptions["onClose"];
  private readonly clock: () => number;
  private closing: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    super();
    const { settings, bootstrap, transport } = parseOptions(options);
    this.settings = settings;
    this.sdk = settings.sdk;
    this.onClose = options.onClose;
    this.clock = settings.clock;
    if (transport === undefined) {
      this.copy = new LiveCopy(bootstrap, "READY");
      return;
    }
    this.copy = new LiveCopy(bootstrap, bootstrap === undefined ? "CONNECTING" : "STALE");
    this.flags = createClient(FlagService, transport);
    if (options.metrics !== false) this.recorder = new Recorder(options.maxSeries);
    const reporter = new Reporter(createClient(MetricsService, transport), this.recorder, {
      instanceId: this.instanceId,
      settings,
      shutdown: this.shutdown.signal,
      closing: () => this.closing !== undefined,
    });
    this.reporter = reporter;
    if (options.manual === true) return;
    if (this.recorder !== undefined) {
      this.flushTimer = setInterval(() => void this.flush(), settings.metricsFlushIntervalMs);
      unref(this.flushTimer);
    }
    this.watch = new WatchLoop({
      flags: this.flags,
      transport,
      copy: this.copy,
      instanceId: this.instanceId,
      settings,
      shutdown: this.shutdown.signal,
      onSnapshot: options.onSnapshot,
      applied: (revision) => { reporter.applied(revision); },
    });
  }

  /** @internal The FlagService client (short-lived mode fetches snapshots through it). */
  get flagService(): Client<typeof FlagService> | undefined {
    return this.flags;
  }

  /** The environment option ("" = the sdk token's own). */
  get environment(): string {
    return this.settings.environment;
  }

  /** @internal The request headers (authorization). */
  requestHeaders(): Record<string, string> {
    return authHeaders(this.settings);
  }

  /** @internal Installs a snapshot fetched by the owner (manual mode). */
  install(next: Snapshot): void {
    const current = this.copy.snapshot;
    if (current !== undefined && current.revision === next.revision && current.environment === next.environment) {
      this.copy.setState("READY");
      return;
    }
    this.copy.apply(next, current === undefined ? next.flagKeys() : current.changedFlags(next));
  }

  /** @internal The snapshot being served, if any. */
  get currentSnapshot(): Snapshot | undefined {
    return this.copy.snapshot;
  }

  /** @internal Marks the copy stale (manual mode, after a failed refresh). */
  markStale(): void {
    this.copy.markStale();
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** @internal Evaluates with the current snapshot and counts what it served. */
  evaluate(key: string, ctx: EvaluationContext, expect: Expect): Evaluation {
    const s = this.copy.snapshot;
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
    return this.copy.state;
  }

  /** Why the state is `ERROR` (the server's message), if it is. */
  get stateMessage(): string | undefined {
    return this.copy.stateMessage;
  }

  /** The revision of the copy being served (0 before the first snapshot). */
  get revision(): number {
    return this.copy.snapshot?.revision ?? 0;
  }

  /** Keys of every flag held (not archived), sorted. */
  flagKeys(): string[] {
    return this.copy.snapshot?.flagKeys() ?? [];
  }

  /** The copy being served, serialized as a `flagwire.v1.Snapshot` (a bootstrap), if any. */
  snapshotBytes(): Uint8Array | undefined {
    const s = this.copy.snapshot;
    return s === undefined ? undefined : toBinary(SnapshotSchema, s.toProto());
  }

  /**
   * Resolves once a snapshot is applied (state `READY`); rejects with a `FlagwireError` on
   * timeout (`TIMEOUT`), a refused token (`UNAUTHORIZED`) or `close()` (`CLOSED`).
   */
  waitReady(timeoutMs = 5_000): Promise<void> {
    return this.copy.waitReady(timeoutMs, this.closing !== undefined, this.shutdown.signal);
  }

  /** Calls `listener` with every change (one per applied revision) or state transition. */
  on(event: "change", listener: (change: FlagChange) => void): Unsubscribe;
  on(event: "state", listener: (state: ClientState) => void): Unsubscribe;
  on(event: "change" | "state", listener: ((change: FlagChange) => void) | ((state: ClientState) => void)): Unsubscribe {
    return event === "change"
      ? this.copy.changeEvents.on(listener as (change: FlagChange) => void)
      : this.copy.stateEvents.on(listener as (state: ClientState) => void);
  }

  /** Every change from now on, as an async iterator (ends when the client closes). */
  changes(): AsyncIterableIterator<FlagChange> {
    return this.copy.changeEvents.iterate();
  }

  /** Every state transition from now on, as an async iterator (ends when the client closes). */
  states(): AsyncIterableIterator<ClientState> {
    return this.copy.stateEvents.iterate();
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
    return startMeasurement(this, flag, ctx);
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
    const s = this.copy.snapshot;
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
  // Reports and closing

  /**
   * Sends the metrics gathered so far now (they are also sent every flush interval and on
   * close). Resolves to whether they were delivered (or there was nothing to send); a window
   * the transport failed to deliver is kept for the next flush, one the server refused as
   * invalid is dropped.
   */
  flush(): Promise<boolean> {
    return this.reporter?.flush(this.revision) ?? Promise.resolve(true);
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
      await this.watch?.done;
      await this.reporter?.acknowledging;
      await this.watch?.persisted;
      this.copy.close();
      this.onClose?.();
    })();
    return this.closing;
  }
}
