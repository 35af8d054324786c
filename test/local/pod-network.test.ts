// The pod network's pure parts: a pod's resolv.conf (what `--redirect-dns` reads its name servers from and glibc
// resolves with) and namespace names from workload names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readResolvConf } from '../../src/agent/dns/resolv-conf.js';
import { podNamespace, podResolvConf } from '../../src/local/pod-network.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('podResolvConf: the bridge as the one name server, the kubelet search list for default, ndots:5', () => {
  const text = podResolvConf('10.223.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-pod-resolv-'));
  try {
    // Read back by the same parser the DNS proxy uses: what the sidecar forwards to and expands with.
    writeFileSync(join(dir, 'resolv.conf'), text);
    const parsed = readResolvConf(join(dir, 'resolv.conf'));
    assert.deepEqual(parsed.servers, [{ host: '10.223.0.1', port: 53 }]);
    assert.deepEqual(parsed.search, ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(text, /^options ndots:5 /m, 'short names try the search list first, as in a Kubernetes pod');
  assert.equal(text.split('\n').filter((l) => l.startsWith('nameserver')).length, 1);
});

test('podNamespace: characters ip netns refuses become dashes', () => {
  assert.equal(podNamespace('reviews-v2'), 'trellis-reviews-v2');
  assert.equal(podNamespace('a/b c'), 'trellis-a-b-c');
});
