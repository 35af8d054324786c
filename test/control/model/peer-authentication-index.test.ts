// PeerAuthenticationIndex: Istio's precedence (workload > namespace > mesh), oldest wins, UNSET inherits, portLevelMtls by workload port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerAuthentication } from '../../../src/api/index.js';
import type { PeerAuthenticationSpec } from '../../../src/api/security/peer-authentication.js';
import { PeerAuthenticationIndex } from '../../../src/control/model/peer-authentication-index.js';

const ROOT = 'istio-system';

function pa(namespace: string, name: string, spec: PeerAuthenticationSpec, creationTimestamp?: string): PeerAuthentication {
  const metadata = { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) };
  return { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata, spec };
}

const web = { app: 'web' };

test('no policy anywhere: PERMISSIVE, and no namespace mode for clients to infer', () => {
  const index = new PeerAuthenticationIndex([], ROOT);
  assert.deepEqual(index.forWorkload('default', web), { mode: 'PERMISSIVE', perPort: new Map() });
  assert.equal(index.namespaceMode('default'), undefined);
  assert.equal(index.modeForPort('default', web, 9080), 'PERMISSIVE');
});

test('precedence: workload selector policy over namespace-wide over mesh-wide', () => {
  const mesh = pa(ROOT, 'default', { mtls: { mode: 'STRICT' } });
  const nsDisable = pa('legacy', 'default', { mtls: { mode: 'DISABLE' } });
  const workload = pa('legacy', 'web-strict', { selector: { matchLabels: web }, mtls: { mode: 'STRICT' } });
  const index = new PeerAuthenticationIndex([workload, nsDisable, mesh], ROOT);
  assert.equal(index.modeForPort('default', web, 80), 'STRICT', 'mesh-wide reaches a namespace without a policy');
  assert.equal(index.modeForPort('legacy', { app: 'api' }, 80), 'DISABLE', 'the namespace policy overrides the mesh');
  assert.equal(index.modeForPort('legacy', { app: 'web', version: 'v1' }, 80), 'STRICT', 'the selector policy overrides its namespace');
  assert.equal(index.namespaceMode('legacy'), 'DISABLE', 'clients infer a service mode from namespace/mesh policies only');
  assert.equal(index.namespaceMode('default'), 'STRICT');
});

test('UNSET (or no mtls) inherits: workload from namespace, namespace from mesh', () => {
  const index = new PeerAuthenticationIndex([
    pa(ROOT, 'mesh', { mtls: { mode: 'STRICT' } }),
    pa('a', 'ns', { mtls: { mode: 'UNSET' } }),
    pa('b', 'ns', { mtls: { mode: 'DISABLE' } }),
    pa('b', 'web', { selector: { matchLabels: web } }),
  ], ROOT);
  assert.equal(index.namespaceMode('a'), 'STRICT');
  assert.equal(index.modeForPort('a', web, 1), 'STRICT');
  assert.equal(index.modeForPort('b', web, 1), 'DISABLE', 'a selector policy without mtls takes the namespace mode');
});

test('portLevelMtls overrides by workload port; UNSET there inherits the workload mode; other ports keep it', () => {
  const index = new PeerAuthenticationIndex([
    pa('default', 'ns', { mtls: { mode: 'DISABLE' } }),
    pa('default', 'web', { selector: { matchLabels: web }, mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'PERMISSIVE' }, '9090': { mode: 'UNSET' } } }),
    pa('default', 'api', { selector: { matchLabels: { app: 'api' } }, portLevelMtls: { '8080': { mode: 'STRICT' } } }),
  ], ROOT);
  assert.equal(index.modeForPort('default', web, 8080), 'PERMISSIVE');
  assert.equal(index.modeForPort('default', web, 9090), 'STRICT');
  assert.equal(index.modeForPort('default', web, 9080), 'STRICT');
  assert.deepEqual([...index.forWorkload('default', web).perPort], [[8080, 'PERMISSIVE'], [9090, 'STRICT']]);
  assert.equal(index.modeForPort('default', { app: 'api' }, 8080), 'STRICT');
  assert.equal(index.modeForPort('default', { app: 'api' }, 80), 'DISABLE', 'no mtls at workload level: the namespace mode');
});

test('among equals the oldest wins: by creation time when known, else Istio\'s tie-break (name, then namespace)', () => {
  const older = pa('default', 'z-older', { mtls: { mode: 'STRICT' } }, '2024-01-01T00:00:00Z');
  const newer = pa('default', 'a-newer', { mtls: { mode: 'DISABLE' } }, '2024-06-01T00:00:00Z');
  assert.equal(new PeerAuthenticationIndex([newer, older], ROOT).namespaceMode('default'), 'STRICT');
  // Files carry no creation time: the name orders.
  const byName = new PeerAuthenticationIndex([pa('default', 'b', { mtls: { mode: 'DISABLE' } }), pa('default', 'a', { mtls: { mode: 'STRICT' } })], ROOT);
  assert.equal(byName.namespaceMode('default'), 'STRICT');
  const workloads = new PeerAuthenticationIndex([
    pa('default', 'web-2', { selector: { matchLabels: web }, mtls: { mode: 'DISABLE' } }, '2024-03-01T00:00:00Z'),
    pa('default', 'web-1', { selector: { matchLabels: { app: 'web', tier: 'front' } }, mtls: { mode: 'STRICT' } }, '2024-05-01T00:00:00Z'),
  ], ROOT);
  assert.equal(workloads.modeForPort('default', { app: 'web', tier: 'front' }, 80), 'DISABLE', 'both select it: the older one wins, not the more specific');
  assert.equal(new PeerAuthenticationIndex([pa(ROOT, 'b', { mtls: { mode: 'DISABLE' } }), pa(ROOT, 'a', { mtls: { mode: 'STRICT' } })], ROOT).meshMode(), 'STRICT');
});

test('selector policies in the root namespace are ignored (Istio), policies of other namespaces never apply', () => {
  const index = new PeerAuthenticationIndex([
    pa(ROOT, 'mesh', { mtls: { mode: 'PERMISSIVE' } }),
    pa(ROOT, 'web-root', { selector: { matchLabels: web }, mtls: { mode: 'DISABLE' } }),
    pa('other', 'web-other', { selector: { matchLabels: web }, mtls: { mode: 'STRICT' } }),
    pa('other', 'ns', { mtls: { mode: 'STRICT' } }),
  ], ROOT);
  assert.equal(index.modeForPort('default', web, 80), 'PERMISSIVE');
  assert.equal(index.modeForPort(ROOT, web, 80), 'PERMISSIVE', 'a workload of the root namespace gets the mesh policy');
});
