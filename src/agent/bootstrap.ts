// The Envoy bootstrap a sidecar or gateway proxy starts with (pilot-agent's role): Istio's node id and metadata, admin, ADS to the control plane.
import { stringify } from 'yaml';

/** Node metadata keys the control plane reads for local (no iptables) sidecars; see docs/control-plane.md. */
export const EXPLICIT_PROXY_PORT_METADATA = 'TRELLIS_EXPLICIT_PROXY_PORT';
export const LOCAL_INBOUND_PORTS_METADATA = 'TRELLIS_LOCAL_INBOUND_PORTS';

/**
 * The ADS stream's reconnect backoff (grpc_services[0].retry_policy.retry_back_off). Envoy's default ceiling, 30 s,
 * means a proxy that lost its control plane for 20 s may wait another ~16 s after it is back (the ceiling doubled past
 * 16 s during the outage); 3 s keeps every proxy back within 3 s of the control plane's return (plus its config's
 * generation: istioctl-style "SYNCED within 5 s" holds on a loaded machine, where 4 s measured 4.3 s), while full jitter
 * still spreads a fleet's reconnections evenly over those 3 s instead of all at once (docs/resilience.md).
 */
export const ADS_RETRY_BACK_OFF = { base_interval: '0.500s', max_interval: '3s' } as const;

/** The static cluster ADS runs over, by Istio's name. */
export const XDS_CLUSTER = 'xds-grpc';
/** The static cluster of the agent's SDS server, by Istio's name; TLS contexts reference `default` and `ROOTCA` through it. */
export const SDS_CLUSTER = 'sds-grpc';

export interface ProxyBootstrapOptions {
  /** `sidecar` beside a workload, `router` for a gateway. */
  readonly type: 'sidecar' | 'router';
  /** The pod-like name (`reviews-v2`), also WORKLOAD_NAME. */
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** The workload's address; `127.0.0.1` on a local mesh. */
  readonly ip?: string;
  readonly domainSuffix?: string;
  readonly adminPort: number;
  /** The control plane's plaintext ADS address. */
  readonly xdsHost?: string;
  readonly xdsPort: number;
  /** Sidecars in explicit mode: the loopback port of the outbound listener (the application's HTTP_PROXY). */
  readonly explicitProxyPort?: number;
  /**
   * Sidecars without iptables: for each endpoint port of the workload (the port its WorkloadEntry names, where the
   * sidecar's inbound listener binds on the loopback), the application's own port the inbound cluster forwards to.
   */
  readonly inboundPorts?: ReadonlyArray<{ readonly inbound: number; readonly app: number }>;
  /** `GRPC` (SotW, default) or `DELTA_GRPC`. */
  readonly adsApiType?: 'GRPC' | 'DELTA_GRPC';
  /** `region/zone/subzone` (Istio's locality label): the node's locality, which locality-aware EDS ranks endpoints from. */
  readonly locality?: string;
  /** Security on: the loopback port of the agent's SDS server, which the `sds-grpc` static cluster points at. */
  readonly sdsPort?: number;
  /**
   * Sidecars whose DNS goes through the agent's DNS proxy (Istio's ISTIO_META_DNS_CAPTURE / DNS_AUTO_ALLOCATE, which
   * its bootstrap puts into the node metadata): the control plane then also builds listeners on auto-allocated VIPs.
   */
  readonly dns?: { readonly capture: boolean; readonly autoAllocate: boolean };
}

/** An HTTP/2 static cluster to one loopback endpoint, as Istio's xds-grpc and sds-grpc. */
function grpcStaticCluster(name: string, host: string, port: number): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
    },
  };
}

/** How a TLS context names the agent's secrets (`default`, `ROOTCA`): SDS over the sds-grpc cluster, as Istio generates it. */
export function agentSdsConfig(): Record<string, unknown> {
  return {
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }] },
    resource_api_version: 'V3',
  };
}

/** Istio's node id: `sidecar~10.0.0.5~reviews-v2.default~default.svc.cluster.local`. */
export function proxyNodeId(o: Pick<ProxyBootstrapOptions, 'type' | 'name' | 'namespace' | 'ip' | 'domainSuffix'>): string {
  return `${o.type}~${o.ip ?? '127.0.0.1'}~${o.name}.${o.namespace}~${o.namespace}.svc.${o.domainSuffix ?? 'cluster.local'}`;
}

/** `9080=19082,…`: the value of TRELLIS_LOCAL_INBOUND_PORTS (endpoint port = application port). */
export function formatInboundPorts(ports: ReadonlyArray<{ readonly inbound: number; readonly app: number }>): string {
  return ports.map((p) => `${p.inbound}=${p.app}`).join(',');
}

/** The bootstrap as a plain object in Envoy's proto3 JSON shape (what `trellis proxy -c` and Envoy read). */
export function buildProxyBootstrap(o: ProxyBootstrapOptions): Record<string, unknown> {
  const ip = o.ip ?? '127.0.0.1';
  const metadata: Record<string, unknown> = {
    NAMESPACE: o.namespace,
    LABELS: { ...o.labels },
    SERVICE_ACCOUNT: o.serviceAccount,
    WORKLOAD_NAME: o.name,
    INSTANCE_IPS: ip,
    ISTIO_VERSION: 'trellis',
  };
  if (o.type === 'sidecar' && o.explicitProxyPort !== undefined) metadata[EXPLICIT_PROXY_PORT_METADATA] = String(o.explicitProxyPort);
  if (o.type === 'sidecar' && o.inboundPorts && o.inboundPorts.length > 0) metadata[LOCAL_INBOUND_PORTS_METADATA] = formatInboundPorts(o.inboundPorts);
  if (o.type === 'sidecar' && o.dns?.capture) {
    metadata['DNS_CAPTURE'] = 'true';
    if (o.dns.autoAllocate) metadata['DNS_AUTO_ALLOCATE'] = 'true';
  }
  const app = o.labels['app'] ?? o.labels['app.kubernetes.io/name'] ?? o.name;
  return {
    node: { id: proxyNodeId(o), cluster: `${app}.${o.namespace}`, metadata, ...(o.locality ? { locality: nodeLocality(o.locality) } : {}) },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.adsApiType ?? 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER }, retry_policy: { retry_back_off: { ...ADS_RETRY_BACK_OFF } } }],
      },
      cds_config: { resource_api_version: 'V3', ads: {} },
      lds_config: { resource_api_version: 'V3', ads: {} },
    },
    static_resources: {
      clusters: [
        grpcStaticCluster(XDS_CLUSTER, o.xdsHost ?? '127.0.0.1', o.xdsPort),
        ...(o.sdsPort !== undefined ? [grpcStaticCluster(SDS_CLUSTER, '127.0.0.1', o.sdsPort)] : []),
      ],
    },
  };
}

/** `region/zone/subzone` as Envoy's node.locality (empty parts left out). */
function nodeLocality(label: string): Record<string, string> {
  const [region = '', zone = '', subzone = ''] = label.split('/');
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subzone ? { sub_zone: subzone } : {}) };
}

/** The bootstrap as YAML, with a header line saying what wrote it. */
export function proxyBootstrapYaml(o: ProxyBootstrapOptions): string {
  return `# Generated by trellis (src/agent/bootstrap.ts) for ${o.type} ${o.name}.${o.namespace}; regenerated on every start.\n${stringify(buildProxyBootstrap(o))}`;
}
