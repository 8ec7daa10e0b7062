/**
 * The team's own metrics against the real server binary, over both transports: reports carrying
 * `metrics` are accepted (`flush()` resolves true only then), `MetricsService.GetUsage` rows
 * carry them per flag variant as `MetricStat`s (a rate for outcomes, median/p95/p99 for observed
 * values, else the mean), unscoped events with flags reach the flag's row without counting an
 * evaluation, and a two-flag release's closed windows hold each cohort's metrics counted once
 * per request scope (from the live client and from `withFlags`, the fetch-only runtime's way).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { FlagwireClient, Histogram, type ScopedFlags, ShortLivedFlags, withFlags } from "@flagwire/sdk";
import type { MetricSeries, MetricStat } from "../src/gen/flagwire/v1/metrics_pb.js";
import { type Release, ReleaseState } from "../src/gen/flagwire/v1/release_pb.js";
import { type Admin, eventually, integration, TestServer, TRANSPORTS, transportFor } from "./support/server.js";

const WAIT = 10_000;
const RELEASE_FLAGS = ["r1", "r2"];

/** The quantile `q` of `values` (ms) as the server reads it: its bucket's upper bound, in ms. */
function quantileMs(values: readonly number[], q: number): number {
  const h = new Histogram();
  for (const v of values) h.record(v * 1000);
  return h.quantile(q)!.upperBoundUs / 1000;
}

function stat(stats: readonly MetricStat[], name: string): MetricStat {
  const s = stats.find((m) => m.name === name);
  expect(s, `a MetricStat named ${name} in ${stats.map((m) => m.name).join(",")}`).toBeDefined();
  return s!;
}

/** One cohort's metric summed over a release's closed windows. */
function windowSum(release: Release, cohort: string, name: string) {
  const sum = { count: 0n, sum: 0, successes: 0n, failures: 0n, requests: 0n };
  const all: MetricSeries[] = release.windows.flatMap((w) => w.metrics);
  for (const m of all.filter((x) => x.cohort === cohort && x.name === name)) {
    sum.count += m.count;
    sum.sum += m.sum;
    sum.successes += m.successes;
    sum.failures += m.failures;
    sum.requests += m.requests;
  }
  return sum;
}

