// Retries and timeouts through the real data plane: 5xx retried to success (x-envoy-attempt-count both ways), retries
// exhausted (last 5xx, URX), retriable-status-codes, per_try_timeout, previous_hosts across two upstreams,
// x-envoy-retry-on / x-envoy-max-retries from the client, route timeout → 504 UT, x-envoy-upstream-rq-timeout-ms,
// and the retry buffer limit (route per_request_buffer_limit_bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLogEntries, get, h2get, startDataPlane, startUpstream, staticCluster, vhost, type Upstream } from './support.js';

const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }];
const FAST_BACKOFF = { base_interval: '0.001s', max_interval: '0.002s' };

/** An upstream answering with the status in x-status-plan (comma list consumed per request of one x-plan-id). */
async function scriptedUpstream(name: string): Promise<Upstream & { calls: Map<string, number> }> {
  const calls = new Map<string, number>();
  const up = await startUpstream(name, (req, res) => {
    const id = String(req.headers['x-plan-id'] ?? '');
    const n = calls.get(id) ?? 0;
    calls.set(id, n + 1);
    const plan = String(req.headers['x-status-plan'] ?? '200').split(',');
    const step = plan[Math.min(n, plan.length - 1)]!;
    if (step.startsWith('sleep')) {
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200, { 'x-upstream': name }).end(`${name} slept`);
      }, Number(step.slice(5)));
      return;
    }
    res.writeHead(Number(step), { 'x-upstream': name, 'x-attempt-seen': String(req.headers['x-envoy-attempt-count'] ?? '') });
    res.end(`${name} ${step} attempt ${n + 1}`);
  });
  return Object.assign(up, { calls });
}

