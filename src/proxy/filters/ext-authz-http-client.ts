// ext_authz's HTTP service client (Envoy's RawHttpClientImpl): one check request to a host of the named cluster, and its response as OK / denied / error.
import type { HttpHeaders } from '../http/headers.js';
import type { ClusterManager, UpstreamRequest } from '../upstream/types.js';

/** What the authorization server decided (Envoy's ExtAuthz::Response). */
export type CheckResult =
  | { readonly status: 'ok'; readonly headers: HttpHeaders }
  | { readonly status: 'denied'; readonly code: number; readonly headers: HttpHeaders; readonly body: string }
  | { readonly status: 'error'; readonly reason: string };

/** Largest authorization response body kept for the denied reply (the rest is dropped). */
const MAX_DENIED_BODY = 64 * 1024;

export interface CheckCall {
  cancel(): void;
}

/**
 * Sends `headers` (pseudo-headers included, no body) to a host of `clusterName` and reports the decision once:
 * 200 → ok, 5xx / connect failure / reset / timeout / unknown cluster / no host → error, anything else → denied.
 */
export function sendCheck(clusters: ClusterManager, clusterName: string, headers: HttpHeaders, timeoutMs: number, done: (result: CheckResult) => void): CheckCall {
  let finished = false;
  let request: UpstreamRequest | undefined;
  let timer: NodeJS.Timeout | undefined;
  const finish = (result: CheckResult): void => {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    done(result);
  };
  const cluster = clusters.get(clusterName);
  if (!cluster) {
    queueMicrotask(() => finish({ status: 'error', reason: `cluster ${clusterName} does not exist` }));
    return { cancel: () => (finished = true) };
  }
  const host = cluster.chooseHost({});
  if (!host) {
    queueMicrotask(() => finish({ status: 'error', reason: `no healthy host in cluster ${clusterName}` }));
    return { cancel: () => (finished = true) };
  }
  let status = 0;
  let responseHeaders: HttpHeaders = {};
  const chunks: Buffer[] = [];
  let size = 0;
  if (timeoutMs > 0) {
    timer = setTimeout(() => {
      request?.abort();
      finish({ status: 'error', reason: `no response within ${timeoutMs} ms` });
    }, timeoutMs);
  }
  try {
    request = cluster.request(host, headers, {
      onHeaders(code, h) {
        status = code;
        responseHeaders = h;
      },
      onData(chunk) {
        if (size < MAX_DENIED_BODY) chunks.push(chunk);
        size += chunk.length;
      },
      onEnd() {
        if (status >= 500 && status < 600) finish({ status: 'error', reason: `authorization server answered ${status}` });
        else if (status === 200) finish({ status: 'ok', headers: responseHeaders });
        else finish({ status: 'denied', code: status, headers: responseHeaders, body: Buffer.concat(chunks).subarray(0, MAX_DENIED_BODY).toString('utf8') });
      },
      onFailure(failure, detail) {
        finish({ status: 'error', reason: `${failure}${detail ? `: ${detail}` : ''}` });
      },
    });
    request.end();
  } catch (err) {
    queueMicrotask(() => finish({ status: 'error', reason: (err as Error).message }));
  }
  return {
    cancel() {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      request?.abort();
    },
  };
}
