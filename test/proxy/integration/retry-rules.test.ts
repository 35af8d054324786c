// Envoy's rules on when a retry may happen, through the real data plane: the cluster's retry budget (and max_retries)
// held by a retry until its attempt's outcome, overflow flagged UO and counted; the request body past the buffer limit
// (retry_or_shadow_abandoned, 507 between attempts); retry_priority previous_priorities moving retries to the next
// priority; the refused-stream, reset-before-request and envoy-ratelimited conditions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { constants as h2constants } from 'node:http2';
import type { ServerResponse } from 'node:http';
import { accessLogEntries, eventually, get, H2_UPSTREAM, startDataPlane, startH2Upstream, startUpstream, staticCluster, vhost, type Json } from './support.js';

const FAST_BACKOFF = { base_interval: '0.001s', max_interval: '0.002s' };

/**
 * An upstream whose answer per request is the next step of x-plan (comma list per x-id): a status, or `hold` (answered
 * 200 when release(id) is called).
 */
async function plannedUpstream(name: string) {
  const calls = new Map<string, number>();
  const held = new Map<string, ServerResponse>();
  const up = await startUpstream(name, (req, res) => {
    const id = String(req.headers['x-id'] ?? '');
    const n = calls.get(id) ?? 0;
    calls.set(id, n + 1);
    const plan = String(req.headers['x-plan'] ?? '200').split(',');
    const step = plan[Math.min(n, plan.length - 1)]!;
    if (step === 'hold') {
      held.set(id, res);
      return;
    }
    res.writeHead(Number(step), { 'x-upstream': name }).end(`${name} ${step}`);
  });
  return Object.assign(up, {
    calls,
    isHeld: (id: string) => held.has(id),
    release(id: string): void {
      held.get(id)?.writeHead(200, { 'x-upstream': name }).end(`${name} released`);
      held.delete(id);
    },
  });
}

