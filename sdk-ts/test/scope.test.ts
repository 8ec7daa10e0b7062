/**
 * Request scopes and release cohort outcomes, against an in-memory FlagService and
 * MetricsService (real protobuf messages through Connect's router transport): one outcome per
 * (release, cohort) per scope however many of the release's flags it read, one per release, the
 * control cohort, nothing for unlabelled evaluations or evaluations outside a scope, nested
 * measurements counted once, `withFlags`, the per-window cap, and merge-back of a failed report.
 */
import { describe, expect, it } from "vitest";
import { bucketIndex, type FlagReader, ShortLivedFlags, withFlags } from "@flagwire/sdk";
import type { CohortOutcome, ReportRequest } from "../src/gen/flagwire/v1/metrics_pb.js";
import { Recorder } from "../src/metrics.js";
import { canaryA, controlA, fakeServer, harness, user, WAIT } from "./support/releases.js";

/** `cohortOutcomes` as `release/cohort` → [successes, errors], checking each histogram's count. */
function outcomes(list: readonly CohortOutcome[]): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const o of list) {
    const key = `${o.releaseId}/${o.cohort}`;
    expect(out[key], `${key} sent twice in one report`).toBeUndefined();
    // The server refuses an outcome whose histogram does not count every outcome.
    expect(o.latencyUs?.count, key).toBe(o.successes + o.errors);
    out[key] = [Number(o.successes), Number(o.errors)];
  }
  return out;
}

/** Per-flag outcomes of a report: `flag/variant/cohort` → [successes, errors]. */
function seriesOutcomes(r: ReportRequest): Record<string, [number, number]> {
  return Object.fromEntries(
    r.series.filter((s) => s.successes + s.errors > 0n).map((s) => [`${s.flagKey}/${s.variant}/${s.cohort}`, [Number(s.successes), Number(s.errors)]]),
  );
}

/** Work that reads `flags` (in order) for `ctx` through the scope it is given. */
const read =
  (...flags: string[]) =>
  (ctx: { targetingKey: string }) =>
  (f: FlagReader): void => {
    for (const flag of flags) f.getBoolean(flag, ctx, false);
  };

describe("a request scope", () => {
  it("that read three flags of one release records one outcome for its cohort (and one per flag, as before)", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const ctx = { targetingKey: canaryA };
    await client.scope((f) => {
      read("a1", "a2", "a3")(ctx)(f);
      f.getBoolean("a1", ctx, false); // read again: still one
      expect(f.releases).toEqual([{ releaseId: "rel-a", cohort: "canary" }]);
    });
    expect(await client.flush()).toBe(true);
    expect(state.reports).toHaveLength(1);
    expect(outcomes(state.reports[0]!.cohortOutcomes)).toEqual({ "rel-a/canary": [1, 0] });
    expect(seriesOutcomes(state.reports[0]!)).toEqual({ "a1/on/canary": [1, 0], "a2/on/canary": [1, 0], "a3/on/canary": [1, 0] });
    await client.close();
  });

  it("counts each scope: two canary scopes are two outcomes, a control unit's is control's, a throw is an error", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    for (const u of [canaryA, canaryA]) await client.scope(read("a1", "a2", "a3")({ targetingKey: u }));
    await expect(
      client.scope((f) => {
        read("a1", "a3")({ targetingKey: controlA })(f);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await client.flush()).toBe(true);
    expect(outcomes(state.reports[0]!.cohortOutcomes)).toEqual({ "rel-a/canary": [2, 0], "rel-a/control": [0, 1] });
    await client.close();
  });

  it("that read flags of two releases records one outcome per release", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const u = user("canary", "control");
    await client.scope((f) => {
      read("a1", "b1", "a2", "b1", "p")({ targetingKey: u })(f);
      expect(f.releases).toEqual([
        { releaseId: "rel-a", cohort: "canary" },
        { releaseId: "rel-b", cohort: "control" },
      ]);
    });
    expect(await client.flush()).toBe(true);
    expect(outcomes(state.reports[0]!.cohortOutcomes)).toEqual({ "rel-a/canary": [1, 0], "rel-b/control": [1, 0] });
    await client.close();
  });

  it("records no release outcome for unlabelled evaluations, nor for evaluations outside any scope", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const rest = user(undefined, "");
    // The rest of rel-b's split carries the release id but no cohort label; "p" is no release's.
    await client.scope((f) => {
      const d = f.getBooleanDetails("b1", { targetingKey: rest }, true);
      expect([d.rolloutId, d.cohort]).toEqual(["rel-b", undefined]);
      f.getBoolean("p", { targetingKey: rest }, false);
      expect(f.releases).toEqual([]);
    });
    for (let i = 0; i < 5; i++) client.getBoolean("a1", { targetingKey: canaryA }, false);
    expect(await client.flush()).toBe(true);
    const r = state.reports[0]!;
    expect(r.cohortOutcomes).toEqual([]);
    expect(seriesOutcomes(r)).toEqual({ "b1/off/": [1, 0], "p/on/": [1, 0] });
    expect(r.series.find((s) => s.flagKey === "a1")?.evaluations[0]?.count).toBe(5n);
    await client.close();
  });

  it("measure is a scope of one flag, and a measure nested in a scope joins it instead of counting twice", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const ctx = { targetingKey: canaryA };
    expect(await client.measure("a1", ctx, (variant) => variant)).toBe("on");
    const m = client.startMeasure("a2", { targetingKey: controlA });
    m.finish(false);
    m.finish(true); // ignored
    await client.scope(async (f) => {
      f.getBoolean("a1", ctx, false);
      expect(await f.measure("a2", ctx, (variant) => variant)).toBe("on");
    });
    // Only a nested measure: the scope still counts its release cohort, once.
    await client.scope((f) => f.measure("a3", ctx, () => undefined));
    expect(await client.flush()).toBe(true);
    const r = state.reports[0]!;
    expect(outcomes(r.cohortOutcomes)).toEqual({ "rel-a/canary": [3, 0], "rel-a/control": [0, 1] });
    // Per flag: measure's own outcomes, and the outer scope's against what it read itself.
    expect(seriesOutcomes(r)).toEqual({ "a1/on/canary": [2, 0], "a2/on/canary": [1, 0], "a2/off/control": [0, 1], "a3/on/canary": [1, 0] });
    await client.close();
  });

  it("opened by hand records once, with the time since it opened", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const s = client.startScope();
    read("a1", "a2")({ targetingKey: canaryA })(s);
    await new Promise((r) => setTimeout(r, 10));
    s.finish(false);
    s.finish(true); // ignored
    client.startScope().getBoolean("a1", { targetingKey: canaryA }, false); // never finished: no outcome
    expect(await client.flush()).toBe(true);
    const [o] = state.reports[0]!.cohortOutcomes;
    expect(outcomes([o!])).toEqual({ "rel-a/canary": [0, 1] });
    expect(o!.latencyUs!.offset).toBeGreaterThanOrEqual(bucketIndex(9_700)!);
    await client.close();
  });
});

