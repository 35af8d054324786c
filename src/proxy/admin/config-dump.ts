// /config_dump: what the proxy has applied, in Envoy's envoy.admin.v3.ConfigDump shape (Bootstrap, Clusters, Listeners, Routes, Secrets, Endpoints).
import { packAny } from '../../xds/codec.js';
import type { envoy, google } from '../../xds/generated/types.js';
import { toProtoJson } from '../../xds/proto-json.js';


/** One applied resource: static ones (from the bootstrap) have no version. */
export interface AppliedResource<T> {
  readonly name: string;
  readonly resource: T;
  /** The xDS version_info it came with; undefined for static resources. */
  readonly versionInfo?: string;
  readonly lastUpdated: Date;
}

/** The last refusal of a dynamic resource (NACK), shown as error_state. */
export interface ResourceError {
  readonly name: string;
  readonly details: string;
  readonly versionInfo: string;
  readonly time: Date;
}

export interface ConfigDumpInput {
  readonly bootstrap: envoy.config.bootstrap.v3.Bootstrap;
  readonly bootstrapLoaded: Date;
  readonly clusters: readonly AppliedResource<envoy.config.cluster.v3.Cluster>[];
  readonly clustersVersion: string;
  readonly clusterErrors: readonly ResourceError[];
  readonly listeners: readonly AppliedResource<envoy.config.listener.v3.Listener>[];
  readonly listenersVersion: string;
  readonly listenerErrors: readonly ResourceError[];
  /** Static: inline route_config of HCMs; dynamic: RDS. */
  readonly routes: readonly AppliedResource<envoy.config.route.v3.RouteConfiguration>[];
  readonly routeErrors: readonly ResourceError[];
  /** Static: clusters' load_assignment; dynamic: EDS. */
  readonly endpoints: readonly AppliedResource<envoy.config.endpoint.v3.ClusterLoadAssignment>[];
  readonly secrets: readonly AppliedResource<envoy.extensions.transport_sockets.tls.v3.Secret>[];
}

export interface ConfigDumpOptions {
  /** Envoy's ?include_eds: EndpointsConfigDump is left out otherwise. */
  readonly includeEds?: boolean;
  /** Envoy's ?resource=: only the entries of this repeated field (dynamic_active_clusters, static_listeners, …). */
  readonly resource?: string;
}

