/**
 * Strict Semantic Versioning 2.0.0 (`MAJOR.MINOR.PATCH[-prerelease][+build]`, ASCII only, no
 * leading `v`, no leading zeros in numbers) and precedence comparison (build metadata ignored).
 * Hand-written, like the Rust and Python ones, so every language accepts exactly the same strings.
 */

/** A parsed version: numbers kept as digit strings (compared by length, then lexically). */
export interface SemVer {
  readonly core: readonly [string, string, string];
  readonly pre: readonly string[];
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdent = (c: number): boolean =>
  isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45;

function numeric(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

function number(s: string): boolean {
  return numeric(s) && (s.length === 1 || s.charCodeAt(0) !== 48);
}

function identifiers(s: string, allowLeadingZero: boolean): string[] | undefined {
  const parts = s.split(".");
  for (const p of parts) {
    if (p.length === 0) return undefined;
    for (let i = 0; i < p.length; i++) if (!isIdent(p.charCodeAt(i))) return undefined;
    if (!allowLeadingZero && numeric(p) && !number(p)) return undefined;
  }
  return parts;
}

/** Parses a version, or `undefined` when it is not strict SemVer 2.0.0. */
export function parseSemver(text: string): SemVer | undefined {
  let rest = text;
  const plus = rest.indexOf("+");
  if (plus >= 0) {
    if (identifiers(rest.slice(plus + 1), true) === undefined) return undefined;
    rest = rest.slice(0, plus);
  }
  let pre: string[] = [];
  const dash = rest.indexOf("-");
  if (dash >= 0) {
    const ids = identifiers(rest.slice(dash + 1), false);
    if (ids === undefined) return undefined;
    pre = ids;
    rest = rest.slice(0, dash);
  }
  const core = rest.split(".");
  if (core.length !== 3 || !core.every(number)) return undefined;
  return { core: [core[0]!, core[1]!, core[2]!], pre };
}

function compareNumbers(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SemVer precedence: -1, 0 or 1. */
export function compareSemver(a: SemVer, b: SemVer): number {
  for (let i = 0; i < 3; i++) {
    const c = compareNumbers(a.core[i]!, b.core[i]!);
    if (c !== 0) return c;
  }
  const pa = a.pre;
  const pb = b.pre;
  if (pa.length === 0 || pb.length === 0) {
    // A release is greater than any of its pre-releases.
    return pa.length === pb.length ? 0 : pa.length === 0 ? 1 : -1;
  }
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    const xn = numeric(x);
    const yn = numeric(y);
    let c: number;
    if (xn && yn) c = compareNumbers(x, y);
    else if (xn) c = -1; // numeric identifiers have lower precedence than alphanumeric ones
    else if (yn) c = 1;
    else c = x < y ? -1 : x > y ? 1 : 0; // ASCII order
    if (c !== 0) return c;
  }
  return pa.length === pb.length ? 0 : pa.length < pb.length ? -1 : 1;
}
