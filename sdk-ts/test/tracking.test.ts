/**
 * The team's own metrics through the public API, against an in-memory FlagService and
 * MetricsService (`support/releases.ts`): attribution when a scope ends (per flag variant, once
 * per release cohort, requests and their totals), measurements and `withFlags` as scopes,
 * unscoped events with `{ context, flags }` (evaluated, not counted), what is dropped and
 * counted, timers on an injected clock, the cap, merge-back, and rounding into the histogram.
 */
import { describe, expect, it } from "vitest";
import { bucketIndex, ShortLivedFlags, type TrackOptions, withFlags } from "@flagwire/sdk";
import type { MetricSeries, ReportRequest } from "../src/gen/flagwire/v1/metrics_pb.js";
import { MetricAgg } from "../src/metric-agg.js";
import { MAX_SCOPE_METRICS } from "../src/tracking.js";
import { canaryA, controlA, fakeServer, harness, user, WAIT } from "./support/releases.js";

/** [count, sum, successes, failures, requests, requestSumOfSquares] of one series. */
type Row = [number, number, number, number, number, number];

/** A report's metrics as `flag/variant/cohort/rollout/name` → Row, checking they come sorted. */
function table(metrics: readonly MetricSeries[]): Record<string, Row> {
  const keys = metrics.map((m) => [m.flagKey, m.variant, m.cohort, m.rolloutId, m.name].join("/"));
  const sorted = metrics.map((m) => [m.flagKey, m.variant, m.cohort, m.rolloutId, m.name]).sort((a, b) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return 0;
  });
  expect(keys, "sorted by (flag, variant, cohort, rollout, name)").toEqual(sorted.map((k) => k.join("/")));
  return Object.fromEntries(
    metrics.map((m, i) => [
      keys[i]!,
      [Number(m.count), m.sum, Number(m.successes), Number(m.failures), Number(m.requests), m.requestSumOfSquares] as Row,
    ]),
  );
}

function only(reports: readonly ReportRequest[]): ReportRequest {
  expect(reports).toHaveLength(1);
  return reports[0]!;
}

describe("inside a request scope", () => {
  it("events are attributed when it ends: per flag variant, once per release cohort, one request per metric", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const ctx = { targetingKey: canaryA };
    await client.scope((f) => {
      f.track("hits"); // before any flag is read: still this request's
      for (const flag of ["a1", "a2", "p"]) f.getBoolean(flag, ctx, false);
      f.track("hits", 2);
      f.trackOutcome("mem0_write", false);
      client.track("hits"); // the client itself, without flags, is outside the scope: dropped
    });
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    const hits: Row = [2, 3, 0, 0, 1, 9];
    const write: Row = [0, 0, 0, 1, 1, 0];
    expect(table(r.metrics)).toEqual({
      "//canary/rel-a/hits": hits,
      "//canary/rel-a/mem0_write": write,
      "a1/on/canary/rel-a/hits": hits,
      "a1/on/canary/rel-a/mem0_write": write,
      "a2/on/canary/rel-a/hits": hits,
      "a2/on/canary/rel-a/mem0_write": write,
      "p/on///hits": hits,
      "p/on///mem0_write": write,
    });
    expect(r.droppedSeries).toBe(1n);
    // Tracking counts no evaluation: each flag was read once.
    expect(r.series.map((s) => [s.flagKey, Number(s.evaluations[0]!.count)])).toEqual([["a1", 1], ["a2", 1], ["p", 1]]);
    await client.close();
  });

  it("measure and startMeasure are scopes of one flag, and a flag measured inside a scope is the scope's", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    await client.measure("a1", { targetingKey: controlA }, (variant, t) => {
      expect(variant).toBe("off");
      t.track("items", 3);
      t.observe("render_ms", 12);
    });
    const inB = user(undefined, "canary");
    const m = client.startMeasure("b1", { targetingKey: inB });
    m.trackOutcome("saved", true);
    m.finish(true);
    m.track("late"); // after it finished: dropped
    const ctx = { targetingKey: canaryA };
    await client.scope(async (f) => {
      f.getBoolean("p", ctx, false);
      await f.measure("a3", ctx, () => {
        f.track("inner");
      });
    });
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    const inner: Row = [1, 1, 0, 0, 1, 1];
    expect(table(r.metrics)).toEqual({
      "//canary/rel-a/inner": inner,
      "//canary/rel-b/saved": [0, 0, 1, 0, 1, 0],
      "//control/rel-a/items": [1, 3, 0, 0, 1, 9],
      "//control/rel-a/render_ms": [1, 12, 0, 0, 1, 0],
      "a1/off/control/rel-a/items": [1, 3, 0, 0, 1, 9],
      "a1/off/control/rel-a/render_ms": [1, 12, 0, 0, 1, 0],
      "a3/on/canary/rel-a/inner": inner,
      "b1/on/canary/rel-b/saved": [0, 0, 1, 0, 1, 0],
      "p/on///inner": inner,
    });
    expect(r.droppedSeries).toBe(1n);
    await client.close();
  });
});

