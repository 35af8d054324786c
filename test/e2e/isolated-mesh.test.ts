// `trellis up --isolated` (root): Bookinfo's workloads as pods, each in its own network namespace on the trellis0 bridge
// with Istio's capture rules and no HTTP_PROXY. The page through the gateway shows details and rated reviews (two
// captured hops, mTLS between pods), plaintext to a pod IP is refused (STRICT), the sidecar's stats show the captured
// connection, and stopping leaves no namespace, bridge or hosts file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { isolatedUnavailable, POD_BRIDGE } from '../../src/local/pod-network.js';
import { copyBookinfo, freePortBase, startTrellisUp, stopTrellisUp } from './trellis-up.js';

const unavailable = isolatedUnavailable();
const KEEP = new Set(['productpage-v1', 'details-v1', 'reviews-v2', 'ratings-v1']);

function podNamespaces(): string[] {
  return (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith('trellis-'));
}

test('trellis up --isolated: pods with capture rules serve Bookinfo through the gateway, mTLS STRICT on pod IPs', { skip: unavailable ?? false, timeout: 180_000 }, async (t) => {
  const copy = await copyBookinfo('trellis-isolated-');
  // Four workloads are enough for two captured hops (productpage -> reviews-v2 -> ratings) and keep the test short.
  const manifestPath = join(copy.dir, 'mesh.yaml');
  const manifest = parse(readFileSync(manifestPath, 'utf8')) as { workloads: { name: string }[] };
  manifest.workloads = manifest.workloads.filter((w) => KEEP.has(w.name));
  writeFileSync(manifestPath, stringify(manifest));
  const base = await freePortBase(copy.dir);
  let output = '';
  let up: Awaited<ReturnType<typeof startTrellisUp>> | undefined;
  t.after(async () => {
    await stopTrellisUp(up, copy.dir);
    assert.deepEqual(podNamespaces(), [], 'no pod namespace left');
    assert.notEqual(spawnSync('ip', ['link', 'show', POD_BRIDGE]).status, 0, 'the bridge is gone');
    assert.equal(existsSync('/etc/netns/trellis-productpage-v1'), false, 'the hosts file is gone');
  });
  up = await startTrellisUp(copy.dir, base, (c) => (output += c), ['--isolated']);
  assert.match(output, /--isolated: 4 pods on 10\.223\.0\.1\/24/);

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
});
