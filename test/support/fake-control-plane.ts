// A scriptable ADS server for client tests: records every request, sends exactly the responses a test writes, drops streams on demand.
import * as grpc from '@grpc/grpc-js';
import {
  ADS_SERVICE_DEFINITION,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../src/xds/ads-service.js';

export type RecordedRequest =
  | { readonly method: 'sotw'; readonly stream: number; readonly request: DiscoveryRequest }
  | { readonly method: 'delta'; readonly stream: number; readonly request: DeltaDiscoveryRequest };

/** Bytes sent as a response message as they are, to play a control plane that sends garbage. */
export class RawResponse {
  constructor(readonly bytes: Uint8Array) {}
}

type SotwCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse | RawResponse>;
type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse | RawResponse>;

interface OpenStream {
  readonly id: number;
  readonly method: 'sotw' | 'delta';
  readonly call: SotwCall | DeltaCall;
}

const DEFAULT_WAIT_MS = 5000;

function passRaw<T extends object>(serialize: (value: T) => Buffer): (value: T | RawResponse) => Buffer {
  return (value) => (value instanceof RawResponse ? Buffer.from(value.bytes) : serialize(value));
}

const { StreamAggregatedResources: sotw, DeltaAggregatedResources: delta } = ADS_SERVICE_DEFINITION;
const FAKE_DEFINITION = {
  StreamAggregatedResources: { ...sotw, responseSerialize: passRaw(sotw.responseSerialize) },
  DeltaAggregatedResources: { ...delta, responseSerialize: passRaw(delta.responseSerialize) },
};

export class FakeControlPlane {
  /** Every request received, in order, across all streams. */
  readonly requests: RecordedRequest[] = [];
  /** How many streams clients have opened so far. */
  streamsOpened = 0;
  private consumed = 0;
  private readonly open = new Map<number, OpenStream>();
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  static async start(): Promise<FakeControlPlane> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    const fake = new FakeControlPlane(server, `127.0.0.1:${port}`);
    server.addService(FAKE_DEFINITION, {
      StreamAggregatedResources: (call: SotwCall) => fake.accept('sotw', call),
      DeltaAggregatedResources: (call: DeltaCall) => fake.accept('delta', call),
    });
    return fake;
  }

  /** The next request not yet taken by a test, waiting for it (bounded). */
  async nextRequest(timeoutMs = DEFAULT_WAIT_MS): Promise<RecordedRequest> {
    await this.until(() => this.requests.length > this.consumed, timeoutMs, 'a request');
    return this.requests[this.consumed++]!;
  }

  async nextSotwRequest(timeoutMs?: number): Promise<DiscoveryRequest> {
    const recorded = await this.nextRequest(timeoutMs);
    if (recorded.method !== 'sotw') throw new Error(`expected a StreamAggregatedResources request, got a Delta one: ${JSON.stringify(recorded.request)}`);
    return recorded.request;
  }

  async nextDeltaRequest(timeoutMs?: number): Promise<DeltaDiscoveryRequest> {
    const recorded = await this.nextRequest(timeoutMs);
    if (recorded.method !== 'delta') throw new Error(`expected a DeltaAggregatedResources request, got a SotW one: ${JSON.stringify(recorded.request)}`);
    return recorded.request;
  }

  /** Requests received but not yet taken by nextRequest(). */
  pendingRequests(): readonly RecordedRequest[] {
    return this.requests.slice(this.consumed);
  }

  /** Waits (bounded) until `count` streams have been opened in total. */
  async waitForStreams(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await this.until(() => this.streamsOpened >= count, timeoutMs, `${count} stream(s)`);
  }

  /** Sends a response on the newest open stream. */
  respond(response: DiscoveryResponse | DeltaDiscoveryResponse | RawResponse): void {
    const stream = [...this.open.values()].at(-1);
    if (!stream) throw new Error('no open ADS stream to respond on');
    (stream.call as grpc.ServerDuplexStream<unknown, typeof response>).write(response);
  }

  /** Ends every open stream with a status (UNAVAILABLE by default), as a control plane restart would. */
  dropStreams(code: grpc.status = grpc.status.UNAVAILABLE, details = 'dropped by the fake control plane'): void {
    for (const stream of this.open.values()) stream.call.emit('error', { code, details });
    this.open.clear();
  }

  get openStreams(): number {
    return this.open.size;
  }

  async close(): Promise<void> {
    this.dropStreams(grpc.status.UNAVAILABLE, 'fake control plane closing');
    this.server.forceShutdown();
    this.wake();
  }

  private accept(method: 'sotw' | 'delta', call: SotwCall | DeltaCall): void {
    const id = ++this.streamsOpened;
    this.open.set(id, { id, method, call });
    // Headers at once, so a client sees the stream established before any response (as a real server may).
    call.sendMetadata(new grpc.Metadata());
    call.on('data', (request: DiscoveryRequest | DeltaDiscoveryRequest) => {
      this.requests.push({ method, stream: id, request } as RecordedRequest);
      this.wake();
    });
    call.on('error', () => this.open.delete(id));
    call.on('end', () => {
      if (this.open.delete(id)) call.end();
    });
    call.on('cancelled', () => this.open.delete(id));
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`fake control plane: timed out after ${timeoutMs} ms waiting for ${what}; pending requests: ${JSON.stringify(this.pendingRequests().map((r) => r.request.type_url))}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** Waits (bounded in time and count) for `condition`, polling; for state the client reaches asynchronously. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    if (condition()) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
}
