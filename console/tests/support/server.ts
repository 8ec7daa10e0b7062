// The real server binary (FLAGWIRE_BIN) on loopback, free ports and a temporary data dir,
// with the console's own API module (gRPC-web over Node's fetch) for setting up and checking
// state behind the browser's back; and child processes whose output a test can wait on.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { connect, type Api } from "../../src/api.js";
import { Role } from "../../src/gen/flagwire/v1/admin_pb.js";
import { FlagConfigSchema, FlagSchema, ValueType } from "../../src/gen/flagwire/v1/flag_pb.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const REPO = resolve(here, "../../..");
/** The admin token the server is started with. */
export const ADMIN_TOKEN = "fw_console_tests_admin_token";

function binary(): string {
  const bin = process.env.FLAGWIRE_BIN;
  if (!bin) throw new Error("FLAGWIRE_BIN must name the flagwire server binary (scripts/test-console sets it)");
  return bin;
}

/** A child process whose stdout lines are kept, so a test can wait for one. */
export class Child {
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  private stderr = "";
  constructor(readonly name: string, readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      this.lines.push(line);
      for (const w of this.waiters) w();
    });
    proc.stderr?.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
  }

  /** Spawns `cmd args` with extra environment variables. */
  static spawn(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Child {
    return new Child(name, spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }));
  }

  /** The first line (already printed or to come) that matches, within `timeoutMs`. */
  waitForLine(match: (line: string) => boolean, timeoutMs = 15_000): Promise<string> {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (found !== undefined) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolvePromise(found);
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`${this.name}: no matching line in ${timeoutMs} ms; stdout: ${this.lines.join(" | ")}; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiters.push(check);
      check();
    });
  }

  /** Ends the process (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
    this.proc.kill("SIGTERM");
    await exited;
  }
}

/** A running server. */
export class Server {
  private constructor(
    private readonly child: Child,
    private readonly dataDir: string,
    /** `http://127.0.0.1:<grpc port>`: gRPC and gRPC-web. */
    readonly grpcUrl: string,
    /** `http://127.0.0.1:<http port>`: the console. */
    readonly consoleUrl: string,
  ) {}

  /** Starts the binary on free ports with a fresh data dir and the test admin token. */
  static async start(): Promise<Server> {
    const dataDir = mkdtempSync(join(tmpdir(), "flagwire-console-"));
    const child = Child.spawn(
      "flagwire",
      binary(),
      ["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--heartbeat-secs", "1", "--shutdown-grace-secs", "1"],
      { FLAGWIRE_ADMIN_TOKEN: ADMIN_TOKEN, RUST_LOG: "warn" },
    );
    const line = await child.waitForLine((l) => l.startsWith("flagwire listening"));
    const m = /grpc=(\S+) http=(\S+)/.exec(line);
    if (!m) throw new Error(`unexpected start line: ${line}`);
    return new Server(child, dataDir, `http://${m[1]}`, `http://${m[2]}`);
  }

  /** The typed clients with `token` (the admin's by default). */
  api(token = ADMIN_TOKEN): Api {
    return connect(this.grpcUrl, token);
  }

  /** Creates environments. */
  async environments(...keys: string[]): Promise<void> {
    for (const key of keys) await this.api().admin.createEnvironment({ environment: { key, name: key }, reason: "test" });
  }

  /**
   * Creates boolean flag `key` (variants `on` and `off`), enabled and serving `serve` in each of
   * `environments`, with `prerequisites` there and `tags`.
   */
  async booleanFlag(
    key: string,
    environments: string[],
    serve: "on" | "off",
    extra: { tags?: string[]; prerequisites?: { flagKey: string; variant: string }[] } = {},
  ): Promise<void> {
    const config = () =>
      create(FlagConfigSchema, {
        enabled: true,
        offVariant: "off",
        defaultRule: { kind: { case: "variant", value: serve } },
        prerequisites: extra.prerequisites ?? [],
      });
    const flag = create(FlagSchema, {
      key,
      type: ValueType.BOOLEAN,
      tags: extra.tags ?? [],
      variants: [
        { key: "on", value: { kind: { case: "boolValue", value: true } } },
        { key: "off", value: { kind: { case: "boolValue", value: false } } },
      ],
      environments: Object.fromEntries(environments.map((e) => [e, config()])),
    });
    await this.api().admin.createFlag({ flag, reason: "test" });
  }

  /** Creates a token and returns its secret. */
  async token(name: string, role: Role, environment = ""): Promise<string> {
    return (await this.api().admin.createApiToken({ name, role, environment, reason: "test" })).secret;
  }

  /** Stops the server and removes its data. */
  async stop(): Promise<void> {
    await this.child.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The Python SDK's interpreter (sdk-python's venv unless FLAGWIRE_PYTHON says otherwise). */
export const PYTHON = process.env.FLAGWIRE_PYTHON ?? join(REPO, "sdk-python/.venv/bin/python");

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export { Role };
