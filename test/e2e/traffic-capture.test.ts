// Transparent capture for real (root, network namespaces): `trellis iptables` in a pod namespace, `trellis proxy` as the
// proxy user with Istio's virtualOutbound/virtualInbound, a plain curl that knows nothing of the proxy. Outbound HTTP is
// handed to the 0.0.0.0_8080 listener, opaque TCP goes out through PassthroughCluster to its original destination,
// inbound to the pod IP goes through 15006 (the app sees 127.0.0.6), the proxy user's own traffic is not captured, and
// `trellis iptables clean` plus the lab's close() leave no chain and no namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NetnsLab, netnsUnavailable, type NetnsPod } from '../support/netns.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const PROXY_UID = '1337';
const unavailable = netnsUnavailable(['ip', 'iptables-restore', 'iptables-save', 'curl', 'setpriv']);

/** Istio's sidecar shape, static: what src/control/translate/listener emits for one HTTP port (8080), nothing else. */
function bootstrap(upstreamIp: string): string {
  const tcpProxy = (cluster: string): string => `
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: ${cluster}
          cluster: ${cluster}`;
  return `
node: { id: sidecar~10.250.0.2~app.default~default.svc.cluster.local, cluster: app.default }
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 15000 } }
static_resources:
  listeners:
  - name: virtualOutbound
    address: { socket_address: { address: 0.0.0.0, port_value: 15001 } }
    use_original_dst: true
    traffic_direction: OUTBOUND
    filter_chains:
    - name: virtualOutbound-blackhole
      filter_chain_match: { destination_port: 15001 }
      filters:${tcpProxy('BlackHoleCluster')}
    - name: virtualOutbound-catchall-tcp
      filters:${tcpProxy('PassthroughCluster')}
  - name: 0.0.0.0_8080
    address: { socket_address: { address: 0.0.0.0, port_value: 8080 } }
    bind_to_port: false
    traffic_direction: OUTBOUND
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: outbound_0.0.0.0_8080
          route_config:
            name: "8080"
            virtual_hosts:
            - name: upstream.default.svc.cluster.local:8080
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: "outbound|8080||upstream.default.svc.cluster.local" }
                response_headers_to_add:
                - header: { key: x-trellis-listener, value: 0.0.0.0_8080 }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: virtualInbound
    address: { socket_address: { address: 0.0.0.0, port_value: 15006 } }
    traffic_direction: INBOUND
    listener_filters:
    - name: envoy.filters.listener.original_dst
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst
    filter_chains:
    - name: virtualInbound-blackhole
      filter_chain_match: { destination_port: 15006 }
      filters:${tcpProxy('BlackHoleCluster')}
    - name: virtualInbound
      filters:${tcpProxy('InboundPassthroughClusterIpv4')}
  clusters:
  - name: BlackHoleCluster
    type: STATIC
    connect_timeout: 1s
  - name: PassthroughCluster
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
  - name: InboundPassthroughClusterIpv4
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
    upstream_bind_config:
      source_address: { address: 127.0.0.6, port_value: 0 }
  - name: "outbound|8080||upstream.default.svc.cluster.local"
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: "outbound|8080||upstream.default.svc.cluster.local"
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: ${upstreamIp}, port_value: 8080 } } }
`;
}

/** A plain server: HTTP on `httpPort` and a line-per-connection TCP server on `tcpPort`, both saying what they saw. */
const SERVER = `
const http = require('node:http'); const net = require('node:net');
const [name, httpPort, tcpPort] = process.argv.slice(1);
http.createServer((req, res) => res.end(name + ' http remote=' + req.socket.remoteAddress + ' local=' + req.socket.localAddress + ':' + req.socket.localPort)).listen(Number(httpPort), '0.0.0.0');
if (tcpPort) net.createServer((s) => s.end(name + ' tcp remote=' + s.remoteAddress + ' local=' + s.localAddress + ':' + s.localPort + '\\n')).listen(Number(tcpPort), '0.0.0.0');
setTimeout(() => console.log('listening'), 50);
`;

