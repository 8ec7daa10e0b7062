/**
 * Every case file of tests/vectors (index.json, plus FLAGWIRE_VECTORS) through the public API:
 * an offline client started from a bootstrap snapshot built from the file's flags and segments.
 */
import { readFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { create, fromJson, toBinary, type JsonValue as PbJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FlagwireClient, type EvaluationContext, type EvaluationDetails, type FlagType, prepareContext } from "@flagwire/sdk";
import { FlagSchema, SegmentSchema } from "../src/gen/flagwire/v1/flag_pb.js";
import { SnapshotSchema } from "../src/gen/flagwire/v1/flag_service_pb.js";
import { VECTORS } from "./support/vectors.js";


interface Case {
  description: string;
  flag: string;
  type: FlagType | "any";
  default: unknown;
  context: EvaluationContext;
  expected: {
    value: unknown;
    variant: string;
    reason: string;
    errorCode: string | null;
    cohort?: string;
    rolloutId?: string;
    flagVersion?: number;
  };
}
interface CaseFile {
  environment: string;
  flags: PbJson[];
  segments?: PbJson[];
  cases: Case[];
}

const index = JSON.parse(readFileSync(join(VECTORS, "index.json"), "utf8")) as { files: string[] };
const files = index.files.map((f) => join(VECTORS, f));
const extra = (process.env.FLAGWIRE_VECTORS ?? "").split(delimiter).filter((p) => p !== "");
files.push(...extra.map((p) => resolve(p)));

function clientFor(file: CaseFile): FlagwireClient {
  const snapshot = create(SnapshotSchema, {
    environment: file.environment,
    revision: 1n,
    flags: file.flags.map((f) => fromJson(FlagSchema, f)),
    segments: (file.segments ?? []).map((s) => fromJson(SegmentSchema, s)),
  });
  return new FlagwireClient({ offline: true, bootstrap: toBinary(SnapshotSchema, snapshot) });
}

function evaluate(client: FlagwireClient, c: Case): EvaluationDetails<unknown> {
  switch (c.type) {
    case "boolean":
      return client.getBooleanDetails(c.flag, c.context, c.default as boolean);
    case "string":
      return client.getStringDetails(c.flag, c.context, c.default as string);
    case "object":
      return client.getObjectDetails(c.flag, c.context, c.default as never);
    case "integer":
    case "float":
      return client.getValueDetails(c.flag, c.context, c.default, c.type);
    default:
      return client.getValueDetails(c.flag, c.context, c.default);
  }
}

let total = 0;
for (const path of files) {
  const file = JSON.parse(readFileSync(path, "utf8")) as CaseFile;
  describe(path.slice(path.lastIndexOf("/") + 1), () => {
    const client = clientFor(file);
    for (const c of file.cases) {
      total++;
      it(c.description, () => {
        const got = evaluate(client, c);
        const e = c.expected;
        expect(got.value).toEqual(e.value);
        expect(got.variant ?? "").toBe(e.variant);
        expect(got.reason).toBe(e.reason);
        expect(got.errorCode ?? null).toBe(e.errorCode);
        expect(got.cohort ?? "").toBe(e.cohort ?? "");
        expect(got.rolloutId ?? "").toBe(e.rolloutId ?? "");
        if (e.flagVersion !== undefined) expect(got.flagVersion).toBe(e.flagVersion);
        // The getters agree with their details forms, and numeric flags read through getNumber.
        if (c.type === "boolean") expect(client.getBoolean(c.flag, c.context, c.default as boolean)).toBe(got.value);
        if (c.type === "string") expect(client.getString(c.flag, c.context, c.default as string)).toBe(got.value);
        if ((c.type === "integer" || c.type === "float") && e.reason !== "ERROR") {
          expect(client.getNumber(c.flag, c.context, -1)).toBe(e.value);
        }
        // A prepared context (checked once; issue 18) gives the same details, bit for bit.
        expect(evaluate(client, { ...c, context: prepareContext(c.context) })).toStrictEqual(got);
      });
    }
  });
}

describe("vector files", () => {
  it("were all found", () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
    expect(total).toBeGreaterThan(800);
  });
});