describe("outside any scope", () => {
  const opts: TrackOptions = { context: { targetingKey: controlA }, flags: ["a1", "p", "a1", "nope"] };

  it("names its flags and a context: attributed to what they serve, no request, no evaluation counted", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    client.track("signup", 2, opts);
    client.trackOutcome("payment", true, opts);
    client.observe("queue_ms", 0, opts);
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    expect(table(r.metrics)).toEqual({
      "//control/rel-a/payment": [0, 0, 1, 0, 0, 0],
      "//control/rel-a/queue_ms": [1, 0, 0, 0, 0, 0],
      "//control/rel-a/signup": [1, 2, 0, 0, 0, 0],
      "a1/off/control/rel-a/payment": [0, 0, 1, 0, 0, 0],
      "a1/off/control/rel-a/queue_ms": [1, 0, 0, 0, 0, 0],
      "a1/off/control/rel-a/signup": [1, 2, 0, 0, 0, 0],
      "p/on///payment": [0, 0, 1, 0, 0, 0],
      "p/on///queue_ms": [1, 0, 0, 0, 0, 0],
      "p/on///signup": [1, 2, 0, 0, 0, 0],
    });
    expect(r.metrics.find((m) => m.name === "queue_ms")!.histogram).toMatchObject({ count: 1n, zeroCount: 1n, bucketCounts: [] });
    expect(r.series).toEqual([]);
    expect(r.droppedSeries).toBe(0n);
    await client.close();
  });

  it("works in short-lived mode: withFlags' scope, and the loaded client with flags, flushed per invocation", async () => {
    const { transport, state } = fakeServer();
    const flags = new ShortLivedFlags({ transport, token: "t" });
    const handler = withFlags(flags, (_ctx: unknown, n: number, f) => {
      f.getBoolean("a1", { targetingKey: canaryA }, false);
      for (let i = 0; i < n; i++) f.track("hits");
      return n;
    });
    expect(await handler(null, 2)).toBe(2);
    expect(table(only(state.reports).metrics)).toEqual({
      "//canary/rel-a/hits": [2, 2, 0, 0, 1, 4],
      "a1/on/canary/rel-a/hits": [2, 2, 0, 0, 1, 4],
    });
    const c = await flags.load();
    c.track("signup", 1, opts);
    expect(await flags.flush()).toBe(true);
    expect(state.reports).toHaveLength(2);
    expect(Object.keys(table(state.reports[1]!.metrics))).toEqual(["//control/rel-a/signup", "a1/off/control/rel-a/signup", "p/on///signup"]);
    expect(state.reports[1]!.series).toEqual([]);
  });
});

