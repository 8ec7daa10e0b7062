/**
 * `@flagwire/sdk/node`: the client over native gRPC (HTTP/2, `@connectrpc/connect-node`), with
 * bootstrap files on disk. Re-exports the whole core.
 *
 * ```ts
 * import { createClient } from "@flagwire/sdk/node";
 * const client = createClient({ baseUrl: "http://127.0.0.1:7070", token: process.env.FLAGWIRE_TOKEN! });
 * await client.waitReady(5000);
 * ```
 */

import { lookup as dnsLookup } from "node:dns/promises";
import { existsSync, readFileSync } from "node:fs";
import { isIP, type LookupFunction } from "node:net";
import { rename, writeFile } from "node:fs/promises";
import type * as http2 from "node:http2";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { FlagwireClient } from "./client.js";
import type { ClientOptions } from "./client-options.js";
import { FlagwireError } from "./errors.js";
import { type Endpoint, FailoverTransport, type Resolver, splitEndpoints } from "./failover.js";

export * from "./index.js";

/** Options of `createNodeTransport`. */
export interface NodeTransportOptions {
  /** The server's gRPC address, e.g. `http://127.0.0.1:7070` (`https://` for TLS). */
  readonly baseUrl: string;
  /** Connect interceptors (logging, extra headers, ...). */
  readonly interceptors?: Interceptor[];
  /** Options of the HTTP/2 session (e.g. `ca` for a private TLS root). */
  readonly nodeOptions?: http2.ClientSessionOptions | http2.SecureClientSessionOptions;
  /** HTTP/2 PING interval that detects a dead connection (default 30,000 ms). */
  readonly pingIntervalMs?: number;
}

/** A transport over one HTTP/2 connection, and a way to close that connection. */
export type NodeTransport = Transport & { close(): void };

/** Native gRPC over HTTP/2: one connection (re-established as needed) for every call. */
export function createNodeTransport(options: NodeTransportOptions): NodeTransport {
  // Idle connections are not pinged: connect-node 2.1.2 re-arms its idle ping timer when a
  // stream closes after the session was destroyed (by close(), a server restart or an error),
  // and that ping throws from a timer, an uncaught exception that ends the process
  // (connectrpc/connect-es#1795). Open streams (the Watch) are still pinged, and an idle
  // connection is verified with a PING before it is used again.
  const ping = { pingIntervalMs: options.pingIntervalMs ?? 30_000, pingTimeoutMs: 10_000, pingIdleConnection: false };
  const sessionManager = new Http2SessionManager(options.baseUrl, ping, options.nodeOptions);
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    sessionManager,
    interceptors: options.interceptors ?? [],
  });
  return Object.assign(transport, {
    close: () => {
      sessionManager.abort();
    },
  });
}

/** Every address `host` resolves to through the system resolver (`getaddrinfo`), without duplicates. */
export const systemResolve: Resolver = async (host) => [
  ...new Set((await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address)),
];

/** A `lookup` that answers `address` for whatever name: the connection goes there, the URL keeps the name. */
function pinnedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return (_hostname, options, callback) => {
    if (options.all === true) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/** Options of `createNodeFailoverTransport`: `NodeTransportOptions` over several endpoints. */
export interface NodeFailoverOptions extends Omit<NodeTransportOptions, "baseUrl"> {
  /** The endpoints in order (each `http://host:port` or `https://host:port`). */
  readonly endpoints: readonly string[];
  /** Resolves names to every address (default the system resolver; tests inject one). */
  readonly resolve?: Resolver;
}

/**
 * Native gRPC over several endpoints (replicas), one HTTP/2 connection to the current one; a
 * name that resolves to several addresses is one endpoint per address (the connection is pinned
 * to the address, the name stays the TLS name and `:authority`). The client moves it to the
 * next endpoint after a session ends or fails to start (docs/reference/sync.md).
 */
export function createNodeFailoverTransport(options: NodeFailoverOptions): FailoverTransport & NodeTransport {
  const { endpoints, resolve, ...rest } = options;
  const make = (e: Endpoint): NodeTransport => {
    const nodeOptions = e.address === undefined ? rest.nodeOptions : { ...rest.nodeOptions, lookup: pinnedLookup(e.address) };
    return createNodeTransport({ ...rest, baseUrl: e.url, ...(nodeOptions && { nodeOptions }) });
  };
  return new FailoverTransport(endpoints, make, resolve ?? systemResolve);
}

/** Options of the Node client: the core's, plus where the server is and the bootstrap file. */
export interface NodeClientOptions extends Omit<ClientOptions, "transport" | "bootstrap" | "onSnapshot"> {
  /**
   * The server's gRPC address, e.g. `http://127.0.0.1:7070`, or several separated by commas
   * (as an environment variable holds them). Ignored offline.
   */
  readonly baseUrl?: string;
  /**
   * Several servers (replicas), in order, after `baseUrl` if both are given: the client
   * connects to the first and, after a session ends or fails to start, to the next, resuming
   * from the revision it holds. Each name that resolves to several addresses counts once per
   * address.
   */
  readonly endpoints?: readonly string[];
  /** Use this transport instead of creating one from `baseUrl` (it is not closed by `close()`). */
  readonly transport?: Transport;
  /** Interceptors of the transport created from `baseUrl`. */
  readonly interceptors?: Interceptor[];
  /** HTTP/2 session options of the transport created from `baseUrl` (TLS roots, ...). */
  readonly nodeOptions?: http2.ClientSessionOptions | http2.SecureClientSessionOptions;
  /**
   * Persist every applied snapshot to this file (a serialized `flagwire.v1.Snapshot`, the same
   * format as the Rust SDK's), and start from it when present, so the service evaluates last
   * known values while the server is unreachable at start-up.
   */
  readonly bootstrapFile?: string;
}

/** Reads a bootstrap file (a serialized `flagwire.v1.Snapshot`). */
export function readBootstrapFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new FlagwireError("BOOTSTRAP", `${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Writes a bootstrap file atomically (a temporary file renamed over it). */
export async function writeBootstrapFile(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** A client over native gRPC (HTTP/2). */
export function createClient(options: NodeClientOptions): FlagwireClient {
  const { baseUrl, endpoints, interceptors, nodeOptions, bootstrapFile, ...rest } = options;
  let bootstrap: Uint8Array | undefined;
  if (bootstrapFile !== undefined && existsSync(bootstrapFile)) bootstrap = readBootstrapFile(bootstrapFile);
  if (options.offline === true) {
    if (bootstrap === undefined) throw new FlagwireError("CONFIG", "offline mode needs an existing bootstrap file");
    return new FlagwireClient({ ...rest, bootstrap });
  }
  let transport = options.transport;
  let owned: NodeTransport | undefined;
  if (transport === undefined) {
    const urls = splitEndpoints(baseUrl, endpoints);
    if (urls.length === 0) throw new FlagwireError("CONFIG", "baseUrl or endpoints (or transport) is required unless offline");
    owned = createNodeFailoverTransport({ endpoints: urls, ...(interceptors && { interceptors }), ...(nodeOptions && { nodeOptions }) });
    transport = owned;
  }
  return new FlagwireClient({
    ...rest,
    transport,
    ...(bootstrap && { bootstrap }),
    ...(bootstrapFile !== undefined && { onSnapshot: (bytes: Uint8Array) => writeBootstrapFile(bootstrapFile, bytes) }),
    onClose: () => {
      owned?.close();
      rest.onClose?.();
    },
  });
}
