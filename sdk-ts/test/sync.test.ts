/**
 * The Watch loop against a scripted in-memory FlagService: heartbeat timeout → reconnect, a gap
 * in revisions → reconnect resuming at the held revision, a heartbeat ahead of what is held →
 * reconnect, capped backoff, listeners and iterators ending on close; a batch of flags in one
 * revision (`flagsUpserted`) applied whole, by the snapshot and by the client.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { FlagwireClient, type ClientState, type FlagChange } from "@flagwire/sdk";
import { Snapshot } from "../src/engine/snapshot.js";
import { Reason } from "../src/gen/flagwire/v1/evaluation_pb.js";
import { type Flag, FlagSchema, ValueType } from "../src/gen/flagwire/v1/flag_pb.js";
import {
  ChangeSchema,
  FlagBatchSchema,
  FlagService,
  HeartbeatSchema,
  SnapshotSchema,
  type WatchRequest,
  type WatchResponse,
} from "../src/gen/flagwire/v1/flag_service_pb.js";
import { MetricsService } from "../src/gen/flagwire/v1/metrics_pb.js";
import { eventually } from "./support/server.js";

function flag(enabled: boolean, version: bigint, key = "f"): Flag {
  return create(FlagSchema, {
    key,
    type: ValueType.BOOLEAN,
    version,
    variants: [
      { key: "on", value: { kind: { case: "boolValue", value: true } } },
      { key: "off", value: { kind: { case: "boolValue", value: false } } },
    ],
    environments: { production: { enabled, offVariant: "off", defaultRule: { kind: { case: "variant", value: "on" } } } },
  });
}

const snapshot = (revision: bigint, enabled: boolean): WatchResponse["event"] => ({
  case: "snapshot",
  value: create(SnapshotSchema, { environment: "production", revision, flags: [flag(enabled, revision)] }),
});
const change = (revision: bigint, enabled: boolean): WatchResponse["event"] => ({
  case: "change",
  value: create(ChangeSchema, { revision, kind: { case: "flagUpserted", value: flag(enabled, revision) } }),
});
const batch = (revision: bigint, ...flags: Flag[]): WatchResponse["event"] => ({
  case: "change",
  value: create(ChangeSchema, { revision, kind: { case: "flagsUpserted", value: create(FlagBatchSchema, { flags }) } }),
});
const heartbeat = (revision: bigint): WatchResponse["event"] => ({
  case: "heartbeat",
  value: create(HeartbeatSchema, { revision }),
});
const never = (): Promise<void> => new Promise(() => undefined);

/** A FlagService whose n-th Watch call plays `script(n, request)`. */
function scripted(script: (call: number, req: WatchRequest) => AsyncGenerator<WatchResponse["event"]>) {
  const requests: WatchRequest[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(FlagService, {
      async *watch(req) {
        requests.push(req);
        for await (const event of script(requests.length, req)) yield { event };
      },
    });
    service(MetricsService, { report: () => ({ accepted: true }) });
  });
  return { transport, requests };
}

describe("the Watch loop", () => {
  it("reconnects when the stream is silent past the heartbeat timeout, resuming at the held revision", async () => {
    const { transport, requests } = scripted(async function* (call) {
      if (call === 1) yield snapshot(1n, false);
      else yield change(2n, true);
      await never();
    });
    const c = new FlagwireClient({ transport, token: "t", heartbeatTimeoutMs: 150, minBackoffMs: 10, maxBackoffMs: 20 });
    const states: ClientState[] = [];
    c.on("state", (s) => states.push(s));
    await c.waitReady(5_000);
    await eventually(() => c.revision === 2, 5_000, "revision 2 after the reconnect");
    expect(requests[1]!.sinceRevision).toBe(1n);
    expect(requests[1]!.instanceId).toBe(c.instanceId);
    expect(requests[1]!.sdkName).toBe("flagwire-ts");
    expect(states.slice(0, 3)).toEqual(["READY", "STALE", "READY"]);
    expect(c.getBoolean("f", {}, false)).toBe(true);
    await c.close();
  });

  it("reconnects on a gap in revisions, and on a heartbeat ahead of what it holds", async () => {
    const { transport, requests } = scripted(async function* (call) {
      if (call === 1) {
        yield snapshot(1n, false);
        yield change(3n, true); // 2 is missing
      } else if (call === 2) {
        yield heartbeat(5n); // ahead of 1
      } else {
        yield change(2n, true);
        yield heartbeat(2n);
      }
      await never();
    });
    const c = new FlagwireClient({ transport, token: "t", minBackoffMs: 5, maxBackoffMs: 10 });
    await eventually(() => c.revision === 2, 5_000, "revision 2");
    expect(requests.map((r) => r.sinceRevision)).toEqual([0n, 1n, 1n]);
    expect(c.state).toBe("READY");
    await c.close();
  });

  it("backs off exponentially up to the cap on failures", async () => {
    const times: number[] = [];
    const { transport } = scripted(async function* () {
      times.push(Date.now());
      await Promise.resolve();
      throw new ConnectError("down", Code.Unavailable);
      yield snapshot(1n, false);
    });
    const c = new FlagwireClient({ transport, token: "t", minBackoffMs: 40, maxBackoffMs: 160 });
    await eventually(() => times.length >= 6, 5_000, "six attempts");
    await c.close();
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Waits are jittered within [d/2, d] for d = 40, 80, 160, 160, 160.
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[0]).toBeLessThan(500);
    for (const g of gaps.slice(2)) {
      expect(g).toBeGreaterThanOrEqual(70);
      expect(g).toBeLessThan(1000); // generous: a loaded CI machine delays timers
    }
    expect(c.state).toBe("CONNECTING");
  });

  it("ends iterators and rejects waiters on close", async () => {
    const { transport } = scripted(async function* () {
      await never();
      yield snapshot(1n, false);
    });
    const c = new FlagwireClient({ transport, token: "t" });
    const changes = c.changes();
    const waiting = c.waitReady(60_000);
    const next = changes.next();
    await c.close();
    await expect(waiting).rejects.toMatchObject({ code: "CLOSED" });
    expect(await next).toEqual({ value: undefined, done: true });
    await c.close(); // idempotent
  });
});

