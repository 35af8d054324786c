// The ADS gRPC server: serves StreamAggregatedResources (SotW) and DeltaAggregatedResources (incremental) from a ResourceSource.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../ads-service.js';
import { describeError } from '../../common/errors.js';
import { RESOURCE_TYPE_URLS } from '../type-urls.js';
import type { AdsServerEvents } from './ads-events.js';
import { ADS_SERVER_DEFINITION, MalformedRequest } from './ads-server-definition.js';
import type { AdsLogger, AdsRequest, AdsStream, StreamContext } from './ads-stream.js';
import { DeltaStream } from './delta-stream.js';
import type { ResourceSource } from './resource-source.js';
import type { ResponseSink } from './response-scheduler.js';
import { SotwStream } from './sotw-stream.js';
import type { StreamMode, StreamStatus } from './stream-status.js';

export type { AdsLogger } from './ads-stream.js';

export interface AdsServerOptions {
  readonly source: ResourceSource;
  readonly logger?: AdsLogger;
  /** Type URLs served; requests for others are recorded and left unanswered. Default: LDS, RDS, CDS, EDS, SDS. */
  readonly typeUrls?: readonly string[];
}

/** A port `listen()` bound, and how to stop it. */
export interface AdsListener {
  readonly port: number;
  close(): Promise<void>;
}

// Streams are grouped by the grpc.Server they arrived on, so closing one listener ends only its streams.
interface ServerGroup {
  readonly server: grpc.Server;
  readonly owned: boolean;
}

interface StreamEntry {
  readonly stream: AdsStream<AdsRequest, unknown>;
  readonly group: ServerGroup;
  end(reason: string): void;
}

const SHUTDOWN_GRACE_MS = 2_000;

export class AdsServer extends EventEmitter<AdsServerEvents> {
  private readonly source: ResourceSource;
  private readonly logger: AdsLogger;
  private readonly servedTypeUrls: ReadonlySet<string>;
  private readonly entries = new Map<string, StreamEntry>();
  private readonly groups = new Set<ServerGroup>();
  // A random prefix keeps stream ids (and the nonces built from them) distinct across server restarts.
  private readonly idPrefix = randomBytes(3).toString('hex');
  private serial = 0;

  constructor(options: AdsServerOptions) {
    super();
    this.source = options.source;
    this.logger = options.logger ?? { warn: (message) => console.warn(message) };
    this.servedTypeUrls = new Set(options.typeUrls ?? RESOURCE_TYPE_URLS);
  }

  /** Registers both ADS methods on a grpc.Server the caller owns (and binds, and shuts down). */
  addTo(server: grpc.Server): void {
    this.register({ server, owned: false });
  }

  /** Binds a new grpc.Server to `address` (port 0 picks a free port) serving ADS; plaintext unless credentials are given. */
  async listen(address: string, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<AdsListener> {
    const server = new grpc.Server();
    const group: ServerGroup = { server, owned: true };
    this.register(group);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, credentials, (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
    }).catch((err: unknown) => {
      this.groups.delete(group);
      server.forceShutdown();
      throw err;
    });
    return { port, close: () => this.closeGroup(group) };
  }

  /** Ends every stream cleanly (status OK, so clients reconnect elsewhere) and shuts down servers made by listen(). */
  async close(): Promise<void> {
    await Promise.all([...this.groups].map((group) => this.closeGroup(group)));
  }

  /** Per-stream status for proxy-status and debug endpoints; streams appear once their first request arrived. */
  streams(): StreamStatus[] {
    const out: StreamStatus[] = [];
    for (const entry of this.entries.values()) if (entry.stream.identified) out.push(entry.stream.status());
    return out;
  }

  private register(group: ServerGroup): void {
    this.groups.add(group);
    group.server.addService(ADS_SERVER_DEFINITION, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest | MalformedRequest, DiscoveryResponse>) =>
        this.serve(call, group, 'sotw', (context, sink: ResponseSink<DiscoveryResponse>) => new SotwStream(context, sink)),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest | MalformedRequest, DeltaDiscoveryResponse>) =>
        this.serve(call, group, 'delta', (context, sink: ResponseSink<DeltaDiscoveryResponse>) => new DeltaStream(context, sink)),
    });
  }

  private serve<Request extends AdsRequest, Response>(
    call: grpc.ServerDuplexStream<Request | MalformedRequest, Response>,
    group: ServerGroup,
    mode: StreamMode,
    create: (context: StreamContext, sink: ResponseSink<Response>) => AdsStream<Request, Response>,
  ): void {
    const id = `${this.idPrefix}-${++this.serial}`;
    const context: StreamContext = {
      id,
      peer: safePeer(call),
      source: this.source,
      servedTypeUrls: this.servedTypeUrls,
      logger: this.logger,
      emit: (event, ...args) => this.safeEmit(event, ...args),
    };
    const stream = create(context, call);
    let ended = false;
    // Every way a call can finish funnels here: state is dropped and the watch cancelled exactly once,
    // and nothing is written after the call ended.
    const end = (reason: string, status?: { code: grpc.status; details: string }): void => {
      if (ended) return;
      ended = true;
      stream.close(reason);
      this.entries.delete(id);
      if (call.destroyed || call.writableEnded) return;
      if (status) call.emit('error', Object.assign(new Error(status.details), status));
      else call.end();
    };
    const reject = (message: string, code: grpc.status): void => {
      this.logger.warn(`ADS stream ${id} (${mode}) from ${context.peer}: ${message}; ending the stream`);
      this.safeEmit('protocol-error', { streamId: id, mode, message });
      end(`protocol error: ${message}`, { code, details: message });
    };
    this.entries.set(id, { stream: stream as unknown as AdsStream<AdsRequest, unknown>, group, end: (reason) => end(reason) });

    call.on('data', (request: Request | MalformedRequest) => {
      if (ended) return;
      if (request instanceof MalformedRequest) return reject(`malformed request: ${request.reason}`, grpc.status.INVALID_ARGUMENT);
      let violation;
      try {
        violation = stream.receive(request);
      } catch (err) {
        return reject(`internal error handling the request: ${describeError(err)}`, grpc.status.INTERNAL);
      }
      if (violation) reject(violation.message, grpc.status.INVALID_ARGUMENT);
    });
    // The client half-closed: xDS streams are meant to stay open, so finish our side too. grpc-js also
    // ends the readable side just before reporting a cancellation: wait a turn so the reason is right.
    call.on('end', () => setImmediate(() => end(call.cancelled ? 'cancelled by the client' : 'client closed the stream')));
    call.on('cancelled', () => end('cancelled by the client'));
    call.on('error', (err: Error) => end(`stream error: ${err.message}`));
    call.on('close', () => end('call closed'));
  }

  private async closeGroup(group: ServerGroup): Promise<void> {
    for (const entry of [...this.entries.values()]) if (entry.group === group) entry.end('server closing');
    if (!this.groups.delete(group) || !group.owned) return;
    const { server } = group;
    await new Promise<void>((resolve) => {
      // tryShutdown waits for calls to finish; a client that never reads its trailers must not hold close() forever.
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private safeEmit<E extends keyof AdsServerEvents>(event: E, ...args: AdsServerEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: AdsServerEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      // A metrics listener that throws must not take a stream, or the process, down with it.
      this.logger.warn(`ADS server: a '${String(event)}' listener threw: ${describeError(err)}`);
    }
  }
}

function safePeer(call: { getPeer(): string }): string {
  try {
    return call.getPeer();
  } catch {
    return 'unknown';
  }
}
