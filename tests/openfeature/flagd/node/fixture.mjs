// The shared fixture (../fixture.py, run with the Python test venv): a server binary holding one
// vector case file, and the expectations every flagd provider test applies (CASES.md).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const flagd = path.resolve(here, '..');
const root = path.resolve(flagd, '../../..');
const python = process.env.FLAGD_PYTHON ?? path.join(flagd, 'python/.venv/bin/python');

/** Every case file named by tests/vectors/index.json. */
export function caseFiles() {
  const index = JSON.parse(readFileSync(path.join(root, 'tests/vectors/index.json'), 'utf8'));
  return index.files.map((f) => path.join(root, 'tests/vectors', f));
}

/** Starts `fixture.py <file> --anonymous`; resolves to its first line plus `send` and `stop`. */
export async function start(file) {
  const child = spawn(python, [path.join(flagd, 'fixture.py'), file, '--anonymous'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`fixture.py ${file} exited without starting a server`);
  const info = JSON.parse(first.value);
  return {
    ...info,
    /** Sends a command (`enable <flag>`) and waits for its answer. */
    async send(command) {
      child.stdin.write(`${command}\n`);
      const answer = await lines.next();
      if (answer.done) throw new Error(`fixture.py ended during ${command}`);
      return JSON.parse(answer.value);
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}

/** Equal as JSON: numbers numerically, booleans never numbers, objects by keys. */
export function sameJson(a, b) {
  if (typeof a !== typeof b) return false;
  if (a === null || b === null) return a === b;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (typeof a === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return sameJson(ka, kb) && ka.every((k) => sameJson(a[k], b[k]));
  }
  return a === b;
}

export const targetingKeyAttribute = (c) => 'targetingKey' in (c.context?.attributes ?? {});

/** A SEMVER clause of the case's flag reads a partial version (flagd pads `1.9` to `1.9.0`). */
export function partialVersion(c, flags) {
  const flag = flags.find((f) => f.key === c.flag);
  const attributes = c.context?.attributes ?? {};
  for (const config of Object.values(flag?.environments ?? {})) {
    for (const rule of config.rules ?? []) {
      for (const clause of rule.clauses ?? []) {
        if (!String(clause.operator ?? '').startsWith('OPERATOR_SEMVER')) continue;
        const value = attributes[clause.attribute];
        if (typeof value === 'string' && value.split('-')[0].split('+')[0].split('.').length < 3) {
          return true;
        }
      }
    }
  }
  return false;
}

/** Our reason as flagd's engine names the same outcome. */
export function flagdReason(reason, targeting) {
  if (reason === 'STATIC' || reason === 'DISABLED') return targeting ? 'DEFAULT' : 'STATIC';
  if (reason === 'PREREQUISITE_FAILED') return 'TARGETING_MATCH';
  return reason;
}

/** Evaluates a case through an OpenFeature client with the typed call of its type. */
export async function evaluate(client, c) {
  const context = { ...(c.context?.attributes ?? {}) };
  if (c.context?.targetingKey) context.targetingKey = c.context.targetingKey;
  switch (c.type) {
    case 'boolean': return client.getBooleanDetails(c.flag, c.default, context);
    case 'string': return client.getStringDetails(c.flag, c.default, context);
    case 'integer': return client.getNumberDetails(c.flag, c.default, context);
    case 'float': return client.getNumberDetails(c.flag, c.default, context);
    case 'object': return client.getObjectDetails(c.flag, c.default, context);
    default: throw new Error(`no typed call for ${c.type}`);
  }
}

/** Runs the cases `expect` does not leave out; returns {passed, failures, leftOut}. */
export async function check(client, cases, expect) {
  const tally = { passed: 0, failures: [], leftOut: {} };
  for (const c of cases) {
    const want = expect(c);
    if (typeof want === 'string') {
      tally.leftOut[want] = (tally.leftOut[want] ?? 0) + 1;
      continue;
    }
    const d = await evaluate(client, c);
    const got = { value: d.value, variant: d.variant ?? '', reason: d.reason, errorCode: d.errorCode ?? null };
    const expected = {
      value: want.value,
      variant: want.variant ?? '',
      reason: want.reason,
      errorCode: want.errorCode ?? null,
    };
    const problems = Object.keys(expected)
      .filter((k) => !(k === 'value' ? sameJson(got[k], expected[k]) : got[k] === expected[k]))
      .map((k) => `${k}: got ${JSON.stringify(got[k])}, want ${JSON.stringify(expected[k])}`);
    if (problems.length) tally.failures.push(`${c.description}: ${problems.join('; ')}`);
    else tally.passed += 1;
  }
  return tally;
}
