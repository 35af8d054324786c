// Filter chain selection in Envoy's order with its tie-breaks: Istio's PERMISSIVE inbound chains, SNI wildcards, ALPN order, no backtracking.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileChainMatch, needsInspection, selectFilterChain, type ConnectionMetadata } from '../../../src/proxy/listeners/filter-chain-match.js';
import type { envoy } from '../../../src/xds/generated/types.js';

type Match = envoy.config.listener.v3.FilterChainMatch;

const conn = (over: Partial<ConnectionMetadata> = {}): ConnectionMetadata => ({
  destinationPort: 15006,
  destinationAddress: '10.0.0.5',
  sourceAddress: '10.0.0.9',
  sourcePort: 40000,
  transportProtocol: 'raw_buffer',
  applicationProtocols: [],
  ...over,
});
const pick = (matches: readonly (Match | undefined)[], c: ConnectionMetadata): number => selectFilterChain(matches.map((m, i) => compileChainMatch(m, `filter_chains[${i}]`)), c);

/** Istio's PERMISSIVE inbound chains for one port (mTLS by ALPN, plaintext HTTP, TLS passthrough). */
const ISTIO_ALPN = ['istio-peer-exchange', 'istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const PERMISSIVE: Match[] = [
  { destination_port: { value: 9080 }, transport_protocol: 'tls', application_protocols: ISTIO_ALPN },
  { destination_port: { value: 9080 }, transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'http/1.0', 'h2c'] },
  { destination_port: { value: 9080 }, transport_protocol: 'raw_buffer' },
  { destination_port: { value: 9080 }, transport_protocol: 'tls' },
];

test('PERMISSIVE: a sidecar\'s mTLS (Istio ALPN), plaintext HTTP, plaintext TCP and app TLS each get their chain', () => {
  assert.equal(pick(PERMISSIVE, conn({ destinationPort: 9080, transportProtocol: 'tls', applicationProtocols: ['istio-http/1.1', 'istio'] })), 0);
  assert.equal(pick(PERMISSIVE, conn({ destinationPort: 9080, transportProtocol: 'raw_buffer', applicationProtocols: ['http/1.1'] })), 1);
  assert.equal(pick(PERMISSIVE, conn({ destinationPort: 9080, transportProtocol: 'raw_buffer' })), 2);
  assert.equal(pick(PERMISSIVE, conn({ destinationPort: 9080, transportProtocol: 'tls', applicationProtocols: ['h2', 'http/1.1'] })), 3);
  assert.equal(pick(PERMISSIVE, conn({ destinationPort: 9081, transportProtocol: 'tls' })), -1, 'another port: no chain (default_filter_chain or close)');
});

test('STRICT: only the mTLS chain; plaintext finds none', () => {
  const strict = [PERMISSIVE[0]];
  assert.equal(pick(strict, conn({ destinationPort: 9080, transportProtocol: 'tls', applicationProtocols: ['istio'] })), 0);
  assert.equal(pick(strict, conn({ destinationPort: 9080, transportProtocol: 'raw_buffer', applicationProtocols: ['http/1.1'] })), -1);
});

test('application protocols are looked up in the connection\'s order, not the chains\' order', () => {
  const chains: Match[] = [{ application_protocols: ['http/1.1'] }, { application_protocols: ['h2'] }, {}];
  assert.equal(pick(chains, conn({ transportProtocol: 'tls', applicationProtocols: ['h2', 'http/1.1'] })), 1);
  assert.equal(pick(chains, conn({ transportProtocol: 'tls', applicationProtocols: ['http/1.1', 'h2'] })), 0);
  assert.equal(pick(chains, conn({ transportProtocol: 'tls', applicationProtocols: ['acme'] })), 2);
});

test('server names: exact, then the longest wildcard suffix (*.example.com before *.com), then chains without server_names', () => {
  const chains: Match[] = [{ server_names: ['*.com'] }, { server_names: ['*.example.com'] }, { server_names: ['www.example.com'] }, {}];
  assert.equal(pick(chains, conn({ serverName: 'www.example.com' })), 2);
  assert.equal(pick(chains, conn({ serverName: 'api.example.com' })), 1);
  assert.equal(pick(chains, conn({ serverName: 'a.b.example.com' })), 1);
  assert.equal(pick(chains, conn({ serverName: 'example.org.com' })), 0);
  assert.equal(pick(chains, conn({ serverName: 'example.org' })), 3);
  assert.equal(pick(chains, conn({})), 3, 'no SNI: only chains without server_names');
  assert.equal(pick([{ server_names: ['*.example.com'] }], conn({ serverName: 'example.com' })), -1, '*.example.com does not cover example.com');
});

test('no backtracking: the most specific destination port wins even if a later criterion then rules it out', () => {
  const chains: Match[] = [{ destination_port: { value: 9080 }, server_names: ['a.example.com'] }, { server_names: ['b.example.com'] }];
  assert.equal(pick(chains, conn({ destinationPort: 9080, serverName: 'b.example.com' })), -1);
  assert.equal(pick(chains, conn({ destinationPort: 9090, serverName: 'b.example.com' })), 1);
});

test('the earlier criterion decides: destination IP before transport protocol', () => {
  const chains: Match[] = [{ prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 24 } }] }, { transport_protocol: 'tls' }];
  assert.equal(pick(chains, conn({ transportProtocol: 'tls' })), 0);
  const wider: Match[] = [{ prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 8 } }] }, { prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 24 } }] }];
  assert.equal(pick(wider, conn()), 1, 'longest prefix');
});

test('source type: SAME_IP_OR_LOOPBACK / EXTERNAL before ANY; then source IP and port', () => {
  const chains: Match[] = [{}, { source_type: 'SAME_IP_OR_LOOPBACK' as never }, { source_type: 'EXTERNAL' as never }];
  assert.equal(pick(chains, conn({ sourceAddress: '127.0.0.1' })), 1);
  assert.equal(pick(chains, conn({ sourceAddress: '10.0.0.5' })), 1, 'same IP as the destination');
  assert.equal(pick(chains, conn({ sourceAddress: '192.0.2.1' })), 2);
  const ports: Match[] = [{}, { source_ports: [40000] }];
  assert.equal(pick(ports, conn()), 1);
  assert.equal(pick(ports, conn({ sourcePort: 40001 })), 0);
});

test('transport protocol or ALPN in any chain turns the TLS inspector on; ALPN also the HTTP inspector', () => {
  const c = (m: Match): ReturnType<typeof compileChainMatch> => compileChainMatch(m, 'm');
  assert.deepEqual(needsInspection([c({ transport_protocol: 'tls' })]), { tls: true, http: false });
  assert.deepEqual(needsInspection([c({ application_protocols: ['http/1.1'] })]), { tls: true, http: true });
  assert.deepEqual(needsInspection([c({ destination_port: { value: 1 } })]), { tls: false, http: false });
});

test('bad matches are refused with their field path', () => {
  assert.throws(() => compileChainMatch({ server_names: ['www.*.com'] }, 'filter_chains[0].filter_chain_match'), /filter_chains\[0\]\.filter_chain_match\.server_names\[0\]: only a leading "\*\." wildcard/);
  assert.throws(() => compileChainMatch({ prefix_ranges: [{ address_prefix: 'nope', prefix_len: { value: 8 } }] }, 'm'), /m\.prefix_ranges\[0\]: invalid CIDR nope\/8/);
});
