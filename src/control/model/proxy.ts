// A connected proxy as the control plane sees it: Istio's node id (`type~ip~pod.ns~ns.svc.domain`) plus node metadata.
import type { envoy } from '../../xds/generated/types.js';
import { parseLocality, type Locality } from './service.js';
import { parseNodeId } from '../../common/node-id.js';

/** Istio's node types: a sidecar next to a workload, or a gateway ("router"). */
export type ProxyType = 'sidecar' | 'router';

export interface Proxy {
  /** The full node id, the key the control plane pushes by. */
  readonly id: string;
  readonly type: ProxyType;
  /** The workload's IPs (first is primary); `127.0.0.1` for local meshes. */
  readonly ipAddresses: readonly string[];
  /** `reviews-v1-abc` from `reviews-v1-abc.default`. */
  readonly podName: string;
  readonly namespace: string;
  readonly domainSuffix: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly locality: Locality;
  /** Workload name (`WORKLOAD_NAME` metadata), e.g. `reviews-v1`. */
  readonly workloadName: string;
  /** Envoy's node.cluster (Istio: `<app>.<namespace>`). */
  readonly cluster: string;
  /** Raw metadata fields as strings (non-string values are JSON), for generators that need more. */
  readonly metadata: Readonly<Record<string, string>>;
}

export class ProxyIdError extends Error {}

type Struct = envoy.config.core.v3.Node['metadata'];
type Value = NonNullable<NonNullable<Struct>['fields']>[string];

/**
 * Parses Istio's node id and metadata. The id is `type~ip~podName.namespace~namespace.svc.domainSuffix`;
 * metadata keys follow Istio's bootstrap (`NAMESPACE`, `LABELS`, `SERVICE_ACCOUNT`, `WORKLOAD_NAME`), and
 * metadata wins over the id where both say something.
 */
export function proxyFromNode(node: envoy.config.core.v3.Node): Proxy {
  const id = node.id ?? '';
  const metadata = flattenMetadata(node.metadata);
  const parsed = parseNodeId(id, metadata['NAMESPACE']);
  if ('problem' in parsed) throw new ProxyIdError(parsed.problem);
  const { type, ip, podName, namespace, domainSuffix } = parsed;
  const labels = structToStrings(node.metadata?.fields?.['LABELS']);
  const ips = (metadata['INSTANCE_IPS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const locality = node.locality
    ? { region: node.locality.region ?? '', zone: node.locality.zone ?? '', subzone: node.locality.sub_zone ?? '' }
    : parseLocality(labels['topology.istio.io/locality']?.replaceAll('.', '/'));
  return {
    id,
    type,
    ipAddresses: ips.length > 0 ? ips : [ip],
    podName,
    namespace,
    domainSuffix,
    labels,
    serviceAccount: metadata['SERVICE_ACCOUNT'] || 'default',
    locality,
    workloadName: metadata['WORKLOAD_NAME'] || podName,
    cluster: node.cluster ?? '',
    metadata,
  };
}

function valueToString(value: Value | undefined): string | undefined {
  if (!value) return undefined;
  if (value.string_value !== undefined) return value.string_value;
  if (value.number_value !== undefined) return String(value.number_value);
  if (value.bool_value !== undefined) return String(value.bool_value);
  if (value.struct_value !== undefined || value.list_value !== undefined) return JSON.stringify(value);
  return undefined;
}

function flattenMetadata(struct: Struct): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) {
    const text = valueToString(value);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

function structToStrings(value: Value | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, field] of Object.entries(value?.struct_value?.fields ?? {})) {
    const text = valueToString(field);
    if (text !== undefined) out[key] = text;
  }
  return out;
}
