// The control plane from Istio YAML to two real xDS clients at once: a proxyless @grpc/grpc-js-xds client
// (node metadata GENERATOR=grpc) whose RPCs follow the VirtualService, and a Trellis xDS client (a sidecar)
// that receives the same route change in RDS when the VirtualService file is edited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane } from '../../src/control/server/main.js';
import { WILDCARD, XdsClient, routeConfigurationResourceType, type RouteConfiguration } from '../../src/xds/client/index.js';
import { LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { startProxylessClient, type ProxylessClient } from './proxyless-client.js';

const HOST = 'echo.default.svc.cluster.local';
const WHOAMI = '/trellis.test.Echo/Whoami';
const raw = (b: Buffer): Buffer => b;

async function startBackend(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(
    { Whoami: { path: WHOAMI, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    { Whoami: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)) },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, server };
}

function meshYaml(v1Port: number, v2Port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: default }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9090, name: grpc, protocol: GRPC }]
  workloadSelector: { labels: { app: echo } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v1, namespace: default }
spec: { address: 127.0.0.1, ports: { grpc: ${v1Port} }, labels: { app: echo, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v2, namespace: default }
spec: { address: 127.0.0.1, ports: { grpc: ${v2Port} }, labels: { app: echo, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec:
  host: ${HOST}
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;
}

function routeYaml(subset: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec:
  hosts: [${HOST}]
  http:
  - route: [{ destination: { host: ${HOST}, subset: ${subset} } }]
`;
}

function whoami(client: ProxylessClient): Promise<string> {
  return client.whoami();
}

async function eventually(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if (await condition()) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function echoRouteCluster(route: RouteConfiguration | undefined): string | undefined {
  const vhost = route?.virtual_hosts?.find((vh) => vh.domains?.includes(HOST));
  return vhost?.routes?.[0]?.route?.cluster;
}

test('a VirtualService edit reaches a proxyless grpc-js-xds client (its RPCs move) and a Trellis sidecar client (its RDS changes)', async (t) => {
  const v1 = await startBackend('echo-v1');
  const v2 = await startBackend('echo-v2');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-grpc-e2e-'));
  writeFileSync(join(dir, 'mesh.yaml'), meshYaml(v1.port, v2.port));
  writeFileSync(join(dir, 'route.yaml'), routeYaml('v1'));
  const plane = await startControlPlane({ configDir: dir, xdsAddress: '127.0.0.1:0', monitoringAddress: '127.0.0.1:0', debounceAfterMs: 20, logger: { info: () => {}, warn: () => {} } });
  // One teardown, in order: the clients go before the control plane.
  const clientsToClose: Array<{ close(): void | Promise<void> }> = [];
  t.after(async () => {
    for (const c of clientsToClose.reverse()) await c.close();
    await plane.close();
    v1.server.forceShutdown();
    v2.server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  // The sidecar: a Trellis xDS client subscribed like Envoy (LDS wildcard, RDS for port 9090's route).
  const sidecar = new XdsClient({
    server: `127.0.0.1:${plane.xdsPort}`,
    node: { id: 'sidecar~127.0.0.1~client-v1.default~default.svc.cluster.local', metadata: { fields: { NAMESPACE: { string_value: 'default' } } } },
  });
  clientsToClose.push(sidecar);
  sidecar.subscribe(LISTENER, WILDCARD);
  sidecar.subscribe(ROUTE_CONFIGURATION, ['9090']);

  // The proxyless gRPC client (its own process: see proxyless-client-main.ts), with Istio's GENERATOR=grpc node metadata.
  const client = startProxylessClient({
    bootstrap: {
      xds_servers: [{ server_uri: `127.0.0.1:${plane.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'sidecar~127.0.0.1~grpc-client.default~default.svc.cluster.local', locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } },
    },
    target: `xds:///${HOST}:9090`,
    methodPath: WHOAMI,
  });
  clientsToClose.push(client);

  await eventually('the first RPC answers', async () => (await whoami(client)) === 'echo-v1');
  await eventually('the sidecar has the v1 route', () => echoRouteCluster(sidecar.resources(routeConfigurationResourceType).get('9090')) === `outbound|9090|v1|${HOST}`);
  const grpcStream = plane.discovery.ads.streams().find((s) => s.node.id.startsWith('sidecar~127.0.0.1~grpc-client'));
  assert.ok(grpcStream, 'the grpc client is connected');
  assert.deepEqual(grpcStream.types[LISTENER]?.subscribed, { wildcard: false, names: [`${HOST}:9090`] });
  for (const type of Object.values(grpcStream.types)) assert.equal(type.nackCount, 0, `grpc-js-xds accepted ${type.subscribed.names.join(',')}`);

  writeFileSync(join(dir, 'route.yaml'), routeYaml('v2'));
  await eventually('RPCs move to v2', async () => (await whoami(client)) === 'echo-v2');
  for (let i = 0; i < 10; i++) assert.equal(await whoami(client), 'echo-v2');
  await eventually('the sidecar has the v2 route', () => echoRouteCluster(sidecar.resources(routeConfigurationResourceType).get('9090')) === `outbound|9090|v2|${HOST}`);
});
