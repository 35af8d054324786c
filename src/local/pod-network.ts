// `trellis up --isolated`: each workload a pod — its own network namespace with its own IP on a bridge, a resolv.conf
// whose name server the init step's rules (`trellis iptables --redirect-dns`) send to the sidecar's DNS proxy, and
// Istio's capture rules for TCP. Root only.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The bridge in the host namespace; pods' veths hang off it and it holds the gateway address (the control plane's). */
export const POD_BRIDGE = 'trellis0';
/** Namespaces are `trellis-<workload>`; `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf. */
export const POD_NS_PREFIX = 'trellis-';
export const DEFAULT_POD_SUBNET = '10.223.0';
/** The proxy's group: Istio's rules leave its traffic alone (`-m owner --gid-owner 1337`). */
export const PROXY_GID = '1337';
/** Istio's agent DNS port: where `--redirect-dns` sends the pod's port-53 traffic. */
export const POD_DNS_PORT = 15053;
/** A pod's search list, as the kubelet writes it for namespace `default`: `reviews` expands to the mesh name. */
export const POD_DNS_SEARCH = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

/**
 * A pod's resolv.conf. The name server is the bridge address, where nothing answers port 53: the init step's rules
 * send queries to it to the sidecar's DNS proxy (Istio's --redirect-dns without --capture-all-dns captures exactly the
 * resolv.conf name servers), so a query that escapes capture fails instead of leaking to the host's resolver.
 */
export function podResolvConf(nameserver: string): string {
  return `# Written by trellis up --isolated: queries to this name server are redirected to the sidecar's DNS proxy (${POD_DNS_PORT})\nnameserver ${nameserver}\nsearch ${POD_DNS_SEARCH.join(' ')}\noptions ndots:5 timeout:2 attempts:2\n`;
}
export interface Pod {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export interface PodNetwork {
  /** The bridge's address in the host namespace: where pods reach the control plane. */
  readonly gatewayIp: string;
  readonly pods: ReadonlyMap<string, Pod>;
  /** `command args` run inside the pod (`ip netns exec`); `asProxy`: with the proxy's group, so it is not captured. */
  wrap(pod: Pod, command: string, args: readonly string[], asProxy?: boolean): { command: string; args: string[] };
  /** Removes the namespaces, their resolv.conf dirs and the bridge. */
  close(): void;
}

/** Why --isolated cannot run here, or undefined. */
export function isolatedUnavailable(): string | undefined {
  if (process.platform !== 'linux') return '--isolated needs Linux network namespaces';
  if (process.getuid?.() !== 0) return '--isolated needs root (it creates network namespaces, a bridge and iptables rules)';
  for (const tool of ['ip', 'iptables-restore', 'iptables-save', 'setpriv', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `--isolated needs ${tool} (Debian: apt-get install iproute2 iptables util-linux curl)`;
  }
  return undefined;
}

function ip(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/** A namespace name from a workload name: what `ip netns` accepts. */
export function podNamespace(name: string): string {
  return `${POD_NS_PREFIX}${name.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
}

/** Removes what an earlier run left (a crash, a SIGKILL): the bridge and every `trellis-` namespace and /etc/netns dir. */
export function removePodNetwork(): void {
  spawnSync('ip', ['link', 'del', POD_BRIDGE]);
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    if (!ns.startsWith(POD_NS_PREFIX)) continue;
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(join('/etc/netns', ns), { recursive: true, force: true });
  }
}

/**
 * Creates the bridge and one pod per name, each with its resolv.conf and the capture rules from
 * `trellis iptables --redirect-dns` (`cli`: this build's entry point). Anything left by an earlier run is removed
 * first; on failure, what was made is removed again.
 */
export function createPodNetwork(names: readonly string[], cli: string, subnet = DEFAULT_POD_SUBNET): PodNetwork {
  if (names.length > 250) throw new RangeError(`--isolated: at most 250 pods on ${subnet}.0/24, got ${names.length}`);
  removePodNetwork();
  const gatewayIp = `${subnet}.1`;
  const pods = new Map<string, Pod>();
  const network: PodNetwork = {
    gatewayIp,
    pods,
    wrap(pod, command, args, asProxy = false) {
      return { command: 'ip', args: ['netns', 'exec', pod.ns, ...(asProxy ? ['setpriv', `--regid=${PROXY_GID}`, '--clear-groups', command] : [command]), ...args] };
    },
    close: removePodNetwork,
  };
  try {
    ip('link', 'add', POD_BRIDGE, 'type', 'bridge');
    ip('addr', 'add', `${gatewayIp}/24`, 'dev', POD_BRIDGE);
    ip('link', 'set', POD_BRIDGE, 'up');
    names.forEach((name, i) => {
      const ns = podNamespace(name);
      const podIp = `${subnet}.${i + 2}`;
      const veth = `trlv${i}`;
      ip('netns', 'add', ns);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('link', 'set', veth, 'master', POD_BRIDGE);
      ip('link', 'set', veth, 'up');
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${podIp}/24`, 'dev', 'eth0');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up');
      ip('netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', gatewayIp);
      pods.set(name, { name, ns, ip: podIp });
    });
    for (const pod of pods.values()) {
      const dir = join('/etc/netns', pod.ns);
      mkdirSync(dir, { recursive: true });
      // Written before the init step: `trellis iptables --redirect-dns` reads the name servers it captures from it.
      writeFileSync(join(dir, 'resolv.conf'), podResolvConf(gatewayIp));
      // The init step, as Istio's init container: capture everything (DNS included) but the proxy's own traffic.
      const init = spawnSync('ip', ['netns', 'exec', pod.ns, process.execPath, cli, 'iptables', '--redirect-dns'], { encoding: 'utf8' });
      if (init.status !== 0) throw new Error(`${pod.name}: trellis iptables failed: ${init.stderr.trim()}`);
    }
  } catch (err) {
    removePodNetwork();
    throw err;
  }
  return network;
}

/** GET inside a pod (the proxy's admin listens on the pod's loopback): the HTTP status, or 0 when nothing answered. */
export function podHttpStatus(pod: Pod, port: number, path: string): number {
  const r = spawnSync('ip', ['netns', 'exec', pod.ns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `http://127.0.0.1:${port}${path}`], { encoding: 'utf8', timeout: 5_000 });
  return Number(r.stdout) || 0;
}

/**
 * Whether the application in a pod accepts TCP connections on its loopback port: readiness that holds for any
 * protocol (an HTTP probe reads 0 from a TCP echo server, which answers a request with the request).
 */
export function podCanConnect(pod: Pod, port: number): boolean {
  const probe = `require('node:net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
  return spawnSync('ip', ['netns', 'exec', pod.ns, process.execPath, '-e', probe], { timeout: 5_000 }).status === 0;
}
