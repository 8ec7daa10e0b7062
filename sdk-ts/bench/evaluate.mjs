// Local evaluation per call on Node, against the built package (run `npm run build` first):
//
//   node --expose-gc bench/evaluate.mjs
//
// Fixtures mirror core/tests/support/fixtures.rs: a boolean flag with no rules, and a string
// flag with five rules (one clause each on five attributes: IN of 3, ENDS_WITH, GTE, IN of 2,
// CONTAINS on a list; none matching the context) and then a 3-way split; a context with a
// targeting key and five attributes. Figures are nanoseconds per call: the median and the
// fastest of 31 rounds of 100,000 calls (after warm-up). "metrics on" reads through a client that counts
// every evaluation for MetricsService.Report (the default for live clients); "metrics off" is an
// offline client (no recorder). "`prepareContext`" reads with a context prepared once (checked
// and frozen), which evaluations do not check again.
import { create, toBinary } from "@bufbuild/protobuf";
import { createRouterTransport } from "@connectrpc/connect";
import { FlagwireClient, ShortLivedFlags, bucketIndex, murmur3, prepareContext } from "../dist/index.js";
import { FlagSchema, Operator, ValueType } from "../dist/gen/flagwire/v1/flag_pb.js";
import { FlagService, SnapshotSchema } from "../dist/gen/flagwire/v1/flag_service_pb.js";
import { MetricsService } from "../dist/gen/flagwire/v1/metrics_pb.js";

const str = (value) => ({ kind: { case: "stringValue", value } });
const num = (value) => ({ kind: { case: "numberValue", value } });

function boolFlag(key) {
  return create(FlagSchema, {
    key,
    type: ValueType.BOOLEAN,
    version: 1n,
    variants: [
      { key: "on", value: { kind: { case: "boolValue", value: true } } },
      { key: "off", value: { kind: { case: "boolValue", value: false } } },
    ],
    environments: { production: { enabled: true, offVariant: "off", defaultRule: { kind: { case: "variant", value: "on" } } } },
  });
}

function splitFlag() {
  const rule = (id, attribute, operator, values) => ({
    id,
    clauses: [{ attribute, operator, values }],
    serve: { kind: { case: "variant", value: "red" } },
  });
  return create(FlagSchema, {
    key: "split-flag",
    type: ValueType.STRING,
    version: 1n,
    variants: ["red", "green", "blue"].map((v) => ({ key: v, value: { kind: { case: "stringValue", value: v } } })),
    environments: {
      production: {
        enabled: true,
        offVariant: "red",
        rules: [
          rule("countries", "country", Operator.IN, [str("US"), str("CA"), str("GB")]),
          rule("staff", "email", Operator.ENDS_WITH, [str("@flagwire.dev")]),
          rule("seniors", "age", Operator.GTE, [num(65)]),
          rule("free", "plan", Operator.IN, [str("free"), str("trial")]),
          rule("beta", "groups", Operator.CONTAINS, [str("beta")]),
        ],
        defaultRule: {
          kind: { case: "split", value: { entries: ["red", "green", "blue"].map((variant) => ({ variant, weight: 3333 })) } },
        },
      },
    },
  });
}

const snapshot = create(SnapshotSchema, {
  environment: "production",
  revision: 1n,
  flags: [boolFlag("bool-flag"), splitFlag(), ...Array.from({ length: 1000 }, (_, i) => boolFlag(`flag-${String(i).padStart(4, "0")}`))],
});
const ctx = {
  targetingKey: "user-1234567",
  attributes: { country: "NL", email: "ada@example.com", age: 31, plan: "pro", groups: ["staff"] },
};

const prepared = prepareContext(ctx);

const offline = new FlagwireClient({ offline: true, bootstrap: toBinary(SnapshotSchema, snapshot) });
const transport = createRouterTransport(({ service }) => {
  service(FlagService, {
    async *watch() {
      yield { event: { case: "snapshot", value: snapshot } };
    },
  });
  service(MetricsService, { report: () => ({ accepted: true }) });
});
const shortLived = new ShortLivedFlags({ transport, token: "bench" });
const live = await shortLived.load();

// Sanity: the fixtures evaluate as intended.
if (offline.getBooleanDetails("bool-flag", ctx, false).reason !== "STATIC") throw new Error("bool fixture");
if (offline.getStringDetails("split-flag", ctx, "").reason !== "SPLIT") throw new Error("split fixture");
if (live.getStringDetails("split-flag", ctx, "").reason !== "SPLIT") throw new Error("live fixture");

let sink = 0;
const cases = [
  ["boolean flag, `getBoolean`, metrics off", () => (sink += offline.getBoolean("bool-flag", ctx, false) ? 1 : 0)],
  ["5 rules + 3-way split, `getString`, metrics off", () => (sink += offline.getString("split-flag", ctx, "").length)],
  ["boolean flag, `getBoolean`, metrics on", () => (sink += live.getBoolean("bool-flag", ctx, false) ? 1 : 0)],
  ["5 rules + 3-way split, `getString`, metrics on", () => (sink += live.getString("split-flag", ctx, "").length)],
  ["5 rules + 3-way split, `getStringDetails`, metrics on", () => (sink += live.getStringDetails("split-flag", ctx, "").flagVersion)],
  ["5 rules + 3-way split, `getString`, metrics on, `prepareContext`", () => (sink += live.getString("split-flag", prepared, "").length)],
  ["murmur3 of salt + key (22 bytes)", () => (sink += murmur3("split-flaguser-1234567"))],
  ["histogram bucket index (number path)", () => (sink += bucketIndex(123_456) ?? 0)],
];

// Rounds interleave the cases, so load from other processes on a shared machine spreads over
// all of them alike; the minimum is the least disturbed round.
const N = 100_000;
const ROUNDS = Number(process.env.ROUNDS ?? 31);
for (const [, fn] of cases) for (let i = 0; i < N; i++) fn(); // warm-up
const times = cases.map(() => []);
for (let r = 0; r < ROUNDS; r++) {
  cases.forEach(([, fn], c) => {
    globalThis.gc?.();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn();
    times[c].push(Number(process.hrtime.bigint() - t0) / N);
  });
}

console.log(`Node ${process.version}, ${process.platform}/${process.arch}, ${ROUNDS} rounds of ${N} calls`);
console.log("| benchmark | median per call | fastest round |");
console.log("|---|---|---|");
cases.forEach(([name], c) => {
  const t = times[c].sort((a, b) => a - b);
  console.log(`| ${name} | ${t[Math.floor(t.length / 2)].toFixed(0)} ns | ${t[0].toFixed(0)} ns |`);
});
// For scripts/bench (parsed, unlike the table rows): `BENCH ts.<name as a slug>=<median> ns`.
cases.forEach(([name], c) => {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "");
  console.log(`BENCH ts.${slug}=${times[c][Math.floor(times[c].length / 2)].toFixed(1)} ns`);
});
await live.close();
if (sink === 42) console.log("");
