/**
 * `@flagwire/sdk/fetch`: the client over gRPC-web on `fetch` (`@connectrpc/connect-web`), for
 * runtimes without Node networking: Convex's default runtime, edge functions, browsers, Deno,
 * Bun. The server serves gRPC-web on its gRPC port. Re-exports the whole core.
 *
 * ```ts
 * import { createClient } from "@flagwire/sdk/fetch";
 * const client = createClient({ baseUrl: "https://flags.example.com", token });
 * ```
 */

import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { FlagwireClient } from "./client.js";
import type { ClientOptions } from "./client-options.js";
import { FlagwireError } from "./errors.js";
import { FailoverTransport, splitEndpoints } from "./failover.js";
import { RemoteEvaluator, type RemoteOptions } from "./remote.js";
import { ShortLivedFlags, type ShortLivedOptions } from "./shortlived.js";

export * from "./index.js";

/** Options of `createFetchTransport`. */
export interface FetchTransportOptions {
  /** The server's address, e.g. `https://flags.example.com` (its gRPC port serves gRPC-web). */
  readonly baseUrl: string;
  /** The `fetch` to use (default `globalThis.fetch`): inject one for tests, proxies or retries. */
  readonly fetch?: typeof globalThis.fetch;
  /** Connect interceptors. */
  readonly interceptors?: Interceptor[];
}

/** gRPC-web (binary) over `fetch`. */
export function createFetchTransport(options: FetchTransportOptions): Transport {
  const f = options.fetch;
  return createGrpcWebTransport({
    baseUrl: options.baseUrl,
    // Bound late, so a fetch replaced after creation (and one that needs `this`) still works.
    fetch: f ?? ((input, init) => globalThis.fetch(input, init)),
    interceptors: options.interceptors ?? [],
  });
}

/** Options of `createFetchFailoverTransport`: `FetchTransportOptions` over several endpoints. */
export interface FetchFailoverOptions extends Omit<FetchTransportOptions, "baseUrl"> {
  /** The endpoints in order. */
  readonly endpoints: readonly string[];
}

/**
 * gRPC-web over `fetch` to several endpoints (replicas), calls going to the current one; the
 * client moves it to the next after a session ends or fails to start. Names are not expanded
 * to their addresses: `fetch` connects to names only (and runtimes such as Convex's have no
 * resolver), so list each replica, or put a load balancer behind one name.
 */
export function createFetchFailoverTransport(options: FetchFailoverOptions): FailoverTransport {
  const { endpoints, ...rest } = options;
  return new FailoverTransport(endpoints, (e) => createFetchTransport({ ...rest, baseUrl: e.url }));
}

/** The transport of a fetch entry point's `baseUrl` / `endpoints` options. */
function transportOf(
  baseUrl: string | undefined,
  endpoints: readonly string[] | undefined,
  rest: Omit<FetchTransportOptions, "baseUrl">,
): Transport {
  const urls = splitEndpoints(baseUrl, endpoints);
  if (urls.length === 0) throw new FlagwireError("CONFIG", "baseUrl or endpoints (or transport) is required unless offline");
  // One endpoint: the plain transport, as before there were several.
  return urls.length === 1 ? createFetchTransport({ ...rest, baseUrl: urls[0]! }) : createFetchFailoverTransport({ ...rest, endpoints: urls });
}

/** Options of the fetch client: the core's, plus where the server is. */
export interface FetchClientOptions extends Omit<ClientOptions, "transport"> {
  /** The server's address, or several separated by commas. Ignored offline. */
  readonly baseUrl?: string;
  /**
   * Several servers (replicas), in order, after `baseUrl` if both are given: the client
   * connects to the first and, after a session ends or fails to start, to the next, resuming
   * from the revision it holds.
   */
  readonly endpoints?: readonly string[];
  /** Use this transport instead of creating one from `baseUrl`. */
  readonly transport?: Transport;
  /** The `fetch` of the transport created from `baseUrl`. */
  readonly fetch?: typeof globalThis.fetch;
  /** Interceptors of the transport created from `baseUrl`. */
  readonly interceptors?: Interceptor[];
}

/** A live client over gRPC-web (a long-lived `Watch` stream over `fetch`). */
export function createClient(options: FetchClientOptions): FlagwireClient {
  const { baseUrl, endpoints, fetch, interceptors, ...rest } = options;
  if (options.offline === true) return new FlagwireClient(rest);
  const transport = options.transport ?? transportOf(baseUrl, endpoints, { ...(fetch && { fetch }), ...(interceptors && { interceptors }) });
  return new FlagwireClient({ ...rest, transport });
}

/** Options of `createShortLivedFlags`: `ShortLivedOptions` with `baseUrl`/`endpoints`/`fetch` for the transport. */
export interface FetchShortLivedOptions extends Omit<ShortLivedOptions, "transport"> {
  /** The server's address, or several separated by commas. */
  readonly baseUrl?: string;
  /** Several servers, in order: a load that fails moves to the next for the next load. */
  readonly endpoints?: readonly string[];
  readonly fetch?: typeof globalThis.fetch;
  readonly interceptors?: Interceptor[];
}

/** Flags for a short-lived runtime (Convex actions), over gRPC-web on `fetch`. */
export function createShortLivedFlags(options: FetchShortLivedOptions): ShortLivedFlags {
  const { baseUrl, endpoints, fetch, interceptors, ...rest } = options;
  return new ShortLivedFlags({
    ...rest,
    transport: transportOf(baseUrl, endpoints, { ...(fetch && { fetch }), ...(interceptors && { interceptors }) }),
  });
}

/** Remote evaluation (`Evaluate` / `EvaluateAll`) over gRPC-web on `fetch`. */
export function createRemoteEvaluator(
  options: Omit<RemoteOptions, "transport"> & { readonly baseUrl: string; readonly fetch?: typeof globalThis.fetch },
): RemoteEvaluator {
  const { baseUrl, fetch, ...rest } = options;
  return new RemoteEvaluator({ ...rest, transport: createFetchTransport({ baseUrl, ...(fetch && { fetch }) }) });
}
