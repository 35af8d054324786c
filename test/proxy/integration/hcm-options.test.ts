// HCM options through the real data plane: stream_idle_timeout (408, and a route idle_timeout overriding it),
// request_timeout for a client that stalls mid-body (408), normalize_path and merge_slashes as the upstream sees them
// (and 400 for a malformed escape), and the fields Trellis refuses instead of ignoring (tracing, local_reply_config)
// with the reason at start-up (original_dst / use_original_dst: test/proxy/listeners/original-destination.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ProxyStartupError } from '../../../src/proxy/main.js';
import { accessLogEntries, get, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

test('stream_idle_timeout and request_timeout answer 408; route idle_timeout overrides', async (t) => {
  const hang = await startUpstream('hang', () => undefined);
  const dp = await startDataPlane({
    clusters: [staticCluster('hang', [hang.port])],
    hcm: { stream_idle_timeout: '0.3s', request_timeout: '0.6s' },
    virtualHosts: [vhost([{ match: { prefix: '/longer' }, route: { cluster: 'hang', timeout: '0s', idle_timeout: '1s' } }, { match: { prefix: '/' }, route: { cluster: 'hang', timeout: '0s' } }])],
  });
  t.after(async () => {
    await dp.close();
    await hang.close();
  });
  const idle = await get(dp.address, '/idle');
  assert.equal(idle.status, 408);
  assert.equal(idle.body, 'stream timeout');
  const started = performance.now();
  const longer = await get(dp.address, '/longer');
  assert.equal(longer.status, 408);
  assert.ok(performance.now() - started >= 900, 'the route idle_timeout (1 s) replaced the HCM one (0.3 s)');
  // A client that sends part of its body and then keeps trickling: idle never fires, the request timeout does.
  const socket = connect({ host: '127.0.0.1', port: dp.port });
  let reply = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (reply += c));
  socket.write('POST /slow-body HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n');
  const trickle = setInterval(() => socket.write('x'), 100);
  await new Promise<void>((resolve) => socket.on('close', resolve));
  clearInterval(trickle);
  assert.match(reply, /^HTTP\/1.1 408/);
  assert.match(reply, /request timeout$/);
  const log = await accessLogEntries(dp, 3);
  assert.deepEqual(log.map((e) => [e['code'], e['details']]), [[408, 'stream_idle_timeout'], [408, 'stream_idle_timeout'], [408, 'request_overall_timeout']]);
  assert.equal(log[0]!['flags'], 'SI');
  assert.equal(await dp.stat('http.ingress.downstream_rq_idle_timeout'), 2);
  assert.equal(await dp.stat('http.ingress.downstream_rq_timeout'), 1);
  assert.equal(await dp.stat('cluster.hang.upstream_rq_active'), 0);
});

test('normalize_path and merge_slashes rewrite :path before routing; a bad escape is 400', async (t) => {
  const up = await startUpstream('svc');
  const dp = await startDataPlane({
    clusters: [staticCluster('svc', [up.port])],
    hcm: { normalize_path: true, merge_slashes: true },
    virtualHosts: [vhost([{ match: { prefix: '/api/' }, route: { cluster: 'svc' } }])],
  });
  t.after(async () => {
    await dp.close();
    await up.close();
  });
  const raw = (path: string): Promise<string> =>
    new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port: dp.port });
      let out = '';
      s.setEncoding('latin1');
      s.on('data', (c: string) => {
        out += c;
        if (out.includes('\r\n\r\n')) s.destroy();
      });
      s.on('close', () => resolve(out));
      s.write(`GET ${path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n`);
    });
  assert.match(await raw('/public/../api/./users//7?x=/../y'), /^HTTP\/1.1 200/);
  assert.equal(up.seen.at(-1)!.path, '/api/users/7?x=/../y');
  assert.match(await raw('/api/%7euser/%2f'), /^HTTP\/1.1 200/);
  assert.equal(up.seen.at(-1)!.path, '/api/~user/%2F');
  // Without normalization this would route to /api/ and reach the upstream as /secret.
  assert.match(await raw('/api/../secret'), /^HTTP\/1.1 404/);
  assert.match(await raw('/api/%zz'), /^HTTP\/1.1 400/);
  assert.equal(await dp.stat('http.ingress.downstream_rq_failed_path_normalization'), 1);
});

test('refused rather than ignored: tracing, local_reply_config', async () => {
  const base = { clusters: [staticCluster('svc', [1])], virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'svc' } }])] };
  const refused = async (options: Parameters<typeof startDataPlane>[0]): Promise<string> => {
    const err = await startDataPlane(options).then(
      async (dp) => {
        await dp.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProxyStartupError, `expected a start-up refusal, got ${String(err)}`);
    return err.message;
  };
  assert.match(await refused({ ...base, hcm: { tracing: {} } }), /typed_config\.tracing: tracing is not supported by Trellis/);
  assert.match(await refused({ ...base, hcm: { local_reply_config: { mappers: [] , body_format: { text_format: 'x' } } } }), /local_reply_config: local reply mappers/);
});
