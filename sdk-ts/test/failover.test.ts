/**
 * Several endpoints (docs/reference/sync.md, "Several endpoints") against real server binaries,
 * over both transports: kill -9 of server A moves the client to server B, where it resumes with
 * `since_revision`, serving its copy meanwhile, and ends with B's state; a first endpoint that
 * is down at start is skipped; (Node) a name with several addresses is one endpoint per address.
 *
 * The replicas: B is restored from a backup of A (same flags, tokens and revisions), which is
 * what a second replica on the same store looks like to an SDK. Failover between real replicas
 * on one PostgreSQL database (a kill -9 during a write storm) is tested with the Rust SDK
 * (sdk-rust/tests/integration/failover.rs); the three SDKs' sync loops are held to one
 * behaviour by tests/sync/.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { type ClientState, type FlagChange, FlagwireClient } from "@flagwire/sdk";
import { createClient as fetchClient } from "@flagwire/sdk/fetch";
import { createClient as nodeClient, createNodeFailoverTransport } from "@flagwire/sdk/node";
import { makeCerts } from "./support/certs.js";
import { type Admin, eventually, integration, TestServer, TRANSPORTS, type TransportKind } from "./support/server.js";

const WAIT = 10_000;
const ENV = "production";
const FLAG = "new-checkout";
const CTX = { targetingKey: "user-1" };
const TIMING = { heartbeatTimeoutMs: 3_000, minBackoffMs: 50, maxBackoffMs: 500 };

interface Replicas {
  a: TestServer;
  b: TestServer;
  adminA: Admin;
  adminB: Admin;
  token: string;
  revision: number;
}

/** A with environment `production`, flag `new-checkout` (disabled) and an sdk token; B restored from A's backup, listening on `bListen`. */
async function replicas(bListen?: (a: TestServer) => string): Promise<Replicas> {
  const a = await TestServer.start();
  const adminA = a.admin();
  await adminA.env(ENV);
  await adminA.boolFlag(FLAG, ENV);
  const token = await adminA.sdkToken("svc", ENV);
  const backup = join(mkdtempSync(join(tmpdir(), "flagwire-ts-backup-")), "a.backup");
  a.backup(backup);
  const b = await TestServer.restored(backup, bListen?.(a));
  return { a, b, adminA, adminB: b.admin(), token, revision: await adminA.revision(ENV) };
}

async function dispose(r: Replicas): Promise<void> {
  r.adminA.close();
  r.adminB.close();
  await r.a.dispose();
  await r.b.dispose();
}

async function connected(admin: Admin, instanceId: string): Promise<boolean> {
  return (await admin.instances(ENV)).some((i) => i.instanceId === instanceId && i.connected);
}

/** A loopback URL nothing listens on (a port bound, then released). */
async function downUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
}

function clientOver(kind: TransportKind, endpoints: string[], token: string): FlagwireClient {
  return kind === "node" ? nodeClient({ endpoints, token, ...TIMING }) : fetchClient({ endpoints, token, ...TIMING });
}

/**
 * Connected to A: kill -9 A; the client serves its copy meanwhile, reconnects to B, resumes
 * there (no snapshot: B has the same revisions) and follows B's changes, acknowledging to B.
 */
async function failOver(r: Replicas, client: FlagwireClient): Promise<void> {
  const states: ClientState[] = [];
  client.on("state", (s) => states.push(s));
  await client.waitReady(WAIT);
  expect(client.revision).toBe(r.revision);
  expect(await connected(r.adminA, client.instanceId)).toBe(true);
  expect(await connected(r.adminB, client.instanceId)).toBe(false);
  const changes: FlagChange[] = [];
  client.on("change", (c) => changes.push(c));

  await r.a.kill();
  await eventually(() => states.includes("STALE"), WAIT, "STALE after A died");
  expect(client.getBooleanDetails(FLAG, CTX, true)).toMatchObject({ value: false, reason: "DISABLED" });
  await eventually(() => connected(r.adminB, client.instanceId), WAIT, "a stream on B");
  await eventually(() => client.state === "READY", WAIT, "READY on B");

  await r.adminB.set(FLAG, ENV, true);
  await eventually(() => changes.length > 0, WAIT, "B's change");
  // One change, B's: the session on B resumed from the revision held instead of starting from
  // a snapshot (which would have announced a change at the revision held first).
  expect(changes).toEqual([{ revision: r.revision + 1, flags: [FLAG] }]);
  expect(client.getBoolean(FLAG, CTX, false)).toBe(true);
  // Reports follow the session: B hears the applied-revision acknowledgement.
  await eventually(
    async () => JSON.stringify(await r.adminB.applied(ENV, r.revision + 1)) === "[1,1]",
    WAIT,
    "B counts the instance applied",
  );
}