test('retries: 5xx to success, exhausted with URX, retriable-status-codes, per_try_timeout, x-envoy-retry-on', async (t) => {
  const up = await scriptedUpstream('one');
  const dp = await startDataPlane({
    clusters: [staticCluster('one', [up.port])],
    virtualHosts: [
      vhost(
        [
          { match: { prefix: '/5xx' }, route: { cluster: 'one', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: FAST_BACKOFF } } },
          { match: { prefix: '/codes' }, route: { cluster: 'one', retry_policy: { retry_on: 'retriable-status-codes', retriable_status_codes: [409], num_retries: 1, retry_back_off: FAST_BACKOFF } } },
          { match: { prefix: '/pertry' }, route: { cluster: 'one', timeout: '5s', retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.2s', retry_back_off: FAST_BACKOFF } } },
          { match: { prefix: '/plain' }, route: { cluster: 'one' } },
        ],
        ['*'],
        { include_request_attempt_count: true, include_attempt_count_in_response: true },
      ),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });

  // 503 then 200: the client sees 200 and two attempts; the upstream saw attempt counts 1 and 2.
  const ok = await get(dp.address, '/5xx', { agent: dp.agent, headers: { 'x-plan-id': 'a', 'x-status-plan': '503,200' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-envoy-attempt-count'], '2');
  assert.equal(ok.headers['x-attempt-seen'], '2');
  assert.equal(up.calls.get('a'), 2);

  // Always 500: three attempts (1 + 2 retries), the last 500 passes through, URX in the access log.
  const exhausted = await get(dp.address, '/5xx', { agent: dp.agent, headers: { 'x-plan-id': 'b', 'x-status-plan': '500' } });
  assert.equal(exhausted.status, 500);
  assert.equal(exhausted.body, 'one 500 attempt 3');
  assert.equal(exhausted.headers['x-envoy-attempt-count'], '3');

  // retriable-status-codes: 409 retried, 404 not.
  const codes = await get(dp.address, '/codes', { agent: dp.agent, headers: { 'x-plan-id': 'c', 'x-status-plan': '409,201' } });
  assert.equal(codes.status, 201);
  const notRetried = await get(dp.address, '/codes', { agent: dp.agent, headers: { 'x-plan-id': 'd', 'x-status-plan': '404,201' } });
  assert.equal(notRetried.status, 404);
  assert.equal(up.calls.get('d'), 1);

  // per_try_timeout: the first attempt hangs past 200 ms, the retry answers at once.
  const perTry = await get(dp.address, '/pertry', { agent: dp.agent, headers: { 'x-plan-id': 'e', 'x-status-plan': 'sleep3000,200' } });
  assert.equal(perTry.status, 200);
  assert.equal(perTry.headers['x-envoy-attempt-count'], '2');
  // Both attempts time out: 504 UT.
  const perTryFail = await get(dp.address, '/pertry', { agent: dp.agent, headers: { 'x-plan-id': 'f', 'x-status-plan': 'sleep3000' } });
  assert.equal(perTryFail.status, 504);
  assert.equal(perTryFail.body, 'upstream request timeout');

  // No retry policy on the route: the client asks with x-envoy-retry-on / x-envoy-max-retries (HTTP/2 this time).
  const asked = await h2get(dp.address, '/plain', { headers: { 'x-plan-id': 'g', 'x-status-plan': '502,502,200', 'x-envoy-retry-on': 'gateway-error', 'x-envoy-max-retries': '2' } });
  assert.equal(asked.status, 200);
  assert.equal(up.calls.get('g'), 3);
  const notAsked = await get(dp.address, '/plain', { agent: dp.agent, headers: { 'x-plan-id': 'h', 'x-status-plan': '502,200' } });
  assert.equal(notAsked.status, 502);
  // The router-control headers are consumed, not forwarded.
  assert.equal(up.seen.find((s) => s.headers['x-plan-id'] === 'g')!.headers['x-envoy-retry-on'], undefined);

  const log = await accessLogEntries(dp, 8);
  const byPlan = (i: number) => log[i]!;
  assert.equal(byPlan(0)['code'], 200);
  assert.equal(byPlan(1)['code'], 500);
  assert.match(String(byPlan(1)['flags']), /URX/);
  assert.equal(byPlan(5)['code'], 504);
  assert.match(String(byPlan(5)['flags']), /UT/);
  const stats = await dp.stats();
  assert.equal(stats.get('cluster.one.upstream_rq_retry'), 1 + 2 + 1 + 1 + 1 + 2);
  assert.equal(stats.get('cluster.one.upstream_rq_retry_success'), 4);
  assert.ok(stats.get('cluster.one.upstream_rq_timeout')! >= 3);
});

test('retries: previous_hosts sends the retry to the other upstream', async (t) => {
  const bad = await startUpstream('bad', (_req, res) => res.writeHead(503, { 'x-upstream': 'bad' }).end('bad'));
  const good = await startUpstream('good');
  const dp = await startDataPlane({
    clusters: [staticCluster('pair', [bad.port, good.port])],
    virtualHosts: [
      vhost([{ match: { prefix: '/' }, route: { cluster: 'pair', retry_policy: { retry_on: '5xx', num_retries: 1, retry_host_predicate: PREVIOUS_HOSTS, host_selection_retry_max_attempts: 5, retry_back_off: FAST_BACKOFF } } }]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await Promise.all([bad.close(), good.close()]);
  });
  for (let i = 0; i < 10; i++) {
    const r = await get(dp.address, `/r${i}`, { agent: dp.agent });
    assert.equal(r.status, 200, `request ${i}`);
    assert.equal(r.headers['x-upstream'], 'good');
  }
  // Round robin sends about half of the first attempts to `bad`; each of those retried on `good`, never `bad` twice.
  assert.ok(bad.seen.length >= 1 && bad.seen.length <= 10);
  assert.equal(good.seen.length, 10);
});

test('timeouts: route timeout → 504 UT; x-envoy-upstream-rq-timeout-ms overrides; upstream sees x-envoy-expected-rq-timeout-ms', async (t) => {
  const slow = await startUpstream('slow', (req, res) => {
    const ms = Number(req.headers['x-sleep'] ?? 0);
    const timer = setTimeout(() => res.writeHead(200, { 'x-upstream': 'slow', 'x-expected': String(req.headers['x-envoy-expected-rq-timeout-ms'] ?? '') }).end('slow'), ms);
    res.once('close', () => clearTimeout(timer));
  });
  const dp = await startDataPlane({
    clusters: [staticCluster('slow', [slow.port])],
    virtualHosts: [vhost([{ match: { prefix: '/t' }, route: { cluster: 'slow', timeout: '0.3s' } }, { match: { prefix: '/' }, route: { cluster: 'slow', timeout: '0s' } }])],
  });
  t.after(async () => {
    await dp.close();
    await slow.close();
  });
  const fast = await get(dp.address, '/t', { agent: dp.agent });
  assert.equal(fast.status, 200);
  assert.equal(fast.headers['x-expected'], '300');
  const timedOut = await get(dp.address, '/t', { agent: dp.agent, headers: { 'x-sleep': '2000' } });
  assert.equal(timedOut.status, 504);
  assert.equal(timedOut.body, 'upstream request timeout');
  // The header shortens (or lengthens) the route timeout.
  const byHeader = await get(dp.address, '/unlimited', { agent: dp.agent, headers: { 'x-sleep': '2000', 'x-envoy-upstream-rq-timeout-ms': '150' } });
  assert.equal(byHeader.status, 504);
  const longer = await get(dp.address, '/t', { agent: dp.agent, headers: { 'x-sleep': '500', 'x-envoy-upstream-rq-timeout-ms': '3000' } });
  assert.equal(longer.status, 200);
  const h2 = await h2get(dp.address, '/t', { headers: { 'x-sleep': '2000' } });
  assert.equal(h2.status, 504);
  const log = await accessLogEntries(dp, 5);
  assert.deepEqual(log.map((e) => [e['code'], e['flags']]), [[200, '-'], [504, 'UT'], [504, 'UT'], [200, '-'], [504, 'UT']]);
  assert.equal(await dp.stat('cluster.slow.upstream_rq_timeout'), 3);
  assert.equal(await dp.stat('http.ingress.downstream_rq_5xx'), 3);
});

test('retry buffer: route per_request_buffer_limit_bytes caps what a retry may replay', async (t) => {
  const up = await scriptedUpstream('buf');
  const dp = await startDataPlane({
    clusters: [staticCluster('buf', [up.port])],
    virtualHosts: [
      vhost([
        { match: { prefix: '/small' }, per_request_buffer_limit_bytes: 1024, route: { cluster: 'buf', retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: FAST_BACKOFF } } },
        { match: { prefix: '/' }, route: { cluster: 'buf', retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: FAST_BACKOFF } } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  const body = 'x'.repeat(64 * 1024);
  // Within the listener's 1 MiB default: the body is replayed and the retry succeeds with the whole body.
  const replayed = await get(dp.address, '/big', { method: 'POST', body, headers: { 'x-plan-id': 'r1', 'x-status-plan': '503,200' } });
  assert.equal(replayed.status, 200);
  assert.equal(up.seen.filter((s) => s.headers['x-plan-id'] === 'r1').map((s) => s.body.length).join(','), `${body.length},${body.length}`);
  // Over the route's 1 KiB: no retry, the 503 passes through.
  const capped = await get(dp.address, '/small', { method: 'POST', body, headers: { 'x-plan-id': 'r2', 'x-status-plan': '503,200' } });
  assert.equal(capped.status, 503);
  assert.equal(up.calls.get('r2'), 1);
  assert.equal(await dp.stat('cluster.buf.retry_or_shadow_abandoned'), 1);
  // A small body on the same route is still retried.
  const small = await get(dp.address, '/small', { method: 'POST', body: 'tiny', headers: { 'x-plan-id': 'r3', 'x-status-plan': '503,200' } });
  assert.equal(small.status, 200);
});