describe("what cannot be recorded", () => {
  it("is dropped and counted, never thrown: bad names and values, no flags, a scope that ended or served nothing", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const opts: TrackOptions = { context: { targetingKey: canaryA }, flags: ["p"] };
    const bad: (() => void)[] = [
      () => { client.track("Bad", 1, opts); },
      () => { client.track("", 1, opts); },
      () => { client.track("x".repeat(65), 1, opts); },
      () => { client.track("_lead", 1, opts); },
      () => { client.track(42 as unknown as string, 1, opts); },
      () => { client.track("ok", Number.NaN, opts); },
      () => { client.track("ok", Number.POSITIVE_INFINITY, opts); },
      () => { client.track("ok", "3" as unknown as number, opts); },
      () => { client.track("ok", null as unknown as number, opts); },
      () => { client.track("ok", 1e155, opts); }, // its square is not finite
      () => { client.observe("ok", -1, opts); },
      () => { client.observe("ok", Number.NaN, opts); },
      () => { client.trackOutcome("ok", "yes" as unknown as boolean, opts); },
      () => { client.track("ok"); },
      () => { client.track("ok", 1, { context: opts.context! }); },
      () => { client.track("ok", 1, { flags: [] }); },
      () => { client.track("ok", 1, { flags: ["nope"] }); },
      () => { client.track("ok", 1, { flags: "p" as unknown as string[] }); },
      () => { client.track("ok", 1, null as unknown as TrackOptions); },
    ];
    for (const call of bad) expect(call).not.toThrow();
    let ended: { track(name: string): void; timer(name: string): { stop(): number } } | undefined;
    let timer: { stop(): number } | undefined;
    await client.scope((f) => {
      f.getBoolean("p", opts.context!, false);
      f.track("Nope");
      f.observe("ok", -0.5);
      timer = f.timer("slow_ms");
      ended = f;
    });
    ended!.track("late");
    timer!.stop();
    await client.scope((f) => {
      f.track("a"); // a scope that read no flag: nothing to attribute to
      f.trackOutcome("b", true);
    });
    // Valid edge cases are kept: a 64-character name, a negative tracked value, observe(0).
    client.track("a.b_c-9" + "x".repeat(57), -2, opts);
    client.observe("zero", 0, opts);
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    expect(r.droppedSeries).toBe(BigInt(bad.length + 2 + 2 + 2));
    expect(r.metrics.map((m) => m.name)).toEqual(["a.b_c-9" + "x".repeat(57), "zero"]);
    await client.close();
  });

  it("a window whose sums overflowed is not sent (the server would refuse the report); the rest is", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const opts: TrackOptions = { context: { targetingKey: "u" }, flags: ["p"] };
    client.track("big", 1e154, opts);
    client.track("big", 1e154, opts); // sumOfSquares 2e308: infinite
    client.track("small", 1, opts);
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    expect(r.metrics.map((m) => m.name)).toEqual(["small"]);
    expect(r.droppedSeries).toBe(1n);
    await client.close();
  });

  it("nothing is recorded with metrics off", async () => {
    const { client, state } = harness({ metrics: false });
    await client.waitReady(WAIT);
    await client.scope((f) => {
      f.getBoolean("p", { targetingKey: "u" }, false);
      f.track("hits");
    });
    client.track("hits", 1, { flags: ["p"] });
    expect(await client.flush()).toBe(true);
    expect(state.reports).toEqual([]);
    await client.close();
  });
});

