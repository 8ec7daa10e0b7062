/**
 * An example Node service: an HTTP server whose `/checkout?user=…` serves the new or the old
 * checkout as the `new-checkout` flag decides, measuring each request's outcome against the
 * variant served. Native gRPC (HTTP/2) to Flagwire, a bootstrap file for cold starts while the
 * server is away, and a clean shutdown that flushes metrics. `test/examples.test.ts` runs it
 * against a real server; run it yourself after `npm run build` with a TypeScript runner, e.g.
 *
 *   FLAGWIRE_URL=http://127.0.0.1:7070 FLAGWIRE_TOKEN=fw_… npx tsx examples/node-service.ts
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createClient, type FlagwireClient } from "@flagwire/sdk/node";

export interface Service {
  readonly port: number;
  readonly client: FlagwireClient;
  close(): Promise<void>;
}

export async function startService(options: {
  flagwireUrl: string;
  token: string;
  port?: number;
  bootstrapFile?: string;
}): Promise<Service> {
  const client = createClient({
    baseUrl: options.flagwireUrl,
    token: options.token,
    ...(options.bootstrapFile !== undefined && { bootstrapFile: options.bootstrapFile }),
  });
  await client.waitReady(5_000).catch((e: unknown) => {
    console.warn(`flagwire not ready (${String(e)}); serving defaults or the bootstrap file`);
  });
  client.on("change", ({ revision, flags }) => {
    console.log(`revision ${revision}: ${flags.join(", ")}`);
  });

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const ctx = { targetingKey: url.searchParams.get("user") ?? "", attributes: { country: "NL" } };
    client
      .measure("new-checkout", ctx, async (variant) => {
        await new Promise((r) => setTimeout(r, 5)); // the work being measured
        if (url.searchParams.has("fail")) throw new Error("payment declined");
        return variant === "on" ? "new checkout\n" : "old checkout\n";
      })
      .then(
        (body) => res.end(body),
        () => {
          res.statusCode = 500;
          res.end("failed\n");
        },
      );
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    client,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await client.close(); // flushes metrics
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const service = await startService({
    flagwireUrl: process.env.FLAGWIRE_URL ?? "http://127.0.0.1:7070",
    token: process.env.FLAGWIRE_TOKEN ?? "",
    port: Number(process.env.PORT ?? 8080),
    bootstrapFile: process.env.FLAGWIRE_BOOTSTRAP ?? "flagwire-bootstrap.bin",
  });
  console.log(`listening on http://127.0.0.1:${service.port}/checkout?user=user-42`);
  const stop = (): void => void service.close();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
