/**
 * Metrics: the recorder's bounds and merge-back (unit), flush semantics against an in-memory
 * MetricsService (merge-back on transport failure, drop on INVALID_ARGUMENT), and what reaches
 * the real server over both transports: applied revisions, exact counts per variant and cohort,
 * measured outcomes and their latency buckets. A report after a canary split carries its rollout
 * id in every series the split served.
 */
import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlagwireClient, bucketIndex } from "@flagwire/sdk";
import { Reason } from "../src/gen/flagwire/v1/evaluation_pb.js";
import { type Flag, FlagSchema, Operator, ValueType } from "../src/gen/flagwire/v1/flag_pb.js";
import { FlagService, SnapshotSchema } from "../src/gen/flagwire/v1/flag_service_pb.js";
import { MetricsService, type ReportRequest } from "../src/gen/flagwire/v1/metrics_pb.js";
import { Recorder } from "../src/metrics.js";
import { type Admin, eventually, integration, TestServer, TRANSPORTS, transportFor } from "./support/server.js";

const WAIT = 10_000;

describe("Recorder", () => {
  it("takes non-zero series, zeroes them, and merges back what a failed flush took", () => {
    const r = new Recorder();
    r.evaluation("f", "on", "", "", Reason.STATIC);
    r.evaluation("f", "on", "", "", Reason.STATIC);
    r.outcome({ flag: "f", variant: "on", cohort: "", rolloutId: "" }, false, 1500);
    const { series, dropped } = r.take();
    expect(series).toHaveLength(1);
    expect(dropped).toBe(0);
    expect(series[0]!.evaluations).toEqual([expect.objectContaining({ reason: "STATIC", count: 2n })]);
    expect([series[0]!.successes, series[0]!.errors]).toEqual([0n, 1n]);
    expect(series[0]!.latencyUs).toMatchObject({ scale: 3, count: 1n, offset: bucketIndex(1500), bucketCounts: [1n] });
    expect(r.take().series).toHaveLength(0);
    r.mergeBack(series, 3);
    const again = r.take();
    expect(again.dropped).toBe(3);
    expect(again.series).toEqual(series);
  });

  it("holds at most maxSeries series and counts the rest as dropped", () => {
    const r = new Recorder(100);
    for (let i = 0; i < 105; i++) r.evaluation(`f${i}`, "on", "", "", Reason.STATIC);
    r.evaluation("f0", "off", "", "", Reason.DISABLED);
    const { series, dropped } = r.take();
    expect(series).toHaveLength(100);
    expect(dropped).toBe(6);
  });
});

/** An offline-style snapshot served by an in-memory FlagService, and a scripted MetricsService. */
function fakeServer(report: (r: ReportRequest) => void, flag: Flag = onFlag()) {
  return createRouterTransport(({ service }) => {
    service(FlagService, {
      async *watch() {
        yield { event: { case: "snapshot", value: create(SnapshotSchema, { environment: "production", revision: 1n, flags: [flag] }) } };
        await new Promise(() => undefined);
      },
    });
    service(MetricsService, {
      report(r) {
        report(r);
        return { accepted: true };
      },
    });
  });
}

function onFlag(): Flag {
  return create(FlagSchema, {
    key: "f",
    type: ValueType.BOOLEAN,
    version: 1n,
    variants: [{ key: "on", value: { kind: { case: "boolValue", value: true } } }],
    environments: { production: { enabled: true, offVariant: "on", defaultRule: { kind: { case: "variant", value: "on" } } } },
  });
}

/**
 * The canary / rest / control split of rollout "ro-1", as the server lays out a rollout's flag
 * (buckets as in tests/vectors/splits.json: user-9 canary, user-0 rest, user-1 control), behind
 * a rule serving the treatment as a fixed variant to internal users.
 */
