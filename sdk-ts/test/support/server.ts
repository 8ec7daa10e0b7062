/**
 * The real server binary (`FLAGWIRE_BIN`, default <repo>/target/release/flagwire) on loopback,
 * on free ports and a temporary data directory, that a test can kill and start again on the same
 * port and data; and an admin helper over the generated AdminService, MetricsService and
 * ReleaseService clients.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { describe, type SuiteAPI } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createNodeTransport, type NodeTransport } from "@flagwire/sdk/node";
import { createFetchTransport as fetchTransport } from "@flagwire/sdk/fetch";
import type { TestCerts } from "./certs.js";
import { AdminService, Role } from "../../src/gen/flagwire/v1/admin_pb.js";
import { type Flag, FlagSchema, Operator, ValueType } from "../../src/gen/flagwire/v1/flag_pb.js";
import { type Instance, MetricsService, type UsageRow } from "../../src/gen/flagwire/v1/metrics_pb.js";
import { type Release, type ReleaseSchema, ReleaseService } from "../../src/gen/flagwire/v1/release_pb.js";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../..");
export const BIN = process.env.FLAGWIRE_BIN ?? join(REPO, "target/release/flagwire");

/**
 * No server to test against: FLAGWIRE_BIN unset and no release build at the default path (a
 * clean checkout). Integration tests are then skipped, saying so; with FLAGWIRE_BIN set (as
 * scripts/test-ts always sets it) a missing binary fails them instead, and the script fails on
 * any skipped test.
 */
export const NO_SERVER = process.env.FLAGWIRE_BIN === undefined && !existsSync(BIN);
if (NO_SERVER) {
  console.warn(
    `flagwire: skipping the integration tests: no server binary at ${BIN} ` +
      "(build it: cargo build --release --bin flagwire, or set FLAGWIRE_BIN)",
  );
}

/** `describe` for tests that run the real server binary: skipped when there is none (see NO_SERVER). */
export const integration: SuiteAPI = NO_SERVER ? (describe.skip as SuiteAPI) : describe;
export const ADMIN_TOKEN = "fw_sdk_ts_tests_admin";

/** The two ways the SDK reaches the server. */
export type TransportKind = "node" | "fetch";
export const TRANSPORTS: readonly TransportKind[] = ["node", "fetch"];

/** A transport of `kind` to `url` (node: native gRPC over HTTP/2; fetch: gRPC-web over fetch). */
export function transportFor(kind: TransportKind, url: string, interceptors: Interceptor[] = []): Transport & { close?: () => void } {
  return kind === "node" ? createNodeTransport({ baseUrl: url, interceptors }) : fetchTransport({ baseUrl: url, interceptors });
}

