// Envoy's HTTP health check: a request (GET path by default, HTTP/1.1 or HTTP/2) whose status must be in the expected
// ranges; x-envoy-degraded in the answer marks the host degraded; retriable statuses count towards the threshold.
import { Agent, request, type ClientRequestArgs, type IncomingMessage } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { HttpProbeConfig, StatusRanges } from './health-check-config.js';
import { probeFinisher, probeH2Session, type HealthProbe, type ProbeConnect, type ProbeOutcome } from './health-probe.js';

function inRanges(status: number, ranges: StatusRanges): boolean {
  return ranges.some(([start, end]) => status >= start && status < end);
}

/** The verdict on one response: Envoy's HttpActiveHealthCheckSession::healthCheckResult. */
export function httpCheckOutcome(config: HttpProbeConfig, status: number, degraded: boolean): ProbeOutcome {
  if (inRanges(status, config.expectedStatuses)) return { healthy: true, degraded };
  return { healthy: false, type: 'ACTIVE', retriable: inRanges(status, config.retriableStatuses), detail: `status ${status}` };
}

/** An Agent that opens its (single) connection through the health checker's connector, so TLS and alt_port apply. */
class ProbeAgent extends Agent {
  constructor(private readonly open: ProbeConnect) {
    super({ keepAlive: true, maxSockets: 1 });
  }
  override createConnection(_options: ClientRequestArgs, _callback?: (err: Error | null, stream: Duplex) => void): Duplex {
    return this.open(['http/1.1']);
  }
}

export class HttpProbe implements HealthProbe {
  private agent: ProbeAgent | undefined;
  private session: ClientHttp2Session | undefined;

  constructor(
    private readonly config: HttpProbeConfig,
    private readonly connect: ProbeConnect,
    private readonly reuseConnection: boolean,
  ) {
    this.requestHeaders = HttpProbe.requestHeaders(config);
  }

  /** user-agent, request_headers_to_add and request_headers_to_remove: fixed by the config, built once. */
  private readonly requestHeaders: Record<string, string | string[]>;

  private static requestHeaders(config: HttpProbeConfig): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = { 'user-agent': 'Envoy/HC' };
    for (const h of config.headersToAdd) {
      const prev = out[h.name];
      out[h.name] = h.append && prev !== undefined ? [...(Array.isArray(prev) ? prev : [prev]), h.value] : h.value;
    }
    for (const name of config.headersToRemove) delete out[name];
    return out;
  }

  check(): Promise<ProbeOutcome> {
    return this.config.http2 ? this.checkH2() : this.checkH1();
  }

  private checkH1(): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const finish = probeFinisher(resolve, () => this.reset(), this.reuseConnection);
      const agent = (this.agent ??= new ProbeAgent(this.connect));
      const req = request({ agent, method: this.config.method, path: this.config.path, headers: { host: this.config.host, ...this.requestHeaders } }, (res: IncomingMessage) => {
        const outcome = httpCheckOutcome(this.config, res.statusCode ?? 0, res.headers['x-envoy-degraded'] !== undefined);
        // The body is read and dropped so the connection can carry the next check.
        res.resume();
        res.on('end', () => finish(outcome, !outcome.healthy || res.headers.connection === 'close'));
        res.on('error', (err) => finish({ healthy: false, type: 'NETWORK', retriable: true, detail: err.message }, true));
      });
      req.on('error', (err) => finish({ healthy: false, type: 'NETWORK', retriable: true, detail: err.message }, true));
      req.end();
    });
  }

  private checkH2(): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const finish = probeFinisher(resolve, () => this.reset(), this.reuseConnection);
      const session = (this.session = probeH2Session(this.session, this.config.host, this.connect));
      const failed = (err: Error): void => finish({ healthy: false, type: 'NETWORK', retriable: true, detail: err.message }, true);
      let stream;
      try {
        stream = session.request({ ':method': this.config.method, ':path': this.config.path, ':authority': this.config.host, ...this.requestHeaders }, { endStream: true });
      } catch (err) {
        failed(err as Error);
        return;
      }
      let outcome: ProbeOutcome | undefined;
      stream.on('response', (headers) => {
        outcome = httpCheckOutcome(this.config, Number(headers[':status'] ?? 0), headers['x-envoy-degraded'] !== undefined);
      });
      stream.resume();
      stream.on('end', () => finish(outcome ?? { healthy: false, type: 'NETWORK', retriable: true, detail: 'stream ended without a response' }, outcome?.healthy !== true));
      stream.on('error', failed);
      stream.on('close', () => finish(outcome ?? { healthy: false, type: 'NETWORK', retriable: true, detail: 'stream reset' }, true));
    });
  }

  reset(): void {
    this.agent?.destroy();
    this.agent = undefined;
    this.session?.destroy();
    this.session = undefined;
  }
}
