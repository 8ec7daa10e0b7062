/**
 * `@flagwire/sdk/openfeature` through the official `@openfeature/server-sdk` client against the
 * real server: every vector case (each case file restored into its own server), provider
 * events from the sync states, mapped error codes, tracking reaching the usage rows, a hook,
 * and the example.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import {
  type BaseHook,
  type Client,
  ErrorCode,
  type EvaluationDetails,
  type FlagValue,
  OpenFeature,
  ProviderEvents,
  ProviderStatus,
} from "@openfeature/server-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@flagwire/sdk/node";
import { FlagwireProvider } from "@flagwire/sdk/openfeature";
import { ADMIN_TOKEN, type Admin, eventually, integration, TestServer } from "./support/server.js";
import { VECTORS } from "./support/vectors.js";
import { SDK_TOKEN, vectorServer } from "./support/vector-server.js";

interface Case {
  description: string;
  flag: string;
  type: string;
  default: unknown;
  context?: { targetingKey?: string; attributes?: Record<string, never> };
  expected: {
    value: unknown;
    variant: string;
    reason: string;
    errorCode: string | null;
    cohort?: string;
    rolloutId?: string;
    flagVersion?: number | string;
  };
}
interface CaseFile {
  environment: string;
  flags: (JsonValue & { key: string; type: string })[];
  segments?: JsonValue[];
  cases: Case[];
}

const auth = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
const index = JSON.parse(readFileSync(join(VECTORS, "index.json"), "utf8")) as { files: string[] };
const JS_TYPES: Record<string, string> = {
  VALUE_TYPE_BOOLEAN: "boolean",
  VALUE_TYPE_STRING: "string",
  VALUE_TYPE_INTEGER: "number",
  VALUE_TYPE_FLOAT: "number",
  VALUE_TYPE_OBJECT: "object",
};

/**
 * The OpenFeature call of a case: JavaScript has one number type, so `integer` and `float` are
 * both `getNumberDetails`; `any` (OpenFeature has no untyped call) uses the flag's own type, or
 * for a missing flag the type of the default.
 */
function callType(file: CaseFile, c: Case): string {
  if (c.type === "integer" || c.type === "float") return "number";
  if (c.type !== "any") return c.type;
  const flag = file.flags.find((f) => f.key === c.flag);
  if (flag !== undefined) return JS_TYPES[flag.type]!;
  return c.default === null ? "object" : typeof c.default;
}

/**
 * A case OpenFeature's JavaScript API cannot express: an integer flag read as a float or the
 * reverse is a TYPE_MISMATCH in Flagwire, but both are `number` here, so the value is served.
 */
function numericMismatch(file: CaseFile, c: Case): boolean {
  if (c.expected.errorCode !== "TYPE_MISMATCH" || (c.type !== "integer" && c.type !== "float")) return false;
  const flag = file.flags.find((f) => f.key === c.flag);
  return flag !== undefined && JS_TYPES[flag.type] === "number";
}

/**
 * Cases OpenFeature's JavaScript context cannot carry: it is one flat object whose
 * `targetingKey` field IS the targeting key, so an attribute named `targetingKey` apart from
 * the key cannot be sent. Kept here with that reason; the test below checks the list.
 */
const INEXPRESSIBLE = [
  "target: an attribute named targetingKey is not the targeting key",
  "clause on targetingKey ignores an attribute named targetingKey (key absent: missing)",
  "clause on targetingKey uses the real key, not an attribute named targetingKey",
  "IN_SEGMENT [qa-keys] (segment rule on targetingKey): an attribute named targetingKey is not the key -> no match",
  "TARGETING_KEY_MISSING: an attribute named targetingKey does not count",
];
const inexpressible: string[] = [];

function hasTargetingKeyAttribute(c: Case): boolean {
  return c.context?.attributes !== undefined && "targetingKey" in c.context.attributes;
}

