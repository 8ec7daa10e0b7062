/**
 * Every scenario of tests/sync/ (docs/reference/sync.md in executable form) against the real
 * `FlagwireClient`, over connect-es's in-memory router transport, on vitest's fake clock.
 *
 * Time moves only when the runner lets it: while it waits for a request it jumps from timer to
 * timer (as tokio's paused clock does), so the virtual time of each request is exact.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FlagwireClient, SDK_NAME } from "@flagwire/sdk";
import { type AckCall, FakeSyncServer, type Flags, type Message, type WatchCall, event, snapshotBytes } from "./support/fake-sync-server.js";
import { VECTORS } from "./support/vectors.js";

const SCENARIOS = join(VECTORS, "../sync");
/** Gives up waiting for a request after this much virtual time. */
const PATIENCE_MS = 600_000;
/** Timer granularity allowed on each side of a `delay_ms` bound. */
const SLACK_MS = 1;

type Delay = [number, number];
type Step =
  | { expect_watch: { since_revision: number; delay_ms: Delay } }
  | { send: Message }
  | { end: { code: string; message?: string } }
  | { expect_ack: { revision: number; delay_ms: Delay; reply?: string } }
  | { release_ack: Record<string, never> }
  | { advance: { ms: number } }
  | { expect_state: { state: string; revision: number; values?: Flags } };

interface Scenario {
  description: string;
  options: { min_backoff_ms: number; max_backoff_ms: number; heartbeat_timeout_ms: number };
  bootstrap?: { revision: number; flags: Flags };
  steps: Step[];
}

const index = JSON.parse(readFileSync(join(SCENARIOS, "index.json"), "utf8")) as { files: string[] };
const scenarios = index.files.map((file) => ({ file, ...(JSON.parse(readFileSync(join(SCENARIOS, file), "utf8")) as Scenario) }));

/** Lets every task run that can without the clock moving (real macrotask turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Runs one scenario; throws naming the step that failed. */
async function run(scenario: Scenario): Promise<void> {
  const server = new FakeSyncServer();
  const start = Date.now();
  const { min_backoff_ms, max_backoff_ms, heartbeat_timeout_ms } = scenario.options;
  const client = new FlagwireClient({
    transport: server.transport,
    token: "fw_scenario",
    minBackoffMs: min_backoff_ms,
    maxBackoffMs: max_backoff_ms,
    heartbeatTimeoutMs: heartbeat_timeout_ms,
    metrics: false,
    ...(scenario.bootstrap && { bootstrap: snapshotBytes(scenario.bootstrap.revision, scenario.bootstrap.flags) }),
  });
  let current: WatchCall | undefined;
  let held: AckCall | undefined;
  let previous = start;
  const seen = { watches: [] as WatchCall[], acks: [] as AckCall[] };

  /** Waits (moving the clock from timer to timer) until `queue` has a request. */
  async function next<T>(queue: T[], what: string): Promise<T> {
    for (;;) {
      await settle();
      const item = queue.shift();
      if (item !== undefined) return item;
      if (Date.now() - start > PATIENCE_MS) throw new Error(`${what}: none within ${PATIENCE_MS} virtual ms`);
      if (vi.getTimerCount() === 0) throw new Error(`${what}: none, and no timer left to wait for`);
      await vi.advanceTimersToNextTimerAsync();
    }
  }
  const within = (at: number, [lo, hi]: Delay, what: string): void => {
    const delay = at - previous;
    if (delay < lo - SLACK_MS || delay > hi + SLACK_MS) throw new Error(`${what} came ${delay} ms after the previous step, not within [${lo}, ${hi}]`);
  };

  for (const [i, step] of scenario.steps.entries()) {
    const where = `step ${i + 1} ${JSON.stringify(step)}`;
    try {
      if ("expect_watch" in step) {
        const call = await next(server.watches, "Watch call");
        seen.watches.push(call);
        within(call.at, step.expect_watch.delay_ms, "the Watch call");
        expect(call.request.sinceRevision, "since_revision").toBe(BigInt(step.expect_watch.since_revision));
        current = call;
        previous = call.at;
      } else if ("expect_ack" in step) {
        const ack = await next(server.acks, "acknowledgement");
        seen.acks.push(ack);
        within(ack.at, step.expect_ack.delay_ms, "the acknowledgement");
        expect(ack.request.appliedRevision, "applied_revision").toBe(BigInt(step.expect_ack.revision));
        const reply = step.expect_ack.reply ?? "OK";
        if (reply === "HOLD") held = ack;
        else ack.reply(reply);
        previous = ack.at;
      } else if ("send" in step) {
        if (current === undefined) throw new Error("no Watch call to send on");
        current.send(event(step.send));
        previous = Date.now();
      } else if ("end" in step) {
        if (current === undefined) throw new Error("no Watch call to end");
        current.end(step.end.code, step.end.message ?? "");
        previous = Date.now();
      } else if ("release_ack" in step) {
        if (held === undefined) throw new Error("no acknowledgement is held");
        held.reply("OK");
        held = undefined;
        previous = Date.now();
      } else if ("advance" in step) {
        await vi.advanceTimersByTimeAsync(step.advance.ms);
        previous = Date.now();
      } else {
        previous = Date.now();
        await settle();
        const want = step.expect_state;
        expect({ state: client.state, revision: client.revision }).toEqual({ state: want.state, revision: want.revision });
        for (const [key, value] of Object.entries(want.values ?? {})) {
          expect(client.getBoolean(key, {}, !value), `flag ${key}`).toBe(value);
        }
      }
    } catch (e) {
      await client.close();
      throw new Error(`${where} at ${Date.now() - start} virtual ms: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  await settle();
  const left = [...server.watches.map((w) => `Watch(since ${w.request.sinceRevision})`), ...server.acks.map((a) => `ack ${a.request.appliedRevision}`)];
  await client.close();
  expect(left, "requests no step expected").toEqual([]);
  // Invariants of every request.
  for (const w of seen.watches) expect([w.request.instanceId, w.request.sdkName]).toEqual([client.instanceId, SDK_NAME]);
  for (const a of seen.acks) expect([a.request.instanceId, a.request.sdkName, a.request.series]).toEqual([client.instanceId, SDK_NAME, []]);
  const sequences = seen.acks.map((a) => Number(a.request.sequence));
  expect(sequences, "Report sequence numbers increase").toEqual([...sequences].sort((a, b) => a - b));
  expect(new Set(sequences).size, "Report sequence numbers are distinct").toBe(sequences.length);
}

describe("sync scenarios (tests/sync/)", () => {
  beforeEach(() => {
    // setImmediate stays real: settle() uses it to let in-memory I/O run without moving time.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("lists every scenario file", () => {
    expect(scenarios.length).toBeGreaterThan(0);
  });

  for (const scenario of scenarios) {
    it(`${scenario.file}: ${scenario.description}`, async () => {
      await run(scenario);
    });
  }
});
