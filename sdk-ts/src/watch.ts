/**
 * A client's Watch loop (docs/reference/sync.md): one `FlagService.Watch` session at a time,
 * resumed from the revision held. What arrives is applied to the client's copy
 * (`live-copy.ts`), acknowledged and persisted; a heartbeat confirms the copy is current. A
 * session that ends, falls silent past the heartbeat timeout or cannot start is followed by
 * another after a capped exponential backoff with jitter, on the next endpoint when there are
 * several; after a refused token the loop waits the longest backoff. It stops at shutdown.
 */

import { toBinary } from "@bufbuild/protobuf";
import { ConnectError, type Client, type Transport } from "@connectrpc/connect";
import { authHeaders, type ClientOptions, type Settings } from "./client-options.js";
import { Snapshot } from "./engine/snapshot.js";
import { REFUSED } from "./errors.js";
import { rotateTransport } from "./failover.js";
import { type Change, type FlagService, SnapshotSchema } from "./gen/flagwire/v1/flag_service_pb.js";
import type { LiveCopy } from "./live-copy.js";
import { sleep } from "./util.js";

/** How a session ended; `ready` when it reached READY (which resets the backoff). */
type SessionEnd = { kind: "refused"; message: string } | { kind: "failed"; reason: string; ready: boolean } | { kind: "closed" };

function changedKeys(old: Snapshot, change: Change): string[] {
  switch (change.kind.case) {
    case "flagUpserted":
      return [change.kind.value.key];
    case "flagsUpserted":
      // Every flag of the batch, each once (a key repeated in a batch: the last one applies).
      return [...new Set(change.kind.value.flags.map((f) => f.key))];
    case "flagDeleted":
      return [change.kind.value];
    case "segmentUpserted":
    case "segmentDeleted":
      // A segment change can alter any flag that uses it; listeners re-read what they need.
      return old.flagKeys();
    default:
      return [];
  }
}

/** What the loop works with: the parts of the client it keeps current. */
export interface WatchTarget {
  /** The FlagService client the sessions are opened with. */
  readonly flags: Client<typeof FlagService>;
  /** The transport under `flags`, rotated to the next endpoint after a failed session. */
  readonly transport: Transport;
  /** The copy the loop updates. */
  readonly copy: LiveCopy;
  /** The instance watching, as the server's instance registry shows it. */
  readonly instanceId: string;
  /** The environment, the token, the SDK's name and version, the heartbeat timeout and backoffs. */
  readonly settings: Settings;
  /** Aborts at `close()`: the session in progress ends and no other starts. */
  readonly shutdown: AbortSignal;
  /** `ClientOptions.onSnapshot`, called with every snapshot the loop applies. */
  readonly onSnapshot: ClientOptions["onSnapshot"];
  /** Called with every revision the copy reached or was confirmed at, to acknowledge it. */
  applied(revision: number): void;
}

/** A running Watch loop; see the module's comment. */
export class WatchLoop {
  /** Settles once the loop has stopped, after `shutdown` aborted. */
  readonly done: Promise<void>;
  private persisting: Promise<void> = Promise.resolve();

  /** Starts the loop at once. */
  constructor(private readonly target: WatchTarget) {
    this.done = this.run();
  }

  /** The chain of `onSnapshot` calls; `close()` waits for it after the loop has stopped. */
  get persisted(): Promise<void> {
    return this.persisting;
  }

  private async run(): Promise<void> {
    const { copy, settings, shutdown: signal } = this.target;
    let delay = settings.minBackoffMs;
    while (!signal.aborted) {
      const end = await this.session();
      if (end.kind === "closed" || signal.aborted) return;
      let wait: number;
      if (end.kind === "refused") {
        copy.setState("ERROR", end.message);
        wait = settings.maxBackoffMs;
      } else {
        copy.markStale();
        // The next session goes to the next endpoint (replica), if there are several; a
        // refusal would be the same on every replica, so it stays.
        rotateTransport(this.target.transport);
        if (end.ready) delay = settings.minBackoffMs;
        const current = delay;
        delay = Math.min(delay * 2, settings.maxBackoffMs);
        // Jitter in [d/2, d]: spreads a fleet reconnecting after a server restart.
        wait = current / 2 + Math.random() * (current / 2);
      }
      await sleep(wait, signal);
    }
  }

