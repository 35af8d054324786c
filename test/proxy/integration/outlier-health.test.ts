// Outlier detection and active health checking through the real proxy: a host answering 503 is ejected after
// consecutive_5xx and gets no more requests; a host failing its health check gets none; /clusters shows
// /failed_outlier_check and /failed_active_hc; /stats and /stats/prometheus carry Envoy's outlier_detection.* and
// health_check.* names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { hasOpenssl, TestCa } from '../transport/pki.js';
import { eventually, get, startDataPlane, startUpstream, staticCluster, vhost } from './support.js';

test('outlier detection and active health checking end to end: ejection, health flags, stats', async (t) => {
  const good = [await startUpstream('g1'), await startUpstream('g2')];
  const bad = await startUpstream('bad', (_req, res) => res.writeHead(503).end('down'));
  let checkStatus = 200;
  const checked = await startUpstream('checked', (req, res) => {
    if (req.url === '/healthz') return res.writeHead(checkStatus).end();
    res.writeHead(200, { 'x-upstream': 'checked' }).end('checked');
  });
  const dp = await startDataPlane({
    clusters: [
      staticCluster('od', [...good.map((g) => g.port), bad.port], {
        outlier_detection: { consecutive_5xx: 3, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 },
      }),
      staticCluster('hc', [good[0]!.port, checked.port], {
        health_checks: [{ timeout: '0.5s', interval: '0.05s', no_traffic_interval: '0.05s', unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: '/healthz' } }],
      }),
    ],
    virtualHosts: [vhost([{ match: { prefix: '/hc' }, route: { cluster: 'hc' } }, { match: { prefix: '/' }, route: { cluster: 'od' } }])],
  });
  t.after(async () => {
    await dp.close();
    await Promise.all([...good, bad, checked].map((u) => u.close()));
  });

  // Round robin over three hosts: the bad one answers every third request until its third 503 ejects it.
  const statuses: number[] = [];
  for (let i = 0; i < 9; i++) statuses.push((await get(dp.address, `/r${i}`)).status);
  assert.equal(statuses.filter((s) => s === 503).length, 3, `statuses ${statuses.join(',')}`);
  assert.equal(bad.seen.length, 3);
  for (let i = 0; i < 30; i++) assert.equal((await get(dp.address, `/after${i}`)).status, 200);
  assert.equal(bad.seen.length, 3, 'the ejected host gets no more requests');
  const stats = await dp.stats();
  assert.equal(stats.get('cluster.od.outlier_detection.ejections_active'), 1);
  assert.equal(stats.get('cluster.od.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
  assert.equal(stats.get('cluster.od.outlier_detection.ejections_detected_consecutive_5xx'), 1);
  assert.equal(stats.get('cluster.od.outlier_detection.ejections_enforced_total'), 1);
  assert.equal(stats.get('cluster.od.membership_healthy'), 2);
  const clusters = (await get(dp.admin, '/clusters')).body;
  assert.match(clusters, new RegExp(`^od::127\\.0\\.0\\.1:${bad.port}::health_flags::/failed_outlier_check$`, 'm'));
  assert.match(clusters, new RegExp(`^od::127\\.0\\.0\\.1:${good[0]!.port}::health_flags::healthy$`, 'm'));
  const json = JSON.parse((await get(dp.admin, '/clusters?format=json')).body) as { cluster_statuses: { name: string; host_statuses: { address: { socket_address: { port_value: number } }; health_status: Record<string, unknown> }[] }[] };
  const badStatus = json.cluster_statuses.find((c) => c.name === 'od')!.host_statuses.find((h) => h.address.socket_address.port_value === bad.port)!;
  assert.equal(badStatus.health_status.failed_outlier_check, true);
  const prom = (await get(dp.admin, '/stats/prometheus')).body;
  assert.match(prom, /^envoy_cluster_outlier_detection_ejections_active\{envoy_cluster_name="od"\} 1$/m);
  assert.match(prom, /^# TYPE envoy_cluster_outlier_detection_ejections_active gauge$/m);

  // Active health checking: a failing /healthz takes the host out; passing again brings it back.
  await eventually('both hc hosts checked healthy', async () => (await dp.stats()).get('cluster.hc.health_check.healthy') === 2);
  checkStatus = 503;
  await eventually('the checked host failed', async () => /::health_flags::\/failed_active_hc$/m.test((await get(dp.admin, '/clusters')).body));
  const before = checked.seen.filter((r) => r.path !== '/healthz').length;
  for (let i = 0; i < 10; i++) assert.equal((await get(dp.address, `/hc${i}`)).status, 200);
  assert.equal(checked.seen.filter((r) => r.path !== '/healthz').length, before, 'no traffic to the unhealthy host');
  const hcStats = await dp.stats();
  assert.equal(hcStats.get('cluster.hc.health_check.healthy'), 1);
  assert.ok(hcStats.get('cluster.hc.health_check.failure')! >= 1);
  assert.ok(hcStats.get('cluster.hc.health_check.attempt')! >= 3);
  assert.equal(hcStats.get('cluster.hc.upstream_cx_total'), 1, 'health-check connections are not upstream connections');
  checkStatus = 200;
  await eventually('the checked host is back', async () => (await dp.stats()).get('cluster.hc.health_check.healthy') === 2);
  const seenBefore = checked.seen.length;
  for (let i = 0; i < 10; i++) await get(dp.address, `/hc-back${i}`);
  assert.ok(checked.seen.slice(seenBefore).some((r) => r.path.startsWith('/hc-back')), 'traffic returns to the host');
});

test('active health checks run over the cluster\'s TLS transport socket (SNI, CA, client certificate) and alt_port', { skip: hasOpenssl() ? false : 'openssl CLI is missing: cannot make test certificates' }, async (t) => {
  const ca = new TestCa('hc.test');
  const server = ca.issue('svc', { dns: ['svc.example'] });
  const client = ca.issue('client', { dns: ['client.example'] });
  const checks: { sni: string | false; peer: string; path: string }[] = [];
  let status = 200;
  const http = createHttpServer((req, res) => {
    const s = req.socket as TLSSocket;
    checks.push({ sni: s.servername || false, peer: s.getPeerCertificate().subjectaltname ?? '', path: req.url ?? '' });
    res.writeHead(req.url === '/healthz' ? status : 200).end('tls');
  });
  const tls = createTlsServer({ cert: server.cert, key: server.key, ca: ca.root.cert, requestCert: true, rejectUnauthorized: true }, (s) => http.emit('connection', s));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  const tlsPort = (tls.address() as AddressInfo).port;
  // Traffic goes to a plain server; the checks go to alt_port, the TLS server, which only a check over TLS can pass.
  const plain = await startUpstream('plain');
  const dp = await startDataPlane({
    clusters: [
      staticCluster('tls', [plain.port], {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            sni: 'svc.example',
            common_tls_context: {
              tls_certificates: [{ certificate_chain: { inline_string: client.cert }, private_key: { inline_string: client.key } }],
              validation_context: { trusted_ca: { inline_string: ca.root.cert }, match_subject_alt_names: [{ exact: 'svc.example' }] },
            },
          },
        },
        health_checks: [{ timeout: '1s', interval: '0.05s', no_traffic_interval: '0.05s', unhealthy_threshold: 1, healthy_threshold: 1, alt_port: tlsPort, http_health_check: { path: '/healthz' } }],
      }),
    ],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'tls' } }])],
  });
  t.after(async () => {
    await dp.close();
    await plain.close();
    http.closeAllConnections();
    await new Promise<void>((r) => tls.close(() => r()));
  });
  await eventually('the TLS check to pass', async () => (await dp.stats()).get('cluster.tls.health_check.healthy') === 1);
  assert.equal(checks[0]!.sni, 'svc.example');
  assert.match(checks[0]!.peer, /DNS:client\.example/);
  assert.equal(checks[0]!.path, '/healthz');
  status = 500;
  await eventually('the TLS check to fail', async () => (await dp.stats()).get('cluster.tls.health_check.healthy') === 0);
  assert.match((await get(dp.admin, '/clusters')).body, /^tls::127\.0\.0\.1:\d+::health_flags::\/failed_active_hc$/m);
});

test('outlier detection counts final statuses only: a 100 Continue before each 503 does not reset the run', async (t) => {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buffered = '';
    s.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const good = await startUpstream('good');
  const dp = await startDataPlane({
    clusters: [staticCluster('c', [port, good.port], { outlier_detection: { consecutive_5xx: 2, max_ejection_percent: 100, interval: '10s' } })],
    virtualHosts: [vhost([{ match: { prefix: '/' }, route: { cluster: 'c' } }])],
  });
  t.after(async () => {
    await dp.close();
    await good.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await get(dp.address, `/x${i}`)).status);
  // Round robin over the two hosts: the 503 host's second 503 ejects it; every later request goes to the good host.
  assert.equal(statuses.filter((s) => s === 503).length, 2, `statuses ${statuses.join(',')}`);
  assert.equal(await dp.stat('cluster.c.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
});
