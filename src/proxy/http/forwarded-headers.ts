// x-forwarded-for / x-forwarded-proto / x-envoy-internal with Envoy's use_remote_address and xff_num_trusted_hops semantics.
import type { HttpHeaders } from './headers.js';
import { normaliseAddress } from '../transport/cidr.js';

export interface ForwardedOptions {
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  readonly skipXffAppend: boolean;
}

/** RFC 1918, loopback, link-local and ULA: Envoy's default "internal" addresses. */
export function isInternalAddress(address: string): boolean {
  const a = normaliseAddress(address);
  if (a === '::1' || a.startsWith('127.')) return true;
  if (a.startsWith('10.') || a.startsWith('192.168.')) return true;
  const m = /^172\.(\d+)\./.exec(a);
  if (m && Number(m[1]) >= 16 && Number(m[1]) <= 31) return true;
  const lower = a.toLowerCase();
  return lower.startsWith('fd') || lower.startsWith('fc');
}

/** Router-control headers Envoy removes from requests it treats as external (sanitisation at the edge). */
export const EXTERNAL_STRIPPED_HEADERS = [
  'x-envoy-decorator-operation',
  'x-envoy-downstream-service-cluster',
  'x-envoy-downstream-service-node',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-external-address',
  'x-envoy-force-trace',
  'x-envoy-internal',
  'x-envoy-ip-tags',
  'x-envoy-max-retries',
  'x-envoy-original-path',
  'x-envoy-retriable-header-names',
  'x-envoy-retriable-status-codes',
  'x-envoy-retry-grpc-on',
  'x-envoy-retry-on',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-hedge-on-per-try-timeout',
] as const;

/**
 * Applies the forwarding headers and returns whether the request is internal (Envoy: the downstream address is
 * internal with use_remote_address, or x-forwarded-for holds only internal addresses otherwise).
 */
export function applyForwardedHeaders(headers: HttpHeaders, remoteAddress: string, scheme: string, options: ForwardedOptions): boolean {
  const remote = normaliseAddress(remoteAddress);
  let internal: boolean;
  if (options.useRemoteAddress) {
    internal = isInternalAddress(remote);
    if (!options.skipXffAppend) {
      const xff = headers['x-forwarded-for'];
      const prev = Array.isArray(xff) ? xff.join(',') : xff;
      headers['x-forwarded-for'] = prev ? `${prev},${remote}` : remote;
    }
    if (internal) headers['x-envoy-internal'] = 'true';
    else {
      for (const name of EXTERNAL_STRIPPED_HEADERS) delete headers[name];
      headers['x-envoy-external-address'] = remote;
    }
    headers['x-forwarded-proto'] = scheme;
  } else {
    const xff = headers['x-forwarded-for'];
    const text = Array.isArray(xff) ? xff.join(',') : xff;
    // With xff_num_trusted_hops N, the client address is the (N+1)th from the right.
    const list = text ? text.split(',').map((s) => s.trim()).filter(Boolean) : [];
    const client = list.length > options.xffNumTrustedHops ? list[list.length - 1 - options.xffNumTrustedHops] : undefined;
    internal = list.length > 0 ? list.every(isInternalAddress) : isInternalAddress(remote);
    if (client === undefined && list.length === 0) internal = true;
    if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = scheme;
  }
  return internal;
}
