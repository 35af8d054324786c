// Istio's localities (`region/zone/subzone`, `*` wildcards in load-balancer rules) and topology labels: one definition for DestinationRule validation and locality load balancing.

/** Kubernetes' and Istio's topology labels: failoverPriority may name them, and they are derived from localities. */
export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const SUBZONE_LABEL = 'topology.istio.io/subzone';
export const TOPOLOGY_LABELS: readonly string[] = [REGION_LABEL, ZONE_LABEL, SUBZONE_LABEL];

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

/** `region/zone/subzone` (any of them may be missing) as a Locality. */
export function parseLocality(value: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (value ?? '').split('/');
  return { region, zone, subzone };
}

/** Istio's LocalityMatch: `rule` is `region[/zone[/subzone]]` where `*` matches anything and a missing part matches all. */
export function localityMatch(locality: Locality, rule: string): boolean {
  const [region = '', zone = '', subzone = ''] = rule.split('/');
  const part = (want: string, have: string, optional: boolean): boolean => want === '*' || (optional && want === '') || want === have;
  return part(region, locality.region, false) && part(zone, locality.zone, true) && part(subzone, locality.subzone, true);
}
