// `trellis up` on examples/bookinfo (a copy with its fixed ports moved to free ones, and --port-base), then Istio's walkthrough files applied in turn, asserting what a user sees through the ingress gateway.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, unlinkSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadManifest } from '../../src/local/manifest.js';
import { readState } from '../../src/local/state-file.js';
import { freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = join(REPO, 'examples/bookinfo');
const WALKTHROUGH = join(EXAMPLE, 'walkthrough');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

interface Response {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** GET on 127.0.0.1:port; `path` may be absolute-form (a request to an HTTP proxy). */
function get(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 20_000): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** What a user sees on the product page: which reviews version answered and its stars. */
function reviewsOf(page: string): { version: string | undefined; black: number; red: number; reviewsUnavailable: boolean; ratingsUnavailable: number } {
  return {
    version: /reviews-(v[123])-/.exec(page)?.[1],
    black: (page.match(/color="black"/g) ?? []).length,
    red: (page.match(/color="red"/g) ?? []).length,
    reviewsUnavailable: page.includes('Sorry, product reviews are currently unavailable for this book.'),
    ratingsUnavailable: (page.match(/Ratings service is currently unavailable/g) ?? []).length,
  };
}

let dir = '';
let up: ChildProcess | undefined;
let output = '';
let gatewayPort = 0;
let httpsPort = 0;
let externalPort = 0;
let productpageProxy = 0;
let configDir = '';
let monitoringPort = 0;
let portBase = 0;

/** Waits (bounded) until `check` holds for `times` results in a row: a config change has reached every proxy it affects. */
async function until(what: string, check: () => Promise<boolean>, times = 3, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let streak = 0;
  while (Date.now() < deadline) {
    streak = (await check().catch(() => false)) ? streak + 1 : 0;
    if (streak >= times) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.fail(`${what}: not seen within ${timeoutMs} ms`);
}

const page = (headers: Record<string, string> = {}) => get(gatewayPort, '/productpage', headers);

function apply(file: string, replace: Record<string, string> = {}): void {
  let text = readFileSync(join(WALKTHROUGH, file), 'utf8');
  for (const [from, to] of Object.entries(replace)) text = text.replaceAll(from, to);
  writeFileSync(join(configDir, file), text);
}
function remove(file: string): void {
  unlinkSync(join(configDir, file));
}

before(async () => {
  // A copy of the example whose fixed ports (gateway 8080/8443, the external API's 19480) are free ones, so this runs
  // beside `npm start`; the workload blocks move with --port-base.
  dir = mkdtempSync(join(tmpdir(), 'trellis-bookinfo-e2e-'));
  const manifest = loadManifest(EXAMPLE);
  gatewayPort = await freePort();
  httpsPort = await freePort();
  externalPort = await freePort();
  const ports: Record<string, string> = { 'number: 8080': `number: ${gatewayPort}`, 'number: 8443': `number: ${httpsPort}` };
  for (const sub of ['config', 'config-https']) {
    for (const f of readdirSync(join(EXAMPLE, sub))) {
      let text = readFileSync(join(EXAMPLE, sub, f), 'utf8');
      for (const [from, to] of Object.entries(ports)) text = text.replaceAll(from, to);
      writeFileSync(join(dir, `${sub}-${f}`), text);
    }
  }
  const copy = {
    config: readdirSync(join(EXAMPLE, 'config')).map((f) => `config-${f}`),
    mesh: manifest.mesh,
    workloads: manifest.workloads.map((w) => ({
      name: w.name, namespace: w.namespace, labels: w.labels, serviceAccount: w.serviceAccount, command: w.command, args: w.args, env: w.env,
      ...(w.service ? { service: w.service } : {}), sidecar: w.sidecar, ...(w.name === 'external-api' ? { port: externalPort } : w.port ? { port: w.port } : {}),
    })),
    gateways: manifest.gateways.map((g) => ({ ...g, ports: [gatewayPort, httpsPort] })),
    certificates: [{ cert: '.trellis/certs/bookinfo.crt', key: '.trellis/certs/bookinfo.key', hosts: ['localhost', '127.0.0.1'], config: ['config-https-gateway-https.yaml'] }],
  };
  writeFileSync(join(dir, 'mesh.yaml'), stringify(copy));
  const base = await freePortBase(dir);

  up = await startTrellisUp(dir, base, (c) => (output += c));
  const state = readState(dir)!;
  configDir = state.configDir;
  monitoringPort = state.monitoringPort;
  portBase = base;
  productpageProxy = base + 11; // block 1 (productpage-v1), +1: its sidecar's outbound (HTTP_PROXY) port
  assert.match(output, new RegExp(`productpage-v1 +workload +${base + 10} +http://127\\.0\\.0\\.1:${productpageProxy} `), 'the status table shows the ports');
});

after(async () => {
  await stopTrellisUp(up, dir);
});

test('the status table shows every workload SYNCED, and the product page through the gateway shows reviews from v1, v2 and v3 in turn', async () => {
  for (const name of ['productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1', 'istio-ingressgateway']) {
    assert.match(output, new RegExp(`^${name} .* SYNCED$`, 'm'), `${name} in the status table`);
  }
  assert.match(output, /^\[productpage-v1\/sidecar\] +/m, 'logs are prefixed by process');
  const seen = new Map<string, number>();
  for (let i = 0; i < 60 && seen.size < 3; i++) {
    const res = await page();
    assert.equal(res.status, 200);
    const r = reviewsOf(res.body);
    assert.ok(r.version, 'the page names the reviews instance');
    assert.equal(r.black, r.version === 'v2' ? 2 : 0);
    assert.equal(r.red, r.version === 'v3' ? 2 : 0);
    seen.set(r.version!, (seen.get(r.version!) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), ['v1', 'v2', 'v3']);
});

test('trellis up serves the dashboard on block 0: its page and its state (every proxy in the sync table)', async () => {
  const url = /^dashboard: (http:\/\/127\.0\.0\.1:(\d+)\/?)$/m.exec(output);
  assert.ok(url, `the dashboard URL is printed:\n${output.slice(-1500)}`);
  assert.equal(Number(url[2]), portBase + 3);
  const pageRes = await get(Number(url[2]), '/');
  assert.equal(pageRes.status, 200);
  assert.match(pageRes.body, /<html/i);
  await until('the dashboard has every proxy', async () => {
    const res = await get(Number(url[2]), '/api/state');
    const state = JSON.parse(res.body) as { sync: Array<{ proxy: string }> };
    return res.status === 200 && state.sync.length === 7;
  }, 1);
});

test('HTTPS with the generated certificate, and the httpsRedirect host gets 301 to https', async (t) => {
  if (/HTTPS skipped/.test(output)) return t.skip('openssl is missing');
  const secure = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path: '/productpage', rejectUnauthorized: false, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(secure.status, 200);
  assert.ok(reviewsOf(secure.body).version, 'the product page over SIMPLE TLS');
  const redirect = await get(gatewayPort, '/productpage', { host: 'secure.bookinfo.local' });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers['location'], 'https://secure.bookinfo.local/productpage');
});

test('walkthrough: all-v1, then jason to v2 (cookie and header), the 7 s delay and the 500 abort for jason, then 50/50 v1/v3 over 200 requests', async () => {
  apply('destination-rule-all.yaml');
  apply('virtual-service-all-v1.yaml');
  await until('all traffic on reviews v1', async () => reviewsOf((await page()).body).version === 'v1', 5);
  for (let i = 0; i < 20; i++) {
    const r = reviewsOf((await page()).body);
    assert.equal(r.version, 'v1');
    assert.equal(r.black + r.red, 0, 'v1 has no stars');
  }

  remove('virtual-service-all-v1.yaml');
  apply('virtual-service-reviews-test-v2.yaml');
  await until('jason on v2', async () => reviewsOf((await page({ cookie: 'user=jason' })).body).version === 'v2');
  for (let i = 0; i < 5; i++) {
    const byCookie = reviewsOf((await page({ cookie: 'user=jason' })).body);
    assert.deepEqual([byCookie.version, byCookie.black], ['v2', 2], 'signed in as jason: black stars');
    const byHeader = reviewsOf((await page({ 'end-user': 'jason' })).body);
    assert.deepEqual([byHeader.version, byHeader.black], ['v2', 2], 'end-user: jason');
    const anonymous = reviewsOf((await page()).body);
    assert.deepEqual([anonymous.version, anonymous.black + anonymous.red], ['v1', 0], 'everyone else: v1');
  }

  apply('virtual-service-ratings-test-delay.yaml');
  await until('the delay for jason', async () => reviewsOf((await page({ cookie: 'user=jason' })).body).reviewsUnavailable, 1, 40_000);
  const started = Date.now();
  const delayed = await page({ cookie: 'user=jason' });
  const elapsed = Date.now() - started;
  assert.equal(delayed.status, 200, 'productpage still answers');
  assert.ok(reviewsOf(delayed.body).reviewsUnavailable, 'productpage gives up on reviews (3 s timeout, tried twice) before ratings answers');
  assert.ok(elapsed >= 5_000 && elapsed < 15_000, `about 6 s (3 s + 3 s), took ${elapsed} ms`);
  const quick = reviewsOf((await page()).body);
  assert.ok(!quick.reviewsUnavailable && quick.version === 'v1', 'others are not delayed');

  remove('virtual-service-ratings-test-delay.yaml');
  apply('virtual-service-ratings-test-abort.yaml');
  await until('the abort for jason', async () => reviewsOf((await page({ cookie: 'user=jason' })).body).ratingsUnavailable === 2);
  const aborted = reviewsOf((await page({ cookie: 'user=jason' })).body);
  assert.deepEqual([aborted.version, aborted.ratingsUnavailable, aborted.black], ['v2', 2, 0], 'v2 shows the ratings-unavailable message instead of stars');

  remove('virtual-service-ratings-test-abort.yaml');
  remove('virtual-service-reviews-test-v2.yaml');
  apply('virtual-service-reviews-50-v3.yaml');
  await until('v3 in the mix', async () => reviewsOf((await page()).body).version === 'v3', 1);
  const counts = { v1: 0, v2: 0, v3: 0 } as Record<string, number>;
  for (let i = 0; i < 200; i++) {
    const r = reviewsOf((await page()).body);
    counts[r.version ?? '?'] = (counts[r.version ?? '?'] ?? 0) + 1;
  }
  assert.equal(counts['v2'], 0, 'no black stars');
  assert.equal(counts['v1']! + counts['v3']!, 200);
  // Binomial(200, 0.5): mean 100, standard deviation ~7; 65-135 is five deviations either way.
  assert.ok(counts['v3']! >= 65 && counts['v3']! <= 135, `50/50 within bounds: ${JSON.stringify(counts)}`);
  remove('virtual-service-reviews-50-v3.yaml');

  // Every proxy accepted every version the walkthrough made the control plane generate.
  const syncz = JSON.parse((await get(monitoringPort, '/debug/syncz')).body) as Array<{ proxy: string; types: Record<string, { state: string; nack?: { message: string } }> }>;
  assert.equal(syncz.length, 7, 'six sidecars and the gateway');
  for (const entry of syncz) {
    for (const [type, status] of Object.entries(entry.types)) assert.equal(status.nack, undefined, `${entry.proxy} ${type}: ${status.nack?.message}`);
  }
});

test('egress: ALLOW_ANY passes an unknown host through, REGISTRY_ONLY answers 502 from BlackHoleCluster, a ServiceEntry lets the host in again', async () => {
  const direct = `http://127.0.0.1:${externalPort}/hello`;
  const viaSidecar = (target: string, host: string) => get(productpageProxy, target, { host });
  const open = await viaSidecar(direct, `127.0.0.1:${externalPort}`);
  assert.equal(open.status, 200, 'PassthroughCluster to the authority');
  assert.match(open.body, /"service":"api\.external\.test"/);

  apply('egress-registry-only.yaml');
  await until('REGISTRY_ONLY', async () => (await viaSidecar(direct, `127.0.0.1:${externalPort}`)).status === 502);
  assert.equal((await page()).status, 200, 'Bookinfo itself is in the registry');

  apply('external-api.yaml', { '19480': String(externalPort) });
  await until('api.external.test registered', async () => (await viaSidecar('http://api.external.test/hello', 'api.external.test')).status === 200);
  const registered = await viaSidecar('http://api.external.test/hello', 'api.external.test');
  assert.match(registered.body, /"host":"api\.external\.test"/);
  assert.equal((await viaSidecar(direct, `127.0.0.1:${externalPort}`)).status, 502, 'unregistered hosts still blocked');
  remove('egress-registry-only.yaml');
  remove('external-api.yaml');
  await until('ALLOW_ANY again', async () => (await viaSidecar(direct, `127.0.0.1:${externalPort}`)).status === 200);
});

test('an invalid config file is reported as file: Kind ns/name: path: message, and the rest keeps serving', async () => {
  writeFileSync(join(configDir, 'broken.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: broken, namespace: default }\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: { host: reviews }\n      weight: -5\n');
  await until('the problem reported', async () => /broken\.yaml: VirtualService default\/broken: spec\.http\[0\]\.route\[0\]\.weight/.test(output), 1);
  assert.equal((await page()).status, 200);
  remove('broken.yaml');
});

/** A sidecar's ports by block (manifest order: productpage 1, details 2, reviews v1-v3 3-5, ratings 6): +1 outbound, +2 inbound. */
const sidecarPort = (block: number, offset: 1 | 2): number => portBase + 10 * block + offset;

function applySecurity(file: string): void {
  writeFileSync(join(configDir, file), readFileSync(join(WALKTHROUGH, 'security', file), 'utf8'));
}

test('STRICT mTLS mesh-wide: plaintext from outside the mesh to a sidecar inbound port is refused; openssl s_client sees the workload SPIFFE certificate', async (t) => {
  const detailsInbound = sidecarPort(2, 2);
  await assert.rejects(get(detailsInbound, '/details/0', {}, 5_000), 'a plaintext request gets no HTTP answer');
  const version = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (version.status !== 0) return t.skip('openssl is missing');
  const sclient = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${detailsInbound}`, '-alpn', 'istio-peer-exchange,istio'], { input: '', encoding: 'utf8', timeout: 10_000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(sclient.stdout)?.[0];
  assert.ok(pem, `s_client printed the server certificate:\n${sclient.stdout.slice(0, 2000)}${sclient.stderr}`);
  const san = spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: pem, encoding: 'utf8' });
  assert.match(san.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-details/);
  // Sidecar to sidecar still works (the page above keeps answering), and the peer identity reached the workload.
  assert.equal((await page()).status, 200);
});

test('security walkthrough: deny all, then GET productpage, details and reviews from productpage, ratings from reviews', async () => {
  const pageState = async () => {
    const res = await page();
    return { status: res.status, body: res.body, ...reviewsOf(res.body), detailsUnavailable: res.body.includes('Sorry, product details are currently unavailable') };
  };
  const asReviewsV1 = (path: string, method = 'GET') =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: sidecarPort(3, 1), path: `http://details:9080${path}`, method, headers: { host: 'details:9080' }, agent: false }, (res) => {
        res.resume().on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });

  applySecurity('allow-nothing.yaml');
  await until('everything denied', async () => {
    const s = await pageState();
    return s.status === 403 && s.body === 'RBAC: access denied';
  });

  applySecurity('productpage-viewer.yaml');
  await until('productpage answers, details and reviews denied', async () => {
    const s = await pageState();
    return s.status === 200 && s.detailsUnavailable && s.reviewsUnavailable;
  });
  const login = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gatewayPort, path: '/login', method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      res.resume().on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end('username=jason&passwd=x');
  });
  assert.equal(login, 403, 'productpage-viewer allows GET only');

  applySecurity('details-viewer.yaml');
  applySecurity('reviews-viewer.yaml');
  await until('details and reviews back, ratings still denied', async () => {
    const s = await pageState();
    return s.status === 200 && !s.detailsUnavailable && !s.reviewsUnavailable && (s.version === 'v1' || s.ratingsUnavailable === 2);
  }, 6);
  assert.equal(await asReviewsV1('/details/0'), 403, 'details refuses the reviews identity');

  applySecurity('ratings-viewer.yaml');
  await until('stars back for v2 and v3', async () => {
    const s = await pageState();
    return s.status === 200 && (s.version === 'v2' ? s.black === 2 : s.version === 'v3' ? s.red === 2 : s.version === 'v1');
  }, 6);

  for (const f of ['allow-nothing.yaml', 'productpage-viewer.yaml', 'details-viewer.yaml', 'reviews-viewer.yaml', 'ratings-viewer.yaml']) remove(f);
  await until('open again', async () => (await asReviewsV1('/details/0')) === 200);
});

test('JWT at the ingress gateway: a bad token is 401, /api/v1/products needs a token (403 without), the demo token passes', async () => {
  applySecurity('jwt-ingress.yaml');
  const token = readFileSync(join(WALKTHROUGH, 'security', 'demo.jwt'), 'utf8').trim();
  await until('the API needs a token', async () => (await get(gatewayPort, '/api/v1/products')).status === 403);
  const denied = await get(gatewayPort, '/api/v1/products');
  assert.equal(denied.body, 'RBAC: access denied');
  const ok = await get(gatewayPort, '/api/v1/products', { authorization: `Bearer ${token}` });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /Comedy of Errors/);
  const forged = await get(gatewayPort, '/productpage', { authorization: `Bearer ${token.slice(0, -4)}AAAA` });
  assert.equal(forged.status, 401);
  assert.equal(forged.body, 'Jwt verification fails');
  assert.match(String(forged.headers['www-authenticate']), /^Bearer realm=.*error="invalid_token"/);
  assert.equal((await page()).status, 200, 'other paths stay open without a token');
  remove('jwt-ingress.yaml');
  await until('the API open again', async () => (await get(gatewayPort, '/api/v1/products')).status === 200);
});
