// Istio's sidecar capture rules (istio-iptables, REDIRECT mode, IPv4) built from a CaptureConfig as iptables-restore input.
import type { CaptureConfig, Ipv4Cidr } from './capture-config.js';

/** Istio's chain names, so people who know Istio can read the rules. */
export const ISTIO_CHAINS = {
  inbound: 'ISTIO_INBOUND',
  redirect: 'ISTIO_REDIRECT',
  inRedirect: 'ISTIO_IN_REDIRECT',
  output: 'ISTIO_OUTPUT',
  outputDns: 'ISTIO_OUTPUT_DNS',
} as const;
/** Every chain istio-iptables may create in any table (TPROXY's too): what `trellis iptables clean` removes. */
export const ALL_ISTIO_CHAINS: readonly string[] = ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_OUTPUT_DNS', 'ISTIO_DIVERT', 'ISTIO_TPROXY', 'ISTIO_DROP'];
export const BUILTIN_CHAINS: ReadonlySet<string> = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
/** The agent's DNS proxy port, where --redirect-dns sends port-53 traffic. */
export const DNS_CAPTURE_PORT = 15053;
/** Inbound traffic the sidecar sends to the app leaves from this address, so it is never captured again. */
const INBOUND_PASSTHROUGH_SOURCE = '127.0.0.6/32';

type Table = 'nat' | 'raw';

/** Rules per table in append order; `-N` lines for the non-built-in chains in the order they first get a rule (as istio-iptables). */
class RuleSet {
  private readonly tables = new Map<Table, { chains: string[]; rules: string[] }>();

  append(table: Table, chain: string, ...spec: string[]): void {
    let t = this.tables.get(table);
    if (!t) this.tables.set(table, (t = { chains: [], rules: [] }));
    if (!BUILTIN_CHAINS.has(chain) && !t.chains.includes(chain)) t.chains.push(chain);
    t.rules.push(['-A', chain, ...spec].join(' '));
  }

  /** iptables-restore input (what `iptables-save` prints, less counters): nat first, then raw. */
  render(): string {
    let out = '';
    for (const table of ['nat', 'raw'] as const) {
      const t = this.tables.get(table);
      if (!t) continue;
      out += `* ${table}\n${t.chains.map((c) => `-N ${c}\n`).join('')}${t.rules.map((r) => `${r}\n`).join('')}COMMIT\n`;
    }
    return out;
  }
}

const cidrText = (c: Ipv4Cidr): string => `${c.network}/${c.prefixLen}`;

/** One port as `--dport N`, several as `-m multiport --dports a,b` (istio-iptables' form). */
function dports(ports: readonly number[]): string[] {
  return ports.length === 1 ? ['--dport', String(ports[0])] : ['-m', 'multiport', '--dports', ports.join(',')];
}

function isLoopback(c: Ipv4Cidr): boolean {
  return c.network.startsWith('127.');
}

/**
 * The rules istio-iptables writes for the same settings, in its order (the golden tests compare them with Istio's own
 * test data). Outbound: OUTPUT jumps to ISTIO_OUTPUT, which returns the proxy's own traffic (by uid/gid), loopback and
 * excluded destinations and sends the rest to ISTIO_REDIRECT (-> proxyPort). Inbound: PREROUTING jumps to
 * ISTIO_INBOUND, which sends captured ports to ISTIO_IN_REDIRECT (-> inboundCapturePort).
 */