async function evaluate(client: Client, kind: string, c: Case): Promise<EvaluationDetails<FlagValue>> {
  const ctx = { ...(c.context?.attributes ?? {}), ...(c.context?.targetingKey !== undefined && { targetingKey: c.context.targetingKey }) };
  switch (kind) {
    case "boolean":
      return client.getBooleanDetails(c.flag, c.default as boolean, ctx);
    case "string":
      return client.getStringDetails(c.flag, c.default as string, ctx);
    case "number":
      return client.getNumberDetails(c.flag, c.default as number, ctx);
    default:
      return client.getObjectDetails(c.flag, c.default as never, ctx);
  }
}

afterAll(async () => {
  await OpenFeature.close();
});

let numericCases = 0;
for (const name of index.files) {
  const file = JSON.parse(readFileSync(join(VECTORS, name), "utf8")) as CaseFile;
  integration(`OpenFeature: ${name}`, () => {
    let server: TestServer;
    let client: Client;
    beforeAll(async () => {
      server = await vectorServer(join(VECTORS, name));
      const flagwire = createClient({ baseUrl: server.url, token: SDK_TOKEN, metrics: false });
      await OpenFeature.setProviderAndWait(name, new FlagwireProvider(flagwire));
      client = OpenFeature.getClient(name);
    });
    afterAll(async () => {
      await OpenFeature.clearProviders();
      await server.dispose();
    });
    for (const c of file.cases) {
      if (hasTargetingKeyAttribute(c)) {
        inexpressible.push(c.description);
        continue;
      }
      const numeric = numericMismatch(file, c);
      if (numeric) numericCases++;
      it(c.description, async () => {
        const got = await evaluate(client, callType(file, c), c);
        if (numeric) {
          // Documented: served, not a mismatch (see numericMismatch).
          expect([typeof got.value, got.errorCode]).toEqual(["number", undefined]);
          return;
        }
        const e = c.expected;
        expect(got.value).toEqual(e.value);
        expect(got.variant ?? "").toBe(e.variant);
        expect(got.reason).toBe(e.reason);
        expect(got.errorCode ?? null).toBe(e.errorCode ?? null);
        expect(got.flagMetadata.cohort ?? "").toBe(e.cohort ?? "");
        expect(got.flagMetadata.rolloutId ?? "").toBe(e.rolloutId ?? "");
        if (e.flagVersion !== undefined && e.errorCode === null) expect(got.flagMetadata.flagVersion).toBe(Number(e.flagVersion));
      });
    }
  });
}

describe("the cases OpenFeature's JavaScript API cannot express", () => {
  it("are the listed targetingKey-attribute cases and the integer/float mismatches", () => {
    // When the vectors change, this list (and the docs' mention) follows.
    expect(inexpressible.sort()).toEqual([...INEXPRESSIBLE].sort());
    expect(numericCases).toBeGreaterThan(0);
  });
});

