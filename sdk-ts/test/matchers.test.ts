/**
 * The compiled clause matchers (issue 18) against the general clause evaluation they replace
 * for flag rules, on every clause of every vector file and many attribute values: present of
 * each type, missing, inherited, the clause's own values and near misses; negated too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create, fromJson, type JsonValue as PbJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { compileClause } from "../src/engine/clauses.js";
import { clauseMatcher } from "../src/engine/matchers.js";
import { Snapshot } from "../src/engine/snapshot.js";
import { type Clause, ClauseSchema, FlagSchema, Operator, SegmentSchema } from "../src/gen/flagwire/v1/flag_pb.js";
import type { AttributeValue, EvaluationContext } from "../src/types.js";
import { VECTORS } from "./support/vectors.js";

interface CaseFile {
  environment: string;
  flags: PbJson[];
  segments?: PbJson[];
  cases: { context: EvaluationContext }[];
}

const index = JSON.parse(readFileSync(join(VECTORS, "index.json"), "utf8")) as { files: string[] };

/** Values to try for an attribute a clause reads. */
function candidates(clause: Clause): (AttributeValue | undefined)[] {
  const out: (AttributeValue | undefined)[] = [undefined, null, "", "x", 0, -1, 65, 1e300, true, false, [], ["x"]];
  for (const v of clause.values) {
    const k = v.kind;
    if (k.case === "stringValue") {
      out.push(k.value, `${k.value}!`, `!${k.value}`, k.value.slice(1), [k.value], ["y", k.value]);
    } else if (k.case === "numberValue") {
      out.push(k.value, k.value - 1, k.value + 1, k.value + 0.5);
    } else if (k.case === "boolValue") {
      out.push(k.value, !k.value);
    }
  }
  return out;
}

describe("compiled clause matchers", () => {
  it("agree with the general evaluation on every vector clause", () => {
    let checked = 0;
    const operators = new Set<Operator>();
    for (const name of index.files) {
      const file = JSON.parse(readFileSync(join(VECTORS, name), "utf8")) as CaseFile;
      const flags = file.flags.map((f) => fromJson(FlagSchema, f));
      const segments = (file.segments ?? []).map((s) => fromJson(SegmentSchema, s));
      const snapshot = Snapshot.of(file.environment, 1, flags, segments);
      const contexts = file.cases.map((c) => c.context);
      for (const flag of flags) {
        for (const config of Object.values(flag.environments)) {
          for (const rule of config.rules) {
            for (const proto of rule.clauses) {
              for (const negate of [proto.negate, !proto.negate]) {
                const clause = compileClause({ ...proto, negate });
                const matcher = clauseMatcher(clause);
                operators.add(clause.op);
                const tries: EvaluationContext[] = [...contexts];
                for (const value of candidates(proto)) {
                  tries.push({ targetingKey: "k", attributes: { [proto.attribute]: value } });
                }
                tries.push({ targetingKey: "k" }, { attributes: { toString: "x" } });
                for (const ctx of tries) {
                  const want = snapshot.clauseMatches(clause, ctx, false);
                  expect(matcher(ctx, snapshot), `${name} ${JSON.stringify(proto)} negate=${negate} ${JSON.stringify(ctx)}`).toBe(want);
                  checked++;
                }
              }
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(10_000);
    for (const op of [Operator.IN, Operator.NOT_IN, Operator.STARTS_WITH, Operator.ENDS_WITH, Operator.CONTAINS, Operator.LT, Operator.LTE, Operator.GT, Operator.GTE]) {
      expect(operators.has(op), Operator[op]).toBe(true);
    }
  });

  it("treat NaN values as comparing with nothing, and no values as never holding", () => {
    const snapshot = Snapshot.of("e", 1, [], []);
    const nan = { kind: { case: "numberValue" as const, value: Number.NaN } };
    for (const op of [Operator.LT, Operator.LTE, Operator.GT, Operator.GTE]) {
      for (const values of [[nan], [nan, { kind: { case: "numberValue" as const, value: 5 } }], []]) {
        for (const negate of [false, true]) {
          const clause = compileClause(create(ClauseSchema, { attribute: "n", operator: op, negate }));
          const withValues = { ...clause, numbers: values.map((v) => v.kind.value) };
          const matcher = clauseMatcher(withValues);
          for (const n of [-10, 4, 5, 6, 10]) {
            const ctx = { attributes: { n } };
            expect(matcher(ctx, snapshot)).toBe(snapshot.clauseMatches(withValues, ctx, false));
          }
        }
      }
    }
  });
});
