/**
 * Release cohort outcomes against the real server binary, over both transports: a three-flag
 * release (ReleaseService: CreateRelease + StartRelease, one stage with a 50 % share, so the
 * units are canary or control) receives scoped traffic from the live client (`client.scope`) and
 * from `withFlags`, and the release's closed windows (GetRelease with `windowLimit`) count one
 * outcome per scope in each cohort, and size each cohort by its scopes (not by the flags they
 * read): the server accepted the reports' `cohortOutcomes` and judged on them, not on the
 * per-flag series.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { FlagwireClient, ShortLivedFlags, withFlags, type FlagReader } from "@flagwire/sdk";
import type { Release } from "../src/gen/flagwire/v1/release_pb.js";
import { ReleaseState } from "../src/gen/flagwire/v1/release_pb.js";
import { type Admin, eventually, integration, TestServer, TRANSPORTS, transportFor } from "./support/server.js";

const WAIT = 10_000;
const FLAGS = ["search-ui", "search-ranker", "search-cache"];
/** Requests through the live client's scopes, and through withFlags. */
const LIVE_SCOPES = 30;
const SHORT_LIVED_SCOPES = 8;

interface Tally {
  scopes: number;
  errors: number;
}

/** The window sums of one cohort: evaluations, successes and errors. */
function sums(release: Release, cohort: string): { evaluations: bigint; successes: bigint; errors: bigint } {
  const total = { evaluations: 0n, successes: 0n, errors: 0n };
  for (const w of release.windows) {
    for (const s of w.series.filter((x) => x.cohort === cohort)) {
      total.evaluations += s.evaluations.reduce((n, e) => n + e.count, 0n);
      total.successes += s.successes;
      total.errors += s.errors;
    }
  }
  return total;
}

integration.each(TRANSPORTS)("release cohort outcomes over %s", (kind) => {
  let server: TestServer;
  let admin: Admin;
  let token: string;
  let release: Release;

  beforeAll(async () => {
    server = await TestServer.start();
    admin = server.admin();
    await admin.env("production");
    for (const key of FLAGS) {
      await admin.boolFlag(key, "production");
      await admin.set(key, "production", true);
    }
    token = await admin.sdkToken("svc", "production");
    release = await admin.startRelease({
      name: "search epic",
      environment: "production",
      flags: FLAGS.map((flagKey) => ({ flagKey, baselineVariant: "off" })),
      stages: [
        {
          name: "half",
          audience: { kind: { case: "basisPoints", value: 5_000 } },
          variants: Object.fromEntries(FLAGS.map((k) => [k, "on"])),
          minDuration: { seconds: 3_600n },
        },
      ],
      policy: { window: { seconds: 1n } },
    });
    expect(release.state).toBe(ReleaseState.RUNNING);
    // Paused, the release keeps serving its stage and collecting windows, and the judge takes no
    // decision (a chance sample-ratio alarm on a few dozen units must not roll it back mid-test).
    expect((await admin.pauseRelease(release.id)).state).toBe(ReleaseState.PAUSED);
  });
  afterAll(async () => {
    admin.close();
    await server.dispose();
  });

  /** Reads every flag of the release for `user` in `f`; returns the one cohort they served. */
  function readAll(f: FlagReader, user: string): string {
    const cohorts = FLAGS.map((key) => {
      const d = f.getBooleanDetails(key, { targetingKey: user }, false);
      expect(d.rolloutId, `${key} for ${user}`).toBe(release.id);
      return d.cohort ?? "";
    });
    // One salt per release: a unit is in the same cohort for every flag.
    expect(new Set(cohorts).size, `${user}: ${cohorts.join(",")}`).toBe(1);
    return cohorts[0]!;
  }

  it("counts one outcome per request scope in each cohort, and every flag read as an evaluation", async () => {
    const tally = new Map<string, Tally>([
      ["canary", { scopes: 0, errors: 0 }],
      ["control", { scopes: 0, errors: 0 }],
    ]);
    const count = (cohort: string, failed: boolean): void => {
      const t = tally.get(cohort);
      if (t === undefined) throw new Error(`a unit outside both cohorts: ${JSON.stringify(cohort)}`);
      t.scopes++;
      if (failed) t.errors++;
    };

    const transport = transportFor(kind, server.url);
    const client = new FlagwireClient({ transport, token, metricsFlushIntervalMs: 3_600_000, onClose: () => transport.close?.() });
    await client.waitReady(WAIT);
    const started = await admin.revision("production");
    await eventually(() => client.revision >= started, WAIT, "the release's revision");
    for (let i = 0; i < LIVE_SCOPES; i++) {
      const failed = i % 4 === 0;
      const work = client.scope((f) => {
        count(readAll(f, `user-${i}`), failed);
        if (failed) throw new Error("request failed");
      });
      if (failed) await expect(work).rejects.toThrow("request failed");
      else await work;
    }
    expect(await client.flush()).toBe(true); // accepted: not refused as invalid

    const shortLived = transportFor(kind, server.url);
    const flags = new ShortLivedFlags({ transport: shortLived, token });
    const handler = withFlags(flags, (_ctx: unknown, user: string, f) => {
      count(readAll(f, user), false);
    });
    for (let i = 0; i < SHORT_LIVED_SCOPES; i++) await handler(null, `user-${LIVE_SCOPES + i}`);
    expect(flags.lastError).toBeUndefined();

    const canary = tally.get("canary")!;
    const control = tally.get("control")!;
    expect(canary.scopes + control.scopes).toBe(LIVE_SCOPES + SHORT_LIVED_SCOPES);
    expect(canary.scopes, "both cohorts get traffic").toBeGreaterThan(0);
    expect(control.scopes, "both cohorts get traffic").toBeGreaterThan(0);

    // Every report is in a closed window once the windows count all the evaluations.
    const evaluations = BigInt(LIVE_SCOPES + SHORT_LIVED_SCOPES);
    let got = release;
    await eventually(
      async () => {
        got = await admin.release(release.id, 10_000);
        return sums(got, "canary").evaluations + sums(got, "control").evaluations >= evaluations;
      },
      WAIT,
      "a closed window with every report",
    );
    for (const [cohort, t] of tally) {
      const s = sums(got, cohort);
      expect(
        { evaluations: s.evaluations, outcomes: s.successes + s.errors, errors: s.errors },
        `${cohort}: ${t.scopes} scopes of ${FLAGS.length} flags`,
      ).toEqual({ evaluations: BigInt(t.scopes), outcomes: BigInt(t.scopes), errors: BigInt(t.errors) });
    }
    expect(got.windows.reduce((n, w) => n + w.reports, 0n)).toBeGreaterThanOrEqual(1n + BigInt(SHORT_LIVED_SCOPES));
    await client.close();
    shortLived.close?.();
  });
});
