/**
 * Several endpoints (replicas) behind one `Transport` (docs/reference/sync.md, "Several
 * endpoints"): every call goes to the current endpoint; the client's Watch loop calls
 * `rotate()` after a session that ended or could not start, so the next session, and the
 * reports after it, go to the next endpoint, in order and round again. A name that resolves to
 * several addresses counts as one endpoint per address, when the runtime can resolve names and
 * connect to an address (Node; `fetch` can do neither).
 *
 * Expansion is ours, not the network stack's: a connection to a name with several addresses
 * uses one of them, while failover needs the *next* address after a disconnect.
 */

import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import type { ContextValues, StreamResponse, Transport, UnaryResponse } from "@connectrpc/connect";
import { FlagwireError } from "./errors.js";

/** Request headers as Connect takes them (`HeadersInit`, which the runtime-neutral lib set does not name). */
type Header = Parameters<Transport["unary"]>[3];

/** One place to connect to: an endpoint URL, and the address its host is pinned to, if any. */
export interface Endpoint {
  readonly url: string;
  /** An IP address the URL's host resolved to (the URL keeps the name, for TLS and `:authority`). */
  readonly address?: string;
}

/** host → its addresses (IPv4 or IPv6 literals), in the resolver's order. */
export type Resolver = (host: string) => Promise<readonly string[]>;

/** A transport that can be closed (Node's holds an HTTP/2 session). */
export type ClosableTransport = Transport & { close?: () => void };

/** The endpoints of `baseUrl` (one URL, or several separated by commas, as an environment variable holds them) and `endpoints`. */
export function splitEndpoints(baseUrl?: string, endpoints?: readonly string[]): string[] {
  const all = [...(baseUrl === undefined ? [] : [baseUrl]), ...(endpoints ?? [])];
  return all.flatMap((u) => u.split(",")).map((u) => u.trim()).filter((u) => u !== "");
}

const isLiteral = (host: string): boolean => /^[\d.]+$/.test(host) || host.startsWith("[");

/** The endpoints of one URL: one per address of a host that resolves to several, else the URL itself. */
export async function expandEndpoint(url: string, resolve: Resolver): Promise<Endpoint[]> {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return [{ url }];
  }
  if (host === "" || isLiteral(host)) return [{ url }];
  let addresses: readonly string[];
  try {
    addresses = [...new Set(await resolve(host))];
  } catch {
    // The connection resolves it again, and fails or succeeds as it would have.
    return [{ url }];
  }
  return addresses.length < 2 ? [{ url }] : addresses.map((address) => ({ url, address }));
}

/**
 * A `Transport` over several endpoints, one current. A stream (a session) goes to the current
 * endpoint and makes it the active one; unary calls go to the active one (the first picks it).
 * `make` creates the transport of one endpoint (once it becomes active; the previous one is
 * closed). `resolve`, when given,
 * expands names, again after every full round (a replica added to or removed from the name is
 * seen after one round).
 */
export class FailoverTransport implements Transport {
  private endpoints: Endpoint[] | undefined;
  private index = 0;
  private active: { endpoint: Endpoint; transport: ClosableTransport } | undefined;
  private closed = false;

  constructor(
    private readonly urls: readonly string[],
    private readonly make: (endpoint: Endpoint) => ClosableTransport,
    private readonly resolve?: Resolver,
  ) {
    if (urls.length === 0) throw new FlagwireError("CONFIG", "at least one endpoint is required");
  }

  /** The endpoint calls go to now (`undefined` until the first call expanded the names). */
  get current(): Endpoint | undefined {
    return this.endpoints?.[this.index];
  }

  /** The next session (and the calls after it) goes to the next endpoint. */
  rotate(): void {
    this.index++;
    const endpoints = this.endpoints;
    if (endpoints === undefined || this.index < endpoints.length) return;
    this.index = 0;
    if (this.resolve !== undefined && (this.urls.length > 1 || endpoints.length > 1)) this.endpoints = undefined;
  }

  /** Closes the current endpoint's transport. */
  close(): void {
    this.closed = true;
    this.active?.transport.close?.();
    this.active = undefined;
  }

  private async pick(): Promise<Transport> {
    if (this.endpoints === undefined) {
      const resolve = this.resolve;
      const expanded =
        resolve === undefined
          ? this.urls.map((url) => ({ url }))
          : (await Promise.all(this.urls.map((u) => expandEndpoint(u, resolve)))).flat();
      this.endpoints ??= expanded;
      this.index %= this.endpoints.length;
    }
    const endpoint = this.endpoints[this.index]!;
    if (this.closed) throw new FlagwireError("CLOSED", "the transport is closed");
    const active = this.active;
    if (active !== undefined && active.endpoint.url === endpoint.url && active.endpoint.address === endpoint.address) {
      return active.transport;
    }
    // The previous endpoint's connection is dropped: a report in flight on it fails and is
    // retried (acknowledgements) or kept for the next flush (metrics) on the new one.
    active?.transport.close?.();
    const transport = this.make(endpoint);
    this.active = { endpoint, transport };
    return transport;
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: Header,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    // Unary calls (reports) go to the latest session's endpoint: a rotation moves them when the
    // next session (a stream) starts.
    const transport = this.active?.transport ?? (await this.pick());
    return transport.unary(method, signal, timeoutMs, header, input, contextValues);
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: Header,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    return (await this.pick()).stream(method, signal, timeoutMs, header, input, contextValues);
  }
}

/** Moves `transport` to its next endpoint when it has several (a `FailoverTransport` or alike). */
export function rotateTransport(transport: Transport | undefined): void {
  const t = transport as { rotate?: () => void } | undefined;
  if (typeof t?.rotate === "function") t.rotate();
}