function canaryFlag(): Flag {
  const str = (value: string) => ({ kind: { case: "stringValue" as const, value } });
  return create(FlagSchema, {
    key: "checkout",
    type: ValueType.STRING,
    version: 4n,
    variants: [
      { key: "treatment", value: str("new") },
      { key: "baseline", value: str("old") },
    ],
    environments: {
      production: {
        enabled: true,
        offVariant: "baseline",
        rules: [
          {
            clauses: [{ attribute: "plan", operator: Operator.IN, values: [fromJson(ValueSchema, "internal")] }],
            serve: { kind: { case: "variant", value: "treatment" } },
          },
        ],
        defaultRule: {
          kind: {
            case: "split",
            value: {
              salt: "checkout-canary",
              rolloutId: "ro-1",
              entries: [
                { variant: "treatment", weight: 10, label: "canary" },
                { variant: "baseline", weight: 80 },
                { variant: "baseline", weight: 10, label: "control" },
              ],
            },
          },
        },
      },
    },
  });
}

describe("a report after a canary split", () => {
  it("carries the rollout id in every series the split served, and none for a fixed variant", async () => {
    const delivered: ReportRequest[] = [];
    const transport = fakeServer((r) => {
      if (r.series.length > 0) delivered.push(r);
    }, canaryFlag());
    const c = new FlagwireClient({ transport, token: "t", metricsFlushIntervalMs: 3_600_000 });
    await c.waitReady(WAIT);
    const canary = c.getStringDetails("checkout", { targetingKey: "user-9" }, "");
    expect([canary.variant, canary.cohort, canary.rolloutId]).toEqual(["treatment", "canary", "ro-1"]);
    expect(c.getStringDetails("checkout", { targetingKey: "user-0" }, "").rolloutId).toBe("ro-1");
    expect(c.getStringDetails("checkout", { targetingKey: "user-1" }, "").cohort).toBe("control");
    const internal = c.getStringDetails("checkout", { targetingKey: "user-9", attributes: { plan: "internal" } }, "");
    expect([internal.variant, internal.rolloutId]).toEqual(["treatment", undefined]);
    const m = c.startMeasure("checkout", { targetingKey: "user-9" });
    expect(m.rolloutId).toBe("ro-1");
    m.finish(true);
    expect(await c.flush()).toBe(true);
    await c.close();

    expect(delivered).toHaveLength(1);
    const got = Object.fromEntries(
      delivered[0]!.series.map((s) => [
        `${s.variant}/${s.cohort}/${s.rolloutId}`,
        [s.evaluations.map((e) => `${e.reason}=${e.count}`).join(","), Number(s.successes)],
      ]),
    );
    expect(got).toEqual({
      "treatment/canary/ro-1": ["SPLIT=2", 1],
      "baseline//ro-1": ["SPLIT=1", 0],
      "baseline/control/ro-1": ["SPLIT=1", 0],
      // The same variant served by the rule is a series of its own, outside the rollout.
      "treatment//": ["TARGETING_MATCH=1", 0],
    });
  });
});

