// RDS: envoy.config.route.v3.RouteConfiguration, validated for what Trellis's router relies on.
import type { envoy } from '../../generated/types.js';
import { ROUTE_CONFIGURATION } from '../../type-urls.js';
import { EnvoyResourceType, type Problems } from '../envoy-resource-type.js';

export type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

const PATH_SPECIFIERS = ['prefix', 'path', 'safe_regex', 'connect_matcher', 'path_separated_prefix', 'path_match_policy'] as const;
const ACTIONS = ['route', 'redirect', 'direct_response', 'filter_action', 'non_forwarding_action'] as const;

export class RouteConfigurationResourceType extends EnvoyResourceType<RouteConfiguration> {
  readonly typeUrl = ROUTE_CONFIGURATION;
  readonly allResourcesRequiredInSotW = false;

  protected validate(config: RouteConfiguration, problems: Problems): void {
    const hostNames = new Set<string>();
    const domains = new Map<string, string>();
    (config.virtual_hosts ?? []).forEach((host, i) => {
      const at = `virtual_hosts[${i}]`;
      if (!host.name) problems.add(`${at}.name`, 'must not be empty');
      else if (hostNames.has(host.name)) problems.add(`${at}.name`, `"${host.name}" is used by another virtual host`);
      else hostNames.add(host.name);
      if ((host.domains ?? []).length === 0) problems.add(`${at}.domains`, 'must list at least one domain');
      for (const domain of host.domains ?? []) {
        // Envoy refuses a domain served by two virtual hosts of one route configuration.
        const owner = domains.get(domain.toLowerCase());
        if (owner !== undefined) problems.add(`${at}.domains`, `"${domain}" is already served by virtual host "${owner}"`);
        else domains.set(domain.toLowerCase(), host.name ?? '');
      }
      (host.routes ?? []).forEach((route, j) => {
        const routeAt = `${at}.routes[${j}]`;
        if (!route.match) problems.add(`${routeAt}.match`, 'is required');
        else if (!PATH_SPECIFIERS.some((key) => route.match![key] !== undefined)) problems.add(`${routeAt}.match`, `one of ${PATH_SPECIFIERS.join(', ')} is required`);
        if (!ACTIONS.some((key) => route[key] !== undefined)) problems.add(routeAt, `one of ${ACTIONS.join(', ')} is required`);
        const action = route.route;
        if (action && action.cluster === undefined && action.weighted_clusters === undefined && action.cluster_header === undefined && action.cluster_specifier_plugin === undefined && action.inline_cluster_specifier_plugin === undefined) {
          problems.add(`${routeAt}.route`, 'one of cluster, weighted_clusters, cluster_header is required');
        }
        if (action?.cluster === '') problems.add(`${routeAt}.route.cluster`, 'must not be empty');
      });
    });
  }
}
