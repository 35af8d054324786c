// compileRouteConfiguration: an Envoy RouteConfiguration (RDS or inline) validated and compiled into the RouteTable the router matches against; anything unsupported is refused with its field path.
import type { HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, durationMs, fieldPath, fractionOf, rejectUnsupportedFields } from './config-problems.js';
import { chainHeaderMutations, compileHeaderMutation } from './header-mutation.js';
import { compileHashPolicies } from './hash-policy.js';
import { compilePathRewrite, type PathRewriter } from './path-rewrite.js';
import { compilePerFilterConfig, mergePerFilterConfig, type PerFilterConfigCallback } from './per-filter-config.js';
import { compileRedirect } from './redirect.js';
import { compileRetryPolicy } from './retry-policy.js';
import { compileRouteMatch, pathEnd, type CompiledRouteMatch } from './route-matcher.js';
import type {
  ClusterRouteAction,
  CompiledHeaderMutation,
  CompiledMaxStreamDuration,
  CompiledMirrorPolicy,
  CompiledRetryPolicy,
  DirectResponseRouteAction,
  RouteAction,
  RouteEntry,
  RouteTable,
  VirtualHostEntry,
} from './route-table.js';
import { asciiLower } from './string-matcher.js';
import { VirtualHostIndex } from './virtual-host-index.js';
import { clusterFromHeader, compileWeightedClusters, fixedCluster, type ClusterPicker } from './weighted-clusters.js';

type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type VirtualHost = envoy.config.route.v3.VirtualHost;
type Route = envoy.config.route.v3.Route;
type EnvoyRouteAction = envoy.config.route.v3.RouteAction;
type MirrorPolicy = envoy.config.route.v3.RouteAction.RequestMirrorPolicy;

export interface CompileRouteOptions {
  /** Compiles typed_per_filter_config entries by delegating to the HTTP filter factories (see PerFilterConfigCallback). */
  perFilterConfig?: PerFilterConfigCallback;
  /**
   * The cluster manager's view, for `validate_clusters: true`: unknown clusters are then refused. Without it, a
   * configuration asking for validation is refused (the check cannot be made).
   */
  clusterExists?: (name: string) => boolean;
}

/** Envoy's default route timeout. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
/** Envoy's default max_direct_response_body_size_bytes. */
export const DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES = 4096;

const CONFIG_FIELDS = new Set([
  'name',
  'virtual_hosts',
  'response_headers_to_add',
  'response_headers_to_remove',
  'request_headers_to_add',
  'request_headers_to_remove',
  'most_specific_header_mutations_wins',
  'validate_clusters',
  'max_direct_response_body_size_bytes',
  'request_mirror_policies',
  'ignore_port_in_host_matching',
  'ignore_path_parameters_in_path_matching',
  'typed_per_filter_config',
  // Opaque to routing; kept for filters and config dumps.
  'metadata',
]);
const VHOST_FIELDS = new Set([
  'name',
  'domains',
  'routes',
  'require_tls',
  'request_headers_to_add',
  'request_headers_to_remove',
  'response_headers_to_add',
  'response_headers_to_remove',
  'typed_per_filter_config',
  'include_request_attempt_count',
  'include_attempt_count_in_response',
  'retry_policy',
  'request_mirror_policies',
  'per_request_buffer_limit_bytes',
  'metadata',
]);
const ROUTE_FIELDS = new Set([
  'name',
  'match',
  'route',
  'redirect',
  'direct_response',
  'metadata',
  'decorator',
  'typed_per_filter_config',
  'request_headers_to_add',
  'request_headers_to_remove',
  'response_headers_to_add',
  'response_headers_to_remove',
  'stat_prefix',
  'per_request_buffer_limit_bytes',
]);
const ACTION_FIELDS = new Set([
  'cluster',
  'cluster_header',
  'weighted_clusters',
  'cluster_not_found_response_code',
  'prefix_rewrite',
  'regex_rewrite',
  'host_rewrite_literal',
  'auto_host_rewrite',
  'host_rewrite_header',
  'timeout',
  'idle_timeout',
  'retry_policy',
  'request_mirror_policies',
  'priority',
  'hash_policy',
  'max_grpc_timeout',
  'grpc_timeout_offset',
  'upgrade_configs',
  'max_stream_duration',
  'internal_redirect_action',
  'include_vh_rate_limits',
]);
const MIRROR_FIELDS = new Set(['cluster', 'runtime_fraction', 'trace_sampled', 'disable_shadow_host_suffix_append']);

