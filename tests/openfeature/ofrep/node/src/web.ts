/**
 * Drives npm `@openfeature/ofrep-web-provider` 0.4.3 on `@openfeature/web-sdk` in Node: the
 * static-context (browser) provider, which bulk-evaluates every flag for the context set with
 * `OpenFeature.setContext` and follows the server's `eventStreams` (SSE). Node 20 has `fetch`
 * but no `EventSource`: the `eventsource` package provides it.
 */
import { EventSource } from 'eventsource';
import { OpenFeature, ProviderEvents, type EvaluationContext } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { answer, serve, settings, type EvalRequest, type Request } from './protocol.js';

Object.assign(globalThis, { EventSource });

const { url, token } = settings();
let changed = 0;
let current = '';

async function evaluate(r: EvalRequest): Promise<unknown> {
  const key = JSON.stringify(r.context);
  if (key !== current) {
    await OpenFeature.setContext(r.context as EvaluationContext);
    current = key;
  }
  const client = OpenFeature.getClient();
  switch (r.type) {
    case 'boolean':
      return answer(client.getBooleanDetails(r.flag, r.default as boolean));
    case 'string':
      return answer(client.getStringDetails(r.flag, r.default as string));
    case 'integer':
    case 'float':
      return answer(client.getNumberDetails(r.flag, r.default as number));
    default:
      return answer(client.getObjectDetails(r.flag, r.default as Record<string, never>));
  }
}

const provider = new OFREPWebProvider({
  baseUrl: url,
  headers: [['Authorization', `Bearer ${token}`]],
  // No browser storage in Node; every start asks the server.
  cacheMode: 'disabled',
});
await OpenFeature.setProviderAndWait(provider, {});
OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, () => {
  changed += 1;
});
await serve(async (r: Request) => (r.op === 'events' ? { changed } : evaluate(r)));
await OpenFeature.close();
process.exit(0);
