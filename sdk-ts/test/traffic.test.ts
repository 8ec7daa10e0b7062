/**
 * The bundled traffic generator (examples/traffic.ts, compiled to dist-examples/traffic.js as
 * `npm run build:examples` does) run as a subprocess against the real server: its instances
 * connect and report, every request's outcome reaches GetUsage with the configured error rate
 * and latency of the variant served, and it exits 0 after --duration. With several `--flag`s
 * of one release each request is one scope: the release's windows count one outcome per
 * request, and `--error-when` fails exactly the requests served the listed variants together.
 * The team's own metrics (`--outcome`, `--outcome-when`, `--observe`, `--track`) are recorded
 * once on every request's scope and reach GetUsage per variant.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Release } from "../src/gen/flagwire/v1/release_pb.js";
import { type Admin, eventually, integration, TestServer } from "./support/server.js";

const SDK = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = join(SDK, "examples/traffic.ts");
const GENERATOR = join(SDK, "dist-examples/traffic.js");

const mtime = (path: string): number => (existsSync(path) ? statSync(path).mtimeMs : -1);

/** Compiles the generator when dist-examples/ is missing or older than its source or dist/. */
function ensureCompiled(): void {
  if (!existsSync(join(SDK, "dist/node.js"))) {
    throw new Error("sdk-ts/dist is missing: run `npm run build` (the generator imports the built package)");
  }
  const built = mtime(GENERATOR);
  if (built > mtime(SOURCE) && built > mtime(join(SDK, "dist/node.js"))) return;
  const tsc = spawnSync(process.execPath, [join(SDK, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.examples.json"], {
    cwd: SDK,
    encoding: "utf8",
  });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.examples.json failed:\n${tsc.stdout}${tsc.stderr}`);
}

interface Run {
  code: number | null;
  stderr: string;
  seconds: number;
}

function traffic(args: string[], token: string, timeoutMs = 30_000): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [GENERATOR, ...args], {
    env: { ...process.env, FLAGWIRE_TOKEN: token },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the generator did not exit within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

integration("traffic generator (examples/traffic.ts)", () => {
  let server: TestServer;
  let admin: Admin;
  let token: string;

  beforeAll(async () => {
    ensureCompiled();
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    await admin.splitFlag("new-checkout", "production"); // 50/50 on (canary) / off (control)
    token = await admin.sdkToken("traffic", "production");
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });

  it("sends measured traffic from every instance with each variant's error rate and latency, then exits 0", async () => {
    const run = await traffic(
      [
        ...["--endpoint", server.url, "--flag", "new-checkout"],
        ...["--instances", "2", "--rps", "100", "--duration", "3"],
        ...["--error-rate", "on=1.0", "--error-rate", "off=0"],
        ...["--latency-ms", "on=20", "--latency-ms", "off=2"],
        ...["--flush-ms", "500", "--seed", "42"],
      ],
      token,
    );
    const log = run.stderr;
    expect(run.code, log).toBe(0);
    expect(run.seconds, log).toBeGreaterThanOrEqual(3);
    expect(run.seconds, log).toBeLessThan(15);

    // Progress every second, then the summary: 100 rps for 3 s is 300 requests, all finished.
    expect(log).toMatch(/^t=1s sent=\d+ .*by_variant=\{/m);
    const summary = /^summary: .* sent=(\d+) completed=(\d+) .*metrics_flushed=yes/m.exec(log);
    expect(summary?.slice(1), log).toEqual(["300", "300"]);

    // Both instances connected (ListInstances) and reported the revision they applied.
    const ids = [...log.matchAll(/^traffic: instance \d+ (\S+) ready$/gm)].map((m) => m[1]!);
    expect(new Set(ids).size, log).toBe(2);
    const instances = new Map((await admin.instances("production")).map((i) => [i.instanceId, i]));
    const revision = BigInt(await admin.revision("production"));
    for (const id of ids) {
      expect(instances.get(id), id).toMatchObject({ sdkName: "flagwire-ts", appliedRevision: revision });
    }

    // Every request was evaluated once and measured once, with the variant's error rate.
    const rows = new Map((await admin.usage("production", "new-checkout")).map((r) => [r.variant, r]));
    expect([...rows.keys()].sort()).toEqual(["off", "on"]);
    const on = rows.get("on")!;
    const off = rows.get("off")!;
    expect(on.evaluations + off.evaluations).toBe(300n);
    expect(on.evaluations).toBeGreaterThan(0n);
    expect([on.successes, on.errors]).toEqual([0n, on.evaluations]);
    expect(off.evaluations).toBeGreaterThan(0n);
    expect([off.successes, off.errors]).toEqual([off.evaluations, 0n]);
    expect([on.cohort, off.cohort]).toEqual(["canary", "control"]);
    // The work awaited the variant's latency inside measure (medians 20 ms and 2 ms).
    expect(on.p50Us).toBeGreaterThanOrEqual(15_000);
    expect(off.p50Us).toBeGreaterThanOrEqual(1_500);
    expect(on.p50Us).toBeGreaterThan(off.p50Us);
  });

  it("records the team's own metrics on every request's scope, per the variant served", async () => {
    await admin.splitFlag("fast-path", "production"); // 50/50 on/off
    const run = await traffic(
      [
        ...["--endpoint", server.url, "--flag", "fast-path"],
        ...["--rps", "100", "--duration", "2", "--flush-ms", "500", "--seed", "5"],
        ...["--error-rate", "on=0", "--error-rate", "off=0"],
        // Writes always succeed, except for requests served fast-path=on: of the two matching
        // conditions the smaller P (0) wins.
        ...["--outcome", "mem0.write=1", "--outcome-when", "mem0.write:fast-path=on:0.5", "--outcome-when", "mem0.write:fast-path=on:0"],
        ...["--observe", "fast-path.ms=100", "--track", "satisfaction=3,5"],
      ],
      token,
    );
    const log = run.stderr;
    expect(run.code, log).toBe(0);
    expect(/^summary: .* sent=(\d+) completed=(\d+) .*metrics_flushed=yes/m.exec(log)?.slice(1), log).toEqual(["200", "200"]);

    const rows = new Map((await admin.usage("production", "fast-path")).map((r) => [r.variant, r]));
    expect([...rows.keys()].sort()).toEqual(["off", "on"]);
    const metrics = (variant: string) => new Map(rows.get(variant)!.metrics.map((m) => [m.name, m]));
    for (const variant of ["on", "off"]) {
      const m = metrics(variant);
      // Each request recorded each metric once, attributed to the variant its scope served.
      expect([...m.keys()].sort(), variant).toEqual(["fast-path.ms", "mem0.write", "satisfaction"]);
      for (const stat of m.values()) expect(stat.n, `${variant} ${stat.name}`).toBe(rows.get(variant)!.evaluations);
      // Lognormal around 100 ms: the median (its bucket's upper bound) is near 100 and the p95
      // above it; a score of 3 or 5 at random averages strictly between them.
      const ms = m.get("fast-path.ms")!;
      expect(ms.value).toBeGreaterThanOrEqual(75);
      expect(ms.value).toBeLessThanOrEqual(135);
      expect(ms.p95).toBeGreaterThan(ms.value);
      expect(m.get("satisfaction")!.value).toBeGreaterThan(3);
      expect(m.get("satisfaction")!.value).toBeLessThan(5);
    }
    expect([metrics("on").get("mem0.write")!.value, metrics("off").get("mem0.write")!.value]).toEqual([0, 1]);
    expect(log).toContain(`  metric mem0.write: events=200 failed=${rows.get("on")!.evaluations}\n`);
    expect(log).toContain("  metric fast-path.ms: events=200\n");
  });

  it("exits 1 with a clear message when the token is refused", async () => {
    const run = await traffic(["--endpoint", server.url, "--flag", "new-checkout"], "fw_wrong");
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain("refused the token");
  });
});

integration("traffic generator with several flags of a release (--flag repeated, --error-when)", () => {
  const FLAGS = ["r1", "r2", "r3"];
  let server: TestServer;
  let admin: Admin;
  let token: string;
  let release: Release;

  beforeAll(async () => {
    ensureCompiled();
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    for (const key of FLAGS) {
      await admin.boolFlag(key, "production");
      await admin.set(key, "production", true);
    }
    token = await admin.sdkToken("traffic", "production");
    release = await admin.startRelease({
      environment: "production",
      flags: FLAGS.map((flagKey) => ({ flagKey, baselineVariant: "off" })),
      stages: [
        {
          audience: { kind: { case: "basisPoints", value: 5_000 } },
          variants: Object.fromEntries(FLAGS.map((k) => [k, "on"])),
          minDuration: { seconds: 3_600n },
        },
      ],
      policy: { window: { seconds: 1n } },
    });
    // Paused: windows are still collected, but the judge cannot roll back the failing canary.
    await admin.pauseRelease(release.id);
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });

  it("reads every flag in one scope per request and fails the requests the conditions match", async () => {
    const run = await traffic(
      [
        ...["--endpoint", server.url, ...FLAGS.flatMap((f) => ["--flag", f])],
        ...["--rps", "100", "--duration", "2", "--latency-ms", "on=1", "--latency-ms", "off=1"],
        // Canary units are served on/on/on: both of the first two conditions match, and the
        // larger P (1) wins. Control units are served off/off/off: the third condition matches
        // and its P (0) replaces the per-variant rate off=1.
        ...["--error-rate", "on=0", "--error-rate", "off=1"],
        ...["--error-when", "r1=on,r2=on:0", "--error-when", "r1=on,r3=on:1", "--error-when", "r2=off:0"],
        ...["--flush-ms", "500", "--seed", "7"],
      ],
      token,
    );
    const log = run.stderr;
    expect(run.code, log).toBe(0);
    expect(/^summary: .* sent=(\d+) completed=(\d+) .*metrics_flushed=yes/m.exec(log)?.slice(1), log).toEqual(["200", "200"]);
    const cohort = (name: string): [number, number] => {
      const m = new RegExp(`^  release ${release.id} ${name}: requests=(\\d+) errors=(\\d+) `, "m").exec(log);
      expect(m, `${name} line in:\n${log}`).not.toBeNull();
      return [Number(m![1]), Number(m![2])];
    };
    const [canary, canaryErrors] = cohort("canary");
    const [control, controlErrors] = cohort("control");
    expect([canary + control, canaryErrors, controlErrors], log).toEqual([200, canary, 0]);
    expect(canary, log).toBeGreaterThan(0);
    expect(control, log).toBeGreaterThan(0);
    // The first flag's variants keep their summary lines: on is the canary, off the control.
    expect(log).toContain(`  on: requests=${canary} errors=${canary} error_rate=1.000`);
    expect(log).toContain(`  off: requests=${control} errors=0 error_rate=0.000`);

    // The release's windows: one outcome per request in each cohort, and the cohort's size
    // counts requests too (not the three flags each read).
    let got = release;
    const sum = (name: string, of: "evaluations" | "outcomes" | "errors"): bigint =>
      got.windows
        .flatMap((w) => w.series.filter((s) => s.cohort === name))
        .reduce(
          (n, s) => n + (of === "errors" ? s.errors : of === "outcomes" ? s.successes + s.errors : s.evaluations.reduce((m, e) => m + e.count, 0n)),
          0n,
        );
    await eventually(
      async () => {
        got = await admin.release(release.id, 10_000);
        return sum("canary", "evaluations") + sum("control", "evaluations") >= 200n;
      },
      10_000,
      "a closed window with every report",
    );
    expect(["canary", "control"].map((c) => [sum(c, "evaluations"), sum(c, "outcomes"), sum(c, "errors")])).toEqual([
      [BigInt(canary), BigInt(canary), BigInt(canary)],
      [BigInt(control), BigInt(control), 0n],
    ]);
  });

  it.each([
    [["--error-when", "r1=on:2"], "--error-when 2: must be a probability between 0 and 1"],
    [["--error-when", "r1=on"], "--error-when wants FLAG=VARIANT[,FLAG=VARIANT...]:P"],
    [["--error-when", "r1=on,r9=on:0.5"], "r9 is not one of the --flag options"],
    [["--error-when", "r1:0.5"], '"r1" is not FLAG=VARIANT'],
    [["--flag", ""], "--flag must not be empty"],
    [["--outcome", "mem0.write=2"], "--outcome mem0.write=2: must be a probability between 0 and 1"],
    [["--outcome", "Mem0=1"], '"Mem0" is not a metric name'],
    [["--outcome-when", "w:r1=on:0.5"], "--outcome-when w:r1=on:0.5: no --outcome w=P"],
    [["--outcome", "w=1", "--outcome-when", "w:r9=on:0"], "r9 is not one of the --flag options"],
    [["--observe", "ms=0"], "--observe ms=0: must be positive"],
    [["--track", "score=4,x"], "--track score=4,x: the values must be finite numbers"],
  ])("exits 2 on bad arguments: %j", async (args, message) => {
    const run = await traffic(["--endpoint", server.url, "--flag", "r1", ...args], token);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(message);
  });
});