describe("withFlags", () => {
  it("is a request scope: one release outcome per invocation, flushed before it returns", async () => {
    const { transport, state } = fakeServer();
    const flags = new ShortLivedFlags({ transport, token: "t" });
    const u = user("control", "canary");
    const handler = withFlags(flags, (_ctx: unknown, fail: boolean, f) => {
      read("a1", "a2", "a3", "b1")({ targetingKey: u })(f);
      if (fail) throw new Error("refused");
      return "done";
    });
    expect(await handler(null, false)).toBe("done");
    await expect(handler(null, true)).rejects.toThrow("refused");
    expect(state.reports.map((r) => outcomes(r.cohortOutcomes))).toEqual([
      { "rel-a/control": [1, 0], "rel-b/canary": [1, 0] },
      { "rel-a/control": [0, 1], "rel-b/canary": [0, 1] },
    ]);
  });
});

describe("release outcomes between flushes", () => {
  it("are held for at most maxSeries (release, cohort) keys per window, the rest counted as dropped", () => {
    const r = new Recorder(2);
    for (const id of ["r1", "r2", "r3"]) r.cohortOutcome(id, "canary", true, 1_000);
    r.cohortOutcome("r1", "canary", false, 2_000); // an existing key: kept
    r.cohortOutcome("r1", "control", true, 1_000); // a fourth: dropped
    const taken = r.take();
    expect(outcomes(taken.cohortOutcomes)).toEqual({ "r1/canary": [1, 1], "r2/canary": [1, 0] });
    expect(taken.dropped).toBe(2);
    // The cap is per window: the next one has room again.
    r.cohortOutcome("r3", "control", true, 1_000);
    expect(outcomes(r.take().cohortOutcomes)).toEqual({ "r3/control": [1, 0] });
    expect(r.take()).toEqual({ series: [], dropped: 0, cohortOutcomes: [], metrics: [] });
  });

  it("reach the report's droppedSeries when the cap is hit", async () => {
    const { client, state } = harness({ maxSeries: 1 });
    await client.waitReady(WAIT);
    const u = user("canary", "control");
    await client.scope(read("a1")({ targetingKey: u }));
    await client.scope(read("b1")({ targetingKey: u }));
    expect(await client.flush()).toBe(true);
    const r = state.reports[0]!;
    expect(outcomes(r.cohortOutcomes)).toEqual({ "rel-a/canary": [1, 0] });
    // b1's series (its evaluation and its outcome) and rel-b's cohort key.
    expect(r.droppedSeries).toBe(3n);
    await client.close();
  });

  it("are merged back when the transport fails, and dropped when the server refuses the report", async () => {
    const { client, state } = harness();
    await client.waitReady(WAIT);
    const scope = read("a1", "a2");
    state.mode = "down";
    await client.scope(scope({ targetingKey: canaryA }));
    expect(await client.flush()).toBe(false);
    await client.scope(scope({ targetingKey: canaryA }));
    await client.scope(scope({ targetingKey: controlA }));
    state.mode = "up";
    expect(await client.flush()).toBe(true);
    expect(state.reports).toHaveLength(1);
    expect(outcomes(state.reports[0]!.cohortOutcomes)).toEqual({ "rel-a/canary": [2, 0], "rel-a/control": [1, 0] });

    state.mode = "invalid";
    await client.scope(scope({ targetingKey: canaryA }));
    expect(await client.flush()).toBe(false);
    state.mode = "up";
    expect(await client.flush()).toBe(true); // nothing left to send
    expect(state.reports).toHaveLength(1);
    await client.close();
  });
});
