// `trellis proxy-config {clusters,listeners,routes,endpoints} PROXY`: the config the control plane generated for a proxy, as istioctl prints it.
import { Command } from 'commander';
import type { ConfigDump } from '../../control/server/config-dump.js';
import type { ProxySyncStatus } from '../../control/server/sync-status.js';
import { CliError, DEFAULT_MONITORING_ADDRESS, fetchDebug } from './debug-api.js';
import { proxyDisplayName } from './proxy-status.js';
import { formatTable } from './table.js';

type Json = Record<string, unknown>;

const SECTIONS = {
  clusters: { dump: 'ClustersConfigDump', list: 'dynamic_active_clusters', item: 'cluster' },
  listeners: { dump: 'ListenersConfigDump', list: 'dynamic_listeners', item: 'listener' },
  routes: { dump: 'RoutesConfigDump', list: 'dynamic_route_configs', item: 'route_config' },
  endpoints: { dump: 'EndpointsConfigDump', list: 'dynamic_endpoint_configs', item: 'endpoint_config' },
} as const;

export type ProxyConfigSection = keyof typeof SECTIONS;

// The dump uses .proto field names; accept JSON (lowerCamel) names too, so a real Envoy dump reads the same.
function get(obj: unknown, field: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const o = obj as Json;
  if (field in o) return o[field];
  const camel = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return o[camel];
}

function list(obj: unknown, field: string): unknown[] {
  const v = get(obj, field);
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
}

/** The resources of one section of a ConfigDump, unwrapped. */
export function dumpItems(dump: ConfigDump, section: ProxyConfigSection): Json[] {
  const s = SECTIONS[section];
  const config = dump.configs.find((c) => str(c['@type']).endsWith(`.${s.dump}`));
  return list(config, s.list).map((entry) => {
    if (section === 'listeners') return (get(get(entry, 'active_state'), 'listener') ?? {}) as Json;
    return (get(entry, s.item) ?? {}) as Json;
  });
}

/** `reviews.default` from Istio's `/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews` metadata. */
function istioConfigRef(metadata: unknown): string {
  const istio = get(get(metadata, 'filter_metadata'), 'istio');
  let config = get(istio, 'config') ?? get(get(istio, 'fields'), 'config');
  if (typeof config === 'object') config = get(config, 'string_value');
  const match = /\/namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(str(config));
  return match ? `${match[2]}.${match[1]}` : '';
}

function clusterRows(clusters: readonly Json[]): string[][] {
  return clusters.map((c) => {
    const name = str(get(c, 'name'));
    const parts = name.split('|');
    const [direction, port, subset, fqdn] = parts.length === 4 ? parts : ['', '', '', name];
    const type = str(get(c, 'type')) || (get(c, 'cluster_type') ? 'CUSTOM' : 'STATIC');
    return [fqdn!, port || '-', subset || '-', direction || '-', type, istioConfigRef(get(c, 'metadata')) || '-'];
  });
}

function socketAddress(address: unknown): { address: string; port: string } {
  const socket = get(address, 'socket_address');
  if (socket) return { address: str(get(socket, 'address')), port: str(get(socket, 'port_value')) };
  const pipe = get(address, 'pipe');
  return { address: pipe ? `unix://${str(get(pipe, 'path'))}` : '', port: '' };
}

function chainMatch(chain: unknown): string {
  const match = get(chain, 'filter_chain_match');
  if (!match) return 'ALL';
  const parts: string[] = [];
  const ranges = list(match, 'prefix_ranges').map((r) => `${str(get(r, 'address_prefix'))}/${str(get(r, 'prefix_len')) || '32'}`);
  if (ranges.length > 0) parts.push(`Addr: ${ranges.join(',')}`);
  const port = str(get(match, 'destination_port'));
  if (port) parts.push(`Port: ${port}`);
  const transport = str(get(match, 'transport_protocol'));
  if (transport) parts.push(`Trans: ${transport}`);
  const alpn = list(match, 'application_protocols').map(str);
  if (alpn.length > 0) parts.push(`App: ${alpn.join(',')}`);
  const sni = list(match, 'server_names').map(str);
  if (sni.length > 0) parts.push(`SNI: ${sni.join(',')}`);
  return parts.length > 0 ? parts.join('; ') : 'ALL';
}

function chainDestination(chain: unknown): string {
  for (const filter of list(chain, 'filters')) {
    const config = get(filter, 'typed_config');
    const type = str(get(config, '@type'));
    if (type.endsWith('HttpConnectionManager')) {
      const rds = str(get(get(config, 'rds'), 'route_config_name'));
      if (rds) return `Route: ${rds}`;
      if (get(config, 'route_config')) return `Inline Route: ${str(get(get(config, 'route_config'), 'name'))}`;
      return 'HTTP';
    }
    if (type.endsWith('TcpProxy')) {
      const cluster = str(get(config, 'cluster'));
      if (cluster) return `Cluster: ${cluster}`;
      const weighted = list(get(config, 'weighted_clusters'), 'clusters').map((c) => str(get(c, 'name')));
      return `WeightedClusters: ${weighted.join(',')}`;
    }
  }
  return 'Non-HTTP/Non-TCP';
}

