// Istio's TCP metadata exchange prefix: Istio's byte layout, reading it in pieces, a stream without one, bad prefixes;
// the network filter's and the cluster filter's config checks; the prefix built once per node; the Struct-config reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage } from '../../../src/xds/codec.js';
import type { google } from '../../../src/xds/generated/types.js';
import { encodeExchangePrefix, EXCHANGE_MAGIC, ExchangePrefixReader, MAX_EXCHANGE_BYTES, nodeExchangePrefix } from '../../../src/proxy/filters/metadata-exchange/tcp-exchange.js';
import { compileTcpExchange, DOWNSTREAM_EXCHANGE, tcpMetadataExchangeFilterFactory, type TcpExchange } from '../../../src/proxy/filters/metadata-exchange/tcp-filter.js';
import { compileMetadataExchangeConfig } from '../../../src/proxy/filters/metadata-exchange/filter.js';
import { compileIstioStatsConfig } from '../../../src/proxy/filters/istio-stats/filter.js';
import { istioTcpStatsFilterFactory, TCP_STATS, type TcpStatsContext } from '../../../src/proxy/filters/istio-stats/tcp-filter.js';
import { IstioTcpMetrics } from '../../../src/proxy/filters/istio-stats/tcp-metrics.js';
import { readStructConfig } from '../../../src/proxy/filters/struct-config.js';
import { structToJson, toStruct } from '../../../src/xds/struct.js';