test('retry budget: a retry holds it until its attempt answers; a retry over the budget is refused (UO, upstream_rq_retry_overflow)', async (t) => {
  const up = await plannedUpstream('one');
  const retry = { retry_on: '5xx', num_retries: 2, retry_back_off: FAST_BACKOFF };
  const dp = await startDataPlane({
    clusters: [
      // 0% of active requests, at least 1: one retry at a time. max_retries (5) is replaced by the budget.
      staticCluster('budget', [up.port], { circuit_breakers: { thresholds: [{ max_retries: { value: 5 }, retry_budget: { budget_percent: { value: 0 }, min_retry_concurrency: { value: 1 } } }] } }),
      staticCluster('classic', [up.port], { circuit_breakers: { thresholds: [{ max_retries: { value: 1 } }] } }),
    ],
    virtualHosts: [
      vhost([
        { match: { prefix: '/budget' }, route: { cluster: 'budget', retry_policy: retry } },
        { match: { prefix: '/classic' }, route: { cluster: 'classic', retry_policy: retry } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });

  for (const cluster of ['budget', 'classic']) {
    // A: 503, then its retry is held at the upstream: the retry's hold on the budget lasts while that attempt runs.
    const a = get(dp.address, `/${cluster}`, { headers: { 'x-id': `${cluster}-a`, 'x-plan': '503,hold' } });
    await eventually('the retry of A to reach the upstream', () => up.isHeld(`${cluster}-a`));
    // B fails while A's retry is in flight: no retry left in the budget, its 503 goes downstream.
    const b = await get(dp.address, `/${cluster}`, { headers: { 'x-id': `${cluster}-b`, 'x-plan': '503,200' } });
    assert.equal(b.status, 503);
    assert.equal(up.calls.get(`${cluster}-b`), 1);
    up.release(`${cluster}-a`);
    assert.equal((await a).status, 200);
    // A's retry answered: the budget is free again and C is retried.
    const c = await get(dp.address, `/${cluster}`, { headers: { 'x-id': `${cluster}-c`, 'x-plan': '503,200' } });
    assert.equal(c.status, 200);
    assert.equal(await dp.stat(`cluster.${cluster}.upstream_rq_retry_overflow`), 1);
    assert.equal(await dp.stat(`cluster.${cluster}.upstream_rq_retry`), 2);
  }
  const log = await accessLogEntries(dp, 6);
  const flags = log.map((e) => `${String(e['path'])} ${String(e['code'])} ${String(e['flags'])}`);
  console.log(`retry budget: ${flags.join(' | ')}`);
  assert.equal(log.filter((e) => e['flags'] === 'UO' && e['code'] === 503).length, 2);
  assert.equal(log.filter((e) => e['code'] === 200).length, 4);
});

/** A POST whose body is sent as `first`, then after `pauseMs` as `rest`. */
function slowPost(address: string, path: string, headers: Record<string, string>, first: Buffer, rest: Buffer, pauseMs: number): Promise<{ status: number; body: string }> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = request({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), path, method: 'POST', agent: false, headers: { ...headers, 'content-length': String(first.length + rest.length) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The proxy may close while the rest of the body is still being written after its early reply.
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    req.write(first);
    setTimeout(() => req.end(rest), pauseMs);
  });
}

test('retry buffer: the body outgrowing the limit during the back-off ends the request with 507 (retry_or_shadow_abandoned)', async (t) => {
  // The upstream answers 503 as soon as the request head arrives, before the body is read.
  const calls = new Map<string, number>();
  const up = await startUpstream('early');
  up.server.removeAllListeners('request');
  up.server.on('request', (req, res) => {
    const id = String(req.headers['x-id']);
    const n = (calls.get(id) ?? 0) + 1;
    calls.set(id, n);
    req.resume();
    if (n === 1) res.writeHead(503).end('early 503');
    else req.on('end', () => res.writeHead(200).end('second attempt'));
  });
  const dp = await startDataPlane({
    clusters: [staticCluster('buf', [up.port])],
    virtualHosts: [
      vhost([
        { match: { prefix: '/' }, per_request_buffer_limit_bytes: 1024, route: { cluster: 'buf', retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: { base_interval: '2s', max_interval: '2s' } } } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  // Envoy's back-off is random in [0, interval): fixed near the top here (the proxy runs in this process), so the rest
  // of the body surely arrives while the retry waits.
  const random = Math.random;
  Math.random = () => 0.9;
  t.after(() => {
    Math.random = random;
  });
  const during = await slowPost(dp.address, '/', { 'x-id': 'backoff' }, Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b'), 300);
  Math.random = random;
  assert.equal(during.status, 507);
  assert.equal(during.body, 'exceeded request buffer limit while retrying upstream');
  assert.equal(calls.get('backoff'), 1);
  assert.equal(await dp.stat('cluster.buf.retry_or_shadow_abandoned'), 1);
  const log = await accessLogEntries(dp, 1);
  assert.equal(log[0]!['details'], 'request_payload_exceeded_retry_buffer_limit');
  console.log(`retry buffer: over the limit during back-off -> ${during.status}, upstream attempts ${calls.get('backoff')}`);
});

test('retry_priority previous_priorities: retries leave the priorities tried (every update_frequency attempts)', async (t) => {
  const bad = await startUpstream('bad', (_req, res) => res.writeHead(503, { 'x-upstream': 'bad' }).end('bad'));
  const good = await startUpstream('good');
  const twoPriorities = {
    name: 'tiers',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'tiers',
      endpoints: [
        { priority: 0, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: bad.port } } } }] },
        { priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: good.port } } } }] },
      ],
    },
  };
  const priority = (updateFrequency: number): Json => ({
    name: 'envoy.retry_priorities.previous_priorities',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: updateFrequency },
  });
  const dp = await startDataPlane({
    clusters: [twoPriorities],
    virtualHosts: [
      vhost(
        [
          { match: { prefix: '/plain' }, route: { cluster: 'tiers', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: FAST_BACKOFF } } },
          { match: { prefix: '/every1' }, route: { cluster: 'tiers', retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: FAST_BACKOFF, retry_priority: priority(1) } } },
          { match: { prefix: '/every2' }, route: { cluster: 'tiers', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: FAST_BACKOFF, retry_priority: priority(2) } } },
        ],
        ['*'],
        { include_attempt_count_in_response: true },
      ),
    ],
  });
  t.after(async () => {
    await dp.close();
    await bad.close();
    await good.close();
  });
  // Without a retry priority every attempt goes to the healthy priority 0.
  const plain = await get(dp.address, '/plain');
  assert.equal(plain.status, 503);
  assert.equal(plain.headers['x-envoy-attempt-count'], '3');
  // update_frequency 1: the first retry already leaves priority 0.
  const every1 = await get(dp.address, '/every1');
  assert.equal(every1.status, 200);
  assert.equal(every1.headers['x-upstream'], 'good');
  assert.equal(every1.headers['x-envoy-attempt-count'], '2');
  // update_frequency 2: the first retry still goes to priority 0, the second leaves it.
  const every2 = await get(dp.address, '/every2');
  assert.equal(every2.status, 200);
  assert.equal(every2.headers['x-envoy-attempt-count'], '3');
  assert.equal(bad.seen.length, 3 + 1 + 2);
  assert.equal(good.seen.length, 2);
});

