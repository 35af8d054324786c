// Shared by the traffic capture e2e tests: the CLI path, the tool check, a plain server for pods, stats and bounded waits.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable, type NetnsLab, type NetnsPod } from '../support/netns.js';

export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
export const PROXY_UID = '1337';
export const unavailable = netnsUnavailable(['ip', 'iptables-restore', 'iptables-save', 'curl', 'setpriv']);

/** Istio's sidecar shape, static: what src/control/translate/listener emits for one HTTP port (8080), nothing else. */
export function bootstrap(upstreamIp: string): string {
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
export const SERVER = `
const http = require('node:http'); const net = require('node:net');
const [name, httpPort, tcpPort] = process.argv.slice(1);
http.createServer((req, res) => res.end(name + ' http remote=' + req.socket.remoteAddress + ' local=' + req.socket.localAddress + ':' + req.socket.localPort)).listen(Number(httpPort), '0.0.0.0');
if (tcpPort) net.createServer((s) => s.end(name + ' tcp remote=' + s.remoteAddress + ' local=' + s.localAddress + ':' + s.localPort + '\\n')).listen(Number(tcpPort), '0.0.0.0');
setTimeout(() => console.log('listening'), 50);
`;

export function statOf(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[.|]/g, (c) => `\\${c}`)}: (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The proxy user can read this checkout (CI may clone under a 0700 home): run as uid 1337; else keep uid 0 with gid 1337, which Istio's rules exclude just the same. */
export function proxyIdentity(): { args: string[]; label: string } {
  const readable = spawnSync('setpriv', ['--reuid', PROXY_UID, '--regid', PROXY_UID, '--clear-groups', process.execPath, '-e', `require('node:fs').accessSync(${JSON.stringify(CLI)}); require('node:fs').readdirSync(${JSON.stringify(resolve(dirname(CLI), '../../../node_modules'))})`]);
  return readable.status === 0
    ? { args: ['--reuid', PROXY_UID, '--regid', PROXY_UID, '--clear-groups'], label: 'uid 1337, gid 1337' }
    : { args: ['--regid', PROXY_UID, '--clear-groups'], label: 'uid 0, gid 1337 (this checkout is not readable by uid 1337)' };
}

/**
 * The control plane in the loop inside one pod: Istio config in `dir/config`, `trellis control` on the pod's loopback
 * (the proxy's connection to it leaves as the proxy user, never captured), `trellis iptables` with `iptablesArgs`, and
 * `trellis proxy` from the agent's sidecar bootstrap as the proxy user with `proxyArgs`.
 */
export async function startControlledSidecar(
  lab: NetnsLab,
  pod: NetnsPod,
  dir: string,
  meshYaml: string,
  options: { iptablesArgs?: readonly string[]; proxyArgs?: readonly string[] } = {},
): Promise<{ control: ReturnType<NetnsLab['start']>; proxy: ReturnType<NetnsLab['start']>; identity: ReturnType<typeof proxyIdentity> }> {
  const { proxyBootstrapYaml } = await import('../../src/agent/bootstrap.js');
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'config');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'mesh.yaml'), meshYaml);
  const bootstrapPath = join(dir, 'bootstrap.yaml');
  writeFileSync(
    bootstrapPath,
    proxyBootstrapYaml({ type: 'sidecar', name: 'app-v1', namespace: 'default', labels: { app: 'app' }, serviceAccount: 'app', ip: pod.ip, adminPort: 15000, xdsPort: 15010 }),
    { mode: 0o644 },
  );
  const control = lab.start(pod, process.execPath, [CLI, 'control', '--config-dir', configDir, '--xds-address', '127.0.0.1:15010', '--monitoring-address', '127.0.0.1:15014', '--secure-xds-address', 'off']);
  lab.exec(pod, process.execPath, [CLI, 'iptables', ...(options.iptablesArgs ?? [])]);
  const identity = proxyIdentity();
  const proxy = lab.start(pod, 'setpriv', [...identity.args, process.execPath, CLI, 'proxy', '-c', bootstrapPath, '--log-level', 'warning', ...(options.proxyArgs ?? [])]);
  return { control, proxy, identity };
}
