// Generation time for one sidecar's full config (CDS, EDS, LDS, RDS) with 1,000 services, against 100 services in the same run.
// Synthetic mesh: ServiceEntries with 2 ports (HTTP 8080, gRPC 9090) and 3 inline endpoints; every 10th service has a
// VirtualService (header match + 90/10 split) and a DestinationRule with two subsets. Each round builds a new PushContext
// (timed separately) and generates every type for one sidecar from it, so no per-snapshot memo is reused across rounds.
import { MemoryConfigStore } from '../src/control/config/index.js';
import { ServiceEntryRegistry } from '../src/control/registry/index.js';
import { buildPushContext, type PushContext } from '../src/control/model/push-context.js';
import { DEFAULT_MESH_CONFIG } from '../src/control/model/mesh-config.js';
import type { Proxy } from '../src/control/model/proxy.js';
import type { IstioResource } from '../src/api/index.js';
import { createGenerators } from '../src/control/translate/generators/index.js';
import { median, printFigure, printRatio } from './report.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const SERVICES = Number(process.env['SERVICES'] ?? 1000);
const BASELINE_SERVICES = Number(process.env['BASELINE_SERVICES'] ?? 100);

function meshResources(count: number): IstioResource[] {
  const out: IstioResource[] = [];
  const meta = (name: string) => ({ name, namespace: 'default' });
  for (let i = 0; i < count; i++) {
    const name = `svc-${i}`;
    out.push({
      apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: meta(name),
      spec: {
        hosts: [`${name}.default.svc.cluster.local`], location: 'MESH_INTERNAL', resolution: 'STATIC',
        ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }, { number: 9090, name: 'grpc', protocol: 'GRPC' }],
        endpoints: [0, 1, 2].map((e) => ({ address: `10.${(i >> 8) & 255}.${i & 255}.${e + 1}`, labels: { app: name, version: e === 2 ? 'v2' : 'v1' } })),
      },
    });
    if (i % 10 === 0) {
      out.push({
        apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: meta(name),
        spec: { host: name, trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
      });
      out.push({
        apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: meta(name),
        spec: {
          hosts: [name],
          http: [
            { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: name, subset: 'v2' } }] },
            { route: [{ destination: { host: name, subset: 'v1' }, weight: 90 }, { destination: { host: name, subset: 'v2' }, weight: 10 }], timeout: '5s' },
          ],
        },
      });
    }
  }
  // The proxy's own workload, so its inbound side is generated too.
  out.push({
    apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: meta('client'),
    spec: { hosts: ['client.default.svc.cluster.local'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '10.255.255.1', labels: { app: 'client' } }] },
  });
  return out;
}

const proxy: Proxy = {
  id: 'sidecar~10.255.255.1~client-1.default~default.svc.cluster.local', type: 'sidecar', ipAddresses: ['10.255.255.1'], podName: 'client-1',
  namespace: 'default', domainSuffix: 'cluster.local', labels: { app: 'client' }, serviceAccount: 'client', locality: { region: '', zone: '', subzone: '' },
  workloadName: 'client', cluster: 'client.default', metadata: {},
};

const generators = createGenerators();
const request = { full: true, configsUpdated: [], reasons: ['bench'], start: 0 };

interface Round { build: number; generate: number; resources: number }

function measure(count: number): Round[] {
  const store = new MemoryConfigStore();
  store.set(...meshResources(count));
  const registry = new ServiceEntryRegistry(store);
  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = performance.now();
    const push: PushContext = buildPushContext({ store, registry, mesh: DEFAULT_MESH_CONFIG });
    const t1 = performance.now();
    let resources = 0;
    for (const g of generators.values()) resources += g.generate(proxy, push, request).length;
    const t2 = performance.now();
    if (r > 0) rounds.push({ build: t1 - t0, generate: t2 - t1, resources }); // round 0 warms the JIT
  }
  return rounds;
}

// One discarded pass of each size first, so neither figure pays for the JIT warming up.
measure(SERVICES);
measure(BASELINE_SERVICES);
const baseline = measure(BASELINE_SERVICES);
const full = measure(SERVICES);
const med = (rs: Round[], pick: (r: Round) => number) => median(rs.map(pick));
console.log(`resources generated: ${baseline[0]!.resources} (${BASELINE_SERVICES} services), ${full[0]!.resources} (${SERVICES} services)`);
printFigure(`push context build, ${BASELINE_SERVICES} services (median of ${ROUNDS})`, med(baseline, (r) => r.build), 'ms');
printFigure(`push context build, ${SERVICES} services (median of ${ROUNDS})`, med(full, (r) => r.build), 'ms');
printFigure(`sidecar full config generation, ${BASELINE_SERVICES} services (baseline, median of ${ROUNDS})`, med(baseline, (r) => r.generate), 'ms');
printFigure(`sidecar full config generation, ${SERVICES} services (median of ${ROUNDS})`, med(full, (r) => r.generate), 'ms');
printRatio(`generation ${SERVICES} vs ${BASELINE_SERVICES} services`, med(full, (r) => r.generate) / med(baseline, (r) => r.generate));
