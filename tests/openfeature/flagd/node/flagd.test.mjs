// npm @openfeature/flagd-provider 0.16.1 with @openfeature/server-sdk 1.23.0, in RPC mode and in
// in-process mode fed by Flagwire's sync, against the server binary: every vector case each can
// carry (CASES.md), then a change made through the admin API arriving as ConfigurationChanged.
// The provider cannot send an `authorization` header, so the server runs with
// `--flagd-environment` (docs/reference/flagd.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';
import { caseFiles, check, flagdReason, partialVersion, start, targetingKeyAttribute } from './fixture.mjs';

const WAIT_MS = 30_000;
const RPC_GENERAL = new Set(['TARGETING_KEY_MISSING', 'INVALID_CONTEXT']);

function provider(fx, resolverType, selector) {
  return new FlagdProvider({ host: '127.0.0.1', port: fx.port, resolverType, cache: 'disabled', deadlineMs: 30_000 /* generous: scripts/test runs this beside other suites on 2 cores */, selector });
}

function common(fx, c) {
  if (c.type === 'any') return 'no expected type (OpenFeature calls are typed)';
  if (targetingKeyAttribute(c)) return 'an attribute named targetingKey (a flat context has one such field)';
  const flag = fx.flags.find((f) => f.key === c.flag);
  if ((c.type === 'integer' || c.type === 'float') && flag?.type === 'VALUE_TYPE_INTEGER') {
    return 'an integer flag (JavaScript numbers have one type: the provider asks for a float)';
  }
  if (c.type === 'integer') return 'an integer read of a float flag (JavaScript numbers have one type)';
  return null;
}

function expectRpc(fx) {
  return (c) => {
    const out = common(fx, c);
    if (out) return out;
    const e = { ...c.expected };
    if (RPC_GENERAL.has(e.errorCode)) e.errorCode = 'GENERAL';
    return e;
  };
}

// flagd-core 4.0 (this provider's engine) still has the pre-CBOR fractional, whose bucketing is
// ours: with `fractional=utf8` in its selector the export carries splits (reason
// TARGETING_MATCH; a missing bucketing key is an error, reported as GENERAL).
function expectInProcessUtf8(fx) {
  const base = expectInProcess(fx, fx.document_utf8);
  return (c) => {
    const flag = fx.flags.find((f) => f.key === c.flag);
    const strings = [c.context?.targetingKey ?? '', ...Object.values(c.context?.attributes ?? {})];
    const nonAscii = strings.some((v) => typeof v === 'string' && /[^\x00-\x7f]/.test(v));
    if (nonAscii && JSON.stringify(flag ?? {}).includes('"split"')) {
      return 'a non-ASCII bucketing key (flagd-core 4 hashes UTF-16 code units, not UTF-8 bytes)';
    }
    const e = base(c);
    if (typeof e === 'string' || e.reason === 'ERROR' && e.errorCode === 'FLAG_NOT_FOUND' && c.expected.reason !== 'ERROR') return e;
    if (e.reason === 'SPLIT') return { ...e, reason: 'TARGETING_MATCH' };
    if (e.errorCode === 'TARGETING_KEY_MISSING') return { ...e, errorCode: 'GENERAL' };
    return e;
  };
}

function expectInProcess(fx, document = fx.document) {
  const omitted = new Set((document.metadata.flagwireOmitted ?? '').split(',').filter(Boolean));
  return (c) => {
    const out = common(fx, c);
    if (out) return out;
    if (omitted.has(c.flag)) {
      return { value: c.default, variant: '', reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' };
    }
    if (partialVersion(c, fx.flags)) return 'a partial version in a SEMVER clause (flagd pads 1.9 to 1.9.0)';
    if (c.expected.errorCode === 'INVALID_CONTEXT') return 'invalid context (flagd providers do not check attribute types)';
    const e = { ...c.expected };
    if (e.reason !== 'ERROR') e.reason = flagdReason(e.reason, 'targeting' in document.flags[c.flag]);
    return e;
  };
}

for (const [mode, resolverType, expect, selector] of [
  ['rpc', 'rpc', expectRpc],
  ['in-process', 'in-process', (fx) => expectInProcess(fx)],
  ['in-process fractional=utf8', 'in-process', expectInProcessUtf8, 'fractional=utf8'],
]) {
  for (const file of caseFiles()) {
    test(`${mode}: ${path.basename(file)} agrees with flagwire-core on every case it carries`, async () => {
      const fx = await start(file);
      const domain = `${mode}-${fx.port}`;
      try {
        await OpenFeature.setProviderAndWait(domain, provider(fx, resolverType, selector));
        const tally = await check(OpenFeature.getClient(domain), fx.cases, expect(fx));
        console.log(`${mode} ${path.basename(file)}: ${tally.passed} passed, ${tally.failures.length} failed; left out: ${JSON.stringify(tally.leftOut)}`);
        assert.deepEqual(tally.failures, []);
        assert.ok(tally.passed > 0);
      } finally {
        await OpenFeature.clearProviders();
        await fx.stop();
      }
    });
  }

  test(`${mode}: a change through the admin API reaches the provider`, async () => {
    const fx = await start(path.join(path.dirname(caseFiles()[0]), 'basics.json'));
    const domain = `${mode}-events-${fx.port}`;
    try {
      await OpenFeature.setProviderAndWait(domain, provider(fx, resolverType, selector));
      const client = OpenFeature.getClient(domain);
      const flag = fx.flags.find((f) => f.type === 'VALUE_TYPE_BOOLEAN' && fx.environment in (f.environments ?? {}) && !f.environments[fx.environment].enabled);
      assert.ok(flag, 'basics.json has a disabled boolean flag');
      const changed = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ConfigurationChanged within the deadline')), WAIT_MS);
        client.addHandler(ProviderEvents.ConfigurationChanged, (details) => {
          if (details?.flagsChanged?.includes(flag.key)) {
            clearTimeout(timer);
            resolve(details.flagsChanged);
          }
        });
      });
      const before = await client.getBooleanDetails(flag.key, true, { targetingKey: 'u' });
      await fx.send(`enable ${flag.key}`);
      assert.ok((await changed).includes(flag.key));
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const after = await client.getBooleanDetails(flag.key, true, { targetingKey: 'u' });
        if (after.reason !== before.reason) break;
        assert.ok(Date.now() < deadline, 'the change never showed in evaluations');
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      await OpenFeature.clearProviders();
      await fx.stop();
    }
  });
}
