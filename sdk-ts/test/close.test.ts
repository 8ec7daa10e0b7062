/**
 * `close()` does not depend on the transport honouring its abort: a `fetch` whose response body
 * is being read can miss the abort signal (seen under load with Node's fetch), and the client
 * then waited out its heartbeat timeout (45 s) before `close()` returned. Here the injected
 * `fetch` never passes the signal on, and the heartbeat timeout is an hour, so `close()` returns
 * only if the client ends the session itself.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { FlagwireClient } from "@flagwire/sdk";
import { createFetchTransport } from "@flagwire/sdk/fetch";
import { type Admin, integration, TestServer } from "./support/server.js";

integration("close over a transport that ignores aborts", () => {
  let server: TestServer;
  let admin: Admin;
  let token: string;

  beforeAll(async () => {
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    token = await admin.sdkToken("svc", "production");
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });

  it("returns while the Watch stream is still open", async () => {
    let watches = 0;
    const deaf: typeof globalThis.fetch = (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith("/Watch")) watches++;
      return globalThis.fetch(input, { ...init, signal: null });
    };
    const client = new FlagwireClient({
      transport: createFetchTransport({ baseUrl: server.url, fetch: deaf }),
      token,
      heartbeatTimeoutMs: 3_600_000,
    });
    await client.waitReady(10_000);
    expect(watches).toBe(1);
    await client.close();
  });
});
