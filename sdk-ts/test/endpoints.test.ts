/**
 * Several endpoints without a server: splitting the options, expanding a name to its addresses
 * (the resolver injected: no name on this machine resolves to several), the rotation through
 * them, and the system resolver itself. test/failover.test.ts runs the same against servers.
 */
import type { Transport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { type Endpoint, expandEndpoint, FailoverTransport, rotateTransport, splitEndpoints } from "@flagwire/sdk";
import { createClient as fetchClient } from "@flagwire/sdk/fetch";
import { systemResolve } from "@flagwire/sdk/node";
import { FlagService } from "../src/gen/flagwire/v1/flag_service_pb.js";

/** A transport per endpoint that records which endpoint each call went to. */
function recording(): { calls: Endpoint[]; make: (e: Endpoint) => Transport } {
  const calls: Endpoint[] = [];
  const make = (e: Endpoint): Transport => ({
    unary: () => {
      calls.push(e);
      return Promise.resolve({} as never);
    },
    stream: () => {
      calls.push(e);
      return Promise.resolve({} as never);
    },
  });
  return { calls, make };
}

const report = (t: Transport): Promise<unknown> =>
  t.unary(FlagService.method.evaluate, undefined, undefined, undefined, {});
const session = (t: Transport): Promise<unknown> =>
  t.stream(FlagService.method.watch, undefined, undefined, undefined, (async function* () {})());

describe("endpoints", () => {
  it("splits baseUrl (commas) and endpoints, in order", () => {
    expect(splitEndpoints("http://a:1")).toEqual(["http://a:1"]);
    expect(splitEndpoints(" http://a:1 ,http://b:2,", ["http://c:3"])).toEqual(["http://a:1", "http://b:2", "http://c:3"]);
    expect(splitEndpoints(undefined, [])).toEqual([]);
    expect(() => fetchClient({ token: "t", endpoints: [" "] })).toThrow(/endpoints/);
  });

  it("expands a name with several addresses, and leaves the rest alone", async () => {
    const resolve = (host: string): Promise<string[]> => {
      const table: Record<string, string[]> = { multi: ["10.0.0.1", "fd00::1", "10.0.0.1"], single: ["10.0.0.9"] };
      const found = table[host];
      return found === undefined ? Promise.reject(new Error("ENOTFOUND")) : Promise.resolve(found);
    };
    expect(await expandEndpoint("https://multi:7070", resolve)).toEqual([
      { url: "https://multi:7070", address: "10.0.0.1" },
      { url: "https://multi:7070", address: "fd00::1" },
    ]);
    expect(await expandEndpoint("http://single:7070", resolve)).toEqual([{ url: "http://single:7070" }]);
    expect(await expandEndpoint("http://unknown:7070", resolve)).toEqual([{ url: "http://unknown:7070" }]);
    expect(await expandEndpoint("http://127.0.0.1:7070", resolve)).toEqual([{ url: "http://127.0.0.1:7070" }]);
    expect(await expandEndpoint("http://[::1]:7070", resolve)).toEqual([{ url: "http://[::1]:7070" }]);
  });

  it("rotates sessions through every address in order, resolving again after each round; reports follow the session", async () => {
    const asked: string[] = [];
    const resolve = (host: string): Promise<string[]> => {
      asked.push(host);
      return Promise.resolve(host === "multi" ? ["10.0.0.1", "10.0.0.2"] : []);
    };
    const { calls, make } = recording();
    const t = new FailoverTransport(["http://multi:1", "http://other:2"], make, resolve);
    const where = (e: Endpoint | undefined): string => e?.address ?? e?.url ?? "none";
    const sessions: string[] = [];
    for (let i = 0; i < 4; i++) {
      await session(t);
      sessions.push(where(calls.at(-1)));
      await report(t);
      expect(where(calls.at(-1))).toBe(sessions.at(-1)); // to the session's endpoint
      rotateTransport(t);
      await report(t);
      expect(where(calls.at(-1))).toBe(sessions.at(-1)); // until the next session starts
    }
    expect(sessions).toEqual(["10.0.0.1", "10.0.0.2", "http://other:2", "10.0.0.1"]);
    expect(asked).toEqual(["multi", "other", "multi", "other"]);
  });

  it("stays on a single endpoint", async () => {
    const { calls, make } = recording();
    const t = new FailoverTransport(["http://h:1"], make);
    for (let i = 0; i < 3; i++) {
      await session(t);
      t.rotate();
    }
    expect(calls).toEqual([{ url: "http://h:1" }, { url: "http://h:1" }, { url: "http://h:1" }]);
  });

  it("resolves localhost through the system resolver", async () => {
    const addresses = await systemResolve("localhost");
    expect(addresses).toContain("127.0.0.1");
    expect(new Set(addresses).size).toBe(addresses.length);
  });
});
