// Access logs end to end: a Telemetry resource (root namespace, envoyFileAccessLog provider, filter `response.code >= 400`)
// translated by the running control plane into a gateway's HCM access_log; a real `trellis proxy` serves 200, 404 and 503
// and only the 4xx/5xx lines reach the file. Editing the Telemetry to drop the filter logs everything after the push.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startControlPlane } from '../../src/control/server/main.js';
import { parseExtensionProviders } from '../../src/control/model/extension-providers.js';
import { buildProxyBootstrap } from '../../src/agent/bootstrap.js';
import { eventually, httpGet, startProxyProcess, startUpstream, writeTemp } from './proxy-support.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function config(upstreamPort: number, gatewayPort: number, filter: string | undefined): string {
  const docs = [
    {
      apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'echo', namespace: 'default' },
      spec: { hosts: ['echo.default.svc.cluster.local'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '127.0.0.1', ports: { http: upstreamPort } }] },
    },
    {
      apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' },
      spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: gatewayPort, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'echo', namespace: 'default' },
      spec: {
        hosts: ['*'], gateways: ['gw'],
        http: [
          { match: [{ uri: { prefix: '/fail' } }], fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }, route: [{ destination: { host: 'echo.default.svc.cluster.local', port: { number: 9080 } } }] },
          { match: [{ uri: { prefix: '/ok' } }], route: [{ destination: { host: 'echo.default.svc.cluster.local', port: { number: 9080 } } }] },
        ],
      },
    },
    {
      apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 'mesh-default', namespace: 'istio-system' },
      spec: { accessLogging: [{ providers: [{ name: 'file-log' }], ...(filter ? { filter: { expression: filter } } : {}) }] },
    },
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}

test('Telemetry accessLogging with filter.expression: only 4xx/5xx are logged by a real gateway proxy; an edit reaches it by push', async (t) => {
  const upstream = await startUpstream('echo');
  t.after(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'trellis-access-log-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configDir = join(dir, 'config');
  const logPath = join(dir, 'access.log');
  const gatewayPort = await freePort();
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'mesh.yaml'), config(upstream.port, gatewayPort, 'response.code >= 400'));

  const providers = parseExtensionProviders([{ name: 'file-log', envoyFileAccessLog: { path: logPath, logFormat: { text: '%RESPONSE_CODE% %REQ(:PATH)% %RESPONSE_FLAGS%' } } }]);
  assert.deepEqual(providers.problems, []);
  const control = await startControlPlane({
    configDir,
    xdsAddress: '127.0.0.1:0',
    monitoringAddress: '127.0.0.1:0',
    mesh: { extensionProviders: providers.providers },
    debounceAfterMs: 10,
    logger: { info: () => undefined, warn: () => undefined },
  });
  t.after(() => control.close());

  const bootstrap = buildProxyBootstrap({ type: 'router', name: 'ingressgateway', namespace: 'default', labels: { istio: 'ingressgateway' }, serviceAccount: 'ingressgateway', adminPort: 0, xdsPort: control.xdsPort });
  const proxy = await startProxyProcess(writeTemp('gateway.json', JSON.stringify(bootstrap)));
  t.after(() => proxy.kill());
  const gateway = `127.0.0.1:${gatewayPort}`;
  await eventually('the gateway serves /ok', async () => (await httpGet(gateway, '/ok/1').catch(() => undefined))?.status === 200);

  const sent: number[] = [];
  for (const path of ['/ok/2', '/nope', '/fail/1', '/ok/3', '/fail/2']) sent.push((await httpGet(gateway, path)).status);
  assert.deepEqual(sent, [200, 404, 503, 200, 503]);
  await eventually('three lines in the access log', () => existsSync(logPath) && readFileSync(logPath, 'utf8').split('\n').filter(Boolean).length >= 3);
  // A moment for any line that should not be there to arrive.
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(readFileSync(logPath, 'utf8').split('\n').filter(Boolean), ['404 /nope NR', '503 /fail/1 FI', '503 /fail/2 FI']);

  // Without the filter, the next push makes the gateway log every request.
  writeFileSync(join(configDir, 'mesh.yaml'), config(upstream.port, gatewayPort, undefined));
  await eventually('a 200 is logged after the Telemetry edit', async () => {
    await httpGet(gateway, '/ok/after');
    return readFileSync(logPath, 'utf8').includes('200 /ok/after -');
  });
  assert.equal(proxy.child.exitCode, null, `proxy exited; stderr:\n${proxy.stderr()}`);
});
