/**
 * Request scopes: the flags one request read, and the one outcome the request had.
 *
 * A scope remembers two things about the evaluations made through it: every (flag, variant,
 * cohort, rollout id) series it was served, which get the request's outcome each (per-flag
 * usage, as before releases), and every distinct (release, cohort) pair it was served, which get
 * ONE outcome each however many of the release's flags the request read. Releases are judged on
 * the latter: a request that read three flags of a release is one request of its cohort, not
 * three (`flagwire.v1.CohortOutcome`, sent in each report's `cohortOutcomes`).
 *
 * A scope is also where the request's own metrics wait (`track`, `trackOutcome`, `observe`,
 * `timer`, through `ScopeMetrics`): when it ends they are attributed to every series it was
 * served (including flags measured inside it) and once to each release cohort.
 *
 * The client (`FlagwireClient.scope`, `startScope`, `measure`) and the short-lived wrapper
 * (`withFlags`) open scopes; this module knows the client only through `ScopeHost`, so that the
 * client can create scopes without an import cycle.
 */

import type { Evaluation } from "./engine/evaluation.js";
import type { MetricWindow } from "./metric-window.js";
import type { Served } from "./metrics.js";
import { type Expect, FlagReader } from "./reader.js";
import { ScopeMetrics, type Timer, type Tracker } from "./tracking.js";
import type { ClientState, EvaluationContext } from "./types.js";

/** One cohort of one release, as a scope was served it. */
export interface ReleaseCohort {
  /** The release (the `rolloutId` of the split that served the cohort). */
  readonly releaseId: string;
  /** `"canary"` or `"control"`. */
  readonly cohort: string;
}

/**
 * The release cohort an evaluation served, if any: a result with a rollout id and a cohort
 * label of `"canary"` or `"control"` (the unlabelled rest of a release's split, fixed variants
 * and errors are no cohort).
 */
export function releaseCohortOf(r: { readonly rolloutId: string; readonly cohort: string }): ReleaseCohort | undefined {
  if (r.rolloutId === "" || (r.cohort !== "canary" && r.cohort !== "control")) return undefined;
  return { releaseId: r.rolloutId, cohort: r.cohort };
}

/** Adds `pair` to `pairs` unless it is there (a request touches few releases: a scan is enough). */
export function addReleaseCohort(pairs: ReleaseCohort[], pair: ReleaseCohort | undefined): void {
  if (pair === undefined) return;
  if (pairs.some((p) => p.releaseId === pair.releaseId && p.cohort === pair.cohort)) return;
  pairs.push(pair);
}

/** What a scope needs from the client that owns it (a `FlagwireClient` is one). */
export interface ScopeHost {
  /** Evaluates and counts the evaluation; never throws. */
  evaluate(key: string, ctx: EvaluationContext, expect: Expect): Evaluation;
  /**
   * Records one outcome that took `elapsedMs` against every series in `served` and, once each,
   * against every release cohort in `releases`.
   */
  recordOutcome(served: readonly Served[], releases: readonly ReleaseCohort[], ok: boolean, elapsedMs: number): void;
  /** The state of the copy being read. */
  readonly state: ClientState;
  /** Where a scope's own metrics go when it ends (`undefined`: metrics are off). */
  readonly metricWindow: MetricWindow | undefined;
  /** The clock of durations and timers, in milliseconds. */
  now(): number;
}

/**
 * One request's view of the flags: the usual getters, remembering what they served, so that the
 * request's outcome (`finish`, or the wrapper that opened the scope) is recorded against every
 * flag read and once per release cohort. Timing starts when the scope is opened.
 *
 * ```ts
 * await client.scope(async (f) => {
 *   const ctx = { targetingKey: user };
 *   const fast = f.getBoolean("fast-path", ctx, false);
 *   const cache = f.getString("cache-mode", ctx, "off");
 *   return handle(fast, cache); // a throw is the request's error outcome
 * });
 * ```
 *
 * It is a `Tracker` too: `f.track("hits")`, `f.trackOutcome("mem0_write", ok)`,
 * `f.observe("fast_path_ms", ms)` and `f.timer(name)` wait in the scope until it ends.
 */