test('retry_on refused-stream (HTTP/2 REFUSED_STREAM), reset-before-request (a connection never made) and envoy-ratelimited', async (t) => {
  const seen = new Map<string, number>();
  const h2 = await startH2Upstream('h2', (stream, headers) => {
    const id = String(headers['x-id']);
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    // The first stream of each id is refused, as a server past its concurrency limit does.
    stream.on('error', () => undefined); // the server side sees its own reset as an error
    if (n === 1) stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
    else stream.respond({ ':status': 200 }, { endStream: true });
  });
  const limited = await plannedUpstream('limited');
  limited.server.removeAllListeners('request');
  const limitedCalls = new Map<string, number>();
  limited.server.on('request', (req, res) => {
    const id = String(req.headers['x-id']);
    const n = (limitedCalls.get(id) ?? 0) + 1;
    limitedCalls.set(id, n);
    req.resume();
    if (n === 1) res.writeHead(429, { 'x-envoy-ratelimited': 'true' }).end();
    else res.writeHead(200).end('ok');
  });
  // A port nothing listens on: a connection that is never made.
  const closed = await startUpstream('closed');
  const deadPort = closed.port;
  await closed.close();
  const live = await startUpstream('live');
  const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }];
  const dp = await startDataPlane({
    clusters: [staticCluster('h2', [h2.port], H2_UPSTREAM), staticCluster('limited', [limited.port]), staticCluster('mixed', [deadPort, live.port])],
    virtualHosts: [
      vhost([
        { match: { prefix: '/refused' }, route: { cluster: 'h2', retry_policy: { retry_on: 'refused-stream', num_retries: 1, retry_back_off: FAST_BACKOFF } } },
        { match: { prefix: '/not-refused' }, route: { cluster: 'h2', retry_policy: { retry_on: 'connect-failure', num_retries: 1, retry_back_off: FAST_BACKOFF } } },
        { match: { prefix: '/limited' }, route: { cluster: 'limited', retry_policy: { retry_on: 'envoy-ratelimited', num_retries: 1, retry_back_off: FAST_BACKOFF } } },
        { match: { prefix: '/before' }, route: { cluster: 'mixed', retry_policy: { retry_on: 'reset-before-request', num_retries: 1, retry_back_off: FAST_BACKOFF, retry_host_predicate: PREVIOUS_HOSTS, host_selection_retry_max_attempts: 5 } } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await h2.close();
    await limited.close();
    await live.close();
  });
  const refused = await get(dp.address, '/refused', { headers: { 'x-id': 'r1' } });
  assert.equal(refused.status, 200);
  assert.equal(seen.get('r1'), 2);
  // Not a retry condition of this route: Envoy's local reply for the reset, flag UR.
  const notRetried = await get(dp.address, '/not-refused', { headers: { 'x-id': 'r2' } });
  assert.equal(notRetried.status, 503);
  assert.match(notRetried.body, /reset reason: remote refused stream reset/);
  assert.equal(seen.get('r2'), 1);
  const ratelimited = await get(dp.address, '/limited', { headers: { 'x-id': 'l1' } });
  assert.equal(ratelimited.status, 200);
  assert.equal(limitedCalls.get('l1'), 2);
  // Round robin sends some first attempts to the dead port; each is retried on the live one.
  const before = await Promise.all([...Array(6)].map(() => get(dp.address, '/before')));
  assert.deepEqual(before.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.ok((await dp.stat('cluster.mixed.upstream_rq_retry')) >= 1);
  const log = await accessLogEntries(dp, 9);
  assert.ok(log.some((e) => e['path'] === '/not-refused' && e['flags'] === 'UR'), JSON.stringify(log));
});
