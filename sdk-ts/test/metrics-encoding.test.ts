/**
 * Every case of tests/metrics/encoding.json through the SDK's own recorder: each scope's events
 * are recorded through a request scope's `ScopeMetrics` and attributed, when it closes, to the
 * flags the case says it was served; unscoped events go through `recordUnscoped` with their
 * flags; the window taken from a `Recorder` is compared with the case's `metrics` field by
 * field (in the order given, doubles with a relative tolerance of 1e-12, absent = zero).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { ExponentialHistogram, MetricSeries } from "../src/gen/flagwire/v1/metrics_pb.js";
import type { MetricEvent, MetricTarget } from "../src/metric-agg.js";
import { Recorder } from "../src/metrics.js";
import { recordUnscoped, ScopeMetrics, type Tracker } from "../src/tracking.js";

interface Served {
  flag: string;
  variant: string;
  cohort: string;
  rolloutId: string;
}
type Event = ({ track: string; value?: number } | { observe: string; value: number } | { outcome: string; ok: boolean }) & {
  flags?: Served[];
};
interface Case {
  description: string;
  scopes?: { served: Served[]; events: Event[] }[];
  unscoped?: Event[];
  metrics: Expected[];
}
/** A `MetricSeries` in protobuf JSON: uint64 as strings, defaults absent. */
interface Expected {
  name: string;
  flagKey?: string;
  variant?: string;
  cohort?: string;
  rolloutId?: string;
  histogram?: Record<string, unknown>;
  [field: string]: unknown;
}

const FILE = resolve(dirname(fileURLToPath(import.meta.url)), "../../tests/metrics/encoding.json");
const cases = (JSON.parse(readFileSync(FILE, "utf8")) as { cases: Case[] }).cases;

const STRINGS = ["name", "flagKey", "variant", "cohort", "rolloutId"] as const;
const COUNTS = ["count", "successes", "failures", "requests"] as const;
const DOUBLES = ["sum", "sumOfSquares", "requestSumOfSquares"] as const;
const HISTOGRAM_FIELDS = ["scale", "count", "sum", "zeroCount", "offset", "bucketCounts"];

/** Records `e` through a scope's tracker, the way application code would. */
function recordScoped(t: Tracker, e: Event): void {
  if ("track" in e) {
    if (e.value === undefined) t.track(e.track);
    else t.track(e.track, e.value);
  } else if ("observe" in e) t.observe(e.observe, e.value);
  else t.trackOutcome(e.outcome, e.ok);
}

function nameAndEvent(e: Event): [string, MetricEvent] {
  if ("track" in e) return [e.track, { kind: "track", value: e.value ?? 1 }];
  if ("observe" in e) return [e.observe, { kind: "observe", value: e.value }];
  return [e.outcome, { kind: "outcome", ok: e.ok }];
}

/** The window a recorder takes after the case's scopes and unscoped events. */
function run(c: Case): MetricSeries[] {
  const recorder = new Recorder();
  for (const scope of c.scopes ?? []) {
    const s = new ScopeMetrics(recorder.metrics, () => 0);
    for (const e of scope.events) recordScoped(s, e);
    s.close(scope.served);
  }
  for (const e of c.unscoped ?? []) {
    const served = new Map<string, MetricTarget>((e.flags ?? []).map((f) => [f.flag, f]));
    const [name, event] = nameAndEvent(e);
    recordUnscoped(recorder.metrics, (flag) => served.get(flag), name, event, { flags: [...served.keys()] });
  }
  const taken = recorder.take();
  expect(taken.dropped, "nothing dropped").toBe(0);
  return taken.metrics;
}

function closeTo(actual: number, expected: number, what: string): void {
  const tolerance = 1e-12 * Math.max(Math.abs(expected), Math.abs(actual));
  expect(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`).toBe(true);
}

function compareHistogram(actual: ExponentialHistogram | undefined, expected: Record<string, unknown> | undefined, at: string): void {
  if (expected === undefined) {
    expect(actual === undefined || actual.count === 0n, `${at}: no histogram expected`).toBe(true);
    return;
  }
  for (const k of Object.keys(expected)) expect(HISTOGRAM_FIELDS, `${at}.${k}: a field this test knows`).toContain(k);
  expect(actual, `${at}: a histogram`).toBeDefined();
  const h = actual!;
  expect(h.scale, `${at}.scale`).toBe(expected.scale ?? 0);
  expect(h.count, `${at}.count`).toBe(BigInt((expected.count as string | undefined) ?? "0"));
  closeTo(h.sum, (expected.sum as number | undefined) ?? 0, `${at}.sum`);
  expect(h.zeroCount, `${at}.zeroCount`).toBe(BigInt((expected.zeroCount as string | undefined) ?? "0"));
  const buckets = ((expected.bucketCounts as string[] | undefined) ?? []).map((n) => BigInt(n));
  expect(h.bucketCounts, `${at}.bucketCounts`).toEqual(buckets);
  if (buckets.length > 0) expect(h.offset, `${at}.offset`).toBe(expected.offset ?? 0);
}

function compare(actual: MetricSeries, expected: Expected, at: string): void {
  const known: string[] = [...STRINGS, ...COUNTS, ...DOUBLES, "histogram"];
  for (const k of Object.keys(expected)) expect(known, `${at}.${k}: a field this test knows`).toContain(k);
  for (const k of STRINGS) expect(actual[k], `${at}.${k}`).toBe(expected[k] ?? "");
  for (const k of COUNTS) expect(actual[k], `${at}.${k}`).toBe(BigInt((expected[k] as string | undefined) ?? "0"));
  for (const k of DOUBLES) closeTo(actual[k], (expected[k] as number | undefined) ?? 0, `${at}.${k}`);
  compareHistogram(actual.histogram, expected.histogram, `${at}.histogram`);
}

describe("tests/metrics/encoding.json", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThan(0);
  });
  it.each(cases.map((c) => [c.description, c] as const))("%s", (_description, c) => {
    const got = run(c);
    expect(got.map((m) => `${m.flagKey}/${m.variant}/${m.cohort}/${m.rolloutId}/${m.name}`)).toEqual(
      c.metrics.map((m) => `${m.flagKey ?? ""}/${m.variant ?? ""}/${m.cohort ?? ""}/${m.rolloutId ?? ""}/${m.name}`),
    );
    c.metrics.forEach((m, i) => {
      compare(got[i]!, m, `metrics[${i}]`);
    });
  });
});
