// Fault injection, request mirroring and hash-based balancing through the real data plane: abort by percentage and by
// header (FI, fault.aborts_injected), delay (DI), gRPC-aware abort; the shadow upstream gets the copy with a -shadow
// host and the body; RING_HASH and MAGLEV keep a header on one upstream of three; a TTL cookie policy sets Set-Cookie
// and the cookie then pins the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLogEntries, eventually, get, h2get, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

test('fault: abort by percentage and header, delay, stats and flags', async (t) => {
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port])],
    httpFilters: [
      {
        name: 'envoy.filters.http.fault',
        typed_config: {
          '@type': FAULT_TYPE,
          abort: { header_abort: {}, percentage: { numerator: 100, denominator: 'HUNDRED' } },
          delay: { header_delay: {}, percentage: { numerator: 100, denominator: 'HUNDRED' } },
        },
      },
    ],
    virtualHosts: [
      vhost([
        {
          match: { prefix: '/always-abort' },
          route: { cluster: 'svc' },
          typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT_TYPE, abort: { http_status: 503, percentage: { numerator: 100 } } } },
        },
        {
          match: { prefix: '/half-abort' },
          route: { cluster: 'svc' },
          typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT_TYPE, abort: { http_status: 429, percentage: { numerator: 50, denominator: 'HUNDRED' } } } },
        },
        {
          match: { prefix: '/delay' },
          route: { cluster: 'svc' },
          typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT_TYPE, delay: { fixed_delay: '0.3s', percentage: { numerator: 100 } } } },
        },
        { match: { prefix: '/' }, route: { cluster: 'svc' } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  const aborted = await get(dp.address, '/always-abort', { agent: dp.agent });
  assert.equal(aborted.status, 503);
  assert.equal(aborted.body, 'fault filter abort');
  assert.equal(up.seen.length, 0, 'an aborted request never reaches the upstream');

  let fourTwentyNines = 0;
  for (let i = 0; i < 200; i++) if ((await get(dp.address, '/half-abort', { agent: dp.agent })).status === 429) fourTwentyNines++;
  assert.ok(fourTwentyNines > 60 && fourTwentyNines < 140, `50% abort gave ${fourTwentyNines}/200`);

  const started = performance.now();
  const delayed = await get(dp.address, '/delay', { agent: dp.agent });
  assert.equal(delayed.status, 200);
  assert.ok(performance.now() - started >= 250, 'delayed by the fixed delay');

  // Header-controlled faults on the filter's own config.
  const byHeader = await get(dp.address, '/plain', { agent: dp.agent, headers: { 'x-envoy-fault-abort-request': '418' } });
  assert.equal(byHeader.status, 418);
  const h2abort = await h2get(dp.address, '/plain', { headers: { 'x-envoy-fault-abort-request': '502' } });
  assert.equal(h2abort.status, 502);
  const headerDelay = performance.now();
  assert.equal((await get(dp.address, '/plain', { agent: dp.agent, headers: { 'x-envoy-fault-delay-request': '200' } })).status, 200);
  assert.ok(performance.now() - headerDelay >= 150);
  assert.equal((await get(dp.address, '/plain', { agent: dp.agent })).status, 200);

  const log = await accessLogEntries(dp, 206);
  assert.equal(log[0]!['flags'], 'FI');
  assert.equal(log[201]!['flags'], 'DI');
  const stats = await dp.stats();
  assert.equal(stats.get('http.ingress.fault.aborts_injected'), 1 + fourTwentyNines + 2);
  assert.equal(stats.get('http.ingress.fault.delays_injected'), 2);
});