export function buildCaptureRules(cfg: CaptureConfig): string {
  const rules = new RuleSet();
  const { inbound, redirect, inRedirect, output, outputDns } = ISTIO_CHAINS;
  for (const nic of cfg.excludeInterfaces) {
    rules.append('nat', 'PREROUTING', '-i', nic, '-j', 'RETURN');
    rules.append('nat', 'OUTPUT', '-o', nic, '-j', 'RETURN');
  }
  rules.append('nat', inbound, '-p', 'tcp', '--dport', String(cfg.inboundTunnelPort), '-j', 'RETURN');
  rules.append('nat', redirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(cfg.proxyPort));
  rules.append('nat', inRedirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(cfg.inboundCapturePort));

  const include = cfg.inboundPortsInclude;
  if (include === '*' || include.length > 0) {
    rules.append('nat', 'PREROUTING', '-p', 'tcp', '-j', inbound);
    if (include === '*') {
      if (cfg.inboundPortsExclude.length > 0) rules.append('nat', inbound, '-p', 'tcp', ...dports(cfg.inboundPortsExclude), '-j', 'RETURN');
      rules.append('nat', inbound, '-p', 'tcp', '-j', inRedirect);
    } else {
      for (const port of include) rules.append('nat', inbound, '-p', 'tcp', '--dport', String(port), '-j', inRedirect);
    }
  }

  rules.append('nat', 'OUTPUT', '-j', output);
  if (cfg.outboundPortsExclude.length > 0) {
    for (const proto of ['tcp', 'udp']) rules.append('nat', output, '-p', proto, ...dports(cfg.outboundPortsExclude), '-j', 'RETURN');
  }
  // The sidecar's inbound traffic to the app leaves from 127.0.0.6 on lo: never capture it again.
  rules.append('nat', output, '-o', 'lo', '-s', INBOUND_PASSTHROUGH_SOURCE, '-j', 'RETURN');

  // Capturing a loopback range (-i 127.x) means app-to-self traffic on lo must not be returned wholesale.
  const includesLoopback = cfg.outboundIpRangesInclude !== '*' && cfg.outboundIpRangesInclude.some(isLoopback);
  const loopback = cfg.hostIpv4LoopbackCidr;
  const owners: readonly ['uid' | 'gid', readonly string[]][] = [['uid', cfg.proxyUids], ['gid', cfg.proxyGids]];
  for (const [kind, ids] of owners) {
    for (const id of ids) {
      // The proxy calling its own pod IP (over lo) is inbound traffic for the sidecar: send it to the inbound port. Istio
      // leaves DNS (53) alone for users only when DNS is redirected; groups keep the tunnel port alone.
      const notPorts = cfg.redirectDns && kind === 'uid' ? ['-m', 'multiport', '!', '--dports', `53,${cfg.inboundTunnelPort}`] : ['!', '--dport', String(cfg.inboundTunnelPort)];
      rules.append('nat', output, '-o', 'lo', '!', '-d', loopback, '-p', 'tcp', ...notPorts, '-m', 'owner', `--${kind}-owner`, id, '-j', inRedirect);
      if (!includesLoopback) {
        const dnsAlone = cfg.redirectDns ? ['-p', 'tcp', '!', '--dport', '53'] : [];
        rules.append('nat', output, '-o', 'lo', ...dnsAlone, '-m', 'owner', '!', `--${kind}-owner`, id, '-j', 'RETURN');
      }
      rules.append('nat', output, '-m', 'owner', `--${kind}-owner`, id, '-j', 'RETURN');
    }
  }

  if (cfg.redirectDns) {
    rules.append('nat', output, '-j', outputDns);
    const servers = cfg.captureAllDns ? [undefined] : cfg.dnsServersV4;
    for (const s of servers) rules.append('nat', outputDns, '-p', 'tcp', '--dport', '53', ...(s ? ['-d', `${s}/32`] : []), '-j', 'REDIRECT', '--to-ports', String(DNS_CAPTURE_PORT));
    for (const [kind, ids] of owners) for (const id of ids) rules.append('nat', outputDns, '-p', 'udp', '--dport', '53', '-m', 'owner', `--${kind}-owner`, id, '-j', 'RETURN');
    for (const s of servers) rules.append('nat', outputDns, '-p', 'udp', '--dport', '53', ...(s ? ['-d', `${s}/32`] : []), '-j', 'REDIRECT', '--to-port', String(DNS_CAPTURE_PORT));
    // Conntrack zones keep the app's query (zone 1) and the agent's answer from 15053 (zone 2) apart, so the reply
    // NAT of one is not applied to the other (Istio's UDP DNS fix).
    rules.append('raw', 'OUTPUT', '-j', outputDns);
    for (const [kind, ids] of owners) {
      for (const id of ids) {
        rules.append('raw', outputDns, '-p', 'udp', '--dport', '53', '-m', 'owner', `--${kind}-owner`, id, '-j', 'CT', '--zone', '1');
        rules.append('raw', outputDns, '-p', 'udp', '--sport', String(DNS_CAPTURE_PORT), '-m', 'owner', `--${kind}-owner`, id, '-j', 'CT', '--zone', '2');
      }
    }
    if (servers.length > 0) {
      rules.append('raw', 'PREROUTING', '-j', inbound);
      for (const s of servers) {
        rules.append('raw', outputDns, '-p', 'udp', '--dport', '53', ...(s ? ['-d', `${s}/32`] : []), '-j', 'CT', '--zone', '2');
        rules.append('raw', inbound, '-p', 'udp', '--sport', '53', ...(s ? ['-s', `${s}/32`] : []), '-j', 'CT', '--zone', '1');
      }
    }
  }

  rules.append('nat', output, '-d', loopback, '-j', 'RETURN');
  for (const c of cfg.outboundIpRangesExclude) rules.append('nat', output, '-d', cidrText(c), '-j', 'RETURN');
  for (const port of cfg.outboundPortsInclude) rules.append('nat', output, '-p', 'tcp', '--dport', String(port), '-j', redirect);
  if (cfg.outboundIpRangesInclude === '*') rules.append('nat', output, '-j', redirect);
  else for (const c of cfg.outboundIpRangesInclude) rules.append('nat', output, '-d', cidrText(c), '-j', redirect);
  return rules.render();
}