integration("FlagwireProvider against a live server", () => {
  let server: TestServer;
  let admin: Admin;
  let token: string;
  beforeAll(async () => {
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    await admin.boolFlag("new-checkout", "production");
    await admin.stringFlag("banner", "production");
    token = await admin.sdkToken("svc", "production");
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });
  afterEach(async () => {
    OpenFeature.clearHooks();
    await OpenFeature.clearProviders();
  });

  function provider(options: { metricsFlushIntervalMs?: number; token?: string; readyTimeoutMs?: number } = {}): FlagwireProvider {
    const client = createClient({
      baseUrl: server.url,
      token: options.token ?? token,
      minBackoffMs: 50,
      maxBackoffMs: 200,
      ...(options.metricsFlushIntervalMs !== undefined && { metricsFlushIntervalMs: options.metricsFlushIntervalMs }),
    });
    return new FlagwireProvider(client, { readyTimeoutMs: options.readyTimeoutMs ?? 5_000 });
  }

  it("maps changes and sync states to provider events", async () => {
    await OpenFeature.setProviderAndWait("events", provider());
    const client = OpenFeature.getClient("events");
    const seen: [ProviderEvents, unknown][] = [];
    for (const event of [ProviderEvents.Ready, ProviderEvents.Stale, ProviderEvents.Error, ProviderEvents.ConfigurationChanged]) {
      client.addHandler(event, (details) => {
        seen.push([event, details]);
      });
    }
    const count = (event: ProviderEvents): number => seen.filter(([e]) => e === event).length;
    const ctx = { targetingKey: "user-1" };
    expect(await client.getBooleanValue("new-checkout", true, ctx)).toBe(false);

    await admin.set("new-checkout", "production", true);
    await eventually(() => count(ProviderEvents.ConfigurationChanged) === 1, 10_000, "CONFIGURATION_CHANGED");
    const changed = seen.find(([e]) => e === ProviderEvents.ConfigurationChanged)![1] as { flagsChanged: string[]; metadata: { revision: number } };
    expect(changed.flagsChanged).toEqual(["new-checkout"]);
    expect(changed.metadata.revision).toBe(await admin.revision("production"));
    expect(await client.getBooleanValue("new-checkout", false, ctx)).toBe(true);

    const readyBefore = count(ProviderEvents.Ready);
    await server.kill();
    await eventually(() => count(ProviderEvents.Stale) === 1, 10_000, "PROVIDER_STALE");
    expect(client.providerStatus).toBe(ProviderStatus.STALE);
    const stale = await client.getBooleanDetails("new-checkout", false, ctx);
    expect([stale.value, stale.errorCode]).toEqual([true, undefined]); // the last copy
    await server.restart();
    await eventually(() => count(ProviderEvents.Ready) === readyBefore + 1, 10_000, "PROVIDER_READY again");
    expect(client.providerStatus).toBe(ProviderStatus.READY);

    // A refused token: revoke it and restart the server so the stream reconnects.
    const tokens = await admin.admin.listApiTokens({}, auth);
    const svc = tokens.tokens.find((t) => t.name === "svc")!;
    await admin.admin.revokeApiToken({ id: svc.id, reason: "test" }, auth);
    await server.restart();
    await eventually(() => count(ProviderEvents.Error) === 1, 10_000, "PROVIDER_ERROR");
    expect(client.providerStatus).toBe(ProviderStatus.ERROR);
    expect(await client.getBooleanValue("new-checkout", false, ctx)).toBe(true);
    token = await admin.sdkToken("svc-2", "production");
  });

  it("fails initialization on a refused token", async () => {
    await expect(OpenFeature.setProviderAndWait("refused", provider({ token: "fw_not_a_token" }))).rejects.toThrow(/refused|unknown/);
    const client = OpenFeature.getClient("refused");
    expect(client.providerStatus).toBe(ProviderStatus.ERROR);
    const d = await client.getBooleanDetails("new-checkout", true, { targetingKey: "u" });
    expect([d.value, d.reason, d.errorCode]).toEqual([true, "ERROR", ErrorCode.PROVIDER_NOT_READY]);
  });

  it("becomes READY when the flags arrive after the ready timeout", async () => {
    await server.kill();
    const p = provider({ readyTimeoutMs: 200 });
    await expect(OpenFeature.setProviderAndWait("late", p)).rejects.toThrow(/not ready/);
    const client = OpenFeature.getClient("late");
    expect(client.providerStatus).toBe(ProviderStatus.ERROR);
    const early = await client.getBooleanDetails("new-checkout", true, { targetingKey: "u" });
    expect([early.value, early.errorCode]).toEqual([true, ErrorCode.PROVIDER_NOT_READY]);
    await server.restart();
    await eventually(() => client.providerStatus === ProviderStatus.READY, 10_000, "READY after the timeout");
    const late = await client.getBooleanDetails("new-checkout", false, { targetingKey: "u" });
    expect([late.errorCode, typeof late.variant]).toEqual([undefined, "string"]);
  });

  it("maps errors to OpenFeature's codes and never throws", async () => {
    await OpenFeature.setProviderAndWait("errors", provider());
    const client = OpenFeature.getClient("errors");
    const ctx = { targetingKey: "user-1" };
    const mismatch = await client.getStringDetails("new-checkout", "dflt", ctx);
    expect([mismatch.value, mismatch.reason, mismatch.errorCode]).toEqual(["dflt", "ERROR", ErrorCode.TYPE_MISMATCH]);
    const missing = await client.getNumberDetails("no-such-flag", 7, ctx);
    expect([missing.value, missing.errorCode]).toEqual([7, ErrorCode.FLAG_NOT_FOUND]);
    const invalid = await client.getBooleanDetails("new-checkout", false, { targetingKey: "u", nested: { a: 1 } });
    expect(invalid.errorCode).toBe(ErrorCode.INVALID_CONTEXT);
    const ok = await client.getStringDetails("banner", "x", ctx);
    expect([ok.value, ok.variant, ok.reason, ok.errorCode, ok.flagMetadata]).toEqual(["red", "red", "STATIC", undefined, { flagVersion: 1 }]);
  });

  it("sends track() to the server's usage rows", async () => {
    const p = provider({ metricsFlushIntervalMs: 3_600_000 });
    await OpenFeature.setProviderAndWait("track", p);
    const client = OpenFeature.getClient("track");
    const ctx = { targetingKey: "user-1" };
    client.track("signup", ctx, { flags: ["banner"] });
    client.track("hits", ctx, { value: 3, flags: "banner" });
    client.track("mem0_write", ctx, { kind: "outcome", ok: false, flags: "banner" });
    client.track("fast_path_ms", ctx, { value: 2, kind: "observe", flags: "banner" });
    expect(await p.client.flush()).toBe(true);
    const rows = await admin.usage("production", "banner");
    const row = rows.find((r) => r.variant === "red")!;
    const stats = Object.fromEntries(row.metrics.map((m) => [m.name, [Number(m.n), m.value]]));
    expect(Object.keys(stats).sort()).toEqual(["fast_path_ms", "hits", "mem0_write", "signup"]);
    expect([stats.signup, stats.hits, stats.mem0_write]).toEqual([
      [1, 1],
      [1, 3],
      [1, 0],
    ]);
  });

  it("runs hooks, whose context reaches the provider", async () => {
    await OpenFeature.setProviderAndWait("hooks", provider());
    const client = OpenFeature.getClient("hooks");
    expect(await client.getStringValue("banner", "x", { targetingKey: "user-1" })).toBe("red");
    const seen: [string, unknown, string | undefined][] = [];
    const errors: string[] = [];
    const hook: BaseHook = {
      before: () => ({ plan: "pro" }),
      after: (ctx, details) => {
        seen.push([ctx.flagKey, details.value, details.variant]);
      },
      error: (ctx) => {
        errors.push(ctx.flagKey);
      },
    };
    client.addHooks(hook);
    expect(await client.getStringValue("banner", "x", { targetingKey: "user-1" })).toBe("blue");
    expect(await client.getStringValue("missing", "x", { targetingKey: "user-1" })).toBe("x");
    expect(seen).toEqual([["banner", "blue", "blue"]]);
    expect(errors).toEqual(["missing"]);
  });

  it("runs the example", async () => {
    const { run } = await import("../examples/openfeature.js");
    const printed = await run(server.url, token);
    expect(printed).toEqual(["new-checkout for user-42: true (reason STATIC, variant on)"]);
    await eventually(
      async () => (await admin.usage("production", "new-checkout")).some((r) => r.metrics.some((m) => m.name === "checkout")),
      10_000,
      "the example's tracked event in the usage rows",
    );
  });
});
