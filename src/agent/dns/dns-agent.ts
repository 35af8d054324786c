// Starts the agent's DNS proxy beside a proxy: its name table over NDS from the bootstrap's control plane, upstreams from resolv.conf.
import { ConfigError } from '../../common/errors.js';
import { DEFAULT_NODE_DOMAIN, DEFAULT_NODE_NAMESPACE, parseNodeId } from '../../common/node-id.js';
import { loadBootstrap, type ProxyNode } from '../../proxy/bootstrap.js';
import { DnsProxy, type DnsProxyStats } from './dns-proxy.js';
import { NameTableClient } from './name-table-client.js';
import { readResolvConf } from './resolv-conf.js';
import type { UpstreamServer } from './upstream-client.js';

/** Istio's agent DNS port. */
export const DEFAULT_DNS_PORT = 15053;

export interface DnsAgentOptions {
  /** The Envoy bootstrap the proxy runs: its node identity and ADS cluster. */
  readonly bootstrapPath: string;
  readonly host?: string;
  readonly port: number;
  /** ISTIO_META_DNS_AUTO_ALLOCATE: VIPs for ServiceEntries without addresses. */
  readonly autoAllocate: boolean;
  /** Default /etc/resolv.conf. */
  readonly resolvConfPath?: string;
  /** Replaces resolv.conf's nameservers (tests, and hosts whose resolv.conf points at the proxy itself). */
  readonly upstreams?: readonly UpstreamServer[];
  readonly log?: (message: string) => void;
}

export interface DnsAgent {
  readonly port: number;
  readonly stats: DnsProxyStats;
  close(): Promise<void>;
}

/** `host:port` (IPv6 in brackets) as an upstream server. */
export function parseUpstream(value: string): UpstreamServer | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]+):(\d+)$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/**
 * The namespace and cluster domain the DNS proxy answers short names for, read from the node as the control plane reads
 * it (its name table is built for them). An id that is not Istio's is not refused here (the control plane refuses it,
 * and names outside the mesh still resolve upstream): Istio's defaults apply, and `problem` says why.
 */
export function dnsScope(node: Pick<ProxyNode, 'id' | 'metadata'>): { namespace: string; clusterDomain: string; problem?: string } {
  const metadataNamespace = node.metadata?.fields?.['NAMESPACE']?.string_value;
  const parsed = parseNodeId(node.id, metadataNamespace);
  if ('problem' in parsed) return { namespace: metadataNamespace || DEFAULT_NODE_NAMESPACE, clusterDomain: DEFAULT_NODE_DOMAIN, problem: parsed.problem };
  return { namespace: parsed.namespace, clusterDomain: parsed.domainSuffix };
}

export async function startDnsAgent(options: DnsAgentOptions): Promise<DnsAgent> {
  const bootstrap = loadBootstrap(options.bootstrapPath);
  if (!bootstrap.ads) throw new ConfigError('TRELLIS_CONFIG_INVALID', `${options.bootstrapPath}: the DNS proxy needs a control plane (dynamic_resources.ads_config) for its name table`);
  const node = bootstrap.node;
  const { namespace, clusterDomain, problem } = dnsScope(node);
  if (problem) options.log?.(`${options.bootstrapPath}: ${problem}; the control plane will refuse it, so mesh names get no table`);
  const resolvConf = readResolvConf(options.resolvConfPath);
  const upstreams = options.upstreams ?? resolvConf.servers;
  if (upstreams.length === 0) options.log?.(`no upstream nameserver in ${options.resolvConfPath ?? '/etc/resolv.conf'}: names outside the mesh get SERVFAIL`);
  const dns = new DnsProxy({
    ...(options.host ? { host: options.host } : {}),
    port: options.port,
    upstreams,
    searchDomains: resolvConf.search,
    proxyNamespace: namespace,
    clusterDomain,
    // The mesh's service zone: a name there that the table lacks does not exist (and must not leak upstream).
    authoritativeZones: [`svc.${clusterDomain}`],
  });
  await dns.start();
  const client = new NameTableClient({
    server: bootstrap.ads.server,
    mode: bootstrap.ads.mode,
    node: { id: node.id, cluster: node.cluster, ...(node.metadata ? { metadata: node.metadata } : {}), ...(node.locality ? { locality: node.locality } : {}) },
    autoAllocate: options.autoAllocate,
    onTable: (table) => {
      dns.updateNameTable(table);
      options.log?.(`DNS name table: ${Object.keys(table).length} host(s)`);
    },
  });
  client.start();
  return {
    port: dns.port,
    stats: dns.stats,
    close: async () => {
      client.close();
      await dns.close();
    },
  };
}