const CLUSTER_NOT_FOUND_STATUS: Readonly<Record<string, number>> = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 };
const REQUIRE_TLS: readonly VirtualHostEntry['requireTls'][] = ['NONE', 'EXTERNAL_ONLY', 'ALL'];

/** Shared state while compiling one RouteConfiguration. */
interface Context {
  readonly problems: ConfigProblems;
  readonly options: CompileRouteOptions;
  readonly ignorePathParameters: boolean;
  readonly maxDirectResponseBody: number;
  /** Clusters named by routes and mirrors, for validate_clusters, with the path that named them. */
  readonly clusters: Array<{ name: string; path: string }>;
}

interface CompiledVirtualHost {
  readonly entry: VirtualHostEntry;
  readonly matchers: readonly CompiledRouteMatch[];
  readonly routes: readonly RouteEntry[];
}

/** A BoolValue wrapper: false decodes as {} (proto3 omits defaults), so only an explicit true is true. */
function boolValue(wrapper: { value?: boolean } | undefined | null, fallback: boolean): boolean {
  return wrapper === undefined || wrapper === null ? fallback : wrapper.value === true;
}

function compileMirrors(list: readonly MirrorPolicy[] | undefined, path: string, ctx: Context): CompiledMirrorPolicy[] {
  const out: CompiledMirrorPolicy[] = [];
  (list ?? []).forEach((m, i) => {
    const p = `${path}[${i}]`;
    rejectUnsupportedFields(m, MIRROR_FIELDS, p, ctx.problems);
    if (m.cluster_header) return; // reported above as not supported
    const cluster = m.cluster ?? '';
    if (cluster === '') {
      ctx.problems.add(fieldPath(p, 'cluster'), 'must not be empty');
      return;
    }
    ctx.clusters.push({ name: cluster, path: fieldPath(p, 'cluster') });
    let fraction = 1;
    if (m.runtime_fraction !== undefined && m.runtime_fraction !== null) {
      rejectUnsupportedFields(m.runtime_fraction, new Set(['default_value', 'runtime_key']), fieldPath(p, 'runtime_fraction'), ctx.problems);
      fraction = fractionOf(m.runtime_fraction.default_value ?? {}, fieldPath(p, 'runtime_fraction.default_value'), ctx.problems);
    }
    out.push({ cluster, fraction, ...(m.disable_shadow_host_suffix_append === true ? { disableShadowHostSuffixAppend: true } : {}) });
  });
  return out;
}

function compileDirectResponse(route: Route, path: string, ctx: Context): DirectResponseRouteAction | undefined {
  const d = route.direct_response!;
  const before = ctx.problems.details.length;
  rejectUnsupportedFields(d, new Set(['status', 'body']), path, ctx.problems);
  const status = Number(d.status ?? 0);
  if (!Number.isInteger(status) || status < 100 || status > 599) ctx.problems.add(fieldPath(path, 'status'), `must be an HTTP status in [100, 599] (got ${d.status ?? 'none'})`);
  let body = '';
  if (d.body) {
    const bp = fieldPath(path, 'body');
    rejectUnsupportedFields(d.body, new Set(['inline_string', 'inline_bytes']), bp, ctx.problems);
    if (d.body.inline_string !== undefined && d.body.inline_bytes !== undefined) ctx.problems.add(bp, 'only one of inline_string, inline_bytes may be set');
    else if (d.body.inline_bytes !== undefined) body = Buffer.from(d.body.inline_bytes).toString('utf8');
    else body = d.body.inline_string ?? '';
    const size = Buffer.byteLength(body);
    if (size > ctx.maxDirectResponseBody) ctx.problems.add(bp, `response body size is ${size} bytes; maximum is ${ctx.maxDirectResponseBody}`);
  }
  if (ctx.problems.details.length > before) return undefined;
  return { kind: 'direct_response', status, body };
}

