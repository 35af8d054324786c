// Holds a pooled request's body chunks and end() until its connection/stream is assigned, then replays them in order.
import type { HttpHeaders } from '../../http/headers.js';

export class PendingBody {
  private chunks: Buffer[] | undefined;
  private ended: { trailers: HttpHeaders | undefined } | undefined;

  write(chunk: Buffer): void {
    (this.chunks ??= []).push(chunk);
  }

  end(trailers: HttpHeaders | undefined): void {
    this.ended = { trailers };
  }

  flush(write: (chunk: Buffer) => void, end: (trailers: HttpHeaders | undefined) => void): void {
    const chunks = this.chunks;
    this.chunks = undefined;
    if (chunks) for (const chunk of chunks) write(chunk);
    if (this.ended) end(this.ended.trailers);
  }
}
