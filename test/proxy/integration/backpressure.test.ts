// Response back-pressure: a 50 MB upstream body to a client that stops reading. The proxy must stop reading the
// upstream (HTTP/1.1 and HTTP/2 pools) instead of holding the body in memory: while the client is paused the upstream
// cannot write more than a few socket/window buffers, memory stays bounded, and after resuming every byte arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { H2_UPSTREAM, startDataPlane, startH2Upstream, startUpstream, staticCluster, vhost } from './support.js';

const TOTAL = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
/** What may sit in socket buffers and flow-control windows on the way (kernel buffers on loopback can be a few MB). */
const IN_FLIGHT_LIMIT = 16 * 1024 * 1024;

/** Writes TOTAL bytes honouring the writer's back-pressure; `written` counts what the writer accepted. */
function pump(write: (c: Buffer) => boolean, onDrain: (cb: () => void) => void, end: () => void, progress: { written: number }): void {
  const step = (): void => {
    while (progress.written < TOTAL) {
      progress.written += CHUNK.length;
      if (!write(CHUNK)) return onDrain(step);
    }
    end();
  };
  step();
}

function externalMemory(): number {
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
}

async function pausedRead(start: (onChunk: (n: number) => void) => { pause(): void; resume(): void; done: Promise<number> }, progress: { written: number }): Promise<void> {
  let received = 0;
  const reader = start((n) => (received += n));
  // Read a little, then stop reading for a while.
  while (received < 1024 * 1024) await new Promise((r) => setTimeout(r, 10));
  reader.pause();
  const memoryBefore = externalMemory();
  await new Promise((r) => setTimeout(r, 1500));
  const writtenWhilePaused = progress.written;
  global.gc?.();
  const memoryGrowth = externalMemory() - memoryBefore;
  assert.ok(writtenWhilePaused - received < IN_FLIGHT_LIMIT, `upstream wrote ${writtenWhilePaused} bytes while the client had read ${received}: the proxy buffered the body`);
  assert.ok(memoryGrowth < IN_FLIGHT_LIMIT, `memory grew by ${memoryGrowth} bytes while the client was paused`);
  reader.resume();
  assert.equal(await reader.done, TOTAL);
}

test('back-pressure: 50 MB from an HTTP/1.1 upstream to a paused HTTP/1.1 client', async (t) => {
  const progress = { written: 0 };
  const up = await startUpstream('big', (_req, res) => {
    res.writeHead(200, { 'content-length': String(TOTAL) });
    pump((c) => res.write(c), (cb) => res.once('drain', cb), () => res.end(), progress);
  });
  const dp = await startDataPlane({ clusters: [staticCluster('big', [up.port])], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'big', timeout: '0s' } }])] });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  await pausedRead((onChunk) => {
    let res: import('node:http').IncomingMessage | undefined;
    let paused = false;
    const done = new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: dp.port, path: '/big', agent: false }, (r) => {
        res = r;
        let n = 0;
        if (paused) r.pause();
        r.on('data', (c: Buffer) => {
          n += c.length;
          onChunk(c.length);
        });
        r.on('end', () => resolve(n));
        r.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    return {
      pause: () => {
        paused = true;
        res?.pause();
      },
      resume: () => res?.resume(),
      done,
    };
  }, progress);
});

test('back-pressure: 50 MB from an HTTP/2 upstream to a paused HTTP/2 client', async (t) => {
  const progress = { written: 0 };
  const up = await startH2Upstream('big2', (stream) => {
    stream.respond({ ':status': 200, 'content-length': String(TOTAL) });
    pump((c) => stream.write(c), (cb) => stream.once('drain', cb), () => stream.end(), progress);
  });
  const dp = await startDataPlane({ clusters: [staticCluster('big2', [up.port], H2_UPSTREAM)], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'big2', timeout: '0s' } }])] });
  const session = h2connect(`http://${dp.address}`);
  t.after(async () => {
    session.destroy();
    await dp.close();
    await up.close();
  });
  await pausedRead((onChunk) => {
    const stream = session.request({ ':path': '/big' });
    const done = new Promise<number>((resolve, reject) => {
      let n = 0;
      stream.on('data', (c: Buffer) => {
        n += c.length;
        onChunk(c.length);
      });
      stream.on('end', () => resolve(n));
      stream.on('error', reject);
    });
    return { pause: () => stream.pause(), resume: () => stream.resume(), done };
  }, progress);
});
