// envoy.filters.http.ext_authz with grpc_service (envoy.service.auth.v3.Authorization/Check) through the real data plane
// against a grpc-js authorization server over an HTTP/2 cluster: the CheckRequest's attributes, OK with header edits,
// response headers and dynamic metadata (read by a later RBAC filter), denied with the server's status/headers/body or
// 403, and a gRPC error → status_on_error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { get, H2_UPSTREAM, startDataPlane, startUpstream, staticCluster, vhost, type Json } from './support.js';

const PROTO = fileURLToPath(new URL('../../../../proto/envoy/service/auth/v3/external_auth.proto', import.meta.url));
const EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const EXT_AUTHZ_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';

interface CheckRequest {
  attributes: {
    source: { address: { socket_address: { address: string; port_value: number } }; principal: string };
    destination: { address: { socket_address: { address: string; port_value: number } } };
    request: { http: { method: string; path: string; host: string; headers: Record<string, string>; protocol: string; id: string } };
    context_extensions: Record<string, string>;
  };
}

async function startGrpcAuthz(): Promise<{ port: number; checks: CheckRequest[]; close(): Promise<void> }> {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: { service: grpc.ServiceDefinition } } } } } };
  const checks: CheckRequest[] = [];
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (call: grpc.ServerUnaryCall<CheckRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      checks.push(call.request);
      const path = call.request.attributes.request.http.path;
      const user = call.request.attributes.request.http.headers['x-user'] ?? '';
      if (path.startsWith('/allow')) {
        callback(null, {
          status: { code: 0 },
          ok_response: {
            headers: [{ header: { key: 'x-authz-user', value: user } }, { header: { key: 'x-append', value: 'from-authz' }, append: { value: true } }],
            headers_to_remove: ['x-remove-me'],
            response_headers_to_add: [{ header: { key: 'x-client-ok', value: 'yes' } }],
          },
          dynamic_metadata: { fields: { user: { stringValue: user } } },
        });
      } else if (path.startsWith('/deny')) {
        callback(null, { status: { code: 7 }, denied_response: { status: { code: 401 }, headers: [{ header: { key: 'www-authenticate', value: 'Bearer realm="grpc"' } }], body: 'nope' } });
      } else if (path.startsWith('/bare')) {
        callback(null, { status: { code: 7 } });
      } else {
        callback({ code: grpc.status.UNAVAILABLE, details: 'backend down' });
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, checks, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

test('ext_authz gRPC service: CheckRequest attributes, OK edits and metadata, denied, errors', async (t) => {
  const authz = await startGrpcAuthz();
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port]), staticCluster('authz', [authz.port], H2_UPSTREAM)],
    httpFilters: [
      { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': EXT_AUTHZ_TYPE, grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' }, transport_api_version: 'V3' } },
      // Reads the dynamic metadata the authorization service returned.
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': RBAC_TYPE,
          rules: { policies: { 'alice-only': { permissions: [{ any: true }], principals: [{ metadata: { filter: 'envoy.filters.http.ext_authz', path: [{ key: 'user' }], value: { string_match: { exact: 'alice' } } } }] } } },
        },
      },
    ],
    virtualHosts: [
      vhost([
        {
          match: { prefix: '/' },
          route: { cluster: 'svc' },
          typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': EXT_AUTHZ_PER_ROUTE_TYPE, check_settings: { context_extensions: { 'virtual-host': 'shop' } } } },
        },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
    await authz.close();
  });

  const ok = await get(dp.address, '/allow/items?x=1', { agent: dp.agent, headers: { host: 'shop.local', 'x-user': 'alice', 'x-remove-me': '1', 'x-append': 'from-client' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-client-ok'], 'yes', 'response_headers_to_add reach the client');
  const check = authz.checks[0]!.attributes;
  assert.equal(check.request.http.method, 'GET');
  assert.equal(check.request.http.path, '/allow/items?x=1');
  assert.equal(check.request.http.host, 'shop.local');
  assert.equal(check.request.http.protocol, 'HTTP/1.1');
  assert.equal(check.request.http.headers['x-user'], 'alice', 'every request header goes into the CheckRequest');
  assert.equal(check.request.http.headers[':method'], 'GET');
  assert.ok(check.request.http.id, 'the request id');
  assert.equal(check.source.address.socket_address.address, '127.0.0.1');
  assert.ok(check.source.address.socket_address.port_value > 0);
  assert.equal(check.destination.address.socket_address.port_value, dp.port);
  assert.deepEqual(check.context_extensions, { 'virtual-host': 'shop' }, 'per-route context_extensions');
  const seen = up.seen[0]!;
  assert.equal(seen.headers['x-authz-user'], 'alice');
  assert.equal(seen.headers['x-append'], 'from-client, from-authz');
  assert.equal(seen.headers['x-remove-me'], undefined);

  const bob = await get(dp.address, '/allow/items', { agent: dp.agent, headers: { 'x-user': 'bob' } });
  assert.equal(bob.status, 403, 'RBAC after ext_authz read its dynamic metadata (user=bob)');
  assert.equal(bob.body, 'RBAC: access denied');

  const denied = await get(dp.address, '/deny', { agent: dp.agent });
  assert.equal(denied.status, 401);
  assert.equal(denied.body, 'nope');
  assert.equal(denied.headers['www-authenticate'], 'Bearer realm="grpc"');
  const bare = await get(dp.address, '/bare', { agent: dp.agent });
  assert.equal(bare.status, 403, 'a denial without denied_response is 403');
  const error = await get(dp.address, '/broken', { agent: dp.agent });
  assert.equal(error.status, 403, 'a gRPC error is an authorization error: status_on_error (403)');
  assert.equal(up.seen.length, 1);

  const stats = await dp.stats();
  assert.equal(stats.get('http.ingress.ext_authz.ok'), 2);
  assert.equal(stats.get('http.ingress.ext_authz.denied'), 2);
  assert.equal(stats.get('http.ingress.ext_authz.error'), 1);
});

test('ext_authz gRPC service: refused config', async () => {
  const start = (config: Json): Promise<unknown> =>
    startDataPlane({
      clusters: [staticCluster('svc', [1])],
      httpFilters: [{ name: 'envoy.filters.http.ext_authz', typed_config: { '@type': EXT_AUTHZ_TYPE, ...config } }],
      virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])],
    });
  await assert.rejects(start({ grpc_service: { envoy_grpc: {} } }), /grpc_service\.envoy_grpc\.cluster_name: required/);
  await assert.rejects(start({ grpc_service: { envoy_grpc: { cluster_name: 'a' } }, http_service: { server_uri: { uri: 'http://a', cluster: 'a', timeout: '1s' } } }), /only one of grpc_service, http_service may be set/, "the bootstrap parser refuses both members of the oneof");
});