const FIELDS = { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' } };

test("the prefix: magic 0x3D230467 and the length big-endian, then an Any of a Struct with Istio's two keys", () => {
  const prefix = encodeExchangePrefix(FIELDS, 'sidecar~1.2.3.4~productpage-v1.default~default.svc.cluster.local');
  assert.equal(prefix.readUInt32BE(0), EXCHANGE_MAGIC);
  assert.equal(prefix.readUInt32BE(4), prefix.length - 8);
  const any = decodeMessage<google.protobuf.Any>('google.protobuf.Any', prefix.subarray(8));
  assert.equal(any.type_url, 'type.googleapis.com/google.protobuf.Struct');
  const data = structToJson(decodeMessage<google.protobuf.Struct>('google.protobuf.Struct', any.value!));
  assert.deepEqual(data, { 'x-envoy-peer-metadata': FIELDS, 'x-envoy-peer-metadata-id': 'sidecar~1.2.3.4~productpage-v1.default~default.svc.cluster.local' });
});

test('read one byte at a time: the peer once the prefix is complete, and the bytes after it kept', () => {
  const bytes = Buffer.concat([encodeExchangePrefix(FIELDS, 'id-1'), Buffer.from('hello')]);
  const reader = new ExchangePrefixReader();
  let result;
  for (let i = 0; i < bytes.length - 5 && !result; i++) result = reader.push(bytes.subarray(i, i + 1));
  assert.equal(result?.kind, 'peer');
  assert.deepEqual(result?.kind === 'peer' ? result.peer : undefined, { id: 'id-1', fields: FIELDS });
  assert.equal(result?.kind === 'peer' ? result.rest.length : -1, 0);
  const whole = new ExchangePrefixReader().push(bytes);
  assert.equal(whole?.kind === 'peer' ? whole.rest.toString() : '', 'hello');
});

test('a stream without the magic is not an exchange: every byte is kept (a peer without the filter)', () => {
  const r = new ExchangePrefixReader().push(Buffer.from('GET / HTTP/1.1\r\n'));
  assert.deepEqual(r, { kind: 'absent', rest: Buffer.from('GET / HTTP/1.1\r\n') });
  // Two bytes that already differ from the magic decide it; two that match it wait.
  assert.equal(new ExchangePrefixReader().push(Buffer.from([0x00, 0x01]))?.kind, 'absent');
  assert.equal(new ExchangePrefixReader().push(Buffer.from([0x3d, 0x23])), undefined);
});

test('bad prefixes: an oversize length closes; an Any of another type or undecodable bytes leave the peer unknown, stripped', () => {
  const header = (size: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(EXCHANGE_MAGIC, 0);
    b.writeUInt32BE(size, 4);
    return b;
  };
  const big = new ExchangePrefixReader().push(header(MAX_EXCHANGE_BYTES + 1));
  assert.equal(big?.kind, 'invalid');
  const garbage = new ExchangePrefixReader().push(Buffer.concat([header(3), Buffer.from([0xff, 0xff, 0xff]), Buffer.from('x')]));
  assert.equal(garbage?.kind, 'peer');
  assert.equal(garbage?.kind === 'peer' ? garbage.peer : 'x', undefined);
  assert.equal(garbage?.kind === 'peer' ? garbage.rest.toString() : '', 'x');
  assert.match(garbage?.kind === 'peer' ? garbage.problem ?? '' : '', /does not decode/);
});

test('the network filter config: protocol istio-peer-exchange only; discovery and unknown fields refused', () => {
  assert.equal(compileTcpExchange({ protocol: 'istio-peer-exchange' }, { id: 'n' }).protocol, 'istio-peer-exchange');
  assert.throws(() => compileTcpExchange({ protocol: 'h2' }, undefined), /protocol: expected "istio-peer-exchange", got "h2"/);
  assert.throws(() => compileTcpExchange({}, undefined), /protocol: expected/);
  assert.throws(() => compileTcpExchange({ protocol: 'istio-peer-exchange', enable_discovery: true }, undefined), /enable_discovery: workload discovery is not supported/);
  assert.throws(() => compileTcpExchange({ protocol: 'istio-peer-exchange', bogus: 1 }, undefined), /bogus: unknown field/);
});

test("cluster filters: istio.metadata_exchange (Struct, protocol istio-peer-exchange) turns the upstream exchange on; others are refused", async () => {
  const { compileCluster } = await import('../../../src/proxy/upstream/cluster.js');
  const { packAny } = await import('../../../src/xds/codec.js');
  const struct = (value: Record<string, google.protobuf.Value>) => packAny('google.protobuf.Struct', { fields: value });
  const base = { name: 'outbound|27017||mongodb', type: 'STATIC' as const, load_assignment: { cluster_name: 'c', endpoints: [] } };
  assert.equal(compileCluster({ ...base, filters: [{ name: 'istio.metadata_exchange', typed_config: struct({ protocol: { string_value: 'istio-peer-exchange' } }) }] }).upstreamMetadataExchange, true);
  assert.equal(compileCluster(base).upstreamMetadataExchange, false);
  assert.throws(() => compileCluster({ ...base, filters: [{ name: 'envoy.filters.network.upstream.something' }] }), /filters\[0\]: unsupported upstream network filter envoy\.filters\.network\.upstream\.something/);
  assert.throws(() => compileCluster({ ...base, filters: [{ name: 'istio.metadata_exchange', typed_config: struct({ protocol: { string_value: 'h2' } }) }] }), /filters\[0\]\.typed_config\.protocol: expected "istio-peer-exchange", got "h2"/);
  assert.throws(() => compileCluster({ ...base, filters: [{ name: 'istio.metadata_exchange', typed_config: { type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', value: new Uint8Array() } }] }), /no codec for type\.googleapis\.com\/envoy\.tcp\.metadataexchange/);
});

test('one prefix per node: the downstream filter and tcp_proxy send the same bytes, encoded once', () => {
  const node = { id: 'sidecar~1.2.3.4~productpage-v1.default~default.svc.cluster.local', metadata: toStruct({ ...FIELDS, TRELLIS_PRIVATE: 'x' }) };
  const prefix = nodeExchangePrefix(node);
  assert.equal(compileTcpExchange({ protocol: 'istio-peer-exchange' }, node).prefix, prefix, 'the filter reuses the node prefix');
  assert.equal(nodeExchangePrefix(node), prefix);
  assert.deepEqual(prefix, encodeExchangePrefix(FIELDS, node.id), 'only the exchanged keys are sent');
  assert.deepEqual(nodeExchangePrefix(undefined), encodeExchangePrefix({}, ''));
});

test('the TCP filters publish their config in the connection filter state; only metadata exchange has counters', () => {
  const connection = { remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, requestedServerName: '', filterState: new Map<string, unknown>() };
  const node = { id: 'n', metadata: toStruct(FIELDS) };
  const mx = tcpMetadataExchangeFilterFactory.create(toStruct({ protocol: 'istio-peer-exchange' }), 'f', { node });
  const stats = istioTcpStatsFilterFactory.create(toStruct({ direction: 'INBOUND' }), 'f', { node, tcpMetrics: new IstioTcpMetrics() });
  assert.equal(mx.onNewConnection(connection), 'continue');
  assert.equal(stats.onNewConnection(connection), 'continue');
  const exchange = connection.filterState.get(DOWNSTREAM_EXCHANGE) as TcpExchange;
  assert.equal(exchange.protocol, 'istio-peer-exchange');
  assert.equal((connection.filterState.get(TCP_STATS) as TcpStatsContext).reporter, 'destination');
  assert.equal((connection.filterState.get(TCP_STATS) as TcpStatsContext).self.workload, 'productpage-v1');
  exchange.stats['alpn_protocol_found']!++;
  assert.equal(mx.stats['metadata_exchange.alpn_protocol_found'], 1, 'counters tcp_proxy moves show under Envoy names');
  assert.deepEqual(Object.keys(mx.stats).sort(), ['metadata_exchange.alpn_protocol_found', 'metadata_exchange.alpn_protocol_not_found', 'metadata_exchange.header_not_found', 'metadata_exchange.initial_header_not_found', 'metadata_exchange.metadata_added']);
  assert.deepEqual(stats.stats, {});
});

test('Struct and plain JSON configs read alike; every unknown field is reported, for each Struct-config filter', () => {
  const problems: string[] = [];
  assert.deepEqual(readStructConfig(toStruct({ a: 1, b: { c: ['x', true] } }), ['a'], problems), { a: 1, b: { c: ['x', true] } });
  assert.deepEqual(problems, ['b: unknown field (expected one of a)']);
  assert.deepEqual(readStructConfig({ a: 1 }, ['a'], []), { a: 1 });
  assert.deepEqual(readStructConfig(undefined, ['a'], []), {});
  assert.throws(() => compileTcpExchange(toStruct({ protocol: 'istio-peer-exchange', x: 1, y: 2 }), undefined), (err: Error) => /x: unknown field/.test(err.message) && /y: unknown field/.test(err.message));
  assert.throws(() => compileIstioStatsConfig(toStruct({ reporter: 'SERVER_GATEWAY', bogus: 1 }), ''), /bogus: unknown field \(expected one of reporter, direction, disable_host_header_fallback\)/);
  assert.throws(() => compileMetadataExchangeConfig(toStruct({ bogus: [] })), /bogus: unknown field/);
});
