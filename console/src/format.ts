// Formatting for people: times in the viewer's zone (UTC on hover), flag values, durations.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { FlagValue, Serve } from "./gen/flagwire/v1/flag_pb.js";

/** The time in the viewer's zone and in UTC, or undefined when unset. */
export function times(t: Timestamp | undefined): { local: string; utc: string; iso: string } | undefined {
  if (!t || (t.seconds === 0n && t.nanos === 0)) return undefined;
  const d = timestampDate(t);
  return {
    local: d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }),
    utc: `${d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "")} UTC`,
    iso: d.toISOString(),
  };
}

/** A flag value as people write it: true, "blue", 42, {...}. */
export function formatValue(v: FlagValue | undefined): string {
  switch (v?.kind.case) {
    case "boolValue":
      return String(v.kind.value);
    case "stringValue":
      return JSON.stringify(v.kind.value);
    case "intValue":
      return v.kind.value.toString();
    case "floatValue":
      return String(v.kind.value);
    case "objectValue":
      return JSON.stringify(v.kind.value);
    default:
      return "—";
  }
}

/** What a serve does: one variant, or the split's weights as percentages. */
export function formatServe(s: Serve | undefined): string {
  switch (s?.kind.case) {
    case "variant":
      return s.kind.value;
    case "split": {
      const entries = s.kind.value.entries;
      const total = entries.reduce((sum, e) => sum + e.weight, 0) || 1;
      return entries
        .map((e) => `${e.variant} ${Math.round((e.weight * 1000) / total) / 10}%`)
        .join(" / ");
    }
    default:
      return "—";
  }
}

/** A rate as a percentage with two decimals. */
export function percent(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

/** Microseconds as milliseconds. */
export function ms(us: number): string {
  return `${(us / 1000).toFixed(1)} ms`;
}

/** A generated enum's value for people (protobuf-es drops the prefix): AWAITING_APPROVAL -> awaiting approval. */
export function enumName(names: Record<number, string>, value: number): string {
  return (names[value] ?? String(value)).toLowerCase().replace(/_/g, " ");
}
