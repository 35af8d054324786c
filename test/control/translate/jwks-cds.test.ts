// CDS carries the cluster jwt_authn fetches a RequestAuthentication's jwksUri through, for the proxies it selects only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileConfigStore } from '../../../src/control/config/index.js';
import { ServiceEntryRegistry } from '../../../src/control/registry/index.js';
import { buildPushContext } from '../../../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../../../src/control/model/mesh-config.js';
import { proxyFromNode } from '../../../src/control/model/proxy.js';
import { proxyClusters } from '../../../src/control/translate/generators/cds.js';

const BOOKINFO = fileURLToPath(new URL('../../../../test/fixtures/bookinfo/', import.meta.url));

const sidecar = (workload: string, app: string) =>
  proxyFromNode({
    id: `sidecar~127.0.0.1~${workload}-abc.default~default.svc.cluster.local`,
    metadata: { fields: { NAMESPACE: { string_value: 'default' }, WORKLOAD_NAME: { string_value: workload }, LABELS: { struct_value: { fields: { app: { string_value: app } } } } } },
  });

test('a jwksUri host outside the registry gets an outbound cluster on the selected sidecar; inline jwks and unselected proxies get none', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-jwks-cds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(BOOKINFO, dir, { recursive: true });
  writeFileSync(
    join(dir, 'request-authentication.yaml'),
    `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: remote, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  jwtRules:
  - issuer: https://issuer.example.test
    jwksUri: http://keys.example.test:8088/jwks.json
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: inline, namespace: default }
spec:
  selector: { matchLabels: { app: details } }
  jwtRules:
  - issuer: https://inline.example.test
    jwks: '{"keys":[]}'
`,
  );
  const store = new FileConfigStore({ dir, watch: false });
  await store.start();
  t.after(() => store.close());
  assert.deepEqual(store.problems(), []);
  const registry = new ServiceEntryRegistry(store);
  t.after(() => registry.close());
  const push = buildPushContext({ store, registry, mesh: DEFAULT_MESH_CONFIG });

  const jwks = proxyClusters(sidecar('productpage-v1', 'productpage'), push).filter((c) => c.name === 'outbound|8088||keys.example.test');
  assert.equal(jwks.length, 1, 'one cluster for the remote JWKS');
  const socket = jwks[0]!.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
  assert.deepEqual({ address: socket?.address, port: socket?.port_value }, { address: 'keys.example.test', port: 8088 });

  for (const [workload, app] of [['details-v1', 'details'], ['reviews-v1', 'reviews']] as const) {
    assert.ok(!proxyClusters(sidecar(workload, app), push).some((c) => c.name?.endsWith('example.test')), `${workload}: no JWKS cluster`);
  }
});
