// Envoy's response flags (the %RESPONSE_FLAGS% of access logs and Istio's response_flags label), with their meaning.

export const RESPONSE_FLAGS = {
  DC: 'downstream connection termination',
  DI: 'the request was delayed by fault injection',
  DPE: 'downstream request had an HTTP protocol error',
  FI: 'the request was aborted by fault injection',
  IH: 'the request had an invalid value for a strictly-checked header',
  LH: 'local service failed health check',
  LR: 'connection local reset',
  NC: 'upstream cluster not found',
  NR: 'no route configured for the request (or no matching filter chain for a connection)',
  RL: 'the request was rate-limited locally',
  SI: 'stream idle timeout',
  UAEX: 'the request was denied by the external authorization service',
  UC: 'upstream connection termination',
  UF: 'upstream connection failure',
  UH: 'no healthy upstream hosts in upstream cluster',
  UMSDR: 'the upstream request reached max stream duration',
  UO: 'upstream overflow (circuit breaking)',
  UPE: 'the upstream response had an HTTP protocol error',
  UR: 'upstream remote reset',
  URX: 'the request was rejected because the upstream retry limit (HTTP) or maximum connect attempts (TCP) was reached',
  UT: 'upstream request timeout',
  DT: 'the request was terminated because it exceeded the request timeout or downstream header timeout',
  OM: 'overload manager terminated the request',
  RBAC: 'the request was denied by RBAC (Envoy logs this as RBAC access denied)',
} as const;

export type ResponseFlag = keyof typeof RESPONSE_FLAGS;

/** Envoy's text form: flags joined by ",", or "-" when there are none. */
export function formatResponseFlags(flags: Iterable<ResponseFlag>): string {
  const list = [...flags];
  return list.length === 0 ? '-' : list.join(',');
}
