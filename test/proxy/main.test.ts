// Proxy wiring (src/proxy/main.ts) over a fake data path and Trellis's real ADS server: static start-up, Envoy's warming
// order, EDS/RDS subscriptions following CDS/LDS, compile failures NACKed with the compiler's message while the rest
// applies and the old route keeps serving, and the last config kept when the control plane goes away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XdsValidationError } from '../../src/common/errors.js';
import { packAny } from '../../src/xds/codec.js';
import type { envoy } from '../../src/xds/generated/types.js';
import { AdsServer, SnapshotCache, type TypeInput } from '../../src/xds/server/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { ProxyLog } from '../../src/proxy/admin/log-levels.js';
import { ProxyStartupError, startProxy, type ClusterBackend, type DataPlane, type ProxyListenerContext } from '../../src/proxy/main.js';
import type { CompiledListener, ListenerManager, ListenerStatus } from '../../src/proxy/listeners/types.js';
import type { RouteTable } from '../../src/proxy/router/route-table.js';
import type { UpstreamCluster } from '../../src/proxy/upstream/types.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const NODE_ID = 'proxy-under-test';

/** Records what main asks of the data path, in order. */
class FakeDataPlane implements DataPlane {
  readonly events: string[] = [];
  context: ProxyListenerContext | undefined;
  appliedListeners: string[] = [];
  readonly assignments = new Map<string, envoy.config.endpoint.v3.ClusterLoadAssignment>();
  private clusterNames = new Set<string>();

  readonly clusters: ClusterBackend = {
    manager: { get: (name) => (this.clusterNames.has(name) ? ({ name, stats: {} } as unknown as UpstreamCluster) : undefined) },
    compile: (cluster: Cluster) => {
      if (cluster.lb_policy === 'MAGLEV') throw new XdsValidationError(['lb_policy: MAGLEV is not supported by this fake']);
      return { compiled: cluster.name };
    },
    apply: (clusters, assignment) => {
      this.clusterNames = new Set(clusters.map((c) => c.config.name!));
      this.events.push(`clusters ${[...this.clusterNames].sort().join(',')}`);
      for (const c of clusters) if (c.config.type === 'EDS' && assignment(c.config.name!)) this.assignments.set(c.config.name!, assignment(c.config.name!)!);
    },
    applyLoadAssignment: (name, cla) => {
      this.assignments.set(name, cla);
      this.events.push(`eds ${name}`);
    },
    hosts: () => [],
    close: () => undefined,
  };

  readonly httpFilters = { byName: () => undefined, byTypeUrl: () => undefined };

  compileRouteConfiguration(config: RouteConfiguration): RouteTable {
    const regex = config.virtual_hosts?.[0]?.routes?.[0]?.match?.safe_regex?.regex;
    if (regex !== undefined) {
      try {
        new RegExp(regex);
      } catch {
        throw new XdsValidationError([`virtual_hosts[0].routes[0].match.safe_regex.regex: invalid regular expression "${regex}"`]);
      }
    }
    const cluster = config.virtual_hosts?.[0]?.routes?.[0]?.route?.cluster ?? '';
    return { name: `${config.name}->${cluster}`, match: () => undefined };
  }

  createListenerManager(context: ProxyListenerContext): ListenerManager {
    this.context = context;
    return {
      compile: (listener): CompiledListener => {
        if (!listener.address?.socket_address) throw new XdsValidationError(['address: required by this fake']);
        return { name: listener.name!, config: listener, version: JSON.stringify(listener) };
      },
      apply: async (listeners) => {
        this.appliedListeners = listeners.map((l) => l.name).sort();
        this.events.push(`listeners ${this.appliedListeners.join(',')}`);
      },
      status: (): ListenerStatus[] => [],
      drain: async () => undefined,
      drainListeners: async () => undefined,
      close: async () => undefined,
    };
  }
}

function hcmListener(name: string, routeName: string): envoy.config.listener.v3.Listener {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: packAny(HCM, {
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: { ads: {} } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
            }),
          },
        ],
      },
    ],
  };
}

