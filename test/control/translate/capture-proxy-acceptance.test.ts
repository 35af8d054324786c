// The captured-mode sidecar listeners the control plane generates (virtualOutbound with use_original_dst, unbound
// 0.0.0.0_<port> listeners, virtualInbound with original_dst first) are accepted by Trellis's own proxy, not NACKed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSidecarListeners } from '../../../src/control/translate/listener/index.js';
import { TrellisListenerManager } from '../../../src/proxy/listeners/listener-manager.js';
import { createHttpFilterRegistry } from '../../../src/proxy/filters/registry.js';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import { XdsValidationError } from '../../../src/common/errors.js';
import { staticSecrets } from '../../../src/proxy/transport/secret-provider.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeCluster, FakeClusterManager } from '../../proxy/http/fakes.js';
import { details, http9080, instance, MESH, productpage, proxy as fixtureProxy, ratings, reviews, service, assertListenerOnTheWire } from './bookinfo-translate-fixture.js';

const hasOpenssl = execFileSync('sh', ['-c', 'command -v openssl || true'], { encoding: 'utf8' }).trim() !== '';

/** SDS `default` and `ROOTCA` as the agent would serve them: a self-signed P-256 certificate from openssl. */
function meshSecrets() {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-capture-accept-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/O=cluster.local', '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/productpage'], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    return staticSecrets([
      { name: 'default', tls_certificate: { certificate_chain: { inline_string: cert }, private_key: { inline_string: readFileSync(join(dir, 'k.pem'), 'utf8') } } },
      { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: cert } } },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("Trellis's proxy accepts every captured-mode sidecar listener of a Bookinfo workload", { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
  const mysql = service('mysql', [{ name: 'tcp', number: 3306, protocol: 'TCP' }], { addresses: ['10.96.0.30'] });
  const listeners = buildSidecarListeners(fixtureProxy(), { outboundServices: [productpage, details, reviews, ratings, mysql], inboundInstances: [instance(productpage, http9080)] }, { mesh: MESH });
  const clusters = new FakeClusterManager();
  for (const name of ['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughClusterIpv4', 'inbound|9080||', 'outbound|3306||mysql.default.svc.cluster.local']) clusters.add(new FakeCluster(name, []));
  const manager = new TrellisListenerManager(
    { clusters, routes: { get: () => undefined }, httpFilters: createHttpFilterRegistry({ clusters }), nodeId: 'n', compileRouteConfiguration, secrets: meshSecrets() },
    { originalDestination: { available: true, read: () => undefined } },
  );
  const names: string[] = [];
  for (const l of listeners) {
    try {
      manager.compile(assertListenerOnTheWire(l));
      names.push(l.name!);
    } catch (err) {
      assert.fail(`${l.name}: NACKed: ${err instanceof XdsValidationError ? err.details.join('\n') : String(err)}`);
    }
  }
  assert.ok(names.includes('virtualOutbound') && names.includes('virtualInbound') && names.includes('0.0.0.0_9080'), names.join(', '));
  const outbound = listeners.find((l) => l.name === 'virtualOutbound')!;
  assert.equal(outbound.use_original_dst?.value, true);
  clusters.close();
});