function noRewrite(): void {}

function compileClusterAction(
  action: EnvoyRouteAction,
  match: CompiledRouteMatch,
  path: string,
  ctx: Context,
  vhostRetry: CompiledRetryPolicy | undefined,
  inheritedMirrors: readonly CompiledMirrorPolicy[],
): ClusterRouteAction | undefined {
  const { problems } = ctx;
  const before = problems.details.length;
  rejectUnsupportedFields(action, ACTION_FIELDS, path, problems);

  const specifiers = (['cluster', 'cluster_header', 'weighted_clusters'] as const).filter((k) => action[k] !== undefined && action[k] !== '');
  let picker: ClusterPicker | undefined;
  if (specifiers.length !== 1) {
    problems.add(path, specifiers.length === 0 ? 'one of cluster, cluster_header, weighted_clusters is required' : `only one of cluster, cluster_header, weighted_clusters may be set (got ${specifiers.join(', ')})`);
  } else if (action.cluster) {
    ctx.clusters.push({ name: action.cluster, path: fieldPath(path, 'cluster') });
    picker = fixedCluster(action.cluster);
  } else if (action.cluster_header) {
    picker = clusterFromHeader(asciiLower(action.cluster_header));
  } else {
    const wp = fieldPath(path, 'weighted_clusters');
    picker = compileWeightedClusters(action.weighted_clusters!, wp, problems, (configs, p) => compilePerFilterConfig(configs, p, ctx.options.perFilterConfig, problems));
    (action.weighted_clusters!.clusters ?? []).forEach((c, i) => {
      if (c.name) ctx.clusters.push({ name: c.name, path: `${wp}.clusters[${i}].name` });
    });
  }

  const notFound = action.cluster_not_found_response_code ?? 'SERVICE_UNAVAILABLE';
  const clusterNotFoundStatus = typeof notFound === 'number' ? [503, 404, 500][notFound] : CLUSTER_NOT_FOUND_STATUS[notFound];
  if (clusterNotFoundStatus === undefined) problems.add(fieldPath(path, 'cluster_not_found_response_code'), `unknown code ${String(notFound)}`);

  const rewriter: PathRewriter | undefined = compilePathRewrite(action.prefix_rewrite, action.regex_rewrite, match, path, problems);
  const timeoutMs = durationMs(action.timeout, fieldPath(path, 'timeout'), problems) ?? DEFAULT_ROUTE_TIMEOUT_MS;
  const idleTimeoutMs = durationMs(action.idle_timeout, fieldPath(path, 'idle_timeout'), problems);
  const maxGrpcTimeoutMs = durationMs(action.max_grpc_timeout, fieldPath(path, 'max_grpc_timeout'), problems);
  const grpcTimeoutOffsetMs = durationMs(action.grpc_timeout_offset, fieldPath(path, 'grpc_timeout_offset'), problems);
  let maxStreamDuration: CompiledMaxStreamDuration | undefined;
  if (action.max_stream_duration) {
    const mp = fieldPath(path, 'max_stream_duration');
    rejectUnsupportedFields(action.max_stream_duration, new Set(['max_stream_duration', 'grpc_timeout_header_max', 'grpc_timeout_header_offset']), mp, problems);
    const max = durationMs(action.max_stream_duration.max_stream_duration, fieldPath(mp, 'max_stream_duration'), problems);
    const headerMax = durationMs(action.max_stream_duration.grpc_timeout_header_max, fieldPath(mp, 'grpc_timeout_header_max'), problems);
    const headerOffset = durationMs(action.max_stream_duration.grpc_timeout_header_offset, fieldPath(mp, 'grpc_timeout_header_offset'), problems);
    maxStreamDuration = {
      ...(max !== undefined ? { maxStreamDurationMs: max } : {}),
      ...(headerMax !== undefined ? { grpcTimeoutHeaderMaxMs: headerMax } : {}),
      ...(headerOffset !== undefined ? { grpcTimeoutHeaderOffsetMs: headerOffset } : {}),
    };
  }
  // Envoy: a route's retry policy replaces the virtual host's entirely (no field-by-field inheritance).
  const retryPolicy = action.retry_policy ? compileRetryPolicy(action.retry_policy, fieldPath(path, 'retry_policy'), problems) : vhostRetry;
  const hashPolicies = compileHashPolicies(action.hash_policy, fieldPath(path, 'hash_policy'), problems);
  const ownMirrors = compileMirrors(action.request_mirror_policies, fieldPath(path, 'request_mirror_policies'), ctx);
  const mirrorPolicies = (action.request_mirror_policies ?? []).length > 0 ? ownMirrors : inheritedMirrors;

  const priority = action.priority ?? 'DEFAULT';
  if (priority !== 'DEFAULT' && priority !== 0) problems.add(fieldPath(path, 'priority'), `routing priority ${String(priority)} is not supported by Trellis (only DEFAULT)`);
  const internalRedirect = action.internal_redirect_action ?? 'PASS_THROUGH_INTERNAL_REDIRECT';
  if (internalRedirect !== 'PASS_THROUGH_INTERNAL_REDIRECT' && internalRedirect !== 0) problems.add(fieldPath(path, 'internal_redirect_action'), 'internal redirects are not supported by Trellis');
  if (boolValue(action.include_vh_rate_limits, false)) problems.add(fieldPath(path, 'include_vh_rate_limits'), 'rate limits are not supported by Trellis');
  const autoHostRewrite = boolValue(action.auto_host_rewrite, false);
  const hostRewrites = [action.host_rewrite_literal ? 'host_rewrite_literal' : '', autoHostRewrite ? 'auto_host_rewrite' : '', action.host_rewrite_header ? 'host_rewrite_header' : ''].filter((s) => s !== '');
  if (hostRewrites.length > 1) problems.add(path, `only one of host_rewrite_literal, auto_host_rewrite, host_rewrite_header may be set (got ${hostRewrites.join(', ')})`);

  const upgrades = new Map<string, boolean>();
  (action.upgrade_configs ?? []).forEach((u, i) => {
    const up = `${fieldPath(path, 'upgrade_configs')}[${i}]`;
    rejectUnsupportedFields(u, new Set(['upgrade_type', 'enabled']), up, problems);
    const type = asciiLower(u.upgrade_type ?? '');
    if (type === '') problems.add(fieldPath(up, 'upgrade_type'), 'must not be empty');
    else if (upgrades.has(type)) problems.add(fieldPath(up, 'upgrade_type'), `duplicate upgrade ${type}`);
    else upgrades.set(type, boolValue(u.enabled, true));
  });
  if (problems.details.length > before || !picker) return undefined;

  const pick = picker;
  const rewrite = rewriter;
  return {
    kind: 'cluster',
    pickCluster: (headers, random) => pick.pick(headers, random)?.cluster,
    pickTarget: (headers, random) => pick.pick(headers, random),
    clusterNotFoundStatus: clusterNotFoundStatus!,
    rewritePath: rewrite
      ? (headers: HttpHeaders) => {
          const raw = headers[':path'];
          const current = typeof raw === 'string' ? raw : raw?.[0];
          if (current === undefined) return;
          const next = rewrite(current);
          if (next !== undefined) headers[':path'] = next;
        }
      : noRewrite,
    ...(action.host_rewrite_literal ? { hostRewrite: action.host_rewrite_literal } : {}),
    autoHostRewrite,
    ...(action.host_rewrite_header ? { hostRewriteHeader: asciiLower(action.host_rewrite_header) } : {}),
    timeoutMs,
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(maxGrpcTimeoutMs !== undefined ? { maxGrpcTimeoutMs } : {}),
    ...(grpcTimeoutOffsetMs !== undefined ? { grpcTimeoutOffsetMs } : {}),
    ...(maxStreamDuration ? { maxStreamDuration } : {}),
    ...(retryPolicy ? { retryPolicy } : {}),
    hashPolicies,
    mirrorPolicies,
    upgrades,
  };
}

