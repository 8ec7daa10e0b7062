/**
 * The Node client (native gRPC over HTTP/2) over TLS against the real server binary, serving a
 * certificate from a CA the test made: `nodeOptions.ca` trusts it; without it the client never
 * becomes ready.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FlagChange } from "@flagwire/sdk";
import { createClient } from "@flagwire/sdk/node";
import { makeCerts, type TestCerts } from "./support/certs.js";
import { type Admin, integration, TestServer } from "./support/server.js";

const WAIT = 10_000;

integration("node client over TLS", () => {
  let certsDir: string;
  let certs: TestCerts;
  let server: TestServer;
  let admin: Admin;
  let token: string;

  beforeAll(async () => {
    certsDir = mkdtempSync(join(tmpdir(), "flagwire-ts-certs-"));
    certs = await makeCerts(certsDir);
    server = await TestServer.start(1, certs);
    admin = server.admin();
    await admin.env("production");
    await admin.boolFlag("new-checkout", "production");
    token = await admin.sdkToken("svc", "production");
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
    rmSync(certsDir, { recursive: true, force: true });
  });

  it("watches and applies changes, trusting the CA through nodeOptions.ca", async () => {
    expect(server.url).toMatch(/^https:\/\/localhost:\d+$/);
    const client = createClient({ baseUrl: server.url, token, nodeOptions: { ca: certs.caPem } });
    try {
      await client.waitReady(WAIT);
      const ctx = { targetingKey: "user-1" };
      expect(client.getBoolean("new-checkout", ctx, true)).toBe(false);
      const changed = new Promise<FlagChange>((resolve) => client.on("change", resolve));
      await admin.set("new-checkout", "production", true);
      expect((await changed).flags).toEqual(["new-checkout"]);
      expect(client.getBoolean("new-checkout", ctx, false)).toBe(true);
    } finally {
      await client.close();
    }
  });

  it("does not become ready without the CA", async () => {
    const client = createClient({ baseUrl: server.url, token, minBackoffMs: 50, maxBackoffMs: 200 });
    try {
      await expect(client.waitReady(1_000)).rejects.toThrow();
      expect(client.state).not.toBe("READY");
    } finally {
      await client.close();
    }
  });
});
