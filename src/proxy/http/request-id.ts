// x-request-id handling (Envoy's UUID request id extension): generate a v4 UUID when absent or untrusted.
import { randomUUID } from 'node:crypto';
import type { HttpHeaders } from './headers.js';

/** Sets x-request-id when absent (or when `regenerate`, for external requests at the edge); returns its value. */
export function ensureRequestId(headers: HttpHeaders, generate: boolean, regenerate: boolean): string {
  const current = headers['x-request-id'];
  const value = Array.isArray(current) ? current[0] : current;
  if (value && !regenerate) return value;
  if (!generate) return value ?? '';
  const id = randomUUID();
  headers['x-request-id'] = id;
  return id;
}
