// `trellis up --isolated` (root): Bookinfo's workloads as pods, each in its own network namespace on the trellis0 bridge
// with Istio's capture rules and no HTTP_PROXY. The page through the gateway shows details and rated reviews (two
// captured hops, mTLS between pods), plaintext to a pod IP is refused (STRICT), the sidecar's stats show the captured
// connection, and stopping leaves no namespace, bridge or resolv.conf. Inside the productpage pod, plain clients resolve
// a service name and a ServiceEntry host through the sidecar's DNS proxy (auto-allocated VIPs), send opaque TCP to a
// TCP echo workload through both sidecars, and reach an "external" TLS server (in the host namespace, outside the mesh)
// by SNI passthrough, seeing its own certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { isolatedUnavailable, POD_BRIDGE } from '../../src/local/pod-network.js';
import { copyBookinfo, freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';

const unavailable = isolatedUnavailable();
const KEEP = new Set(['productpage-v1', 'details-v1', 'reviews-v2', 'ratings-v1']);
const TLS_HOST = 'secure.external.example';
const ECHO_PORT = 9000;
// Outside the mesh (argv: key, cert): an HTTPS server and a TCP echo on a port nothing declares, ports on stdout.
const EXTERNAL_SERVERS = `const fs = require('node:fs');
const server = require('node:https').createServer({ key: fs.readFileSync(process.argv[1]), cert: fs.readFileSync(process.argv[2]) }, (_q, r) => r.end('external tls server\\n'));
const echo = require('node:net').createServer((s) => s.pipe(s));
server.listen(0, '0.0.0.0', () => echo.listen(0, '0.0.0.0', () => console.log('listening ' + server.address().port + ' ' + echo.address().port)));`;
// The TCP echo workload: what it reads it writes back; PORT is its service port in the pod.
const ECHO_SERVER = "require('node:net').createServer((s) => s.pipe(s)).listen(Number(process.env.PORT))";
// A plain TCP client (argv: host, port): the name through getaddrinfo (the pod's resolv.conf), bytes out, the echo printed.
const ECHO_CLIENT = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
let got = '';
s.on('data', (d) => { got += d; if (got.includes('\\n')) { process.stdout.write(got); s.end(); } });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
s.write('opaque bytes through capture\\n');
setTimeout(() => { console.error('no echo in 8 s: ' + JSON.stringify(got)); process.exit(1); }, 8000).unref();`;

function podNamespaces(): string[] {
  return (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith('trellis-'));
}

test('trellis up --isolated: pods with capture rules serve Bookinfo through the gateway, mTLS STRICT on pod IPs, DNS proxy, TCP echo, TLS passthrough', { skip: unavailable ?? false, timeout: 180_000 }, async (t) => {
  const copy = await copyBookinfo('trellis-isolated-');
  // Four workloads are enough for two captured hops (productpage -> reviews-v2 -> ratings) and keep the test short.
  const manifestPath = join(copy.dir, 'mesh.yaml');
  const manifest = parse(readFileSync(manifestPath, 'utf8')) as { workloads: { name: string }[]; config: string[] };
  manifest.workloads = manifest.workloads.filter((w) => KEEP.has(w.name));
  manifest.workloads.push({ name: 'tcp-echo-v1', labels: { app: 'tcp-echo', version: 'v1' }, serviceAccount: 'tcp-echo', command: process.execPath, args: ['-e', ECHO_SERVER], service: { host: 'tcp-echo', port: ECHO_PORT, protocol: 'TCP' } } as { name: string });
  writeFileSync(manifestPath, stringify(manifest));
  // The external TLS server: in the host namespace (outside the mesh), reached from pods at the bridge address.
  const certPath = join(copy.dir, 'external.crt');
  const keyPath = join(copy.dir, 'external.key');
  const openssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${TLS_HOST}`, '-addext', `subjectAltName=DNS:${TLS_HOST}`], { encoding: 'utf8' });
  assert.equal(openssl.status, 0, openssl.stderr);
  // A child process, not this one: the test's spawnSync calls block its event loop while curl waits for the answer.
  const external = spawn(process.execPath, ['-e', EXTERNAL_SERVERS, keyPath, certPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => external.kill('SIGKILL'));
  const [tlsPort, undeclaredPort] = await new Promise<[number, number]>((resolve, reject) => {
    let out = '';
    external.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening (\d+) (\d+)/.exec(out);
      if (m) resolve([Number(m[1]), Number(m[2])]);
    });
    external.once('exit', (code) => reject(new Error(`the external TLS server exited with ${code}`)));
  });
  writeFileSync(
    join(copy.dir, 'external-tls.yaml'),
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure-external, namespace: default }
spec:
  hosts: [${TLS_HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${tlsPort}, name: tls, protocol: TLS }]
  endpoints: [{ address: 10.223.0.1 }]
