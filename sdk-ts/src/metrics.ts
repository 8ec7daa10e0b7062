/**
 * Usage and outcome metrics of one client between flushes: evaluations counted per
 * (flag, variant, cohort, rollout id, reason), measured outcomes (successes, errors and latency
 * in the scale-3 exponential histogram of `histogram.ts`), taken as `flagwire.v1.Series` for
 * `MetricsService.Report` and merged back when a flush fails. The rollout id is part of a
 * series' key so that a window spanning a rollout's start or rollback never mixes the
 * rollout's cohorts with what the flag served outside it.
 *
 * Next to the series, request scopes record one outcome per (release, cohort) they were served
 * (`scope.ts`), taken as `flagwire.v1.CohortOutcome` for the report's `cohortOutcomes`: what the
 * server judges releases on.
 *
 * Memory is bounded: at most `maxSeries` (flag, variant, cohort, rollout id) series are held;
 * further ones are dropped and counted in the report's `droppedSeries`. Series stay in place
 * between flushes and only their counters are taken, so a steady workload allocates little after
 * warm-up. (Release, cohort) keys are held at most `maxSeries` per window as well, counted in
 * `droppedSeries` beyond that; they are cleared with each take, since releases end and a
 * long-lived process would otherwise keep every release it ever saw.
 *
 * The team's own metrics (`track`, `trackOutcome`, `observe`) are a window of their own
 * (`metric-window.ts`), under the same cap and reported with the same take and merge-back.
 */

import { create } from "@bufbuild/protobuf";
import type { Reason } from "./gen/flagwire/v1/evaluation_pb.js";
import {
  type CohortOutcome,
  CohortOutcomeSchema,
  type MetricSeries,
  type Series,
  SeriesSchema,
} from "./gen/flagwire/v1/metrics_pb.js";
import { Histogram } from "./histogram.js";
import { MetricWindow } from "./metric-window.js";

/** Series held at most, by default (per client). */
export const MAX_SERIES = 10_000;

