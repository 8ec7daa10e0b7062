/**
 * The team's own metrics as code records them: `track`, `trackOutcome`, `observe` and `timer`,
 * inside a request scope (`ScopeMetrics`, which `ScopedFlags` and a measurement hold) or outside
 * any (`recordUnscoped`, behind `FlagwireClient.track` and friends). None of them throws: an
 * event that cannot be recorded is dropped and counted in the report's `droppedSeries`.
 *
 * A scope's events wait in the scope and are attributed when it ends, to everything it was
 * served by then (a request often records before it has read its last flag), with the request
 * counted once per metric. Outside a scope there is nothing to wait for: the event names its
 * flags and a context, the flags are evaluated (not counted as evaluations: the caller did not
 * read them) and the event is attributed to what they serve.
 */

import { isMetricName, isValidEvent, MetricAgg, type MetricEvent, type MetricTarget } from "./metric-agg.js";
import type { MetricWindow } from "./metric-window.js";
import type { EvaluationContext } from "./types.js";

/**
 * Where an event outside any request scope belongs: the flags it is about and the context
 * they are evaluated for (OpenFeature's `track(event, context, details)` passes a context too).
 */
export interface TrackOptions {
  /** Who the event is about (default `{}`). */
  readonly context?: EvaluationContext;
  /** The flags whose served variants (and release cohorts) the event counts for. */
  readonly flags?: readonly string[];
}

/** A running timer; see `Tracker.timer`. */
export interface Timer {
  /**
   * Observes the milliseconds since the timer started (once; later calls record nothing) and
   * returns them.
   */
  stop(): number;
}

/**
 * Records the team's own metrics in a request scope: a `ScopedFlags` (`client.scope`,
 * `withFlags`) and a measurement (`client.measure`, `startMeasure`) are trackers. Events are
 * attributed when the scope ends, to every flag variant it was served and once to each release
 * cohort. None of the methods throws.
 */
export interface Tracker {
  /** An event, a count (1) or a value (a satisfaction score): count, sum and per-request total. */
  track(name: string, value?: number): void;
  /** A sub-operation's success or failure (a cache write): read as a rate. */
  trackOutcome(name: string, ok: boolean): void;
  /** A value of a distribution (a latency in ms; ≥ 0): read as quantiles. */
  observe(name: string, value: number): void;
  /** Starts timing: `stop()` observes the elapsed milliseconds under `name`. */
  timer(name: string): Timer;
}

/** A timer on `now` that hands the elapsed milliseconds to `observe` on its first `stop()`. */
export function startTimer(now: () => number, observe: (ms: number) => void): Timer {
  const started = now();
  let elapsed: number | undefined;
  return {
    stop: () => {
      if (elapsed !== undefined) return elapsed;
      elapsed = Math.max(0, now() - started);
      observe(elapsed);
      return elapsed;
    },
  };
}

/** One metric of one scope: its aggregate, and the request's total of `track` values. */
interface Pending {
  readonly agg: MetricAgg;
  tracked: number;
}

/**
 * Distinct metric names one scope may record. A request recording more is almost surely
 * building names from data (ids in names), and each name is multiplied by the flags served.
 */
export const MAX_SCOPE_METRICS = 256;

/**
 * The metrics one request scope recorded, attributed by `close` when the scope ends. Without a
 * window (metrics off, offline) it records nothing.
 */
export class ScopeMetrics implements Tracker {
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  /** Events go to `window` when the scope ends; timers read `now` (milliseconds). */
  constructor(
    private readonly window: MetricWindow | undefined,
    private readonly now: () => number,
  ) {}

  private record(name: string, e: MetricEvent): void {
    const w = this.window;
    if (w === undefined) return;
    if (this.closed || !isMetricName(name) || !isValidEvent(e)) {
      w.drop();
      return;
    }
    let p = this.pending.get(name);
    if (p === undefined) {
      if (this.pending.size >= MAX_SCOPE_METRICS) {
        w.drop();
        return;
      }
      p = { agg: new MetricAgg(), tracked: 0 };
      this.pending.set(name, p);
    }
    p.agg.record(e);
    if (e.kind === "track") p.tracked += e.value as number;
  }

  /** Holds a `track` event until the scope ends. */
  track(name: string, value: number = 1): void {
    this.record(name, { kind: "track", value });
  }

  /** Holds an outcome until the scope ends. */
  trackOutcome(name: string, ok: boolean): void {
    this.record(name, { kind: "outcome", ok });
  }

  /** Holds an observed value until the scope ends. */
  observe(name: string, value: number): void {
    this.record(name, { kind: "observe", value });
  }

  /** A timer on the scope's clock; stopped after the scope ended, it is dropped and counted. */
  timer(name: string): Timer {
    return startTimer(this.now, (ms) => {
      this.observe(name, ms);
    });
  }

  /**
   * Ends the scope: attributes every metric recorded to `served`, counting the request once
   * per metric. With nothing served there is nothing to attribute to: the events are dropped
   * and counted. Events recorded afterwards are dropped and counted (the request is over).
   */
  close(served: readonly MetricTarget[]): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.window;
    if (w === undefined) return;
    for (const [name, p] of this.pending) {
      if (served.length === 0) w.drop(p.agg.events);
      else w.attribute(served, name, p.agg, p.tracked);
    }
    this.pending.clear();
  }
}

/**
 * Records one event outside any request scope: attributed to what `opts.flags` serve for
 * `opts.context`, as evaluated by `serve` (which must not count an evaluation). Dropped and
 * counted when it is invalid or no flag serves anything (none named, unknown, not loaded).
 */
export function recordUnscoped(
  window: MetricWindow | undefined,
  serve: (flag: string, ctx: EvaluationContext) => MetricTarget | undefined,
  name: string,
  e: MetricEvent,
  opts: TrackOptions | undefined,
): void {
  if (window === undefined) return;
  try {
    const served: MetricTarget[] = [];
    const flags: unknown = opts?.flags;
    if (isMetricName(name) && isValidEvent(e) && Array.isArray(flags)) {
      const ctx = opts?.context ?? {};
      for (const flag of flags as unknown[]) {
        const s = typeof flag === "string" ? serve(flag, ctx) : undefined;
        if (s !== undefined) served.push(s);
      }
    }
    if (served.length === 0) {
      window.drop();
      return;
    }
    const agg = new MetricAgg();
    agg.record(e);
    window.attribute(served, name, agg);
  } catch {
    window.drop(); // never throw into the caller's code
  }
}
