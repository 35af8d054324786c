// The workload process contract `trellis up` relies on: PORT (0 → the bound port printed), SERVICE_VERSION, HTTP_PROXY in explicit mode, clean SIGTERM, clear start-up errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, start, startFake } from './bookinfo-support.js';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = resolve(here, '../../../examples/bookinfo/src');
const LISTENING = /^(\S+) listening on http:\/\/127\.0\.0\.1:(\d+)$/m;

interface Workload {
  child: ChildProcess;
  port: number;
  url: string;
  stdout(): string;
  stop(): Promise<number | null>;
}

function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!('HTTP_PROXY' in extra)) {
    delete env.HTTP_PROXY;
    delete env.http_proxy;
  }
  return env;
}

/** Starts `program` with `env`, resolves once it prints its listening line (bounded wait). */
function spawnWorkload(program: string, env: Record<string, string>, started: Workload[]): Promise<Workload> {
  const child = spawn(process.execPath, [resolve(srcDir, `${program}.js`)], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr?.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return new Promise((resolveStart, reject) => {
    const deadline = setTimeout(() => { void stop(); reject(new Error(`${program} printed no listening line within 20 s; stdout: ${out} stderr: ${err}`)); }, 20_000);
    const onData = (): void => {
      const m = LISTENING.exec(out);
      if (!m) return;
      clearTimeout(deadline);
      child.stdout?.off('data', onData);
      const w: Workload = { child, port: Number(m[2]), url: `http://127.0.0.1:${m[2]}`, stdout: () => out, stop };
      started.push(w);
      resolveStart(w);
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => { clearTimeout(deadline); reject(new Error(`${program} exited with ${code} before listening; stderr: ${err}`)); });
  });
}

/** Runs `program` expecting it to fail at start; resolves with its exit code and stderr. */
function spawnFailing(program: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [resolve(srcDir, `${program}.js`)], { env: baseEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => { err += c.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((res) => child.once('exit', (code) => { clearTimeout(timer); res({ code, stderr: err }); }));
}

test('PORT=0: each workload prints "<name>-<version> listening on http://127.0.0.1:<port>", serves there, and exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
  const started: Workload[] = [];
  try {
    const ratings = await spawnWorkload('ratings', { PORT: '0' }, started);
    assert.match(ratings.stdout(), /^ratings-v1 listening on http:\/\/127\.0\.0\.1:\d+\n/);
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/ratings/0`)).body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    const reviews = await spawnWorkload('reviews', { PORT: '0', SERVICE_VERSION: 'v3', RATINGS_URL: ratings.url, POD_NAME: 'reviews-v3-proc' }, started);
    assert.match(reviews.stdout(), /^reviews-v3 listening/);
    assert.equal(JSON.parse((await request(`${reviews.url}/reviews/0`, { headers: { 'x-request-id': 'proc-1' } })).body).podname, 'reviews-v3-proc');
    for (const w of started) assert.equal(await w.stop(), 0);
    assert.match(reviews.stdout(), /reviews-v3 GET \/reviews\/0 200 [\d.]+ms x-request-id=proc-1\n/);
    assert.match(ratings.stdout(), /ratings-v1 GET \/ratings\/0 200 .*x-request-id=proc-1\n/, 'reviews forwarded x-request-id to ratings');
  } finally {
    await Promise.all(started.map((w) => w.stop()));
  }
});

test('HTTP_PROXY: productpage and reviews reach details, reviews and ratings by mesh name through a sidecar that routes on Host', { timeout: 60_000 }, async () => {
  const started: Workload[] = [];
  const routes = new Map<string, number>();
  // A stand-in for the sidecar's outbound listener in explicit HTTP-proxy mode.
  const seen: string[] = [];
  const sidecar = await start(http.createServer((req, res) => {
    seen.push(`${req.url} host=${req.headers.host}`);
    const port = routes.get(req.headers.host ?? '');
    if (port === undefined || !(req.url ?? '').startsWith('http://')) {
      res.writeHead(404).end();
      return;
    }
    const target = new URL(req.url ?? '');
    const upstream = http.request({ host: '127.0.0.1', port, path: `${target.pathname}${target.search}`, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(503).end());
    req.pipe(upstream);
  }));
  try {
    const proxyEnv = { HTTP_PROXY: sidecar.url };
    const ratings = await spawnWorkload('ratings', { PORT: '0' }, started);
    const details = await spawnWorkload('details', { PORT: '0' }, started);
    const reviews = await spawnWorkload('reviews', { PORT: '0', SERVICE_VERSION: 'v2', ...proxyEnv }, started);
    routes.set('ratings:9080', ratings.port).set('details:9080', details.port).set('reviews:9080', reviews.port);
    const page = await spawnWorkload('productpage', { PORT: '0', ...proxyEnv }, started);
    const html = (await request(`${page.url}/productpage`, { headers: { cookie: 'user=jason' } })).body;
    assert.ok(html.includes('<dt>Publisher:</dt>PublisherA'), html);
    assert.ok(html.includes('<font color="black">'), 'reviews v2 reached ratings by mesh name');
    assert.ok(html.includes('jason ( <a href="logout">sign out</a> )'));
    assert.deepEqual(seen.sort(), [
      'http://details:9080/details/0 host=details:9080',
      'http://ratings:9080/ratings/0 host=ratings:9080',
      'http://reviews:9080/reviews/0 host=reviews:9080',
    ]);
  } finally {
    await Promise.all(started.map((w) => w.stop()));
    await sidecar.close();
  }
});

test('bad start-up input is reported on stderr with exit code 1: a bad PORT, a port already taken, an unknown reviews version', { timeout: 60_000 }, async () => {
  const bad = await spawnFailing('details', { PORT: 'eighty' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /details-v1: cannot start: PORT: expected an integer from 0 to 65535, got "eighty"/);

  const taken = await startFake();
  try {
    const busy = await spawnFailing('ratings', { PORT: String(taken.port) });
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, new RegExp(`ratings-v1: cannot start: port ${taken.port} on 127\\.0\\.0\\.1 is already in use`));
  } finally {
    await taken.close();
  }

  const version = await spawnFailing('reviews', { PORT: '0', SERVICE_VERSION: 'v4' });
  assert.equal(version.code, 1);
  assert.match(version.stderr, /reviews: cannot start: SERVICE_VERSION: reviews has versions v1, v2, v3, got "v4"/);

  const proxy = await spawnFailing('productpage', { PORT: '0', HTTP_PROXY: '127.0.0.1:15001' });
  assert.equal(proxy.code, 1);
  assert.match(proxy.stderr, /HTTP_PROXY: expected http:\/\/HOST:PORT/);
});

test('the external API stand-in echoes what reached it', { timeout: 30_000 }, async () => {
  const started: Workload[] = [];
  try {
    const api = await spawnWorkload('external-api', { PORT: '0' }, started);
    assert.match(api.stdout(), /^external-api listening/);
    const res = await request(`${api.url}/status?x=1`, { headers: { host: 'api.external.test' } });
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body) as { service: string; path: string; host: string };
    assert.deepEqual([body.service, body.path, body.host], ['api.external.test', '/status?x=1', 'api.external.test']);
    assert.equal(await api.stop(), 0);
  } finally {
    await Promise.all(started.map((w) => w.stop()));
  }
});
