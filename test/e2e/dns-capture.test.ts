// DNS capture for real (root, network namespaces): `trellis iptables --redirect-dns` sends the pod's port-53 queries to the
// agent's DNS proxy (`trellis proxy --dns-port 15053 --dns-auto-allocate`), which answers from the control plane's name
// table. A plain client resolves a short service name and an address-less ServiceEntry host (auto-allocated VIP) through
// glibc, and curl reaches the ServiceEntry's endpoint through that VIP, captured like any other outbound connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab } from '../support/netns.js';
import { SERVER, startControlledSidecar, statOf, unavailable, waitFor } from './capture-support.js';

function meshConfig(upstreamIp: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.7]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: ${upstreamIp}, ports: { http: 8080 } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-api, namespace: default }
spec:
  hosts: [api.external.example]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: ${upstreamIp} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-tcp, namespace: default }
spec:
  hosts: [tcp.external.example]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 7000, name: tcp, protocol: TCP }]
  endpoints: [{ address: ${upstreamIp} }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: DISABLE } }
`;
}

test('DNS capture: the pod resolves mesh names through the agent DNS proxy and reaches an auto-allocated VIP through capture', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  const lab = new NetnsLab('10.252.0');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-dns-capture-'));
  const app = lab.addPod('dnsapp');
  const upstream = lab.addPod('dnsup');
  // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: the pod's own resolver config.
  const netnsEtc = join('/etc/netns', app.ns);
  t.after(async () => {
    await lab.close();
    rmSync(netnsEtc, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(lab.remainingNamespaces(), []);
  });
  mkdirSync(netnsEtc, { recursive: true });
  writeFileSync(join(netnsEtc, 'resolv.conf'), 'nameserver 10.252.0.53\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:1\n');
  // A default route, as a pod has: without one a VIP outside the pod subnet is unreachable before iptables sees it.
  lab.exec(app, 'ip', ['route', 'add', 'default', 'dev', 'eth0']);
  const upstreamServer = lab.start(upstream, process.execPath, ['-e', SERVER, 'upstream', '8080', '7000']);
  const { control, proxy } = await startControlledSidecar(lab, app, dir, meshConfig(upstream.ip), { iptablesArgs: ['--redirect-dns'], proxyArgs: ['--dns-port', '15053', '--dns-auto-allocate'] });
  const rules = lab.exec(app, 'iptables-save', ['-t', 'nat']);
  assert.match(rules, /--dport 53 .*--to-ports 15053/, rules);
  await waitFor('the proxy and its DNS name table', () => {
    if (!/listening/.test(upstreamServer.output()) || !/DNS name table: 3 host/.test(proxy.output())) return false;
    const r = lab.run(app, 'curl', ['-s', '--max-time', '2', 'http://127.0.0.1:15000/listeners'], 5_000);
    return r.status === 0 && r.stdout.includes('0.0.0.0_8080') && r.stdout.includes('0.0.0.0_9080');
  }).catch((err: Error) => {
    throw new Error(`${err.message}\nproxy:\n${proxy.output()}\ncontrol:\n${control.output()}`);
  });

  // glibc's resolver, nothing else: the search list expands `reviews`, port 53 is redirected to the DNS proxy.
  const reviews = lab.run(app, 'getent', ['ahostsv4', 'reviews']);
  assert.equal(reviews.status, 0, reviews.stderr + proxy.output());
  assert.match(reviews.stdout, /^10\.96\.0\.7\s/m);
  const api = lab.run(app, 'getent', ['ahostsv4', 'api.external.example']);
  assert.equal(api.status, 0, api.stderr + proxy.output());
  const vip = /^(240\.240\.\d+\.\d+)\s/m.exec(api.stdout)?.[1];
  assert.ok(vip, `an auto-allocated VIP for api.external.example: ${api.stdout}`);
  assert.equal(lab.run(app, 'getent', ['ahostsv4', 'nope.default.svc.cluster.local']).status, 2, 'a mesh name that does not exist: NXDOMAIN');

  // The app connects to the VIP; iptables captures it, virtualOutbound hands it to 0.0.0.0_8080, the route picks the host.
  const viaVip = lab.run(app, 'curl', ['-sS', '--max-time', '10', 'http://api.external.example:8080/hello']);
  assert.equal(viaVip.status, 0, viaVip.stderr + proxy.output());
  assert.match(viaVip.stdout, new RegExp(`^upstream http remote=${app.ip.replace(/\./g, '\\.')} local=${upstream.ip.replace(/\./g, '\\.')}:8080$`));
  const viaShortName = lab.run(app, 'curl', ['-sS', '--max-time', '10', 'http://reviews:9080/']);
  assert.equal(viaShortName.status, 0, viaShortName.stderr + proxy.output());
  assert.match(viaShortName.stdout, /^upstream http /);

  // Opaque TCP to an address-less ServiceEntry: its auto-allocated VIP has a listener of its own (the proxy's node says
  // DNS_AUTO_ALLOCATE), which the connection is handed to by its original destination.
  const tcpVip = /^(240\.240\.\d+\.\d+)\s/m.exec(lab.exec(app, 'getent', ['ahostsv4', 'tcp.external.example']))?.[1];
  assert.ok(tcpVip);
  const tcp = lab.run(app, 'curl', ['-sS', '--max-time', '10', 'telnet://tcp.external.example:7000']);
  assert.match(tcp.stdout, /^upstream tcp /m, tcp.stderr + proxy.output());
  const stats = lab.exec(app, 'curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:15000/stats']);
  assert.equal(statOf(stats, `listener.${tcpVip}_7000.downstream_cx_total`), 1, stats.split('\n').filter((l) => l.startsWith('listener.')).join('\n'));
});