describe("flush", () => {
  it("merges a window back when the transport fails, and drops one the server refuses", async () => {
    let mode: "down" | "invalid" | "up" = "down";
    const delivered: ReportRequest[] = [];
    const transport = fakeServer((r) => {
      if (r.series.length === 0) return; // applied-revision acknowledgements
      if (mode === "down") throw new ConnectError("connection refused", Code.Unavailable);
      if (mode === "invalid") throw new ConnectError("no such flag", Code.InvalidArgument);
      delivered.push(r);
    });
    const c = new FlagwireClient({ transport, token: "t", metricsFlushIntervalMs: 3_600_000 });
    await c.waitReady(WAIT);
    for (let i = 0; i < 3; i++) c.getBoolean("f", { targetingKey: "u" }, false);
    expect(await c.flush()).toBe(false);
    c.getBoolean("f", { targetingKey: "u" }, false);
    mode = "up";
    expect(await c.flush()).toBe(true);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.series[0]!.evaluations[0]!.count).toBe(4n);

    c.getBoolean("f", { targetingKey: "u" }, false);
    mode = "invalid";
    expect(await c.flush()).toBe(false);
    mode = "up";
    expect(await c.flush()).toBe(true);
    expect(delivered).toHaveLength(1);
    const sequences = delivered.map((r) => r.sequence);
    c.getBoolean("f", { targetingKey: "u" }, false);
    await c.close(); // flushes
    expect(delivered).toHaveLength(2);
    expect(delivered[1]!.sequence).toBeGreaterThan(sequences[0]!);
    expect(delivered[1]!.appliedRevision).toBe(1n);
  });

  it("offline clients count nothing and flush trivially", async () => {
    const bootstrap = toBinary(SnapshotSchema, create(SnapshotSchema, { environment: "e", revision: 1n }));
    const c = new FlagwireClient({ offline: true, bootstrap });
    expect(await c.flush()).toBe(true);
    await c.close();
  });
});

integration.each(TRANSPORTS)("metrics over %s reach the server", (kind) => {
  let server: TestServer;
  let admin: Admin;
  let token: string;

  beforeAll(async () => {
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    await admin.boolFlag("f", "production");
    await admin.set("f", "production", true);
    await admin.splitFlag("canary", "production");
    await admin.boolFlag("g", "production");
    token = await admin.sdkToken("svc", "production");
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });

  function client(): FlagwireClient {
    const transport = transportFor(kind, server.url);
    return new FlagwireClient({ transport, token, metricsFlushIntervalMs: 3_600_000, onClose: () => transport.close?.() });
  }

  it("acknowledges each applied revision within a second", async () => {
    const c = client();
    await c.waitReady(WAIT);
    await admin.set("g", "production", true);
    const revision = await admin.revision("production");
    const started = Date.now();
    await eventually(async () => {
      const [connected, applied] = await admin.applied("production", revision);
      return connected === 1 && applied === 1;
    }, WAIT, `acknowledgement of revision ${revision}`);
    expect(Date.now() - started).toBeLessThan(1000);
    await c.close();
  });

  it("counts evaluations per variant and cohort, outcomes and latency buckets exactly", async () => {
    const c = client();
    await c.waitReady(WAIT);
    const ctx = { targetingKey: "user-1" };
    for (let i = 0; i < 10; i++) expect(c.getBoolean("f", ctx, false)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const work = c.measure("f", ctx, async (variant) => {
        expect(variant).toBe("on");
        await new Promise((r) => setTimeout(r, 20));
        if (i === 3) throw new Error("boom");
        return i;
      });
      if (i === 3) await expect(work).rejects.toThrow("boom");
      else expect(await work).toBe(i);
    }
    // Errors (unknown flags, wrong types) are not counted: the server knows no such variant.
    c.getBoolean("nope", ctx, false);
    c.getString("f", ctx, "");
    const expected = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const d = c.getBooleanDetails("canary", { targetingKey: `user-${i}` }, false);
      const k = `${d.variant}/${d.cohort}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    expect(await c.flush()).toBe(true);

    const rows = await admin.usage("production", "f");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ variant: "on", evaluations: 14n, successes: 3n, errors: 1n });
    // 20 ms sleeps land in the buckets just above 20,000 µs (each bucket spans 9 %).
    expect(rows[0]!.p50Us).toBeGreaterThanOrEqual(20_000);
    expect(rows[0]!.p50Us).toBeLessThan(40_000);
    expect(rows[0]!.errorRate).toBeCloseTo(0.25);

    const canary = await admin.usage("production", "canary");
    const got = new Map(canary.map((r) => [`${r.variant}/${r.cohort}`, Number(r.evaluations)]));
    expect(got).toEqual(expected);
    expect([...got.keys()].sort()).toEqual(["off/control", "on/canary"]);
    await c.close();
  });
});
