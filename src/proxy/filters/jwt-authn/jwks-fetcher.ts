// One GET of a JWKS document through a named cluster's hosts and connection pools (Envoy's JwksFetcher uses the
// cluster manager's async client the same way), bounded by http_uri.timeout and a body limit.
import type { ClusterManager, UpstreamRequest, UpstreamResponseHandler } from '../../upstream/types.js';

/** A JWKS larger than this is refused (Envoy buffers the whole body too; this keeps a hostile server from growing it). */
export const MAX_JWKS_BYTES = 1024 * 1024;

export interface HttpUriConfig {
  readonly uri: string;
  readonly cluster: string;
  readonly timeoutMs: number;
}

export class JwksFetchError extends Error {}

/** Resolves with the body of a 200 answer; rejects with the reason otherwise. */
export function fetchJwksDocument(clusters: ClusterManager, httpUri: HttpUriConfig): { readonly done: Promise<string>; cancel(): void } {
  let request: UpstreamRequest | undefined;
  let timer: NodeJS.Timeout | undefined;
  let settle: (err: Error | undefined, body?: string) => void = () => undefined;
  const done = new Promise<string>((resolve, reject) => {
    let finished = false;
    settle = (err, body) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (err) reject(err);
      else resolve(body!);
    };
  });
  // Rejections are read by the caller; this keeps a cancelled fetch from being an unhandled rejection.
  done.catch(() => undefined);
  const cluster = clusters.get(httpUri.cluster);
  if (!cluster) {
    settle(new JwksFetchError(`cluster ${httpUri.cluster} is not configured`));
    return { done, cancel: () => undefined };
  }
  const host = cluster.chooseHost({});
  if (!host) {
    settle(new JwksFetchError(`cluster ${httpUri.cluster} has no healthy host`));
    return { done, cancel: () => undefined };
  }
  const url = new URL(httpUri.uri);
  const chunks: Buffer[] = [];
  let size = 0;
  let status = 0;
  const headers = { ':method': 'GET', ':path': `${url.pathname}${url.search}`, ':authority': url.host, ':scheme': url.protocol.replace(/:$/, ''), accept: 'application/json' };
  const handler: UpstreamResponseHandler = {
    onHeaders: (s) => {
      status = s;
      cluster.reportResult?.(host, s);
    },
    onData: (chunk) => {
      size += chunk.length;
      if (size > MAX_JWKS_BYTES) {
        request?.abort();
        settle(new JwksFetchError(`JWKS from ${httpUri.uri} is larger than ${MAX_JWKS_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    },
    onEnd: () => {
      if (status !== 200) settle(new JwksFetchError(`${httpUri.uri} answered ${status}`));
      else settle(undefined, Buffer.concat(chunks).toString('utf8'));
    },
    onFailure: (failure, detail) => {
      cluster.reportResult?.(host, failure);
      settle(new JwksFetchError(`${httpUri.uri}: ${failure}${detail ? ` (${detail})` : ''}`));
    },
  };
  try {
    request = cluster.request(host, headers, handler);
    request.end();
  } catch (err) {
    settle(new JwksFetchError(`${httpUri.uri}: ${(err as Error).message}`));
    return { done, cancel: () => undefined };
  }
  if (httpUri.timeoutMs > 0) {
    timer = setTimeout(() => {
      request?.abort();
      settle(new JwksFetchError(`${httpUri.uri}: no answer within ${httpUri.timeoutMs} ms`));
    }, httpUri.timeoutMs);
    timer.unref();
  }
  return {
    done,
    cancel: () => {
      request?.abort();
      settle(new JwksFetchError('cancelled'));
    },
  };
}
