// Which VirtualServices, DestinationRules and config problems concern a service, from the control plane's /debug/configz.

export interface ConfigzResource {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: unknown;
}

export interface ConfigzProblem {
  readonly code?: string;
  readonly source?: string;
  readonly resource?: string;
  readonly path?: string;
  readonly message?: string;
  readonly text?: string;
}

export interface Configz {
  readonly pushVersion?: string;
  readonly resources: readonly ConfigzResource[];
  readonly problems: readonly ConfigzProblem[];
}

export interface ServiceConfig {
  readonly virtualServices: readonly ConfigzResource[];
  readonly destinationRules: readonly ConfigzResource[];
  readonly problems: readonly ConfigzProblem[];
}

/**
 * Whether a host as written in a VirtualService or DestinationRule (short, `name.ns`, FQDN or `*.suffix`) names
 * the service `name` in `namespace`; short names resolve in the resource's own namespace, as in Istio.
 */
export function hostNamesService(host: string, resourceNamespace: string, service: string, namespace: string): boolean {
  const ns = namespace || 'default';
  const fqdn = `${service}.${ns}.svc.cluster.local`;
  if (host === '*') return true;
  if (host.startsWith('*.')) return fqdn.endsWith(host.slice(1));
  if (!host.includes('.')) return host === service && (resourceNamespace || 'default') === ns;
  return host === fqdn || host === `${service}.${ns}` || host === `${service}.${ns}.svc`;
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

/** The resources that apply to the service and the problems that name it (or one of those resources). */
export function serviceConfig(configz: Configz | undefined, service: string, namespace: string): ServiceConfig {
  if (!configz) return { virtualServices: [], destinationRules: [], problems: [] };
  const virtualServices = configz.resources.filter((r) => {
    if (r.kind !== 'VirtualService') return false;
    // Bound to gateways only (no `mesh`): it routes at those gateways, not the sidecars' calls to this service.
    const gateways = asRecord(r.spec)['gateways'];
    if (Array.isArray(gateways) && gateways.length > 0 && !gateways.includes('mesh')) return false;
    const hosts = asRecord(r.spec)['hosts'];
    return Array.isArray(hosts) && hosts.some((h) => typeof h === 'string' && hostNamesService(h, r.metadata.namespace, service, namespace));
  });
  const destinationRules = configz.resources.filter((r) => {
    if (r.kind !== 'DestinationRule') return false;
    const host = asRecord(r.spec)['host'];
    return typeof host === 'string' && hostNamesService(host, r.metadata.namespace, service, namespace);
  });
  const names = new Set([...virtualServices, ...destinationRules].map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`));
  const word = new RegExp(`(^|[^a-z0-9-])${service.replace(/[^a-z0-9-]/gi, '')}([^a-z0-9-]|$)`, 'i');
  const problems = configz.problems.filter((p) => (p.resource !== undefined && names.has(p.resource)) || word.test(p.resource ?? '') || word.test(p.text ?? p.message ?? ''));
  return { virtualServices, destinationRules, problems };
}

/** Reads /debug/configz's JSON, keeping only what the dashboard uses; throws on a shape it cannot use. */
export function parseConfigz(body: unknown): Configz {
  const o = asRecord(body);
  if (!Array.isArray(o['resources'])) throw new TypeError('/debug/configz: expected an object with a "resources" array');
  const resources = (o['resources'] as unknown[]).filter((r): r is ConfigzResource => {
    const m = asRecord(asRecord(r)['metadata']);
    return typeof asRecord(r)['kind'] === 'string' && typeof m['name'] === 'string';
  });
  const problems = Array.isArray(o['problems']) ? (o['problems'] as unknown[]).map((p) => asRecord(p) as ConfigzProblem) : [];
  return { ...(typeof o['pushVersion'] === 'string' ? { pushVersion: o['pushVersion'] } : {}), resources, problems };
}
