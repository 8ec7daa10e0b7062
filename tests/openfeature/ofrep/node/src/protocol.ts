/**
 * The adapters' side of ../harness.py's protocol: JSON requests on stdin, one answer per
 * line on stdout, handled strictly in order.
 */
import { createInterface } from 'node:readline';

/** An evaluation request. */
export interface EvalRequest {
  op: 'eval';
  flag: string;
  type: 'boolean' | 'string' | 'integer' | 'float' | 'object';
  default: unknown;
  context: Record<string, unknown>;
}

/** Any request. */
export type Request = EvalRequest | { op: 'events' };

/** What the harness compares. */
export interface Answer {
  value: unknown;
  variant: string;
  reason: string | null;
  errorCode: string | null;
  metadata: Record<string, unknown>;
}

/** The parts of OpenFeature's evaluation details an answer is made of. */
export interface Details {
  value: unknown;
  variant?: string;
  reason?: string;
  errorCode?: string;
  flagMetadata: Readonly<Record<string, unknown>>;
}

/** An answer from OpenFeature evaluation details. */
export function answer(d: Details): Answer {
  return {
    value: d.value,
    variant: d.variant ?? '',
    reason: d.reason ?? null,
    errorCode: d.errorCode ?? null,
    metadata: { ...d.flagMetadata },
  };
}

/** Says ready, then answers each request with `handle`, in order, until stdin ends. */
export async function serve(handle: (r: Request) => Promise<unknown>): Promise<void> {
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const answer = await handle(JSON.parse(line) as Request);
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
}

/** The OFREP base URL and the sdk token the harness passes. */
export function settings(): { url: string; token: string } {
  const url = process.env['OFREP_URL'];
  const token = process.env['OFREP_TOKEN'];
  if (!url || !token) throw new Error('OFREP_URL and OFREP_TOKEN must be set');
  return { url, token };
}
