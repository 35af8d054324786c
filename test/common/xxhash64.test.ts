import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uint64ToHex, xxHash64 } from '../../src/common/xxhash64.js';

// xxHash's own sanity buffer (cli/xsum_sanity_check.c): byteGen starts at PRIME32, each byte is its top 8 bits, then
// byteGen *= PRIME64 (mod 2^64).
function sanityBuffer(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let gen = 2654435761n;
  for (let i = 0; i < length; i++) {
    out[i] = Number(gen >> 56n);
    gen = (gen * 11400714785074694797n) & 0xffffffffffffffffn;
  }
  return out;
}

const PRIME32 = 2654435761n;
const VECTORS: Array<[number, bigint, bigint]> = [
  [0, 0n, 0xef46db3751d8e999n],
  [0, PRIME32, 0xac75fda2929b17efn],
  [1, 0n, 0xe934a84adb052768n],
  [1, PRIME32, 0x5014607643a9b4c3n],
  [4, 0n, 0x9136a0dca57457een],
  [14, 0n, 0x8282dcc4994e35c8n],
  [14, PRIME32, 0xc3bd6bf63deb6df0n],
  [222, 0n, 0xb641ae8cb691c174n],
  [222, PRIME32, 0x20cb8ab7ae10c14an],
];

test('xxHash64 matches the xxHash reference sanity vectors', () => {
  const buffer = sanityBuffer(222);
  for (const [length, seed, expected] of VECTORS) {
    assert.equal(xxHash64(buffer.subarray(0, length), seed), expected, `length ${length} seed ${seed}`);
  }
});

test('xxHash64 of strings hashes their UTF-8 bytes; hex is 16 digits', () => {
  assert.equal(xxHash64(''), 0xef46db3751d8e999n);
  assert.equal(xxHash64('héllo'), xxHash64(Buffer.from('héllo', 'utf8')));
  assert.equal(uint64ToHex(0x1n), '0000000000000001');
  assert.equal(uint64ToHex(xxHash64('')), 'ef46db3751d8e999');
});
