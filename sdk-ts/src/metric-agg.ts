/**
 * The team's own metrics, one aggregate at a time: what an event (`track`, `trackOutcome`,
 * `observe`) adds, which events are refused, and the wire form (`flagwire.v1.MetricSeries`).
 * The rules are `tests/metrics/README.md`'s; `tests/metrics/encoding.json` pins them.
 *
 * Refusing happens here, before anything is aggregated, because the server refuses a whole
 * report for one bad series (a name it does not accept, a non-finite sum): one careless call
 * must not cost a window of every other metric.
 */

import { create } from "@bufbuild/protobuf";
import { type MetricSeries, MetricSeriesSchema } from "./gen/flagwire/v1/metrics_pb.js";
import { Histogram } from "./histogram.js";

/** One event of the team's own metrics, as the API hands it over (not yet checked). */
export type MetricEvent =
  | { readonly kind: "track"; readonly value: unknown }
  | { readonly kind: "observe"; readonly value: unknown }
  | { readonly kind: "outcome"; readonly ok: unknown };

/**
 * What a metric series is attributed to: a flag's variant (`flag` set, for usage), or a release
 * cohort (`flag` and `variant` empty, `cohort` "canary" or "control"; what gates judge).
 * A `Served` of `metrics.ts` is one.
 */
export interface MetricTarget {
  readonly flag: string;
  readonly variant: string;
  readonly cohort: string;
  readonly rolloutId: string;
}

// The server's rule (server/src/metrics/custom.rs): checked here so that it never refuses one.
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Whether `name` is a metric name the server accepts: lowercase letters, digits, `.`, `_`,
 * `-`, starting with a letter or digit, at most 64 characters.
 */
export function isMetricName(name: unknown): name is string {
  return typeof name === "string" && NAME.test(name);
}

/**
 * Whether `e` may be recorded: `track` a finite number, `observe` a finite number ≥ 0, an
 * outcome a boolean. Values whose square overflows are refused too: their sum of squares
 * would be infinite, and the server refuses a report with an infinite sum.
 */
export function isValidEvent(e: MetricEvent): boolean {
  if (e.kind === "outcome") return typeof e.ok === "boolean";
  const v = e.value;
  if (typeof v !== "number" || !Number.isFinite(v * v)) return false; // NaN and ±Infinity too
  return e.kind === "track" || v >= 0;
}

/** Histogram values are thousandths of the metric's unit: milliseconds land in µs buckets. */
function thousandths(v: number): number {
  return Math.floor(v * 1000 + 0.5); // halves up; v is never negative
}

/** The aggregate of one metric for one target: the fields of a `MetricSeries`. */
export class MetricAgg {
  /** Values recorded (`track`, `observe`). */
  count = 0;
  /** Their sum: a mean's numerator. */
  sum = 0;
  /** The sum of their squares: a mean's variance, for the judge's intervals. */
  sumOfSquares = 0;
  /** `observe`d values in thousandths of the unit (created by the first one). */
  histogram: Histogram | undefined;
  /** `trackOutcome(name, true)` calls. */
  successes = 0;
  /** `trackOutcome(name, false)` calls. */
  failures = 0;
  /** Request scopes that recorded the metric (0 outside scopes). */
  requests = 0;
  /** The sum of the squares of each request's `track` total: a per-request count's variance. */
  requestSumOfSquares = 0;

  /** Adds one event that `isValidEvent` accepted. */
  record(e: MetricEvent): void {
    if (e.kind === "outcome") {
      if (e.ok === true) this.successes++;
      else this.failures++;
      return;
    }
    const v = e.value as number;
    this.count++;
    this.sum += v;
    this.sumOfSquares += v * v;
    if (e.kind === "observe") (this.histogram ??= new Histogram()).record(thousandths(v));
  }

  /** Adds everything `other` holds. */
  add(other: MetricAgg): void {
    this.count += other.count;
    this.sum += other.sum;
    this.sumOfSquares += other.sumOfSquares;
    if (other.histogram !== undefined) (this.histogram ??= new Histogram()).merge(other.histogram);
    this.successes += other.successes;
    this.failures += other.failures;
    this.requests += other.requests;
    this.requestSumOfSquares += other.requestSumOfSquares;
  }

  /** How many events it holds (values and outcomes). */
  get events(): number {
    return this.count + this.successes + this.failures;
  }

  /** Whether the server would accept its doubles (a long window of huge values can overflow). */
  isFinite(): boolean {
    return (
      Number.isFinite(this.sum) &&
      Number.isFinite(this.sumOfSquares) &&
      Number.isFinite(this.requestSumOfSquares) &&
      (this.histogram === undefined || Number.isFinite(this.histogram.sum))
    );
  }

  /** The wire form for `target` and `name`. */
  toProto(target: MetricTarget, name: string): MetricSeries {
    return create(MetricSeriesSchema, {
      name,
      flagKey: target.flag,
      variant: target.variant,
      cohort: target.cohort,
      rolloutId: target.rolloutId,
      count: BigInt(this.count),
      sum: this.sum,
      sumOfSquares: this.sumOfSquares,
      histogram: this.histogram?.toProto(),
      successes: BigInt(this.successes),
      failures: BigInt(this.failures),
      requests: BigInt(this.requests),
      requestSumOfSquares: this.requestSumOfSquares,
    });
  }

  /** From the wire form (a window merged back); `undefined` for a histogram that is not valid. */
  static fromProto(m: MetricSeries): MetricAgg | undefined {
    const a = new MetricAgg();
    if (m.histogram !== undefined) {
      a.histogram = Histogram.fromProto(m.histogram);
      if (a.histogram === undefined) return undefined;
    }
    a.count = Number(m.count);
    a.sum = m.sum;
    a.sumOfSquares = m.sumOfSquares;
    a.successes = Number(m.successes);
    a.failures = Number(m.failures);
    a.requests = Number(m.requests);
    a.requestSumOfSquares = m.requestSumOfSquares;
    return a;
  }
}