export class ScopedFlags extends FlagReader implements Tracker {
  private readonly seen: Served[] = [];
  private readonly cohorts: ReleaseCohort[] = [];
  // Flags measured inside the scope (`measure`): the request was served them, so its metrics
  // count for them, though their outcomes are the inner measurements'.
  private readonly measured: Served[] = [];
  private readonly metrics: ScopeMetrics;
  private readonly started: number;
  private finished = false;

  /** A scope over `host` (a `FlagwireClient`); `client.scope`, `client.startScope` and `withFlags` open them. */
  constructor(private readonly host: ScopeHost) {
    super();
    this.started = host.now();
    this.metrics = new ScopeMetrics(host.metricWindow, () => host.now());
  }

  protected evaluateFlag(key: string, ctx: EvaluationContext, expect: Expect): Evaluation {
    const r = this.host.evaluate(key, ctx, expect);
    const variant = r.variant?.key;
    if (variant === undefined) return r;
    if (!this.seen.some((s) => s.flag === key && s.variant === variant && s.cohort === r.cohort && s.rolloutId === r.rolloutId)) {
      this.seen.push({ flag: key, variant, cohort: r.cohort, rolloutId: r.rolloutId });
    }
    addReleaseCohort(this.cohorts, releaseCohortOf(r));
    return r;
  }

  /** The (flag, variant, cohort, rollout id) series served so far in this scope. */
  get served(): readonly Served[] {
    return this.seen;
  }

  /** The distinct (release, cohort) pairs served so far in this scope, first seen first. */
  get releases(): readonly ReleaseCohort[] {
    return this.cohorts;
  }

  /** The state of the underlying copy (`READY`, `STALE`, `CONNECTING` before any load). */
  get state(): ClientState {
    return this.host.state;
  }

  /**
   * Measures an inner outcome under `flag` (like `FlagwireClient.measure`): the duration of
   * `work` and whether it threw are recorded against the variant served. The flag's release
   * cohort joins this scope's (the request's one outcome counts it), and the inner outcome is
   * not a release outcome of its own, so a request is never counted twice for a release.
   */
  async measure<T>(flag: string, ctx: EvaluationContext, work: (variant: string) => T | Promise<T>): Promise<T> {
    let r: Evaluation | undefined;
    try {
      r = this.host.evaluate(flag, ctx, undefined);
    } catch {
      r = undefined;
    }
    const variant = r?.variant?.key ?? "";
    const served: Served[] = r === undefined || variant === "" ? [] : [{ flag, variant, cohort: r.cohort, rolloutId: r.rolloutId }];
    if (r !== undefined && variant !== "") addReleaseCohort(this.cohorts, releaseCohortOf(r));
    this.measured.push(...served);
    const started = this.host.now();
    let ok = false;
    try {
      const result = await work(variant);
      ok = true;
      return result;
    } finally {
      this.host.recordOutcome(served, [], ok, this.host.now() - started);
    }
  }

  /** Records an event of metric `name` (a count, or a value) for this request; see `Tracker`. */
  track(name: string, value: number = 1): void {
    this.metrics.track(name, value);
  }

  /** Records a sub-operation's success or failure for this request; see `Tracker`. */
  trackOutcome(name: string, ok: boolean): void {
    this.metrics.trackOutcome(name, ok);
  }

  /** Records a value of a distribution (≥ 0, e.g. milliseconds) for this request; see `Tracker`. */
  observe(name: string, value: number): void {
    this.metrics.observe(name, value);
  }

  /** Starts timing something in this request: `stop()` observes the elapsed milliseconds. */
  timer(name: string): Timer {
    return this.metrics.timer(name);
  }

  /**
   * Ends the scope with the request's outcome: its duration since the scope was opened, and
   * `ok`, recorded against every series served and once per release cohort. Only the first
   * call counts; a scope never finished records no outcome (its evaluations are still counted).
   * The metrics recorded in it are attributed now; ones recorded later are dropped and counted.
   */
  finish(ok: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.metrics.close([...this.seen, ...this.measured]);
    this.host.recordOutcome(this.seen, this.cohorts, ok, this.host.now() - this.started);
  }
}
