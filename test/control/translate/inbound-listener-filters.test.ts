// Istio's populateListenerFilters for capture listeners: which ports get the TLS and HTTP inspectors (server-first ports none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspectorsFor } from '../../../src/control/translate/listener/inbound-listener-filters.js';
import { inboundChainMatch, inboundChainOptions } from '../../../src/control/translate/listener/inbound-mtls.js';
import type { FilterChain } from '../../../src/control/translate/listener/listener-context.js';

const chainsFor = (mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE', protocol: 'http' | 'tcp' | 'auto', port?: number): FilterChain[] =>
  inboundChainOptions(mode, protocol).map((o) => ({ filter_chain_match: inboundChainMatch(o, port), filters: [] }));
const blackhole: FilterChain = { filter_chain_match: { destination_port: { value: 15006 } }, filters: [] };
const range = (p: number) => ({ destination_port_range: { start: p, end: p + 1 } });

test('PERMISSIVE passthrough: TLS inspector on by default, off on the blackhole and a DISABLE server-first port; HTTP only for passthrough', () => {
  const filters = inspectorsFor([blackhole, ...chainsFor('DISABLE', 'tcp', 3306), ...chainsFor('PERMISSIVE', 'http', 9080), ...chainsFor('PERMISSIVE', 'auto')]);
  assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector']);
  assert.deepEqual(filters[0]!.filter_disabled, { or_match: { rules: [range(3306), range(15006)] } }, 'mysql on 3306 (DISABLE) is not held for a ClientHello');
  assert.deepEqual(filters[1]!.filter_disabled, { or_match: { rules: [range(3306), range(9080), range(15006)] } }, 'declared ports are never sniffed for HTTP');
});

test('DISABLE passthrough with one STRICT port: TLS inspector only there (not_match), no HTTP inspector without plaintext HTTP sniffing needs', () => {
  const filters = inspectorsFor([blackhole, ...chainsFor('STRICT', 'tcp', 5432), ...chainsFor('DISABLE', 'tcp', 3306)]);
  assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.listener.tls_inspector']);
  assert.deepEqual(filters[0]!.filter_disabled, { not_match: range(5432) });
});

test('no chain needs an inspector: none at all', () => {
  assert.deepEqual(inspectorsFor([blackhole, ...chainsFor('DISABLE', 'tcp', 3306), ...chainsFor('DISABLE', 'http', 9080)]), []);
});
