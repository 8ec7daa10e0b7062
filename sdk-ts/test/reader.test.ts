/** The getters never throw, whatever they are given, and object values cannot be mutated. */
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FlagwireClient, type EvaluationContext } from "@flagwire/sdk";
import { FlagSchema, ValueType } from "../src/gen/flagwire/v1/flag_pb.js";
import { SnapshotSchema } from "../src/gen/flagwire/v1/flag_service_pb.js";

const objectFlag = create(FlagSchema, {
  key: "obj",
  type: ValueType.OBJECT,
  version: 4n,
  variants: [{ key: "a", value: { kind: { case: "objectValue", value: { limits: { max: 3 }, tags: ["x"] } } } }],
  environments: { e: { enabled: true, offVariant: "a", defaultRule: { kind: { case: "variant", value: "a" } } } },
});
const intFlag = create(FlagSchema, {
  key: "int",
  type: ValueType.INTEGER,
  version: 1n,
  variants: [{ key: "big", value: { kind: { case: "intValue", value: 42n } } }],
  environments: { e: { enabled: true, offVariant: "big", defaultRule: { kind: { case: "variant", value: "big" } } } },
});
const client = new FlagwireClient({
  offline: true,
  bootstrap: toBinary(SnapshotSchema, create(SnapshotSchema, { environment: "e", revision: 7n, flags: [objectFlag, intFlag] })),
});

describe("getters", () => {
  it("never throw on nonsense input", () => {
    const weird: unknown[] = [undefined, null, 5, "ctx", { attributes: 5 }, { targetingKey: 7 }, { attributes: { f: () => 1 } }, { attributes: { n: NaN } }, { attributes: { b: 1n } }];
    for (const ctx of weird) {
      for (const key of ["obj", "int", "missing", undefined as unknown as string, 12 as unknown as string]) {
        const c = ctx as EvaluationContext;
        expect(() => client.getBoolean(key, c, true)).not.toThrow();
        expect(() => client.getStringDetails(key, c, "d")).not.toThrow();
        expect(() => client.getNumber(key, c, 1)).not.toThrow();
        expect(() => client.getObjectDetails(key, c, {})).not.toThrow();
        expect(() => client.getValueDetails(key, c, null, "nonsense" as never)).not.toThrow();
      }
    }
    expect(client.getNumberDetails("int", { attributes: { n: NaN } }, 1)).toMatchObject({ value: 1, errorCode: "INVALID_CONTEXT", flagVersion: 1 });
    expect(client.getNumberDetails("int", null as unknown as EvaluationContext, 1).errorCode).toBe("INVALID_CONTEXT");
    expect(client.getValueDetails("int", {}, 0, "nonsense" as never).errorCode).toBe("TYPE_MISMATCH");
  });

  it("read integers as numbers and objects as frozen JSON", () => {
    expect(client.getNumber("int", {}, 0)).toBe(42);
    expect(client.getValueDetails("int", {}, 0, "integer")).toMatchObject({ value: 42, reason: "STATIC", variant: "big" });
    expect(client.getValueDetails("int", {}, 0, "float").errorCode).toBe("TYPE_MISMATCH");
    const value = client.getObject<{ limits: { max: number }; tags: string[] }>("obj", {}, { limits: { max: 0 }, tags: [] });
    expect(value).toEqual({ limits: { max: 3 }, tags: ["x"] });
    expect(Object.isFrozen(value)).toBe(true);
    expect(() => {
      value.limits.max = 9;
    }).toThrow();
    expect(client.getObject("obj", {}, {})).toEqual({ limits: { max: 3 }, tags: ["x"] });
    expect(client.getBooleanDetails("obj", {}, false)).toMatchObject({ errorCode: "TYPE_MISMATCH", flagVersion: 4 });
    expect(client.revision).toBe(7);
    expect(client.flagKeys()).toEqual(["int", "obj"]);
  });

  it("round-trip the served copy as a bootstrap", () => {
    const again = new FlagwireClient({ offline: true, bootstrap: client.snapshotBytes()! });
    expect(again.getObject("obj", {}, {})).toEqual({ limits: { max: 3 }, tags: ["x"] });
    expect(again.revision).toBe(7);
  });
});
