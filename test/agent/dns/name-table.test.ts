// The name table (NDS): what the control plane puts in it (addresses, auto-allocated VIPs, headless endpoints, kube-shaped
// short names) and the agent receiving it over ADS from `trellis control` into its DNS proxy, following config changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsAgent } from '../../../src/agent/dns/dns-agent.js';
import { proxyBootstrapYaml } from '../../../src/agent/bootstrap.js';
import { autoAllocateAddresses, needsAutoAllocation } from '../../../src/control/model/auto-allocated-addresses.js';
import { proxyFromNode } from '../../../src/control/model/proxy.js';
import type { Service, ServiceInstance } from '../../../src/control/model/service.js';
import { buildNameTable, perHostResources } from '../../../src/control/translate/dns/name-table.js';
import { startControlPlane } from '../../../src/control/server/main.js';
import { nameTableResourceType } from '../../../src/xds/client/resource-types/name-table.js';
import { packAny } from '../../../src/xds/codec.js';

function service(hostname: string, extra: Partial<Service> = {}): Service {
  return {
    hostname,
    namespace: 'default',
    ports: [{ name: 'http', number: 80, protocol: 'HTTP' }],
    resolution: 'STATIC',
    location: 'MESH_EXTERNAL',
    addresses: [],
    exportTo: ['*'],
    source: { registry: 'ServiceEntry', namespace: 'default', name: hostname },
    ...extra,
  };
}

const proxy = (meta: Record<string, string> = {}) =>
  proxyFromNode({ id: 'sidecar~10.0.0.5~app-1.default~default.svc.cluster.local', metadata: { fields: Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, { string_value: v }])) } });

test('auto-allocation: 240.240.0.0/16, stable per host whatever else is declared, only for address-less non-wildcard ServiceEntries', () => {
  const a = service('api.example.com');
  const b = service('db.example.com');
  const one = autoAllocateAddresses([a]);
  const two = autoAllocateAddresses([b, a, service('more.example.com')]);
  assert.match(one.get('api.example.com')!, /^240\.240\.\d{1,3}\.\d{1,3}$/);
  assert.equal(two.get('api.example.com'), one.get('api.example.com'), 'the same VIP with other hosts around');
  assert.notEqual(two.get('db.example.com'), two.get('api.example.com'));
  const last = Number(one.get('api.example.com')!.split('.')[3]);
  assert.ok(last >= 1 && last <= 254, 'no .0 or .255');
  assert.equal(needsAutoAllocation(service('*.wild.example.com')), false);
  assert.equal(needsAutoAllocation(service('x.example.com', { resolution: 'NONE' })), false);
  assert.equal(needsAutoAllocation(service('x.example.com', { addresses: ['10.0.0.1'] })), false);
  assert.equal(needsAutoAllocation(service('x.example.com', { source: { registry: 'kube', namespace: 'default', name: 'x' } })), false);
  // Many hosts: all distinct.
  const many = autoAllocateAddresses(Array.from({ length: 2000 }, (_, i) => service(`h${i}.example.com`)));
  assert.equal(new Set(many.values()).size, 2000);
});

test('buildNameTable: addresses (no CIDRs), auto VIPs only when asked, headless endpoints, kube-shaped short names, merged duplicates', () => {
  const instance = (address: string): ServiceInstance => ({
    hostname: 'headless.default.svc.cluster.local', namespace: 'default', servicePort: { name: 'tcp', number: 5432, protocol: 'TCP' }, address, port: 5432,
    labels: {}, locality: { region: '', zone: '', subzone: '' }, weight: 1, tlsMode: 'disabled', healthStatus: 'HEALTHY', source: { registry: 'ServiceEntry', namespace: 'default', name: 'h' },
  });
  const services = [
    service('reviews.default.svc.cluster.local', { addresses: ['10.96.0.10'] }),
    service('cidr.example.com', { addresses: ['10.0.0.0/16'] }),
    service('api.example.com'),
    service('headless.default.svc.cluster.local', { resolution: 'NONE' }),
    service('multi.example.com', { addresses: ['10.1.0.1'] }),
    service('multi.example.com', { addresses: ['10.1.0.2'] }),
  ];
  const source = { services, allServices: services, instances: (s: Service) => (s.hostname.startsWith('headless') ? [instance('10.2.0.1'), instance('10.2.0.2'), instance('dns.name')] : []) };
  const plain = buildNameTable(proxy(), source).table!;
  assert.deepEqual(Object.keys(plain).sort(), ['headless.default.svc.cluster.local', 'multi.example.com', 'reviews.default.svc.cluster.local']);
  assert.deepEqual(plain['reviews.default.svc.cluster.local'], { ips: ['10.96.0.10'], registry: 'External', shortname: 'reviews', namespace: 'default' });
  assert.deepEqual(plain['headless.default.svc.cluster.local']!.ips, ['10.2.0.1', '10.2.0.2']);
  assert.deepEqual(plain['multi.example.com']!.ips, ['10.1.0.1', '10.1.0.2']);
  const auto = buildNameTable(proxy({ DNS_AUTO_ALLOCATE: 'true' }), source).table!;
  assert.match(auto['api.example.com']!.ips![0]!, /^240\.240\./);
  assert.equal(auto['cidr.example.com'], undefined, 'a CIDR is not an address DNS can give');
  // Per-host resources, each a table of one host, decoded by the agent's resource type.
  const resources = perHostResources({ table: auto });
  for (const r of resources) {
    const any = packAny('istio.networking.nds.v1.NameTable', r.resource);
    assert.equal(nameTableResourceType.nameOf(any), r.name);
    assert.deepEqual(nameTableResourceType.decode(any, r.name).ips, auto[r.name]!.ips);
  }
});

