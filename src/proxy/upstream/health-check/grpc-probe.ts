// Envoy's gRPC health check: grpc.health.v1.Health/Check over HTTP/2; healthy only for HTTP 200, grpc-status 0 and SERVING.
import type { ClientHttp2Session } from 'node:http2';
import type { GrpcProbeConfig } from './health-check-config.js';
import { probeFinisher, probeH2Session, type HealthProbe, type ProbeConnect, type ProbeOutcome } from './health-probe.js';

/**
 * The request and response are one-field messages (HealthCheckRequest.service = 1, HealthCheckResponse.status = 1),
 * encoded here rather than through @grpc/grpc-js: the check must run over the cluster's own connection to one given
 * host (its TLS, alt_port), which a grpc-js channel with its own resolver and balancer does not offer.
 */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const body = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const frame = Buffer.alloc(5);
  frame.writeUInt8(0, 0); // not compressed
  frame.writeUInt32BE(body.length, 1);
  return Buffer.concat([frame, body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

export const SERVING = 1;

/** HealthCheckResponse.status from one gRPC message frame; undefined when the frame is malformed. */
export function decodeServingStatus(data: Buffer): number | undefined {
  if (data.length < 5 || data[0] !== 0) return undefined;
  const length = data.readUInt32BE(1);
  if (data.length < 5 + length) return undefined;
  const body = data.subarray(5, 5 + length);
  let status = 0; // proto3 default: UNKNOWN
  let i = 0;
  while (i < body.length) {
    const key = body[i++]!;
    const wire = key & 7;
    if (wire !== 0 && wire !== 2) return undefined;
    // Wire type 0 is the value itself; wire type 2 a length, whose bytes are skipped.
    const read = readVarint(body, i);
    if (!read) return undefined;
    const [value, next] = read;
    if (wire === 0) {
      if (key >> 3 === 1) status = value;
      i = next;
    } else {
      i = next + value;
    }
  }
  return status;
}

/** A base-128 varint at `at`: [value, offset after it], or undefined when the body ends inside it. */
function readVarint(body: Buffer, at: number): [number, number] | undefined {
  let value = 0;
  let shift = 0;
  for (let i = at; i < body.length; i++) {
    const b = body[i]!;
    value |= (b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  return undefined;
}

export class GrpcProbe implements HealthProbe {
  private session: ClientHttp2Session | undefined;

  constructor(
    private readonly config: GrpcProbeConfig,
    private readonly connect: ProbeConnect,
    private readonly reuseConnection: boolean,
  ) {}

  check(): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const settle = probeFinisher(resolve, () => this.reset(), this.reuseConnection);
      // A failed check drops the session; a healthy one keeps it for the next when connections are reused.
      const finish = (outcome: ProbeOutcome): void => settle(outcome, !outcome.healthy);
      const network = (detail: string): void => finish({ healthy: false, type: 'NETWORK', retriable: true, detail });
      const session = (this.session = probeH2Session(this.session, this.config.authority, this.connect));
      const headers: Record<string, string> = {
        ':method': 'POST',
        ':path': '/grpc.health.v1.Health/Check',
        ':authority': this.config.authority,
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': 'Envoy/HC',
      };
      for (const m of this.config.initialMetadata) headers[m.name] = m.value;
      let stream;
      try {
        stream = session.request(headers);
      } catch (err) {
        network((err as Error).message);
        return;
      }
      let httpStatus = 0;
      let grpcStatus: string | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        httpStatus = Number(h[':status'] ?? 0);
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      stream.on('trailers', (t) => {
        if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (httpStatus !== 200) return finish({ healthy: false, type: 'ACTIVE', retriable: false, detail: `HTTP status ${httpStatus}` });
        if (grpcStatus !== '0') return finish({ healthy: false, type: 'ACTIVE', retriable: false, detail: `grpc-status ${grpcStatus ?? '(none)'}` });
        const serving = decodeServingStatus(Buffer.concat(chunks));
        if (serving === undefined) return network('malformed HealthCheckResponse');
        if (serving !== SERVING) return finish({ healthy: false, type: 'ACTIVE', retriable: false, detail: `serving status ${serving}` });
        finish({ healthy: true, degraded: false });
      });
      stream.on('error', (err: Error) => network(err.message));
      stream.on('close', () => network('stream reset'));
      stream.end(encodeHealthCheckRequest(this.config.serviceName));
    });
  }

  reset(): void {
    this.session?.destroy();
    this.session = undefined;
  }
}
