// Micro-benchmark: sequential 1 KiB GETs to a local upstream through the HTTP/1.1 pool, a bare keep-alive http.Agent, and no keep-alive.
// Run: npx tsc -p . && node dist/bench/upstream-http1-pool.js [requests]
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileCluster } from '../src/proxy/upstream/cluster.js';

const N = Number(process.argv[2] ?? 20000);
const body = Buffer.alloc(1024, 'x');
const server = createServer((_req, res) => res.end(body));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const port = (server.address() as AddressInfo).port;

async function loop(name: string, one: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 500; i++) await one();
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await one();
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const rps = N / secs;
  console.log(`${name}: ${Math.round(rps)} req/s`);
  return rps;
}

function viaNode(agent: Agent | false): () => Promise<void> {
  return () =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
}

const cluster = compileCluster({
  name: 'bench',
  type: 'STATIC',
  load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
});
const host = cluster.chooseHost({})!;
const headers = { ':method': 'GET', ':path': '/', ':authority': 'bench', ':scheme': 'http' };
const viaPool = (): Promise<void> =>
  new Promise((resolve, reject) => {
    cluster.request(host, headers, { onHeaders: () => undefined, onData: () => undefined, onEnd: resolve, onFailure: (f, d) => reject(new Error(`${f}: ${d}`)) }).end();
  });

const rounds: Record<string, number[]> = { pool: [], agent: [], noKeepAlive: [] };
for (let round = 0; round < 3; round++) {
  rounds.pool!.push(await loop('trellis http1 pool', viaPool));
  rounds.agent!.push(await loop('bare keep-alive Agent', viaNode(new Agent({ keepAlive: true }))));
  rounds.noKeepAlive!.push(await loop('no keep-alive', viaNode(false)));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`median req/s: pool ${Math.round(median(rounds.pool!))}, agent ${Math.round(median(rounds.agent!))}, no keep-alive ${Math.round(median(rounds.noKeepAlive!))}`);
console.log(`pool/agent ${(median(rounds.pool!) / median(rounds.agent!)).toFixed(2)}, pool/no-keep-alive ${(median(rounds.pool!) / median(rounds.noKeepAlive!)).toFixed(2)}`);
await cluster.drain();
server.close();