const TYPE = {
  listener: 'envoy.config.listener.v3.Listener',
  cluster: 'envoy.config.cluster.v3.Cluster',
  route: 'envoy.config.route.v3.RouteConfiguration',
  endpoints: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

function timestamp(date: Date): google.protobuf.Timestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function errorState(errors: readonly ResourceError[], name: string): envoy.admin.v3.UpdateFailureState | undefined {
  const error = errors.find((e) => e.name === name);
  return error ? { details: error.details, version_info: error.versionInfo, last_update_attempt: timestamp(error.time) } : undefined;
}

/** Builds the ConfigDump message (decoded-object shape) in Envoy's order. */
export function buildConfigDump(input: ConfigDumpInput, options: ConfigDumpOptions = {}): envoy.admin.v3.ConfigDump {
  const isStatic = <T>(r: AppliedResource<T>): boolean => r.versionInfo === undefined;
  const isDynamic = <T>(r: AppliedResource<T>): boolean => r.versionInfo !== undefined;

  const bootstrap: envoy.admin.v3.BootstrapConfigDump = { bootstrap: input.bootstrap, last_updated: timestamp(input.bootstrapLoaded) };

  const clusters: envoy.admin.v3.ClustersConfigDump = {
    version_info: input.clustersVersion,
    static_clusters: input.clusters.filter(isStatic).map((c) => ({ cluster: packAny(TYPE.cluster, c.resource), last_updated: timestamp(c.lastUpdated) })),
    dynamic_active_clusters: input.clusters.filter(isDynamic).map((c) => {
      const error = errorState(input.clusterErrors, c.name);
      return { version_info: c.versionInfo, cluster: packAny(TYPE.cluster, c.resource), last_updated: timestamp(c.lastUpdated), ...(error ? { error_state: error } : {}) };
    }),
  };

  const listenerNames = new Set(input.listeners.map((l) => l.name));
  const listeners: envoy.admin.v3.ListenersConfigDump = {
    version_info: input.listenersVersion,
    static_listeners: input.listeners.filter(isStatic).map((l) => ({ listener: packAny(TYPE.listener, l.resource), last_updated: timestamp(l.lastUpdated) })),
    dynamic_listeners: [
      ...input.listeners.filter(isDynamic).map((l) => {
        const error = errorState(input.listenerErrors, l.name);
        return {
          name: l.name,
          active_state: { version_info: l.versionInfo, listener: packAny(TYPE.listener, l.resource), last_updated: timestamp(l.lastUpdated) },
          ...(error ? { error_state: error } : {}),
        };
      }),
      // A listener refused before any version of it was accepted shows only its error, as in Envoy.
      ...input.listenerErrors.filter((e) => !listenerNames.has(e.name)).map((e) => ({ name: e.name, error_state: errorState(input.listenerErrors, e.name) })),
    ],
  };

  const routes: envoy.admin.v3.RoutesConfigDump = {
    static_route_configs: input.routes.filter(isStatic).map((r) => ({ route_config: packAny(TYPE.route, r.resource), last_updated: timestamp(r.lastUpdated) })),
    dynamic_route_configs: input.routes.filter(isDynamic).map((r) => {
      const error = errorState(input.routeErrors, r.name);
      return { version_info: r.versionInfo, route_config: packAny(TYPE.route, r.resource), last_updated: timestamp(r.lastUpdated), ...(error ? { error_state: error } : {}) };
    }),
  };

  const secrets: envoy.admin.v3.SecretsConfigDump = {
    static_secrets: input.secrets.filter(isStatic).map((s) => ({ name: s.name, secret: packAny(TYPE.secret, redactSecret(s.resource)), last_updated: timestamp(s.lastUpdated) })),
    dynamic_active_secrets: input.secrets.filter(isDynamic).map((s) => ({
      name: s.name,
      version_info: s.versionInfo,
      secret: packAny(TYPE.secret, redactSecret(s.resource)),
      last_updated: timestamp(s.lastUpdated),
    })),
  };

  const configs: google.protobuf.Any[] = [
    packAny('envoy.admin.v3.BootstrapConfigDump', bootstrap),
    packAny('envoy.admin.v3.ClustersConfigDump', clusters),
  ];
  if (options.includeEds) {
    const endpoints: envoy.admin.v3.EndpointsConfigDump = {
      static_endpoint_configs: input.endpoints.filter(isStatic).map((e) => ({ endpoint_config: packAny(TYPE.endpoints, e.resource), last_updated: timestamp(e.lastUpdated) })),
      dynamic_endpoint_configs: input.endpoints.filter(isDynamic).map((e) => ({ version_info: e.versionInfo, endpoint_config: packAny(TYPE.endpoints, e.resource), last_updated: timestamp(e.lastUpdated) })),
    };
    configs.push(packAny('envoy.admin.v3.EndpointsConfigDump', endpoints));
  }
  configs.push(packAny('envoy.admin.v3.ListenersConfigDump', listeners), packAny('envoy.admin.v3.RoutesConfigDump', routes), packAny('envoy.admin.v3.SecretsConfigDump', secrets));
  return { configs };
}

/** Private keys never leave the proxy through the admin API; Envoy prints "[redacted]" too. */
function redactSecret(secret: envoy.extensions.transport_sockets.tls.v3.Secret): envoy.extensions.transport_sockets.tls.v3.Secret {
  const certificate = secret.tls_certificate;
  if (!certificate?.private_key) return secret;
  return { ...secret, tls_certificate: { ...certificate, private_key: { inline_string: '[redacted]' } } };
}

/** The /config_dump body: Envoy's JSON, optionally narrowed to one repeated field (?resource=). */
export function configDumpJson(input: ConfigDumpInput, options: ConfigDumpOptions = {}): Record<string, unknown> {
  const json = toProtoJson('envoy.admin.v3.ConfigDump', buildConfigDump(input, options));
  if (!options.resource) return json;
  const configs: unknown[] = [];
  for (const config of (json.configs as Record<string, unknown>[] | undefined) ?? []) {
    const entries = config[options.resource];
    if (!Array.isArray(entries)) continue;
    const typeUrl = String(config['@type']).replace(/ConfigDump$/, `ConfigDump.${entryType(options.resource)}`);
    for (const entry of entries) configs.push({ '@type': typeUrl, ...(entry as Record<string, unknown>) });
  }
  return { configs };
}

function entryType(field: string): string {
  const known: Record<string, string> = {
    static_clusters: 'StaticCluster',
    dynamic_active_clusters: 'DynamicCluster',
    dynamic_warming_clusters: 'DynamicCluster',
    static_listeners: 'StaticListener',
    dynamic_listeners: 'DynamicListener',
    static_route_configs: 'StaticRouteConfig',
    dynamic_route_configs: 'DynamicRouteConfig',
    static_secrets: 'StaticSecret',
    dynamic_active_secrets: 'DynamicSecret',
    static_endpoint_configs: 'StaticEndpointConfig',
    dynamic_endpoint_configs: 'DynamicEndpointConfig',
  };
  return known[field] ?? field;
}