function listenerRows(listeners: readonly Json[]): string[][] {
  const rows: string[][] = [];
  for (const l of listeners) {
    const { address, port } = socketAddress(get(l, 'address'));
    const chains = list(l, 'filter_chains');
    if (chains.length === 0) rows.push([str(get(l, 'name')), address, port, '-', '-']);
    for (const chain of chains) rows.push([str(get(l, 'name')), address, port, chainMatch(chain), chainDestination(chain)]);
    const fallback = get(l, 'default_filter_chain');
    if (fallback) rows.push([str(get(l, 'name')), address, port, 'DEFAULT', chainDestination(fallback)]);
  }
  return rows;
}

function routeMatch(match: unknown): string {
  const prefix = get(match, 'prefix');
  if (typeof prefix === 'string') return `${prefix || '/'}*`;
  const path = get(match, 'path');
  if (typeof path === 'string') return path;
  const regex = str(get(get(match, 'safe_regex'), 'regex'));
  if (regex) return regex;
  const template = str(get(get(match, 'path_match_policy'), 'name'));
  return template || '/*';
}

function routeRows(routes: readonly Json[]): string[][] {
  const rows: string[][] = [];
  for (const rc of routes) {
    const name = str(get(rc, 'name'));
    const vhosts = list(rc, 'virtual_hosts');
    if (vhosts.length === 0) rows.push([name, '-', '-', '-', '-']);
    for (const vh of vhosts) {
      const domains = list(vh, 'domains').map(str);
      const domainText = domains.length > 1 ? `${domains[0]} + ${domains.length - 1} more...` : (domains[0] ?? '');
      for (const route of list(vh, 'routes')) {
        rows.push([name, str(get(vh, 'name')), domainText, routeMatch(get(route, 'match')), istioConfigRef(get(route, 'metadata')) || '-']);
      }
    }
  }
  return rows;
}

function endpointRows(assignments: readonly Json[]): string[][] {
  const rows: string[][] = [];
  for (const cla of assignments) {
    for (const locality of list(cla, 'endpoints')) {
      for (const lb of list(locality, 'lb_endpoints')) {
        const { address, port } = socketAddress(get(get(lb, 'endpoint'), 'address'));
        rows.push([port ? `${address}:${port}` : address, str(get(lb, 'health_status')) || 'HEALTHY', 'OK', str(get(cla, 'cluster_name'))]);
      }
    }
  }
  return rows;
}

const HEADERS: Record<ProxyConfigSection, string[]> = {
  clusters: ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'],
  listeners: ['NAME', 'ADDRESSES', 'PORT', 'MATCH', 'DESTINATION'],
  routes: ['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'],
  endpoints: ['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER'],
};

const ROWS: Record<ProxyConfigSection, (items: readonly Json[]) => string[][]> = {
  clusters: clusterRows,
  listeners: listenerRows,
  routes: routeRows,
  endpoints: endpointRows,
};

/** istioctl's table for one section of a proxy's ConfigDump. */
export function formatProxyConfig(dump: ConfigDump, section: ProxyConfigSection): string {
  return formatTable(HEADERS[section], ROWS[section](dumpItems(dump, section)), 5);
}

/** A node id, or istioctl's `pod.namespace` resolved against the connected proxies. */
async function resolveProxyId(monitoringAddress: string, proxy: string): Promise<string> {
  if (proxy.includes('~')) return proxy;
  const statuses = await fetchDebug<ProxySyncStatus[]>(monitoringAddress, '/debug/syncz');
  const matches = [...new Set(statuses.map((s) => s.proxy).filter((id) => proxyDisplayName(id) === proxy))];
  if (matches.length === 0) throw new CliError(`proxy ${proxy} is not connected to the control plane (see trellis proxy-status)`);
  return matches[0]!;
}

export function proxyConfigCommand(): Command {
  const command = new Command('proxy-config').alias('pc').description("Show the xDS config the control plane generated for a proxy (istioctl proxy-config)");
  for (const section of Object.keys(SECTIONS) as ProxyConfigSection[]) {
    command
      .command(section)
      .alias(section.replace(/s$/, ''))
      .description(`the proxy's ${section}`)
      .argument('<proxy>', 'node id (sidecar~ip~pod.ns~ns.svc.cluster.local) or pod.namespace')
      .option('--monitoring-address <host:port>', 'the control plane monitoring address', DEFAULT_MONITORING_ADDRESS)
      .option('-o, --output <format>', 'table (default) or json', 'table')
      .action(async (proxy: string, opts: { monitoringAddress: string; output: string }) => {
        try {
          const id = await resolveProxyId(opts.monitoringAddress, proxy);
          const dump = await fetchDebug<ConfigDump>(opts.monitoringAddress, `/debug/config_dump?proxyID=${encodeURIComponent(id)}`);
          if (opts.output === 'json') process.stdout.write(`${JSON.stringify(dumpItems(dump, section), null, 2)}\n`);
          else process.stdout.write(formatProxyConfig(dump, section));
        } catch (err) {
          process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exitCode = 1;
        }
      });
  }
  return command;
}
