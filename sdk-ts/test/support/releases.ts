/**
 * A snapshot of two releases and a plain flag, served by an in-memory FlagService, and an
 * in-memory MetricsService that keeps every report with data (real protobuf messages through
 * Connect's router transport): what the request-scope and tracking tests run against.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { FlagwireClient, type ClientOptions } from "@flagwire/sdk";
import { type Flag, FlagSchema, ValueType } from "../../src/gen/flagwire/v1/flag_pb.js";
import { FlagService, type Snapshot, SnapshotSchema } from "../../src/gen/flagwire/v1/flag_service_pb.js";
import { MetricsService, type ReportRequest } from "../../src/gen/flagwire/v1/metrics_pb.js";

export const WAIT = 10_000;

/**
 * A boolean flag of release `release`, laid out as the server lays out a stage with a share:
 * `[on w canary, off rest, off w control]` on the release's salt, so every flag of one release
 * puts a unit in the same cohort.
 */
export function releaseFlag(key: string, release: string, share: number): Flag {
  return create(FlagSchema, {
    key,
    type: ValueType.BOOLEAN,
    version: 1n,
    variants: [
      { key: "on", value: { kind: { case: "boolValue", value: true } } },
      { key: "off", value: { kind: { case: "boolValue", value: false } } },
    ],
    environments: {
      production: {
        enabled: true,
        offVariant: "off",
        defaultRule: {
          kind: {
            case: "split",
            value: {
              salt: `${release}-salt`,
              rolloutId: release,
              entries: [
                { variant: "on", weight: share, label: "canary" },
                { variant: "off", weight: 10_000 - 2 * share, label: "" },
                { variant: "off", weight: share, label: "control" },
              ],
            },
          },
        },
      },
    },
  });
}

/** A flag outside any release. */
export function plainFlag(key: string): Flag {
  return create(FlagSchema, {
    key,
    type: ValueType.BOOLEAN,
    version: 1n,
    variants: [{ key: "on", value: { kind: { case: "boolValue", value: true } } }],
    environments: { production: { enabled: true, offVariant: "on", defaultRule: { kind: { case: "variant", value: "on" } } } },
  });
}

/** Release "rel-a" (flags a1..a3, everyone canary or control) and "rel-b" (b1, 20 % each, a rest). */
export const SNAPSHOT: Snapshot = create(SnapshotSchema, {
  environment: "production",
  revision: 1n,
  flags: [
    releaseFlag("a1", "rel-a", 5_000),
    releaseFlag("a2", "rel-a", 5_000),
    releaseFlag("a3", "rel-a", 5_000),
    releaseFlag("b1", "rel-b", 2_000),
    plainFlag("p"),
  ],
});

/** The first user `user-<k>` whose cohorts in rel-a and rel-b are as asked ("" = the rest). */
const finder = new FlagwireClient({ offline: true, bootstrap: toBinary(SnapshotSchema, SNAPSHOT) });
export function user(a: string | undefined, b: string | undefined): string {
  for (let k = 0; k < 10_000; k++) {
    const ctx = { targetingKey: `user-${k}` };
    const ca = finder.getBooleanDetails("a1", ctx, false).cohort ?? "";
    const cb = finder.getBooleanDetails("b1", ctx, false).cohort ?? "";
    if ((a === undefined || ca === a) && (b === undefined || cb === b)) return `user-${k}`;
  }
  throw new Error(`no user in rel-a ${a} and rel-b ${b}`);
}

export const canaryA = user("canary", undefined);
export const controlA = user("control", undefined);

export type Mode = "up" | "down" | "invalid";

/** An in-memory server that serves SNAPSHOT and keeps every report with data. */
export function fakeServer() {
  const state = { mode: "up" as Mode, reports: [] as ReportRequest[] };
  const transport = createRouterTransport(({ service }) => {
    service(FlagService, {
      async *watch() {
        yield { event: { case: "snapshot", value: SNAPSHOT } };
        await new Promise(() => undefined);
      },
    });
    service(MetricsService, {
      report(r) {
        if (r.series.length === 0 && r.cohortOutcomes.length === 0 && r.metrics.length === 0 && r.droppedSeries === 0n) {
          return { accepted: true }; // acknowledgements
        }
        if (state.mode === "down") throw new ConnectError("connection refused", Code.Unavailable);
        if (state.mode === "invalid") throw new ConnectError("bad report", Code.InvalidArgument);
        state.reports.push(r);
        return { accepted: true };
      },
    });
  });
  return { transport, state };
}

/** A live client over a fresh `fakeServer`, flushing only when asked. */
export function harness(options: Partial<ClientOptions> = {}) {
  const { transport, state } = fakeServer();
  const client = new FlagwireClient({ transport, token: "t", metricsFlushIntervalMs: 3_600_000, ...options });
  return { client, state };
}

