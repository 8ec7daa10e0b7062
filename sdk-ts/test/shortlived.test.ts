/**
 * Short-lived mode, the Convex wrapper (the example action with a mocked ctx), remote
 * evaluation and the example Node service, end to end against the real server binary.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { RemoteEvaluator, ShortLivedFlags, withFlags } from "@flagwire/sdk";
import { type Admin, eventually, integration, TestServer, TRANSPORTS, transportFor } from "./support/server.js";

const WAIT = 10_000;
let server: TestServer;
let admin: Admin;
let token: string;

/** A fresh server per group, so usage counts of one group do not leak into another's. */
function freshServer(): void {
  beforeAll(async () => {
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    await admin.boolFlag("new-checkout", "production");
    await admin.stringFlag("color", "production");
    token = await admin.sdkToken("svc", "production");
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });
}

integration.each(TRANSPORTS)("short-lived flags over %s", (kind) => {
  freshServer();
  it("loads once per invocation, reuses within maxAge, revalidates cheaply, flushes", async () => {
    let watches = 0;
    const transport = transportFor(kind, server.url, [
      (next) => (req) => {
        if (req.method.name === "Watch") watches++;
        return next(req);
      },
    ]);
    const flags = new ShortLivedFlags({ transport, token, maxAgeMs: 60_000 });
    expect(flags.client.getBooleanDetails("new-checkout", {}, true).errorCode).toBe("PROVIDER_NOT_READY");
    const reader = await flags.load();
    expect(flags.state).toBe("READY");
    expect(watches).toBe(1);
    expect(reader.getBooleanDetails("new-checkout", { targetingKey: "u" }, true)).toMatchObject({ value: false, reason: "DISABLED" });
    await flags.load();
    expect(watches).toBe(1); // within maxAge: no call

    const zero = new ShortLivedFlags({ transport, token, maxAgeMs: 0 });
    await zero.load();
    const held = zero.revision;
    watches = 0;
    await zero.load(); // nothing changed: one Watch answered by a heartbeat
    expect(watches).toBe(1);
    expect(zero.revision).toBe(held);
    await admin.set("new-checkout", "production", true);
    const target = await admin.revision("production");
    watches = 0;
    await zero.load(); // behind: a change first, then a snapshot
    expect(watches).toBe(2);
    expect(zero.revision).toBe(target);
    expect(zero.client.getBoolean("new-checkout", { targetingKey: "u" }, false)).toBe(true);
    await admin.set("new-checkout", "production", false);
    expect(await zero.flush()).toBe(true);
    transport.close?.();
  });

  it("keeps serving the held copy when the server cannot be reached", async () => {
    const good = transportFor(kind, server.url);
    const flags = new ShortLivedFlags({ transport: good, token });
    await flags.load();
    const bad = new ShortLivedFlags({ transport: transportFor(kind, "http://127.0.0.1:1"), token, loadTimeoutMs: 1000 });
    const reader = await bad.load();
    expect(bad.lastError).toBeDefined();
    expect(reader.getBoolean("new-checkout", {}, true)).toBe(true); // default, not a throw
    expect(bad.state).toBe("CONNECTING");
    good.close?.();
  });
});