describe("timers", () => {
  it("observe the elapsed milliseconds of the injected clock, once", async () => {
    let now = 1_000;
    const { client, state } = harness({ clock: () => now });
    await client.waitReady(WAIT);
    const ctx = { targetingKey: "u" };
    await client.scope((f) => {
      f.getBoolean("p", ctx, false);
      const t = f.timer("fast_path_ms");
      now += 42.25;
      expect(t.stop()).toBe(42.25);
      now += 100;
      expect(t.stop()).toBe(42.25); // once
    });
    const u = client.timer("job_ms", { context: ctx, flags: ["p"] });
    now += 7;
    expect(u.stop()).toBe(7);
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    expect(table(r.metrics)).toEqual({ "p/on///fast_path_ms": [1, 42.25, 0, 0, 1, 0], "p/on///job_ms": [1, 7, 0, 0, 0, 0] });
    expect(r.metrics[0]!.histogram).toMatchObject({ scale: 3, count: 1n, sum: 42_250, offset: bucketIndex(42_250), bucketCounts: [1n] });
    expect(r.metrics[1]!.histogram).toMatchObject({ count: 1n, sum: 7_000, offset: bucketIndex(7_000) });
    // The scope's own outcome is timed on the same clock: 142.25 ms.
    expect(r.series[0]!.latencyUs).toMatchObject({ offset: bucketIndex(142_250) });
    await client.close();
  });

  it("observed values become thousandths of the unit, halves rounded up", () => {
    const a = new MetricAgg();
    for (const v of [0.0625, 0.0624, 0.0005, 2.5]) a.record({ kind: "observe", value: v });
    // 62.5 → 63, 62.4 → 62, 0.5 → 1, 2500.
    expect(a.histogram!.sum).toBe(63 + 62 + 1 + 2500);
    expect(a.histogram!.zeroCount).toBe(0);
  });
});

describe("bounded memory", () => {
  it("metric keys share the series cap per window; over it they are dropped and counted", async () => {
    const { client, state } = harness({ maxSeries: 4 });
    await client.waitReady(WAIT);
    const scope = (name: string) =>
      client.scope((f) => {
        for (const flag of ["a1", "a2"]) f.getBoolean(flag, { targetingKey: canaryA }, false);
        f.track("x");
        f.track(name);
      });
    await scope("y"); // x: a1, a2, the cohort; y: a1 only
    expect(await client.flush()).toBe(true);
    expect(Object.keys(table(state.reports[0]!.metrics))).toEqual(["//canary/rel-a/x", "a1/on/canary/rel-a/x", "a1/on/canary/rel-a/y", "a2/on/canary/rel-a/x"]);
    expect(state.reports[0]!.droppedSeries).toBe(2n);
    await scope("x"); // a new window has room again
    expect(await client.flush()).toBe(true);
    expect(state.reports[1]!.metrics).toHaveLength(3);
    expect(state.reports[1]!.droppedSeries).toBe(0n);
    await client.close();
  });

  it(`a scope holds at most ${MAX_SCOPE_METRICS} distinct names`, async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    await client.scope((f) => {
      f.getBoolean("p", { targetingKey: "u" }, false);
      for (let i = 0; i < MAX_SCOPE_METRICS + 10; i++) f.track(`m${i}`);
    });
    expect(await client.flush()).toBe(true);
    expect(state.reports[0]!.metrics).toHaveLength(MAX_SCOPE_METRICS);
    expect(state.reports[0]!.droppedSeries).toBe(10n);
    await client.close();
  });
});

describe("a failed report", () => {
  it("is merged back into the next window, and dropped when the server refuses it as invalid", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const ctx = { targetingKey: "u" };
    const request = (value: number) =>
      client.scope((f) => {
        f.getBoolean("p", ctx, false);
        f.track("x", value);
      });
    state.mode = "down";
    await request(2);
    client.observe("lat", 5, { context: ctx, flags: ["p"] });
    expect(await client.flush()).toBe(false);
    await request(3);
    state.mode = "up";
    expect(await client.flush()).toBe(true);
    const r = only(state.reports);
    expect(table(r.metrics)).toEqual({ "p/on///lat": [1, 5, 0, 0, 0, 0], "p/on///x": [2, 5, 0, 0, 2, 13] });
    expect(r.metrics[0]!.histogram).toMatchObject({ count: 1n, sum: 5_000 });
    expect(r.metrics[1]!.sumOfSquares).toBe(13);

    state.mode = "invalid";
    await request(1);
    expect(await client.flush()).toBe(false);
    state.mode = "up";
    expect(await client.flush()).toBe(true); // nothing left to send
    expect(state.reports).toHaveLength(1);
    await client.close();
  });
});
