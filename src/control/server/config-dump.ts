// The config a proxy was given, as Envoy's admin ConfigDump JSON (`@type` on every message), read back from the SnapshotCache.
import { toJson, unpackAny } from '../../xds/codec.js';
import type { ResourceSource } from '../../xds/server/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, messageNameOf, ROUTE_CONFIGURATION, SECRET } from '../../xds/type-urls.js';

export interface ConfigDump {
  readonly configs: readonly Record<string, unknown>[];
}

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

// Envoy's per-type dump message and the field each resource goes in.
const SECTIONS: ReadonlyArray<{ typeUrl: string; dumpType: string; list: string; wrap: (name: string, version: string, json: Record<string, unknown>) => Record<string, unknown> }> = [
  { typeUrl: CLUSTER, dumpType: 'ClustersConfigDump', list: 'dynamic_active_clusters', wrap: (_n, v, json) => ({ version_info: v, cluster: json }) },
  { typeUrl: LISTENER, dumpType: 'ListenersConfigDump', list: 'dynamic_listeners', wrap: (n, v, json) => ({ name: n, active_state: { version_info: v, listener: json } }) },
  { typeUrl: ROUTE_CONFIGURATION, dumpType: 'RoutesConfigDump', list: 'dynamic_route_configs', wrap: (_n, v, json) => ({ version_info: v, route_config: json }) },
  { typeUrl: CLUSTER_LOAD_ASSIGNMENT, dumpType: 'EndpointsConfigDump', list: 'dynamic_endpoint_configs', wrap: (_n, v, json) => ({ version_info: v, endpoint_config: json }) },
  { typeUrl: SECRET, dumpType: 'SecretsConfigDump', list: 'dynamic_active_secrets', wrap: (n, v, json) => ({ name: n, version_info: v, secret: json }) },
];

/** The dump of one node key, or undefined when the source has nothing for it. */
export function configDump(source: ResourceSource, nodeKey: string): ConfigDump | undefined {
  const configs: Record<string, unknown>[] = [];
  let known = false;
  for (const section of SECTIONS) {
    const set = source.resources(nodeKey, section.typeUrl);
    if (!set) continue;
    known = true;
    const items: Record<string, unknown>[] = [];
    const names = [...set.resources.keys()].sort();
    for (const name of names) {
      const resource = set.resources.get(name)!;
      const json = { '@type': section.typeUrl, ...toJson(messageNameOf(section.typeUrl), unpackAny<object>(resource.any)) };
      items.push(section.wrap(name, resource.version, json));
    }
    configs.push({ '@type': ADMIN + section.dumpType, version_info: set.version, [section.list]: items });
  }
  return known ? { configs } : undefined;
}
