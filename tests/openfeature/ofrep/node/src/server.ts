/**
 * Drives npm `@openfeature/ofrep-provider` 0.1.3 (on `@openfeature/ofrep-core` 0.1.4, an
 * older OFREP) with `@openfeature/server-sdk`: the dynamic-context provider, one
 * `POST /ofrep/v1/evaluate/flags/{key}` per evaluation. It emits no change events; every call
 * sees the server's current flags.
 */
import { OpenFeature, type EvaluationContext } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { answer, serve, settings, type EvalRequest, type Request } from './protocol.js';

const { url, token } = settings();

async function evaluate(r: EvalRequest): Promise<unknown> {
  const client = OpenFeature.getClient();
  const ctx = r.context as EvaluationContext;
  switch (r.type) {
    case 'boolean':
      return answer(await client.getBooleanDetails(r.flag, r.default as boolean, ctx));
    case 'string':
      return answer(await client.getStringDetails(r.flag, r.default as string, ctx));
    case 'integer':
    case 'float':
      return answer(await client.getNumberDetails(r.flag, r.default as number, ctx));
    default:
      return answer(
        await client.getObjectDetails(r.flag, r.default as Record<string, never>, ctx),
      );
  }
}

await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl: url, headers: [['Authorization', `Bearer ${token}`]] }),
);
await serve(async (r: Request) => (r.op === 'events' ? { changed: 0 } : evaluate(r)));
await OpenFeature.close();
process.exit(0);