test('the agent refuses malformed NDS resources with field paths', () => {
  const bad = packAny('istio.networking.nds.v1.NameTable', { table: { 'a.example': { ips: ['not-an-ip'] } } });
  assert.throws(() => nameTableResourceType.decode(bad, 'a.example'), /ips\[0\]: expected an IPv4 or IPv6 address/);
  const two = packAny('istio.networking.nds.v1.NameTable', { table: { 'a.example': { ips: ['10.0.0.1'] }, 'b.example': { ips: ['10.0.0.2'] } } });
  assert.equal(nameTableResourceType.nameOf(two), undefined);
  assert.throws(() => nameTableResourceType.decode(two, 'a.example'), /exactly one host/);
  const empty = packAny('istio.networking.nds.v1.NameTable', { table: { 'a.example': {} } });
  assert.throws(() => nameTableResourceType.decode(empty, 'a.example'), /at least one address/);
});

const SERVICE_ENTRIES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-api, namespace: default }
spec:
  hosts: [api.external.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
`;

test('trellis control serves the name table over ADS; the agent (from the proxy bootstrap) answers from it and follows changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-nds-'));
  const configDir = join(dir, 'config');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'services.yaml'), SERVICE_ENTRIES);
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n');
  const plane = await startControlPlane({ configDir, xdsAddress: '127.0.0.1:0', monitoringAddress: '127.0.0.1:0', debounceAfterMs: 20, debounceMaxMs: 200, logger: { info: () => {}, warn: () => {} } });
  const bootstrap = join(dir, 'bootstrap.yaml');
  writeFileSync(bootstrap, proxyBootstrapYaml({ type: 'sidecar', name: 'app-1', namespace: 'default', labels: { app: 'app' }, serviceAccount: 'default', adminPort: 0, xdsPort: plane.xdsPort }));
  const logs: string[] = [];
  const dns = await startDnsAgent({ bootstrapPath: bootstrap, port: 0, autoAllocate: true, resolvConfPath: join(dir, 'resolv.conf'), log: (m) => logs.push(m) });
  const resolver = new Resolver({ timeout: 1_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
  const waitFor = async (check: () => Promise<boolean>, what: string): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`timed out waiting for ${what}`);
  };
  try {
    await waitFor(async () => (await resolver.resolve4('reviews')).length > 0, 'the first name table');
    assert.deepEqual(await resolver.resolve4('reviews'), ['10.96.0.10']);
    const [vip] = await resolver.resolve4('api.external.example');
    assert.match(vip!, /^240\.240\./, 'the address-less ServiceEntry got an auto-allocated VIP');
    // The first search domain's CNAME short-cut came from the resolv.conf given.
    const cname = await resolver.resolveCname('api.external.example.default.svc.cluster.local');
    assert.deepEqual(cname, ['api.external.example']);
    // A new ServiceEntry appears in the table; a removed one goes (and its mesh name answers NXDOMAIN).
    writeFileSync(join(configDir, 'ratings.yaml'), SERVICE_ENTRIES.split('---')[0]!.replaceAll('reviews', 'ratings').replace('10.96.0.10', '10.96.0.11'));
    await waitFor(async () => (await resolver.resolve4('ratings')).includes('10.96.0.11'), 'ratings in the table');
    unlinkSync(join(configDir, 'ratings.yaml'));
    await waitFor(async () => {
      try {
        await resolver.resolve4('ratings.default.svc.cluster.local');
        return false;
      } catch (err) {
        return (err as { code?: string }).code === 'ENOTFOUND';
      }
    }, 'ratings removed');
    assert.deepEqual(await resolver.resolve4('api.external.example'), [vip], 'the VIP is stable across pushes');
    assert.ok(logs.some((l) => /name table: 3 host/.test(l)), logs.join('\n'));
  } finally {
    await dns.close();
    await plane.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
