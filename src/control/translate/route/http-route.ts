// One VirtualService's http rules as Envoy routes for one listener port (Istio's BuildHTTPRoutesForVirtualService / translateRoute).
import type { Destination, HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, VirtualService } from '../../../api/index.js';
import { packAny, type Any } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import { clusterName, parseClusterName } from '../../model/cluster-name.js';
import { resolveHostname } from '../../model/hostname.js';
import type { MeshConfig } from '../../model/mesh-config.js';
import type { Proxy } from '../../model/proxy.js';
import type { Service } from '../../model/service.js';
import { CORS_FILTER, CORS_POLICY_MESSAGE, FAULT_FILTER, FAULT_MESSAGE } from '../common/envoy-filter-names.js';
import { durationFromIstio, integerPercentToFractional, isZeroDuration, noTimeout, percentToFractional } from '../common/route-duration.js';
import { resolveGatewayName, type ServiceLookup } from '../common/service-lookup.js';
import { translateCorsPolicy } from './cors-policy.js';
import { translateFault } from './fault-injection.js';
import { translateHeaderOperations } from './header-operations.js';
import { translateRetryPolicy } from './retry-policy.js';
import { isCatchAllRoute, translateRouteMatch } from './route-match.js';

export type Route = envoy.config.route.v3.Route;
type RouteAction = envoy.config.route.v3.RouteAction;
type RuntimeFractionalPercent = envoy.config.core.v3.RuntimeFractionalPercent;
type RequestMirrorPolicy = envoy.config.route.v3.RouteAction.RequestMirrorPolicy;
type ClusterWeight = envoy.config.route.v3.WeightedCluster.ClusterWeight;
type RedirectResponseCode = envoy.config.route.v3.RedirectAction.RedirectResponseCode;

/** Istio's name for the route generated when no VirtualService applies. */
export const DEFAULT_ROUTE_NAME = 'default';

export interface HttpRouteOptions {
  proxy: Proxy;
  mesh: MeshConfig;
  /** The port of the listener (and route configuration) being built. */
  listenPort: number;
  /** Gateway names this configuration is for: `{mesh}` for sidecars, `{ns/name, …}` for a gateway's port. */
  gatewayNames: ReadonlySet<string>;
  services: ServiceLookup;
  /** A TLS-terminating gateway server: redirects default to https. */
  isTls?: boolean;
}

/** Istio's setTimeout: the VirtualService timeout or 0s (disabled), mirrored into max_grpc_timeout. */
export function setRouteTimeout(action: RouteAction, timeout: string | undefined): void {
  action.timeout = durationFromIstio(timeout) ?? noTimeout();
  action.max_grpc_timeout = isZeroDuration(action.timeout) ? noTimeout() : { ...action.timeout };
}

/**
 * Istio's GetDestinationCluster: `outbound|port|subset|host`, the port being the destination's, else the service's only
 * port, else the listener port.
 */
export function destinationCluster(destination: Destination, hostname: string, service: Service | undefined, listenPort: number): string {
  let port = listenPort;
  if (destination.port?.number !== undefined) port = destination.port.number;
  else if (service && service.ports.length === 1) port = service.ports[0]!.number;
  return clusterName('outbound', port, destination.subset ?? '', hostname);
}

/** Istio's GetRouteOperation: `host:port/path*` for a single cluster, else `vsName:listenPort/path*`. */
export function routeOperation(route: Route, vsName: string, listenPort: number): string {
  const m = route.match;
  let path = '/*';
  if (m?.prefix !== undefined) path = `${m.prefix}*`;
  else if (m?.path !== undefined) path = m.path;
  else if (m?.safe_regex !== undefined) path = m.safe_regex.regex ?? '';
  const parsed = route.route?.cluster !== undefined ? parseClusterName(route.route.cluster) : undefined;
  if (parsed) return `${parsed.hostname}:${parsed.port}${path}`;
  return `${vsName}:${listenPort}${path}`;
}

