// x-request-id handling (Envoy's UUID request id extension): generate a v4 UUID when absent or untrusted.
import { randomFillSync } from 'node:crypto';
import type { HttpHeaders } from './headers.js';

/** Sets x-request-id when absent (or when `regenerate`, for external requests at the edge); returns its value. */
export function ensureRequestId(headers: HttpHeaders, generate: boolean, regenerate: boolean): string {
  const current = headers['x-request-id'];
  const value = Array.isArray(current) ? current[0] : current;
  if (value && !regenerate) return value;
  if (!generate) return value ?? '';
  const id = uuidV4();
  headers['x-request-id'] = id;
  return id;
}

/** Random bytes for 512 UUIDs at a time (crypto.randomUUID also draws from a batch). */
const pool = Buffer.alloc(16 * 512);
let offset = pool.length;
/** Hex digits of each byte as character codes, and where each byte's two digits go in `8-4-4-4-12`. */
const HEX = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, '0');
  HEX[2 * i] = h.charCodeAt(0);
  HEX[2 * i + 1] = h.charCodeAt(1);
}
const POSITIONS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const codes: number[] = new Array<number>(36).fill(45 /* '-' */);

/**
 * A random (version 4, RFC 9562) UUID as one flat string. crypto.randomUUID builds its result by concatenating twenty
 * pieces: a rope that every later use (the header check, the request head written upstream) first copies flat, which
 * cost more than generating it (docs/performance.md, step 14). String.fromCharCode makes the flat string directly.
 */
export function uuidV4(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const o = offset;
  offset += 16;
  for (let i = 0; i < 16; i++) {
    let v = pool[o + i]!;
    if (i === 6) v = (v & 0x0f) | 0x40; // version 4
    else if (i === 8) v = (v & 0x3f) | 0x80; // variant 10xx
    const p = POSITIONS[i]!;
    codes[p] = HEX[2 * v]!;
    codes[p + 1] = HEX[2 * v + 1]!;
  }
  return String.fromCharCode.apply(null, codes);
}
