// XXH64 (xxHash, 64-bit), the hash Envoy's hash policies use (HashUtil::xxHash64, seed 0), so a ring-hash or Maglev
// cluster picks the same host for the same request as Envoy would.
//
// BigInt arithmetic keeps it exact and short. It runs only for routes with a hash_policy, once per policy per request;
// for the short keys hashed there (a header, a cookie, an IP) that is well under a microsecond.

const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const MASK = 0xffffffffffffffffn;

function rotl(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & MASK;
}

function round(acc: bigint, lane: bigint): bigint {
  return (rotl((acc + lane * P2) & MASK, 31n) * P1) & MASK;
}

function mergeRound(acc: bigint, value: bigint): bigint {
  return ((acc ^ round(0n, value)) * P1 + P4) & MASK;
}

function read32(bytes: Uint8Array, i: number): number {
  return (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
}

function read64(bytes: Uint8Array, i: number): bigint {
  return (BigInt(read32(bytes, i + 4)) << 32n) | BigInt(read32(bytes, i));
}

/** XXH64 of `input` (strings hash as their UTF-8 bytes) with `seed`, as an unsigned 64-bit bigint. */
export function xxHash64(input: string | Uint8Array, seed = 0n): bigint {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const length = bytes.length;
  seed &= MASK;
  let i = 0;
  let h: bigint;
  if (length >= 32) {
    let v1 = (seed + P1 + P2) & MASK;
    let v2 = (seed + P2) & MASK;
    let v3 = seed;
    let v4 = (seed - P1) & MASK;
    for (; i + 32 <= length; i += 32) {
      v1 = round(v1, read64(bytes, i));
      v2 = round(v2, read64(bytes, i + 8));
      v3 = round(v3, read64(bytes, i + 16));
      v4 = round(v4, read64(bytes, i + 24));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & MASK;
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = (seed + P5) & MASK;
  }
  h = (h + BigInt(length)) & MASK;
  for (; i + 8 <= length; i += 8) {
    h ^= round(0n, read64(bytes, i));
    h = (rotl(h, 27n) * P1 + P4) & MASK;
  }
  if (i + 4 <= length) {
    h ^= (BigInt(read32(bytes, i)) * P1) & MASK;
    h = (rotl(h, 23n) * P2 + P3) & MASK;
    i += 4;
  }
  for (; i < length; i++) {
    h ^= (BigInt(bytes[i]!) * P5) & MASK;
    h = (rotl(h, 11n) * P1) & MASK;
  }
  h ^= h >> 33n;
  h = (h * P2) & MASK;
  h ^= h >> 29n;
  h = (h * P3) & MASK;
  h ^= h >> 32n;
  return h;
}

/** Envoy's Hex::uint64ToHex: 16 lower-case hex digits. */
export function uint64ToHex(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}