/** The OpenFeature names of `Reason` values, indexed by the enum's number. */
export const REASON_NAMES = ["UNKNOWN", "STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "PREREQUISITE_FAILED", "ERROR"] as const;

class Counters {
  reasons = [0, 0, 0, 0, 0, 0, 0];
  successes = 0;
  errors = 0;
  latency = new Histogram();

  isZero(): boolean {
    return this.successes === 0 && this.errors === 0 && this.reasons.every((n) => n === 0);
  }
}

/** Outcomes of one (release, cohort) in the current window. */
class Outcomes {
  successes = 0;
  errors = 0;
  latency = new Histogram();

  constructor(
    readonly releaseId: string,
    readonly cohort: string,
  ) {}
}

/** What `Recorder.take` hands a report. */
export interface Taken {
  /** Every non-zero series. */
  readonly series: Series[];
  /** Series, (release, cohort) keys and metric events dropped since the last take. */
  readonly dropped: number;
  /** One outcome aggregate per (release, cohort) recorded since the last take. */
  readonly cohortOutcomes: CohortOutcome[];
  /** The team's own metrics recorded since the last take (`MetricWindow.take`). */
  readonly metrics: MetricSeries[];
}

interface Entry {
  readonly variant: string;
  readonly cohort: string;
  readonly rolloutId: string;
  counters: Counters;
}

/** A served variant, as measurements and scopes remember it. */
export interface Served {
  readonly flag: string;
  readonly variant: string;
  readonly cohort: string;
  /** The rollout owning the split served ("" when none). */
  readonly rolloutId: string;
}

/** Collects one client's metrics between flushes. */
export class Recorder {
  // flag key → its series; a flag has few variants, so a short array beats a second map.
  private readonly flags = new Map<string, Entry[]>();
  private series = 0;
  private dropped = 0;
  // `${releaseId}\n${cohort}` → its outcomes this window. Unambiguous: the cohort, after the
  // last newline, is "canary" or "control" and holds none.
  private cohorts = new Map<string, Outcomes>();
  /** The team's own metrics, at most `maxSeries` keys per window. */
  readonly metrics: MetricWindow;

  constructor(private readonly maxSeries = MAX_SERIES) {
    this.metrics = new MetricWindow(maxSeries);
  }

  private counters(flag: string, variant: string, cohort: string, rolloutId: string): Counters | undefined {
    let entries = this.flags.get(flag);
    if (entries === undefined) {
      if (this.series >= this.maxSeries) {
        this.dropped++;
        return undefined;
      }
      entries = [];
      this.flags.set(flag, entries);
    }
    for (const e of entries) {
      if (e.variant === variant && e.cohort === cohort && e.rolloutId === rolloutId) return e.counters;
    }
    if (this.series >= this.maxSeries) {
      this.dropped++;
      return undefined;
    }
    this.series++;
    const e: Entry = { variant, cohort, rolloutId, counters: new Counters() };
    entries.push(e);
    return e.counters;
  }

  /** Counts one evaluation that served `variant`. */
  evaluation(flag: string, variant: string, cohort: string, rolloutId: string, reason: Reason): void {
    const c = this.counters(flag, variant, cohort, rolloutId);
    if (c !== undefined) c.reasons[reason % 7]!++;
  }

  /** Records one measured outcome that took `micros` microseconds. */
  outcome(served: Served, ok: boolean, micros: number): void {
    const c = this.counters(served.flag, served.variant, served.cohort, served.rolloutId);
    if (c === undefined) return;
    if (ok) c.successes++;
    else c.errors++;
    c.latency.record(micros);
  }

  private outcomes(releaseId: string, cohort: string): Outcomes | undefined {
    const key = `${releaseId}\n${cohort}`;
    let o = this.cohorts.get(key);
    if (o !== undefined) return o;
    if (this.cohorts.size >= this.maxSeries) {
      this.dropped++;
      return undefined;
    }
    o = new Outcomes(releaseId, cohort);
    this.cohorts.set(key, o);
    return o;
  }

  /** Records one request scope's outcome for a (release, cohort) it was served. */
  cohortOutcome(releaseId: string, cohort: string, ok: boolean, micros: number): void {
    const o = this.outcomes(releaseId, cohort);
    if (o === undefined) return;
    if (ok) o.successes++;
    else o.errors++;
    o.latency.record(micros);
  }

  /**
   * Takes every non-zero series (zeroing it in place), the dropped count, and the window's
   * (release, cohort) outcomes and metrics (clearing them).
   */
  take(): Taken {
    const taken = this.metrics.take();
    const dropped = this.dropped + taken.dropped;
    this.dropped = 0;
    const cohortOutcomes = [...this.cohorts.values()].map((o) =>
      create(CohortOutcomeSchema, {
        releaseId: o.releaseId,
        cohort: o.cohort,
        successes: BigInt(o.successes),
        errors: BigInt(o.errors),
        latencyUs: o.latency.toProto(),
      }),
    );
    this.cohorts = new Map();
    const series: Series[] = [];
    for (const [flag, entries] of this.flags) {
      for (const e of entries) {
        if (e.counters.isZero()) continue;
        const c = e.counters;
        e.counters = new Counters();
        series.push(
          create(SeriesSchema, {
            flagKey: flag,
            variant: e.variant,
            cohort: e.cohort,
            rolloutId: e.rolloutId,
            evaluations: c.reasons.flatMap((n, i) => (n > 0 ? [{ reason: REASON_NAMES[i]!, count: BigInt(n) }] : [])),
            successes: BigInt(c.successes),
            errors: BigInt(c.errors),
            latencyUs: c.latency.isEmpty() ? undefined : c.latency.toProto(),
          }),
        );
      }
    }
    return { series, dropped, cohortOutcomes, metrics: taken.metrics };
  }

  /** Puts back what a failed flush took, so nothing is lost while the server is away. */
  mergeBack(
    series: readonly Series[],
    dropped: number,
    cohortOutcomes: readonly CohortOutcome[] = [],
    metrics: readonly MetricSeries[] = [],
  ): void {
    this.dropped += dropped;
    this.metrics.mergeBack(metrics);
    for (const c of cohortOutcomes) {
      const o = this.outcomes(c.releaseId, c.cohort);
      if (o === undefined) continue;
      o.successes += Number(c.successes);
      o.errors += Number(c.errors);
      const h = c.latencyUs === undefined ? undefined : Histogram.fromProto(c.latencyUs);
      if (h !== undefined) o.latency.merge(h);
    }
    for (const s of series) {
      const c = this.counters(s.flagKey, s.variant, s.cohort, s.rolloutId);
      if (c === undefined) continue;
      for (const rc of s.evaluations) {
        const i = (REASON_NAMES as readonly string[]).indexOf(rc.reason);
        if (i >= 0) c.reasons[i]! += Number(rc.count);
      }
      c.successes += Number(s.successes);
      c.errors += Number(s.errors);
      const h = s.latencyUs === undefined ? undefined : Histogram.fromProto(s.latencyUs);
      if (h !== undefined) c.latency.merge(h);
    }
  }
}