interface Levels {
  readonly globalRequest: CompiledHeaderMutation;
  readonly globalResponse: CompiledHeaderMutation;
  readonly vhostRequest: CompiledHeaderMutation;
  readonly vhostResponse: CompiledHeaderMutation;
  readonly mostSpecificWins: boolean;
  readonly globalFilters: ReadonlyMap<string, unknown>;
  readonly vhostFilters: ReadonlyMap<string, unknown>;
  readonly vhostRetry?: CompiledRetryPolicy;
  readonly mirrors: readonly CompiledMirrorPolicy[];
}

const UNMATCHABLE: CompiledRouteMatch = { kind: 'prefix', matchedText: '', matches: () => false, matchesPath: () => false };

function compileRoute(route: Route, path: string, vhost: VirtualHostEntry, levels: Levels, ctx: Context): { match: CompiledRouteMatch; entry: RouteEntry } | undefined {
  const { problems } = ctx;
  const before = problems.details.length;
  rejectUnsupportedFields(route, ROUTE_FIELDS, path, problems);
  const match = compileRouteMatch(route.match, fieldPath(path, 'match'), problems, { ignorePathParameters: ctx.ignorePathParameters });
  const actions = (['route', 'redirect', 'direct_response'] as const).filter((k) => route[k] !== undefined && route[k] !== null);
  let action: RouteAction | undefined;
  if (actions.length !== 1) {
    if (actions.length > 1) problems.add(path, `only one of route, redirect, direct_response may be set (got ${actions.join(', ')})`);
    else if (!route.filter_action && !route.non_forwarding_action) problems.add(path, 'one of route, redirect, direct_response is required');
  } else {
    // With a broken match the action is still compiled, against a stand-in, so its problems are reported too.
    const m = match ?? UNMATCHABLE;
    if (route.route) action = compileClusterAction(route.route, m, fieldPath(path, 'route'), ctx, levels.vhostRetry, levels.mirrors);
    else if (route.redirect) action = compileRedirect(route.redirect, m, fieldPath(path, 'redirect'), problems);
    else action = compileDirectResponse(route, fieldPath(path, 'direct_response'), ctx);
  }
  const request = compileHeaderMutation(route.request_headers_to_add, route.request_headers_to_remove, fieldPath(path, 'request_headers_to_add'), fieldPath(path, 'request_headers_to_remove'), false, problems);
  const response = compileHeaderMutation(route.response_headers_to_add, route.response_headers_to_remove, fieldPath(path, 'response_headers_to_add'), fieldPath(path, 'response_headers_to_remove'), true, problems);
  const filters = compilePerFilterConfig(route.typed_per_filter_config, fieldPath(path, 'typed_per_filter_config'), ctx.options.perFilterConfig, problems);
  if (route.decorator) rejectUnsupportedFields(route.decorator, new Set(['operation', 'propagate']), fieldPath(path, 'decorator'), problems);
  if (problems.details.length > before || !match || !action) return undefined;

  // Envoy evaluates route, virtual host, then route configuration (the last one evaluated wins); most_specific_header_mutations_wins reverses it.
  const order = <T>(global: T, vh: T, own: T): T[] => (levels.mostSpecificWins ? [global, vh, own] : [own, vh, global]);
  const entry: RouteEntry = {
    name: route.name ?? '',
    virtualHost: vhost,
    action,
    requestHeaders: chainHeaderMutations(order(levels.globalRequest, levels.vhostRequest, request)),
    responseHeaders: chainHeaderMutations(order(levels.globalResponse, levels.vhostResponse, response)),
    perFilterConfig: mergePerFilterConfig([levels.globalFilters, levels.vhostFilters, filters]),
    ...(route.decorator?.operation ? { operation: route.decorator.operation } : {}),
    ...(route.stat_prefix ? { statPrefix: route.stat_prefix } : {}),
    ...(route.per_request_buffer_limit_bytes?.value !== undefined ? { perRequestBufferLimitBytes: route.per_request_buffer_limit_bytes.value } : {}),
  };
  return { match, entry };
}

