// Fixture endpoints standing in for a Bookinfo mesh: a proxy admin serving Istio's metrics (growing on every scrape) and a control plane monitoring port serving syncz/configz.
import { createServer, type Server } from 'node:http';
import { istioStatsText, record, series, type FixtureSeries } from './istio-metrics-fixture.js';

export interface FakeMesh {
  readonly adminUrl: string;
  readonly monitoringUrl: string;
  /** An admin address nothing listens on. */
  readonly deadAdminUrl: string;
  close(): Promise<void>;
}

export const FAKE_CONFIGZ = {
  store: 'file:/fixture',
  pushVersion: '3',
  resources: [
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews-route', namespace: 'default' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }] } },
  ],
  problems: [{ code: 'TRELLIS_CONFIG_INVALID', source: 'mesh/ratings.yaml', resource: 'VirtualService default/ratings-bad', path: 'spec.http[0].route[0].weight', message: 'expected 0-100', text: 'mesh/ratings.yaml: VirtualService default/ratings-bad: spec.http[0].route[0].weight: expected 0-100' }],
};

const syncType = (state: string, nack?: string) => ({ typeUrl: '', state, sentVersion: '3', sentNonce: 'n', ackedVersion: state === 'SYNCED' ? '3' : '2', sentCount: 1, ...(nack ? { nack: { version: '3', nonce: 'n', message: nack, at: new Date(0).toISOString() } } : {}) });

export const FAKE_SYNCZ = [
  { proxy: 'sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local', types: { CDS: syncType('SYNCED'), LDS: syncType('SYNCED'), EDS: syncType('SYNCED'), RDS: syncType('SYNCED') } },
  { proxy: 'sidecar~127.0.0.1~reviews-v2.default~default.svc.cluster.local', types: { CDS: syncType('SYNCED'), LDS: syncType('NACKED', 'listener 0.0.0.0_9080: unknown filter envoy.filters.http.nope'), EDS: syncType('STALE'), RDS: syncType('NOT SENT') } },
];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

export async function startFakeMesh(): Promise<FakeMesh> {
  const traffic: FixtureSeries[] = [
    series({ source: 'productpage', sourceVersion: 'v1', destination: 'reviews', destinationVersion: 'v2', code: 200 }),
    series({ source: 'productpage', sourceVersion: 'v1', destination: 'reviews', destinationVersion: 'v2', code: 503 }),
    series({ source: 'reviews', sourceVersion: 'v2', destination: 'ratings', destinationVersion: 'v1', code: 200 }),
    series({ source: 'productpage', sourceVersion: 'v1', destination: 'details', destinationVersion: 'v1', code: 200, mtls: false }),
  ];
  const admin = createServer((req, res) => {
    if (req.url !== '/stats/prometheus') return void res.writeHead(404).end();
    // Every scrape finds more traffic, as a mesh under load would show.
    record(traffic[0]!, 19, 7);
    record(traffic[1]!, 1, 3);
    record(traffic[2]!, 10, 2);
    record(traffic[3]!, 5, 1);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(istioStatsText(traffic));
  });
  const monitoring = createServer((req, res) => {
    const body = req.url === '/debug/syncz' ? FAKE_SYNCZ : req.url === '/debug/configz' ? FAKE_CONFIGZ : undefined;
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const dead = createServer();
  const deadAdminUrl = await listen(dead);
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  const adminUrl = await listen(admin);
  const monitoringUrl = await listen(monitoring);
  return {
    adminUrl,
    monitoringUrl,
    deadAdminUrl,
    close: async () => {
      for (const s of [admin, monitoring]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}
