// HTTP/1.1 client for Bookinfo's outbound calls: through the sidecar in Envoy's explicit HTTP-proxy mode (HTTP_PROXY), or direct.
import http from 'node:http';

/** One outbound request. `timeoutMs` bounds the whole exchange, like the sample's `requests.get(timeout=…)`. */
export interface MeshRequest {
  method?: string;
  headers?: Readonly<Record<string, string>>;
  body?: string;
  timeoutMs?: number;
}

export interface MeshResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Why an outbound call produced no response: it timed out, or the connection failed. */
export class MeshCallError extends Error {
  readonly code: 'MESH_CALL_TIMEOUT' | 'MESH_CALL_FAILED';
  readonly url: string;
  constructor(code: MeshCallError['code'], url: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshCallError';
    this.code = code;
    this.url = url;
  }
}

/** A request that failed on a reused kept-alive connection before any response; carries the error to report. */
class StaleConnectionError extends Error {
  constructor(readonly failure: MeshCallError) {
    super(failure.message);
  }
}

export interface MeshClientOptions {
  /**
   * The sidecar's outbound address, `http://127.0.0.1:<port>`. Default: the `HTTP_PROXY` (or `http_proxy`)
   * environment variable; when neither is set the client connects to the target directly.
   */
  proxy?: string | undefined;
  /** Largest response body accepted (default 4 MiB). */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

/** The proxy address from the environment, or undefined when there is none. */
export function proxyFromEnvironment(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env.HTTP_PROXY ?? env.http_proxy;
  return value !== undefined && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * Sends requests addressed by mesh name (`http://reviews:9080/reviews/0`). With a proxy, every request goes to
 * the proxy's address with the absolute-form target (`GET http://reviews:9080/reviews/0 HTTP/1.1`) and
 * `Host: reviews:9080`, so the sidecar's outbound listener routes on the Host header; connections are kept alive.
 */
export class MeshClient {
  readonly proxy: URL | undefined;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 });
  private readonly maxBodyBytes: number;

  constructor(options: MeshClientOptions = {}) {
    const proxy = 'proxy' in options ? options.proxy : proxyFromEnvironment();
    if (proxy !== undefined) {
      let url: URL;
      try {
        url = new URL(proxy);
      } catch {
        throw new Error(`HTTP_PROXY: expected http://HOST:PORT, got ${JSON.stringify(proxy)}`);
      }
      if (url.protocol !== 'http:' || url.port === '') throw new Error(`HTTP_PROXY: expected http://HOST:PORT, got ${JSON.stringify(proxy)}`);
      this.proxy = url;
    }
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  }

  get(url: string, request: Omit<MeshRequest, 'method' | 'body'> = {}): Promise<MeshResponse> {
    return this.request(url, { ...request, method: 'GET' });
  }

  /**
   * Sends one request. A GET or HEAD that fails on a reused kept-alive connection before any response (the
   * server closed it while idle) is sent once more on a fresh connection, as Node's documentation advises.
   */
  async request(url: string, request: MeshRequest = {}): Promise<MeshResponse> {
    try {
      return await this.send(url, request, false);
    } catch (error) {
      const method = (request.method ?? 'GET').toUpperCase();
      if (error instanceof StaleConnectionError && (method === 'GET' || method === 'HEAD')) return this.send(url, request, true);
      throw error instanceof StaleConnectionError ? error.failure : error;
    }
  }

  private send(url: string, request: MeshRequest, freshConnection: boolean): Promise<MeshResponse> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(new MeshCallError('MESH_CALL_FAILED', url, `not a URL: ${url}`));
    }
    if (target.protocol !== 'http:') return Promise.reject(new MeshCallError('MESH_CALL_FAILED', url, `only http: URLs are supported, got ${url}`));
    const hostHeader = target.host; // includes the port when it is not 80
    const headers: Record<string, string> = { ...request.headers, host: hostHeader };
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
    const options: http.RequestOptions = this.proxy
      ? { host: this.proxy.hostname, port: Number(this.proxy.port), path: target.href }
      : { host: target.hostname, port: target.port === '' ? 80 : Number(target.port), path: `${target.pathname}${target.search}` };
    options.method = request.method ?? 'GET';
    options.headers = headers;
    options.agent = freshConnection ? false : this.agent;

    return new Promise<MeshResponse>((resolve, reject) => {
      let settled = false;
      const fail = (error: MeshCallError | StaleConnectionError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };
      const req = http.request(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxBodyBytes) {
            req.destroy();
            fail(new MeshCallError('MESH_CALL_FAILED', url, `${url}: response body larger than ${this.maxBodyBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (error) => fail(new MeshCallError('MESH_CALL_FAILED', url, `${url}: ${error.message}`, { cause: error })));
      });
      const timeoutMs = request.timeoutMs;
      const timer = timeoutMs !== undefined
        ? setTimeout(() => {
            fail(new MeshCallError('MESH_CALL_TIMEOUT', url, `${url}: no response within ${timeoutMs} ms`));
            req.destroy();
          }, timeoutMs)
        : undefined;
      let responded = false;
      req.once('response', () => { responded = true; });
      req.on('error', (error: NodeJS.ErrnoException) => {
        const failure = new MeshCallError('MESH_CALL_FAILED', url, `${url}: ${error.message}`, { cause: error });
        const stale = req.reusedSocket && !responded && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        fail(stale ? new StaleConnectionError(failure) : failure);
      });
      req.end(request.body);
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}