function compileVirtualHost(
  vh: VirtualHost,
  path: string,
  ctx: Context,
  global: Pick<Levels, 'globalRequest' | 'globalResponse' | 'mostSpecificWins' | 'globalFilters' | 'mirrors'>,
): CompiledVirtualHost | undefined {
  const { problems } = ctx;
  const before = problems.details.length;
  rejectUnsupportedFields(vh, VHOST_FIELDS, path, problems);
  const name = vh.name ?? '';
  if (name === '') problems.add(fieldPath(path, 'name'), 'must not be empty');
  const requireTlsRaw = vh.require_tls ?? 'NONE';
  const requireTls = typeof requireTlsRaw === 'number' ? REQUIRE_TLS[requireTlsRaw] : REQUIRE_TLS.find((r) => r === requireTlsRaw);
  if (requireTls === undefined) problems.add(fieldPath(path, 'require_tls'), `unknown TLS requirement ${String(requireTlsRaw)}`);
  const retryPolicy = vh.retry_policy ? compileRetryPolicy(vh.retry_policy, fieldPath(path, 'retry_policy'), problems) : undefined;
  const entry: VirtualHostEntry = {
    name,
    requireTls: requireTls ?? 'NONE',
    ...(retryPolicy ? { retryPolicy } : {}),
    includeRequestAttemptCount: vh.include_request_attempt_count === true,
    includeAttemptCountInResponse: vh.include_attempt_count_in_response === true,
    ...(vh.per_request_buffer_limit_bytes?.value !== undefined ? { perRequestBufferLimitBytes: vh.per_request_buffer_limit_bytes.value } : {}),
  };
  const vhMirrors = compileMirrors(vh.request_mirror_policies, fieldPath(path, 'request_mirror_policies'), ctx);
  const levels: Levels = {
    ...global,
    vhostRequest: compileHeaderMutation(vh.request_headers_to_add, vh.request_headers_to_remove, fieldPath(path, 'request_headers_to_add'), fieldPath(path, 'request_headers_to_remove'), false, problems),
    vhostResponse: compileHeaderMutation(vh.response_headers_to_add, vh.response_headers_to_remove, fieldPath(path, 'response_headers_to_add'), fieldPath(path, 'response_headers_to_remove'), true, problems),
    vhostFilters: compilePerFilterConfig(vh.typed_per_filter_config, fieldPath(path, 'typed_per_filter_config'), ctx.options.perFilterConfig, problems),
    ...(retryPolicy ? { vhostRetry: retryPolicy } : {}),
    // A virtual host's mirror policies replace the route configuration's; a route's replace both.
    mirrors: (vh.request_mirror_policies ?? []).length > 0 ? vhMirrors : global.mirrors,
  };
  const matchers: CompiledRouteMatch[] = [];
  const routes: RouteEntry[] = [];
  (vh.routes ?? []).forEach((route, i) => {
    const compiled = compileRoute(route, `${fieldPath(path, 'routes')}[${i}]`, entry, levels, ctx);
    if (compiled) {
      matchers.push(compiled.match);
      routes.push(compiled.entry);
    }
  });
  if (problems.details.length > before) return undefined;
  return { entry, matchers, routes };
}

