// Istio's names for generated Envoy resources: `outbound|9080|v1|reviews.default.svc.cluster.local`, `inbound|9080||`, SNI.

export type TrafficDirection = 'outbound' | 'inbound';

/** `direction|port|subset|host`, the cluster (and EDS service) name Istio generates. */
export function clusterName(direction: TrafficDirection, port: number, subset: string, hostname: string): string {
  return `${direction}|${port}|${subset}|${hostname}`;
}

export interface ParsedClusterName {
  direction: TrafficDirection;
  port: number;
  subset: string;
  hostname: string;
}

/** The parts of an Istio cluster name, or undefined for other names (BlackHoleCluster, PassthroughCluster, …). */
export function parseClusterName(name: string): ParsedClusterName | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, hostname] = parts as [string, string, string, string];
  if (direction !== 'outbound' && direction !== 'inbound') return undefined;
  const portNumber = Number(port);
  if (!Number.isInteger(portNumber)) return undefined;
  return { direction, port: portNumber, subset, hostname };
}

/** The SNI Istio sets for mTLS to a cluster: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function clusterSni(port: number, subset: string, hostname: string): string {
  return `outbound_.${port}_.${subset}_.${hostname}`;
}

/** Envoy clusters every sidecar has, by Istio's names. */
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughClusterIpv4';

/** Istio's virtual listener names and ports. */
export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_CAPTURE_PORT = 15006;