integration.each(TRANSPORTS)("several endpoints over %s", (kind) => {
  let r: Replicas | undefined;
  let client: FlagwireClient | undefined;
  afterEach(async () => {
    await client?.close();
    if (r !== undefined) await dispose(r);
    client = undefined;
    r = undefined;
  });

  it("fails over to the next endpoint when its server is killed, resumes, and ends with its state", async () => {
    r = await replicas();
    client = clientOver(kind, [r.a.url, r.b.url], r.token);
    await failOver(r, client);
  });

  it("connects to the next endpoint when the first is down at start (comma-separated baseUrl)", async () => {
    r = await replicas();
    const baseUrl = `${await downUrl()}, ${r.b.url}`;
    client = kind === "node" ? nodeClient({ baseUrl, token: r.token, ...TIMING }) : fetchClient({ baseUrl, token: r.token, ...TIMING });
    await client.waitReady(WAIT);
    expect(await connected(r.adminB, client.instanceId)).toBe(true);
    expect(client.getBoolean(FLAG, CTX, true)).toBe(false);
  });
});

integration("a name with several addresses (node)", () => {
  it("is one endpoint per address, and fails over between them", async () => {
    // A on 127.0.0.1:P, B on 127.0.0.2:P, and a name resolving to both. No name on this
    // machine resolves to several addresses (/etc/hosts has localhost as 127.0.0.1 only), so
    // the resolver is injected; the connections, the `:authority` and the failover are real.
    const r = await replicas((a) => `127.0.0.2:${a.grpc.split(":")[1]!}`);
    const asked: string[] = [];
    const transport = createNodeFailoverTransport({
      endpoints: [`http://replicas.flagwire.test:${r.a.grpc.split(":")[1]!}`],
      resolve: (host) => {
        asked.push(host);
        return Promise.resolve(host === "replicas.flagwire.test" ? ["127.0.0.1", "127.0.0.2"] : []);
      },
    });
    const client = new FlagwireClient({ transport, token: r.token, ...TIMING, onClose: () => { transport.close(); } });
    try {
      await failOver(r, client);
      expect(asked[0]).toBe("replicas.flagwire.test");
      expect(transport.current).toEqual({ url: `http://replicas.flagwire.test:${r.a.grpc.split(":")[1]!}`, address: "127.0.0.2" });
    } finally {
      await client.close();
      await dispose(r);
    }
  });
});

integration("a pinned address over TLS (node)", () => {
  it("keeps the name for the certificate check", async () => {
    // A TLS server on 127.0.0.2 with a certificate for localhost and 127.0.0.1 only, and
    // `localhost` made to resolve to 127.0.0.2 first: the client connects to 127.0.0.2 and
    // verifies the certificate against the name, as it would have without expansion.
    const dir = mkdtempSync(join(tmpdir(), "flagwire-ts-certs-"));
    const certs = await makeCerts(dir);
    const server = await TestServer.start(1, certs, "127.0.0.2:0");
    const admin = server.admin();
    const transport = createNodeFailoverTransport({
      endpoints: [server.url],
      nodeOptions: { ca: certs.caPem },
      resolve: (host) => Promise.resolve(host === "localhost" ? ["127.0.0.2", "127.0.0.1"] : []),
    });
    let client: FlagwireClient | undefined;
    try {
      expect(server.url).toMatch(/^https:\/\/localhost:\d+$/);
      await admin.env(ENV);
      await admin.boolFlag(FLAG, ENV);
      const token = await admin.sdkToken("svc", ENV);
      client = new FlagwireClient({ transport, token, ...TIMING, onClose: () => { transport.close(); } });
      await client.waitReady(WAIT);
      expect(await connected(admin, client.instanceId)).toBe(true);
      expect(transport.current).toEqual({ url: server.url, address: "127.0.0.2" });
    } finally {
      await client?.close();
      admin.close();
      await server.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
