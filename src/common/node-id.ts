// Istio's proxy node id (`type~ip~pod.namespace~namespace.svc.<domain>`): parsed in one place for the control plane and the agent's DNS proxy.

/** Istio's defaults where neither the id nor the node metadata says: the namespace, and the cluster's DNS domain. */
export const DEFAULT_NODE_NAMESPACE = 'default';
export const DEFAULT_NODE_DOMAIN = 'cluster.local';

export interface IstioNodeId {
  /** A sidecar next to a workload, or a gateway ("router"). */
  readonly type: 'sidecar' | 'router';
  readonly ip: string;
  /** `reviews-v1-abc` from `reviews-v1-abc.default`. */
  readonly podName: string;
  /** NAMESPACE metadata, which wins as in Istio; else the id's (after the pod name); else `default`. */
  readonly namespace: string;
  /** The DNS domain after `.svc.` in the id's last part; else `cluster.local`. */
  readonly domainSuffix: string;
}

/** Why an id is not Istio's node id (the message names the id and what was expected). */
export interface NodeIdProblem {
  readonly problem: string;
}

/** The parts of an Istio node id, or the problem with it: callers decide whether that refuses the node (the control plane) or not. */
export function parseNodeId(id: string, metadataNamespace?: string): IstioNodeId | NodeIdProblem {
  const parts = id.split('~');
  if (parts.length !== 4) return { problem: `node id ${JSON.stringify(id)} is not Istio's type~ip~pod.namespace~namespace.svc.domain` };
  const [type, ip, podAndNs, dnsDomain] = parts as [string, string, string, string];
  if (type !== 'sidecar' && type !== 'router') return { problem: `node id ${JSON.stringify(id)}: type must be sidecar or router, got ${JSON.stringify(type)}` };
  const dot = podAndNs.indexOf('.');
  const svc = dnsDomain.indexOf('.svc.');
  return {
    type,
    ip,
    podName: dot < 0 ? podAndNs : podAndNs.slice(0, dot),
    namespace: metadataNamespace || (dot < 0 ? '' : podAndNs.slice(dot + 1)) || DEFAULT_NODE_NAMESPACE,
    domainSuffix: (svc >= 0 ? dnsDomain.slice(svc + 5) : '') || DEFAULT_NODE_DOMAIN,
  };
}
