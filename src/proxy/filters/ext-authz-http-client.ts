// ext_authz's transport to the authorization server: one request to a host of the named cluster (HTTP service, or gRPC over the cluster's HTTP/2 pool) and its answer.
import type { HttpHeaders } from '../http/headers.js';
import type { ClusterManager, UpstreamRequest } from '../upstream/types.js';

/** The authorization server's HTTP answer, or why there is none. */
export type HttpCheckAnswer =
  | { readonly status: 'answer'; readonly code: number; readonly headers: HttpHeaders; readonly body: Buffer }
  | { readonly status: 'error'; readonly reason: string };

/** Largest authorization response body kept (a denied reply's body, a gRPC CheckResponse); the rest is dropped. */
const MAX_BODY = 1024 * 1024;

export interface CheckCall {
  cancel(): void;
}

/**
 * Sends `headers` (pseudo-headers included) and `body` to a host of `clusterName` and reports once: the answer
 * (status, headers, body), or an error for a connect failure, reset, timeout, unknown cluster or no healthy host.
 */
export function sendHttpRequest(
  clusters: ClusterManager,
  clusterName: string,
  headers: HttpHeaders,
  body: Buffer | undefined,
  timeoutMs: number,
  done: (answer: HttpCheckAnswer) => void,
  onTrailers?: (trailers: HttpHeaders) => void,
): CheckCall {
  let finished = false;
  let request: UpstreamRequest | undefined;
  let timer: NodeJS.Timeout | undefined;
  const finish = (result: HttpCheckAnswer): void => {
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
        if (size < MAX_BODY) chunks.push(chunk);
        size += chunk.length;
      },
      ...(onTrailers ? { onTrailers } : {}),
      onEnd() {
        finish({ status: 'answer', code: status, headers: responseHeaders, body: Buffer.concat(chunks).subarray(0, MAX_BODY) });
      },
      onFailure(failure, detail) {
        finish({ status: 'error', reason: `${failure}${detail ? `: ${detail}` : ''}` });
      },
    });
    if (body && body.length > 0) request.write(body);
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
