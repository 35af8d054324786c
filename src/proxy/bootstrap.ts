// The proxy's start-up config: an Envoy v3 Bootstrap (YAML or JSON) read, converted and checked against the subset Trellis runs.
//
// Everything outside that subset is refused here with the file and field path, so a proxy never starts
// on a config it would silently half-apply. Resource-level checks reuse the xDS client's resource types,
// so a static Listener or Cluster is held to the same rules as one that arrives over ADS.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { durationMs } from '../common/duration.js';
import { ConfigError, ConfigValidationError, describeError, XdsValidationError } from '../common/errors.js';
import { packAny } from '../xds/codec.js';
import type { envoy, google } from '../xds/generated/types.js';
import { fromProtoJson } from '../xds/proto-json.js';
import { clusterResourceType, listenerResourceType, secretResourceType, type XdsResourceType } from '../xds/client/index.js';

export type Bootstrap = envoy.config.bootstrap.v3.Bootstrap;
export type Listener = envoy.config.listener.v3.Listener;
export type Cluster = envoy.config.cluster.v3.Cluster;
export type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;

export const BOOTSTRAP_MESSAGE = 'envoy.config.bootstrap.v3.Bootstrap';

export interface ProxyNode {
  readonly id: string;
  readonly cluster: string;
  /** As in the bootstrap (google.protobuf.Struct), sent to the control plane unchanged. */
  readonly metadata?: google.protobuf.Struct;
  readonly locality?: envoy.config.core.v3.Locality;
}

/** ADS as the bootstrap configures it; the server address is the named static cluster's first endpoint. */
export interface AdsBootstrap {
  readonly mode: 'sotw' | 'delta';
  readonly clusterName: string;
  /** `host:port` for the gRPC channel. */
  readonly server: string;
  /** lds_config: { ads: {} } → subscribe LDS (wildcard) over ADS. */
  readonly lds: boolean;
  /** cds_config: { ads: {} } → subscribe CDS (wildcard) over ADS. */
  readonly cds: boolean;
  /**
   * grpc_services[0].retry_policy.retry_back_off: the ADS stream's reconnect backoff (Envoy reads only this part of
   * the retry policy for xDS). Absent: Envoy's defaults, 500 ms doubling to 30 s, full jitter.
   */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
}

export interface ProxyBootstrap {
  /** The file it came from, for messages. */
  readonly source: string;
  /** The whole Bootstrap as converted, for /config_dump. */
  readonly bootstrap: Bootstrap;
  readonly node: ProxyNode;
  /** Undefined when the bootstrap has no admin section (no admin listener then, as Envoy). */
  readonly admin?: { readonly address: string; readonly port: number };
  readonly listeners: readonly Listener[];
  readonly clusters: readonly Cluster[];
  readonly secrets: readonly Secret[];
  readonly ads?: AdsBootstrap;
}

/** Reads and checks a bootstrap file; throws ConfigError (parse) or ConfigValidationError (every problem, with the file and field path). */
export function loadBootstrap(path: string): ProxyBootstrap {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('TRELLIS_CONFIG_PARSE', `${path}: cannot read the bootstrap: ${describeError(err)}`, { cause: err });
  }
  return parseBootstrap(text, path);
}

/** Parses bootstrap YAML or JSON text (JSON is YAML); `source` names it in messages. */
export function parseBootstrap(text: string, source: string): ProxyBootstrap {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new ConfigError('TRELLIS_CONFIG_PARSE', `${source}: not a YAML document`);
  const nonEmpty = documents.filter((doc) => doc.contents !== null || doc.errors.length > 0);
  for (const doc of nonEmpty) {
    const error = doc.errors[0];
    if (error) {
      const where = error.linePos?.[0] ? `${error.linePos[0].line}:${error.linePos[0].col}` : '?';
      throw new ConfigError('TRELLIS_CONFIG_PARSE', `${source}:${where}: ${error.message.split('\n')[0]}`);
    }
  }
  if (nonEmpty.length !== 1) throw new ConfigError('TRELLIS_CONFIG_PARSE', `${source}: expected one YAML or JSON document holding an Envoy Bootstrap, found ${nonEmpty.length}`);
  return checkBootstrap(nonEmpty[0]!.toJS({ maxAliasCount: 1000 }) as unknown, source);
}

const SUPPORTED_TOP_LEVEL = ['node', 'admin', 'static_resources', 'dynamic_resources'];
const SUPPORTED_NODE = ['id', 'cluster', 'metadata', 'locality', 'user_agent_name'];
const SUPPORTED_ADMIN = ['address'];
const SUPPORTED_ADS = ['api_type', 'transport_api_version', 'grpc_services', 'set_node_on_first_message_only'];
const SUPPORTED_ADS_CONFIG_SOURCE = ['ads', 'resource_api_version', 'initial_fetch_timeout'];