function route(name: string, cluster: string, regex?: string): { name: string; resource: RouteConfiguration } {
  return {
    name,
    resource: { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: regex === undefined ? { prefix: '/' } : { safe_regex: { regex } }, route: { cluster } }] }] },
  };
}

function edsCluster(name: string, lbPolicy?: 'MAGLEV'): { name: string; resource: Cluster } {
  return { name, resource: { name, type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { eds_config: { ads: {} } }, ...(lbPolicy ? { lb_policy: lbPolicy } : {}) } };
}

function assignment(name: string, port: number): { name: string; resource: envoy.config.endpoint.v3.ClusterLoadAssignment } {
  return { name, resource: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

function writeBootstrap(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-proxy-main-'));
  const path = join(dir, 'bootstrap.yaml');
  writeFileSync(path, text);
  return path;
}

function adsBootstrap(port: number, mode: 'GRPC' | 'DELTA_GRPC'): string {
  return writeBootstrap(`
node: { id: ${NODE_ID}, cluster: test }
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
dynamic_resources:
  ads_config: { api_type: ${mode}, transport_api_version: V3, grpc_services: [ { envoy_grpc: { cluster_name: xds } } ] }
  cds_config: { ads: {} }
  lds_config: { ads: {} }
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    load_assignment: { cluster_name: xds, endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } } } ] } ] }
`);
}

async function eventually(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const quiet = (): ProxyLog => new ProxyLog('off', () => undefined);

test('static bootstrap: clusters applied before listeners, LIVE without a control plane, bad static resources refused with their path', async () => {
  const dataPlane = new FakeDataPlane();
  const path = writeBootstrap(`
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
static_resources:
  clusters: [ { name: a, type: STATIC, connect_timeout: 1s } ]
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains: [ { filters: [ { name: envoy.filters.network.http_connection_manager, typed_config: { "@type": type.googleapis.com/${HCM}, stat_prefix: s, route_config: { name: inline } } } ] } ]
`);
  const proxy = await startProxy({ bootstrapPath: path, dataPlane, log: quiet() });
  try {
    assert.deepEqual(dataPlane.events, ['clusters a', 'listeners l']);
    assert.equal(proxy.state(), 'LIVE');
    const ready = await fetch(`http://${proxy.admin!.address}/ready`);
    assert.equal(ready.status, 200);
    const dump = (await (await fetch(`http://${proxy.admin!.address}/config_dump`)).json()) as { configs: Record<string, unknown>[] };
    const routes = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump') as { static_route_configs: { route_config: { name: string } }[] };
    assert.equal(routes.static_route_configs[0]!.route_config.name, 'inline');
  } finally {
    await proxy.stop();
  }

  const bad = writeBootstrap(`
static_resources:
  clusters: [ { name: a, type: STATIC, connect_timeout: 1s, lb_policy: MAGLEV } ]
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains: [ { filters: [ { name: envoy.filters.network.http_connection_manager, typed_config: { "@type": type.googleapis.com/${HCM}, stat_prefix: s, rds: { route_config_name: r, config_source: { ads: {} } } } } ] } ]
`);
  await assert.rejects(startProxy({ bootstrapPath: bad, dataPlane: new FakeDataPlane(), log: quiet() }), (err: unknown) => {
    assert.ok(err instanceof ProxyStartupError);
    assert.deepEqual(err.details, [
      `${bad}: static_resources.clusters[0]: lb_policy: MAGLEV is not supported by this fake`,
      `${bad}: static_resources.listeners[0]: uses RDS (r) but the bootstrap has no dynamic_resources.ads_config`,
    ]);
    return true;
  });
});

for (const mode of ['GRPC', 'DELTA_GRPC'] as const) {
  test(`ADS (${mode}): warming order, live route change, NACK with the compiler's message, last config kept without the control plane`, async (t) => {
    const cache = new SnapshotCache();
    const snapshot = (routes: { name: string; resource: RouteConfiguration }[], listenerRoute = 'r1'): Record<string, TypeInput> => ({
      [CLUSTER]: [edsCluster('backend'), edsCluster('refused', 'MAGLEV')],
      [CLUSTER_LOAD_ASSIGNMENT]: [assignment('backend', 9)],
      [LISTENER]: [{ name: 'l', resource: hcmListener('l', listenerRoute) }],
      [ROUTE_CONFIGURATION]: routes,
    });
    cache.setSnapshot(NODE_ID, snapshot([route('r1', 'backend')]));
    const ads = new AdsServer({ source: cache, logger: { warn: () => undefined } });
    const listener = await ads.listen('127.0.0.1:0');
    t.after(() => ads.close());
    const dataPlane = new FakeDataPlane();
    const proxy = await startProxy({ bootstrapPath: adsBootstrap(listener.port, mode), dataPlane, log: quiet(), initialFetchTimeoutMs: 5000 });
    t.after(() => proxy.stop());

    // Envoy's order: CDS applied, its EDS delivered, then listeners (only once their RDS is there).
    assert.equal(proxy.state(), 'LIVE');
    const listenerAt = dataPlane.events.indexOf('listeners l');
    assert.ok(dataPlane.events.indexOf('clusters backend,xds') >= 0 && dataPlane.events.indexOf('clusters backend,xds') < listenerAt, dataPlane.events.join(' | '));
    assert.ok(dataPlane.events.indexOf('eds backend') < listenerAt, dataPlane.events.join(' | '));
    assert.equal(dataPlane.context!.routes.get('r1')?.name, 'r1->backend');
    assert.equal(dataPlane.assignments.get('backend')?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value, 9);
    // The cluster the compiler refused is NACKed with its reason; the valid one applied.
    await eventually('CDS NACK recorded', () => /refused.*MAGLEV is not supported/.test(ads.streams()[0]?.types[CLUSTER]?.lastNack?.message ?? ''));

    // A live route change is one snapshot swap.
    cache.setResources(NODE_ID, ROUTE_CONFIGURATION, [route('r1', 'backend-v2')]);
    await eventually('route r1 changed', () => dataPlane.context!.routes.get('r1')?.name === 'r1->backend-v2');

    // A bad regex: NACKed with the compiler's message, the old table keeps serving.
    cache.setResources(NODE_ID, ROUTE_CONFIGURATION, [route('r1', 'backend-v3', '(')]);
    await eventually('RDS NACK recorded', () => /invalid regular expression "\("/.test(ads.streams()[0]?.types[ROUTE_CONFIGURATION]?.lastNack?.message ?? ''));
    assert.equal(dataPlane.context!.routes.get('r1')?.name, 'r1->backend-v2');
    const dump = (await (await fetch(`http://${proxy.admin!.address}/config_dump`)).json()) as { configs: Record<string, unknown>[] };
    const routesDump = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump') as { dynamic_route_configs: { error_state?: { details: string } }[] };
    assert.match(routesDump.dynamic_route_configs[0]!.error_state!.details, /invalid regular expression/);
    const stats = await (await fetch(`http://${proxy.admin!.address}/stats`)).text();
    assert.match(stats, /^rds\.update_rejected: [1-9]/m);

    // The listener moves to another route name: RDS subscribes r2 (the listener warms until it arrives) and drops r1.
    cache.setSnapshot(NODE_ID, snapshot([route('r1', 'backend'), route('r2', 'backend-r2')], 'r2'));
    await eventually('r2 served and r1 dropped', () => dataPlane.context!.routes.get('r2')?.name === 'r2->backend-r2' && dataPlane.context!.routes.get('r1') === undefined);
    // The unsubscribe travels to the server after the client dropped r1: wait for the server to see it.
    const rdsSubscription = (): string[] => [...(ads.streams()[0]?.types[ROUTE_CONFIGURATION]?.subscribed.names ?? [])];
    await eventually(`the server sees RDS [r2], not ${rdsSubscription().join(',')}`, () => rdsSubscription().join(',') === 'r2');

    // The control plane goes away: everything applied stays.
    await ads.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(dataPlane.context!.routes.get('r2')?.name, 'r2->backend-r2');
    assert.deepEqual(dataPlane.appliedListeners, ['l']);
    assert.equal(proxy.state(), 'LIVE');
  });
}
