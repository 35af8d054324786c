// Transparent capture with the control plane in the loop (root, network namespaces): `trellis control` in the pod's
// namespace generates Istio's captured-mode sidecar listeners (virtualOutbound, 0.0.0.0_8080, virtualInbound) for a
// `trellis proxy` started from the agent's bootstrap; a plain curl to a ServiceEntry host is routed by VirtualService.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab } from '../support/netns.js';
import { SERVER, startControlledSidecar, statOf, unavailable, waitFor } from './capture-support.js';

/** Istio config for the generated-config test: one HTTP service outside the app pod, a VirtualService on it, no mTLS. */
function meshConfig(upstreamIp: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: upstream, namespace: default }
spec:
  hosts: [upstream.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: ${upstreamIp} }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: upstream, namespace: default }
spec:
  hosts: [upstream.default.svc.cluster.local]
  http:
  - match: [{ uri: { prefix: /v2 } }]
    route: [{ destination: { host: upstream.default.svc.cluster.local } }]
    headers: { response: { add: { x-virtual-service: v2-route } } }
  - route: [{ destination: { host: upstream.default.svc.cluster.local } }]
    headers: { response: { add: { x-virtual-service: default-route } } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: DISABLE } }
`;
}

test('with the control plane in the loop: generated captured-mode listeners route an unaware client by VirtualService', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  const lab = new NetnsLab('10.251.0');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-capture-cp-'));
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(lab.remainingNamespaces(), []);
  });
  const app = lab.addPod('cpapp');
  const upstream = lab.addPod('cpup');
  const upstreamServer = lab.start(upstream, process.execPath, ['-e', SERVER, 'upstream', '8080']);
  const { control, proxy } = await startControlledSidecar(lab, app, dir, meshConfig(upstream.ip));
  await waitFor('the proxy to receive its listeners', () => {
    if (!/listening/.test(upstreamServer.output())) return false;
    const r = lab.run(app, 'curl', ['-s', '--max-time', '2', 'http://127.0.0.1:15000/listeners'], 5_000);
    return r.status === 0 && r.stdout.includes('virtualOutbound') && r.stdout.includes('0.0.0.0_8080');
  }, 40_000).catch((err: Error) => {
    throw new Error(`${err.message}\nproxy:\n${proxy.output()}\ncontrol:\n${control.output()}`);
  });

  // A plain client resolving the service name to the upstream pod: nothing tells it about the proxy.
  const resolveTo = ['--resolve', `upstream.default.svc.cluster.local:8080:${upstream.ip}`];
  const v2 = lab.run(app, 'curl', ['-sS', '-i', '--max-time', '10', ...resolveTo, 'http://upstream.default.svc.cluster.local:8080/v2/page']);
  assert.equal(v2.status, 0, v2.stderr + proxy.output());
  assert.match(v2.stdout, /^x-virtual-service: v2-route\r?$/m);
  assert.match(v2.stdout, new RegExp(`upstream http remote=${app.ip.replace(/\./g, '\\.')} local=${upstream.ip.replace(/\./g, '\\.')}:8080`));
  const other = lab.run(app, 'curl', ['-sS', '-i', '--max-time', '10', ...resolveTo, 'http://upstream.default.svc.cluster.local:8080/']);
  assert.match(other.stdout, /^x-virtual-service: default-route\r?$/m, other.stderr);
  const stats = lab.exec(app, 'curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:15000/stats']);
  assert.equal(statOf(stats, 'listener.0.0.0.0_8080.downstream_cx_total'), 2, stats);
});