class CompiledRouteTable implements RouteTable {
  constructor(
    readonly name: string,
    private readonly index: VirtualHostIndex<CompiledVirtualHost>,
    private readonly ignorePathParameters: boolean,
  ) {}

  match(headers: HttpHeaders, random: number): RouteEntry | undefined {
    const authority = headers[':authority'];
    const vh = this.index.find(typeof authority === 'string' ? authority : authority?.[0]);
    if (vh === undefined) return undefined;
    const rawPath = headers[':path'];
    const path = typeof rawPath === 'string' ? rawPath : rawPath?.[0];
    if (path === undefined) return undefined;
    const end = pathEnd(path, this.ignorePathParameters);
    const matchers = vh.matchers;
    for (let i = 0; i < matchers.length; i++) {
      if (matchers[i]!.matchesPath(headers, path, end, random)) return vh.routes[i];
    }
    return undefined;
  }
}

/**
 * Validates and compiles a RouteConfiguration. Throws XdsValidationError listing every problem with its field path
 * (`virtual_hosts[0].routes[2].match.safe_regex.regex: does not compile: …`) — the proxy NACKs with it.
 */
export function compileRouteConfiguration(config: RouteConfiguration, options: CompileRouteOptions = {}): RouteTable {
  const problems = new ConfigProblems();
  rejectUnsupportedFields(config, CONFIG_FIELDS, '', problems);
  const maxBody = config.max_direct_response_body_size_bytes;
  const ctx: Context = {
    problems,
    options,
    ignorePathParameters: config.ignore_path_parameters_in_path_matching === true,
    maxDirectResponseBody: maxBody === undefined || maxBody === null ? DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES : Number(maxBody.value ?? 0),
    clusters: [],
  };
  const global = {
    globalRequest: compileHeaderMutation(config.request_headers_to_add, config.request_headers_to_remove, 'request_headers_to_add', 'request_headers_to_remove', false, problems),
    globalResponse: compileHeaderMutation(config.response_headers_to_add, config.response_headers_to_remove, 'response_headers_to_add', 'response_headers_to_remove', true, problems),
    mostSpecificWins: config.most_specific_header_mutations_wins === true,
    globalFilters: compilePerFilterConfig(config.typed_per_filter_config, 'typed_per_filter_config', options.perFilterConfig, problems),
    mirrors: compileMirrors(config.request_mirror_policies, 'request_mirror_policies', ctx),
  };
  const name = config.name ?? '';
  const index = new VirtualHostIndex<CompiledVirtualHost>(config.ignore_port_in_host_matching === true);
  (config.virtual_hosts ?? []).forEach((vh, i) => {
    const path = `virtual_hosts[${i}]`;
    const compiled = compileVirtualHost(vh, path, ctx, global);
    const domains = vh.domains ?? [];
    if (domains.length === 0) problems.add(fieldPath(path, 'domains'), 'at least one domain is required');
    domains.forEach((domain, j) => {
      if (compiled) index.add(domain, compiled, `${fieldPath(path, 'domains')}[${j}]`, name, problems);
    });
  });
  if (boolValue(config.validate_clusters, false)) {
    if (!options.clusterExists) problems.add('validate_clusters', 'cluster validation was asked for but no cluster list is available here');
    else for (const c of ctx.clusters) if (!options.clusterExists(c.name)) problems.add(c.path, `unknown cluster '${c.name}'`);
  }
  problems.throwIfAny();
  return new CompiledRouteTable(name, index, ctx.ignorePathParameters);
}
