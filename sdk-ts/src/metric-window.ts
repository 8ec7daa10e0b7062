/**
 * One window of the team's own metrics: aggregates per (flag, variant, cohort, rollout id,
 * name), filled by attribution (`tests/metrics/README.md`, "Attribution") and taken as the
 * report's `metrics`.
 *
 * Attribution of a scope's (or an unscoped event's) metrics to what it was served: one series
 * per distinct (flag, variant, cohort, rollout id), for usage per variant, and one per distinct
 * (rollout id, cohort) whose cohort is "canary" or "control", for the release: once per
 * release cohort however many of the release's flags were read, as releases are judged per
 * request, not per flag.
 *
 * Memory is bounded like the series of `metrics.ts`: at most `maxKeys` aggregates per window,
 * the rest dropped and counted in the report's `droppedSeries`. Keys are cleared with each take,
 * as metric names and releases come and go and a long-lived process would otherwise keep every
 * one it ever saw.
 */

import type { MetricSeries } from "./gen/flagwire/v1/metrics_pb.js";
import { MetricAgg, type MetricTarget } from "./metric-agg.js";

interface Entry {
  readonly target: MetricTarget;
  readonly name: string;
  readonly agg: MetricAgg;
}

/** The cohort labels a release judges (the unlabelled rest of a split is no cohort). */
const RELEASE_COHORTS: ReadonlySet<string> = new Set(["canary", "control"]);

/**
 * The targets of an attribution to `served`: each distinct served (flag, variant, cohort,
 * rollout id) first, then each distinct release cohort among them.
 */
export function metricTargets(served: readonly MetricTarget[]): MetricTarget[] {
  const seen = new Set<string>();
  const out: MetricTarget[] = [];
  const add = (t: MetricTarget): void => {
    const k = JSON.stringify([t.flag, t.variant, t.cohort, t.rolloutId]);
    if (seen.has(k)) return;
    seen.add(k);
    out.push(t);
  };
  for (const s of served) add({ flag: s.flag, variant: s.variant, cohort: s.cohort, rolloutId: s.rolloutId });
  for (const s of served) {
    if (s.rolloutId !== "" && RELEASE_COHORTS.has(s.cohort)) add({ flag: "", variant: "", cohort: s.cohort, rolloutId: s.rolloutId });
  }
  return out;
}

function compareEntries(a: Entry, b: Entry): number {
  const x = [a.target.flag, a.target.variant, a.target.cohort, a.target.rolloutId, a.name];
  const y = [b.target.flag, b.target.variant, b.target.cohort, b.target.rolloutId, b.name];
  for (let i = 0; i < x.length; i++) {
    if (x[i]! < y[i]!) return -1;
    if (x[i]! > y[i]!) return 1;
  }
  return 0;
}

/** Collects one client's metrics between flushes. */
export class MetricWindow {
  // JSON of [flag, variant, cohort, rolloutId, name] → its aggregate: unambiguous whatever the
  // strings hold, and this is not the evaluation hot path.
  private entries = new Map<string, Entry>();
  private dropped = 0;

  /** A window holding at most `maxKeys` aggregates (the client's `maxSeries`). */
  constructor(private readonly maxKeys: number) {}

  /** Counts `n` events (or contributions) dropped: refused, unattributable, or over the cap. */
  drop(n = 1): void {
    this.dropped += n;
  }

  private aggregate(target: MetricTarget, name: string): MetricAgg | undefined {
    const key = JSON.stringify([target.flag, target.variant, target.cohort, target.rolloutId, name]);
    let e = this.entries.get(key);
    if (e !== undefined) return e.agg;
    if (this.entries.size >= this.maxKeys) return undefined;
    e = { target, name, agg: new MetricAgg() };
    this.entries.set(key, e);
    return e.agg;
  }

  /**
   * Adds `agg` (metric `name`) to every target of `served` (`metricTargets`). `requestTotal`
   * is set for a request scope's metric: each target then also counts the request and the
   * square of its total of `track` values. A target over the cap is dropped and counted.
   */
  attribute(served: readonly MetricTarget[], name: string, agg: MetricAgg, requestTotal?: number): void {
    for (const target of metricTargets(served)) {
      const a = this.aggregate(target, name);
      if (a === undefined) {
        this.dropped++;
        continue;
      }
      a.add(agg);
      if (requestTotal !== undefined) {
        a.requests++;
        a.requestSumOfSquares += requestTotal * requestTotal;
      }
    }
  }

  /**
   * Takes the window: every aggregate as a `MetricSeries`, ordered by (flag, variant, cohort,
   * rollout id, name), and the count dropped since the last take; then starts a new one.
   * An aggregate whose doubles overflowed is dropped (and counted) rather than sent, since the
   * server would refuse the whole report for it.
   */
  take(): { metrics: MetricSeries[]; dropped: number } {
    const entries = [...this.entries.values()].sort(compareEntries);
    this.entries = new Map();
    let dropped = this.dropped;
    this.dropped = 0;
    const metrics: MetricSeries[] = [];
    for (const e of entries) {
      if (e.agg.isFinite()) metrics.push(e.agg.toProto(e.target, e.name));
      else dropped++;
    }
    return { metrics, dropped };
  }

  /** Puts back what a failed flush took, so nothing is lost while the server is away. */
  mergeBack(metrics: readonly MetricSeries[]): void {
    for (const m of metrics) {
      const from = MetricAgg.fromProto(m);
      const target = { flag: m.flagKey, variant: m.variant, cohort: m.cohort, rolloutId: m.rolloutId };
      const a = from === undefined ? undefined : this.aggregate(target, m.name);
      if (a === undefined) this.dropped++;
      else a.add(from!);
    }
  }
}
