// Trace context parsing and propagation: W3C traceparent/tracestate vectors (from the spec's examples) and B3 multi and single header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  extractContext,
  formatTraceparent,
  injectContext,
  parseB3Single,
  parseTraceparent,
  randomId,
} from '../../../../src/proxy/filters/tracing/trace-context.js';
import type { HttpHeaders } from '../../../../src/proxy/http/headers.js';

test('W3C traceparent: the spec example parses, with the sampled flag and tracestate', () => {
  const ctx = parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'congo=t61rcWkgMzE');
  assert.deepEqual(ctx, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', sampled: true, traceState: 'congo=t61rcWkgMzE' });
  assert.equal(parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00')?.sampled, false);
});

test('W3C traceparent: malformed values are refused (zero ids, bad lengths, version ff, extra fields in 00, non-hex)', () => {
  for (const bad of [
    '00-00000000000000000000000000000000-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
    '00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01',
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
    '00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
    '',
  ]) assert.equal(parseTraceparent(bad), undefined, bad);
  // A future version may append fields: the first four are read.
  assert.equal(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what')?.spanId, 'b7ad6b7169203331');
});

test('B3 multi-header: ids, parent, sampled and debug flags; 64-bit trace ids are kept', () => {
  const h: HttpHeaders = {
    'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124',
    'x-b3-spanid': 'a2fb4a1d1a96d312',
    'x-b3-parentspanid': '0020000000000001',
    'x-b3-sampled': '1',
  };
  assert.deepEqual(extractContext(h), {
    format: 'b3',
    context: { traceId: '463ac35c9f6413ad48485a3953bb6124', spanId: 'a2fb4a1d1a96d312', parentSpanId: '0020000000000001', sampled: true },
  });
  const short = extractContext({ 'x-b3-traceid': '48485a3953bb6124', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-flags': '1' });
  assert.equal(short.context?.traceId, '48485a3953bb6124');
  assert.equal(short.context?.debug, true);
  assert.equal(short.context?.sampled, true);
  assert.equal(extractContext({ 'x-b3-traceid': '48485a3953bb6124', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': 'false' }).context?.sampled, false);
  // Sampling decision alone (no ids), as B3 allows.
  assert.deepEqual(extractContext({ 'x-b3-sampled': '0' }), { sampled: false });
  // A bad span id: no context.
  assert.deepEqual(extractContext({ 'x-b3-traceid': '48485a3953bb6124', 'x-b3-spanid': 'xyz' }), {});
});

test('B3 single header: full, without parent, deferred, debug and decision-only forms', () => {
  assert.deepEqual(parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90'), {
    format: 'b3-single',
    context: { traceId: '80f198ee56343ba864fe8b2a57d3eff7', spanId: 'e457b5a2e4d86bd1', parentSpanId: '05e3ac9a4f6e3b90', sampled: true },
  });
  assert.equal(parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1')?.context?.sampled, undefined);
  assert.equal(parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d')?.context?.debug, true);
  assert.deepEqual(parseB3Single('0'), { sampled: false });
  assert.equal(parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x'), undefined);
  assert.equal(extractContext({ b3: '0' }).sampled, false);
});

test('precedence: traceparent over b3 over x-b3-*; a malformed traceparent falls through to B3', () => {
  const both: HttpHeaders = {
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0',
  };
  assert.equal(extractContext(both).format, 'w3c');
  assert.equal(extractContext({ ...both, traceparent: 'garbage' }).context?.traceId, '80f198ee56343ba864fe8b2a57d3eff7');
});

test('injection writes traceparent and B3 multi-headers for the new span and removes the incoming single b3', () => {
  const h: HttpHeaders = { b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1', 'x-b3-sampled': '1', tracestate: 'old=1' };
  injectContext(h, { traceId: '80f198ee56343ba864fe8b2a57d3eff7', spanId: '1111111111111111', parentSpanId: 'e457b5a2e4d86bd1', sampled: true, traceState: 'congo=t61rcWkgMzE' });
  assert.deepEqual(h, {
    traceparent: '00-80f198ee56343ba864fe8b2a57d3eff7-1111111111111111-01',
    tracestate: 'congo=t61rcWkgMzE',
    'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
    'x-b3-spanid': '1111111111111111',
    'x-b3-parentspanid': 'e457b5a2e4d86bd1',
    'x-b3-sampled': '1',
  });
  // A 64-bit B3 trace id is padded to 128 bits in traceparent; an unsampled span says so.
  assert.equal(formatTraceparent({ traceId: '48485a3953bb6124', spanId: '1111111111111111', sampled: false }), '00-000000000000000048485a3953bb6124-1111111111111111-00');
  // Round trip.
  const out: HttpHeaders = {};
  injectContext(out, { traceId: randomId(16), spanId: randomId(8), sampled: true });
  const back = extractContext(out);
  assert.equal(back.context?.traceId, out['x-b3-traceid']);
  assert.equal(back.context?.sampled, true);
});
