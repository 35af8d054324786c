// Routing through the real data plane with real HTTP/1.1 and HTTP/2 clients: virtual hosts by domain, path/header/query
// matches, weighted splits, cluster_header, redirects, direct responses, path and host rewrites seen by the upstream,
// 404 NR, and the HCM counters in /stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLogEntries, get, h2get, routeTo, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

test('routing: domains, matches, splits, cluster_header, redirect, direct_response, rewrites (HTTP/1.1 and HTTP/2)', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const c = await startUpstream('c');
  const dp = await startDataPlane({
    clusters: [staticCluster('a', [a.port]), staticCluster('b', [b.port]), staticCluster('c', [c.port])],
    virtualHosts: [
      vhost([routeTo('b')], ['exact.example.com']),
      vhost([routeTo('c')], ['*.wild.example.com']),
      vhost([routeTo('b', '/', { host_rewrite_literal: 'rewritten.internal' })], ['prefix.*']),
      vhost([routeTo('c')], ['ported.example.com:8080']),
      vhost([
        { match: { path: '/exact' }, route: { cluster: 'b' } },
        { match: { safe_regex: { regex: '/re/[0-9]+' } }, route: { cluster: 'c' } },
        { match: { prefix: '/hdr', headers: [{ name: 'x-pick', string_match: { exact: 'b' } }] }, route: { cluster: 'b' } },
        { match: { prefix: '/hdr', headers: [{ name: 'x-absent', present_match: true, invert_match: true }, { name: 'x-num', range_match: { start: 10, end: 20 } }] }, route: { cluster: 'c' } },
        { match: { prefix: '/q', query_parameters: [{ name: 'v', string_match: { exact: '2' } }] }, route: { cluster: 'c' } },
        { match: { prefix: '/split' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 25 }, { name: 'b', weight: 75 }] } } },
        { match: { prefix: '/by-header' }, route: { cluster_header: 'x-cluster' } },
        { match: { prefix: '/old' }, redirect: { path_redirect: '/new', response_code: 'FOUND' } },
        { match: { prefix: '/secure' }, redirect: { https_redirect: true, host_redirect: 'secure.example.com' } },
        { match: { prefix: '/direct' }, direct_response: { status: 418, body: { inline_string: 'teapot' } } },
        { match: { prefix: '/api/v1/' }, route: { cluster: 'b', prefix_rewrite: '/v1-internal/' } },
        { match: { prefix: '/re-write/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '^/re-write/(\\w+)/(\\w+)$' }, substitution: '/\\2/\\1' } } },
        { match: { prefix: '/none/' }, direct_response: { status: 200 } },
        routeTo('a', '/', {}, {}),
      ]),
    ],
  });
  t.after(async () => {
    await dp.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const go = (path: string, headers: Record<string, string> = {}) => get(dp.address, path, { agent: dp.agent, headers });

  // Virtual hosts: exact, *.suffix, prefix.*, with port, and the * fallback.
  assert.equal((await go('/x', { host: 'exact.example.com' })).headers['x-upstream'], 'b');
  assert.equal((await go('/x', { host: 'api.wild.example.com' })).headers['x-upstream'], 'c');
  const prefixed = await go('/p', { host: 'prefix.anything' });
  assert.equal(prefixed.headers['x-upstream'], 'b');
  assert.equal(b.seen.at(-1)!.headers.host, 'rewritten.internal', 'host_rewrite_literal reaches the upstream');
  assert.equal((await go('/x', { host: 'ported.example.com:8080' })).headers['x-upstream'], 'c');
  assert.equal((await go('/x', { host: 'ported.example.com:9090' })).headers['x-upstream'], 'a', 'a different port falls to *');
  assert.equal((await go('/x', { host: 'other.example.com' })).headers['x-upstream'], 'a');

  // Path matches.
  assert.equal((await go('/exact')).headers['x-upstream'], 'b');
  assert.equal((await go('/exact/more')).headers['x-upstream'], 'a', 'path is an exact match');
  assert.equal((await go('/re/123')).headers['x-upstream'], 'c');
  assert.equal((await go('/re/12a')).headers['x-upstream'], 'a', 'safe_regex matches the whole path');

  // Header matches (exact; inverted present + range).
  assert.equal((await go('/hdr', { 'x-pick': 'b' })).headers['x-upstream'], 'b');
  assert.equal((await go('/hdr', { 'x-num': '15' })).headers['x-upstream'], 'c');
  assert.equal((await go('/hdr', { 'x-num': '25' })).headers['x-upstream'], 'a', 'range end is exclusive');
  assert.equal((await go('/hdr', { 'x-num': '15', 'x-absent': '1' })).headers['x-upstream'], 'a', 'invert_match of present_match');

  // Query parameter match.
  assert.equal((await go('/q?v=2')).headers['x-upstream'], 'c');
  assert.equal((await go('/q?v=3')).headers['x-upstream'], 'a');

  // Weighted split 25/75 over 400 requests: within generous bounds.
  const counts: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 400; i++) counts[(await go('/split')).headers['x-upstream'] as string]!++;
  assert.ok(counts['a']! > 50 && counts['a']! < 150, `split a=${counts['a']} b=${counts['b']}`);
  assert.equal(counts['a']! + counts['b']!, 400);

  // cluster_header: the named cluster, or 503 NC when it does not exist.
  assert.equal((await go('/by-header', { 'x-cluster': 'c' })).headers['x-upstream'], 'c');
  const nc = await go('/by-header', { 'x-cluster': 'nope' });
  assert.equal(nc.status, 503);

  // Redirects and direct responses.
  const moved = await go('/old?keep=1', { host: 'site.example.com' });
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.location, 'http://site.example.com/new?keep=1');
  const secure = await go('/secure/x', { host: 'site.example.com' });
  assert.equal(secure.status, 301);
  assert.equal(secure.headers.location, 'https://secure.example.com/secure/x');
  const direct = await go('/direct');
  assert.equal(direct.status, 418);
  assert.equal(direct.body, 'teapot');
  const empty = await go('/none/');
  assert.equal(empty.status, 200);
  assert.equal(empty.body, '');

  // Rewrites seen by the upstream, with x-envoy-original-path.
  await go('/api/v1/users?id=7');
  assert.equal(b.seen.at(-1)!.path, '/v1-internal/users?id=7');
  assert.equal(b.seen.at(-1)!.headers['x-envoy-original-path'], '/api/v1/users?id=7');
  await go('/re-write/one/two');
  assert.equal(c.seen.at(-1)!.path, '/two/one');

  // The same routes over HTTP/2 (h2c).
  const h2 = await h2get(dp.address, '/re/9', { headers: { ':authority': 'other.example.com' } });
  assert.equal(h2.status, 200);
  assert.equal(h2.headers['x-upstream'], 'c');
  const h2redirect = await h2get(dp.address, '/old', { headers: { ':authority': 'site.example.com' } });
  assert.equal(h2redirect.status, 302);
  assert.equal(h2redirect.headers['location'], 'http://site.example.com/new');

  // Counters: downstream requests and upstream 2xx per cluster.
  const stats = await dp.stats();
  assert.equal(stats.get('http.ingress.downstream_rq_total'), 426);
  assert.equal(stats.get('http.ingress.downstream_rq_http2_total'), 2);
  assert.equal(stats.get('cluster.c.upstream_rq_2xx'), c.seen.length);
  assert.equal(stats.get('cluster.b.upstream_rq_2xx'), b.seen.length);
  assert.equal(stats.get('http.ingress.rq_redirect'), 3);
  assert.equal(stats.get('http.ingress.rq_direct_response'), 2);
});