`,
  );
  manifest.config.push('external-tls.yaml');
  writeFileSync(manifestPath, stringify(manifest));
  const base = await freePortBase(copy.dir);
  let output = '';
  let up: Awaited<ReturnType<typeof startTrellisUp>> | undefined;
  t.after(async () => {
    await stopTrellisUp(up, copy.dir);
    assert.deepEqual(podNamespaces(), [], 'no pod namespace left');
    assert.notEqual(spawnSync('ip', ['link', 'show', POD_BRIDGE]).status, 0, 'the bridge is gone');
    assert.equal(existsSync('/etc/netns/trellis-productpage-v1'), false, 'the resolv.conf dir is gone');
  });
  up = await startTrellisUp(copy.dir, base, (c) => (output += c), ['--isolated']);
  assert.match(output, /--isolated: 5 pods on 10\.223\.0\.1\/24/);

  const page = spawnSync('curl', ['-sS', '--max-time', '15', `http://127.0.0.1:${copy.gatewayPort}/productpage?u=normal`], { encoding: 'utf8' });
  assert.equal(page.status, 0, page.stderr);
  assert.match(page.stdout, /Book Details/, 'details reached from the productpage pod');
  assert.match(page.stdout, /glyphicon-star/, 'reviews-v2 reached ratings: two captured hops');
  assert.doesNotMatch(page.stdout, /Error fetching/);

  // STRICT: a plaintext client outside the mesh cannot reach a pod's application port.
  const details = output.match(/details-v1 (10\.223\.0\.\d+)/)![1]!;
  const plain = spawnSync('curl', ['-sS', '--max-time', '5', `http://${details}:9080/details/0`], { encoding: 'utf8' });
  assert.notEqual(plain.status, 0, `plaintext to ${details}:9080 must be refused, got ${plain.stdout}`);

  // The productpage sidecar saw its outbound calls as captured connections handed to 0.0.0.0_9080.
  const admin = base + 10 + 3;
  const stats = spawnSync('ip', ['netns', 'exec', 'trellis-productpage-v1', 'curl', '-sS', '--max-time', '5', `http://127.0.0.1:${admin}/stats`], { encoding: 'utf8' }).stdout;
  assert.ok(Number(/^listener\.0\.0\.0\.0_9080\.downstream_cx_total: (\d+)$/m.exec(stats)?.[1] ?? 0) >= 1, stats);
  assert.ok(Number(/^listener\.0\.0\.0\.0_15006\.ssl\.handshake: (\d+)$/m.exec(stats)?.[1] ?? 0) >= 1, 'the gateway came in over mTLS');

  // DNS: glibc in the pod asks the resolv.conf name server; the rules hand it to the sidecar's DNS proxy, which answers
  // the generated ServiceEntry's host and the external one with auto-allocated VIPs.
  const inPod = (command: string, args: string[]): ReturnType<typeof spawnSync> => spawnSync('ip', ['netns', 'exec', 'trellis-productpage-v1', command, ...args], { encoding: 'utf8', timeout: 15_000 });
  const reviews = inPod('getent', ['ahostsv4', 'reviews']);
  assert.equal(reviews.status, 0, String(reviews.stderr));
  assert.match(String(reviews.stdout), /^240\.240\.\d+\.\d+\s/m, `reviews resolves to a VIP: ${reviews.stdout}`);
  const tlsHost = inPod('getent', ['ahostsv4', TLS_HOST]);
  assert.match(String(tlsHost.stdout), /^240\.240\.\d+\.\d+\s/m, `${TLS_HOST} resolves to a VIP: ${tlsHost.stdout}${tlsHost.stderr}`);
  const status = base + 10 + 5;
  const agentMetrics = String(inPod('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${status}/stats/prometheus`]).stdout);
  assert.ok(Number(/^istio_agent_dns_requests_total (\d+)$/m.exec(agentMetrics)?.[1] ?? 0) >= 2, 'the DNS proxy counted the queries');

  // Opaque TCP: a plain client, bytes echoed back through the productpage and tcp-echo sidecars.
  const echo = inPod(process.execPath, ['-e', ECHO_CLIENT, 'tcp-echo', String(ECHO_PORT)]);
  assert.equal(echo.status, 0, String(echo.stderr));
  assert.equal(String(echo.stdout), 'opaque bytes through capture\n');
  // Opaque TCP on a port no Service or ServiceEntry names: virtualOutbound's PassthroughCluster (ALLOW_ANY) to the
  // original destination, outside the mesh. (Into another pod STRICT would refuse it, as in Istio: passthrough is plaintext.)
  const undeclared = inPod(process.execPath, ['-e', ECHO_CLIENT, '10.223.0.1', String(undeclaredPort)]);
  assert.equal(undeclared.status, 0, String(undeclared.stderr));
  assert.equal(String(undeclared.stdout), 'opaque bytes through capture\n');

  // TLS passthrough by SNI: curl verifies the external server's own certificate (no mesh certificate in between).
  const tls = inPod('curl', ['-sSv', '--max-time', '10', '--cacert', certPath, `https://${TLS_HOST}:${tlsPort}/`]);
  assert.equal(tls.status, 0, `${tls.stderr}\n${String(inPod('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${admin}/stats`]).stdout).split('\n').filter((l) => l.includes(String(tlsPort))).join('\n')}\n${inPod('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${admin}/listeners`]).stdout}`);
  assert.equal(String(tls.stdout), 'external tls server\n');

  const after = String(inPod('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${admin}/stats`]).stdout);
  const counter = (name: string): number => Number(new RegExp(`^${name.replace(/[.|]/g, '\\$&')}: (\\d+)$`, 'm').exec(after)?.[1] ?? 0);
  assert.ok(counter(`cluster.outbound|${ECHO_PORT}||tcp-echo.default.svc.cluster.local.upstream_cx_total`) >= 1, after.split('\n').filter((l) => l.includes('tcp-echo')).join('\n'));
  assert.ok(counter('cluster.PassthroughCluster.upstream_cx_total') >= 1, after.split('\n').filter((l) => l.includes('PassthroughCluster')).join('\n'));
  assert.ok(counter(`cluster.outbound|${tlsPort}||${TLS_HOST}.upstream_cx_total`) >= 1, after.split('\n').filter((l) => l.includes(TLS_HOST)).join('\n'));
});
