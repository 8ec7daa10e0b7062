/**
 * The Node transport's keepalive does not outlive its session: connect-node 2.1.2 re-arms its
 * idle PING timer when a stream closes after the session was destroyed, and that PING throws
 * `ERR_HTTP2_INVALID_SESSION` from a timer, an uncaught exception that ends the process
 * (connectrpc/connect-es#1795): 30 s after `client.close()` took the Watch stream's session
 * down. The timer is connect-node's, so no injectable clock reaches it: the tests shorten the
 * PING interval to 50 ms and wait ten intervals for an uncaught exception.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { FlagwireClient } from "@flagwire/sdk";
import { createNodeTransport } from "@flagwire/sdk/node";
import { type Admin, integration, TestServer } from "./support/server.js";

const PING_MS = 50;

integration("node keepalive after close", () => {
  let server: TestServer;
  let admin: Admin;
  let token: string;
  let uncaught: unknown[];
  const record = (e: unknown): void => {
    uncaught.push(e);
  };

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
  beforeEach(() => {
    uncaught = [];
    process.on("uncaughtException", record);
  });
  afterEach(() => {
    process.off("uncaughtException", record);
  });

  function connect(): FlagwireClient {
    const transport = createNodeTransport({ baseUrl: server.url, pingIntervalMs: PING_MS });
    return new FlagwireClient({ transport, token, onClose: () => { transport.close(); } });
  }

  it("closing a client with its Watch open leaves no PING behind", async () => {
    for (let i = 0; i < 5; i++) {
      const client = connect();
      await client.waitReady(10_000);
      await client.close();
    }
    await new Promise((r) => setTimeout(r, 10 * PING_MS));
    expect(uncaught).toEqual([]);
  });
});
