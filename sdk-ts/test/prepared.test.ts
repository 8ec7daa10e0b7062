/** `prepareContext`: checked once, frozen, a copy; the same results as the plain context. */
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type EvaluationContext, FlagwireClient, PreparedContext, prepareContext } from "@flagwire/sdk";
import { FlagSchema, Operator, ValueType } from "../src/gen/flagwire/v1/flag_pb.js";
import { SnapshotSchema } from "../src/gen/flagwire/v1/flag_service_pb.js";

const str = (value: string) => ({ kind: { case: "stringValue" as const, value } });

function client(): FlagwireClient {
  const flag = create(FlagSchema, {
    key: "f",
    type: ValueType.STRING,
    version: 1n,
    variants: ["a", "b"].map((v) => ({ key: v, value: str(v) })),
    environments: {
      e: {
        enabled: true,
        offVariant: "a",
        rules: [
          { clauses: [{ attribute: "plan", operator: Operator.IN, values: [str("pro")] }], serve: { kind: { case: "variant", value: "b" } } },
          { clauses: [{ attribute: "groups", operator: Operator.CONTAINS, values: [str("beta")] }], serve: { kind: { case: "variant", value: "b" } } },
          { clauses: [{ attribute: "__proto__", operator: Operator.IN, values: [str("x")] }], serve: { kind: { case: "variant", value: "b" } } },
        ],
        defaultRule: { kind: { case: "variant", value: "a" } },
      },
    },
  });
  const snapshot = create(SnapshotSchema, { environment: "e", revision: 1n, flags: [flag] });
  return new FlagwireClient({ offline: true, bootstrap: toBinary(SnapshotSchema, snapshot) });
}

describe("prepareContext", () => {
  it("is a frozen copy: changing the original afterwards changes nothing", () => {
    const c = client();
    const groups = ["staff"];
    const attributes: Record<string, string | string[]> = { plan: "free", groups };
    const ctx = { targetingKey: "u", attributes };
    const prepared = prepareContext(ctx);
    expect(prepared).toBeInstanceOf(PreparedContext);
    expect(Object.isFrozen(prepared) && Object.isFrozen(prepared.attributes) && Object.isFrozen(prepared.attributes?.groups)).toBe(true);
    attributes.plan = "pro";
    groups.push("beta");
    expect(c.getString("f", ctx, "default")).toBe("b");
    expect(c.getString("f", prepared, "default")).toBe("a");
    expect(prepareContext(prepared)).toBe(prepared);
  });

  it("keeps an invalid context invalid, and a __proto__ attribute an attribute", () => {
    const c = client();
    const invalid: unknown[] = [
      { targetingKey: 5 },
      { attributes: { n: Number.NaN } },
      { attributes: { o: { nested: true } } },
      { attributes: { l: ["a", 1] } },
      { attributes: "nope" },
      null,
    ];
    for (const ctx of invalid) {
      const plain = c.getStringDetails("f", ctx as EvaluationContext, "d");
      expect(plain.errorCode, JSON.stringify(ctx)).toBe("INVALID_CONTEXT");
      expect(c.getStringDetails("f", prepareContext(ctx as EvaluationContext), "d")).toStrictEqual(plain);
    }
    const proto = JSON.parse('{"targetingKey":"u","attributes":{"__proto__":"x"}}') as EvaluationContext;
    expect(c.getStringDetails("f", proto, "d").variant).toBe("b");
    expect(c.getStringDetails("f", prepareContext(proto), "d").variant).toBe("b");
  });
});