integration.each(TRANSPORTS)("the team's own metrics over %s", (kind) => {
  let server: TestServer;
  let admin: Admin;
  let token: string;
  let release: Release;

  beforeAll(async () => {
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    for (const key of ["f", ...RELEASE_FLAGS]) {
      await admin.boolFlag(key, "production");
      await admin.set(key, "production", true);
    }
    token = await admin.sdkToken("svc", "production");
    release = await admin.startRelease({
      name: "metrics",
      environment: "production",
      flags: RELEASE_FLAGS.map((flagKey) => ({ flagKey, baselineVariant: "off" })),
      stages: [
        {
          name: "half",
          audience: { kind: { case: "basisPoints", value: 5_000 } },
          variants: Object.fromEntries(RELEASE_FLAGS.map((k) => [k, "on"])),
          minDuration: { seconds: 3_600n },
        },
      ],
      policy: { window: { seconds: 1n } },
    });
    // Paused: windows are still collected, and the judge decides nothing mid-test.
    expect((await admin.pauseRelease(release.id)).state).toBe(ReleaseState.PAUSED);
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });

  function client(): FlagwireClient {
    const transport = transportFor(kind, server.url);
    return new FlagwireClient({ transport, token, metricsFlushIntervalMs: 3_600_000, onClose: () => transport.close?.() });
  }

  it("GetUsage rows carry a rate, a distribution's quantiles and a mean per flag variant", async () => {
    const c = client();
    await c.waitReady(WAIT);
    const latencies = [10, 20, 30, 40];
    const scores = [4, 5, 3, 4];
    for (let i = 0; i < 4; i++) {
      await c.scope((f) => {
        f.getBoolean("f", { targetingKey: `user-${i}` }, false);
        f.trackOutcome("mem0_write", i !== 3);
        f.observe("fast_path_ms", latencies[i]!);
        f.track("satisfaction", scores[i]);
      });
    }
    c.track("signup", 2, { context: { targetingKey: "user-9" }, flags: ["f"] });
    expect(await c.flush()).toBe(true); // accepted, not refused as invalid
    await c.close();

    const rows = await admin.usage("production", "f");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ variant: "on", evaluations: 4n, successes: 4n });
    const stats = rows[0]!.metrics;
    expect(stats.map((m) => m.name)).toEqual(["fast_path_ms", "mem0_write", "satisfaction", "signup"]);
    expect(stat(stats, "mem0_write")).toMatchObject({ n: 4n, value: 0.75, p95: 0, p99: 0 });
    const fast = stat(stats, "fast_path_ms");
    expect(fast.n).toBe(4n);
    expect(fast.value).toBeCloseTo(quantileMs(latencies, 0.5), 9);
    expect(fast.p95).toBeCloseTo(quantileMs(latencies, 0.95), 9);
    expect(fast.p99).toBeCloseTo(quantileMs(latencies, 0.99), 9);
    expect(fast.value).toBeGreaterThanOrEqual(20);
    expect(fast.value).toBeLessThan(22);
    expect(stat(stats, "satisfaction")).toMatchObject({ n: 4n, value: 4 });
    expect(stat(stats, "signup")).toMatchObject({ n: 1n, value: 2 });
  });

  it("a release's windows hold each cohort's metrics once per request, whatever number of its flags were read", async () => {
    const scopes = new Map<string, number>([
      ["canary", 0],
      ["control", 0],
    ]);
    const request = (f: ScopedFlags, user: string): void => {
      const cohorts = RELEASE_FLAGS.map((key) => f.getBooleanDetails(key, { targetingKey: user }, false).cohort ?? "");
      expect(new Set(cohorts).size, `${user}: one cohort for every flag of the release`).toBe(1);
      scopes.set(cohorts[0]!, scopes.get(cohorts[0]!)! + 1);
      f.track("hits", 2);
      f.trackOutcome("mem0_write", true);
    };
    const c = client();
    await c.waitReady(WAIT);
    const started = await admin.revision("production");
    await eventually(() => c.revision >= started, WAIT, "the release's revision");
    for (let i = 0; i < 20; i++) await c.scope((f) => { request(f, `user-${i}`); });
    expect(await c.flush()).toBe(true);
    await c.close();

    const transport = transportFor(kind, server.url);
    const flags = new ShortLivedFlags({ transport, token });
    const handler = withFlags(flags, (_ctx: unknown, user: string, f) => { request(f, user); });
    for (let i = 20; i < 26; i++) await handler(null, `user-${i}`);
    expect(flags.lastError).toBeUndefined();
    transport.close?.();
    expect(scopes.get("canary")! + scopes.get("control")!).toBe(26);

    // Per flag variant: every scope that read r1, in its cohort's row.
    const rows = await admin.usage("production", "r1");
    for (const [cohort, n] of scopes) {
      const row = rows.find((r) => r.cohort === cohort);
      expect(row, `a ${cohort} row`).toBeDefined();
      expect(stat(row!.metrics, "hits")).toMatchObject({ n: BigInt(n), value: 2 });
      expect(stat(row!.metrics, "mem0_write")).toMatchObject({ n: BigInt(n), value: 1 });
    }
    // Per release cohort: once per scope, though each read two of the release's flags.
    let got = release;
    await eventually(
      async () => {
        got = await admin.release(release.id, 10_000);
        return windowSum(got, "canary", "hits").requests + windowSum(got, "control", "hits").requests >= 26n;
      },
      WAIT,
      "closed windows with every report",
    );
    for (const [cohort, n] of scopes) {
      expect(windowSum(got, cohort, "hits"), cohort).toEqual({ count: BigInt(n), sum: 2 * n, successes: 0n, failures: 0n, requests: BigInt(n) });
      expect(windowSum(got, cohort, "mem0_write"), cohort).toMatchObject({ successes: BigInt(n), failures: 0n, requests: BigInt(n) });
    }
  });
});
