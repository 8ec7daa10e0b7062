/**
 * Flagwire through OpenFeature (`@openfeature/server-sdk`): the provider evaluates locally from
 * the client's live copy. `test/openfeature.test.ts` runs it against a real server; run it
 * yourself after `npm run build` with a TypeScript runner, e.g.
 *
 *   FLAGWIRE_URL=http://127.0.0.1:7070 FLAGWIRE_TOKEN=fw_… npx tsx examples/openfeature.ts
 */
import { pathToFileURL } from "node:url";
import { OpenFeature, ProviderEvents } from "@openfeature/server-sdk";
import { createClient } from "@flagwire/sdk/node";
import { FlagwireProvider } from "@flagwire/sdk/openfeature";

/** Evaluates `new-checkout` for user-42 through OpenFeature; returns what it printed. */
export async function run(flagwireUrl: string, token: string): Promise<string[]> {
  const printed: string[] = [];
  const print = (line: string): void => {
    printed.push(line);
    console.log(line);
  };
  const provider = new FlagwireProvider(createClient({ baseUrl: flagwireUrl, token }));
  await OpenFeature.setProviderAndWait(provider); // waits for the first copy of the flags
  const flags = OpenFeature.getClient();
  flags.addHandler(ProviderEvents.ConfigurationChanged, (e) => {
    print(`changed: ${JSON.stringify(e?.flagsChanged)}`);
  });

  const ctx = { targetingKey: "user-42", country: "NL", plan: "pro" };
  const d = await flags.getBooleanDetails("new-checkout", false, ctx);
  print(`new-checkout for user-42: ${String(d.value)} (reason ${d.reason ?? "?"}, variant ${d.variant ?? "-"})`);
  // One of the team's metrics, attributed to what new-checkout serves this user.
  flags.track("checkout", ctx, { value: 1, flags: "new-checkout" });
  await OpenFeature.close(); // closes the client, which flushes its metrics
  return printed;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run(process.env.FLAGWIRE_URL ?? "http://127.0.0.1:7070", process.env.FLAGWIRE_TOKEN ?? "");
}
