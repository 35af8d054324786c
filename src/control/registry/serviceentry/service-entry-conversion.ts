// Istio's ServiceEntry/WorkloadEntry → Service and ServiceInstance conversion for one namespace (pilot's serviceentry/conversion.go).
import type { Port, ServiceEntry, WorkloadEntry, WorkloadEntrySpec } from '../../../api/index.js';
import { resolveHostname } from '../../model/hostname.js';
import { parseLocality, type Service, type ServiceInstance, type ServicePort, type SourceRef, type TlsMode } from '../../model/service.js';
import type { NamespaceServices } from '../service-index.js';

export const REGISTRY_NAME = 'ServiceEntry';

/** Istio's label for a workload's TLS mode, and the label a workload's network may be given by. */
const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
const NETWORK_LABEL = 'topology.istio.io/network';

// Istio's protocol-by-port-name convention (`http`, `http-web`, `grpc-api`), used when a port names no protocol.
const NAME_PROTOCOLS = ['http', 'https', 'grpc-web', 'grpc', 'http2', 'mongo', 'mysql', 'redis', 'tcp', 'tls', 'udp'];

/**
 * The services and instances the ServiceEntries of one namespace define, with the WorkloadEntries of that namespace
 * they select. ServiceEntries are taken in name order; where two declare the same host, the first one's is kept.
 */
export function convertNamespace(
  namespace: string,
  serviceEntries: readonly ServiceEntry[],
  workloadEntries: readonly WorkloadEntry[],
  domainSuffix: string,
): NamespaceServices {
  const services = new Map<string, Service>();
  const instances = new Map<string, ServiceInstance[]>();
  for (const se of serviceEntries) {
    const spec = se.spec;
    const source = ref(se);
    const ports = (spec.ports ?? []).map(servicePort);
    const resolution = spec.resolution ?? 'NONE';
    const location = spec.location ?? 'MESH_EXTERNAL';
    const hosts = [...new Set((spec.hosts ?? []).map((h) => resolveHostname(h, namespace, domainSuffix)))].filter((h) => !services.has(h));
    for (const hostname of hosts) {
      services.set(hostname, {
        hostname,
        namespace,
        ports,
        resolution,
        location,
        addresses: [...(spec.addresses ?? [])],
        exportTo: spec.exportTo && spec.exportTo.length > 0 ? [...spec.exportTo] : ['*'],
        ...(se.metadata.labels ? { labels: se.metadata.labels } : {}),
        source,
      });
    }

    // Where the endpoints come from: selected WorkloadEntries, inline endpoints, or (DNS without either) the host itself.
    let endpoints: { spec: WorkloadEntrySpec; source: SourceRef }[];
    if (spec.workloadSelector) {
      const selector = spec.workloadSelector.labels ?? {};
      endpoints = workloadEntries.filter((we) => selects(selector, we.spec.labels ?? {})).map((we) => ({ spec: we.spec, source: ref(we) }));
    } else {
      endpoints = (spec.endpoints ?? []).map((e) => ({ spec: e, source }));
    }
    if (resolution === 'NONE') endpoints = [];

    for (const hostname of hosts) {
      const list: ServiceInstance[] = [];
      const eps = endpoints.length === 0 && !spec.workloadSelector && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN')
        ? [{ spec: { address: hostname } as WorkloadEntrySpec, source }]
        : endpoints;
      for (const port of ports) {
        for (const ep of eps) {
          const instance = toInstance(hostname, namespace, port, ep.spec, ep.source, location);
          if (instance) list.push(instance);
        }
      }
      if (list.length > 0) instances.set(hostname, list);
    }
  }
  return { services, instances };
}

function toInstance(
  hostname: string, namespace: string, servicePort: ServicePort, ep: WorkloadEntrySpec, source: SourceRef, location: Service['location'],
): ServiceInstance | undefined {
  // An empty address means "reach it through its network's gateway", which needs multi-network support we do not have yet.
  if (!ep.address) return undefined;
  const labels = ep.labels ?? {};
  const unix = ep.address.startsWith('unix://');
  const port = unix ? 0 : (ep.ports?.[servicePort.name] ?? servicePort.targetPort ?? servicePort.number);
  const network = ep.network ?? labels[NETWORK_LABEL];
  return {
    hostname,
    namespace,
    servicePort,
    address: ep.address,
    port,
    labels,
    locality: parseLocality(ep.locality),
    weight: ep.weight && ep.weight > 0 ? ep.weight : 1,
    ...(ep.serviceAccount ? { serviceAccount: ep.serviceAccount } : {}),
    ...(network ? { network } : {}),
    tlsMode: location === 'MESH_EXTERNAL' ? 'disabled' : tlsMode(ep),
    healthStatus: 'HEALTHY',
    source,
  };
}

/** As Istio: the tlsMode label when set, else `istio` for a workload with a service account, else `disabled`. */
function tlsMode(ep: WorkloadEntrySpec): TlsMode {
  const label = ep.labels?.[TLS_MODE_LABEL];
  if (label !== undefined) return label === 'istio' ? 'istio' : 'disabled';
  return ep.serviceAccount ? 'istio' : 'disabled';
}

function servicePort(port: Port): ServicePort {
  const name = port.name ?? '';
  return {
    name,
    number: port.number ?? 0,
    protocol: port.protocol ? port.protocol.toUpperCase() : protocolFromName(name),
    ...(port.targetPort ? { targetPort: port.targetPort } : {}),
  };
}

function protocolFromName(name: string): string {
  const lower = name.toLowerCase();
  const match = NAME_PROTOCOLS.find((p) => lower === p || lower.startsWith(`${p}-`));
  return match ? match.toUpperCase() : 'TCP';
}

/** Istio's selector semantics: every selector label present with the same value (an empty selector selects all). */
function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function ref(resource: ServiceEntry | WorkloadEntry): SourceRef {
  return {
    registry: REGISTRY_NAME,
    kind: resource.kind,
    namespace: resource.metadata.namespace,
    name: resource.metadata.name,
    ...(resource.origin ? { origin: resource.origin } : {}),
  };
}
