// Coalesces pushes per stream: a set of dirty type URLs, flushed with the latest state whenever the call is writable.
import { RESOURCE_TYPE_URLS } from '../type-urls.js';

/** The part of a grpc-js server call the scheduler writes to. */
export interface ResponseSink<Response> {
  write(message: Response): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Builds the response for a type at the moment it can be written, or undefined when the client
 * already has everything (building also records the nonce and version as sent).
 */
export type BuildResponse<Response> = (typeUrl: string) => Response | undefined;

// Make-before-break order of the xDS spec ("Eventual consistency considerations"): CDS, EDS, LDS, RDS, then SDS and the rest.
const PUSH_ORDER: ReadonlyMap<string, number> = new Map(RESOURCE_TYPE_URLS.map((url, index) => [url, index]));

function rank(typeUrl: string): number {
  return PUSH_ORDER.get(typeUrl) ?? PUSH_ORDER.size;
}

export class ResponseScheduler<Response> {
  // Memory stays bounded by the number of types: a slow or never-ACKing client costs one entry per type, never a queue.
  private readonly dirty = new Set<string>();
  private scheduled = false;
  private waitingForDrain = false;
  private closed = false;

  constructor(
    private readonly sink: ResponseSink<Response>,
    private readonly build: BuildResponse<Response>,
  ) {}

  /** Asks for a response of `typeUrl` reflecting the state at write time. */
  markDirty(typeUrl: string): void {
    if (this.closed) return;
    this.dirty.add(typeUrl);
    this.schedule();
  }

  /** Number of types waiting to be written (for status and tests). */
  get pending(): number {
    return this.dirty.size;
  }

  /** Stops writing for good; called when the call ends, so nothing is written after end. */
  close(): void {
    this.closed = true;
    this.dirty.clear();
  }

  private schedule(): void {
    if (this.scheduled || this.waitingForDrain || this.closed) return;
    this.scheduled = true;
    // setImmediate lets a burst of source changes (and requests already read) land before building responses.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const order = [...this.dirty].sort((a, b) => rank(a) - rank(b));
    for (const typeUrl of order) {
      if (this.closed || this.waitingForDrain) return;
      this.dirty.delete(typeUrl);
      const response = this.build(typeUrl);
      if (response === undefined || this.closed) continue;
      if (!this.sink.write(response)) {
        this.waitingForDrain = true;
        this.sink.once('drain', () => {
          this.waitingForDrain = false;
          if (this.dirty.size > 0) this.schedule();
        });
      }
    }
  }
}
