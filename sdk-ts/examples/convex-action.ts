/**
 * An example Convex action using Flagwire in Convex's default runtime (no Node networking:
 * gRPC-web over `fetch`). In a Convex app, `action` and `v` come from `./_generated/server` and
 * `convex/values`; here a stand-in keeps the module plain TypeScript, and
 * `test/convex.test.ts` runs it with a mocked `ctx` against a real Flagwire server.
 *
 * The flags live at module level, so a warm instance reuses its snapshot for `maxAgeMs`; every
 * invocation gets its flags through `withFlags`, which also measures the action's duration
 * and errors against the variants it read (and attributes the action's own metrics, here the
 * charge's duration, to them) and flushes metrics before the action returns.
 */
import { createShortLivedFlags, withFlags } from "@flagwire/sdk/fetch";

// --- stand-ins for Convex's generated helpers (`import { action } from "./_generated/server"`)
/** The part of Convex's ActionCtx this example uses. */
export interface ActionCtx {
  runMutation(name: string, args: Record<string, unknown>): Promise<unknown>;
  runQuery(name: string, args: Record<string, unknown>): Promise<unknown>;
}
function action<D extends { args: Record<string, string>; handler: (ctx: ActionCtx, args: never) => Promise<unknown> }>(
  definition: D,
): D {
  return definition;
}
// ---

const flags = createShortLivedFlags({
  baseUrl: process.env.FLAGWIRE_URL ?? "http://127.0.0.1:7070",
  token: process.env.FLAGWIRE_TOKEN ?? "",
  maxAgeMs: 30_000,
});

/** Charges a cart through the new or the old checkout, as the flag decides per user. */
export const checkout = action({
  args: { user: "string", cents: "number" },
  handler: withFlags(flags, async (ctx: ActionCtx, args: { user: string; cents: number }, f) => {
    const user = { targetingKey: args.user, attributes: { plan: "pro" } };
    const flow = f.getBoolean("new-checkout", user, false) ? "new" : "old";
    if (flow === "new" && args.cents < 0) throw new Error("the new checkout refuses negative amounts");
    const charging = f.timer("charge_ms"); // the team's own metric, attributed to what `f` served
    await ctx.runMutation("payments:charge", { user: args.user, cents: args.cents, flow });
    charging.stop();
    return flow;
  }),
});

/** For tests: the module's flags (revision, state, last error). */
export { flags };