  private async session(): Promise<SessionEnd> {
    const { flags, copy, settings, shutdown: clientShutdown } = this.target;
    const abort = new AbortController();
    // close() ends the session itself rather than waiting for the transport to honour the
    // abort: a fetch whose body is being read can miss it (seen under load with Node's fetch),
    // and close() would then wait out the heartbeat timeout.
    let closed!: () => void;
    const shutdown = new Promise<"closed">((resolve) => { closed = () => { resolve("closed"); }; });
    const onShutdown = (): void => {
      closed();
      abort.abort();
    };
    clientShutdown.addEventListener("abort", onShutdown, { once: true });
    let ready = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const stream = flags.watch(
        {
          environment: settings.environment,
          sinceRevision: BigInt(copy.snapshot?.revision ?? 0),
          instanceId: this.target.instanceId,
          sdkName: settings.sdk.name,
          sdkVersion: settings.sdk.version,
        },
        { headers: authHeaders(settings), signal: abort.signal },
      );
      const messages = stream[Symbol.asyncIterator]();
      for (;;) {
        const silent = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => { resolve("timeout"); }, settings.heartbeatTimeoutMs);
        });
        const next = await Promise.race([messages.next(), silent, shutdown]);
        clearTimeout(timer);
        if (next === "closed") return { kind: "closed" };
        if (next === "timeout") {
          abort.abort();
          return { kind: "failed", reason: "no message within the heartbeat timeout", ready };
        }
        if (next.done === true) return { kind: "failed", reason: "stream ended", ready };
        const event = next.value.event;
        const current = copy.snapshot;
        let nextSnapshot: Snapshot;
        let changed: string[];
        if (event.case === "snapshot") {
          nextSnapshot = Snapshot.fromProto(event.value);
          changed = current === undefined ? nextSnapshot.flagKeys() : current.changedFlags(nextSnapshot);
        } else if (event.case === "change") {
          if (current === undefined) return { kind: "failed", reason: "a change arrived before any snapshot", ready };
          try {
            nextSnapshot = current.apply(event.value);
          } catch (e) {
            // A gap: reconnecting resumes from what we hold, and the server fills it.
            return { kind: "failed", reason: e instanceof Error ? e.message : "gap", ready };
          }
          changed = changedKeys(current, event.value);
        } else if (event.case === "heartbeat") {
          const held = current?.revision ?? 0;
          if (Number(event.value.revision) > held) {
            return { kind: "failed", reason: `heartbeat at ${event.value.revision} but holding ${held}`, ready };
          }
          if (current !== undefined) {
            // The copy is confirmed current: the session is healthy, and a copy never
            // acknowledged (a bootstrap) is acknowledged now.
            ready = true;
            copy.setState("READY");
            this.target.applied(current.revision);
          }
          continue;
        } else {
          continue;
        }
        ready = true;
        copy.apply(nextSnapshot, changed);
        this.target.applied(nextSnapshot.revision);
        this.persist(nextSnapshot);
      }
    } catch (e) {
      if (clientShutdown.aborted) return { kind: "closed" };
      const err = ConnectError.from(e);
      if (REFUSED.has(err.code)) return { kind: "refused", message: err.rawMessage };
      return { kind: "failed", reason: err.message, ready };
    } finally {
      clearTimeout(timer);
      abort.abort();
      clientShutdown.removeEventListener("abort", onShutdown);
    }
  }

  private persist(snapshot: Snapshot): void {
    const save = this.target.onSnapshot;
    if (save === undefined) return;
    const bytes = toBinary(SnapshotSchema, snapshot.toProto());
    this.persisting = this.persisting
      .then(() => save(bytes))
      .catch(() => {
        // Persisting is best effort: the next applied revision tries again.
      });
  }
}