/** Istio's sourceMatchHTTP: match gateways against the ones being built for, else sourceLabels/sourceNamespace against the proxy. */
function sourceMatches(match: HTTPMatchRequest | undefined, vsNamespace: string, options: HttpRouteOptions): boolean {
  if (!match) return true;
  if (match.gateways && match.gateways.length > 0) {
    return match.gateways.some((g) => options.gatewayNames.has(resolveGatewayName(g, vsNamespace)));
  }
  const labels = options.proxy.labels;
  for (const [key, value] of Object.entries(match.sourceLabels ?? {})) if (labels[key] !== value) return false;
  return match.sourceNamespace === undefined || match.sourceNamespace === '' || match.sourceNamespace === options.proxy.namespace;
}

function mirrorPercent(http: HTTPRoute): RuntimeFractionalPercent | undefined {
  if (http.mirrorPercentage !== undefined) {
    const value = http.mirrorPercentage.value ?? 0;
    return value > 0 ? { default_value: percentToFractional(value) } : undefined;
  }
  if (http.mirrorPercent !== undefined) {
    return http.mirrorPercent > 0 ? { default_value: integerPercentToFractional(http.mirrorPercent) } : undefined;
  }
  return { default_value: integerPercentToFractional(100) };
}

function configMetadata(vs: VirtualService): envoy.config.core.v3.Metadata {
  const path = `/apis/${vs.apiVersion}/namespaces/${vs.metadata.namespace}/virtual-service/${vs.metadata.name}`;
  return { filter_metadata: { istio: { fields: { config: { string_value: path } } } } };
}

