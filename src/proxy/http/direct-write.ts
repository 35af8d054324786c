// Socket writes straight to the libuv handle, past the Writable stream layer, when nothing is queued in front of them.
//
// Why: each `socket.write()` goes through Writable.write → writeOrBuffer → Socket._write → writeGeneric → a WriteWrap
// and, after the (nearly always synchronous) write, a process.nextTick for Writable's afterWrite; perf put that layer
// at ~6% of the proxy's CPU for its two writes per request (docs/performance.md). The handle's own writeBuffer /
// writeLatin1String do the syscall (uv_try_write first) and report whether anything is left pending in libuv. This is
// the same call node's writeGeneric makes, with the same WriteWrap from the stream_wrap binding (`process.binding`
// still exposes it in Node 18-22; there is no public API for it).
//
// Ordering stays right when direct and Writable writes mix: libuv queues writes on the stream in call order, and a
// uv_try_write behind a pending write does not jump the queue. The caller decides when a direct write is allowed
// (`canWriteDirect`) and tracks completion of the rare write that libuv could not finish at once (`onComplete`);
// `ConnectionWriter` is that caller for one connection (the downstream codec's and the upstream pool's).

import type { Duplex } from 'node:stream';

interface WriteWrapLike {
  handle: object;
  oncomplete: (status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | string | null;
}

/** The parts of a libuv stream handle (node's LibuvStreamWrap) a direct write uses. */
export interface WritableStreamHandle {
  writeBuffer(req: object, data: Buffer): number;
  writeLatin1String(req: object, data: string): number;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteWrapLike;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

function loadBinding(): StreamWrapBinding | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof binding.WriteWrap !== 'function' || !binding.streamBaseState || typeof binding.kLastWriteWasAsync !== 'number') return undefined;
    return binding as StreamWrapBinding;
  } catch {
    return undefined;
  }
}

const binding = loadBinding();

/** Whether this Node exposes what direct writes need (otherwise callers keep using socket.write). */
export const DIRECT_WRITE_SUPPORTED = binding !== undefined && process.env['TRELLIS_DIRECT_WRITE'] !== '0';

/** A socket as far as the direct-write preconditions go. */
interface SocketState {
  readonly writableLength: number;
  readonly writableCorked: number;
  readonly writable: boolean;
  readonly connecting?: boolean;
}

/**
 * True when a direct write would not overtake or bypass anything: nothing buffered or corked in the Writable, the
 * socket open for writing and connected.
 */
export function canWriteDirect(socket: SocketState): boolean {
  return socket.writableLength === 0 && socket.writableCorked === 0 && socket.writable && socket.connecting !== true;
}

/**
 * Writes `data` (a Buffer, or a string as latin1) on `handle`. Returns 0 when libuv wrote all of it now, 1 when part is
 * still pending (then `onComplete(status)` runs once it finished or failed; status < 0 is an error), or a negative
 * libuv error code when the write failed at once (the caller destroys the socket).
 */
export function writeDirect(handle: WritableStreamHandle, data: Buffer | string, onComplete: (status: number) => void): number {
  const b = binding!;
  const req = new b.WriteWrap();
  req.handle = handle;
  req.oncomplete = onComplete;
  req.async = false;
  req.bytes = 0;
  req.buffer = null;
  const err = typeof data === 'string' ? handle.writeLatin1String(req, data) : handle.writeBuffer(req, data);
  if (err !== 0) return err < 0 ? err : -1;
  if (b.streamBaseState[b.kLastWriteWasAsync]) {
    // Keep the bytes referenced until libuv is done with them (node's writeGeneric does the same).
    req.buffer = data;
    req.async = true;
    return 1;
  }
  return 0;
}

/**
 * One connection's writes: straight to its consumed handle when nothing is queued in front and no direct write is still
 * pending in libuv, else through the socket (a string goes as latin1). `send` returns false when the caller should wait
 * for `onDrain`; a failed direct write destroys the socket.
 */
export class ConnectionWriter {
  /** Direct writes libuv has not finished yet: back-pressure until they complete. */
  private pending = 0;
  private readonly onComplete: (status: number) => void;

  constructor(
    private readonly socket: Duplex & { readonly connecting?: boolean },
    onDrain: () => void,
  ) {
    this.onComplete = (status: number): void => {
      this.pending--;
      if (status < 0) socket.destroy();
      else if (this.pending === 0) onDrain();
    };
  }

  send(handle: WritableStreamHandle | undefined, data: Buffer | string): boolean {
    const socket = this.socket;
    if (handle && DIRECT_WRITE_SUPPORTED && this.pending === 0 && canWriteDirect(socket)) {
      const r = writeDirect(handle, data, this.onComplete);
      if (r === 0) return true;
      if (r === 1) {
        this.pending++;
        return false;
      }
      socket.destroy();
      return true;
    }
    return typeof data === 'string' ? socket.write(data, 'latin1') : socket.write(data);
  }
}
