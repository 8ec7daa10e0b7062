/**
 * The live client against the real server binary on loopback, over both transports: readiness,
 * live changes, an outage (server killed) with last values served and an in-order resume after
 * the restart, a refused token, the async iterator, bootstrap and offline.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FlagwireClient, FlagwireError, type FlagChange } from "@flagwire/sdk";
import { createClient as nodeClient } from "@flagwire/sdk/node";
import { type Admin, eventually, integration, TestServer, TRANSPORTS, transportFor } from "./support/server.js";

const WAIT = 10_000;

integration.each(TRANSPORTS)("client over %s", (kind) => {
  let server: TestServer;
  let admin: Admin;
  let token: string;

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

  function client(extra: Partial<ConstructorParameters<typeof FlagwireClient>[0]> = {}, url = server.url): FlagwireClient {
    const transport = transportFor(kind, url);
    return new FlagwireClient({
      transport,
      token,
      heartbeatTimeoutMs: 3_000,
      minBackoffMs: 50,
      maxBackoffMs: 300,
      onClose: () => transport.close?.(),
      ...extra,
    });
  }

  it("is ready, serves values, and applies a change with its event", async () => {
    const c = client();
    const ctx = { targetingKey: "user-1", attributes: { plan: "pro" } };
    expect(c.state).toBe("CONNECTING");
    expect(c.getBooleanDetails("new-checkout", ctx, true)).toMatchObject({ value: true, reason: "ERROR", errorCode: "PROVIDER_NOT_READY" });
    await c.waitReady(WAIT);
    expect(c.state).toBe("READY");
    expect(c.getBooleanDetails("new-checkout", ctx, true)).toMatchObject({ value: false, reason: "DISABLED", variant: "off" });
    expect(c.getString("color", ctx, "x")).toBe("blue");
    expect(c.getStringDetails("color", { targetingKey: "u" }, "x")).toMatchObject({ value: "red", reason: "STATIC" });

    const seen: FlagChange[] = [];
    const off = c.on("change", (change) => seen.push(change));
    await admin.set("new-checkout", "production", true);
    await eventually(() => seen.length > 0, WAIT, "a change event");
    off();
    expect(seen[0]!.flags).toEqual(["new-checkout"]);
    expect(seen[0]!.revision).toBe(c.revision);
    expect(c.getBooleanDetails("new-checkout", ctx, false)).toMatchObject({ value: true, reason: "STATIC", flagVersion: 2 });

    // Wrong type and unknown flag: the caller's default, never a throw.
    expect(c.getString("new-checkout", ctx, "dflt")).toBe("dflt");
    expect(c.getStringDetails("new-checkout", ctx, "d").errorCode).toBe("TYPE_MISMATCH");
    expect(c.getNumberDetails("nope", ctx, 7)).toMatchObject({ value: 7, errorCode: "FLAG_NOT_FOUND" });
    expect(c.getBoolean("new-checkout", { attributes: { bad: { nested: 1 } as never } }, false)).toBe(false);
    await admin.set("new-checkout", "production", false);
    await c.close();
    expect(c.state).not.toBe("ERROR");
  });

  it("delivers changes through the async iterator, in order", async () => {
    const c = client();
    await c.waitReady(WAIT);
    const changes = c.changes();
    const start = c.revision;
    for (let i = 0; i < 3; i++) await admin.set("new-checkout", "production", i % 2 === 0);
    const got: number[] = [];
    for await (const change of changes) {
      got.push(change.revision);
      if (got.length === 3) break;
    }
    expect(got).toEqual([start + 1, start + 2, start + 3]);
    await admin.set("new-checkout", "production", false);
    await c.close();
  });

  it("serves last values while the server is down (STALE), then resumes in order", async () => {
    const c = client();
    await c.waitReady(WAIT);
    await admin.set("new-checkout", "production", true);
    await eventually(() => c.getBoolean("new-checkout", { targetingKey: "u" }, false), WAIT, "the change");
    const revisions: number[] = [];
    c.on("change", (change) => revisions.push(change.revision));
    const held = c.revision;

    admin.close();
    await server.kill();
    await eventually(() => c.state === "STALE", WAIT, "STALE");
    expect(c.getBoolean("new-checkout", { targetingKey: "u" }, false)).toBe(true);

    await server.restart();
    admin = server.admin();
    for (let i = 0; i < 5; i++) await admin.set("new-checkout", "production", i % 2 === 1);
    const target = await admin.revision("production");
    await eventually(() => c.revision === target, WAIT, `revision ${target}`);
    expect(revisions).toEqual(Array.from({ length: target - held }, (_, i) => held + 1 + i));
    expect(c.state).toBe("READY");
    expect(c.getBoolean("new-checkout", { targetingKey: "u" }, true)).toBe(false);
    await c.close();
  });

  it("surfaces a refused token as ERROR without a busy loop", async () => {
    let watches = 0;
    const transport = transportFor(kind, server.url, [
      (next) => (req) => {
        if (req.method.name === "Watch") watches++;
        return next(req);
      },
    ]);
    const c = new FlagwireClient({ transport, token: "fw_wrong", minBackoffMs: 10, maxBackoffMs: 500, onClose: () => transport.close?.() });
    await expect(c.waitReady(WAIT)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    expect(c.state).toBe("ERROR");
    expect(c.stateMessage).toMatch(/token/);
    await new Promise((r) => setTimeout(r, 1600));
    // One attempt, then one every 500 ms: at most five in ~1.6 s.
    expect(watches).toBeGreaterThanOrEqual(2);
    expect(watches).toBeLessThanOrEqual(5);
    await c.close();
  });

  it("times out waiting when the server is unreachable, serving defaults", async () => {
    const c = client({}, "http://127.0.0.1:1");
    await expect(c.waitReady(300)).rejects.toBeInstanceOf(FlagwireError);
    expect(c.state).toBe("CONNECTING");
    expect(c.getBoolean("new-checkout", {}, true)).toBe(true);
    await c.close();
  });
});

integration("bootstrap and offline", () => {
  it("persists snapshots, starts STALE from the file while the server is down, and runs offline", async () => {
    const server = await TestServer.start();
    const admin = server.admin();
    await admin.env("production");
    await admin.boolFlag("new-checkout", "production");
    await admin.set("new-checkout", "production", true);
    const token = await admin.sdkToken("svc", "production");
    const file = join(mkdtempSync(join(tmpdir(), "flagwire-ts-boot-")), "flags.bin");

    const live = nodeClient({ baseUrl: server.url, token, bootstrapFile: file });
    await live.waitReady(WAIT);
    await admin.set("new-checkout", "production", false);
    await eventually(() => live.revision === 3, WAIT, "revision 3");
    await live.close();
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file)).toEqual(Buffer.from(live.snapshotBytes()!));
    const url = server.url;
    admin.close();
    await server.dispose();

    const ctx = { targetingKey: "u" };
    const cold = nodeClient({ baseUrl: url, token, bootstrapFile: file, minBackoffMs: 50, maxBackoffMs: 100 });
    expect(cold.state).toBe("STALE");
    expect(cold.getBooleanDetails("new-checkout", ctx, true)).toMatchObject({ value: false, reason: "DISABLED", flagVersion: 3 });
    await cold.close();

    const offline = nodeClient({ bootstrapFile: file, offline: true });
    expect(offline.state).toBe("READY");
    await offline.waitReady(10);
    expect(offline.getBoolean("new-checkout", ctx, true)).toBe(false);
    await offline.close();

    expect(() => nodeClient({ bootstrapFile: join(tmpdir(), "missing-flagwire.bin"), offline: true })).toThrow(FlagwireError);
    expect(() => new FlagwireClient({ offline: true, bootstrap: new Uint8Array([0xff, 0xff]) })).toThrow(/Snapshot/);
  });
});