test('mirror: the shadow cluster receives a copy with the -shadow host and the body; its failures do not matter', async (t) => {
  const main = await startUpstream('main');
  const shadow = await startUpstream('shadow', (_req, res) => res.writeHead(500).end('shadow ignored'));
  const dp = await startDataPlane({
    clusters: [staticCluster('main', [main.port]), staticCluster('shadow', [shadow.port]), staticCluster('dead', [1])],
    virtualHosts: [
      vhost([
        { match: { prefix: '/dead' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'dead' }] } },
        { match: { prefix: '/' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 100 } } }] } },
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await Promise.all([main.close(), shadow.close()]);
  });
  const r = await get(dp.address, '/orders', { agent: dp.agent, method: 'POST', body: 'order-1', headers: { host: 'orders.svc:8080' } });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'main /orders');
  await eventually('the shadow copy', () => shadow.seen.length === 1);
  assert.equal(shadow.seen[0]!.headers.host, 'orders.svc-shadow:8080');
  assert.equal(shadow.seen[0]!.body, 'order-1');
  assert.equal(shadow.seen[0]!.method, 'POST');
  assert.equal(main.seen[0]!.headers.host, 'orders.svc:8080');
  const h2 = await h2get(dp.address, '/h2', { headers: { ':authority': 'api' } });
  assert.equal(h2.status, 200);
  await eventually('the h2 shadow copy', () => shadow.seen.length === 2);
  assert.equal(shadow.seen[1]!.headers.host, 'api-shadow');
  // A mirror to a dead port fails on its own.
  assert.equal((await get(dp.address, '/dead', { agent: dp.agent })).status, 200);
});

for (const lbPolicy of ['RING_HASH', 'MAGLEV'] as const) {
  test(`hash: ${lbPolicy} keeps one header value on one upstream of three; a TTL cookie is set and then pins`, async (t) => {
    const ups = await Promise.all(['u0', 'u1', 'u2'].map((n) => startUpstream(n)));
    const dp = await startDataPlane({
      clusters: [staticCluster('hashed', ups.map((u) => u.port), { lb_policy: lbPolicy })],
      virtualHosts: [
        vhost([
          { match: { prefix: '/cookie' }, route: { cluster: 'hashed', hash_policy: [{ cookie: { name: 'sticky', ttl: '60s', path: '/cookie' } }] } },
          { match: { prefix: '/' }, route: { cluster: 'hashed', hash_policy: [{ header: { header_name: 'x-user' } }] } },
        ]),
      ],
    });
    t.after(async () => {
      await dp.close();
      await Promise.all(ups.map((u) => u.close()));
    });
    const chosen = new Map<string, string>();
    for (let user = 0; user < 20; user++) {
      const seen = new Set<string>();
      for (let i = 0; i < 5; i++) seen.add(String((await get(dp.address, '/x', { agent: dp.agent, headers: { 'x-user': `user-${user}` } })).headers['x-upstream']));
      assert.equal(seen.size, 1, `user-${user} went to ${[...seen].join(', ')}`);
      chosen.set(`user-${user}`, [...seen][0]!);
    }
    assert.ok(new Set(chosen.values()).size >= 2, 'twenty users spread over more than one upstream');
    // HTTP/2 with the same header lands on the same upstream.
    assert.equal((await h2get(dp.address, '/x', { headers: { 'x-user': 'user-3' } })).headers['x-upstream'], chosen.get('user-3'));

    const first = await get(dp.address, '/cookie', { agent: dp.agent });
    const setCookie = first.headers['set-cookie'];
    assert.ok(Array.isArray(setCookie) && setCookie.length === 1, `set-cookie: ${String(setCookie)}`);
    assert.match(setCookie[0]!, /^sticky="[0-9a-f]+"; Max-Age=60; Path=\/cookie; HttpOnly$/);
    const cookie = setCookie[0]!.split(';')[0]!;
    const pinned = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await get(dp.address, '/cookie', { agent: dp.agent, headers: { cookie } });
      assert.equal(r.headers['set-cookie'], undefined, 'no new cookie once the request has one');
      pinned.add(String(r.headers['x-upstream']));
    }
    assert.equal(pinned.size, 1);
    assert.equal([...pinned][0], first.headers['x-upstream'], 'the generated cookie hashes to the host that answered first');
  });
}