/** Converts and checks an already parsed bootstrap object. */
export function checkBootstrap(json: unknown, source: string): ProxyBootstrap {
  const converted = fromProtoJson<Bootstrap>(BOOTSTRAP_MESSAGE, json);
  const problems = [...converted.problems];
  const bootstrap = converted.value;
  const add = (path: string, expectation: string): void => void problems.push(`${path}: ${expectation}`);
  if (problems.length > 0) throw new ConfigValidationError(problems.map((p) => `${source}: ${p}`));

  refuseOthers(bootstrap, SUPPORTED_TOP_LEVEL, '', add);

  const node = bootstrap.node ?? {};
  refuseOthers(node, SUPPORTED_NODE, 'node', add);

  let admin: ProxyBootstrap['admin'];
  if (bootstrap.admin) {
    refuseOthers(bootstrap.admin, SUPPORTED_ADMIN, 'admin', add);
    admin = socketAddress(bootstrap.admin.address, 'admin.address', add);
  }

  const resources = bootstrap.static_resources ?? {};
  const listeners = checkResources(resources.listeners ?? [], listenerResourceType, 'static_resources.listeners', add);
  const clusters = checkResources(resources.clusters ?? [], clusterResourceType, 'static_resources.clusters', add);
  const secrets = checkResources(resources.secrets ?? [], secretResourceType, 'static_resources.secrets', add);
  unique(listeners, 'static_resources.listeners', add);
  unique(clusters, 'static_resources.clusters', add);
  unique(secrets, 'static_resources.secrets', add);

  const ads = checkDynamicResources(bootstrap.dynamic_resources, clusters, add);
  if (ads && !node.id) add('node.id', 'must be set when dynamic_resources are used (the control plane identifies the proxy by it)');

  if (problems.length > 0) throw new ConfigValidationError(problems.map((p) => `${source}: ${p}`));
  return {
    source,
    bootstrap,
    node: { id: node.id ?? '', cluster: node.cluster ?? '', ...(node.metadata ? { metadata: node.metadata } : {}), ...(node.locality ? { locality: node.locality } : {}) },
    ...(admin ? { admin } : {}),
    listeners,
    clusters,
    secrets,
    ...(ads ? { ads } : {}),
  };
}

type Add = (path: string, expectation: string) => void;

function refuseOthers(message: object, supported: readonly string[], path: string, add: Add): void {
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined || supported.includes(key)) continue;
    add(path ? `${path}.${key}` : key, `not supported by Trellis (supported here: ${supported.join(', ')})`);
  }
}

function socketAddress(address: envoy.config.core.v3.Address | undefined, path: string, add: Add): { address: string; port: number } | undefined {
  const socket = address?.socket_address;
  if (!socket) {
    add(address ? `${path}.${Object.keys(address)[0] ?? 'socket_address'}` : path, 'expected a socket_address with address and port_value');
    return undefined;
  }
  if (socket.protocol !== undefined && socket.protocol !== 'TCP') add(`${path}.socket_address.protocol`, 'only TCP is supported');
  if (socket.named_port !== undefined) add(`${path}.socket_address.named_port`, 'not supported; use port_value');
  if (!socket.address) add(`${path}.socket_address.address`, 'must be set (an IP address such as 127.0.0.1)');
  if (socket.port_value === undefined && socket.named_port === undefined) {
    // Port 0 is the proto default and reads back as absent: the OS picks a port, which tests rely on.
  }
  return socket.address ? { address: socket.address, port: socket.port_value ?? 0 } : undefined;
}

/** Holds each static resource to its xDS resource type's rules (the same as over ADS). */
function checkResources<T extends object>(items: readonly T[], type: XdsResourceType<object>, path: string, add: Add): T[] {
  const accepted: T[] = [];
  items.forEach((item, i) => {
    const name = (item as { name?: string }).name;
    const here = `${path}[${i}]`;
    if (!name) {
      add(`${here}.name`, 'must not be empty');
      return;
    }
    try {
      accepted.push(type.decode(packAny(messageNameOfType(type), item), name) as T);
    } catch (err) {
      if (!(err instanceof XdsValidationError)) return add(here, describeError(err));
      for (const detail of err.details) {
        const colon = detail.indexOf(': ');
        if (colon > 0 && !detail.slice(0, colon).includes(' ')) add(`${here}.${detail.slice(0, colon)}`, detail.slice(colon + 2));
        else add(here, detail);
      }
    }
  });
  return accepted;
}

function messageNameOfType(type: XdsResourceType<object>): string {
  return type.typeUrl.slice(type.typeUrl.lastIndexOf('/') + 1);
}

function unique(items: readonly { name?: string }[], path: string, add: Add): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (item.name === undefined) return;
    if (seen.has(item.name)) add(`${path}[${i}].name`, `"${item.name}" is defined twice`);
    seen.add(item.name);
  });
}

