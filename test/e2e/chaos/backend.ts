// The chaos suite's workload: answers 200 with its name, and misbehaves on command (503 with a probability, hang, exit).
//
// Started by the local mesh like any workload (PORT from its port block, CHAOS_NAME from the manifest's env).
// Behaviour comes from the environment at start and can be changed at run time on the application port itself
// (not through the mesh, so a test can steer a backend whatever the proxies do):
//   POST /__chaos?failRate=0.5   answer 503 to that share of requests (0..1)
//   POST /__chaos?hang=1         accept requests and never answer them (0 to stop)
//   POST /__chaos?exit=3         exit with that code after answering this request
//   GET  /__chaos                the current behaviour and counts, as JSON
// Every answer carries `x-chaos-backend: <name>` so the load generator can count who answered.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const name = process.env['CHAOS_NAME'] ?? process.env['SERVICE_VERSION'] ?? 'backend';
const port = Number(process.env['PORT']);
if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
  process.stderr.write(`backend: PORT must be a port number, got ${JSON.stringify(process.env['PORT'])}\n`);
  process.exit(2);
}

interface Behaviour {
  failRate: number;
  hang: boolean;
}

const behaviour: Behaviour = { failRate: rate(process.env['CHAOS_FAIL_RATE'] ?? '0', 'CHAOS_FAIL_RATE'), hang: process.env['CHAOS_HANG'] === '1' };
const counts = { ok: 0, failed: 0, hung: 0 };

function rate(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new RangeError(`${what} must be a number in [0, 1], got ${JSON.stringify(text)}`);
  return value;
}

function control(req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (req.method === 'GET') return json(res, 200, { name, ...behaviour, counts });
  if (req.method !== 'POST') return json(res, 405, { error: 'GET or POST' });
  let exitCode: number | undefined;
  try {
    const failRate = url.searchParams.get('failRate');
    if (failRate !== null) behaviour.failRate = rate(failRate, 'failRate');
    const hang = url.searchParams.get('hang');
    if (hang !== null) {
      if (hang !== '0' && hang !== '1') throw new RangeError(`hang must be 0 or 1, got ${JSON.stringify(hang)}`);
      behaviour.hang = hang === '1';
    }
    const exit = url.searchParams.get('exit');
    if (exit !== null) {
      exitCode = Number(exit);
      if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255) throw new RangeError(`exit must be an exit code 0..255, got ${JSON.stringify(exit)}`);
    }
  } catch (err) {
    return json(res, 400, { error: (err as Error).message });
  }
  json(res, 200, { name, ...behaviour, counts });
  if (exitCode !== undefined) {
    const code = exitCode;
    res.once('finish', () => process.exit(code));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-chaos-backend': name });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://backend');
  if (url.pathname === '/__chaos') return control(req, res, url);
  // Drain the body so a keep-alive connection stays usable.
  req.resume();
  if (behaviour.hang) {
    counts.hung++;
    return;
  }
  if (behaviour.failRate > 0 && Math.random() < behaviour.failRate) {
    counts.failed++;
    res.writeHead(503, { 'content-type': 'text/plain', 'x-chaos-backend': name });
    res.end(`${name} failing on purpose\n`);
    return;
  }
  counts.ok++;
  res.writeHead(200, { 'content-type': 'text/plain', 'x-chaos-backend': name });
  res.end(`${name}\n`);
});
server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1');
// The supervisor stops workloads with SIGTERM: close at once so a restart finds the port free.
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
