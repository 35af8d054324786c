// Test harness: a SnapshotCache behind an AdsServer on 127.0.0.1:0, and raw grpc-js ADS client streams that queue responses.
import * as grpc from '@grpc/grpc-js';
import {
  ADS_SERVICE_DEFINITION,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../../src/xds/ads-service.js';
import { unpackAny, type Any } from '../../../src/xds/codec.js';
import { AdsServer, type AdsListener } from '../../../src/xds/server/ads-server.js';
import { SnapshotCache, type SnapshotCacheOptions } from '../../../src/xds/server/snapshot-cache.js';
import * as urls from '../../../src/xds/type-urls.js';

export const NODE = { id: 'sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local', cluster: 'productpage.default' };

export const WAIT_MS = 5_000;

/** Every warning the server logged, so tests can assert on them and keep the output quiet. */
export class CapturingLogger {
  readonly warnings: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
}

export interface Harness {
  readonly cache: SnapshotCache;
  readonly server: AdsServer;
  readonly logger: CapturingLogger;
  readonly address: string;
  readonly client: grpc.Client;
  sotw(): ClientStream<DiscoveryRequest, DiscoveryResponse>;
  delta(): ClientStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  /** A stream on `path` whose requests are raw bytes, to send what no encoder would produce. */
  raw(path: string): ClientStream<Buffer, unknown>;
  close(): Promise<void>;
}

export async function startHarness(cacheOptions: SnapshotCacheOptions = {}): Promise<Harness> {
  const cache = new SnapshotCache(cacheOptions);
  const logger = new CapturingLogger();
  const server = new AdsServer({ source: cache, logger });
  const listener: AdsListener = await server.listen('127.0.0.1:0');
  const address = `127.0.0.1:${listener.port}`;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const streams: ClientStream<unknown, unknown>[] = [];
  const track = <Req, Res>(stream: ClientStream<Req, Res>): ClientStream<Req, Res> => {
    streams.push(stream as ClientStream<unknown, unknown>);
    return stream;
  };
  const sotwDef = ADS_SERVICE_DEFINITION.StreamAggregatedResources;
  const deltaDef = ADS_SERVICE_DEFINITION.DeltaAggregatedResources;
  return {
    cache,
    server,
    logger,
    address,
    client,
    sotw: () => track(new ClientStream(client.makeBidiStreamRequest(sotwDef.path, sotwDef.requestSerialize, sotwDef.responseDeserialize))),
    delta: () => track(new ClientStream(client.makeBidiStreamRequest(deltaDef.path, deltaDef.requestSerialize, deltaDef.responseDeserialize))),
    raw: (path) => track(new ClientStream(client.makeBidiStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b as unknown))),
    async close() {
      for (const stream of streams) stream.cancel();
      client.close();
      await listener.close();
      await server.close();
    },
  };
}

/** A client ADS stream whose responses queue up until a test takes them, in order. */
export class ClientStream<Req, Res> {
  private readonly queue: Res[] = [];
  private waiter: (() => void) | undefined;
  private finalStatus: grpc.StatusObject | undefined;
  received = 0;

  constructor(readonly call: grpc.ClientDuplexStream<Req, Res>) {
    call.on('data', (message: Res) => {
      this.received++;
      this.queue.push(message);
      this.wake();
    });
    call.on('status', (status: grpc.StatusObject) => {
      this.finalStatus = status;
      this.wake();
    });
    // A non-OK status also arrives as 'error'; the 'status' handler records it.
    call.on('error', () => {});
  }

  send(request: Req): void {
    this.call.write(request);
  }

  /** The next response, waiting at most `timeoutMs`; fails if the stream ends first. */
  async next(timeoutMs = WAIT_MS): Promise<Res> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.queue.shift();
      if (message !== undefined) return message;
      if (this.finalStatus) throw new Error(`stream ended (${this.finalStatus.code} ${this.finalStatus.details}) while waiting for a response`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await this.sleepUntilWoken(left);
    }
  }

  /** The final status, waiting at most `timeoutMs`. */
  async status(timeoutMs = WAIT_MS): Promise<grpc.StatusObject> {
    const deadline = Date.now() + timeoutMs;
    while (!this.finalStatus) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stream did not end within ${timeoutMs} ms`);
      await this.sleepUntilWoken(left);
    }
    return this.finalStatus;
  }

  get pending(): number {
    return this.queue.length;
  }

  cancel(): void {
    this.call.cancel();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Polls `condition` at most `tries` times, `intervalMs` apart; fails with `what` otherwise. */
export async function eventually(what: string, condition: () => boolean, tries = 100, intervalMs = 20): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`gave up waiting for: ${what}`);
}

/** Names of the resources in a SotW response (the `name`, or `cluster_name` for ClusterLoadAssignment). */
export function namesOf(resources: readonly Any[] | undefined): string[] {
  return (resources ?? []).map((any) => {
    const decoded = unpackAny<{ name?: string; cluster_name?: string }>(any);
    return decoded.name ?? decoded.cluster_name ?? '';
  }).sort();
}

export function cluster(name: string, connectTimeoutSeconds = 1): { name: string; resource: object } {
  return { name, resource: { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: { seconds: connectTimeoutSeconds } } };
}

export function endpoints(name: string, ...ips: string[]): { name: string; resource: object } {
  return {
    name,
    resource: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: ips.map((ip) => ({ endpoint: { address: { socket_address: { address: ip, port_value: 9080 } } } })) }],
    },
  };
}

export function listener(name: string, port: number): { name: string; resource: object } {
  return { name, resource: { name, address: { socket_address: { address: '0.0.0.0', port_value: port } } } };
}

export function secret(name: string): { name: string; resource: object } {
  return { name, resource: { name } };
}

export const { LISTENER: LDS, CLUSTER: CDS, CLUSTER_LOAD_ASSIGNMENT: EDS, ROUTE_CONFIGURATION: RDS, SECRET: SDS } = urls;

/**
 * Sends an SDS request for a fresh name and returns the next response, which must be its answer:
 * requests are handled in order and SDS is pushed last, so any response an earlier request
 * wrongly caused would arrive before it. This proves "no response" without sleeping.
 */
export async function sotwBarrier(stream: ClientStream<DiscoveryRequest, DiscoveryResponse>, label: string): Promise<DiscoveryResponse> {
  stream.send({ type_url: SDS, resource_names: [`barrier-${label}`] });
  const response = await stream.next();
  if (response.type_url !== SDS) throw new Error(`expected only the ${label} barrier's SDS response, got a ${response.type_url} response`);
  return response;
}

export async function deltaBarrier(stream: ClientStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>, label: string): Promise<DeltaDiscoveryResponse> {
  stream.send({ type_url: SDS, resource_names_subscribe: [`barrier-${label}`] });
  const response = await stream.next();
  if (response.type_url !== SDS) throw new Error(`expected only the ${label} barrier's SDS response, got a ${response.type_url} response`);
  return response;
}
