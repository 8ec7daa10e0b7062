/**
 * A client's options: `ClientOptions` as callers write them, the SDK's name and version, and
 * `parseOptions`, which checks them and applies the defaults. Every refusal of a client's
 * construction (`CONFIG`, `BOOTSTRAP`) is decided here, before the client has started a timer
 * or a stream, so a refused client leaves nothing running.
 */

import { fromBinary } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { Snapshot } from "./engine/snapshot.js";
import { FlagwireError } from "./errors.js";
import { SnapshotSchema } from "./gen/flagwire/v1/flag_service_pb.js";
import { nowMs } from "./util.js";

/** The SDK's name, as the server's instance registry shows it. */
export const SDK_NAME = "flagwire-ts";
/** The SDK's version. */
export const SDK_VERSION = "0.1.0";

/** Options of a `FlagwireClient`. Durations are in milliseconds. */
export interface ClientOptions {
  /**
   * How to reach the server: `createNodeTransport` (`@flagwire/sdk/node`) or
   * `createFetchTransport` (`@flagwire/sdk/fetch`), or a `FailoverTransport` over several
   * endpoints, which the client moves to the next endpoint after every session that ended or
   * could not start (a refusal excepted). Required unless `offline`.
   */
  readonly transport?: Transport;
  /** An sdk token (or another role's token plus `environment`). Required unless `offline`. */
  readonly token?: string;
  /** The environment to watch, for admin or read-only tokens; sdk tokens need none. */
  readonly environment?: string;
  /** A stream silent this long is treated as dead and reconnected (default 45,000). */
  readonly heartbeatTimeoutMs?: number;
  /** First reconnection delay; doubles per failure, with jitter, and starts over once READY (default 100). */
  readonly minBackoffMs?: number;
  /** Largest reconnection delay, and the wait after a refused token (default 30,000). */
  readonly maxBackoffMs?: number;
  /** How often usage and outcome metrics are sent (default 10,000). */
  readonly metricsFlushIntervalMs?: number;
  /** Count evaluations and outcomes and report them (default true; always off offline). */
  readonly metrics?: boolean;
  /**
   * Series (flag, variant, cohort, rollout id) held between flushes at most, and (release,
   * cohort) outcome keys per window at most (default 10,000 each).
   */
  readonly maxSeries?: number;
  /**
   * A serialized `flagwire.v1.Snapshot` (the Rust SDK's bootstrap-file format) to start from:
   * the client serves it (state `STALE`) until the server answers.
   */
  readonly bootstrap?: Uint8Array;
  /** Called with every applied snapshot, serialized like `bootstrap`, e.g. to persist it. */
  readonly onSnapshot?: (bytes: Uint8Array) => void | Promise<void>;
  /** Evaluate from `bootstrap` only; never connect (state `READY`). */
  readonly offline?: boolean;
  /**
   * The clock of measured durations and timers, in milliseconds (default `performance.now()`):
   * tests inject one instead of waiting on the wall clock.
   */
  readonly clock?: () => number;
  /**
   * @internal No stream and no timers: snapshots are installed by the owner (`ShortLivedFlags`),
   * metrics are flushed only when asked.
   */
  readonly manual?: boolean;
  /** @internal Called by `close()` after everything else (transports release connections). */
  readonly onClose?: () => void;
  /** @internal The name and version reported to the server. */
  readonly sdk?: { readonly name: string; readonly version: string };
}

/**
 * The options a client goes on reading after construction, with their defaults applied. Spelt
 * out rather than picked from `ClientOptions`, whose internal fields the published types omit.
 */
export interface Settings {
  /** A stream silent this long is dead. */
  readonly heartbeatTimeoutMs: number;
  /** The first reconnection delay. */
  readonly minBackoffMs: number;
  /** The largest reconnection delay, never below `minBackoffMs`. */
  readonly maxBackoffMs: number;
  /** How often metrics are sent. */
  readonly metricsFlushIntervalMs: number;
  /** The environment to watch ("" = the sdk token's own). */
  readonly environment: string;
  /** The token ("" only offline). */
  readonly token: string;
  /** The name and version reported to the server. */
  readonly sdk: { readonly name: string; readonly version: string };
  /** The clock of durations and timers, in milliseconds. */
  readonly clock: () => number;
}

/** Checked options: what the client is built from. */
export interface ParsedOptions {
  /** What the client reads afterwards. */
  readonly settings: Settings;
  /** The `bootstrap` snapshot, decoded, if one was given. */
  readonly bootstrap: Snapshot | undefined;
  /** How to reach the server; `undefined` when offline (then `bootstrap` is set). */
  readonly transport: Transport | undefined;
}

/**
 * Checks `options` and applies the defaults. Throws a `FlagwireError`: `BOOTSTRAP` for a
 * bootstrap that is not a snapshot, `CONFIG` for offline without one, or online without a
 * transport or a token.
 */
export function parseOptions(options: ClientOptions): ParsedOptions {
  const min = options.minBackoffMs ?? 100;
  const settings: Settings = {
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 45_000,
    minBackoffMs: min,
    maxBackoffMs: Math.max(options.maxBackoffMs ?? 30_000, min),
    metricsFlushIntervalMs: options.metricsFlushIntervalMs ?? 10_000,
    environment: options.environment ?? "",
    token: options.token ?? "",
    sdk: options.sdk ?? { name: SDK_NAME, version: SDK_VERSION },
    clock: options.clock ?? nowMs,
  };
  let bootstrap: Snapshot | undefined;
  if (options.bootstrap !== undefined) {
    try {
      bootstrap = Snapshot.fromProto(fromBinary(SnapshotSchema, options.bootstrap));
    } catch (e) {
      throw new FlagwireError("BOOTSTRAP", `not a flagwire.v1.Snapshot: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (options.offline === true) {
    if (bootstrap === undefined) throw new FlagwireError("CONFIG", "offline mode needs a bootstrap snapshot");
    return { settings, bootstrap, transport: undefined };
  }
  if (options.transport === undefined) throw new FlagwireError("CONFIG", "a transport is required unless offline");
  if (settings.token === "") throw new FlagwireError("CONFIG", "a token is required unless offline");
  return { settings, bootstrap, transport: options.transport };
}

/** The headers of every request to the server: the token, as a bearer credential. */
export function authHeaders(settings: Settings): Record<string, string> {
  return { authorization: `Bearer ${settings.token}` };
}
