// Transparent capture for real (root, network namespaces): `trellis iptables` in a pod namespace, `trellis proxy` as the
// proxy user with Istio's virtualOutbound/virtualInbound, a plain curl that knows nothing of the proxy. Outbound HTTP is
// handed to the 0.0.0.0_8080 listener, opaque TCP goes out through PassthroughCluster to its original destination,
// inbound to the pod IP goes through 15006 (the app sees 127.0.0.6), the proxy user's own traffic is not captured, and
// `trellis iptables clean` plus the lab's close() leave no chain and no namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab, type NetnsPod } from '../support/netns.js';
import { bootstrap, CLI, proxyIdentity, SERVER, statOf, unavailable, waitFor } from './capture-support.js';

test('captured outbound and inbound TCP in a pod namespace go through the proxy with their original destination', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  const lab = new NetnsLab();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-capture-'));
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(lab.remainingNamespaces(), [], 'every namespace of the lab is gone');
  });
  const app: NetnsPod = lab.addPod('app');
  const upstream = lab.addPod('up');
  chmodSync(dir, 0o755);
  const bootstrapPath = join(dir, 'bootstrap.yaml');
  writeFileSync(bootstrapPath, bootstrap(upstream.ip), { mode: 0o644 });

  const upstreamServer = lab.start(upstream, process.execPath, ['-e', SERVER, 'upstream', '8080', '7000']);
  const appServer = lab.start(app, process.execPath, ['-e', SERVER, 'app', '9090']);
  // The init step: Istio's rules in the pod's namespace, as the injector's defaults write them.
  lab.exec(app, process.execPath, [CLI, 'iptables']);
  const rules = lab.exec(app, 'iptables-save', ['-t', 'nat']);
  for (const chain of ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT']) assert.match(rules, new RegExp(`^:${chain} `, 'm'));

  const identity = proxyIdentity();
  t.diagnostic(`proxy runs as ${identity.label}`);
  const proxy = lab.start(app, 'setpriv', [...identity.args, process.execPath, CLI, 'proxy', '-c', bootstrapPath, '--log-level', 'warning']);
  await waitFor('the proxy, the app and the upstream', () => /admin address/.test(proxy.output()) && /listening/.test(upstreamServer.output()) && /listening/.test(appServer.output())).catch((err: Error) => {
    throw new Error(`${err.message}\nproxy:\n${proxy.output()}\nupstream:\n${upstreamServer.output()}\napp:\n${appServer.output()}`);
  });
  const stats = (): string => lab.exec(app, 'curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:15000/stats']);

  // Outbound HTTP from a plain client: redirected to 15001, handed to 0.0.0.0_8080 by the original destination.
  const http = lab.run(app, 'curl', ['-sS', '-i', '--max-time', '10', `http://${upstream.ip}:8080/productpage`]);
  assert.equal(http.status, 0, http.stderr + proxy.output());
  assert.match(http.stdout, /^x-trellis-listener: 0\.0\.0\.0_8080\r?$/m, 'the 0.0.0.0_8080 listener routed it');
  assert.match(http.stdout, new RegExp(`upstream http remote=${app.ip.replace(/\./g, '\\.')} local=${upstream.ip.replace(/\./g, '\\.')}:8080`));
  let s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_8080.downstream_cx_total'), 1, s);
  assert.equal(statOf(s, 'listener.0.0.0.0_15001.downstream_cx_total'), 0, 'handed-off connections count on the listener that took them');

  // Opaque TCP to a port with no listener: kept by virtualOutbound, PassthroughCluster connects to the original destination.
  const tcp = lab.run(app, 'curl', ['-sS', '--max-time', '10', `telnet://${upstream.ip}:7000`]);
  assert.match(tcp.stdout, new RegExp(`^upstream tcp remote=${app.ip.replace(/\./g, '\\.')} local=${upstream.ip.replace(/\./g, '\\.')}:7000$`, 'm'), tcp.stderr);
  s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_15001.downstream_cx_total'), 1, s);
  assert.equal(statOf(s, 'cluster.PassthroughCluster.upstream_cx_total'), 1, s);

  // The proxy user's own traffic is not captured: same request, straight to the upstream, no listener involved.
  const own = lab.run(app, 'setpriv', [...identity.args, 'curl', '-sS', '-i', '--max-time', '10', `http://${upstream.ip}:8080/direct`]);
  assert.equal(own.status, 0, own.stderr);
  assert.doesNotMatch(own.stdout, /x-trellis-listener/);
  s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_8080.downstream_cx_total') + statOf(s, 'listener.0.0.0.0_15001.downstream_cx_total'), 2, 'no new captured connection');

  // Inbound to the pod IP from another pod: redirected to 15006, passed through to the app from 127.0.0.6.
  const inbound = lab.run(upstream, 'curl', ['-sS', '--max-time', '10', `http://${app.ip}:9090/`]);
  assert.equal(inbound.stdout, `app http remote=127.0.0.6 local=${app.ip}:9090`, inbound.stderr);
  s = stats();
  assert.equal(statOf(s, 'listener.0.0.0.0_15006.downstream_cx_total'), 1, s);
  assert.equal(statOf(s, 'cluster.InboundPassthroughClusterIpv4.upstream_cx_total'), 1, s);

  // Clean-up: Istio's chains go, traffic is direct again.
  lab.exec(app, process.execPath, [CLI, 'iptables', 'clean']);
  assert.doesNotMatch(lab.exec(app, 'iptables-save', []), /ISTIO_/);
  const direct = lab.run(app, 'curl', ['-sS', '-i', '--max-time', '10', `http://${upstream.ip}:8080/after-clean`]);
  assert.doesNotMatch(direct.stdout, /x-trellis-listener/);
  assert.equal(statOf(stats(), 'listener.0.0.0.0_8080.downstream_cx_total'), 1);
});