test('routing: no route → 404 NR in the access log and no_route counted; unknown cluster_header → 503 NC', async (t) => {
  const a = await startUpstream('a');
  const dp = await startDataPlane({
    clusters: [staticCluster('a', [a.port])],
    virtualHosts: [vhost([routeTo('a', '/only/'), { match: { prefix: '/ch' }, route: { cluster_header: 'x-cluster' } }], ['known.example.com'])],
  });
  t.after(async () => {
    await dp.close();
    await a.close();
  });
  const nr = await get(dp.address, '/only/x', { headers: { host: 'unknown.example.com' } });
  assert.equal(nr.status, 404);
  const nr2 = await get(dp.address, '/elsewhere', { headers: { host: 'known.example.com' } });
  assert.equal(nr2.status, 404);
  const nc = await get(dp.address, '/ch', { headers: { host: 'known.example.com' } });
  assert.equal(nc.status, 503);
  const log = await accessLogEntries(dp, 3);
  assert.deepEqual(log.map((e) => [e['code'], e['flags']]), [[404, 'NR'], [404, 'NR'], [503, 'NC']]);
  assert.equal(await dp.stat('http.ingress.no_route'), 2);
  assert.equal(await dp.stat('http.ingress.no_cluster'), 1);
  assert.equal(a.seen.length, 0);
});
