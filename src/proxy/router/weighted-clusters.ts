// Cluster choice of a RouteAction: one cluster, cluster_header, or weighted_clusters picked by weight (current Envoy: the sum of the weights is the total; total_weight is ignored).
import type { HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath, isValidHeaderName, rejectUnsupportedFields } from './config-problems.js';
import { compileHeaderMutation, NO_HEADER_MUTATION } from './header-mutation.js';
import type { ClusterTarget } from './route-table.js';
import { asciiLower } from './string-matcher.js';

type WeightedCluster = envoy.config.route.v3.WeightedCluster;

export type PerFilterConfigCompiler = (configs: Record<string, unknown> | undefined, path: string) => ReadonlyMap<string, unknown> | undefined;

export interface ClusterPicker {
  pick(headers: HttpHeaders, random: number): ClusterTarget | undefined;
}

const UINT32_MAX = 0xffffffff;

function firstValue(headers: HttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v?.[0];
}

/** A fixed cluster. */
export function fixedCluster(cluster: string): ClusterPicker {
  const target: ClusterTarget = { cluster };
  return { pick: () => target };
}

/** cluster_header: the header's (first) value names the cluster; absent or empty → undefined (cluster not found). */
export function clusterFromHeader(header: string): ClusterPicker {
  return {
    pick(headers) {
      const name = firstValue(headers, header);
      return name === undefined || name === '' ? undefined : { cluster: name };
    },
  };
}

interface WeightedEntry {
  /** Exclusive upper bound of this entry's slice of [0, total). */
  readonly end: number;
  readonly target?: ClusterTarget;
  readonly clusterHeader?: string;
  /** For cluster_header entries: what the entry adds to the cluster the header names. */
  readonly extras?: Omit<ClusterTarget, 'cluster'>;
}

const ENTRY_FIELDS = new Set([
  'name',
  'cluster_header',
  'weight',
  'request_headers_to_add',
  'request_headers_to_remove',
  'response_headers_to_add',
  'response_headers_to_remove',
  'typed_per_filter_config',
  'host_rewrite_literal',
]);

/**
 * Compiles weighted_clusters at `path`. Envoy's rules: every entry needs exactly one of name or cluster_header and a
 * weight (an explicit 0 is allowed), the weights must sum to more than 0 and at most 2^32-1. A request picks
 * `random_value % total` within the cumulative weights; with header_name, a single-valued numeric header supplies the
 * random value instead (consistent picks across proxy hops). runtime_key_prefix is accepted: without a runtime layer
 * the configured weights are the runtime defaults Envoy would use.
 */
export function compileWeightedClusters(config: WeightedCluster, path: string, problems: ConfigProblems, perFilterConfig: PerFilterConfigCompiler): ClusterPicker | undefined {
  const before = problems.details.length;
  rejectUnsupportedFields(config, new Set(['clusters', 'total_weight', 'runtime_key_prefix', 'header_name']), path, problems);
  const clusters = config.clusters ?? [];
  if (clusters.length === 0) problems.add(fieldPath(path, 'clusters'), 'at least one cluster is required');
  const entries: WeightedEntry[] = [];
  let total = 0;
  clusters.forEach((c, i) => {
    const p = `${fieldPath(path, 'clusters')}[${i}]`;
    rejectUnsupportedFields(c, ENTRY_FIELDS, p, problems);
    const name = c.name ?? '';
    const header = c.cluster_header ?? '';
    if (name !== '' && header !== '') {
      problems.add(p, 'only one of name or cluster_header can be specified');
      return;
    }
    if (name === '' && header === '') {
      problems.add(p, 'at least one of name or cluster_header need to be specified');
      return;
    }
    if (c.weight === undefined || c.weight === null) {
      problems.add(fieldPath(p, 'weight'), 'is missing');
      return;
    }
    const weight = Number(c.weight.value ?? 0);
    total += weight;
    const requestHeaders = compileHeaderMutation(c.request_headers_to_add, c.request_headers_to_remove, fieldPath(p, 'request_headers_to_add'), fieldPath(p, 'request_headers_to_remove'), false, problems);
    const responseHeaders = compileHeaderMutation(c.response_headers_to_add, c.response_headers_to_remove, fieldPath(p, 'response_headers_to_add'), fieldPath(p, 'response_headers_to_remove'), true, problems);
    const filters = perFilterConfig(c.typed_per_filter_config, fieldPath(p, 'typed_per_filter_config'));
    const extras = {
      ...(requestHeaders !== NO_HEADER_MUTATION ? { requestHeaders } : {}),
      ...(responseHeaders !== NO_HEADER_MUTATION ? { responseHeaders } : {}),
      ...(c.host_rewrite_literal ? { hostRewrite: c.host_rewrite_literal } : {}),
      ...(filters && filters.size > 0 ? { perFilterConfig: filters } : {}),
    };
    if (header !== '') {
      if (!isValidHeaderName(header)) problems.add(fieldPath(p, 'cluster_header'), 'a valid header name is required');
      entries.push({ end: total, clusterHeader: asciiLower(header), extras });
    } else {
      entries.push({ end: total, target: { cluster: name, ...extras } });
    }
  });
  if (clusters.length > 0 && entries.length === clusters.length) {
    if (total === 0) problems.add(path, 'sum of weights in the weighted_cluster must be greater than 0');
    else if (total > UINT32_MAX) problems.add(path, `the sum of weights of all weighted clusters exceeds ${UINT32_MAX}`);
  }
  const randomHeader = config.header_name ? asciiLower(config.header_name) : undefined;
  if (config.header_name && !isValidHeaderName(config.header_name)) problems.add(fieldPath(path, 'header_name'), 'a valid header name is required');
  if (problems.details.length > before) return undefined;
  const list = entries;
  return {
    pick(headers, random) {
      let selected = -1;
      if (randomHeader !== undefined) {
        const v = headers[randomHeader];
        // Envoy uses the header only when it has exactly one value that parses as an unsigned integer.
        if (typeof v === 'string' || (Array.isArray(v) && v.length === 1)) {
          const text = typeof v === 'string' ? v : v[0]!;
          if (/^\d+$/.test(text)) selected = Number(BigInt(text) % BigInt(total));
        }
      }
      if (selected < 0) selected = Math.min(total - 1, Math.floor(random * total));
      for (let i = 0; i < list.length; i++) {
        const entry = list[i]!;
        if (selected < entry.end) {
          if (entry.target) return entry.target;
          const name = firstValue(headers, entry.clusterHeader!);
          return name === undefined || name === '' ? undefined : { cluster: name, ...entry.extras };
        }
      }
      return undefined;
    },
  };
}