function checkDynamicResources(dynamic: envoy.config.bootstrap.v3.Bootstrap.DynamicResources | undefined, clusters: readonly Cluster[], add: Add): AdsBootstrap | undefined {
  if (!dynamic) return undefined;
  refuseOthers(dynamic, ['ads_config', 'lds_config', 'cds_config'], 'dynamic_resources', add);
  const lds = checkAdsConfigSource(dynamic.lds_config, 'dynamic_resources.lds_config', add);
  const cds = checkAdsConfigSource(dynamic.cds_config, 'dynamic_resources.cds_config', add);
  const config = dynamic.ads_config;
  if (!config) {
    if (lds || cds) add('dynamic_resources.ads_config', 'must be set: lds_config and cds_config use ADS, which needs an ads_config');
    return undefined;
  }
  const path = 'dynamic_resources.ads_config';
  refuseOthers(config, SUPPORTED_ADS, path, add);
  let mode: AdsBootstrap['mode'] = 'sotw';
  if (config.api_type === 'DELTA_GRPC') mode = 'delta';
  else if (config.api_type !== 'GRPC') add(`${path}.api_type`, `expected GRPC or DELTA_GRPC, got ${String(config.api_type ?? 'UNSUPPORTED_REST_LEGACY (unset)')}`);
  if (config.transport_api_version !== undefined && config.transport_api_version !== 'V3') add(`${path}.transport_api_version`, 'only V3 is supported');
  const services = config.grpc_services ?? [];
  if (services.length !== 1) {
    add(`${path}.grpc_services`, `expected exactly one gRPC service, got ${services.length}`);
    return undefined;
  }
  const service = services[0]!;
  refuseOthers(service, ['envoy_grpc', 'timeout', 'retry_policy'], `${path}.grpc_services[0]`, add);
  const backoff = adsBackoff(service.retry_policy, `${path}.grpc_services[0].retry_policy`, add);
  const clusterName = service.envoy_grpc?.cluster_name;
  if (!clusterName) {
    if (!service.google_grpc) add(`${path}.grpc_services[0].envoy_grpc.cluster_name`, 'must name a cluster of static_resources');
    return undefined;
  }
  const cluster = clusters.find((c) => c.name === clusterName);
  if (!cluster) {
    add(`${path}.grpc_services[0].envoy_grpc.cluster_name`, `"${clusterName}" is not a cluster of static_resources.clusters (known: ${clusters.map((c) => c.name).join(', ') || 'none'})`);
    return undefined;
  }
  const socket = cluster.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
  if (!socket?.address || !socket.port_value) {
    add(`${path}.grpc_services[0].envoy_grpc.cluster_name`, `cluster "${clusterName}" needs a load_assignment endpoint with a socket_address (address and port_value) for the control plane`);
    return undefined;
  }
  const host = isIPv6(socket.address) ? `[${socket.address}]` : socket.address;
  return { mode, clusterName, server: `${host}:${socket.port_value}`, lds, cds, ...(backoff ? { backoff } : {}) };
}

/**
 * Envoy's Config::Utility::prepareJitteredExponentialBackOffStrategy for an xDS gRPC service: base_interval is
 * required and positive, max_interval defaults to 10 times the base and may not be below it. The rest of the retry
 * policy (num_retries, retry_on, …) means nothing to a stream that retries forever, so it is refused, not ignored.
 */
function adsBackoff(policy: envoy.config.core.v3.RetryPolicy | undefined, path: string, add: Add): AdsBootstrap['backoff'] {
  if (!policy) return undefined;
  refuseOthers(policy, ['retry_back_off'], path, add);
  const strategy = policy.retry_back_off;
  if (!strategy) return undefined;
  const ms = (d: google.protobuf.Duration | undefined): number | undefined => (d ? durationMs(d, 0) : undefined);
  const baseMs = ms(strategy.base_interval);
  if (baseMs === undefined || baseMs <= 0) {
    add(`${path}.retry_back_off.base_interval`, `must be a duration of at least 1ms, got ${baseMs === undefined ? 'nothing' : `${baseMs}ms`}`);
    return undefined;
  }
  const maxMs = ms(strategy.max_interval) ?? baseMs * 10;
  if (maxMs < baseMs) {
    add(`${path}.retry_back_off.max_interval`, `must be at least base_interval (${baseMs}ms), got ${maxMs}ms`);
    return undefined;
  }
  return { baseMs, maxMs };
}

function checkAdsConfigSource(source: envoy.config.core.v3.ConfigSource | undefined, path: string, add: Add): boolean {
  if (!source) return false;
  refuseOthers(source, SUPPORTED_ADS_CONFIG_SOURCE, path, add);
  if (!source.ads) add(`${path}.ads`, 'must be set ({}): Trellis takes LDS and CDS over ADS only');
  if (source.resource_api_version !== undefined && source.resource_api_version !== 'V3') add(`${path}.resource_api_version`, 'only V3 is supported');
  return source.ads !== undefined;
}