describe("a batch of flags in one revision (flagsUpserted)", () => {
  const versions = (snap: Snapshot, keys: string[]): number[] => keys.map((k) => snap.evaluate(k, {}).flagVersion);
  const reasons = (snap: Snapshot, keys: string[]): Reason[] => keys.map((k) => snap.evaluate(k, {}).reason);

  it("Snapshot.apply upserts every flag of the batch in the one revision, the old snapshot untouched", () => {
    const old = Snapshot.of("production", 3, [flag(true, 1n, "a"), flag(true, 1n, "b"), flag(true, 1n, "c")], []);
    const change = batch(4n, flag(false, 2n, "a"), flag(false, 2n, "c"), flag(true, 1n, "d"));
    if (change.case !== "change") throw new Error("not a change");
    const next = old.apply(change.value);
    expect(next.revision).toBe(4);
    expect(versions(next, ["a", "b", "c", "d"])).toEqual([2, 1, 2, 1]);
    expect(reasons(next, ["a", "b", "c", "d"])).toEqual([Reason.DISABLED, Reason.STATIC, Reason.DISABLED, Reason.STATIC]);
    // What an evaluation already holding the old snapshot sees: none of the batch.
    expect(old.revision).toBe(3);
    expect(versions(old, ["a", "b", "c"])).toEqual([1, 1, 1]);
    expect(old.flagType("d")).toBeUndefined();
    expect(old.changedFlags(next)).toEqual(["a", "c", "d"]);
    // The same ordering rules as any change: a gap or an old revision is refused.
    expect(() => next.apply(change.value)).toThrow(RangeError);
    const gap = batch(6n, flag(true, 3n, "a"));
    if (gap.case !== "change") throw new Error("not a change");
    expect(() => next.apply(gap.value)).toThrow(RangeError);
    // A key twice in one batch: the last one applies. An empty batch still advances the revision.
    const twice = batch(5n, flag(false, 2n, "b"), flag(true, 3n, "b"));
    if (twice.case !== "change") throw new Error("not a change");
    const after = next.apply(twice.value);
    expect(versions(after, ["b"])).toEqual([3]);
    const empty = batch(6n);
    if (empty.case !== "change") throw new Error("not a change");
    const emptied = after.apply(empty.value);
    expect(emptied.revision).toBe(6);
    expect(after.changedFlags(emptied)).toEqual([]);
  });

  it("the client applies the batch whole, announces every key in one event, and resyncs on a gap", async () => {
    const { transport, requests } = scripted(async function* (call) {
      if (call === 1) {
        const flags = [flag(true, 1n, "a"), flag(true, 1n, "b"), flag(true, 1n, "c")];
        yield { case: "snapshot", value: create(SnapshotSchema, { environment: "production", revision: 1n, flags }) };
        yield batch(3n, flag(false, 3n, "a")); // 2 is missing: nothing of it may apply
      } else {
        yield batch(2n, flag(false, 2n, "a"), flag(false, 2n, "b"), flag(false, 2n, "b"), flag(true, 1n, "d"));
        yield heartbeat(2n);
      }
      await never();
    });
    const c = new FlagwireClient({ transport, token: "t", minBackoffMs: 5, maxBackoffMs: 10 });
    const seen: FlagChange[] = [];
    const inListener: boolean[][] = [];
    c.on("change", (change) => {
      seen.push(change);
      inListener.push(["a", "b", "c", "d"].map((k) => c.getBoolean(k, {}, false)));
    });
    await eventually(() => c.revision === 2, 5_000, "revision 2");
    expect(requests.map((r) => r.sinceRevision)).toEqual([0n, 1n]);
    expect(seen).toEqual([
      { revision: 1, flags: ["a", "b", "c"] },
      { revision: 2, flags: ["a", "b", "d"] },
    ]);
    expect(inListener).toEqual([
      [true, true, true, false],
      [false, false, true, true],
    ]);
    expect(["a", "b", "c", "d"].map((k) => c.getBoolean(k, {}, false))).toEqual([false, false, true, true]);
    expect(c.state).toBe("READY");
    await c.close();
  });
});