function statOf(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[.|]/g, (c) => `\\${c}`)}: (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The proxy user can read this checkout (CI may clone under a 0700 home): run as uid 1337; else keep uid 0 with gid 1337, which Istio's rules exclude just the same. */
function proxyIdentity(): { args: string[]; label: string } {
  const readable = spawnSync('setpriv', ['--reuid', PROXY_UID, '--regid', PROXY_UID, '--clear-groups', process.execPath, '-e', `require('node:fs').accessSync(${JSON.stringify(CLI)}); require('node:fs').readdirSync(${JSON.stringify(resolve(dirname(CLI), '../../../node_modules'))})`]);
  return readable.status === 0
    ? { args: ['--reuid', PROXY_UID, '--regid', PROXY_UID, '--clear-groups'], label: 'uid 1337, gid 1337' }
    : { args: ['--regid', PROXY_UID, '--clear-groups'], label: 'uid 0, gid 1337 (this checkout is not readable by uid 1337)' };
}

test('captured outbound and inbound TCP in a pod namespace go through the proxy with their original destination', { skip: unavailable ?? false, timeout: 60_000 }, async (t) => {
  const lab = new NetnsLab();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-capture-'));
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(lab.remainingNamespaces(), [], 'every namespace of the lab is gone');
  });
  const app: NetnsPod = lab.addPod('app');
  const upstream = lab.addPod('up');
  chmodSync(dir, 0o755);
  const bootstrapPath = join(dir, 'bootstrap.yaml');
  writeFileSync(bootstrapPath, bootstrap(upstream.ip), { mode: 0o644 });

  const upstreamServer = lab.start(upstream, process.execPath, ['-e', SERVER, 'upstream', '8080', '7000']);
  const appServer = lab.start(app, process.execPath, ['-e', SERVER, 'app', '9090']);
  // The init step: Istio's rules in the pod's namespace, as the injector's defaults write them.
  lab.exec(app, process.execPath, [CLI, 'iptables']);
  const rules = lab.exec(app, 'iptables-save', ['-t', 'nat']);
  for (const chain of ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT']) assert.match(rules, new RegExp(`^:${chain} `, 'm'));

  const identity = proxyIdentity();
  t.diagnostic(`proxy runs as ${identity.label}`);
  const proxy = lab.start(app, 'setpriv', [...identity.args, process.execPath, CLI, 'proxy', '-c', bootstrapPath, '--log-level', 'warning']);
  await waitFor('the proxy, the app and the upstream', () => /admin address/.test(proxy.output()) && /listening/.test(upstreamServer.output()) && /listening/.test(appServer.output()));
  const stats = (): string => lab.exec(app, 'curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:15000/stats']);

  // Outbound HTTP from a plain client: redirected to 15001, handed to 0.0.0.0_8080 by the original destination.
  const http = lab.run(app, 'curl', ['-sS', '-i', '--max-time', '10', `http://${upstream.ip}:8080/productpage`]);
  assert.equal(http.status, 0, http.stderr + proxy.output());
  assert.match(http.stdout, /^x-trellis-listener: 0\.0\.0\.0_8080\r?$/m, 'the 0.0.0.0_8080 listener routed it');
  assert.match(http.stdout, new RegExp(`upstream http remote=${app.ip.replace(/\./g, '\\.')} local=${upstream.ip.replace(/\./g, '\\.')}:8080`));
  let s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_8080.downstream_cx_total'), 1, s);
  assert.equal(statOf(s, 'listener.0.0.0.0_15001.downstream_cx_total'), 0, 'handed-off connections count on the listener that took them');

  // Opaque TCP to a port with no listener: kept by virtualOutbound, PassthroughCluster connects to the original destination.
  const tcp = lab.run(app, 'curl', ['-sS', '--max-time', '10', `telnet://${upstream.ip}:7000`]);
  assert.match(tcp.stdout, new RegExp(`^upstream tcp remote=${app.ip.replace(/\./g, '\\.')} local=${upstream.ip.replace(/\./g, '\\.')}:7000$`, 'm'), tcp.stderr);
  s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_15001.downstream_cx_total'), 1, s);
  assert.equal(statOf(s, 'cluster.PassthroughCluster.upstream_cx_total'), 1, s);

  // The proxy user's own traffic is not captured: same request, straight to the upstream, no listener involved.
  const own = lab.run(app, 'setpriv', [...identity.args, 'curl', '-sS', '-i', '--max-time', '10', `http://${upstream.ip}:8080/direct`]);
  assert.equal(own.status, 0, own.stderr);
  assert.doesNotMatch(own.stdout, /x-trellis-listener/);
  s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_8080.downstream_cx_total') + statOf(s, 'listener.0.0.0.0_15001.downstream_cx_total'), 2, 'no new captured connection');

  // Inbound to the pod IP from another pod: redirected to 15006, passed through to the app from 127.0.0.6.
  const inbound = lab.run(upstream, 'curl', ['-sS', '--max-time', '10', `http://${app.ip}:9090/`]);
  assert.equal(inbound.stdout, `app http remote=127.0.0.6 local=${app.ip}:9090`, inbound.stderr);
  s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_15006.downstream_cx_total'), 1, s);
  assert.equal(statOf(s, 'cluster.InboundPassthroughClusterIpv4.upstream_cx_total'), 1, s);

  // Clean-up: Istio's chains go, traffic is direct again.
  lab.exec(app, process.execPath, [CLI, 'iptables', 'clean']);
  assert.doesNotMatch(lab.exec(app, 'iptables-save', []), /ISTIO_/);
  const direct = lab.run(app, 'curl', ['-sS', '-i', '--max-time', '10', `http://${upstream.ip}:8080/after-clean`]);
  assert.doesNotMatch(direct.stdout, /x-trellis-listener/);
  assert.equal(statOf(stats(), 'listener.0.0.0.0_8080.downstream_cx_total'), 1);
});
