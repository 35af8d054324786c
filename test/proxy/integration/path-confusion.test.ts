// Path-confusion attempts through the real data plane (static bootstrap, raw HTTP/1.1 requests): with Istio's
// defaults (normalize_path, merge_slashes) a path rule on /admin cannot be bypassed with dot segments, escaped dots,
// doubled slashes or NUL; /ADMIN and /admin;x are different paths (as in Envoy and Istio) and reach the backend
// unchanged; path_with_escaped_slashes_action rejects (400) or redirects (307) %2F.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { accessLogEntries, h2get, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

/** One raw request; the reply's status code, location header and the whole text. */
function raw(port: number, path: string): Promise<{ status: number; location?: string; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (out += c));
    s.on('error', reject);
    s.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      const location = /\r\nlocation: ([^\r]*)\r\n/i.exec(out)?.[1];
      resolve({ status, ...(location !== undefined ? { location } : {}), text: out });
    });
    s.write(`GET ${path} HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n`);
  });
}

const ADMIN_RULES = [
  // The "security rule": /admin (and below) never reaches the backend; exactly /exact-admin neither.
  { match: { prefix: '/admin' }, direct_response: { status: 403, body: { inline_string: 'admin is forbidden' } } },
  { match: { path: '/exact-admin' }, direct_response: { status: 403, body: { inline_string: 'admin is forbidden' } } },
];

test('normalize_path + merge_slashes: dot segments, escaped dots, // and %00 cannot bypass a path rule', async (t) => {
  const up = await startUpstream('backend');
  const dp = await startDataPlane({
    clusters: [staticCluster('backend', [up.port])],
    hcm: { normalize_path: true, merge_slashes: true },
    virtualHosts: [vhost([...ADMIN_RULES, { match: { prefix: '/' }, route: { cluster: 'backend' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  for (const attempt of ['/admin', '/a/../admin', '/a/%2e%2e/admin', '/a/%2E%2E/admin', '/public/./../admin/x', '//admin', '/./admin', '/a/..\\admin', '/%61dmin']) {
    const r = await raw(dp.port, attempt);
    assert.equal(r.status, 403, `${attempt} must hit the /admin rule`);
  }
  assert.equal(up.seen.length, 0, 'no attempt reached the backend');
  // NUL, escaped or raw in an escape sequence, is refused outright.
  const nul = await raw(dp.port, '/admin%00');
  assert.equal(nul.status, 400);
  const nul2 = await raw(dp.port, '/public/%00/../admin');
  assert.equal(nul2.status, 400);
  // A raw NUL never gets as far as normalization: the HTTP/1.1 parser refuses the request line.
  const rawNul = await raw(dp.port, '/admin\u0000x');
  assert.equal(rawNul.status, 400);
  // Case-sensitive rules: /ADMIN is another path, and the backend sees it as sent (Istio's documented behaviour).
  assert.equal((await raw(dp.port, '/ADMIN')).status, 200);
  assert.equal(up.seen.at(-1)!.path, '/ADMIN');
  // Path parameters are kept: a `path: /exact-admin` rule does not match /exact-admin;x, and the backend gets it whole.
  assert.equal((await raw(dp.port, '/exact-admin')).status, 403);
  assert.equal((await raw(dp.port, '/exact-admin;x')).status, 200);
  assert.equal(up.seen.at(-1)!.path, '/exact-admin;x');
  // %2F is kept by default (KEEP_UNCHANGED): ..%2F is not a parent segment, so the backend gets the escaped form.
  assert.equal((await raw(dp.port, '/public/..%2fadmin')).status, 200);
  assert.equal(up.seen.at(-1)!.path, '/public/..%2Fadmin');
  assert.equal(await dp.stat('http.ingress.downstream_rq_failed_path_normalization'), 2);
  const log = await accessLogEntries(dp, 15);
  assert.deepEqual(
    log.filter((e) => e['details'] === 'path_normalization_failed').map((e) => [e['code'], e['path']]),
    [
      [400, '/admin%00'],
      [400, '/public/%00/../admin'],
    ],
  );
});

test('path_with_escaped_slashes_action REJECT_REQUEST answers 400; UNESCAPE_AND_REDIRECT answers 307 to the unescaped path', async (t) => {
  const up = await startUpstream('backend');
  const reject = await startDataPlane({
    clusters: [staticCluster('backend', [up.port])],
    hcm: { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'REJECT_REQUEST' },
    virtualHosts: [vhost([...ADMIN_RULES, { match: { prefix: '/' }, route: { cluster: 'backend' } }])],
  });
  const redirect = await startDataPlane({
    clusters: [staticCluster('backend', [up.port])],
    hcm: { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT' },
    virtualHosts: [vhost([...ADMIN_RULES, { match: { prefix: '/' }, route: { cluster: 'backend' } }])],
  });
  const forward = await startDataPlane({
    clusters: [staticCluster('backend', [up.port])],
    hcm: { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' },
    virtualHosts: [vhost([...ADMIN_RULES, { match: { prefix: '/' }, route: { cluster: 'backend' } }])],
  });
  t.after(async () => {
    await reject.close();
    await redirect.close();
    await forward.close();
    await up.close();
  });
  assert.equal((await raw(reject.port, '/public/..%2Fadmin')).status, 400);
  assert.equal((await raw(reject.port, '/public/%5cfile')).status, 400);
  assert.equal((await raw(reject.port, '/public/file')).status, 200);
  assert.equal(await reject.stat('http.ingress.downstream_rq_failed_path_normalization'), 2);

  const r = await raw(redirect.port, '/files/a%2Fb?q=%2F');
  assert.equal(r.status, 307);
  assert.equal(r.location, '/files/a/b?q=%2F');
  assert.equal(await redirect.stat('http.ingress.downstream_rq_redirected_with_normalized_path'), 1);
  // The redirect target is normalized too: following it cannot reach /admin past the rule.
  const sneaky = await raw(redirect.port, '/public/..%2Fadmin');
  assert.equal(sneaky.status, 307);
  assert.equal(sneaky.location, '/admin');
  assert.equal((await raw(redirect.port, sneaky.location!)).status, 403);
  // gRPC clients do not follow redirects: Envoy refuses instead (400 → trailers-only grpc-status 13).
  const grpc = await h2get(`127.0.0.1:${redirect.port}`, '/pkg.Svc%2FMethod', { method: 'POST', headers: { 'content-type': 'application/grpc' }, body: '' });
  assert.equal(grpc.headers['grpc-status'], '13');
  assert.equal(await redirect.stat('http.ingress.downstream_rq_failed_path_normalization'), 1);

  assert.equal((await raw(forward.port, '/public/..%2Fadmin')).status, 403);
  assert.equal((await raw(forward.port, '/files/a%2fb')).status, 200);
  assert.equal(up.seen.at(-1)!.path, '/files/a/b');
});

test('an unknown path_with_escaped_slashes_action is refused at start-up', async () => {
  await assert.rejects(
    startDataPlane({
      clusters: [],
      hcm: { path_with_escaped_slashes_action: 'NOT_AN_ACTION' },
      virtualHosts: [vhost([{ match: { prefix: '/' }, direct_response: { status: 200 } }])],
    }),
  );
});