integration("the Convex action example (withFlags)", () => {
  freshServer();
  it("serves per flag, measures duration and errors against the variant, flushes before returning", async () => {
    process.env.FLAGWIRE_URL = server.url;
    process.env.FLAGWIRE_TOKEN = token;
    const { checkout, flags } = await import("../examples/convex-action.js");
    const charges: unknown[] = [];
    const ctx = {
      runMutation: (name: string, args: Record<string, unknown>) => {
        charges.push({ name, ...args });
        return Promise.resolve(null);
      },
      runQuery: () => Promise.resolve(null),
    };
    expect(await checkout.handler(ctx, { user: "u1", cents: 500 })).toBe("old");
    await admin.set("new-checkout", "production", true);
    // The module reuses its snapshot for 30 s; a fresh instance of the same module would not.
    expect(await checkout.handler(ctx, { user: "u2", cents: 100 })).toBe("old");
    expect(flags.revision).toBeGreaterThan(0);

    const fresh = new ShortLivedFlags({ transport: transportFor("fetch", server.url), token });
    const handler = withFlags(fresh, async (_ctx: unknown, args: { cents: number }, f) => {
      const on = f.getBoolean("new-checkout", { targetingKey: "u3" }, false);
      f.getString("color", { targetingKey: "u3" }, "");
      if (on && args.cents < 0) throw new Error("refused");
      await new Promise((r) => setTimeout(r, 10));
      return on;
    });
    expect(await handler(null, { cents: 1 })).toBe(true);
    expect(await handler(null, { cents: 2 })).toBe(true);
    await expect(handler(null, { cents: -1 })).rejects.toThrow("refused");
    expect(charges).toHaveLength(2);

    // Everything was flushed before each handler returned.
    const rows = await admin.usage("production", "new-checkout");
    const on = rows.find((r) => r.variant === "on")!;
    expect(on).toMatchObject({ evaluations: 3n, successes: 2n, errors: 1n });
    // Each charge waited at least 10 ms; histogram quantiles are bucket bounds (about 9 %
    // apart), and 10 ms falls in a bucket whose lower bound is 2^13.25 us (9,742 us).
    expect(on.p50Us).toBeGreaterThanOrEqual(9_700);
    const off = rows.find((r) => r.variant === "off")!;
    expect(off).toMatchObject({ evaluations: 2n, successes: 2n, errors: 0n });
    // The example's own metric (a timer around the charge) went with the same flushes.
    expect(off.metrics).toMatchObject([{ name: "charge_ms", n: 2n }]);
    expect(on.metrics).toEqual([]);
    const color = await admin.usage("production", "color");
    expect(color).toMatchObject([{ variant: "red", evaluations: 3n, successes: 2n, errors: 1n }]);
    await admin.set("new-checkout", "production", false);
  });
});

integration.each(TRANSPORTS)("remote evaluation over %s", (kind) => {
  freshServer();
  it("evaluates one flag and every flag on the server", async () => {
    const transport = transportFor(kind, server.url);
    const remote = new RemoteEvaluator({ transport, token });
    const ctx = { targetingKey: "user-9", attributes: { plan: "pro", age: 31, groups: ["beta"] } };
    expect(await remote.evaluate("color", ctx, "x")).toMatchObject({ value: "blue", reason: "TARGETING_MATCH" });
    expect(await remote.evaluate("nope", ctx, "d")).toMatchObject({ value: "d", errorCode: "FLAG_NOT_FOUND" });
    expect(await remote.evaluate("color", ctx, false, "boolean")).toMatchObject({ value: false, errorCode: "TYPE_MISMATCH" });
    const all = await remote.evaluateAll(ctx);
    expect(all.error).toBeUndefined();
    expect(all.flagKeys()).toEqual(["color", "new-checkout"]);
    expect(all.revision).toBe(await admin.revision("production"));
    expect(all.getString("color", ctx, "x")).toBe("blue");
    expect(all.getBooleanDetails("new-checkout", ctx, true)).toMatchObject({ value: false, reason: "DISABLED" });
    expect(all.getNumberDetails("color", ctx, 1).errorCode).toBe("TYPE_MISMATCH");
    const refused = await new RemoteEvaluator({ transport, token: "fw_bad" }).evaluateAll(ctx);
    expect(refused.error).toBeDefined();
    expect(refused.getBooleanDetails("new-checkout", ctx, true)).toMatchObject({ value: true, errorCode: "GENERAL" });
    transport.close?.();
  });
});

integration("the Node service example", () => {
  freshServer();
  it("serves per flag and reports its outcomes", async () => {
    const { startService } = await import("../examples/node-service.js");
    const service = await startService({ flagwireUrl: server.url, token });
    expect(service.client.state).toBe("READY");
    const get = async (q: string) => {
      const r = await fetch(`http://127.0.0.1:${service.port}/checkout?${q}`);
      return [r.status, await r.text()] as const;
    };
    expect(await get("user=a")).toEqual([200, "old checkout\n"]);
    await admin.set("new-checkout", "production", true);
    await eventually(() => service.client.getBoolean("new-checkout", {}, false), WAIT, "the change");
    expect(await get("user=b")).toEqual([200, "new checkout\n"]);
    expect(await get("user=c&fail=1")).toEqual([500, "failed\n"]);
    await service.close();
    const rows = await admin.usage("production", "new-checkout");
    expect(rows.find((r) => r.variant === "on")).toMatchObject({ successes: 1n, errors: 1n });
    expect(rows.find((r) => r.variant === "off")).toMatchObject({ successes: 1n, errors: 0n });
    await admin.set("new-checkout", "production", false);
  });
});