export class TestServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly dataDir: string,
    public grpc: string,
    private readonly heartbeatSecs: number,
    /** Serves over TLS with this certificate when set (clients must trust `tls.caPem`). */
    readonly tls?: TestCerts,
  ) {}

  /** Starts a server on a fresh data dir and free ports (or `listen`); over TLS when given `tls`. */
  static async start(heartbeatSecs = 1, tls?: TestCerts, listen = "127.0.0.1:0"): Promise<TestServer> {
    const dir = mkdtempSync(join(tmpdir(), "flagwire-ts-"));
    const server = new TestServer(dir, listen, heartbeatSecs, tls);
    await server.launch();
    return server;
  }

  /**
   * A server on a fresh data directory restored from `backup` (`flagwire restore`): the same
   * flags, tokens and revisions as the server it was taken from, as a second replica has.
   * `listen` is its gRPC address (default a free port on 127.0.0.1).
   */
  static async restored(backup: string, listen = "127.0.0.1:0", heartbeatSecs = 1): Promise<TestServer> {
    const dir = mkdtempSync(join(tmpdir(), "flagwire-ts-"));
    const restore = spawnSync(BIN, ["restore", "--in", backup, "--data-dir", dir], {
      env: { ...process.env, FLAGWIRE_TOKEN: ADMIN_TOKEN },
      encoding: "utf8",
    });
    if (restore.status !== 0) throw new Error(`flagwire restore failed: ${restore.stderr}`);
    const server = new TestServer(dir, listen, heartbeatSecs);
    await server.launch();
    return server;
  }

  /** Starts a server on an existing data dir (one `flagwire restore` wrote) and a free port. */
  static async startOn(dataDir: string, heartbeatSecs = 1): Promise<TestServer> {
    const server = new TestServer(dataDir, "127.0.0.1:0", heartbeatSecs);
    await server.launch();
    return server;
  }

  /** Writes a backup of the running server to `path` (`flagwire backup`). */
  backup(path: string): void {
    const r = spawnSync(BIN, ["backup", "--out", path], {
      env: { ...process.env, FLAGWIRE_TOKEN: ADMIN_TOKEN, FLAGWIRE_ENDPOINT: this.url },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`flagwire backup failed: ${r.stderr}`);
  }

  /** `http://127.0.0.1:port`, or `https://localhost:port` over TLS. */
  get url(): string {
    return this.tls === undefined ? `http://${this.grpc}` : `https://localhost:${this.grpc.split(":")[1]!}`;
  }

  private async launch(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.grpc = await this.spawnOnce();
        return;
      } catch (e) {
        // The port of a killed server can take a moment to free up.
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private spawnOnce(): Promise<string> {
    const child = spawn(
      BIN,
      [
        "serve",
        "--listen",
        this.grpc,
        "--http-listen",
        "127.0.0.1:0",
        "--data-dir",
        this.dataDir,
        "--heartbeat-secs",
        String(this.heartbeatSecs),
        "--shutdown-grace-secs",
        "1",
        ...(this.tls === undefined ? [] : ["--tls-cert", this.tls.certPath, "--tls-key", this.tls.keyPath]),
      ],
      { env: { ...process.env, FLAGWIRE_ADMIN_TOKEN: ADMIN_TOKEN, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    return new Promise((resolvePromise, reject) => {
      const lines = createInterface({ input: child.stdout });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`flagwire did not start: ${stderr}`));
      }, 10_000);
      lines.on("line", (line) => {
        const m = /flagwire listening grpc=(\S+) http=/.exec(line);
        if (m !== null) {
          clearTimeout(timer);
          resolvePromise(m[1]!);
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`flagwire exited (${code}): ${stderr}`));
      });
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** Kills the server (SIGKILL: no goodbye to open streams). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  /** Starts it again on the same port and data. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Stops the server and removes its data. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** An admin client (native gRPC). */
  admin(): Admin {
    if (this.tls === undefined) return new Admin(createNodeTransport({ baseUrl: this.url }));
    // Straight to the address it listens on, whichever loopback one, verifying the name the
    // certificate holds.
    const nodeOptions = { ca: this.tls.caPem, servername: "localhost" };
    return new Admin(createNodeTransport({ baseUrl: `https://${this.grpc}`, nodeOptions }));
  }
}

const auth = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };

export class Admin {
  readonly admin: Client<typeof AdminService>;
  readonly metrics: Client<typeof MetricsService>;
  readonly releases: Client<typeof ReleaseService>;
  constructor(private readonly transport: NodeTransport) {
    this.admin = createClient(AdminService, transport);
    this.metrics = createClient(MetricsService, transport);
    this.releases = createClient(ReleaseService, transport);
  }

  close(): void {
    this.transport.close();
  }

  async env(key: string): Promise<void> {
    await this.admin.createEnvironment({ environment: { key, name: key } }, auth);
  }

  /** A boolean flag on/off, disabled in `env`, default rule on. */
  async boolFlag(key: string, env: string): Promise<Flag> {
    const flag = create(FlagSchema, {
      key,
      type: ValueType.BOOLEAN,
      variants: [
        { key: "on", value: { kind: { case: "boolValue", value: true } } },
        { key: "off", value: { kind: { case: "boolValue", value: false } } },
      ],
      environments: { [env]: { enabled: false, offVariant: "off", defaultRule: { kind: { case: "variant", value: "on" } } } },
    });
    return (await this.admin.createFlag({ flag }, auth)).flag!;
  }

  /** A boolean flag, enabled, split 50/50 between on and off by targeting key. */
  async splitFlag(key: string, env: string): Promise<Flag> {
    const flag = create(FlagSchema, {
      key,
      type: ValueType.BOOLEAN,
      variants: [
        { key: "on", value: { kind: { case: "boolValue", value: true } } },
        { key: "off", value: { kind: { case: "boolValue", value: false } } },
      ],
      environments: {
        [env]: {
          enabled: true,
          offVariant: "off",
          defaultRule: {
            kind: {
              case: "split",
              value: {
                entries: [
                  { variant: "on", weight: 50, label: "canary" },
                  { variant: "off", weight: 50, label: "control" },
                ],
              },
            },
          },
        },
      },
    });
    return (await this.admin.createFlag({ flag }, auth)).flag!;
  }

  /** A string flag with a rule on `plan`. */
  async stringFlag(key: string, env: string): Promise<Flag> {
    const flag = create(FlagSchema, {
      key,
      type: ValueType.STRING,
      variants: [
        { key: "red", value: { kind: { case: "stringValue", value: "red" } } },
        { key: "blue", value: { kind: { case: "stringValue", value: "blue" } } },
      ],
      environments: {
        [env]: {
          enabled: true,
          offVariant: "red",
          rules: [
            {
              id: "pro",
              clauses: [{ attribute: "plan", operator: Operator.IN, values: [{ kind: { case: "stringValue", value: "pro" } }] }],
              serve: { kind: { case: "variant", value: "blue" } },
            },
          ],
          defaultRule: { kind: { case: "variant", value: "red" } },
        },
      },
    });
    return (await this.admin.createFlag({ flag }, auth)).flag!;
  }

  async set(key: string, env: string, enabled: boolean): Promise<void> {
    await this.admin.setFlagEnabled({ key, environment: env, enabled }, auth);
  }

  async sdkToken(name: string, env: string): Promise<string> {
    return (await this.admin.createApiToken({ name, role: Role.SDK, environment: env }, auth)).secret;
  }

  async revision(env: string): Promise<number> {
    return Number((await this.admin.getEnvironment({ key: env }, auth)).environment!.revision);
  }

  async usage(env: string, flagKey: string): Promise<UsageRow[]> {
    return (await this.metrics.getUsage({ environment: env, flagKey }, auth)).rows;
  }

  /** The instances of `env` the server knows (ListInstances). */
  async instances(env: string): Promise<Instance[]> {
    return (await this.metrics.listInstances({ environment: env }, auth)).instances;
  }

  /** Creates a release (CreateRelease) and starts it (StartRelease); returns it as started. */
  async startRelease(release: MessageInitShape<typeof ReleaseSchema>): Promise<Release> {
    const created = (await this.releases.createRelease({ release }, auth)).release!;
    return (await this.releases.startRelease({ id: created.id, reason: "test" }, auth)).release!;
  }

  /** Pauses a release: its windows are still collected, the judge decides nothing. */
  async pauseRelease(id: string): Promise<Release> {
    return (await this.releases.pauseRelease({ id, reason: "test" }, auth)).release!;
  }

  /** A release with up to `windowLimit` of its most recent closed windows (GetRelease). */
  async release(id: string, windowLimit = 0): Promise<Release> {
    return (await this.releases.getRelease({ id, windowLimit }, auth)).release!;
  }

  /** (connected, applied) instances of `env` at `revision`. */
  async applied(env: string, revision: number): Promise<[number, number]> {
    const r = await this.metrics.countAppliedInstances({ environment: env, revision: BigInt(revision) }, auth);
    return [r.connected, r.applied];
  }
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
