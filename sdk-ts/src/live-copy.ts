/**
 * The copy of an environment a client serves and what it says about it: the snapshot, the
 * state (with the server's message while it is `ERROR`), the change and state events, and
 * `waitReady` over them. The Watch loop (`watch.ts`) and the short-lived owner (through
 * `FlagwireClient.install`) change it; everything else only reads it.
 */

import type { Snapshot } from "./engine/snapshot.js";
import { FlagwireError } from "./errors.js";
import { Channel } from "./events.js";
import type { ClientState, FlagChange } from "./types.js";

/** A client's snapshot, state and events; see the module's comment. */
export class LiveCopy {
  /** One event per applied revision. */
  readonly changeEvents = new Channel<FlagChange>();
  /** One event per state transition. */
  readonly stateEvents = new Channel<ClientState>();
  private current: Snapshot | undefined;
  private currentState: ClientState;
  private message: string | undefined;

  /** A copy serving `snapshot` (a bootstrap, if any) in `state`. */
  constructor(snapshot: Snapshot | undefined, state: ClientState) {
    this.current = snapshot;
    this.currentState = state;
  }

  /** The snapshot being served, if any. */
  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  /** The current state. */
  get state(): ClientState {
    return this.currentState;
  }

  /** Why the state is `ERROR` (the server's message), if it is. */
  get stateMessage(): string | undefined {
    return this.message;
  }

  /** Moves to `state`, announcing it unless it is the current one; `message` is kept for `ERROR` only. */
  setState(state: ClientState, message?: string): void {
    this.message = state === "ERROR" ? message : undefined;
    if (state === this.currentState) return;
    this.currentState = state;
    this.stateEvents.emit(state);
  }

  /** The copy could not be brought up to date: `STALE` when one is held, else `CONNECTING`. */
  markStale(): void {
    this.setState(this.current === undefined ? "CONNECTING" : "STALE");
  }

  /**
   * Serves `next`, announces the `changed` flags, then declares `READY`: announcing first means
   * whoever subscribes after `waitReady` resolves sees only later revisions.
   */
  apply(next: Snapshot, changed: string[]): void {
    this.current = next;
    this.changeEvents.emit({ revision: next.revision, flags: changed });
    this.setState("READY");
  }

  /**
   * Resolves once the state is `READY`; rejects with a `FlagwireError` on timeout (`TIMEOUT`),
   * a refused token (`UNAUTHORIZED`), or when the client is `closing` or `shutdown` aborts
   * while waiting (`CLOSED`).
   */
  waitReady(timeoutMs: number, closing: boolean, shutdown: AbortSignal): Promise<void> {
    if (this.currentState === "READY") return Promise.resolve();
    if (this.currentState === "ERROR") {
      return Promise.reject(new FlagwireError("UNAUTHORIZED", this.message ?? "token refused"));
    }
    if (closing) return Promise.reject(new FlagwireError("CLOSED", "the client is closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new FlagwireError("TIMEOUT", `not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        stop();
        reject(new FlagwireError("CLOSED", "the client is closed"));
      };
      const unsubscribe = this.stateEvents.on((state) => {
        if (state === "READY") {
          stop();
          resolve();
        } else if (state === "ERROR") {
          stop();
          reject(new FlagwireError("UNAUTHORIZED", this.message ?? "token refused"));
        }
      });
      const stop = (): void => {
        clearTimeout(timer);
        unsubscribe();
        shutdown.removeEventListener("abort", onAbort);
      };
      shutdown.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Ends every event iterator and drops the listeners (the client closed). */
  close(): void {
    this.changeEvents.close();
    this.stateEvents.close();
  }
}