const REDIRECT_CODES: Readonly<Record<number, RedirectResponseCode>> = {
  0: 'MOVED_PERMANENTLY',
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

function applyRedirect(out: Route, http: HTTPRoute, options: HttpRouteOptions): boolean {
  const redirect = http.redirect!;
  const responseCode = REDIRECT_CODES[redirect.redirectCode ?? 0];
  if (responseCode === undefined) return false;
  const action: envoy.config.route.v3.RedirectAction = {};
  if (redirect.authority) action.host_redirect = redirect.authority;
  if (redirect.uri) action.path_redirect = redirect.uri;
  if (redirect.scheme) action.scheme_redirect = redirect.scheme;
  if (redirect.port !== undefined || redirect.derivePort !== undefined) {
    let port = 0;
    if (redirect.port !== undefined) port = redirect.port;
    else if (redirect.derivePort === 'FROM_REQUEST_PORT') port = options.listenPort;
    const scheme = redirect.scheme || (options.isTls ? 'https' : 'http');
    // No explicit :80 for http or :443 for https.
    if ((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https')) port = 0;
    if (port !== 0) action.port_redirect = port;
  }
  action.response_code = responseCode;
  out.redirect = action;
  return true;
}

function applyDestinations(out: Route, vs: VirtualService, http: HTTPRoute, authorityFromHeaders: string, options: HttpRouteOptions): boolean {
  const destinations = http.route ?? [];
  if (destinations.length === 0) return false;
  const namespace = vs.metadata.namespace;
  const suffix = options.mesh.domainSuffix;
  const action: RouteAction = {};
  setRouteTimeout(action, http.timeout);

  let authority = authorityFromHeaders;
  if (http.rewrite) {
    const regex = http.rewrite.uriRegexRewrite;
    if (regex) action.regex_rewrite = { pattern: { regex: regex.match ?? '' }, substitution: regex.rewrite ?? '' };
    else if (http.rewrite.uri) action.prefix_rewrite = http.rewrite.uri;
    if (http.rewrite.authority) authority = http.rewrite.authority;
  }
  if (authority !== '') action.host_rewrite_literal = authority;

  const mirrors: RequestMirrorPolicy[] = [];
  const mirrorTo = (destination: Destination, fraction: RuntimeFractionalPercent): void => {
    const host = resolveHostname(destination.host, namespace, suffix);
    mirrors.push({
      cluster: destinationCluster(destination, host, options.services(host), options.listenPort),
      runtime_fraction: fraction,
      trace_sampled: { value: false },
    });
  };
  if (http.mirror) {
    const fraction = mirrorPercent(http);
    if (fraction) mirrorTo(http.mirror, fraction);
  }
  for (const mirror of http.mirrors ?? []) {
    const value = mirror.percentage?.value;
    if (value !== undefined && value <= 0) continue;
    mirrorTo(mirror.destination, { default_value: value !== undefined ? percentToFractional(value) : integerPercentToFractional(100) });
  }
  if (mirrors.length > 0) action.request_mirror_policies = mirrors;

  const clusterOf = (dst: HTTPRouteDestination): string => {
    const host = resolveHostname(dst.destination.host, namespace, suffix);
    return destinationCluster(dst.destination, host, options.services(host), options.listenPort);
  };
  if (destinations.length === 1) {
    const dst = destinations[0]!;
    action.cluster = clusterOf(dst);
    if (dst.headers) {
      const ops = translateHeaderOperations(dst.headers);
      appendAll(out, 'request_headers_to_add', ops.requestHeadersToAdd);
      appendAll(out, 'request_headers_to_remove', ops.requestHeadersToRemove);
      appendAll(out, 'response_headers_to_add', ops.responseHeadersToAdd);
      appendAll(out, 'response_headers_to_remove', ops.responseHeadersToRemove);
      if (ops.authority !== '' && action.host_rewrite_literal === undefined) action.host_rewrite_literal = ops.authority;
    }
  } else {
    const clusters: ClusterWeight[] = [];
    for (const dst of destinations) {
      // Zero-weight destinations are left out when there are others.
      if ((dst.weight ?? 0) === 0) continue;
      const weight: ClusterWeight = { name: clusterOf(dst), weight: { value: dst.weight! } };
      if (dst.headers) {
        const ops = translateHeaderOperations(dst.headers);
        if (ops.requestHeadersToAdd.length > 0) weight.request_headers_to_add = ops.requestHeadersToAdd;
        if (ops.requestHeadersToRemove.length > 0) weight.request_headers_to_remove = ops.requestHeadersToRemove;
        if (ops.responseHeadersToAdd.length > 0) weight.response_headers_to_add = ops.responseHeadersToAdd;
        if (ops.responseHeadersToRemove.length > 0) weight.response_headers_to_remove = ops.responseHeadersToRemove;
        if (ops.authority !== '') weight.host_rewrite_literal = ops.authority;
      }
      clusters.push(weight);
    }
    if (clusters.length === 0) return false;
    action.weighted_clusters = { clusters };
  }
  const retry = translateRetryPolicy(http.retries, options.mesh.defaultRetryAttempts);
  if (retry) action.retry_policy = retry;
  out.route = action;
  return true;
}

type ListKey = 'request_headers_to_add' | 'request_headers_to_remove' | 'response_headers_to_add' | 'response_headers_to_remove';
function appendAll<K extends ListKey>(route: Route, key: K, items: NonNullable<Route[K]>): void {
  if (items.length === 0) return;
  route[key] = [...((route[key] ?? []) as NonNullable<Route[K]>), ...items] as Route[K];
}

/** Istio's translateRoute for one http rule and one of its matches (or none); undefined when the match does not apply here. */
function translateRoute(vs: VirtualService, http: HTTPRoute, match: HTTPMatchRequest | undefined, options: HttpRouteOptions): Route | undefined {
  // A match for another port, or for other sources/gateways, is dropped at generation.
  if (match?.port !== undefined && match.port !== 0 && match.port !== options.listenPort) return undefined;
  if (!sourceMatches(match, vs.metadata.namespace, options)) return undefined;

  let name = http.name ?? '';
  if (match?.name) name = `${name}.${match.name}`;
  const out: Route = {};
  if (name !== '') out.name = name;
  out.match = translateRouteMatch(match);
  out.metadata = configMetadata(vs);
  if (match?.statPrefix) out.stat_prefix = match.statPrefix;

  let authority = '';
  if (http.headers) {
    const ops = translateHeaderOperations(http.headers);
    appendAll(out, 'request_headers_to_add', ops.requestHeadersToAdd);
    appendAll(out, 'response_headers_to_add', ops.responseHeadersToAdd);
    appendAll(out, 'request_headers_to_remove', ops.requestHeadersToRemove);
    appendAll(out, 'response_headers_to_remove', ops.responseHeadersToRemove);
    authority = ops.authority;
  }

  if (http.redirect) {
    if (!applyRedirect(out, http, options)) return undefined;
  } else if (http.directResponse) {
    const direct: envoy.config.route.v3.DirectResponseAction = { status: http.directResponse.status };
    const body = http.directResponse.body;
    if (body?.string !== undefined) direct.body = { inline_string: body.string };
    else if (body?.bytes !== undefined) direct.body = { inline_bytes: new Uint8Array(Buffer.from(body.bytes, 'base64')) };
    out.direct_response = direct;
  } else if (!applyDestinations(out, vs, http, authority, options)) {
    return undefined;
  }

  out.decorator = { operation: routeOperation(out, vs.metadata.name, options.listenPort) };
  const perFilter: Record<string, Any> = {};
  if (http.fault) {
    const fault = translateFault(http.fault);
    if (fault) perFilter[FAULT_FILTER] = packAny(FAULT_MESSAGE, fault);
  }
  if (http.corsPolicy) perFilter[CORS_FILTER] = packAny(CORS_POLICY_MESSAGE, translateCorsPolicy(http.corsPolicy));
  if (Object.keys(perFilter).length > 0) out.typed_per_filter_config = perFilter;
  return out;
}

/**
 * Istio's BuildHTTPRoutesForVirtualService: rule by rule, match by match, in order; generation stops after the first
 * catch-all route since Envoy would never get past it. Empty when nothing applies to this port/proxy/gateway (the
 * caller then falls back to the default route).
 */
export function buildHttpRoutesForVirtualService(vs: VirtualService, options: HttpRouteOptions): Route[] {
  const out: Route[] = [];
  for (const http of vs.spec.http ?? []) {
    let catchAll = false;
    if (!http.match || http.match.length === 0) {
      const route = translateRoute(vs, http, undefined, options);
      if (route) out.push(route);
      catchAll = true;
    } else {
      for (const match of http.match) {
        const route = translateRoute(vs, http, match, options);
        if (!route) continue;
        out.push(route);
        if (isCatchAllRoute(route)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}

/**
 * Istio's BuildDefaultHTTPOutboundRoute: prefix `/` to the cluster, timeout disabled, the mesh's default retry policy,
 * decorator `host:port/*`.
 */
export function buildDefaultOutboundRoute(cluster: string, operation: string, mesh: MeshConfig): Route {
  const action: RouteAction = { cluster };
  setRouteTimeout(action, undefined);
  const retry = translateRetryPolicy(undefined, mesh.defaultRetryAttempts);
  if (retry) action.retry_policy = retry;
  return { name: DEFAULT_ROUTE_NAME, match: { prefix: '/' }, route: action, decorator: { operation } };
}

/** Istio's BuildDefaultHTTPInboundRoute: prefix `/` to the inbound cluster, no timeout, no retries. */
export function buildDefaultInboundRoute(cluster: string, operation: string): Route {
  return {
    name: DEFAULT_ROUTE_NAME,
    match: { prefix: '/' },
    route: {
      cluster,
      timeout: noTimeout(),
      max_stream_duration: { max_stream_duration: noTimeout(), grpc_timeout_header_max: noTimeout() },
    },
    decorator: { operation },
  };
}
